"""Keras 2's generator methods, the spellings the book's listings use (sections 5.2 and 5.3).

``fit_generator``, ``evaluate_generator`` and ``predict_generator`` were deprecated in
Keras 2.1 (``fit`` took generators) and removed in Keras 3.  Here they are what Keras
2 made them at the end: thin wrappers over ``fit`` / ``evaluate`` / ``predict`` that
warn (``DeprecationWarning``) and pass their arguments on::

    history = model.fit_generator(train_generator, steps_per_epoch=100, epochs=30,
                                  validation_data=validation_generator, validation_steps=50)
    test_loss, test_acc = model.evaluate_generator(test_generator, steps=50)

``max_queue_size``, ``workers`` and ``use_multiprocessing`` only tuned Keras's loading
threads; they are accepted and change nothing here.
"""

from __future__ import annotations

import warnings

import numpy as np


def _deprecated(old: str, new: str) -> None:
    # stacklevel 3: the warning points at the caller of model.fit_generator.
    warnings.warn(f"`Model.{old}` is deprecated and will be removed in a future version. "
                  f"Please use `Model.{new}`, which supports generators.",
                  DeprecationWarning, stacklevel=3)


def _refuse(method: str, **options) -> None:
    for option, value in options.items():
        if value is not None:
            raise ValueError(f"{method}: {option}={value!r} is not supported by minicnn")


class GeneratorMethods:
    """``fit_generator`` / ``evaluate_generator`` / ``predict_generator`` (a mixin)."""

    def fit_generator(self, generator, steps_per_epoch: int | None = None, epochs: int = 1,
                      verbose=1, callbacks=None, validation_data=None,
                      validation_steps: int | None = None, validation_freq: int = 1,
                      class_weight=None, max_queue_size: int = 10, workers: int = 1,
                      use_multiprocessing: bool = False, shuffle: bool = True,
                      initial_epoch: int = 0):
        """``fit(generator, ...)`` with a ``DeprecationWarning``, as Keras 2."""
        _deprecated("fit_generator", "fit")
        _refuse("fit_generator", class_weight=class_weight,
                validation_freq=None if validation_freq == 1 else validation_freq)
        return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs,
                        verbose=verbose, callbacks=callbacks, validation_data=validation_data,
                        validation_steps=validation_steps, shuffle=shuffle,
                        initial_epoch=initial_epoch)

    def evaluate_generator(self, generator, steps: int | None = None, callbacks=None,
                           max_queue_size: int = 10, workers: int = 1,
                           use_multiprocessing: bool = False, verbose=0):
        """``evaluate(generator, steps=...)`` with a ``DeprecationWarning``, as Keras 2."""
        _deprecated("evaluate_generator", "evaluate")
        _refuse("evaluate_generator", callbacks=callbacks or None)
        return self.evaluate(generator, steps=steps, verbose=verbose)

    def predict_generator(self, generator, steps: int | None = None, callbacks=None,
                          max_queue_size: int = 10, workers: int = 1,
                          use_multiprocessing: bool = False, verbose=0) -> np.ndarray:
        """``predict(generator, steps=...)`` with a ``DeprecationWarning``, as Keras 2.

        The generator may yield ``x`` batches or ``(x, y)`` pairs (the labels are
        ignored), as ``flow_from_directory`` does.
        """
        _deprecated("predict_generator", "predict")
        _refuse("predict_generator", callbacks=callbacks or None)
        return self.predict(generator, steps=steps, verbose=verbose)

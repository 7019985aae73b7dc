"""The two engines behind one small interface, so a step is written once.

An :class:`Engine` holds one model (minicnn's, or its Keras twin made by
:func:`minicnn.interop.keras.to_keras` with the same weights) and does what a step needs:
compile with RMSprop and binary cross-entropy, train one epoch on a given list of
batches (in that order; validation after it), evaluate, predict.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from minicnn.interop.keras import import_keras, to_keras

ENGINES = ("minicnn", "keras")
Batch = tuple[np.ndarray, np.ndarray]


class _BatchList:
    """A list of (x, y) batches as a sequence minicnn's ``fit`` takes."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Batch:
        return self.batches[index]


class Engine:
    """One engine's model; ``name`` is "minicnn" or "keras"."""

    name = ""

    def __init__(self, model) -> None:
        self.model = model
        self.seconds = 0.0

    def compile(self, learning_rate: float) -> None:
        raise NotImplementedError

    def fit_epoch(self, batches: list[Batch], validation: Batch) -> dict[str, float]:
        """One epoch over ``batches`` in order; returns ``{"loss", "accuracy", "val_loss",
        "val_accuracy"}`` (the training values are means over the epoch's batches)."""
        started = time.perf_counter()
        logs = self._fit(batches, validation)
        self.seconds += time.perf_counter() - started
        return {key: float(np.asarray(values)[-1]) for key, values in logs.items()}

    def _fit(self, batches: list[Batch], validation: Batch) -> dict[str, list]:
        raise NotImplementedError

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
        loss, accuracy = self.model.evaluate(x, y, batch_size=batch_size, verbose=0)
        return float(loss), float(accuracy)

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        started = time.perf_counter()
        result = np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0))
        self.seconds += time.perf_counter() - started
        return result

    def parameters(self) -> dict[str, int]:
        count = lambda weights: int(sum(np.prod(w.shape) for w in weights))  # noqa: E731
        return {"total": count(self.model.weights),
                "trainable": count(self.model.trainable_weights),
                "trainable_arrays": len(self.model.trainable_weights)}


class MinicnnEngine(Engine):
    name = "minicnn"

    def compile(self, learning_rate: float) -> None:
        from minicnn.optimizers import RMSprop

        self.model.compile(optimizer=RMSprop(learning_rate=learning_rate),
                           loss="binary_crossentropy", metrics=["accuracy"])

    def _fit(self, batches: list[Batch], validation: Batch) -> dict[str, list]:
        history = self.model.fit(_BatchList(batches), epochs=1, validation_data=validation,
                                 verbose=0, shuffle=False)
        return history.history


class KerasEngine(Engine):
    name = "keras"

    def compile(self, learning_rate: float) -> None:
        keras = import_keras(require_tensorflow=True)
        # Compiling again (after a change of trainable flags) is how Keras takes them in.
        self.model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
                           loss="binary_crossentropy", metrics=["accuracy"])

    def _fit(self, batches: list[Batch], validation: Batch) -> dict[str, list]:
        keras = import_keras(require_tensorflow=True)

        class BatchDataset(keras.utils.PyDataset):
            def __init__(self, items: list[Batch]) -> None:
                super().__init__()
                self.items = items

            def __len__(self) -> int:
                return len(self.items)

            def __getitem__(self, index: int) -> Batch:
                return self.items[index]

        history = self.model.fit(BatchDataset(batches), epochs=1, validation_data=validation,
                                 verbose=0, shuffle=False)
        return history.history


def make_engines(names: list[str], model, seed: int) -> list[Engine]:
    """An engine per name, each holding ``model`` (minicnn) or its Keras twin with the
    same weights; Keras's generators (Dropout masks) seeded with ``seed``."""
    engines: list[Engine] = []
    for name in names:
        if name == "minicnn":
            engines.append(MinicnnEngine(model))
        elif name == "keras":
            keras = import_keras(require_tensorflow=True)
            keras.utils.set_random_seed(seed)
            engines.append(KerasEngine(to_keras(model)))
        else:
            raise ValueError(f"unknown engine {name!r}; expected one of {ENGINES}")
    return engines


def engine_versions(names: list[str]) -> dict[str, Any]:
    """The versions behind the numbers: minicnn's, and Keras's with its backend."""
    import minicnn

    versions: dict[str, Any] = {"minicnn": minicnn.__version__}
    if "keras" in names:
        keras = import_keras(require_tensorflow=True)
        versions.update(keras=keras.__version__, keras_backend=keras.backend.backend())
    return versions

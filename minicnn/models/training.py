"""The fit loop's pieces: batching, input checks, History and callbacks.

``Sequential.fit`` drives the loop; this module holds what does not depend on the model's
structure, so the loop in ``sequential.py`` reads as the algorithm it is::

    for epoch in epochs:
        for (x, y) in shuffled batches:
            forward -> loss -> backward -> optimizer step
        evaluate on the validation data
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np


class Callback:
    """Hooks called by ``fit``; subclass and override what you need (Keras names)."""

    model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]``, ``["val_accuracy"]``, ..."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks: list[Callback], model) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must be minicnn Callback instances, received {callback!r}")
            callback.set_model(model)

    def __getattr__(self, hook: str):
        def call_all(*args, **kwargs):
            for callback in self.callbacks:
                getattr(callback, hook)(*args, **kwargs)
        return call_all


# ---------------------------------------------------------------- input checks
def check_positive_int(value, argument: str) -> int:
    """``batch_size``, ``epochs``... must be positive integers (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{argument} must be a positive integer, received {value!r}")
    return int(value)


def check_features(x, argument: str = "x") -> np.ndarray:
    """An input array: numeric, non-empty and finite.  Returns it as an ndarray."""
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{argument} must be an array of numbers: {error}") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == np.bool_):
        raise TypeError(f"{argument} must be an array of numbers, received dtype {array.dtype}")
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"{argument} is empty (shape {array.shape}); expected at least one sample")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(
            f"{argument} contains {bad} NaN or infinite values; expected finite numbers")
    return array


def check_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets with the same number of samples."""
    x = check_features(x, "x")
    y = check_features(y, "y")
    if len(x) != len(y):
        raise ValueError(
            f"x and y must have the same number of samples, received {len(x)} inputs "
            f"and {len(y)} targets")
    return x, y


def split_validation(x: np.ndarray, y: np.ndarray, validation_split: float):
    """Keras's split: the *last* ``validation_split`` fraction, taken before shuffling.

    ``split_at = floor(N * (1 - validation_split))``.
    """
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), received {validation_split!r}")
    split_at = int(math.floor(len(x) * (1.0 - validation_split)))
    if split_at == 0 or split_at == len(x):
        raise ValueError(
            f"validation_split={validation_split} leaves an empty training or validation "
            f"set for {len(x)} samples")
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


def batch_slices(count: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of ``batch_size`` (the last one may be shorter)."""
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))

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
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from minicnn.metrics import Mean
from minicnn.models.progress import ProgressBar


class NonFiniteLossError(FloatingPointError):
    """The loss or a gradient became NaN or infinite; training stopped before the update.

    ``epoch`` and ``batch`` (0-based) say where, when raised by ``fit``; ``history``
    holds the epochs completed before it.
    """

    def __init__(self, reason: str, epoch: int | None = None, batch: int | None = None,
                 history: "History | None" = None) -> None:
        where = "" if epoch is None else f" at epoch {epoch + 1}, batch {batch + 1}"
        super().__init__(
            f"training stopped{where}: {reason}. The model keeps its last finite weights; "
            f"try a lower learning rate or check the data for extreme values")
        self.reason, self.epoch, self.batch, self.history = reason, epoch, batch, history


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
    # Real numbers only: complex values would be silently cut to their real part.
    if array.dtype == object or np.issubdtype(array.dtype, np.complexfloating) or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"{argument} must be an array of numbers (real, not complex), "
                        f"received dtype {array.dtype}")
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


# ------------------------------------------------------------------ the loop
@dataclass
class FitPosition:
    """Where ``fit`` is: enough to resume mid-epoch exactly (checkpoints store it).

    After batch ``step - 1`` of ``epoch`` has been applied: the epoch's sample ``order``,
    the running sums behind the epoch's logs, and the history of finished epochs.
    """

    epoch: int = 0
    step: int = 0
    order: np.ndarray | None = None
    sums: dict[str, tuple[float, float]] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)


def fit_loop(model, train, *, epochs: int, verbosity: int, callbacks: list[Callback],
             validation=None, initial_epoch: int = 0):
    """The training loop behind ``Sequential.fit`` (arguments already validated).

    ``train`` and ``validation`` are batch sources from :mod:`minicnn.models.data`.
    A callback may set ``model.resume_position`` in ``on_train_begin`` (BackupAndRestore
    does) to continue an interrupted run from that exact batch.
    """
    history = History()
    callback_list = CallbackList([history] + callbacks, model)
    model.history = history
    model.stop_training = False
    model.resume_position = None
    callback_list.on_train_begin()
    resume: FitPosition | None = model.resume_position
    model.resume_position = None
    first_epoch = initial_epoch
    if resume is not None:
        first_epoch = resume.epoch
        history.history = {key: list(values) for key, values in resume.history.items()}
        history.epoch = list(range(initial_epoch, resume.epoch))
    for epoch in range(first_epoch, epochs):
        if verbosity:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        callback_list.on_epoch_begin(epoch)
        started = time.perf_counter()
        trackers = {name: Mean() for name in model.metrics_names}
        first_step = 0
        if resume is not None and resume.epoch == epoch and resume.step > 0:
            if not train.resumable:
                raise ValueError("resuming mid-epoch needs array data (a generator cannot "
                                 "replay its batches); checkpoint once per epoch instead")
            # Mid-epoch: the same order, skip the batches already applied.
            train.start_epoch(resume.order)
            first_step = resume.step
            for name, (total, count) in resume.sums.items():
                trackers[name].total, trackers[name].count = total, count
        else:
            train.start_epoch()
        position = FitPosition(epoch=epoch, order=train.order, history=history.history)
        model.fit_position = position
        bar = ProgressBar(train.steps) if verbosity == 1 else None
        for step in range(first_step, train.steps):
            callback_list.on_train_batch_begin(step)
            x_batch, y_batch = train.batch(step)
            if not train.resumable:
                x_batch, y_batch = model.check_batch(x_batch, y_batch)
            try:
                loss_value, y_pred = model.training_step(x_batch, y_batch)
            except NonFiniteLossError as error:
                callback_list.on_train_end()
                raise NonFiniteLossError(error.reason, epoch, step, history) from None
            for name, value in model.batch_logs(y_batch, y_pred, loss_value).items():
                trackers[name].update(value, len(x_batch))
            position.step = step + 1
            position.sums = {name: (t.total, t.count) for name, t in trackers.items()}
            logs = {name: tracker.result() for name, tracker in trackers.items()}
            callback_list.on_train_batch_end(step, logs)
            if bar:
                bar.update(step + 1, logs)
            if model.stop_training:
                break
        train.end_epoch()
        logs = {name: tracker.result() for name, tracker in trackers.items()}
        if validation is not None:
            results = evaluate_loop(model, validation, verbosity=0)
            logs.update({f"val_{name}": value for name, value in results.items()})
        if bar:
            bar.finish(logs)
        elif verbosity == 2:
            print(f"{train.steps}/{train.steps} - {time.perf_counter() - started:.0f}s"
                  + "".join(f" - {k}: {v:.4f}" for k, v in logs.items()), flush=True)
        # The epoch is complete: a checkpoint taken now resumes at the next epoch.
        position.epoch, position.step, position.order, position.sums = epoch + 1, 0, None, {}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.fit_position = None
    callback_list.on_train_end()
    return history


def evaluate_loop(model, source, verbosity: int) -> dict[str, float]:
    """Mean loss and metrics over every batch of ``source``, weighted by batch size."""
    source.start_epoch()
    bar = ProgressBar(source.steps) if verbosity == 1 else None
    trackers = {name: Mean() for name in model.metrics_names}
    with model.inference_mode():
        for step in range(source.steps):
            x_batch, y_batch = source.batch(step)
            if not source.resumable:
                x_batch, y_batch = model.check_batch(x_batch, y_batch)
            y_pred = model.forward(x_batch, training=False)
            for name, value in model.batch_logs(y_batch, y_pred, loss_value=None).items():
                trackers[name].update(value, len(y_pred))
            if bar:
                bar.update(step + 1, {k: t.result() for k, t in trackers.items()})
    source.end_epoch()
    results = {name: tracker.result() for name, tracker in trackers.items()}
    if bar:
        bar.finish(results)
    return results


def predict_loop(model, source, verbosity: int) -> np.ndarray:
    """The model's outputs for every batch of ``source``, concatenated."""
    source.start_epoch()
    bar = ProgressBar(source.steps) if verbosity == 1 else None
    outputs = []
    with model.inference_mode():
        for step in range(source.steps):
            x_batch, _ = source.batch(step)
            if not source.resumable:
                x_batch = model.prepare_input(x_batch)
            outputs.append(model.forward(x_batch, training=False))
            if bar:
                bar.update(step + 1, {})
    source.end_epoch()
    if bar:
        bar.finish({})
    return np.concatenate(outputs, axis=0)


def verbosity_level(verbose) -> int:
    """Keras's "auto" means 1 (a live bar)."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', received {verbose!r}")
    return int(verbose)


def keras_return(results: dict[str, float], return_dict: bool):
    """Keras returns the loss alone without metrics, else [loss, *metrics]."""
    if return_dict:
        return results
    values = list(results.values())
    return values[0] if len(values) == 1 else values

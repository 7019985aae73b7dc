"""Callbacks with Keras's names: ``from minicnn.callbacks import ModelCheckpoint``.

``Callback`` and ``History`` live in :mod:`minicnn.models.training` with the loop; this
module adds ModelCheckpoint, BackupAndRestore and EpochTimer (the seconds of every epoch).

``BackupAndRestore`` makes training survive being killed: after every epoch (or every
``save_freq`` batches) it writes one checkpoint file atomically -- weights, optimizer
state, random-generator states, and the exact position in the epoch (the shuffled
order and the running sums of the logs) -- and when ``fit`` starts with a checkpoint
present it continues from that very batch.  Resumed and uninterrupted runs end with
bit-identical weights (same seed, same backend).

The checkpoint is an ordinary model file (``minicnn.load_model`` opens it) with the
training state stored beside the model.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from minicnn import random as minicnn_random
from minicnn.io import ModelFileError, read_model_file, save_model
from minicnn.models.training import Callback, FitPosition, History

CHECKPOINT_NAME = "checkpoint.npz"

__all__ = ["Callback", "History", "ModelCheckpoint", "BackupAndRestore", "EpochTimer"]


def _layer_generators(model) -> dict:
    """Generators owned by layers (seeded Dropout), keyed by layer position: names can
    differ between the run that saved and the one that resumes."""
    return {str(index): layer._rng for index, layer in enumerate(model.layers)
            if getattr(layer, "_rng", None) is not None}


def save_checkpoint(model, path: str | os.PathLike) -> Path:
    """Write the model and its training state (``model.fit_position``) to ``path``."""
    position: FitPosition | None = getattr(model, "fit_position", None)
    state = {
        "epoch": position.epoch if position else 0,
        "step": position.step if position else 0,
        "sums": position.sums if position else {},
        "history": position.history if position else {},
        "global_rng": minicnn_random.get_state(),
        "layer_rngs": {index: generator.bit_generator.state
                       for index, generator in _layer_generators(model).items()},
    }
    arrays = {}
    if position is not None and position.order is not None:
        arrays["order"] = position.order
    return save_model(model, path, extra={"training_state": state}, extra_arrays=arrays)


def restore_checkpoint(model, path: str | os.PathLike) -> FitPosition:
    """Load weights, optimizer and generator states from ``path`` into ``model``.

    Returns the position ``fit`` resumes from.

    Raises:
        ModelFileError: the file is not a readable model file, holds no training
            state (a plain model file), or its state does not fit ``model``.
    """
    arrays = read_model_file(path)
    try:
        return _restore(model, path, arrays)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
            RecursionError) as error:
        raise ModelFileError(
            f"checkpoint {str(path)!r} cannot be restored into this model: "
            f"{type(error).__name__}: {error}") from error


def _restore(model, path, arrays: dict[str, np.ndarray]) -> FitPosition:
    import json

    if "extra_json" not in arrays or "training_state" not in str(arrays["extra_json"]):
        raise ModelFileError(f"{str(path)!r} is a model file but not a training checkpoint "
                             f"(it holds no training state)")
    state = json.loads(str(arrays["extra_json"]))["training_state"]
    weights = sorted(name for name in arrays if name.startswith("weight_"))
    model.set_weights([arrays[name] for name in weights])
    slots = sorted(name for name in arrays if name.startswith("optimizer_slot_"))
    model.optimizer.set_state({"iterations": int(arrays["optimizer_iterations"]),
                               "slots": [arrays[name] for name in slots]},
                              model.trainable_weights)
    minicnn_random.set_state(state["global_rng"])
    generators = _layer_generators(model)
    if sorted(generators) != sorted(state["layer_rngs"]):
        raise ValueError(
            f"checkpoint {str(path)!r} was written by a model whose seeded layers sit at "
            f"positions {sorted(state['layer_rngs'])}, this model has {sorted(generators)}")
    for index, generator_state in state["layer_rngs"].items():
        generators[index].bit_generator.state = generator_state
    return FitPosition(epoch=state["epoch"], step=state["step"],
                       order=arrays.get("extra_array_order"),
                       sums={name: tuple(value) for name, value in state["sums"].items()},
                       history=state["history"])


class BackupAndRestore(Callback):
    """Back up training to ``backup_dir/checkpoint.npz`` and resume from it (as Keras's).

    Args:
        backup_dir: folder of the checkpoint.
        save_freq: "epoch", or an integer N to also save every N batches.
        delete_checkpoint: remove the checkpoint when training finishes normally.
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq="epoch",
                 delete_checkpoint: bool = True) -> None:
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq <= 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive integer, received "
                             f"{save_freq!r}")
        self.path = Path(backup_dir) / CHECKPOINT_NAME
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._batches_seen = 0

    def on_train_begin(self, logs=None) -> None:
        if self.path.exists():
            self.model.resume_position = restore_checkpoint(self.model, self.path)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._batches_seen += 1
        if self.save_freq != "epoch" and self._batches_seen % self.save_freq == 0:
            save_checkpoint(self.model, self.path)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        save_checkpoint(self.model, self.path)

    def on_train_end(self, logs=None) -> None:
        finished = not getattr(self.model, "stop_training", False)
        if self.delete_checkpoint and finished and self.path.exists():
            self.path.unlink()


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when ``monitor`` improves (as Keras's).

    Args:
        filepath: a ``.npz`` path; may hold ``{epoch}`` and log names as format fields,
            e.g. ``"runs/model-{epoch:02d}-{val_loss:.3f}.npz"`` (epoch counts from 1).
        monitor: the log to watch with ``save_best_only`` (default "val_loss").
        save_best_only: keep only the best model so far.
        mode: "min", "max" or "auto" (max for accuracies, min otherwise).
        save_weights_only: accepted for Keras compatibility; the file always holds the
            architecture too (it is small).
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch") -> None:
        if not str(filepath).endswith(".npz"):
            raise ValueError(f"ModelCheckpoint filepath must end in .npz, received {filepath!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', received {mode!r}")
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint saves once per epoch (save_freq='epoch'); "
                             "use BackupAndRestore(save_freq=N) for mid-epoch checkpoints")
        self.filepath = str(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.best = -math.inf if mode == "max" else math.inf

    def _improved(self, value: float) -> bool:
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise ValueError(
                    f"ModelCheckpoint monitors {self.monitor!r}, which is not in the logs "
                    f"{sorted(logs)}; pass validation data or choose another monitor")
            if not (np.isfinite(value) and self._improved(value)):
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} "
                      f"to {value:.5f}, saving model to {path}")
            self.best = value
        save_model(self.model, path)


class EpochTimer(Callback):
    """Records the seconds of every epoch: wall clock in ``epoch_seconds``, and the
    CPU time of this process (all its threads) in ``epoch_cpu_seconds``.

    Measured from ``on_epoch_begin`` to ``on_epoch_end``, so an epoch's time includes
    its validation pass (when there is one) but not the model building or the test
    evaluation. The CPU time is kept because on a shared machine the wall clock also
    counts the time other processes held the cores; CPU time counts only the work done
    here (and, with several threads, can exceed the wall clock).
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.epoch_cpu_seconds: list[float] = []
        self._started: tuple[float, float] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._started is not None:
            wall, cpu = self._started
            self.epoch_seconds.append(time.perf_counter() - wall)
            self.epoch_cpu_seconds.append(time.process_time() - cpu)
            self._started = None

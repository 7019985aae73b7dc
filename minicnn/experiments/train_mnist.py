"""``minicnn train mnist``: the chapter's MNIST recipe end to end, measured and saved.

The recipe (the book's section 5.1, and Keras's)::

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x = x.reshape((N, 28, 28, 1)).astype("float32") / 255     # (N, 784) for the dense model
    y = to_categorical(y)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, batch_size=64)      # 128 for the dense model
    test_loss, test_acc = model.evaluate(x_test, y_test)

What a run leaves in ``OUT``:

* ``model.npz``: the trained model (``minicnn.load_model`` reads it back);
* ``metrics.json``: test accuracy and loss, the seconds of every epoch, the training
  history, the options, the backend, the minicnn version and the seed;
* ``curves.png``: accuracy and loss per epoch (validation too when asked for), with
  the test result;
* ``checkpoint.npz``: written atomically after every epoch (and every N batches with
  ``checkpoint_every=N``) by :class:`minicnn.callbacks.BackupAndRestore`; a run started
  with ``resume=True`` continues from it and ends with the same weights, bit for bit, as
  a run never interrupted (same seed and backend). Without ``resume`` it is removed
  first, so a fresh run starts fresh.

:func:`compile_and_fit` is the part the studies in :mod:`minicnn.experiments` share.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.backend import using_backend
from minicnn.callbacks import EpochTimer
from minicnn.files import write_json
from minicnn.models.training import Callback

__all__ = ["CHECKPOINT_FILE", "CURVES_FILE", "METRICS_FILE", "MODEL_FILE", "compile_and_fit",
           "default_batch_size", "machine_description", "train_mnist"]

MODEL_FILE = "model.npz"
CHECKPOINT_FILE = "checkpoint.npz"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"

# The book's batch sizes: 64 for the convnet (chapter 5), 128 for the dense network (chapter 2).
_DENSE_BATCH_SIZE = 128
_CONVNET_BATCH_SIZE = 64


def default_batch_size(model_name: str) -> int:
    """The book's batch size for ``model_name``: 128 for ``dense``, 64 for the convnets."""
    return _DENSE_BATCH_SIZE if model_name == "dense" else _CONVNET_BATCH_SIZE


def compile_and_fit(model, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                    *, epochs: int, batch_size: int, optimizer: str, verbose: int,
                    validation_split: float = 0.0,
                    callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Compile ``model`` with the chapter's loss, train it, then evaluate it on the test set.

    Returns:
        ``{"test_loss", "test_accuracy", "epoch_seconds", "seconds_per_epoch",
        "epoch_cpu_seconds", "cpu_seconds_per_epoch", "history"}``; the ``per_epoch``
        values are means over the epochs (see :class:`~minicnn.callbacks.EpochTimer`),
        None when no epoch ran here (a resumed run whose checkpoint was already the
        last epoch).
    """
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    history = model.fit(*train, epochs=epochs, batch_size=batch_size, verbose=verbose,
                        callbacks=[timer, *(callbacks or [])],
                        validation_split=validation_split)
    test_loss, test_accuracy = model.evaluate(*test, batch_size=batch_size, verbose=0)
    return {
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "epoch_seconds": timer.epoch_seconds,
        "seconds_per_epoch": _mean_or_none(timer.epoch_seconds),
        "epoch_cpu_seconds": timer.epoch_cpu_seconds,
        "cpu_seconds_per_epoch": _mean_or_none(timer.epoch_cpu_seconds),
        "history": history.history,
    }


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def machine_description() -> dict[str, Any]:
    """What the timings depend on: CPU count, platform, NumPy and Numba versions."""
    description: dict[str, Any] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                   "python": platform.python_version(), "numpy": np.__version__}
    try:
        import numba

        description["numba"] = numba.__version__
    except ImportError:
        pass
    return description


def _prepare_out(out: Path, resume: bool) -> bool:
    """Clear what a fresh run must not reuse; True when a checkpoint will be resumed."""
    checkpoint = out / CHECKPOINT_FILE
    resuming = resume and checkpoint.exists()
    if not resume and checkpoint.exists():
        checkpoint.unlink()  # a fresh run must not pick up an old run's state
    # A process killed while writing leaves its temporary file (never a broken
    # output: the rename is atomic); clear those of the files this function writes.
    for name in (CHECKPOINT_FILE, MODEL_FILE, METRICS_FILE, CURVES_FILE):
        for leftover in out.glob(f".{name}.*.tmp") if out.is_dir() else ():
            leftover.unlink(missing_ok=True)
    return resuming


def train_mnist(model_name: str = "convnet", epochs: int = 5, batch_size: int | None = None,
                optimizer: str = "rmsprop", backend: str | None = None,
                out: str | os.PathLike[str] = "runs/mnist", seed: int | None = None,
                verbose: int = 1, validation_split: float = 0.0, resume: bool = False,
                checkpoint_every: int | None = None) -> dict[str, Any]:
    """Train one of the chapter's MNIST models, evaluate it on the test set, save everything.

    Args:
        model_name: ``"convnet"``, ``"dense"`` or ``"no-max-pool"`` (see
            :data:`minicnn.applications.registry.MNIST_CLASSIFIERS`).
        epochs: passes over the 60,000 training images (the book: 5).
        batch_size: default :func:`default_batch_size` (64 convnets, 128 dense).
        optimizer: a name ``compile`` accepts (the book: ``"rmsprop"``).
        backend: ``"numba"``, ``"numpy"`` or ``"reference"``; default the active one.
            The previous backend is restored afterwards.
        out: folder for ``model.npz``, ``metrics.json`` and ``curves.png``.
        seed: makes the run repeatable (weights, shuffling) via ``set_random_seed``.
        verbose: 1 a live progress bar and one line per epoch, 2 one line per epoch, 0 quiet.
        validation_split: fraction of the training images held out (the last ones,
            as Keras) to plot validation curves; 0 (the book's choice) trains on all.
        resume: continue from ``out/checkpoint.npz`` when it exists (else start
            fresh); without it an existing checkpoint is removed before training.
            Resume with the same options (batch size, model, data) as the first run.
        checkpoint_every: also write the checkpoint every N batches (default: only
            after every epoch).
    Returns:
        the dict written to ``metrics.json``.
    Raises:
        ValueError: unknown model name, bad option values.
    """
    import minicnn
    from minicnn.applications.registry import MNIST_CLASSIFIERS, build_mnist_classifier
    from minicnn.callbacks import BackupAndRestore
    from minicnn.datasets import mnist

    if model_name not in MNIST_CLASSIFIERS:
        raise ValueError(f"unknown MNIST model {model_name!r}; expected one of "
                         f"{sorted(MNIST_CLASSIFIERS)}")
    batch_size = default_batch_size(model_name) if batch_size is None else batch_size
    out = Path(out)
    # Checked before anything is removed or loaded: a bad value is a one-line error.
    backup = BackupAndRestore(out, save_freq="epoch" if checkpoint_every is None
                              else checkpoint_every, delete_checkpoint=False)
    resuming = _prepare_out(out, resume)
    with using_backend(backend) as backend_name:
        if seed is not None:
            minicnn.set_random_seed(seed)
        model = build_mnist_classifier(model_name)
        train, test = mnist.load_prepared(flatten=model_name == "dense")
        if verbose:
            print(f"minicnn: training {model_name} ({model.count_params():,} parameters) on "
                  f"{len(train[0]):,} images, backend {backend_name}, batch {batch_size}, "
                  f"{optimizer}" + (f", resuming from {out / CHECKPOINT_FILE}" if resuming else ""),
                  flush=True)
        result = compile_and_fit(model, train, test, epochs=epochs, batch_size=batch_size,
                                 optimizer=optimizer, verbose=verbose,
                                 validation_split=validation_split, callbacks=[backup])
    if verbose:
        timing = ("" if result["seconds_per_epoch"] is None else
                  f" - {result['seconds_per_epoch']:.1f} s per epoch "
                  f"({result['cpu_seconds_per_epoch']:.1f} s of CPU time)")
        print(f"test loss: {result['test_loss']:.4f} - test accuracy: {result['test_accuracy']:.4f}"
              f"{timing}", flush=True)

    # Keras's split keeps floor(N * (1 - split)) images for training.
    kept = int(np.floor(len(train[0]) * (1.0 - validation_split)))
    metrics = {
        "test_accuracy": result["test_accuracy"],
        "test_loss": result["test_loss"],
        "epoch_seconds": result["epoch_seconds"],
        "seconds_per_epoch": result["seconds_per_epoch"],
        "epoch_cpu_seconds": result["epoch_cpu_seconds"],
        "cpu_seconds_per_epoch": result["cpu_seconds_per_epoch"],
        "history": result["history"],
        "options": {"dataset": "mnist", "model": model_name, "epochs": epochs,
                    "batch_size": batch_size, "optimizer": optimizer,
                    "validation_split": validation_split, "seed": seed},
        # Epoch timings cover only the epochs run by this process when it resumed.
        "resumed": resuming,
        "backend": backend_name,
        "minicnn_version": minicnn.__version__,
        "seed": seed,
        "parameters": model.count_params(),
        "train_images": kept,
        "validation_images": len(train[0]) - kept,
        "test_images": len(test[0]),
        "machine": machine_description(),
    }
    model.save(str(out / MODEL_FILE))
    write_json(out / METRICS_FILE, metrics)
    from minicnn.plots import plot_training_curves

    plot_training_curves(result["history"], out / CURVES_FILE,
                         test={"loss": result["test_loss"], "accuracy": result["test_accuracy"]},
                         title=f"MNIST {model_name}")
    if verbose:
        print(f"minicnn: wrote {out / MODEL_FILE}, {out / METRICS_FILE}, {out / CURVES_FILE}")
    return metrics

"""Transfer learning inside the engine: what features learned on digits 0-4 buy for 5-9.

The book's point about small data ("reuse the convolutional base of a network trained
on a large data set"), measured with minicnn alone:

1. **Pretrain** the book's MNIST convnet (Conv 32 -> MaxPool -> Conv 64 -> MaxPool ->
   Conv 64 -> Flatten -> Dense 64 -> Dense 5) on every training image of digits 0-4
   (about 30,600). Done once per output folder and cached there
   (``pretrained_0-4.npz`` + ``pretrained_0-4.json``); a later run with the same
   pretraining options and data reuses it.
2. Then learn digits 5-9 from only ``labeled`` training images (default 100, drawn per
   seed, the same number of each digit), three ways, all on the *same* images:

   ======================  =====================================================
   scratch                 the whole convnet, freshly initialized
   feature-extraction      the pretrained convolutional base, frozen, with a new
                           Dense 64 -> Dense 5 head (only the head learns)
   fine-tuning             continues from feature-extraction: the last
                           convolution is unfrozen and trained jointly with the
                           head at a lower learning rate
   ======================  =====================================================

Each is tested on the full 5-9 test set (4,861 images of real MNIST), for every seed.

Outputs in ``OUT``: ``transfer.json`` (``{method: [test accuracy per seed]}``),
``transfer_details.json`` (options, pretraining, margins over scratch, histories),
``transfer.md`` (the table) and ``transfer.png`` (bars per seed and the mean). They
are rewritten after every seed, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METHODS", "SOURCE_DIGITS", "TARGET_DIGITS", "transfer_convnet", "digit_subset",
           "draw_labeled", "pretrain", "run_seed", "format_table", "run"]

METHODS = ("scratch", "feature-extraction", "fine-tuning")
SOURCE_DIGITS = (0, 1, 2, 3, 4)
TARGET_DIGITS = (5, 6, 7, 8, 9)

JSON_FILE = "transfer.json"
DETAILS_FILE = "transfer_details.json"
MARKDOWN_FILE = "transfer.md"
PLOT_FILE = "transfer.png"
PRETRAINED_FILE = "pretrained_0-4.npz"
PRETRAINED_INFO_FILE = "pretrained_0-4.json"

# The convolutional base is the first six layers (conv, pool, conv, pool, conv, flatten);
# the last convolution, the one fine-tuning unfreezes, is layer 4.
CONV_BASE_LAYERS = 6
LAST_CONV_INDEX = 4
PRETRAIN_BATCH_SIZE = 64  # the book's MNIST batch size


def transfer_convnet(classes: int = len(TARGET_DIGITS)):
    """The book's MNIST convnet with a ``classes``-way softmax (5 here, not 10).

    Returns:
        an uncompiled Sequential: (N, 28, 28, 1) -> conv base (N, 576) -> Dense 64 ->
        (N, classes).
    """
    from minicnn.applications.mnist_models import mnist_convnet

    return mnist_convnet(classes=classes)


def digit_subset(x: np.ndarray, digits: np.ndarray,
                 keep: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images whose digit is in ``keep``, with labels renumbered 0..len(keep)-1.

    Args:
        x: (N, 28, 28, 1) images.
        digits: (N,) integer digits.
        keep: the digits to keep, in label order (``(5, ..., 9)`` -> labels 0..4).
    Returns:
        ``(x_kept, labels)``: labels (M,) int64, ``labels[i] = keep.index(digit)``.
    """
    keep = list(keep)
    mask = np.isin(digits, keep)
    lookup = np.full(10, -1, dtype=np.int64)
    lookup[keep] = np.arange(len(keep))
    return x[mask], lookup[digits[mask]]


def draw_labeled(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indices of ``count`` training images, the same number of each class (the first
    ``count % classes`` classes get one more), drawn without replacement with ``seed``.

    Raises:
        ValueError: ``count`` smaller than the number of classes, or a class with too
            few images.
    """
    classes = int(labels.max()) + 1
    if count < classes:
        raise ValueError(f"--labeled must be at least {classes} (one image per class), "
                         f"received {count}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(classes):
        wanted = count // classes + (1 if label < count % classes else 0)
        available = np.flatnonzero(labels == label)
        if len(available) < wanted:
            raise ValueError(f"class {label} has only {len(available)} training images, "
                             f"{wanted} are needed for --labeled {count}")
        chosen.append(rng.choice(available, wanted, replace=False))
    return rng.permutation(np.concatenate(chosen))


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    from minicnn.utils import to_categorical

    return to_categorical(labels, classes)


def _fingerprint(x: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the pretraining data: a cache made from other data is not reused."""
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()


def pretrain(source_train: tuple[np.ndarray, np.ndarray],
             source_test: tuple[np.ndarray, np.ndarray], out: Path, epochs: int, seed: int,
             verbose: int = 1) -> tuple[Any, dict[str, Any]]:
    """The convnet trained on digits 0-4, from the cache in ``out`` when it matches.

    The cache is used when ``pretrained_0-4.json`` records the same epochs, seed,
    batch size and data fingerprint; otherwise the model is trained (RMSprop, batch 64,
    as the book) and both files are written.

    Returns:
        ``(model, info)``: info holds the options, the test accuracy on digits 0-4,
        the seconds spent and whether the cache was used.
    """
    import time

    import minicnn
    from minicnn.experiments.train_mnist import compile_and_fit
    from minicnn.files import write_json

    key = {"epochs": epochs, "seed": seed, "batch_size": PRETRAIN_BATCH_SIZE,
           "digits": list(SOURCE_DIGITS), "train_images": len(source_train[0]),
           "data_sha256": _fingerprint(*source_train)}
    model_path, info_path = out / PRETRAINED_FILE, out / PRETRAINED_INFO_FILE
    if model_path.is_file() and info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("key") == key:
            if verbose:
                print(f"minicnn: reusing the pretrained convnet in {model_path} "
                      f"(digits 0-4 test accuracy {info['test_accuracy']:.4f})", flush=True)
            return minicnn.load_model(str(model_path)), {**info, "cached": True}
    if verbose:
        print(f"minicnn: pretraining on {len(source_train[0]):,} images of digits 0-4, "
              f"{epochs} epoch(s)", flush=True)
    minicnn.set_random_seed(seed)
    model = transfer_convnet(len(SOURCE_DIGITS))
    started = time.perf_counter()
    classes = len(SOURCE_DIGITS)
    result = compile_and_fit(model, (source_train[0], _one_hot(source_train[1], classes)),
                             (source_test[0], _one_hot(source_test[1], classes)),
                             epochs=epochs, batch_size=PRETRAIN_BATCH_SIZE,
                             optimizer="rmsprop", verbose=verbose)
    info = {"key": key, "test_accuracy": result["test_accuracy"],
            "test_loss": result["test_loss"], "test_images": len(source_test[0]),
            "seconds": time.perf_counter() - started, "history": result["history"]}
    model.save(str(model_path))
    write_json(info_path, info)  # written last: it vouches for the model file
    if verbose:
        print(f"minicnn: pretrained, digits 0-4 test accuracy {info['test_accuracy']:.4f}; "
              f"cached in {model_path}", flush=True)
    return model, {**info, "cached": False}


def _with_pretrained_base(pretrained, freeze: bool):
    """A fresh 5-way convnet whose conv base holds ``pretrained``'s weights."""
    model = transfer_convnet(len(TARGET_DIGITS))
    for index in range(CONV_BASE_LAYERS):
        model.layers[index].set_weights(pretrained.layers[index].get_weights())
        model.layers[index].trainable = not freeze
    return model


def run_seed(pretrained, labeled: tuple[np.ndarray, np.ndarray],
             test: tuple[np.ndarray, np.ndarray], seed: int, epochs: int,
             fine_tune_epochs: int, batch_size: int, learning_rate: float,
             fine_tune_learning_rate: float) -> dict[str, dict[str, Any]]:
    """The three methods on the same labeled images; ``{method: {"test_accuracy",
    "test_loss", "history", "trainable_parameters"}}``."""
    import minicnn
    from minicnn.optimizers import RMSprop

    def train(model, epochs_here: int, rate: float) -> dict[str, Any]:
        model.compile(optimizer=RMSprop(learning_rate=rate), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(*labeled, epochs=epochs_here, batch_size=batch_size, verbose=0)
        loss, accuracy = model.evaluate(*test, batch_size=256, verbose=0)
        return {"test_accuracy": float(accuracy), "test_loss": float(loss),
                "history": history.history,
                "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_weights))}

    results = {}
    minicnn.set_random_seed(seed)
    results["scratch"] = train(transfer_convnet(len(TARGET_DIGITS)), epochs, learning_rate)
    minicnn.set_random_seed(seed)
    model = _with_pretrained_base(pretrained, freeze=True)
    results["feature-extraction"] = train(model, epochs, learning_rate)
    # Fine-tuning: the head is trained now, so unfreezing the top of the base will not
    # wreck it with large gradients; a lower learning rate keeps the changes small.
    model.layers[LAST_CONV_INDEX].trainable = True
    results["fine-tuning"] = train(model, fine_tune_epochs, fine_tune_learning_rate)
    return results


def _margins(accuracies: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Per seed, each transfer method's accuracy minus scratch's; their mean and min."""
    scratch = np.asarray(accuracies["scratch"])
    margins = {}
    for method in METHODS[1:]:
        per_seed = np.asarray(accuracies[method]) - scratch
        margins[method] = {"per_seed": per_seed.tolist(), "mean": float(per_seed.mean()),
                           "min": float(per_seed.min())}
    return margins


def format_table(accuracies: dict[str, list[float]], seeds: Sequence[int],
                 options: dict[str, Any], pretraining: dict[str, Any]) -> str:
    """The study as Markdown: one row per method, one column per seed, mean, margin."""
    done = len(accuracies["scratch"])
    seeds = list(seeds)[:done]
    margins = _margins(accuracies) if done else {}
    lines = [
        "# Transfer learning within minicnn (MNIST digits 0-4 -> 5-9)",
        "",
        f"Pretrained on {pretraining['key']['train_images']:,} images of digits 0-4 "
        f"({options['pretrain_epochs']} epoch(s), test accuracy on 0-4: "
        f"{100 * pretraining['test_accuracy']:.2f} %); then digits 5-9 from "
        f"{options['labeled']} labeled images per seed, tested on all "
        f"{options['test_images']:,} test images of 5-9. RMSprop {options['learning_rate']:g}, "
        f"{options['epochs']} epochs, batch {options['batch_size']}; fine-tuning: "
        f"{options['fine_tune_epochs']} more epochs at {options['fine_tune_learning_rate']:g} "
        f"with the last convolution unfrozen. Backend {options['backend']}.",
        "",
        "| method | " + " | ".join(f"seed {seed}" for seed in seeds)
        + " | mean | vs scratch: mean (min) |",
        "| --- |" + " ---: |" * (len(seeds) + 2),
    ]
    for method in METHODS:
        values = accuracies[method]
        versus = "" if method == "scratch" else (
            f"{100 * margins[method]['mean']:+.2f} ({100 * margins[method]['min']:+.2f}) points")
        lines.append(f"| {method} | " + " | ".join(f"{100 * v:.2f} %" for v in values)
                     + f" | {100 * float(np.mean(values)):.2f} % | {versus} |")
    lines.append("")
    return "\n".join(lines)


def _plot(accuracies: dict[str, list[float]], seeds: Sequence[int], path: Path,
          labeled: int) -> None:
    from minicnn.plots import plot_bars

    # Test *error*: bars of 90 % and 93 % accuracy look alike from zero; 10 % and 7 % do not.
    panels = [(f"seed {seed}: test error (%)",
               [100 * (1 - accuracies[method][index]) for method in METHODS], "{:.2f}")
              for index, seed in enumerate(list(seeds)[:len(accuracies["scratch"])])]
    panels.append(("mean test error over seeds (%)",
                   [100 * (1 - float(np.mean(accuracies[method]))) for method in METHODS],
                   "{:.2f}"))
    plot_bars(list(METHODS), panels, path,
              title=f"MNIST digits 5-9 from {labeled} labeled images, after pretraining on 0-4")


def run(labeled: int = 100, seeds: Sequence[int] = (0, 1, 2), epochs: int = 30,
        fine_tune_epochs: int | None = None, pretrain_epochs: int = 5, batch_size: int = 20,
        learning_rate: float = 1e-3, fine_tune_learning_rate: float = 1e-4,
        out: str | os.PathLike[str] = "runs/transfer", backend: str | None = None,
        pretrain_seed: int = 0, verbose: int = 1) -> dict[str, Any]:
    """Pretrain once on 0-4, then compare the three methods on 5-9 for every seed.

    Args:
        labeled: labeled training images of digits 5-9 per seed (balanced per digit).
        seeds: one run per seed; the seed draws the labeled images and the new weights.
        epochs: epochs of scratch and of feature extraction.
        fine_tune_epochs: further epochs of fine-tuning (default ``epochs``).
        pretrain_epochs: epochs of pretraining on digits 0-4 (1 is already enough).
        batch_size: batch size on the labeled images.
        learning_rate: RMSprop learning rate of scratch and feature extraction (Keras's
            default 1e-3).
        fine_tune_learning_rate: RMSprop learning rate of fine-tuning (lower: 1e-4).
        out: folder for the outputs and the cached pretrained model.
        backend: kernel backend (default the active one; restored afterwards).
        pretrain_seed: seed of the pretraining run.
        verbose: 0 quiet, 1 a progress bar while pretraining and a line per seed.
    Returns:
        ``{"accuracies": {method: [...]}, "margins", "options", "pretraining"}``.
    """
    import minicnn
    from minicnn.backend import using_backend
    from minicnn.datasets import mnist
    from minicnn.files import atomic_write, write_json
    from minicnn.models.training import check_positive_int

    labeled = check_positive_int(labeled, "labeled")
    epochs = check_positive_int(epochs, "epochs")
    fine_tune_epochs = check_positive_int(epochs if fine_tune_epochs is None else fine_tune_epochs,
                                          "fine_tune_epochs")
    pretrain_epochs = check_positive_int(pretrain_epochs, "pretrain_epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    seeds = [int(seed) for seed in seeds]
    if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, received {seeds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    (x_train, y_train), (x_test, y_test) = mnist.load_prepared(flatten=False)
    train_digits, test_digits = y_train.argmax(1), y_test.argmax(1)
    source_train = digit_subset(x_train, train_digits, SOURCE_DIGITS)
    source_test = digit_subset(x_test, test_digits, SOURCE_DIGITS)
    target_train = digit_subset(x_train, train_digits, TARGET_DIGITS)
    x_target_test, target_test_labels = digit_subset(x_test, test_digits, TARGET_DIGITS)
    for what, images in (("training images of digits 0-4", source_train[0]),
                         ("test images of digits 5-9", x_target_test)):
        if len(images) == 0:
            raise ValueError(f"the MNIST data holds no {what}")
    target_test = (x_target_test, _one_hot(target_test_labels, len(TARGET_DIGITS)))
    # Drawn before the (expensive) pretraining, so a bad --labeled fails at once.
    draws = {seed: draw_labeled(target_train[1], labeled, seed) for seed in seeds}

    accuracies: dict[str, list[float]] = {method: [] for method in METHODS}
    per_seed: list[dict[str, Any]] = []
    with using_backend(backend) as backend_name:
        options = {"labeled": labeled, "seeds": seeds, "epochs": epochs,
                   "fine_tune_epochs": fine_tune_epochs, "pretrain_epochs": pretrain_epochs,
                   "batch_size": batch_size, "learning_rate": learning_rate,
                   "fine_tune_learning_rate": fine_tune_learning_rate,
                   "pretrain_seed": pretrain_seed, "backend": backend_name,
                   "test_images": len(x_target_test), "minicnn_version": minicnn.__version__}
        pretrained, pretraining = pretrain(source_train, source_test, out, pretrain_epochs,
                                           pretrain_seed, verbose)
        for seed in seeds:
            indices = draws[seed]
            chosen = (target_train[0][indices],
                      _one_hot(target_train[1][indices], len(TARGET_DIGITS)))
            results = run_seed(pretrained, chosen, target_test, seed, epochs, fine_tune_epochs,
                               batch_size, learning_rate, fine_tune_learning_rate)
            for method in METHODS:
                accuracies[method].append(results[method]["test_accuracy"])
            per_seed.append({"seed": seed, "labeled_indices_sha256": hashlib.sha256(
                np.sort(indices).tobytes()).hexdigest(), "results": results})
            if verbose:
                print(f"seed {seed}: " + ", ".join(
                    f"{method} {results[method]['test_accuracy']:.4f}" for method in METHODS),
                    flush=True)
            # Rewritten after every seed: an interrupted run keeps what it measured.
            details = {"accuracies": accuracies, "margins": _margins(accuracies),
                       "options": options,
                       "pretraining": {k: v for k, v in pretraining.items() if k != "history"},
                       "per_seed": per_seed}
            write_json(out / JSON_FILE, accuracies)
            write_json(out / DETAILS_FILE, details)
            table = format_table(accuracies, seeds, options, pretraining)
            atomic_write(out / MARKDOWN_FILE, lambda handle: handle.write(table.encode()))
            _plot(accuracies, seeds, out / PLOT_FILE, labeled)
    print(table)
    if verbose:
        print(f"minicnn: wrote {out / JSON_FILE}, {out / DETAILS_FILE}, {out / MARKDOWN_FILE}, "
              f"{out / PLOT_FILE}")
    return {"accuracies": accuracies, "margins": _margins(accuracies), "options": options,
            "pretraining": pretraining}

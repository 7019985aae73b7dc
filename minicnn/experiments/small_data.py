"""The small-data lesson of the book's section 5.2, measured in the engine.

Section 5.2 trains a small convnet on 2,000 pictures, watches it overfit (training
accuracy climbs towards 100 % while validation accuracy stalls), then fights the
overfitting with data augmentation (5.2.5) and Dropout. Here the same four arms run on
the same data with the same budget, over several seeds:

=========  ==================================================================
plain      the convnet as it is
dropout    the same with Dropout(0.5) before the dense classifier
augment    the plain convnet, trained on randomly transformed copies of the
           training images (``minicnn.preprocessing.ImageDataGenerator``)
both       Dropout(0.5) and augmentation (the book's second model, 5.2.5)
=========  ==================================================================

Two data sets:

* **MNIST** (default): the chapter's MNIST convnet (section 5.1) learns from 2,000 real
  training digits (MNIST's first 2,000 training images), is validated on the next
  1,000 and tested on all 10,000 test images. RMSprop, batch 64. Augmentation for
  digits: rotations up to 15 degrees, shifts up to 0.1 of the size, zoom 0.9-1.1, shear
  up to 10 degrees, no flips (a flipped 2 is no digit). Dropout goes after Flatten.
* **An image folder** (``data=DIR``, with ``train/``, ``validation/``, ``test/`` and one
  subfolder per class, such as ``minicnn data mnist --export DIR --size 150`` makes):
  the chapter's 150x150 convnet (registry name ``cats-dogs-convnet``, whose Dropout the
  plain and augment arms leave out), RMSprop(1e-4), binary cross-entropy, batch 20, and
  the book's augmentation arguments as its code passes them (rotation 40, shifts 0.2,
  shear 0.2, zoom 0.2, horizontal flips, nearest fill; minicnn reads ``shear_range`` in
  degrees, as Keras 2 did from release 2.2 on).

Every arm sees every training image once per epoch (augmented arms see a new random
copy of each), so the four arms get the same number of optimizer steps. Pixels are
scaled to [0, 1] (``rescale=1/255`` for the folder). Within a seed every arm starts from
the same draw of the engine's generator.

Outputs in ``OUT`` (rewritten after every run, so an interrupted study keeps what it
measured): ``small_data.json`` (every number and history), ``small_data.md`` (the
table: test accuracy mean and range per arm) and ``small_data.png`` (training and
validation curves, means over the seeds; ``smooth`` applies the book's exponential
smoothing). See :mod:`minicnn.experiments.small_data_report`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARMS", "MNIST_AUGMENTATION", "CHAPTER_AUGMENTATION", "arm_model", "load_mnist_split",
           "load_folder_split", "train_arm", "run"]

# name -> (Dropout, augmentation, what it is); the order is the table's.
ARMS: dict[str, tuple[bool, bool, str]] = {
    "plain": (False, False, "the convnet alone"),
    "dropout": (True, False, "+ Dropout(0.5) before the classifier"),
    "augment": (False, True, "+ data augmentation"),
    "both": (True, True, "+ Dropout(0.5) and data augmentation"),
}

# Digits: small rotations, shifts, zoom and shear; never flips.
MNIST_AUGMENTATION: dict[str, Any] = {"rotation_range": 15, "width_shift_range": 0.1,
                                      "height_shift_range": 0.1, "shear_range": 10,
                                      "zoom_range": 0.1, "fill_mode": "nearest"}
# The book's ImageDataGenerator arguments (section 5.2.5), as its code passes them.
CHAPTER_AUGMENTATION: dict[str, Any] = {"rotation_range": 40, "width_shift_range": 0.2,
                                        "height_shift_range": 0.2, "shear_range": 0.2,
                                        "zoom_range": 0.2, "horizontal_flip": True,
                                        "fill_mode": "nearest"}

MNIST_BUDGET = {"batch_size": 64, "optimizer": "RMSprop (learning rate 1e-3)",
                "loss": "categorical_crossentropy"}
FOLDER_BUDGET = {"batch_size": 20, "optimizer": "RMSprop (learning rate 1e-4)",
                 "loss": "binary_crossentropy"}

Split = tuple[np.ndarray, np.ndarray]


def arm_model(kind: str, dropout: bool, image_size: int = 150):
    """The convnet of one arm, fresh (new random weights from the engine's generator).

    Args:
        kind: ``"mnist"`` (the registry's ``mnist-convnet``, 28x28x1, Dropout inserted
            after Flatten when ``dropout``) or ``"folder"`` (the registry's
            ``cats-dogs-convnet``, its Dropout removed unless ``dropout``, rebuilt for
            ``image_size`` x ``image_size`` x 3 inputs).
        dropout: with Dropout(0.5).
        image_size: the folder convnet's input side (150 in the book).
    Returns:
        an uncompiled, built ``Sequential``.
    """
    from minicnn.applications.registry import build_model
    from minicnn.layers import LAYER_CLASSES, Dropout, Flatten, Input
    from minicnn.models import Sequential

    if kind == "mnist":
        base = build_model("mnist-convnet")
        layers: list = [Input(tuple(base.input_shape[1:]))]
        for layer in base.layers:
            layers.append(layer)
            if dropout and isinstance(layer, Flatten):
                layers.append(Dropout(0.5))
        return Sequential(layers, name="mnist_convnet" + ("_dropout" if dropout else ""))
    if kind != "folder":
        raise ValueError(f"kind must be 'mnist' or 'folder', received {kind!r}")
    config = build_model("cats-dogs-convnet").get_config()
    layers = [Input((image_size, image_size, 3))]
    for entry in config["layers"]:
        if entry["class_name"] == "Dropout" and not dropout:
            continue
        layers.append(LAYER_CLASSES[entry["class_name"]].from_config(entry["config"]))
    return Sequential(layers, name="cats_dogs_convnet" + ("_dropout" if dropout else ""))


def load_mnist_split(train_images: int = 2000, validation_images: int = 1000,
                     test_images: int | None = None) -> dict[str, Split]:
    """MNIST as the MNIST arms use it.

    Returns:
        ``{"train", "validation", "test"}`` -> (x float32 (N, 28, 28, 1) in [0, 1],
        y float32 one-hot (N, 10)): MNIST's first ``train_images`` training images, the
        next ``validation_images``, and the first ``test_images`` test images (all
        when None).
    Raises:
        ValueError: MNIST (or its ``MINICNN_MNIST_SUBSET``) holds too few images.
    """
    from minicnn.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_prepared(flatten=False)
    if train_images < 1 or validation_images < 1:
        raise ValueError(f"train and validation images must be positive, received "
                         f"{train_images} and {validation_images}")
    if train_images + validation_images > len(x_train):
        raise ValueError(f"MNIST's training set holds {len(x_train)} images; the study needs "
                         f"{train_images} + {validation_images}")
    end = train_images + validation_images
    test_end = len(x_test) if test_images is None else min(test_images, len(x_test))
    return {"train": (x_train[:train_images], y_train[:train_images]),
            "validation": (x_train[train_images:end], y_train[train_images:end]),
            "test": (x_test[:test_end], y_test[:test_end])}


def load_folder_split(directory: str | os.PathLike, image_size: int) -> tuple[dict[str, Split],
                                                                              list[str]]:
    """An image folder's ``train``, ``validation`` and ``test`` subsets in memory.

    Returns:
        ``({subset: (x float32 (N, S, S, 3) in [0, 1], y float32 (N, 1) labels 0/1)},
        class names)``: images resized to ``image_size`` (nearest, as
        ``flow_from_directory``), classes in Keras's sorted order.
    Raises:
        ValueError: a subset is missing or empty, or there are not exactly two classes.
    """
    from minicnn.datasets.image_folder import load_data

    subsets: dict[str, Split] = {}
    names: list[str] | None = None
    for subset in ("train", "validation", "test"):
        folder = Path(directory) / subset
        x, labels, class_names = load_data(folder, target_size=(image_size, image_size),
                                           classes=names)
        if len(class_names) != 2 or len(x) == 0:
            raise ValueError(f"{str(folder)!r} must hold images in exactly two class folders "
                             f"(found {class_names} with {len(x)} images)")
        names = class_names
        subsets[subset] = (x / np.float32(255), labels.astype(np.float32).reshape(-1, 1))
    return subsets, list(names or [])


def train_arm(model, data: dict[str, Split], augmentation: dict[str, Any] | None, *,
              epochs: int, batch_size: int, learning_rate: float, loss: str, seed: int,
              verbose: int) -> dict[str, Any]:
    """Compile with RMSprop, train, test; the augmented arm draws its batches from
    ``ImageDataGenerator(**augmentation).flow(x, y, seed=seed)``.

    Returns:
        ``{"history", "test_loss", "test_accuracy", "seconds"}``.
    """
    from minicnn.optimizers import RMSprop
    from minicnn.preprocessing import ImageDataGenerator

    model.compile(optimizer=RMSprop(learning_rate=learning_rate), loss=loss,
                  metrics=["accuracy"])
    x, y = data["train"]
    started = time.perf_counter()
    if augmentation:
        batches = ImageDataGenerator(**augmentation).flow(x, y, batch_size=batch_size,
                                                          shuffle=True, seed=seed)
        history = model.fit(batches, epochs=epochs, validation_data=data["validation"],
                            verbose=verbose)
    else:
        history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True,
                            validation_data=data["validation"], verbose=verbose)
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(*data["test"], batch_size=256, verbose=0)
    return {"history": {key: [float(v) for v in values]
                        for key, values in history.history.items()},
            "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
            "seconds": seconds}


def run(epochs: int = 50, out: str | os.PathLike[str] = "runs/small-data",
        seeds: Sequence[int] = (0, 1, 2), arms: Sequence[str] | None = None,
        data: str | os.PathLike[str] | None = None, image_size: int = 150,
        train_images: int = 2000, validation_images: int = 1000,
        test_images: int | None = None, batch_size: int | None = None,
        smooth: float | None = None, backend: str | None = None,
        verbose: int = 1) -> dict[str, Any]:
    """Train every arm once per seed; print and save the table, the curves and the JSON.

    Args:
        epochs: epochs per run (the same for every arm).
        out: folder for ``small_data.json``, ``small_data.md``, ``small_data.png``.
        seeds: one run of every arm per seed.
        arms: a subset of :data:`ARMS` names (default all four, in the table's order).
        data: None for MNIST, or an image folder with train/validation/test subsets.
        image_size: the side images are resized to (``data`` only).
        train_images, validation_images, test_images: MNIST only (see
            :func:`load_mnist_split`).
        batch_size: default 64 (MNIST) or 20 (folder).
        smooth: the book's exponential smoothing factor for the curves (e.g. 0.8), or None.
        backend: kernel backend (default the active one; restored afterwards).
        verbose: passed to ``fit``.
    Returns:
        the dict written to ``small_data.json``: ``rows`` (per arm: means, ranges and
        ``runs``) and ``budget``.
    """
    import minicnn
    from minicnn.backend import using_backend
    from minicnn.experiments import small_data_report as report

    names = list(ARMS) if arms is None else list(arms)
    for name in names:
        if name not in ARMS:
            raise ValueError(f"unknown arm {name!r}; expected some of {list(ARMS)}")
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, received {seeds}")
    if smooth is not None and not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), received {smooth}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, received {epochs!r}")
    kind = "mnist" if data is None else "folder"
    if kind == "mnist":
        split = load_mnist_split(train_images, validation_images, test_images)
        class_names = [str(digit) for digit in range(10)]
        settings, augmentation, learning_rate = MNIST_BUDGET, MNIST_AUGMENTATION, 1e-3
    else:
        split, class_names = load_folder_split(data, image_size)
        settings, augmentation, learning_rate = FOLDER_BUDGET, CHAPTER_AUGMENTATION, 1e-4
    batch_size = settings["batch_size"] if batch_size is None else batch_size
    out = Path(out)
    rows: list[dict[str, Any]] = []
    with using_backend(backend) as backend_name:
        budget = {"data": "MNIST" if data is None else str(data), "model": kind,
                  "image_size": 28 if kind == "mnist" else image_size, "classes": class_names,
                  "epochs": epochs, "batch_size": batch_size,
                  "optimizer": settings["optimizer"], "loss": settings["loss"],
                  "augmentation": augmentation, "seeds": seeds, "backend": backend_name,
                  "images": {subset: len(x) for subset, (x, _) in split.items()},
                  "smooth": smooth, "minicnn_version": minicnn.__version__,
                  "cpu_count": os.cpu_count()}
        for name in names:
            dropout, augmented, description = ARMS[name]
            runs: list[dict[str, Any]] = []
            for seed in seeds:
                minicnn.set_random_seed(seed)
                model = arm_model(kind, dropout, image_size)
                if verbose:
                    print(f"\n== {name}: {description}, seed {seed}", flush=True)
                result = train_arm(model, split, augmentation if augmented else None,
                                   epochs=epochs, batch_size=batch_size,
                                   learning_rate=learning_rate, loss=settings["loss"],
                                   seed=seed, verbose=verbose)
                runs.append({"seed": seed, **result})
                if verbose:
                    print(f"{name}, seed {seed}: test accuracy {result['test_accuracy']:.4f} "
                          f"({result['seconds']:.0f} s)", flush=True)
                current = rows + [report.summarize(name, description, model, runs)]
                report.write_outputs(out, current, budget)
            rows = current
    print(report.format_table(rows, budget))
    if verbose:
        print(f"minicnn: wrote {out / report.JSON_FILE}, {out / report.MARKDOWN_FILE}, "
              f"{out / report.PLOT_FILE}")
    return {"rows": rows, "budget": budget}

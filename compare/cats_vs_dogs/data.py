"""The data of every step, made once by minicnn and fed to both engines.

Images come from a split folder (``DATA/train|validation|test/CLASS/``, two classes,
as ``split`` or ``minicnn data mnist --export`` make), read by minicnn's
``ImageDataGenerator(...).flow_from_directory(...)`` (the book's section 5.2.4):

* **training**: a seeded, shuffled iterator (augmented in the augment,
  extract-augment and finetune steps); each epoch's batches are drawn once and handed,
  the same arrays in the same order, to each engine (:class:`TrainingStream`);
* **validation and test**: every image once, in file order, held as arrays.

Pixels are scaled by ``rescale=1/255`` for the small convnet, or put through VGG16's
``preprocess_input`` for the VGG16 steps, by the generator, so neither model holds a
preprocessing layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from compare.cats_vs_dogs.split import SUBSETS

Batch = tuple[np.ndarray, np.ndarray]


def class_names(data: Path) -> list[str]:
    """The two class folders of ``DATA/train`` (Keras's sorted order: label 0, label 1),
    checked to be the same in every subset, each holding images.

    Raises:
        ValueError: a missing or empty subset, not two classes, or subsets that differ.
    """
    from minicnn.datasets.image_folder import find_classes, list_image_folder

    train = data / "train"
    if not train.is_dir():
        raise ValueError(f"{str(train)!r} is not a folder; run 'python -m compare.cats_vs_dogs "
                         f"split SRC {data}' or 'minicnn data mnist --export {data}' first")
    names = find_classes(train)
    if len(names) != 2:
        raise ValueError(f"{str(train)!r} must hold two class folders (binary "
                         f"classification, as cats vs dogs), found {names}")
    for subset in SUBSETS:
        folder = data / subset
        found = find_classes(folder) if folder.is_dir() else []
        if found != names:
            raise ValueError(f"{str(folder)!r} holds the class folders {found}, expected "
                             f"{names} as in {str(train)!r}")
        if list_image_folder(folder, classes=names).samples == 0:
            raise ValueError(f"{str(folder)!r} holds no images")
    return names


def generator(preprocessing: str, augment: bool):
    """minicnn's ``ImageDataGenerator``: ``rescale=1/255`` (``preprocessing="rescale"``)
    or VGG16's ``preprocess_input`` (``"vgg16"``), with the book's augmentation when
    ``augment``."""
    from minicnn.applications.vgg16 import preprocess_input
    from minicnn.preprocessing import ImageDataGenerator
    from compare.cats_vs_dogs.models import AUGMENTATION

    options: dict[str, Any] = dict(AUGMENTATION) if augment else {}
    if preprocessing == "rescale":
        options["rescale"] = 1.0 / 255
    elif preprocessing == "vgg16":
        options["preprocessing_function"] = preprocess_input
    else:
        raise ValueError(f"preprocessing must be 'rescale' or 'vgg16', received {preprocessing!r}")
    return ImageDataGenerator(**options)


def load_subset(data: Path, subset: str, names: list[str], image_size: int,
                preprocessing: str, batch_size: int) -> Batch:
    """Every image of ``subset`` once, in file order, preprocessed: (x (N, S, S, 3)
    float32, y (N,) float32 labels 0/1)."""
    iterator = generator(preprocessing, augment=False).flow_from_directory(
        data / subset, target_size=(image_size, image_size), classes=names,
        class_mode="binary", batch_size=batch_size, shuffle=False)
    xs, ys = zip(*(iterator[i] for i in range(len(iterator))))
    return np.concatenate(xs), np.concatenate(ys)


class TrainingStream:
    """The training batches, drawn once per epoch and shared by the engines.

    Args:
        data, names, image_size, preprocessing: see :func:`load_subset`.
        augment: the book's augmentation on every batch.
        batch_size: images per batch (the last batch of a pass may be smaller).
        seed: the iterator's seed (shuffles and augmentation draws repeat with it).
        steps: batches per epoch (default one pass over the training images).
    """

    def __init__(self, data: Path, names: list[str], image_size: int, preprocessing: str,
                 augment: bool, batch_size: int, seed: int, steps: int | None = None) -> None:
        self.iterator = generator(preprocessing, augment).flow_from_directory(
            data / "train", target_size=(image_size, image_size), classes=names,
            class_mode="binary", batch_size=batch_size, shuffle=True, seed=seed)
        self.steps = len(self.iterator) if steps is None else int(steps)
        if self.steps < 1:
            raise ValueError(f"--steps-per-epoch must be positive, received {steps}")
        self.samples = self.iterator.samples

    def next_epoch(self) -> list[Batch]:
        """The next ``steps`` batches (the iterator wraps around and reshuffles after
        each pass, as Keras 2's did)."""
        return [next(self.iterator) for _ in range(self.steps)]


class FeatureStream:
    """Batches of extracted features for the extract step: each engine trains on its
    own features, in the same shuffled order (one permutation per epoch, from ``seed``)."""

    def __init__(self, samples: int, batch_size: int, seed: int) -> None:
        self.samples, self.batch_size = samples, batch_size
        self.random_state = np.random.RandomState(seed)

    def next_order(self) -> np.ndarray:
        return self.random_state.permutation(self.samples)

    def batches(self, features: np.ndarray, labels: np.ndarray,
                order: np.ndarray) -> list[Batch]:
        """``features[order]`` cut into batches, flattened to (batch, H * W * C)."""
        flat = features.reshape(len(features), -1)
        return [(flat[order[i:i + self.batch_size]], labels[order[i:i + self.batch_size]])
                for i in range(0, self.samples, self.batch_size)]

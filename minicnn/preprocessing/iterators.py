"""Batch iterators over arrays and image folders, with Keras 2's order and randomness.

Both are *sequences* (``len`` = batches per epoch, ``it[i]`` = batch ``i``,
``on_epoch_end()`` reshuffles), which is what ``Sequential.fit`` accepts, and also
endless iterators (``next(it)``), as the book's ``for batch in datagen.flow(...)`` (section 5.2.5) uses.

Randomness follows Keras 2 draw for draw, but through a private
``numpy.random.RandomState`` instead of NumPy's global one (Keras calls
``np.random.seed``): with ``seed=s``, batch number ``k`` (counting every batch this
iterator has produced) starts from ``RandomState(s + k)``; the epoch's shuffle, when
one is due, is drawn first, then each image's transform in order. So
``ImageDataGenerator(...).flow(x, y, seed=s)`` yields the same batches as Keras 2's
with the same seed. Without a seed the stream starts from the engine's generator
(``minicnn.set_random_seed`` makes it repeatable).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np

from minicnn import random as minicnn_random


def _random_state_from_engine() -> np.random.RandomState:
    return np.random.RandomState(int(minicnn_random.generator().integers(2 ** 32)))


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}")
    return int(batch_size)


class Iterator:
    """Base class: batch order, shuffling and seeding (Keras 2's ``Iterator``).

    Subclasses implement ``_get_batches_of_transformed_samples(index_array)``.

    Args:
        n: number of samples.
        batch_size: samples per batch (the last batch of an epoch may be smaller).
        shuffle: reshuffle the order every epoch.
        seed: optional int; makes shuffles and transforms repeatable (see the module
            docstring for the exact scheme).
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int | None) -> None:
        self.n = int(n)
        self.batch_size = _check_batch_size(batch_size)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None, received {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.shuffle = bool(shuffle)
        self.batch_index = 0
        self.total_batches_seen = 0
        self.lock = threading.Lock()
        self.index_array: np.ndarray | None = None
        self.random_state = _random_state_from_engine() if self.seed is None else None
        self.index_generator = self._flow_index()

    def _reseed(self) -> None:
        if self.seed is not None:
            self.random_state = np.random.RandomState(self.seed + self.total_batches_seen)

    def _set_index_array(self) -> None:
        self.index_array = np.arange(self.n)
        if self.shuffle:
            self.index_array = self.random_state.permutation(self.n)

    def __getitem__(self, idx: int):
        if idx >= len(self):
            raise ValueError(f"Asked to retrieve element {idx}, but the Sequence has "
                             f"length {len(self)}")
        self._reseed()
        self.total_batches_seen += 1
        if self.index_array is None:
            self._set_index_array()
        index_array = self.index_array[self.batch_size * idx:self.batch_size * (idx + 1)]
        return self._get_batches_of_transformed_samples(index_array)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def on_epoch_end(self) -> None:
        """Draw the next epoch's order (called by ``fit`` after each epoch)."""
        self._set_index_array()

    def reset(self) -> None:
        self.batch_index = 0

    def _flow_index(self):
        """Index arrays for ``next()``: epoch after epoch, reshuffling at each start."""
        self.reset()
        while True:
            self._reseed()
            if self.batch_index == 0:
                self._set_index_array()
            current = 0 if self.n == 0 else (self.batch_index * self.batch_size) % self.n
            if self.n > current + self.batch_size:
                self.batch_index += 1
            else:
                self.batch_index = 0
            self.total_batches_seen += 1
            yield self.index_array[current:current + self.batch_size]

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self):
        """The next batch (endless: wraps around, reshuffling, after each epoch)."""
        with self.lock:
            index_array = next(self.index_generator)
            # The transforms draw from the same stream, so they stay under the lock.
            return self._get_batches_of_transformed_samples(index_array)

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray):
        raise NotImplementedError


class NumpyArrayIterator(Iterator):
    """Batches ``(x, y)`` of in-memory images, each augmented and standardized.

    Args:
        x: (N, H, W, C) images (channels-last; any real dtype, converted to ``dtype``).
        y: optional (N, ...) targets, returned as they are; None yields ``x`` batches only.
        image_data_generator: the ``ImageDataGenerator`` whose transforms apply.
        batch_size, shuffle, seed: see :class:`Iterator`.
        sample_weight: optional (N,) weights, returned as a third item.
        subset: ``"training"`` or ``"validation"`` with the generator's
            ``validation_split``: validation is the first ``int(N * split)`` samples.
        ignore_class_split: skip the check that both subsets hold the same classes.
        dtype: dtype of the batches (default float32).
    """

    def __init__(self, x, y, image_data_generator, batch_size: int = 32, shuffle: bool = False,
                 sample_weight=None, seed: int | None = None, subset: str | None = None,
                 ignore_class_split: bool = False, dtype: str | np.dtype = "float32") -> None:
        if isinstance(x, (tuple, list)):
            raise ValueError("x must be an array of images; Keras's (images, extra arrays) "
                             "tuple form is not supported")
        self.dtype = np.dtype(dtype)
        if y is not None and len(x) != len(y):
            raise ValueError(f"x (images) and y (labels) should have the same length; found "
                             f"x.shape = {np.shape(x)}, y.shape = {np.shape(y)}")
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError(f"x (images) and sample_weight should have the same length; found "
                             f"x.shape = {np.shape(x)}, sample_weight.shape = "
                             f"{np.shape(sample_weight)}")
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f"subset must be 'training' or 'validation', received {subset!r}")
            split = int(len(x) * image_data_generator._validation_split)
            if y is not None and not ignore_class_split and not np.array_equal(
                    np.unique(y[:split]), np.unique(y[split:])):
                raise ValueError("Training and validation subsets have different number of "
                                 "classes after the split. If your numpy arrays are sorted "
                                 "by the label, you might want to shuffle them.")
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x = x[part]
            y = None if y is None else y[part]
            sample_weight = None if sample_weight is None else sample_weight[part]
        self.x = np.asarray(x, dtype=self.dtype)
        if self.x.ndim != 4:
            raise ValueError(f"flow() needs images of rank 4 (N, H, W, C); received an array "
                             f"of shape {self.x.shape}")
        if self.x.shape[3] not in (1, 3, 4):
            warnings.warn(f"NumpyArrayIterator expects channels-last images with 1, 3 or 4 "
                          f"channels on axis 3; received shape {self.x.shape} "
                          f"({self.x.shape[3]} channels)", stacklevel=3)
        self.y = None if y is None else np.asarray(y)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self.image_data_generator = image_data_generator
        super().__init__(self.x.shape[0], batch_size, shuffle, seed)

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray):
        generator = self.image_data_generator
        batch_x = np.zeros((len(index_array),) + self.x.shape[1:], dtype=self.dtype)
        for i, j in enumerate(index_array):
            image = self.x[j]
            parameters = generator._draw_transform(image.shape, self.random_state)
            image = generator.apply_transform(image.astype(self.dtype), parameters)
            batch_x[i] = generator.standardize(image)
        if self.y is None:
            return batch_x
        if self.sample_weight is not None:
            return batch_x, self.y[index_array], self.sample_weight[index_array]
        return batch_x, self.y[index_array]


class DirectoryIterator(Iterator):
    """Batches read from a class-per-subfolder image tree (Keras 2's ``DirectoryIterator``).

    Attributes (as in Keras): ``class_indices`` ({name: index}), ``classes`` (int32
    label per file), ``filenames`` (relative paths), ``filepaths``, ``samples``,
    ``num_classes``, ``image_shape``.

    Args:
        directory: folder with one subfolder per class (see
            :mod:`minicnn.datasets.image_folder` for the listing rules).
        image_data_generator: the ``ImageDataGenerator`` (or None: no augmentation).
        target_size: ``(height, width)`` every image is resized to.
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"``.
        classes: optional class names in index order.
        class_mode: ``"categorical"`` (one-hot), ``"binary"`` (float 0/1 = class index),
            ``"sparse"`` (class index as float), ``"input"`` (the images themselves) or
            None (images only).
        batch_size, shuffle, seed: see :class:`Iterator`.
        follow_links: follow symbolic links inside class folders.
        subset: ``"training"``/``"validation"`` with the generator's ``validation_split``
            (validation is the first fraction of each class's files).
        interpolation: Pillow filter used when resizing.
        keep_aspect_ratio: centre-crop to the target aspect ratio before resizing.
        dtype: dtype of the batches (default float32).
    """

    allowed_class_modes = ("categorical", "binary", "sparse", "input", None)

    def __init__(self, directory, image_data_generator, target_size=(256, 256),
                 color_mode: str = "rgb", classes: list[str] | None = None,
                 class_mode: str | None = "categorical", batch_size: int = 32,
                 shuffle: bool = True, seed: int | None = None, follow_links: bool = False,
                 subset: str | None = None, interpolation: str = "nearest",
                 keep_aspect_ratio: bool = False, dtype: str | np.dtype = "float32",
                 verbose: bool = True) -> None:
        from minicnn.datasets import image_folder

        if class_mode not in self.allowed_class_modes:
            raise ValueError(f"class_mode must be one of {self.allowed_class_modes}, "
                             f"received {class_mode!r}")
        if color_mode not in image_folder.COLOR_MODES:
            raise ValueError(f"color_mode must be one of {image_folder.COLOR_MODES}, "
                             f"received {color_mode!r}")
        if interpolation not in image_folder.INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {image_folder.INTERPOLATIONS}, "
                             f"received {interpolation!r}")
        target_size = tuple(target_size)
        if len(target_size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0
                                            for v in target_size):
            raise ValueError(f"target_size must be (height, width) in pixels, "
                             f"received {target_size!r}")
        split = None
        if subset is not None:
            validation_split = image_data_generator._validation_split
            if subset == "validation":
                split = (0, validation_split)
            elif subset == "training":
                split = (validation_split, 1)
            else:
                raise ValueError(f"subset must be 'training' or 'validation', received {subset!r}")
        self.directory = directory
        self.image_data_generator = image_data_generator
        self.target_size = tuple(int(v) for v in target_size)
        self.color_mode = color_mode
        self.image_shape = self.target_size + ({"rgb": 3, "rgba": 4, "grayscale": 1}[color_mode],)
        self.class_mode = class_mode
        self.interpolation = interpolation
        self.keep_aspect_ratio = keep_aspect_ratio
        self.dtype = np.dtype(dtype)
        self.subset, self.split = subset, split
        folder = image_folder.list_image_folder(directory, classes, follow_links, split)
        self.folder = folder
        self.class_indices = dict(folder.class_indices)
        self.num_classes = len(folder.class_names)
        self.filenames = list(folder.filenames)
        self.classes = folder.classes
        self.samples = folder.samples
        self._filepaths = folder.filepaths
        if verbose:
            print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        if self.samples == 0:
            raise image_folder.ImageFolderError(
                f"no images found in the class folders {folder.class_names} of "
                f"{str(directory)!r} (looked for files ending in {image_folder.IMAGE_EXTENSIONS})")
        super().__init__(self.samples, batch_size, shuffle, seed)

    @property
    def filepaths(self) -> list[str]:
        return self._filepaths

    @property
    def labels(self) -> np.ndarray:
        return self.classes

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray):
        from minicnn.datasets import image_folder

        batch_x = np.zeros((len(index_array),) + self.image_shape, dtype=self.dtype)
        generator = self.image_data_generator
        for i, j in enumerate(index_array):
            image = image_folder.load_img(self._filepaths[j], self.color_mode, self.target_size,
                                          self.interpolation, self.keep_aspect_ratio)
            x = image_folder.img_to_array(image, self.dtype)
            image.close()
            if generator is not None:
                parameters = generator._draw_transform(x.shape, self.random_state)
                x = generator.apply_transform(x, parameters)
                x = generator.standardize(x)
            batch_x[i] = x
        if self.class_mode == "input":
            return batch_x, batch_x.copy()
        if self.class_mode in ("binary", "sparse"):
            return batch_x, self.classes[index_array].astype(self.dtype)
        if self.class_mode == "categorical":
            batch_y = np.zeros((len(batch_x), self.num_classes), dtype=self.dtype)
            batch_y[np.arange(len(batch_x)), self.classes[index_array]] = 1.0
            return batch_x, batch_y
        return batch_x

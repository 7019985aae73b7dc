"""``ImageDataGenerator``: Keras 2's real-time image augmentation, in NumPy.

    datagen = ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2,
                                 height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                                 horizontal_flip=True, fill_mode="nearest")
    train = datagen.flow_from_directory("data/train", target_size=(150, 150),
                                        batch_size=20, class_mode="binary")
    model.fit(train, steps_per_epoch=100, epochs=30)

Keras 3 removed this class; the book's code (sections 5.2.5 and 5.3) needs it. Arguments, defaults, parameter
draws (one ``numpy.random.RandomState`` draw sequence identical to Keras 2's) and the
transform itself (one affine resampling per image, see :mod:`.affine`) follow
``tf_keras/src/preprocessing/image.py``. Per image the order is Keras's: affine warp,
channel shift, horizontal flip, vertical flip, brightness; then ``standardize``
(``preprocessing_function``, ``rescale``, samplewise centring/normalization).

Two Keras 2 quirks kept on purpose, because results must match Keras:

* ``height_shift_range`` draws ``tx`` (scaled by the image *height*), and ``tx`` moves the
  content along *columns*; ``width_shift_range`` draws ``ty`` (scaled by the width),
  which moves it along rows. For square images the two ranges simply trade roles.
* an integer shift range ``n`` draws from ``{0, ..., n - 1}`` with a random sign
  (``np.random.choice(n)``), not from ``[-n, n]``.

Not supported (they need statistics from ``.fit(x)``): ``featurewise_center``,
``featurewise_std_normalization``, ``zca_whitening``; they raise ``ValueError``.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from minicnn.preprocessing.affine import FILL_MODES, apply_affine_transform, flip_axis
# The book imports these from here: image.load_img, image.img_to_array, image.array_to_img.
from minicnn.preprocessing.image_utils import array_to_img, img_to_array, load_img  # noqa: F401
from minicnn.preprocessing.iterators import DirectoryIterator, NumpyArrayIterator, \
    _random_state_from_engine

_UNSUPPORTED = ("featurewise_center", "featurewise_std_normalization", "zca_whitening")


def _check_number(name: str, value: Any, minimum: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < minimum:
        raise ValueError(f"{name} must be a number >= {minimum}, received {value!r}")


def _check_shift_range(name: str, value: Any) -> None:
    """A shift range is a number (fraction if < 1, else pixels) or a list of choices."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) == 0 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                      for v in value):
            raise ValueError(f"{name} must be a number or a non-empty list of numbers, "
                             f"received {value!r}")
        return
    _check_number(name, value)


def apply_channel_shift(x: np.ndarray, intensity: float, channel_axis: int = 0) -> np.ndarray:
    """Add ``intensity`` to every channel, clipped to the image's own [min, max] (Keras 2)."""
    x = np.rollaxis(x, channel_axis, 0)
    min_x, max_x = np.min(x), np.max(x)
    channel_images = [np.clip(x_channel + intensity, min_x, max_x) for x_channel in x]
    x = np.stack(channel_images, axis=0)
    return np.rollaxis(x, 0, channel_axis + 1)


def apply_brightness_shift(x: np.ndarray, brightness: float, scale: bool = True) -> np.ndarray:
    """Keras 2's brightness shift through Pillow's ``ImageEnhance.Brightness``.

    The image goes through 8-bit pixels (as in Keras): values are truncated to integers,
    or, when outside [0, 255] (or ``scale``), first stretched to [0, 255]; with
    ``scale=False`` a stretched image is mapped back to its original range.
    """
    from PIL import Image, ImageEnhance

    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] not in (1, 3, 4):
        raise ValueError(f"brightness shifts need an (H, W, 1|3|4) image, received {x.shape}")
    x_min, x_max = np.min(x), np.max(x)
    local_scale = (x_min < 0) or (x_max > 255)
    pixels = np.asarray(x, dtype=np.float32)
    if local_scale or scale:
        pixels = pixels - np.min(pixels)
        top = np.max(pixels)
        if top != 0:
            pixels /= top
        pixels *= 255
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    data = pixels.astype("uint8")
    image = Image.fromarray(data[:, :, 0] if mode == "L" else data, mode)
    image = ImageEnhance.Brightness(image).enhance(brightness)
    result = np.asarray(image, dtype=np.float32)
    if result.ndim == 2:
        result = result[:, :, None]
    if not scale and local_scale:
        result = result / 255 * (x_max - x_min) + x_min
    return result


class ImageDataGenerator:
    """Random augmentation and rescaling of image batches (Keras 2's arguments and defaults).

    Args:
        samplewise_center: subtract each image's mean.
        samplewise_std_normalization: divide each image by its standard deviation (+1e-6).
        rotation_range: degrees; the angle is uniform in [-range, range].
        width_shift_range, height_shift_range: a float < 1 is a fraction of the image
            size, >= 1 a number of pixels (uniform in [-range, range]); an int n draws
            from {0..n-1} with a random sign; a list draws one of its values with a sign.
        brightness_range: optional (low, high) factors for Pillow's brightness enhancer.
        shear_range: degrees (counter-clockwise), uniform in [-range, range].
        zoom_range: float z for [1 - z, 1 + z], or [low, high]; x and y draw separately.
        channel_shift_range: uniform intensity added to all channels (clipped to the
            image's range).
        fill_mode: "nearest" (default), "constant", "reflect" or "wrap" (see
            :mod:`minicnn.preprocessing.affine` for what each does at the borders).
        cval: fill value for "constant".
        horizontal_flip, vertical_flip: flip half of the images.
        rescale: multiply by this after transforming (e.g. 1/255); None or 0 = no rescaling.
        preprocessing_function: applied to each image (after augmentation, before rescale).
        data_format: only "channels_last" (or None).
        validation_split: fraction held out for ``subset="validation"``.
        interpolation_order: 1 (bilinear, default) or 0 (nearest neighbour).
        dtype: dtype of the batches (default float32).
        featurewise_center, featurewise_std_normalization, zca_whitening, zca_epsilon:
            accepted for Keras compatibility; True raises ``ValueError`` (not supported).
    """

    def __init__(self, featurewise_center: bool = False, samplewise_center: bool = False,
                 featurewise_std_normalization: bool = False,
                 samplewise_std_normalization: bool = False, zca_whitening: bool = False,
                 zca_epsilon: float = 1e-6, rotation_range: float = 0,
                 width_shift_range: Any = 0.0, height_shift_range: Any = 0.0,
                 brightness_range: tuple[float, float] | None = None, shear_range: float = 0.0,
                 zoom_range: Any = 0.0, channel_shift_range: float = 0.0,
                 fill_mode: str = "nearest", cval: float = 0.0, horizontal_flip: bool = False,
                 vertical_flip: bool = False, rescale: float | None = None,
                 preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
                 data_format: str | None = None, validation_split: float = 0.0,
                 interpolation_order: int = 1, dtype: str | np.dtype | None = None) -> None:
        for name, value in (("featurewise_center", featurewise_center),
                            ("featurewise_std_normalization", featurewise_std_normalization),
                            ("zca_whitening", zca_whitening)):
            if value:
                raise ValueError(
                    f"ImageDataGenerator({name}={value!r}) is not supported by minicnn: it "
                    f"needs dataset statistics from .fit(x). Normalize the arrays beforehand "
                    f"(x = (x - mean) / std), or use samplewise_center / "
                    f"samplewise_std_normalization / rescale.")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"data_format must be 'channels_last' (minicnn is NHWC), "
                             f"received {data_format!r}")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, received {fill_mode!r}")
        if interpolation_order not in (0, 1):
            raise ValueError(f"interpolation_order must be 0 or 1 (SciPy's higher-order "
                             f"splines are not implemented), received {interpolation_order!r}")
        _check_number("rotation_range", rotation_range)
        _check_number("shear_range", shear_range)
        _check_number("channel_shift_range", channel_shift_range)
        _check_number("cval", cval, minimum=-np.inf)
        _check_shift_range("width_shift_range", width_shift_range)
        _check_shift_range("height_shift_range", height_shift_range)
        if isinstance(width_shift_range, np.ndarray):
            width_shift_range = width_shift_range.tolist()
        if isinstance(height_shift_range, np.ndarray):
            height_shift_range = height_shift_range.tolist()
        if rescale is not None:
            _check_number("rescale", rescale, minimum=-np.inf)
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise ValueError(f"preprocessing_function must be callable, "
                             f"received {preprocessing_function!r}")
        if validation_split and not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be strictly between 0 and 1, "
                             f"received {validation_split!r}")
        if isinstance(zoom_range, (float, int)) and not isinstance(zoom_range, bool):
            self.zoom_range = [1 - zoom_range, 1 + zoom_range]
        elif isinstance(zoom_range, (list, tuple)) and len(zoom_range) == 2 and all(
                isinstance(v, (float, int)) for v in zoom_range):
            self.zoom_range = [zoom_range[0], zoom_range[1]]
        else:
            raise ValueError(f"zoom_range should be a float or a tuple or list of two floats, "
                             f"received {zoom_range!r}")
        if brightness_range is not None and (
                not isinstance(brightness_range, (tuple, list)) or len(brightness_range) != 2):
            raise ValueError(f"brightness_range should be a tuple or list of two floats, "
                             f"received {brightness_range!r}")
        self.featurewise_center = False
        self.featurewise_std_normalization = False
        self.zca_whitening = False
        self.zca_epsilon = zca_epsilon
        self.samplewise_center = samplewise_center or samplewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.brightness_range = brightness_range
        self.shear_range = shear_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = "channels_last"
        self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        self._validation_split = validation_split
        self.interpolation_order = interpolation_order
        self.dtype = np.dtype("float32" if dtype is None else dtype)
        self._random_state: np.random.RandomState | None = None

    # -- iterators -------------------------------------------------------------------

    def flow(self, x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 32,
             shuffle: bool = True, sample_weight: np.ndarray | None = None,
             seed: int | None = None, subset: str | None = None,
             ignore_class_split: bool = False) -> NumpyArrayIterator:
        """Batches of augmented copies of the images ``x`` (N, H, W, C) with their ``y``.

        Returns:
            A :class:`NumpyArrayIterator`: ``it[i]`` is ``(x_batch, y_batch)`` (just
            ``x_batch`` when ``y`` is None; ``(x, y, sample_weight)`` with weights).
        """
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle,
                                  sample_weight=sample_weight, seed=seed, subset=subset,
                                  ignore_class_split=ignore_class_split, dtype=self.dtype)

    def flow_from_directory(self, directory, target_size: tuple[int, int] = (256, 256),
                            color_mode: str = "rgb", classes: list[str] | None = None,
                            class_mode: str | None = "categorical", batch_size: int = 32,
                            shuffle: bool = True, seed: int | None = None,
                            follow_links: bool = False, subset: str | None = None,
                            interpolation: str = "nearest",
                            keep_aspect_ratio: bool = False) -> DirectoryIterator:
        """Batches of augmented images read from ``directory``'s class subfolders.

        Returns:
            A :class:`DirectoryIterator` (``class_indices``, ``classes``, ``filenames``,
            ``samples`` as in Keras); batches are ``(x, y)`` with x
            (batch, *target_size, channels) and y as ``class_mode`` says.
        """
        return DirectoryIterator(directory, self, target_size=target_size,
                                 color_mode=color_mode, classes=classes, class_mode=class_mode,
                                 batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 follow_links=follow_links, subset=subset,
                                 interpolation=interpolation,
                                 keep_aspect_ratio=keep_aspect_ratio, dtype=self.dtype)

    def fit(self, x, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Not supported: featurewise statistics (see the class docstring)."""
        raise NotImplementedError(
            "ImageDataGenerator.fit computes featurewise statistics, which minicnn does not "
            "support; normalize the arrays beforehand or use rescale/samplewise options")

    # -- one image ---------------------------------------------------------------------

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """``preprocessing_function``, ``rescale``, samplewise centring/scaling, in place
        where the dtype allows (as Keras)."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        return x

    def _stream(self) -> np.random.RandomState:
        if self._random_state is None:
            self._random_state = _random_state_from_engine()
        return self._random_state

    def get_random_transform(self, img_shape: tuple[int, ...], seed: int | None = None) -> dict:
        """Random transform parameters for an image of ``img_shape`` (H, W, C).

        Returns:
            ``{"theta", "tx", "ty", "shear", "zx", "zy", "flip_horizontal",
            "flip_vertical", "channel_shift_intensity", "brightness"}`` drawn as Keras 2
            draws them; with ``seed``, exactly the values Keras 2 draws for that seed.
        """
        random_state = np.random.RandomState(seed) if seed is not None else self._stream()
        return self._draw_transform(img_shape, random_state)

    def _draw_shift(self, shift_range: Any, size: int, random_state) -> float:
        if not shift_range:
            return 0
        try:  # an int or a list: one of the choices, with a random sign
            shift = random_state.choice(shift_range)
            shift *= random_state.choice([-1, 1])
        except ValueError:  # a float: uniform in [-range, range]
            shift = random_state.uniform(-shift_range, shift_range)
        if np.max(shift_range) < 1:
            shift *= size
        return shift

    def _draw_transform(self, img_shape: tuple[int, ...], random_state) -> dict:
        """The draws of Keras 2's ``get_random_transform``, in its order, from ``random_state``."""
        row_axis, col_axis = self.row_axis - 1, self.col_axis - 1
        theta = (random_state.uniform(-self.rotation_range, self.rotation_range)
                 if self.rotation_range else 0)
        tx = self._draw_shift(self.height_shift_range, img_shape[row_axis], random_state)
        ty = self._draw_shift(self.width_shift_range, img_shape[col_axis], random_state)
        shear = (random_state.uniform(-self.shear_range, self.shear_range)
                 if self.shear_range else 0)
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = random_state.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = (random_state.random_sample() < 0.5) * self.horizontal_flip
        flip_vertical = (random_state.random_sample() < 0.5) * self.vertical_flip
        channel_shift_intensity = None
        if self.channel_shift_range != 0:
            channel_shift_intensity = random_state.uniform(-self.channel_shift_range,
                                                           self.channel_shift_range)
        brightness = None
        if self.brightness_range is not None:
            brightness = random_state.uniform(self.brightness_range[0], self.brightness_range[1])
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": flip_horizontal, "flip_vertical": flip_vertical,
                "channel_shift_intensity": channel_shift_intensity, "brightness": brightness}

    def apply_transform(self, x: np.ndarray, transform_parameters: dict) -> np.ndarray:
        """Transform one (H, W, C) image by the given parameters (Keras 2's keys and order).

        Keys (all optional): ``theta`` (degrees), ``tx``, ``ty`` (pixels; see the module
        docstring for their axes), ``shear`` (degrees), ``zx``, ``zy``,
        ``flip_horizontal``, ``flip_vertical``, ``channel_shift_intensity``,
        ``brightness``. The geometric part is one resampling.

        Returns:
            A new array, same shape (and dtype, except where Keras's own arithmetic
            promotes it); equal to ``x`` when every parameter is neutral.
        """
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"apply_transform needs one image (H, W, C), received shape "
                             f"{x.shape}")
        unknown = set(transform_parameters) - {
            "theta", "tx", "ty", "shear", "zx", "zy", "flip_horizontal", "flip_vertical",
            "channel_shift_intensity", "brightness"}
        if unknown:
            raise ValueError(f"unknown transform parameters {sorted(unknown)}")
        row_axis, col_axis, channel_axis = self.row_axis - 1, self.col_axis - 1, \
            self.channel_axis - 1
        x = apply_affine_transform(
            x, transform_parameters.get("theta", 0), transform_parameters.get("tx", 0),
            transform_parameters.get("ty", 0), transform_parameters.get("shear", 0),
            transform_parameters.get("zx", 1), transform_parameters.get("zy", 1),
            row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
            fill_mode=self.fill_mode, cval=self.cval, order=self.interpolation_order)
        if transform_parameters.get("channel_shift_intensity") is not None:
            x = apply_channel_shift(x, transform_parameters["channel_shift_intensity"],
                                    channel_axis)
        if transform_parameters.get("flip_horizontal", False):
            x = flip_axis(x, col_axis)
        if transform_parameters.get("flip_vertical", False):
            x = flip_axis(x, row_axis)
        if transform_parameters.get("brightness") is not None:
            x = apply_brightness_shift(x, transform_parameters["brightness"], False)
        return np.array(x, copy=True)

    def random_transform(self, x: np.ndarray, seed: int | None = None) -> np.ndarray:
        """``apply_transform(x, get_random_transform(x.shape, seed))``."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

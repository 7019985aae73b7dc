"""Keras's image helpers, where the book imports them (``from keras.preprocessing import image``):

    from minicnn.preprocessing import image
    img = image.load_img(img_path, target_size=(150, 150))   # a PIL image
    x = image.img_to_array(img)                              # float32 (150, 150, 3)
    x = x.reshape((1,) + x.shape)
    image.array_to_img(x[0])                                 # back to a PIL image

Semantics of ``keras/src/utils/image_utils.py``: arrays are (H, W, C) ("channels_last")
or (C, H, W) with ``data_format="channels_first"``, float32 by default; ``array_to_img``
rescales the values to 0-255 unless ``scale=False``.  Reading the file is
:func:`minicnn.datasets.image_folder.load_img` (errors name the file).
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.datasets import image_folder

DATA_FORMATS = ("channels_last", "channels_first")


def _data_format(data_format: str | None) -> str:
    data_format = "channels_last" if data_format is None else data_format
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}, received {data_format!r}")
    return data_format


def load_img(path: str | os.PathLike, grayscale: bool = False, color_mode: str = "rgb",
             target_size: tuple[int, int] | None = None, interpolation: str = "nearest",
             keep_aspect_ratio: bool = False):
    """The image file at ``path`` as a PIL image (Keras's ``load_img``).

    Args:
        path: the file.
        grayscale: Keras 2's ``color_mode="grayscale"``.
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"``.
        target_size: ``(height, width)``, or None for the file's own size.
        interpolation: the resampling filter when resizing (``"nearest"``, ``"bilinear"``, ...).
        keep_aspect_ratio: crop the centre to the target's aspect ratio before resizing.
    """
    if grayscale:
        color_mode = "grayscale"
    return image_folder.load_img(path, color_mode, target_size, interpolation, keep_aspect_ratio)


def img_to_array(img, data_format: str | None = None, dtype: str | None = None) -> np.ndarray:
    """A PIL image (or array) as a 3-D array: (H, W, C), or (C, H, W) for channels_first.

    Grayscale images get a channel axis of 1.  Values stay 0-255; ``dtype`` float32.
    """
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype="float32" if dtype is None else dtype)
    if x.ndim == 3:
        return x.transpose(2, 0, 1) if data_format == "channels_first" else x
    if x.ndim == 2:
        return x[None] if data_format == "channels_first" else x[:, :, None]
    raise ValueError(f"Unsupported image shape: {x.shape}")


def array_to_img(x, data_format: str | None = None, scale: bool = True,
                 dtype: str | None = None):
    """A 3-D array as a PIL image (RGB for 3 channels, RGBA for 4, L or I for 1).

    With ``scale`` the values are mapped to 0-255: ``(x - min) / (max - min) * 255``
    (only ``x - min`` when all values are equal), as Keras does.
    """
    from PIL import Image

    data_format = _data_format(data_format)
    x = np.array(x, dtype="float32" if dtype is None else dtype)
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). "
                         f"Got array with shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            # 32-bit signed integer grayscale (PIL mode "I").
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}")

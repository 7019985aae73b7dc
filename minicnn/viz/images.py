"""Images in and out of the views: reading a file for a model, and resizing heatmaps."""

from __future__ import annotations

import os

import numpy as np

# ITU-R BT.601 luma weights, as PIL's convert("L") uses.
_LUMA = np.array([0.299, 0.587, 0.114])


def resize_bilinear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) or (h, w, C) array to ``size = (H, W)``.

    Half-pixel centres, as ``tf.image.resize(..., "bilinear")`` (antialias off): output
    pixel ``i`` samples the input at ``(i + 0.5) * h / H - 0.5``, clamped to the edges.
    Used to bring a Grad-CAM heatmap (the layer's resolution) up to the input's.
    """
    array = np.asarray(array, dtype=np.float64)
    height, width = array.shape[:2]
    out_height, out_width = (int(size[0]), int(size[1]))

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        position = np.clip(position, 0, n_in - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, position - low

    top, bottom, fy = axis(height, out_height)
    left, right, fx = axis(width, out_width)
    fy = fy.reshape((-1, 1) + (1,) * (array.ndim - 2))
    fx = fx.reshape((1, -1) + (1,) * (array.ndim - 2))
    upper = array[top][:, left] * (1 - fx) + array[top][:, right] * fx
    lower = array[bottom][:, left] * (1 - fx) + array[bottom][:, right] * fx
    return upper * (1 - fy) + lower * fy


def load_image(path: str | os.PathLike, size: tuple[int, int] | None = None,
               channels: int = 3) -> np.ndarray:
    """Read an image file (PNG, JPEG, ... through Pillow) as float32 in [0, 1].

    Args:
        path: the file.
        size: (H, W) to resize to (bilinear, with Pillow's antialiasing when shrinking);
            None keeps the file's size.
        channels: 1 (grey, luma) or 3 (RGB); an alpha channel is dropped.
    Returns:
        (H, W, channels) float32 in [0, 1].
    Raises:
        OSError: the file is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, received {channels!r}")
    try:
        with Image.open(path) as opened:
            picture = opened.convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise OSError(f"image file {str(path)!r} does not exist") from None
    except UnidentifiedImageError as error:
        raise OSError(f"{str(path)!r} is not an image file Pillow can read: {error}") from None
    if size is not None:
        picture = picture.resize((int(size[1]), int(size[0])), Image.BILINEAR)
    array = np.asarray(picture, dtype=np.float32) / 255.0
    return array.reshape(array.shape[0], array.shape[1], channels)


def image_for_model(model, path: str | os.PathLike, invert: bool = False) -> np.ndarray:
    """An image file shaped for ``model``: resized to its input, grey or RGB, in [0, 1].

    ``invert`` turns dark-on-light drawings into MNIST's light-on-dark.
    """
    height, width, channels = model.input_shape[1:]
    if channels not in (1, 3):
        raise ValueError(f"model {model.name!r} takes {channels} channels; image files give "
                         "1 (grey) or 3 (RGB)")
    image = load_image(path, (height, width), channels)
    return 1.0 - image if invert else image


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W) luma of an (H, W, 1) or (H, W, 3) image."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.shape[-1] == 1:
        return image[..., 0]
    return image[..., :3] @ _LUMA

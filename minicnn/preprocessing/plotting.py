"""Section 5.2.5's augmentation figure: one image and a few randomly augmented versions of it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from minicnn.plots import finish_figure, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image as matplotlib shows it: RGB(A) floats in [0, 1], or a 2-D grayscale map."""
    image = np.asarray(image, dtype=np.float64)
    if image.max(initial=0.0) > 1.0:  # 0-255 pixel values (not rescaled)
        image = image / 255.0
    image = np.clip(image, 0.0, 1.0)
    return image[:, :, 0] if image.shape[-1] == 1 else image


def plot_augmented_images(image: np.ndarray, datagen,
                          path: str | os.PathLike[str] | None = None, count: int = 4,
                          seed: int | None = None, title: str | None = None) -> Figure:
    """Draw ``image`` beside ``count`` augmented versions of it; save the PNG when asked.

    The versions come from ``datagen.flow(image[None], batch_size=1, seed=seed)``, as in
    the book's loop, so they are what a model trained on that generator sees (rescaling
    included; pixel values above 1 are shown as 0-255).

    Args:
        image: (H, W, C) image, C in {1, 3, 4}, values 0-255 or 0-1.
        datagen: an ``ImageDataGenerator``.
        path: the PNG file to write (atomically), or None to only return the figure.
        count: how many augmented versions.
        seed: makes the figure repeatable.
        title: optional title over the row.
    Returns:
        the matplotlib ``Figure`` (shown inline when it ends a notebook cell).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W, C) with 1, 3 or 4 channels, "
                         f"received shape {image.shape}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, received {count!r}")
    batches = datagen.flow(image[None], batch_size=1, seed=seed)
    versions = [next(batches)[0] for _ in range(count)]
    figure = new_figure(2.6 * (count + 1), 2.9)
    axes = figure.subplots(1, count + 1)
    gray = image.shape[-1] == 1
    for index, (axis, picture) in enumerate(zip(axes, [image] + versions)):
        axis.imshow(_displayable(picture), cmap="gray" if gray else None, vmin=0, vmax=1)
        axis.set_title("original" if index == 0 else f"augmented {index}", fontsize=9)
        axis.axis("off")
    if title:
        figure.suptitle(title)
    return finish_figure(figure, path)

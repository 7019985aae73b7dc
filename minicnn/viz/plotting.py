"""Pictures of the three views; each ``plot_*`` helper takes arrays and returns a Figure.

The ``matplotlib.figure.Figure`` is shown inline when it ends a Jupyter cell, and
written as a PNG only when a ``path`` is given (atomically, by
:func:`minicnn.plots.save_figure`). Drawn with the Agg canvas (no pyplot, no display
needed). Grids are assembled as one NumPy array and shown with a single ``imshow``,
which keeps the files small.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from typing import TYPE_CHECKING

from minicnn.plots import finish_figure, new_figure
from minicnn.viz.images import resize_bilinear, to_grey

if TYPE_CHECKING:  # matplotlib is imported only when something is plotted
    from matplotlib.figure import Figure

__all__ = ["deprocess_image", "normalize_channel", "tile", "overlay_heatmap",
           "plot_activations", "save_activation_grids", "plot_filter_patterns",
           "plot_grad_cam"]


def deprocess_image(image: np.ndarray) -> np.ndarray:
    """A gradient-ascent image made displayable, as the book does: centre, scale to a
    standard deviation of 0.1 around 0.5, clip to [0, 1]."""
    image = np.asarray(image, dtype=np.float64)
    image = (image - image.mean()) / (image.std() + 1e-5)
    return np.clip(image * 0.1 + 0.5, 0, 1)


def normalize_channel(channel: np.ndarray) -> np.ndarray:
    """One feature map made displayable, as the book does: standardize, then
    ``64 * z + 128`` clipped to 0..255, returned in [0, 1].  A constant map is grey 0.5
    (black when it is all zeros: a filter that did not fire)."""
    channel = np.asarray(channel, dtype=np.float64)
    std = channel.std()
    if std == 0:
        return np.full(channel.shape, 0.0 if not channel.any() else 0.5)
    return np.clip((channel - channel.mean()) / std * 64 + 128, 0, 255) / 255


def tile(images: Sequence[np.ndarray], per_row: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Lay equally sized (h, w) or (h, w, 3) images out in rows of ``per_row``."""
    images = [np.asarray(image, dtype=np.float64) for image in images]
    if not images:
        raise ValueError("tile needs at least one image")
    height, width = images[0].shape[:2]
    trailing = images[0].shape[2:]
    rows = -(-len(images) // per_row)
    columns = min(per_row, len(images))
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap) + trailing, fill)
    for position, image in enumerate(images):
        top = (position // per_row) * (height + gap)
        left = (position % per_row) * (width + gap)
        grid[top:top + height, left:left + width] = image
    return grid


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The heatmap, upsampled to the image and coloured with "jet", laid over the image.

    Args:
        image: (H, W, C) or (H, W), values in [0, 1].
        heatmap: (h, w) in [0, 1], any resolution.
        alpha: weight of the heatmap (the book uses 0.4).
    Returns:
        (H, W, 3) RGB in [0, 1].
    """
    from matplotlib import colormaps

    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(to_grey(image)[..., np.newaxis], 3, axis=-1)
    large = np.clip(resize_bilinear(heatmap, image.shape[:2]), 0, 1)
    colored = colormaps["jet"](large)[..., :3]
    return np.clip((1 - alpha) * image + alpha * colored, 0, 1)


def plot_activations(feature_map: np.ndarray, path: str | os.PathLike | None = None,
                     title: str = "", images_per_row: int = 16,
                     max_channels: int | None = None, cell_inches: float = 0.6) -> Figure:
    """Every channel of one layer's output as a grid of small grey images.

    Args:
        feature_map: (H, W, C) (e.g. one entry of :func:`minicnn.viz.activations`).
        path: a PNG to write (default: none).
        title: shown above the grid (the layer name and shape are appended).
        images_per_row: channels per row (the book uses 16).
        max_channels: show only the first channels (default all).
    Returns:
        the Figure.
    """
    feature_map = np.asarray(feature_map)
    if feature_map.ndim != 3:
        raise ValueError(f"a feature map is (H, W, C), received shape {feature_map.shape}")
    count = feature_map.shape[-1] if max_channels is None else min(max_channels, feature_map.shape[-1])
    channels = [normalize_channel(feature_map[..., c]) for c in range(count)]
    per_row = min(images_per_row, count)
    # NaN gaps are not painted: the figure's white shows between the maps
    grid = tile(channels, per_row, gap=max(1, feature_map.shape[0] // 14), fill=np.nan)
    rows = -(-count // per_row)
    figure = new_figure(cell_inches * per_row, cell_inches * rows + 0.45)
    axis = figure.add_axes((0, 0, 1, 1))
    axis.imshow(grid, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    axis.set_axis_off()
    shape = "x".join(str(size) for size in feature_map.shape)
    axis.set_title(f"{title} {shape}".strip(), fontsize=9)
    return finish_figure(figure, path)


def save_activation_grids(activations: Mapping[str, np.ndarray], out_dir: str | os.PathLike,
                          prefix: str = "activations_", images_per_row: int = 16,
                          max_channels: int | None = None) -> list[Path]:
    """One PNG per layer, ``OUT/activations_<layer>.png``, in the mapping's order; returns the paths."""
    paths = []
    for name, feature_map in activations.items():
        path = Path(out_dir) / f"{prefix}{name}.png"
        plot_activations(feature_map, path, title=name, images_per_row=images_per_row,
                         max_channels=max_channels)
        paths.append(path)
    return paths


def plot_filter_patterns(patterns: Sequence[np.ndarray], path: str | os.PathLike | None = None,
                         title: str = "", labels: Sequence[str] | None = None,
                         images_per_row: int = 8, cell_inches: float = 1.0) -> Figure:
    """Filter patterns (raw gradient-ascent images) as a grid, each deprocessed.

    Args:
        patterns: (H, W, C) images from :func:`minicnn.viz.filter_pattern`.
        path: a PNG to write (default: none).
        labels: optional caption per pattern (e.g. "3: x12.4").
    Returns:
        the Figure.
    """
    if not patterns:
        raise ValueError("plot_filter_patterns needs at least one pattern")
    shown = []
    for pattern in patterns:
        image = deprocess_image(pattern)
        shown.append(image[..., 0] if image.shape[-1] == 1 else image[..., :3])
    per_row = min(images_per_row, len(shown))
    rows = -(-len(shown) // per_row)
    figure = new_figure(cell_inches * per_row, cell_inches * rows + 0.4)
    axes = figure.subplots(rows, per_row, squeeze=False)
    for position, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if position < len(shown):
            axis.imshow(shown[position], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if labels is not None:
                axis.set_title(labels[position], fontsize=7, pad=2)
    if title:
        figure.suptitle(title, fontsize=9)
    return finish_figure(figure, path)


def plot_grad_cam(image: np.ndarray, heatmap: np.ndarray, path: str | os.PathLike | None = None,
                  title: str = "", alpha: float = 0.4, panel_inches: float = 2.4) -> Figure:
    """Three panels: the input, the heatmap at the layer's resolution, the overlay.

    Args:
        image: (H, W, C) or (H, W) in [0, 1] (the picture as shown to people).
        heatmap: (h, w) in [0, 1] from :func:`minicnn.viz.grad_cam`.
        path: a PNG to write (default: none).
    Returns:
        the Figure (three axes).
    """
    image = np.asarray(image, dtype=np.float64)
    figure = new_figure(3 * panel_inches, panel_inches + 0.5)
    axes = figure.subplots(1, 3)
    if image.ndim == 3 and image.shape[-1] == 3:
        axes[0].imshow(np.clip(image, 0, 1))
    else:
        axes[0].imshow(to_grey(image), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=9)
    shown = axes[1].imshow(heatmap, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    axes[1].set_title(f"heatmap {heatmap.shape[0]}x{heatmap.shape[1]}", fontsize=9)
    axes[2].imshow(overlay_heatmap(image, heatmap, alpha))
    axes[2].set_title("overlay", fontsize=9)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    return finish_figure(figure, path)

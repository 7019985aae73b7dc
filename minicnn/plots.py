"""Matplotlib figures for training runs and studies.

Every ``plot_*`` function returns the ``matplotlib.figure.Figure``; in a Jupyter notebook
a Figure that ends a cell is shown inline. It writes a PNG only when given a ``path``.

The figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas directly,
never through ``pyplot``: no global figure state (nothing accumulates in a long
notebook), no GUI backend picked behind the user's back, and it works on machines
without a display. Each PNG is rendered into memory first and then written with
:func:`minicnn.files.atomic_write`, so a reader never sees half an image.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from minicnn.files import atomic_write
from minicnn.notebook import enable_inline_figures

if TYPE_CHECKING:  # matplotlib is imported only when something is plotted
    from matplotlib.figure import Figure

__all__ = ["new_figure", "finish_figure", "plot_training_curves", "plot_bars", "save_figure"]


def new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    """A Figure of ``width`` x ``height`` inches on an Agg canvas, shown inline when it
    is a notebook cell's result (imports matplotlib only when plotting)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    enable_inline_figures(figure)
    return figure


def finish_figure(figure: Figure, path: str | os.PathLike[str] | None) -> Figure:
    """Save ``figure`` to ``path`` when one is given (:func:`save_figure`); return it."""
    if path is not None:
        save_figure(figure, path)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``figure`` to PNG in memory, then write it to ``path`` atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    data = buffer.getvalue()
    return atomic_write(path, lambda handle: handle.write(data))


def plot_training_curves(history: Mapping[str, Sequence[float]],
                         path: str | os.PathLike[str] | None = None,
                         test: Mapping[str, float] | None = None,
                         title: str | None = None) -> Figure:
    """The book's two plots side by side: accuracy and loss per epoch.

    Training values are dots, validation values (``val_*`` keys, when present) a line,
    as in the book; the test result, measured once after training, is a star at the
    last epoch.

    Args:
        history: ``History.history``: ``{"loss": [...], "accuracy": [...], "val_loss": ...}``.
        path: a PNG file to write (default: none, only the Figure is returned).
        test: optional ``{"loss": float, "accuracy": float}`` on the test set.
        title: optional title over both panels.
    Returns:
        the Figure (two axes).
    """
    figure = new_figure(11, 4)
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("accuracy", "loss")):
        train = list(history.get(metric, []))
        epochs = range(1, len(train) + 1)
        if train:
            axis.plot(epochs, train, "bo", label=f"Training {metric}")
        validation = list(history.get(f"val_{metric}", []))
        if validation:
            axis.plot(range(1, len(validation) + 1), validation, "b", label=f"Validation {metric}")
        if test is not None and metric in test and train:
            axis.plot([len(train)], [test[metric]], "r*", markersize=12,
                      label=f"Test {metric} ({test[metric]:.4f})")
        axis.set_title(f"Training and validation {metric}" if validation else f"Training {metric}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        if len(train) <= 20:
            axis.set_xticks(list(epochs))
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    return finish_figure(figure, path)


def plot_bars(labels: Sequence[str], panels: Sequence[tuple[str, Sequence[float], str]],
              path: str | os.PathLike[str] | None = None, title: str | None = None) -> Figure:
    """One bar chart per panel, the same labels on each: a compact way to compare runs.

    Args:
        labels: the name of each bar (one per run).
        panels: ``(panel title, values, value format)`` triples, e.g.
            ``("test accuracy", [0.99, 0.98], "{:.4f}")``; each value is printed on its bar.
        path: a PNG file to write (default: none, only the Figure is returned).
        title: optional title over all panels.
    Returns:
        the Figure (one axis per panel).
    """
    figure = new_figure(4.2 * len(panels), 4.2)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    positions = list(range(len(labels)))
    for axis, (panel_title, values, value_format) in zip(axes, panels):
        bars = axis.bar(positions, list(values), color=[f"C{i}" for i in positions])
        axis.bar_label(bars, labels=[value_format.format(value) for value in values], fontsize=8)
        axis.set_xticks(positions)
        axis.set_xticklabels(labels, rotation=20, ha="right")
        axis.set_title(panel_title)
        axis.grid(axis="y", alpha=0.3)
        axis.margins(y=0.15)
    if title:
        figure.suptitle(title)
    return finish_figure(figure, path)

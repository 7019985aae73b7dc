"""What a step leaves behind when both engines ran: the per-epoch gaps between them
and their curves overlaid (PNG, rendered in memory and written atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
COLORS = {"minicnn": "tab:blue", "keras": "tab:orange"}


def epoch_gaps(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> list[dict[str, Any]]:
    """Per epoch, each engine's values and ``minicnn - keras`` for every key of
    :data:`KEYS`: ``[{"epoch": 1, "loss": {"minicnn": .., "keras": .., "gap": ..}, ...}]``."""
    mine, theirs = histories["minicnn"], histories["keras"]
    epochs = min(len(mine.get("loss", [])), len(theirs.get("loss", [])))
    rows = []
    for epoch in range(epochs):
        row: dict[str, Any] = {"epoch": epoch + 1}
        for key in KEYS:
            if key in mine and key in theirs:
                a, b = float(mine[key][epoch]), float(theirs[key][epoch])
                row[key] = {"minicnn": a, "keras": b, "gap": a - b}
        rows.append(row)
    return rows


def format_gaps(rows: Sequence[dict[str, Any]]) -> str:
    """The gaps as a plain-text table, one line per epoch."""
    lines = ["epoch | " + " | ".join(f"{key}: minicnn keras gap" for key in KEYS)]
    for row in rows:
        cells = []
        for key in KEYS:
            if key in row:
                cell = row[key]
                cells.append(f"{cell['minicnn']:.4f} {cell['keras']:.4f} {cell['gap']:+.1e}")
            else:
                cells.append("-")
        lines.append(f"{row['epoch']:5d} | " + " | ".join(cells))
    return "\n".join(lines)


def largest_gaps(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The largest ``|minicnn - keras|`` over the epochs, per key."""
    return {key: max((abs(row[key]["gap"]) for row in rows if key in row), default=0.0)
            for key in KEYS}


def plot_overlay(histories: Mapping[str, Mapping[str, Sequence[float]]],
                 tests: Mapping[str, Mapping[str, float]], path: str | Path,
                 title: str, boundary: int | None = None) -> Path:
    """Accuracy and loss per epoch, one colour per engine: training dots joined by a
    dotted line, validation solid, the test result a star after the last epoch.

    Args:
        histories: ``{engine: History.history}``.
        tests: ``{engine: {"accuracy": .., "loss": ..}}``.
        path: the PNG file.
        title: over both panels.
        boundary: draw a vertical line after this epoch (fine-tuning starts there).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from minicnn.plots import save_figure

    figure = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("accuracy", "loss")):
        for engine, history in histories.items():
            color = COLORS.get(engine)
            train = list(history.get(metric, []))
            validation = list(history.get(f"val_{metric}", []))
            axis.plot(range(1, len(train) + 1), train, "o:", color=color, markersize=4,
                      label=f"{engine} training")
            axis.plot(range(1, len(validation) + 1), validation, "-", color=color,
                      label=f"{engine} validation")
            if engine in tests and train:
                axis.plot([len(train) + 0.3], [tests[engine][metric]], "*", color=color,
                          markersize=12, label=f"{engine} test ({tests[engine][metric]:.4f})")
        if boundary:
            axis.axvline(boundary + 0.5, color="gray", linewidth=1)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(f"Training (dotted) and validation (solid) {metric}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    return save_figure(figure, path)

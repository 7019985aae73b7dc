"""The small-data study's outputs: one row per arm, the Markdown table, the curves.

See :mod:`minicnn.experiments.small_data` for the study itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["JSON_FILE", "MARKDOWN_FILE", "PLOT_FILE", "smooth_curve", "summarize",
           "format_table", "plot_curves", "write_outputs"]

JSON_FILE = "small_data.json"
MARKDOWN_FILE = "small_data.md"
PLOT_FILE = "small_data.png"
COLORS = {"plain": "tab:red", "dropout": "tab:orange", "augment": "tab:blue",
          "both": "tab:green"}


def smooth_curve(points: Sequence[float], factor: float = 0.8) -> list[float]:
    """The book's exponential moving average (section 5.3.2, ``smooth_curve``):
    ``s[0] = p[0]``, ``s[i] = factor * s[i - 1] + (1 - factor) * p[i]``."""
    smoothed: list[float] = []
    for point in points:
        smoothed.append(point if not smoothed else
                        smoothed[-1] * factor + point * (1 - factor))
    return smoothed


def _mean_curve(runs: Sequence[dict[str, Any]], key: str) -> list[float]:
    curves = [run["history"].get(key, []) for run in runs]
    length = min((len(curve) for curve in curves), default=0)
    return [float(np.mean([curve[i] for curve in curves])) for i in range(length)]


def summarize(name: str, description: str, model, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: the arm, its parameters, means and ranges over its runs
    (kept in ``runs``), and the mean curves."""
    accuracies = [run["test_accuracy"] for run in runs]
    curves = {key: _mean_curve(runs, key)
              for key in ("accuracy", "val_accuracy", "loss", "val_loss")}
    return {"arm": name, "description": description, "parameters": model.count_params(),
            "test_accuracy": float(np.mean(accuracies)),
            "test_accuracy_range": [float(min(accuracies)), float(max(accuracies))],
            "test_loss": float(np.mean([run["test_loss"] for run in runs])),
            "final_train_accuracy": curves["accuracy"][-1] if curves["accuracy"] else None,
            "final_val_accuracy": curves["val_accuracy"][-1] if curves["val_accuracy"] else None,
            "best_val_accuracy": max(curves["val_accuracy"]) if curves["val_accuracy"] else None,
            "seconds_per_run": float(np.mean([run["seconds"] for run in runs])),
            "mean_curves": curves, "runs": runs}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def format_table(rows: Sequence[dict[str, Any]], budget: dict[str, Any]) -> str:
    """The study as Markdown: the budget, then one row per arm (means over the seeds;
    the test accuracy's lowest-highest range in parentheses)."""
    images = budget["images"]
    seeds = ", ".join(str(seed) for seed in budget["seeds"])
    lines = [
        f"# Small data: overfitting, Dropout and augmentation ({budget['data']})",
        "",
        f"{images['train']:,} training, {images['validation']:,} validation and "
        f"{images['test']:,} test images ({budget['image_size']}x{budget['image_size']}); "
        f"{budget['epochs']} epochs, batch {budget['batch_size']}, {budget['optimizer']}, "
        f"{budget['loss']}; seeds {seeds}; backend {budget['backend']}. Augmentation: "
        + ", ".join(f"{key}={value}" for key, value in budget["augmentation"].items())
        + ". Accuracies are means over the seeds; the test accuracy's range is in "
          "parentheses; training and validation accuracies are those of the last epoch.",
        "",
        "| arm | what | parameters | training accuracy | validation accuracy "
        "| best validation | test accuracy | test loss | seconds per run |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        low, high = row["test_accuracy_range"]
        test = _percent(row["test_accuracy"])
        if len(row["runs"]) > 1:
            test += f" ({100 * low:.2f}-{100 * high:.2f})"
        lines.append(
            f"| {row['arm']} | {row['description']} | {row['parameters']:,} "
            f"| {_percent(row['final_train_accuracy'])} | {_percent(row['final_val_accuracy'])} "
            f"| {_percent(row['best_val_accuracy'])} | {test} | {row['test_loss']:.4f} "
            f"| {row['seconds_per_run']:.0f} |")
    lines.append("")
    return "\n".join(lines)


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path, budget: dict[str, Any]) -> Path:
    """Accuracy and loss per epoch, one colour per arm: training dotted, validation solid
    (means over the seeds, smoothed with :func:`smooth_curve` when ``budget["smooth"]``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from minicnn.plots import save_figure

    figure = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    factor = budget.get("smooth")
    for axis, metric in zip(axes, ("accuracy", "loss")):
        for row in rows:
            color = COLORS.get(row["arm"], None)
            for key, style, label in ((metric, ":", "training"),
                                      (f"val_{metric}", "-", "validation")):
                curve = row["mean_curves"][key]
                if factor:
                    curve = smooth_curve(curve, factor)
                axis.plot(range(1, len(curve) + 1), curve, style, color=color,
                          label=f"{row['arm']} {label}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric + (f" (smoothed, factor {factor})" if factor else ""))
        axis.set_title(f"Training (dotted) and validation (solid) {metric}")
        axis.grid(alpha=0.3)
        if metric == "loss":
            axis.set_yscale("log")
    axes[0].legend(fontsize=7, ncol=2)
    figure.suptitle(f"Small data ({budget['data']}, {budget['images']['train']:,} training "
                    f"images): means over seeds {', '.join(map(str, budget['seeds']))}")
    return save_figure(figure, path)


def write_outputs(out: Path, rows: Sequence[dict[str, Any]], budget: dict[str, Any]) -> None:
    """``small_data.json``, ``small_data.md`` and ``small_data.png``, each atomically."""
    from minicnn.files import atomic_write, write_json

    write_json(out / JSON_FILE, {"rows": list(rows), "budget": budget})
    table = format_table(rows, budget)
    atomic_write(out / MARKDOWN_FILE, lambda handle: handle.write(table.encode()))
    plot_curves(rows, out / PLOT_FILE, budget)

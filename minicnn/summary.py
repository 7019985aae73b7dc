"""``model.summary()`` in Keras 3's format, rendered with rich exactly as Keras renders it.

Rows: ``name (Type)``, output shape with ``None`` for the batch, parameter count with
thousands separators ("0 (unbuilt)" before build).  Totals show the size in memory:
``Total params: 93,322 (364.54 KB)`` = 93,322 float32 values x 4 bytes / 1024.
The column layout follows ``keras.src.utils.summary_utils.print_summary``: a line of
``min(88, terminal columns - 4)`` characters split at 45 % and 80 %.
"""

from __future__ import annotations

import math
import shutil

import numpy as np

from minicnn.shapes import format_shape


def readable_memory_size(size_in_bytes: float) -> str:
    """``373288`` -> ``"364.54 KB"`` (powers of 1024, two decimals, as Keras)."""
    for unit in ["B", "KB", "MB", "GB", "TB"]:
        if size_in_bytes / 1024 < 1:
            return f"{size_in_bytes:.2f} {unit}"
        size_in_bytes /= 1024
    return f"{size_in_bytes:.2f} PB"


def _count_and_bytes(arrays_shapes_dtypes) -> tuple[int, int]:
    count = sum(math.prod(shape) for shape, _ in arrays_shapes_dtypes)
    size = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in arrays_shapes_dtypes)
    return int(count), int(size)


def summary_rows(model) -> list[tuple[str, str, str]]:
    """(``name (Type)``, output shape, parameter count) for each layer, as plain text."""
    rows = []
    for layer in model.layers:
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        shape = layer.output_shape if layer.built else None
        rows.append((f"{layer.name} ({type(layer).__name__})", format_shape(shape), params))
    return rows


def summary_totals(model) -> dict[str, tuple[int, int]]:
    """``{"total"|"trainable"|"non_trainable"|"optimizer": (count, bytes)}``."""
    trainable = _count_and_bytes([(v.shape, v.dtype) for v in model.trainable_weights])
    frozen = _count_and_bytes([(v.shape, v.dtype) for v in model.non_trainable_weights])
    totals = {"trainable": trainable, "non_trainable": frozen}
    if model.optimizer is not None and model.optimizer.iterations > 0:
        # Keras's optimizer variables: the iteration counter (int64), the learning
        # rate (float32), then the slots (momentums, velocities...).
        slots = model.optimizer.get_state()["slots"]
        totals["optimizer"] = _count_and_bytes(
            [((), np.int64), ((), np.float32)] + [(s.shape, s.dtype) for s in slots])
    optimizer = totals.get("optimizer", (0, 0))
    totals["total"] = (trainable[0] + frozen[0] + optimizer[0],
                       trainable[1] + frozen[1] + optimizer[1])
    return totals


def print_summary(model, line_length: int | None = None, positions=None, print_fn=None) -> None:
    """Print the summary table; with ``print_fn`` the plain text goes to it instead."""
    import rich.console
    import rich.markup
    import rich.table

    line_length = line_length or min(88, shutil.get_terminal_size().columns - 4)
    positions = positions or [0.45, 0.80, 1.0]
    widths, current = [], 0
    for position in positions:
        widths.append(int(position * line_length) - current)
        current += widths[-1]
    columns = [rich.table.Column(header, justify=justify, width=width)
               for header, justify, width in zip(["Layer (type)", "Output Shape", "Param #"],
                                                 ["left", "left", "right"], widths)]
    table = rich.table.Table(*columns, width=line_length, show_lines=True)
    for row in summary_rows(model):
        table.add_row(*(rich.markup.escape(cell) for cell in row))

    if print_fn:
        console = rich.console.Console(highlight=False, force_terminal=False, color_system=None)
        console.begin_capture()
    else:
        console = rich.console.Console(highlight=False)
    console.print(f'[bold]Model: "{rich.markup.escape(model.name)}"[/]')
    console.print(table)
    totals = summary_totals(model)
    labels = [("total", "Total params"), ("trainable", "Trainable params"),
              ("non_trainable", "Non-trainable params"), ("optimizer", "Optimizer params")]
    for key, label in labels:
        if key in totals:
            count, size = totals[key]
            console.print(f"[bold] {label}: [/]{count:,} ({readable_memory_size(size)})")
    if print_fn:
        print_fn(console.end_capture())

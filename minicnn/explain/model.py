"""``minicnn explain MODEL``: the arithmetic of a convnet, layer by layer.

    minicnn explain mnist-convnet        # or vgg16-base, no-max-pool, or a model.npz

For every layer of a model it prints:

* the output size with the formula and its numbers,
  ``OH = (H + pad_top + pad_bottom - KH) // SH + 1``;
* the receptive field: how many input pixels one output value depends on.  Along one
  axis, with ``r`` the field and ``j`` the jump (input pixels between two neighbouring
  outputs) of the layer below, a window ``K`` with stride ``S`` gives
  ``r' = r + (K - 1) * j`` and ``j' = j * S`` (the input itself has ``r = j = 1``);
  after Flatten or Dense every value sees the whole input;
* the multiply-adds of the forward pass for one image (Conv2D:
  ``OH * OW * F * KH * KW * C``; Dense: ``D * U``; pooling only compares or adds);
* the patch matrix that im2col builds for a convolution, ``(N * OH * OW, KH * KW * C)``,
  which one matrix product with the kernel reshaped to ``(KH * KW * C, F)`` turns into
  the output ``(N * OH * OW, F)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.kernels.geometry import axis_output_length, resolve_pads
from minicnn.shapes import format_shape

FLOAT32_BYTES = 4


@dataclass
class LayerArithmetic:
    """The numbers ``minicnn explain`` prints for one layer (per image unless noted)."""

    name: str
    kind: str
    input_shape: tuple
    output_shape: tuple
    formula: str                          # how the output size comes out
    receptive_field: tuple[int, int] | None   # (rows, columns); None: the whole input
    jump: tuple[int, int] | None          # input pixels between neighbouring outputs
    multiply_adds: int
    work: str                             # how the multiply-adds (or comparisons) count
    patch_matrix: tuple[int, int] | None  # im2col (OH * OW, KH * KW * C) for one image
    parameters: int


def axis_formula(axis: str, length: int, window: int, stride: int, pads: tuple[int, int],
                  padding: str) -> tuple[str, int]:
    out = axis_output_length(length, window, stride, padding)
    size, window_name, stride_name = ("H", "KH", "SH") if axis == "OH" else ("W", "KW", "SW")
    before, after = ("pad_top", "pad_bottom") if axis == "OH" else ("pad_left", "pad_right")
    text = (f"{axis} = ({size} + {before} + {after} - {window_name}) // {stride_name} + 1 = "
            f"({length} + {pads[0]} + {pads[1]} - {window}) // {stride} + 1 = {out}")
    if padding == "same":
        text += f"  (padding='same': ceil({length} / {stride}) = {out})"
    return text, out


def _window_formula(input_shape, window, strides, padding) -> str:
    _, height, width, _ = input_shape
    pads = resolve_pads(height, width, window, strides, padding)
    rows, _ = axis_formula("OH", height, window[0], strides[0], pads[0], padding)
    if (height, window[0], strides[0], pads[0]) == (width, window[1], strides[1], pads[1]):
        return rows + "; OW likewise"
    columns, _ = axis_formula("OW", width, window[1], strides[1], pads[1], padding)
    return rows + "; " + columns


def model_arithmetic(model) -> list[LayerArithmetic]:
    """Output sizes, receptive fields, multiply-adds and im2col sizes of every layer."""
    from minicnn.layers import (Activation, AveragePooling2D, Conv2D, Dense, Dropout, Flatten,
                                MaxPooling2D)

    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: its input shape is unknown")
    field: tuple[int, int] | None = (1, 1)
    jump: tuple[int, int] | None = (1, 1)
    rows = []
    for layer in model.layers:
        input_shape, output_shape = layer.input_shape, layer.output_shape
        patch_matrix = None
        if isinstance(layer, (Conv2D, MaxPooling2D, AveragePooling2D)):
            window = layer.kernel_size if isinstance(layer, Conv2D) else layer.pool_size
            formula = _window_formula(input_shape, window, layer.strides, layer.padding)
            if field is not None:
                field = (field[0] + (window[0] - 1) * jump[0], field[1] + (window[1] - 1) * jump[1])
                jump = (jump[0] * layer.strides[0], jump[1] * layer.strides[1])
            _, out_height, out_width, channels_out = output_shape
            if isinstance(layer, Conv2D):
                depth = window[0] * window[1] * input_shape[3]
                multiply_adds = out_height * out_width * channels_out * depth
                work = (f"OH*OW*F*KH*KW*C = {out_height}*{out_width}*{channels_out}*"
                        f"{window[0]}*{window[1]}*{input_shape[3]} = {multiply_adds:,}")
                patch_matrix = (out_height * out_width, depth)
            else:
                multiply_adds = 0
                operation = "comparisons" if isinstance(layer, MaxPooling2D) else "additions"
                count = out_height * out_width * channels_out * window[0] * window[1]
                work = (f"no multiply-adds; {operation} OH*OW*C*PH*PW = {out_height}*{out_width}"
                        f"*{channels_out}*{window[0]}*{window[1]} = {count:,}")
        elif isinstance(layer, Dense):
            depth = input_shape[-1]
            positions = int(np.prod(input_shape[1:-1])) if len(input_shape) > 2 else 1
            multiply_adds = positions * depth * layer.units
            formula = f"(N, {depth}) @ kernel ({depth}, {layer.units}) + bias -> (N, {layer.units})"
            work = f"D*U = {depth}*{layer.units} = {multiply_adds:,}"
            field, jump = None, None
        elif isinstance(layer, Flatten):
            sizes = input_shape[1:]
            multiply_adds = 0
            formula = (f"H*W*C = {'*'.join(str(s) for s in sizes)} = {int(np.prod(sizes))} "
                       "(NHWC order, a reshape: no copy)")
            work = "none"
            field, jump = None, None
        elif isinstance(layer, (Dropout, Activation)):
            multiply_adds = 0
            formula = "same shape as its input"
            work = "elementwise" if isinstance(layer, Activation) else "none at inference"
        else:
            multiply_adds = 0
            formula = "see the layer's docstring"
            work = "not counted"
        rows.append(LayerArithmetic(
            name=layer.name, kind=type(layer).__name__, input_shape=tuple(input_shape),
            output_shape=tuple(output_shape), formula=formula,
            receptive_field=field, jump=jump, multiply_adds=int(multiply_adds), work=work,
            patch_matrix=patch_matrix, parameters=layer.count_params()))
    return rows


def _bytes_text(count: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def training_step_flops(model, batch: int) -> int:
    """FLOPs (2 per multiply-add) of one training step on ``batch`` images: the one count
    of :func:`minicnn.flops.training_step_flops` (forward, weight gradients, and input
    gradients above the first trainable layer)."""
    from minicnn.flops import training_step_flops as count

    return count(model, batch)


def explain_model(model, batch: int = 1, label: str | None = None) -> str:
    """The text ``minicnn explain MODEL`` prints (see the module docstring)."""
    if batch <= 0:
        raise ValueError(f"--batch must be positive, received {batch}")
    rows = model_arithmetic(model)
    lines = [f"Model {label or model.name!r}: input {format_shape(model.input_shape[1:], 'x')}, "
             f"{model.count_params():,} parameters, batch N = {batch}", ""]
    header = (f"{'layer':<18} {'output':<12} {'receptive field':<16} {'multiply-adds':>15} "
              f"{'im2col patch matrix':>22}")
    lines += [header, "-" * len(header)]
    for row in rows:
        field = ("whole input" if row.receptive_field is None
                 else f"{row.receptive_field[0]}x{row.receptive_field[1]}")
        patch = ("" if row.patch_matrix is None
                 else f"({batch * row.patch_matrix[0]:,}, {row.patch_matrix[1]:,})")
        lines.append(f"{row.name:<18} {format_shape(row.output_shape[1:], 'x'):<12} {field:<16} "
                     f"{batch * row.multiply_adds:>15,} {patch:>22}")
    total = sum(row.multiply_adds for row in rows)
    lines.append("-" * len(header))
    lines.append(f"{'forward total':<47} {batch * total:>15,}")
    lines.append("")
    lines.append("How each number comes out (per image; multiply by N for a batch):")
    for row in rows:
        lines.append(f"\n{row.name} ({row.kind}): {format_shape(row.input_shape[1:], 'x')} -> "
                     f"{format_shape(row.output_shape[1:], 'x')}, {row.parameters:,} parameters")
        lines.append(f"  output size      {row.formula}")
        if row.receptive_field is None:
            lines.append("  receptive field  the whole input (every value depends on every pixel)")
        else:
            lines.append(f"  receptive field  {row.receptive_field[0]}x{row.receptive_field[1]} "
                         f"input pixels; neighbouring outputs are {row.jump[0]}x{row.jump[1]} "
                         "pixels apart  (r' = r + (K-1)*j, j' = j*S)")
        lines.append(f"  work             {row.work}")
        if row.patch_matrix is not None:
            patch_rows, depth = row.patch_matrix
            filters = row.output_shape[-1]
            lines.append(
                f"  im2col           patch matrix (N*OH*OW, KH*KW*C) = ({patch_rows:,}, {depth:,}) "
                f"per image ({_bytes_text(patch_rows * depth * FLOAT32_BYTES)} in float32), "
                f"@ kernel ({depth:,}, {filters:,}) -> ({patch_rows:,}, {filters:,}) "
                f"= the output {format_shape(row.output_shape[1:], 'x')}")
    lines.append("")
    lines.append(f"Forward pass: {total:,} multiply-adds per image = {2 * total / 1e6:,.1f} MFLOP.")
    seed_batch = 64
    lines.append(
        f"One training step on a batch of {seed_batch} (the book's): forward, weight gradients "
        f"and input gradients (none for the first layer) = "
        f"{training_step_flops(model, seed_batch) / 1e9:.2f} GFLOP.")
    return "\n".join(line.rstrip() for line in lines)

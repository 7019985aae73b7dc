"""``minicnn explain``: the arithmetic of a convnet, layer by layer, and one tiny
convolution walked through by hand.

    minicnn explain mnist-convnet        # or vgg16-base, no-max-pool, or a model.npz
    minicnn explain conv                 # a 5x5 input, a 3x3 kernel, every step shown

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


def _shape_text(shape: tuple) -> str:
    return "x".join(str(size) for size in shape[1:])


def _axis_formula(axis: str, length: int, window: int, stride: int, pads: tuple[int, int],
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
    rows, _ = _axis_formula("OH", height, window[0], strides[0], pads[0], padding)
    if (height, window[0], strides[0], pads[0]) == (width, window[1], strides[1], pads[1]):
        return rows + "; OW likewise"
    columns, _ = _axis_formula("OW", width, window[1], strides[1], pads[1], padding)
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
    """FLOPs (2 per multiply-add) of one training step on ``batch`` images.

    Forward, weight gradients (as many multiply-adds as the forward, for Conv2D and
    Dense) and input gradients (the same again, except for the first layer, which
    needs none).
    """
    rows = model_arithmetic(model)
    weighted = [row for row in rows if row.multiply_adds]
    total = sum(3 * row.multiply_adds for row in weighted)
    if weighted and rows[0] is weighted[0]:
        total -= weighted[0].multiply_adds
    return 2 * batch * total


def explain_model(model, batch: int = 1, label: str | None = None) -> str:
    """The text ``minicnn explain MODEL`` prints (see the module docstring)."""
    if batch <= 0:
        raise ValueError(f"--batch must be positive, received {batch}")
    rows = model_arithmetic(model)
    lines = [f"Model {label or model.name!r}: input {_shape_text(model.input_shape)}, "
             f"{model.count_params():,} parameters, batch N = {batch}", ""]
    header = (f"{'layer':<18} {'output':<12} {'receptive field':<16} {'multiply-adds':>15} "
              f"{'im2col patch matrix':>22}")
    lines += [header, "-" * len(header)]
    for row in rows:
        field = ("whole input" if row.receptive_field is None
                 else f"{row.receptive_field[0]}x{row.receptive_field[1]}")
        patch = ("" if row.patch_matrix is None
                 else f"({batch * row.patch_matrix[0]:,}, {row.patch_matrix[1]:,})")
        lines.append(f"{row.name:<18} {_shape_text(row.output_shape):<12} {field:<16} "
                     f"{batch * row.multiply_adds:>15,} {patch:>22}")
    total = sum(row.multiply_adds for row in rows)
    lines.append("-" * len(header))
    lines.append(f"{'forward total':<47} {batch * total:>15,}")
    lines.append("")
    lines.append("How each number comes out (per image; multiply by N for a batch):")
    for row in rows:
        lines.append(f"\n{row.name} ({row.kind}): {_shape_text(row.input_shape)} -> "
                     f"{_shape_text(row.output_shape)}, {row.parameters:,} parameters")
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
                f"= the output {_shape_text(row.output_shape)}")
    lines.append("")
    lines.append(f"Forward pass: {total:,} multiply-adds per image = {2 * total / 1e6:,.1f} MFLOP.")
    seed_batch = 64
    lines.append(
        f"One training step on a batch of {seed_batch} (the seed's): forward, weight gradients "
        f"and input gradients (none for the first layer) = "
        f"{training_step_flops(model, seed_batch) / 1e9:.2f} GFLOP.")
    return "\n".join(line.rstrip() for line in lines)


# ----------------------------------------------------------------------- a convolution by hand
def _grid(array: np.ndarray, width: int) -> list[str]:
    return ["[" + " ".join(f"{int(v):>{width}d}" for v in row) + "]" for row in array]


def _side_by_side(blocks: list[tuple[str, list[str]]], gap: str = "   ") -> list[str]:
    """Print text blocks next to each other, each under its title."""
    widths = [max(len(title), *(len(line) for line in lines)) for title, lines in blocks]
    height = max(len(lines) for _, lines in blocks)
    out = [gap.join(title.ljust(width) for (title, _), width in zip(blocks, widths)).rstrip()]
    for index in range(height):
        out.append(gap.join((lines[index] if index < len(lines) else "").ljust(width)
                            for (_, lines), width in zip(blocks, widths)).rstrip())
    return out


def tiny_problem(size: int, kernel_size: int, channels: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The numbers ``explain conv`` uses: x (size, size, C) of integers 0..9 and a kernel
    (K, K, C) of integers -1..1."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, size=(size, size, channels))
    kernel = rng.integers(-1, 2, size=(kernel_size, kernel_size, channels))
    return x, kernel


def explain_conv(size: int = 5, kernel_size: int = 3, stride: int = 1, padding: str = "valid",
                 channels: int = 1, seed: int = 0, show_all: bool = False) -> str:
    """A tiny convolution (one filter, bias 0) walked through step by step.

    Small integers keep every product readable.  At the end the same output comes from
    im2col + one matrix product, and from minicnn's kernels (reference loops and the
    active backend), which must agree.
    """
    from minicnn.backend import get_backend_name, kernels
    from minicnn.kernels import reference

    if not 1 <= size <= 12 or not 1 <= kernel_size <= size or not 1 <= stride <= size:
        raise ValueError(f"explain conv wants 1 <= kernel ({kernel_size}) <= size ({size}) "
                         f"<= 12 and 1 <= stride ({stride}) <= size")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', received {padding!r}")
    if not 1 <= channels <= 3:
        raise ValueError(f"channels must be 1, 2 or 3, received {channels}")
    x, kernel = tiny_problem(size, kernel_size, channels, seed)
    (top, bottom), (left, right) = resolve_pads(size, size, (kernel_size, kernel_size),
                                                (stride, stride), padding)
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    out_size = axis_output_length(size, kernel_size, stride, padding)
    output = np.zeros((out_size, out_size), dtype=np.int64)
    channel_note = "" if channels == 1 else f" (channel {{c}} of {channels})"

    lines = [f"A {size}x{size} input with {channels} channel{'s' * (channels > 1)}, one "
             f"{kernel_size}x{kernel_size} filter, stride {stride}, padding '{padding}', bias 0.",
             "", "1. The input x and the kernel (Keras stores it as KH x KW x C x F; here F = 1):"]
    for c in range(channels):
        lines += _side_by_side([("x" + channel_note.format(c=c), _grid(x[..., c], 2)),
                                ("kernel" + channel_note.format(c=c), _grid(kernel[..., c], 2))])
    lines.append("")
    formula, _ = _axis_formula("OH", size, kernel_size, stride, (top, bottom), padding)
    lines.append(f"2. The output size: {formula}; OW likewise: a {out_size}x{out_size} output.")
    if top or bottom or left or right:
        lines.append(f"   'same' pads zeros: {top} row(s) on top, {bottom} at the bottom, {left} "
                     f"column(s) on the left, {right} on the right (the odd one goes "
                     "bottom/right, as Keras):")
        for c in range(channels):
            lines += ["   " + line for line in _side_by_side(
                [("x padded" + channel_note.format(c=c), _grid(padded[..., c], 2))])]
    lines += ["", "3. Slide the kernel: each output value is the dot product of the kernel with "
              "the patch under it.", "   out[i, j] reads rows i*S - pad_top .. + KH and columns "
              "j*S - pad_left .. + KW of x" + (" (rows or columns outside 0..{} are the zero "
              "padding)".format(size - 1) if top or bottom or left or right else "") + "."]
    positions = [(i, j) for i in range(out_size) for j in range(out_size)]
    shown = positions if show_all or len(positions) <= 9 else positions[:3] + positions[-1:]
    for i, j in positions:
        rows = slice(i * stride, i * stride + kernel_size)
        columns = slice(j * stride, j * stride + kernel_size)
        patch = padded[rows, columns, :]
        products = patch * kernel
        output[i, j] = int(products.sum())
        if (i, j) not in shown:
            continue
        row_range = f"{i * stride - top}:{i * stride - top + kernel_size}"
        column_range = f"{j * stride - left}:{j * stride - left + kernel_size}"
        lines.append("")
        lines.append(f"   out[{i}, {j}]: the patch x[{row_range}, {column_range}]")
        for c in range(channels):
            lines += ["   " + line for line in _side_by_side(
                [("patch" + channel_note.format(c=c), _grid(patch[..., c], 2)),
                 ("* kernel", _grid(kernel[..., c], 2)),
                 ("= products", _grid(products[..., c], 3))])]
        sums = []
        for c in range(channels):
            terms = " + ".join(f"({int(v)})" if v < 0 else str(int(v))
                               for v in products[..., c].ravel())
            sums.append(int(products[..., c].sum()))
            label = "sum" if channels == 1 else f"channel {c}:"
            lines.append(f"   {label} {terms} = {sums[-1]}")
        if channels > 1:
            lines.append("   sum over channels: " + " + ".join(
                f"({v})" if v < 0 else str(v) for v in sums) + f" = {output[i, j]}")
        lines.append(f"   -> lands at out[{i}, {j}] = {output[i, j]}")
        if (i, j) == shown[-2] and len(shown) < len(positions):
            lines.append(f"\n   ... {len(positions) - len(shown)} more positions the same way "
                         "(--all shows them) ...")
    lines += ["", "4. The output (one value per kernel position):"]
    lines += ["   " + line for line in _grid(output, 4)]

    # im2col: every patch becomes one row; one matrix product does all the dot products.
    patch_rows = np.stack([padded[i * stride:i * stride + kernel_size,
                                  j * stride:j * stride + kernel_size, :].ravel()
                           for i, j in positions])
    column = kernel.reshape(-1, 1)
    gemm = (patch_rows @ column).reshape(out_size, out_size)
    depth = kernel_size * kernel_size * channels
    lines += ["", f"5. The same with im2col: the {len(positions)} patches, each flattened "
              f"(KH*KW*C = {depth} values, in (row, column, channel) order), are the rows of a "
              f"({len(positions)}, {depth}) patch matrix; the kernel flattened the same way is "
              f"a ({depth}, 1) column; one matrix product gives all {len(positions)} outputs:"]
    preview = patch_rows if len(positions) <= 9 else patch_rows[:4]
    lines += ["   " + line for line in _side_by_side(
        [("patch matrix" + (" (first 4 rows)" if len(positions) > 9 else ""), _grid(preview, 2)),
         ("@ kernel column", _grid(column, 2)),
         ("= outputs", _grid(preview @ column, 3))])]
    lines.append(f"   reshaped to {out_size}x{out_size}: "
                 f"{'equal to step 4' if np.array_equal(gemm, output) else 'DIFFERENT from step 4'}")
    # With F filters the column becomes a (KH*KW*C, F) matrix: one GEMM for all filters.
    lines.append(f"   (with F filters the kernel is a ({depth}, F) matrix and the product "
                 f"({len(positions)}, {depth}) @ ({depth}, F) computes every filter at once: "
                 "this is how minicnn's numpy backend runs Conv2D)")

    x_batch = x[np.newaxis].astype(np.float32)
    kernel_hwio = kernel[..., np.newaxis].astype(np.float32)
    pads = ((top, bottom), (left, right))
    expected = output.astype(np.float32)
    checks = []
    for label, module in (("reference loops", reference), (f"{get_backend_name()} backend", kernels())):
        y, _ = module.conv2d_forward(x_batch, kernel_hwio, None, (stride, stride), pads)
        checks.append(f"{label}: {'same' if np.array_equal(y[0, ..., 0], expected) else 'DIFFERENT'}")
    lines += ["", "6. minicnn's own kernels on the same numbers: " + "; ".join(checks) + "."]
    return "\n".join(lines)


def resolve_model(name_or_path: str):
    """A model by ``minicnn summary`` name (mnist-convnet, ...) or from a .npz file."""
    from minicnn.cli import SUMMARY_MODELS, build_summary_model

    if name_or_path in SUMMARY_MODELS:
        return build_summary_model(name_or_path)
    if name_or_path.endswith(".npz"):
        from minicnn.io import load_model

        return load_model(name_or_path, compile=False)
    raise ValueError(f"explain: {name_or_path!r} is not 'conv', a model name "
                     f"({', '.join(SUMMARY_MODELS)}) or a model file ending in .npz")

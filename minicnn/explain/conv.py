"""``minicnn explain conv``: one tiny convolution walked through by hand.

    minicnn explain conv                 # a 5x5 input, a 3x3 kernel, every step shown
"""

from __future__ import annotations

import numpy as np

from minicnn.explain.model import axis_formula
from minicnn.kernels.geometry import axis_output_length, resolve_pads

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


def check_arguments(size: int, kernel_size: int, stride: int, padding: str, channels: int) -> None:
    """The ranges ``explain conv`` accepts (small enough to print); ``ValueError`` otherwise."""
    if not 1 <= size <= 12 or not 1 <= kernel_size <= size or not 1 <= stride <= size:
        raise ValueError(f"explain conv wants 1 <= kernel ({kernel_size}) <= size ({size}) "
                         f"<= 12 and 1 <= stride ({stride}) <= size")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', received {padding!r}")
    if not 1 <= channels <= 3:
        raise ValueError(f"channels must be 1, 2 or 3, received {channels}")


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

    check_arguments(size, kernel_size, stride, padding, channels)
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
    formula, _ = axis_formula("OH", size, kernel_size, stride, (top, bottom), padding)
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

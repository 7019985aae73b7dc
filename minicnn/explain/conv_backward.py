"""``minicnn explain conv --backward``: the gradients of one tiny convolution, worked by hand.

The tiny convolution of ``minicnn explain conv``, run backwards from a small integer
``dy``: the bias gradient (the sum of ``dy``), the kernel gradient (a correlation of the
input with ``dy``, term by term for one kernel cell), the input gradient twice (as
kernel-shaped stamps scattered by each ``dy``, and as the full convolution of the framed
``dy`` with the flipped kernel), with stride 2 the dilated ``dy``, with ``padding='same'``
the crop back to the input; then the same gradients from minicnn's kernels and from
central differences.  The numbers come from :mod:`minicnn.explain.conv_gradients`.

    minicnn explain conv --backward --stride 2 --padding same
"""

from __future__ import annotations

import numpy as np

from minicnn.explain.conv import _grid, _side_by_side
from minicnn.explain.conv_gradients import (TOLERANCE, Checks, ConvBackward, cells_met_by,
                                            check_gradients, conv_backward_numbers, dilate,
                                            framed_upstream_gradient)
from minicnn.explain.text import indent, signed_terms


def explain_conv_backward(size: int = 5, kernel_size: int = 3, stride: int = 1,
                          padding: str = "valid", channels: int = 1, seed: int = 0,
                          show_all: bool = False) -> str:
    """The backward pass of ``explain conv``'s tiny convolution, step by step.

    Raises:
        ValueError: arguments out of the printable range.
        GradientMismatchError: a kernel's gradients disagree with central differences.
    """
    numbers = conv_backward_numbers(size, kernel_size, stride, padding, channels, seed)
    checks = check_gradients(numbers)
    return "\n".join(_render(numbers, checks, show_all))


def _render(numbers: ConvBackward, checks: Checks, show_all: bool) -> list[str]:
    x, kernel, dy, stride = numbers.x, numbers.kernel, numbers.dy, numbers.stride
    size, kernel_size, channels = x.shape[0], kernel.shape[0], x.shape[2]
    (top, bottom), (left, right) = numbers.pads
    padded = bool(top or bottom or left or right)
    out_size = dy.shape[0]
    note = "" if channels == 1 else " (channel {c})"
    lines = [f"The backward pass of the tiny convolution of `minicnn explain conv` with the "
             f"same options: a {size}x{size} input with {channels} channel"
             f"{'s' * (channels > 1)}, one {kernel_size}x{kernel_size} filter, stride {stride}, "
             f"padding '{numbers.padding}', bias 0.", "",
             f"0. Backpropagation starts from dy = dL/dy, one number per output ({out_size}x"
             f"{out_size}); here small integers:"]
    for c in range(channels):
        lines += _side_by_side([("x" + note.format(c=c), _grid(x[..., c], 2)),
                                ("kernel" + note.format(c=c), _grid(kernel[..., c], 2))]
                               + ([("dy", _grid(dy, 2))] if c == 0 else []))
    lines += ["   Each output is y[i, j] = b + sum over (a, b', c) of x_pad[i*S + a, j*S + b', c] "
              "* kernel[a, b', c]: a sum of products. The chain rule sends dy[i, j] back along "
              "each product to its other factor."]
    lines += ["", f"1. The bias is added to every output, so dL/db = sum of dy = "
              f"{signed_terms(dy.ravel())} = {numbers.dbias}."]

    lines += ["", "2. The kernel gradient: dL/dkernel[a, b', c] = sum over (i, j) of "
              "x_pad[i*S + a, j*S + b', c] * dy[i, j]. dy slides over the input like a kernel"
              + (f" (taking every {stride}{'nd' if stride == 2 else 'rd' if stride == 3 else 'th'} "
                 "cell)" if stride > 1 else "") + ": a correlation of x with dy, the forward "
              "pass with dy as the kernel."]
    if stride > 1:
        lines += [f"   With stride {stride} that is a correlation with the dilated dy "
                  f"({stride - 1} zero{'s' * (stride > 2)} between neighbours):"]
        lines += indent(_side_by_side([("dy dilated", _grid(dilate(dy, stride), 2))]))
    met = cells_met_by(numbers.x_padded, dy.shape, stride, (0, 0))[..., 0]
    lines += [f"   Kernel cell [0, 0{', 0' if channels > 1 else ''}] met these cells of x"
              f"{' (padded)' if padded else ''}, one per output:"]
    lines += indent(_side_by_side([("x_pad cells", _grid(met, 2)), ("* dy", _grid(dy, 2)),
                                    ("= products", _grid(met * dy, 3))]))
    lines.append(f"   sum {signed_terms((met * dy).ravel())} = {numbers.dkernel[0, 0, 0]}")
    lines.append("   Every cell the same way:")
    lines += indent(_side_by_side([("dkernel" + note.format(c=c), _grid(numbers.dkernel[..., c], 4))
                                    for c in range(channels)]))

    lines += ["", "3. The input gradient, stamped: output (i, j) read the patch at rows i*S .. "
              "i*S + K - 1 and columns j*S .. j*S + K - 1" + (" of the padded input" if padded
              else "") + ", so dy[i, j] goes back to each of its cells times the weight that "
              "multiplied it: a kernel-shaped stamp dy[i, j] * kernel, added on; overlapping "
              "stamps add up."]
    positions = list(np.ndindex(dy.shape))
    shown = positions if show_all or len(positions) <= 4 else positions[:2]
    running = np.zeros_like(numbers.dx_padded_stamps)
    for i, j in positions:
        stamp = dy[i, j] * kernel
        running[i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += stamp
        if (i, j) not in shown:
            continue
        lines.append(f"   dy[{i}, {j}] = {dy[i, j]}: the stamp lands on rows {i * stride}:"
                     f"{i * stride + kernel_size}, columns {j * stride}:{j * stride + kernel_size}"
                     + (" of dx_pad" if padded else ""))
        for c in range(channels):
            lines += indent(_side_by_side(
                [(f"{dy[i, j]} * kernel" + note.format(c=c), _grid(stamp[..., c], 3)),
                 ("dx" + "_pad" * padded + note.format(c=c) + " so far",
                  _grid(running[..., c], 3))]))
    if len(shown) < len(positions):
        lines.append(f"   ... {len(positions) - len(shown)} more stamps the same way (--all "
                     "shows them) ...")
    lines.append(f"   All {len(positions)} stamps added:")
    lines += indent(_side_by_side([("dx" + "_pad" * padded + note.format(c=c),
                                     _grid(numbers.dx_padded_stamps[..., c], 3))
                                    for c in range(channels)]))

    framed = framed_upstream_gradient(dy, stride, kernel_size, numbers.x_padded.shape[:2])
    extra = numbers.x_padded.shape[0] - ((out_size - 1) * stride + kernel_size)
    lines += ["", "4. The same, read from an input cell's side: cell p collects kernel[p - i*S] * "
              "dy[i] from every output i whose window covers it; the kernel index runs backwards "
              "as i runs forwards. So dx" + "_pad" * padded + " is the full convolution of "
              + ("the dilated " if stride > 1 else "") + f"dy, framed by K - 1 = {kernel_size - 1} "
              "zeros on every side, with the kernel flipped (rotated by 180 degrees):"]
    if extra:
        lines.append(f"   ({extra} more zero row(s) and column(s) at the bottom/right: input "
                     "cells past the last window, which no output read; their gradient is 0.)")
    # With several channels the one framed dy meets each channel's flipped kernel.
    if channels > 1:
        lines += indent(_side_by_side([("framed dy", _grid(framed, 2))]))
    for c in range(channels):
        lines += indent(_side_by_side(
            ([("framed dy", _grid(framed, 2))] if channels == 1 else [])
            + [("flipped kernel" + note.format(c=c), _grid(kernel[::-1, ::-1, c], 2)),
               ("= dx" + "_pad" * padded + note.format(c=c),
                _grid(numbers.dx_padded_full[..., c], 3))]))
    same = np.array_equal(numbers.dx_padded_full, numbers.dx_padded_stamps)
    lines.append(f"   {'equal to the stamps of step 3' if same else 'DIFFERENT from step 3'}.")

    step = 5
    if padded:
        lines += ["", f"{step}. Crop: dx_pad covers the padded input, but padded cells are not "
                  f"inputs, so what landed on them is dropped: dx = dx_pad[{top}:{top + size}, "
                  f"{left}:{left + size}]:"]
        lines += indent(_side_by_side([("dx" + note.format(c=c), _grid(numbers.dx[..., c], 3))
                                        for c in range(channels)]))
        step += 1

    kernel_lines = []
    for label, (dx, dkernel, dbias) in checks.results.items():
        if label.startswith("by hand"):
            continue
        parts = [f"{name} {'same' if np.array_equal(value, expected) else 'DIFFERENT'}"
                 for name, value, expected in (("dx", dx, numbers.dx),
                                               ("dkernel", dkernel, numbers.dkernel),
                                               ("dbias", dbias, numbers.dbias))]
        kernel_lines.append(f"{label}: " + ", ".join(parts))
    lines += ["", f"{step}. minicnn's own kernels (conv2d_forward, then conv2d_backward with this "
              "dy, in float32) on the same numbers: " + "; ".join(kernel_lines) + "."]
    worst = max(checks.differences.values())
    lines += ["", f"{step + 1}. Central differences in float64, dL/dv ~ (L(v + e) - L(v - e)) / 2e "
              "for every input cell, kernel cell and the bias, of L = sum of y * dy (whose "
              "gradient with respect to y is dy). Largest difference: "
              + "; ".join(f"{label} {difference:.1e}" for label, difference
                          in checks.differences.items())
              + f"; all within {TOLERANCE:g}" + (" (exact)" if worst == 0 else "") + "."]
    return lines


"""``minicnn explain pool``: max and average pooling, forward and backward, worked by hand.

    minicnn explain pool                          # max, 4x4 input, 2x2 windows, stride 2
    minicnn explain pool --kind average --size 5 --pool-size 3 --stride 1

One channel of small integers (pooling treats every channel alone), ``padding='valid'``.
For window size ``P`` and stride ``S``: ``OH = (H - P) // S + 1`` (the same for ``OW``).

* max:     ``y[i, j] = max of x[i*S : i*S + P, j*S : j*S + P]``.  Locally ``y = x[winner]``,
  so the backward pass sends ``dy[i, j]`` to the winner alone.  On ties the *first*
  maximum in row-major order of the window wins, as TensorFlow's CPU kernel (the
  contract in :mod:`minicnn.kernels`).
* average: ``y[i, j] = (1 / P^2) * sum of the window``, so each of its ``P^2`` cells gets
  ``dy[i, j] / P^2``.

Overlapping windows (``S < P``) add their gradients on the cells they share.  The numbers
come from functions that return arrays (:func:`pool_numbers`); :func:`explain_pool` prints
them and checks them against minicnn's reference kernels and the active backend's.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from minicnn.explain.conv import _grid, _side_by_side
from minicnn.explain.text import decimal_grid, indent, signed_terms

KINDS = ("max", "average")


def pool_problem(size: int, out_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (size, size) of integers 0..5 (a narrow range, so ties happen) and
    ``dy`` (out_size, out_size) of integers 1..9 (none zero, so every route shows)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 6, size=(size, size)), rng.integers(1, 10, size=(out_size, out_size))


def window(x: np.ndarray, position: tuple[int, int], pool_size: int, stride: int) -> np.ndarray:
    """The ``P x P`` window output ``(i, j)`` reads: ``x[i*S : i*S + P, j*S : j*S + P]``."""
    i, j = position
    return x[i * stride:i * stride + pool_size, j * stride:j * stride + pool_size]


def winners(x: np.ndarray, out_size: int, pool_size: int, stride: int) -> np.ndarray:
    """``(OH, OW, 2)``: the (row, column) in ``x`` of each window's first maximum in
    row-major order (``np.argmax`` of the flattened window returns the first one)."""
    cells = np.zeros((out_size, out_size, 2), dtype=np.int64)
    for i, j in np.ndindex(out_size, out_size):
        row, column = divmod(int(np.argmax(window(x, (i, j), pool_size, stride))), pool_size)
        cells[i, j] = (i * stride + row, j * stride + column)
    return cells


def tied_cells(x: np.ndarray, position: tuple[int, int], pool_size: int,
               stride: int) -> list[tuple[int, int]]:
    """Every cell of window ``position`` holding its maximum, in row-major order."""
    values = window(x, position, pool_size, stride)
    i, j = position
    return [(i * stride + row, j * stride + column)
            for row, column in zip(*np.nonzero(values == values.max()))]


def pool_forward(kind: str, x: np.ndarray, out_size: int, pool_size: int,
                 stride: int) -> np.ndarray:
    """``y`` (OH, OW): each window's maximum (integers) or mean (float64)."""
    reduce = np.max if kind == "max" else np.mean
    y = np.array([[reduce(window(x, (i, j), pool_size, stride)) for j in range(out_size)]
                  for i in range(out_size)])
    return y.reshape(out_size, out_size)


def pool_backward(kind: str, x: np.ndarray, dy: np.ndarray, pool_size: int,
                  stride: int) -> np.ndarray:
    """``dx`` (H, W): max sends ``dy[i, j]`` to the winner; average gives every cell of the
    window ``dy[i, j] / P^2``.  Shared cells of overlapping windows add up."""
    dx = np.zeros(x.shape, dtype=np.float64)
    if kind == "max":
        for (i, j), (row, column) in zip(np.ndindex(dy.shape),
                                         winners(x, dy.shape[0], pool_size, stride).reshape(-1, 2)):
            dx[row, column] += dy[i, j]
        return dx
    for i, j in np.ndindex(dy.shape):
        window(dx, (i, j), pool_size, stride)[...] += dy[i, j] / pool_size ** 2
    return dx


@dataclass(frozen=True)
class PoolNumbers:
    """Everything ``explain pool`` prints: ``x`` (H, W), ``dy`` and ``y`` (OH, OW),
    ``winners`` (OH, OW, 2) for max (None for average), ``dx`` (H, W)."""

    kind: str
    pool_size: int
    stride: int
    x: np.ndarray
    dy: np.ndarray
    y: np.ndarray
    winners: np.ndarray | None
    dx: np.ndarray


def pool_numbers(kind: str = "max", size: int = 4, pool_size: int = 2, stride: int | None = None,
                 seed: int = 0) -> PoolNumbers:
    """Compute the walk-through's numbers; ``stride=None`` means ``pool_size`` (as Keras)."""
    stride = pool_size if stride is None else stride
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, received {kind!r}")
    if not 1 <= pool_size <= size <= 12 or not 1 <= stride <= size:
        raise ValueError(f"explain pool wants 1 <= pool size ({pool_size}) <= size ({size}) "
                         f"<= 12 and 1 <= stride ({stride}) <= size")
    out_size = (size - pool_size) // stride + 1
    x, dy = pool_problem(size, out_size, seed)
    return PoolNumbers(kind, pool_size, stride, x, dy,
                       pool_forward(kind, x, out_size, pool_size, stride),
                       winners(x, out_size, pool_size, stride) if kind == "max" else None,
                       pool_backward(kind, x, dy, pool_size, stride))


def kernel_results(module: ModuleType, numbers: PoolNumbers) -> tuple[np.ndarray, np.ndarray]:
    """``(y, dx)`` from one backend's pooling kernels, in float32, channel and batch dropped."""
    forward, backward = ((module.max_pool2d_forward, module.max_pool2d_backward)
                         if numbers.kind == "max"
                         else (module.avg_pool2d_forward, module.avg_pool2d_backward))
    window_shape = (numbers.pool_size, numbers.pool_size)
    y, cache = forward(numbers.x[np.newaxis, :, :, np.newaxis].astype(np.float32), window_shape,
                       (numbers.stride, numbers.stride), ((0, 0), (0, 0)))
    dx = backward(numbers.dy[np.newaxis, :, :, np.newaxis].astype(np.float32), cache)
    return y[0, :, :, 0], dx[0, :, :, 0]


def _agreement(actual: np.ndarray, expected: np.ndarray) -> str:
    if np.array_equal(actual, expected):
        return "same"
    difference = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    # Means of integers such as 1/9 are not exact in float32; anything larger is a bug.
    if difference <= 1e-5 * max(1.0, float(np.max(np.abs(expected)))):
        return f"same to float32 round-off ({difference:.1e})"
    return f"DIFFERENT (largest difference {difference:.3g})"


def explain_pool(kind: str = "max", size: int = 4, pool_size: int = 2, stride: int | None = None,
                 seed: int = 0) -> str:
    """Max or average pooling of a tiny input walked through, forward and backward."""
    from minicnn.backend import get_backend_name, kernels
    from minicnn.kernels import reference

    numbers = pool_numbers(kind, size, pool_size, stride, seed)
    stride, x, y, dy = numbers.stride, numbers.x, numbers.y, numbers.dy
    out_size = y.shape[0]
    decimals = 0 if kind == "max" else (2 if pool_size in (1, 2) else 3)

    def values(array: np.ndarray, width: int = 2) -> list[str]:
        return _grid(array, width) if decimals == 0 else decimal_grid(array, decimals)

    lines = [f"{kind.capitalize()} pooling of a {size}x{size} input with {pool_size}x{pool_size} "
             f"windows, stride {stride}, padding 'valid' (one channel: pooling treats every "
             "channel alone).", "",
             f"1. The output size: OH = (H - P) // S + 1 = ({size} - {pool_size}) // {stride} + 1 "
             f"= {out_size}; OW likewise: {out_size * out_size} windows."]
    lines += indent(_side_by_side([("x", _grid(x, 2))]))
    if stride < pool_size:
        lines.append(f"   Stride {stride} < window {pool_size}: neighbouring windows overlap.")
    elif stride > pool_size or (size - pool_size) % stride:
        lines.append("   Some cells belong to no window: they never reach the output and get "
                     "no gradient.")

    what = "maximum and its winner (the cell it came from)" if kind == "max" else "mean"
    lines += ["", f"2. Each window's {what}:"]
    any_tie = False
    for i, j in np.ndindex(y.shape):
        cells = window(x, (i, j), pool_size, stride)
        text = (f"   y[{i}, {j}]: rows {i * stride}:{i * stride + pool_size}, columns "
                f"{j * stride}:{j * stride + pool_size}: "
                + " ".join(_grid(cells, 1)) + " -> ")
        if kind == "max":
            row, column = numbers.winners[i, j]
            text += f"max {int(y[i, j])} at x[{row}, {column}]"
            ties = tied_cells(x, (i, j), pool_size, stride)
            if len(ties) > 1:
                any_tie = True
                text += (" (a tie with " + ", ".join(f"x[{r}, {c}]" for r, c in ties[1:])
                         + ": the first in row-major order wins)")
        else:
            text += (f"({signed_terms(cells.ravel())}) / {pool_size * pool_size} = "
                     f"{y[i, j]:.{decimals or 2}f}")
        lines.append(text)
    if kind == "max":
        lines.append("   Ties: " + ("" if any_tie else "none here (another --seed shows one); ")
                     + "when several cells hold the maximum, the first in row-major order "
                     "(left to right, then top to bottom) is the winner and alone gets the "
                     "gradient, as TensorFlow's CPU kernel does.")
    lines += indent(_side_by_side([("y", values(y, 2))]))

    if kind == "max":
        lines += ["", "3. Backward: locally y[i, j] = x[winner], so the derivative of y[i, j] "
                  "is 1 at the winner and 0 at every other cell of the window: each dy goes to "
                  "its winner alone" + (", and a cell that wins several overlapping windows collects all "
                             "their dy" if stride < pool_size else "") + "."]
        for i, j in np.ndindex(y.shape):
            row, column = numbers.winners[i, j]
            lines.append(f"   dy[{i}, {j}] = {dy[i, j]} -> dx[{row}, {column}]")
    else:
        share = pool_size * pool_size
        lines += ["", f"3. Backward: y[i, j] = (1 / {share}) * (sum of its window), so each of "
                  f"the {share} cells of the window gets dy[i, j] / {share}"
                  + ("; cells shared by overlapping windows add their shares" if stride < pool_size
                     else "") + "."]
        for i, j in np.ndindex(y.shape):
            lines.append(f"   dy[{i}, {j}] = {dy[i, j]} -> {dy[i, j] / share:.{decimals}f} to "
                         f"each cell of rows {i * stride}:{i * stride + pool_size}, columns "
                         f"{j * stride}:{j * stride + pool_size}")
    dx_grid = _grid(numbers.dx, 2) if kind == "max" else decimal_grid(numbers.dx, decimals)
    lines += indent(_side_by_side([("dy", _grid(dy, 2)), ("dx", dx_grid)]))

    checks = []
    for label, module in (("reference loops", reference), (f"{get_backend_name()} backend",
                                                           kernels())):
        kernel_y, kernel_dx = kernel_results(module, numbers)
        checks.append(f"{label}: y {_agreement(kernel_y, y)}, "
                      f"dx {_agreement(kernel_dx, numbers.dx)}")
    lines += ["", f"4. minicnn's own kernels ({'max' if kind == 'max' else 'avg'}_pool2d_forward "
              "and _backward, float32) on the same numbers: " + "; ".join(checks) + "."]
    return "\n".join(lines)

"""Max and average pooling: one compiled pass each way, and the public pooling kernels.

Max pooling computes the maximum *and* where it was in one pass: ``winner[n, i, j, c]``
is the window offset ``kh*KW + kw`` of the first maximum in row-major order (a small
integer, stored as int8 when the window has at most 127 cells), so the backward pass is
a scatter that reads ``dy`` and ``winner`` once.  Padded cells are skipped (they act as
``-inf``: never a winner) and a later equal value does not replace the first maximum.

Loops are parallel over output rows ``(n, i)`` when windows of different output rows
cannot touch the same input cell (``SH >= KH``, the usual case), else over images.
Average pooling's backward is a gather over input rows, as ``col2im`` is
(:mod:`~minicnn.kernels.numba.im2col`), so its tasks never write the same cell.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba.im2col import source_index
from minicnn.kernels.numba.operands import float_dtype
from minicnn.kernels.numba.threads import parallel_loop, use_threads


# --------------------------------------------------------------------------------------
# Max pooling loops
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _max_window(x, KH, KW, SH, SW, top, left, n, i, j, y, winner):
    """Any window: the first maximum over its real cells, channel by channel."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    # Real rows/columns of this window (padded cells never win).
    kh_start = max(0, top - i * SH)
    kh_stop = min(KH, H + top - i * SH)
    kw_start = max(0, left - j * SW)
    kw_stop = min(KW, W + left - j * SW)
    best = y[n, i, j]
    where = winner[n, i, j]
    first = x[n, i * SH - top + kh_start, j * SW - left + kw_start]
    for c in range(C):
        best[c] = first[c]
        where[c] = kh_start * KW + kw_start
    for kh in range(kh_start, kh_stop):
        for kw in range(kw_start, kw_stop):
            cell = x[n, i * SH - top + kh, j * SW - left + kw]
            offset = kh * KW + kw
            for c in range(C):
                value = cell[c]
                # Strictly greater: ties keep the first maximum.
                better = value > best[c]
                best[c] = value if better else best[c]
                where[c] = offset if better else where[c]


@njit(inline='always')
def first_maximum(v0, v1, v2, v3):
    """``(maximum, position)`` of a 2x2 window's values in row-major order: the first
    maximum wins ties (TensorFlow's rule); the fused kernels pick winners with it too."""
    best, at = v0, 0
    if v1 > best:
        best, at = v1, 1
    if v2 > best:
        best, at = v2, 2
    if v3 > best:
        best, at = v3, 3
    return best, at


@njit(cache=True)
def _max_pool_forward_row(x, KH, KW, SH, SW, top, left, task, y, winner):
    """:func:`max_pool_forward` for output row ``task = n*OH + i``."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    OH, OW = y.shape[1], y.shape[2]
    n = task // OH
    i = task - n * OH
    j_fast = 0
    if KH == 2 and KW == 2 and SH == 2 and SW == 2 and top == 0 and left == 0 and 2 * i + 1 < H:
        j_fast = min(OW, W // 2)   # windows with both columns inside
        upper = x[n, 2 * i]
        lower = x[n, 2 * i + 1]
        best_row = y[n, i]
        where_row = winner[n, i]
        for j in range(j_fast):
            for c in range(C):
                v0 = upper[2 * j, c]
                v1 = upper[2 * j + 1, c]
                v2 = lower[2 * j, c]
                v3 = lower[2 * j + 1, c]
                best_row[j, c], where_row[j, c] = first_maximum(v0, v1, v2, v3)
    for j in range(j_fast, OW):
        _max_window(x, KH, KW, SH, SW, top, left, n, i, j, y, winner)


@parallel_loop
def max_pool_forward(x, KH, KW, SH, SW, top, left, y, winner):
    """``y[n,i,j,c] = max`` over the window's real cells; ``winner`` = its offset ``kh*KW+kw``.

    The usual 2x2 window with stride 2 is written out cell by cell, so the channel loop
    is four loads and three selects, which vectorize (the general loop keeps its
    best-so-far in memory).
    """
    for task in prange(y.shape[0] * y.shape[1]):
        _max_pool_forward_row(x, KH, KW, SH, SW, top, left, np.int64(task), y, winner)


@njit(cache=True)
def _zero_rows(dx, n, start, stop):
    """``dx[n, start:stop] = 0`` (rows clipped to the array)."""
    H = dx.shape[1]
    for p in range(max(start, 0), min(stop, H)):
        for q in range(dx.shape[2]):
            for c in range(dx.shape[3]):
                dx[n, p, q, c] = 0.0


@njit(cache=True)
def _max_pool_write_row(dy, winner, KH, KW, SH, SW, top, left, n, i, dx):
    """Write output row ``(n, i)``'s windows of ``dx``: ``dy`` at the winner, 0 elsewhere.

    Only for windows that do not overlap (``SH >= KH``, ``SW >= KW``): each cell is
    written by one window, so plain stores (vector selects) replace ``+=``.
    """
    H, W, C = dx.shape[1], dx.shape[2], dx.shape[3]
    OW = dy.shape[2]
    kh_start = max(0, top - i * SH)
    kh_stop = min(KH, H + top - i * SH)
    for j in range(OW):
        kw_start = max(0, left - j * SW)
        kw_stop = min(KW, W + left - j * SW)
        grads = dy[n, i, j]
        where = winner[n, i, j]
        for kh in range(kh_start, kh_stop):
            p = i * SH - top + kh
            for kw in range(kw_start, kw_stop):
                offset = kh * KW + kw
                out = dx[n, p, j * SW - left + kw]
                for c in range(C):
                    out[c] = grads[c] if where[c] == offset else 0.0


@njit(cache=True)
def _max_pool_write_row_2x2(dy, winner, n, i, dx):
    """:func:`_max_pool_write_row` for 2x2 windows tiling the input.

    One inner loop per cell of the window, over 1-D channel rows, each with a single
    store stream: this is the shape LLVM vectorizes (one loop storing to four cells
    does not).
    """
    OW, C = dy.shape[2], dy.shape[3]
    for j in range(OW):
        grads = dy[n, i, j]
        where = winner[n, i, j]
        for cell in range(4):
            out = dx[n, 2 * i + cell // 2, 2 * j + cell % 2]
            for c in range(C):
                out[c] = grads[c] if where[c] == cell else 0.0


@njit(cache=True)
def _max_pool_add_row(dy, winner, KW, SH, SW, top, left, n, i, dx):
    """Add output row ``(n, i)``'s gradients to the winning cells (overlapping windows)."""
    OW, C = dy.shape[2], dy.shape[3]
    for j in range(OW):
        for c in range(C):
            offset = winner[n, i, j, c]
            kh = offset // KW
            kw = offset - kh * KW
            dx[n, i * SH - top + kh, j * SW - left + kw, c] += dy[n, i, j, c]


@njit(cache=True)
def _max_pool_backward_row(dy, winner, KH, KW, SH, SW, top, left, task, dx):
    """:func:`max_pool_backward` for output row ``task = n*OH + i`` (windows not overlapping).

    Output row i's windows touch only input rows [i*SH - top, (i+1)*SH - top): this task
    owns exactly those rows (the first and last tasks also take the rows no window
    covers), so tasks never share a row.  When the windows tile the input exactly,
    every cell is written by its window and the zeroing is skipped.
    """
    H, W = dx.shape[1], dx.shape[2]
    OH, OW = dy.shape[1], dy.shape[2]
    n = task // OH
    i = task - n * OH
    tiled = SH == KH and SW == KW and top == 0 and left == 0 and OH * SH == H and OW * SW == W
    if not tiled:
        start = i * SH - top
        stop = start + SH
        if i == 0:
            start = 0
        if i == OH - 1:
            stop = H
        _zero_rows(dx, n, start, stop)
    if tiled and KH == 2 and KW == 2:
        _max_pool_write_row_2x2(dy, winner, n, i, dx)
    else:
        _max_pool_write_row(dy, winner, KH, KW, SH, SW, top, left, n, i, dx)


@njit(cache=True)
def _max_pool_backward_image(dy, winner, KW, SH, SW, top, left, n, dx):
    """:func:`max_pool_backward` for image ``n`` when windows overlap: gradients added."""
    _zero_rows(dx, n, np.int64(0), dx.shape[1])
    for i in range(dy.shape[1]):
        _max_pool_add_row(dy, winner, KW, SH, SW, top, left, n, i, dx)


@parallel_loop
def max_pool_backward_disjoint(dy, winner, KH, KW, SH, SW, top, left, dx):
    """Overwrite ``dx`` ``(N, H, W, C)`` with each ``dy`` at its winner, zeros elsewhere.

    For windows that do not overlap (``SH >= KH`` and ``SW >= KW``); parallel over
    output rows.
    """
    for task in prange(dy.shape[0] * dy.shape[1]):
        _max_pool_backward_row(dy, winner, KH, KW, SH, SW, top, left, np.int64(task), dx)


@parallel_loop
def max_pool_backward_overlapping(dy, winner, KW, SH, SW, top, left, dx):
    """:func:`max_pool_backward_disjoint` for overlapping windows: parallel over images."""
    for n in prange(dy.shape[0]):
        _max_pool_backward_image(dy, winner, KW, SH, SW, top, left, np.int64(n), dx)


# --------------------------------------------------------------------------------------
# Average pooling loops
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _avg_pool_forward_row(x, KH, KW, SH, SW, top, left, task, y):
    """:func:`avg_pool_forward` for output row ``task = n*OH + i``."""
    H, W = x.shape[1], x.shape[2]
    OH, OW = y.shape[1], y.shape[2]
    n = task // OH
    i = task - n * OH
    for j in range(OW):
        out = y[n, i, j]
        out[:] = 0.0
        count = 0
        for kh in range(KH):
            ih = i * SH - top + kh
            if ih < 0 or ih >= H:
                continue
            for kw in range(KW):
                iw = j * SW - left + kw
                if iw < 0 or iw >= W:
                    continue
                count += 1
                cell = x[n, ih, iw]
                for c in range(out.shape[0]):
                    out[c] += cell[c]
        scale = 1.0 / count
        for c in range(out.shape[0]):
            out[c] *= scale


@parallel_loop
def avg_pool_forward(x, KH, KW, SH, SW, top, left, y):
    """``y[n,i,j,c]`` = mean of ``x`` over the window's real (unpadded) cells."""
    for task in prange(y.shape[0] * y.shape[1]):
        _avg_pool_forward_row(x, KH, KW, SH, SW, top, left, np.int64(task), y)


@njit(cache=True)
def _avg_pool_backward_row(dy, KH, KW, SH, SW, top, left, task, dx):
    """:func:`avg_pool_backward` for input row ``task = n*H + p``."""
    H, W = dx.shape[1], dx.shape[2]
    OH, OW = dy.shape[1], dy.shape[2]
    n = task // H
    p = task - n * H
    for q in range(W):
        out = dx[n, p, q]
        out[:] = 0.0
        for kh in range(KH):
            i = source_index(p, top, kh, SH, OH)
            if i < 0:
                continue
            # Real rows of output row i's window.
            rows = min(i * SH - top + KH, H) - max(i * SH - top, 0)
            for kw in range(KW):
                j = source_index(q, left, kw, SW, OW)
                if j < 0:
                    continue
                columns = min(j * SW - left + KW, W) - max(j * SW - left, 0)
                scale = 1.0 / (rows * columns)
                grads = dy[n, i, j]
                for c in range(out.shape[0]):
                    out[c] += grads[c] * scale


@parallel_loop
def avg_pool_backward(dy, KH, KW, SH, SW, top, left, dx):
    """Overwrite ``dx`` with ``dy / count`` spread over each window's real cells.

    A gather over input rows: cell ``(p, q)`` collects ``dy[i, j] / count(i, j)`` from
    every window covering it, so tasks never write the same cell.
    """
    for task in prange(dx.shape[0] * dx.shape[1]):
        _avg_pool_backward_row(dy, KH, KW, SH, SW, top, left, np.int64(task), dx)


# --------------------------------------------------------------------------------------
# The pooling kernels
# --------------------------------------------------------------------------------------

class MaxPoolCache(NamedTuple):
    """What :func:`max_pool2d_backward` needs from :func:`max_pool2d_forward`."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    winner: np.ndarray
    """``(N, OH, OW, C)``: offset ``kh*KW + kw`` of each window's first maximum."""
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    pads: Pads


class AvgPoolCache(NamedTuple):
    """What :func:`avg_pool2d_backward` needs from :func:`avg_pool2d_forward`."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    pads: Pads


def max_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, MaxPoolCache]:
    """Max over each ``KH x KW`` window, with the winner's position, in one pass.

    Padded cells never win (they act as ``-inf``); on ties the first maximum in
    row-major window order wins, and only it gets the gradient.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``, ``y`` ``(N, OH, OW, C)``, ``OH = (H + top + bottom - KH) // SH + 1``.
    """
    dtype = float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, _), (left, _) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)
    y = np.empty((N, OH, OW, C), dtype=dtype)
    # The winner's offset kh*KW + kw within its window: one byte for the usual windows.
    winner = np.empty((N, OH, OW, C), dtype=np.int8 if KH * KW <= 127 else np.int32)
    use_threads(x.size)
    max_pool_forward(x, KH, KW, SH, SW, top, left, y, winner)
    return y, MaxPoolCache(x.shape, dtype, winner, pool_size, strides, pads)


def max_pool2d_backward(dy: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """``dx`` ``(N, H, W, C)``: each ``dy[n, i, j, c]`` at its window's winner, 0 elsewhere."""
    KH, KW = cache.pool_size
    SH, SW = cache.strides
    (top, _), (left, _) = cache.pads
    dy = np.ascontiguousarray(dy, dtype=cache.dtype)
    dx = np.empty(cache.x_shape, dtype=cache.dtype)
    use_threads(dx.size)
    if SH >= KH and SW >= KW:
        max_pool_backward_disjoint(dy, cache.winner, KH, KW, SH, SW, top, left, dx)
    else:
        max_pool_backward_overlapping(dy, cache.winner, KW, SH, SW, top, left, dx)
    return dx


def avg_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, AvgPoolCache]:
    """Mean over the real (unpadded) cells of each ``KH x KW`` window.

    Args and returns as :func:`max_pool2d_forward`.
    """
    dtype = float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, _), (left, _) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)
    y = np.empty((N, OH, OW, C), dtype=dtype)
    use_threads(x.size)
    avg_pool_forward(x, KH, KW, SH, SW, top, left, y)
    return y, AvgPoolCache(x.shape, dtype, pool_size, strides, pads)


def avg_pool2d_backward(dy: np.ndarray, cache: AvgPoolCache) -> np.ndarray:
    """``dx`` ``(N, H, W, C)``: ``dy / count`` to every real cell of each window, summed."""
    KH, KW = cache.pool_size
    SH, SW = cache.strides
    (top, _), (left, _) = cache.pads
    dy = np.ascontiguousarray(dy, dtype=cache.dtype)
    dx = np.empty(cache.x_shape, dtype=cache.dtype)
    use_threads(dx.size)
    avg_pool_backward(dy, KH, KW, SH, SW, top, left, dx)
    return dx

"""Compiled loops behind the Numba pooling kernels (see :mod:`minicnn.kernels.numba_ops`).

Max pooling computes the maximum *and* where it was in one pass: ``winner[n, i, j, c]``
is the window offset ``kh*KW + kw`` of the first maximum in row-major order (a small
integer, stored as int8 when the window has at most 127 cells), so the backward pass is
a scatter that reads ``dy`` and ``winner`` once.  Padded cells are skipped (they act as
``-inf``: never a winner) and a later equal value does not replace the first maximum.

Loops are parallel over output rows ``(n, i)`` when windows of different output rows
cannot touch the same input cell (``SH >= KH``, the usual case), else over images.
"""

from __future__ import annotations

from numba import njit, prange

from minicnn.kernels.numba_parallel import parallel_and_serial


@parallel_and_serial
def max_pool_forward(x, KH, KW, SH, SW, top, left, relu, y, winner):
    """``y[n,i,j,c] = max`` over the window's real cells; ``winner`` = its offset ``kh*KW+kw``.

    With ``relu`` the stored maximum is ``max(., 0)`` (``relu(max x) = max relu(x)``;
    the winner is unchanged, and its gradient is zeroed in the backward pass when the
    maximum was not positive).
    """
    N, H, W, C = x.shape
    _, OH, OW, _ = y.shape
    for task in prange(N * OH):
        n = task // OH
        i = task - n * OH
        for j in range(OW):
            first = True
            for kh in range(KH):
                ih = i * SH - top + kh
                if ih < 0 or ih >= H:
                    continue
                for kw in range(KW):
                    iw = j * SW - left + kw
                    if iw < 0 or iw >= W:
                        continue
                    offset = kh * KW + kw
                    if first:
                        for c in range(C):
                            y[n, i, j, c] = x[n, ih, iw, c]
                            winner[n, i, j, c] = offset
                        first = False
                    else:
                        for c in range(C):
                            v = x[n, ih, iw, c]
                            # Strictly greater: ties keep the first maximum.
                            if v > y[n, i, j, c]:
                                y[n, i, j, c] = v
                                winner[n, i, j, c] = offset
            if relu:
                for c in range(C):
                    if y[n, i, j, c] < 0.0:
                        y[n, i, j, c] = 0.0


@njit(cache=True)
def _zero_rows(dx, n, start, stop):
    """``dx[n, start:stop] = 0`` (rows clipped to the array)."""
    H = dx.shape[1]
    for p in range(max(start, 0), min(stop, H)):
        for q in range(dx.shape[2]):
            for c in range(dx.shape[3]):
                dx[n, p, q, c] = 0.0


@njit(cache=True)
def _max_pool_scatter_row(dy, y, relu, winner, KW, SH, SW, top, left, n, i, dx):
    """Add output row ``(n, i)``'s gradients to the winning cells of ``dx``."""
    OW, C = dy.shape[2], dy.shape[3]
    for j in range(OW):
        for c in range(C):
            offset = winner[n, i, j, c]
            kh = offset // KW
            kw = offset - kh * KW
            g = dy[n, i, j, c]
            # With the fused ReLU a non-positive maximum passed no gradient.
            if relu and not (y[n, i, j, c] > 0.0):
                g = 0.0
            dx[n, i * SH - top + kh, j * SW - left + kw, c] += g


@parallel_and_serial
def max_pool_backward(dy, y, relu, winner, KH, KW, SH, SW, top, left, dx):
    """Overwrite ``dx`` ``(N, H, W, C)`` with zeros plus each ``dy`` at its winner."""
    N, H, W, C = dx.shape
    _, OH, OW, _ = dy.shape
    if SH >= KH:
        # Output row i's windows touch only input rows [i*SH - top, (i+1)*SH - top):
        # the task for (n, i) zeroes and fills exactly those rows (the first and last
        # tasks also take the rows no window covers), so tasks never share a row.
        for task in prange(N * OH):
            n = task // OH
            i = task - n * OH
            start = i * SH - top
            stop = start + SH
            if i == 0:
                start = 0
            if i == OH - 1:
                stop = H
            _zero_rows(dx, n, start, stop)
            _max_pool_scatter_row(dy, y, relu, winner, KW, SH, SW, top, left, n, i, dx)
    else:
        # Overlapping windows share rows: one task per image.
        for n in prange(N):
            _zero_rows(dx, n, 0, H)
            for i in range(OH):
                _max_pool_scatter_row(dy, y, relu, winner, KW, SH, SW, top, left, n, i, dx)


@parallel_and_serial
def avg_pool_forward(x, KH, KW, SH, SW, top, left, y):
    """``y[n,i,j,c]`` = mean of ``x`` over the window's real (unpadded) cells."""
    N, H, W, C = x.shape
    _, OH, OW, _ = y.shape
    for task in prange(N * OH):
        n = task // OH
        i = task - n * OH
        for j in range(OW):
            for c in range(C):
                y[n, i, j, c] = 0.0
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
                    for c in range(C):
                        y[n, i, j, c] += x[n, ih, iw, c]
            scale = 1.0 / count
            for c in range(C):
                y[n, i, j, c] *= scale


@parallel_and_serial
def avg_pool_backward(dy, KH, KW, SH, SW, top, left, dx):
    """Overwrite ``dx`` with ``dy / count`` spread over each window's real cells.

    A gather over input rows: cell ``(p, q)`` collects ``dy[i, j] / count(i, j)`` from
    every window covering it, so tasks never write the same cell.
    """
    N, H, W, C = dx.shape
    _, OH, OW, _ = dy.shape
    for task in prange(N * H):
        n = task // H
        p = task - n * H
        for q in range(W):
            for c in range(C):
                dx[n, p, q, c] = 0.0
            for kh in range(KH):
                t = p + top - kh
                if t < 0 or t % SH != 0:
                    continue
                i = t // SH
                if i >= OH:
                    continue
                # Real rows of output row i's window.
                rows = min(i * SH - top + KH, H) - max(i * SH - top, 0)
                for kw in range(KW):
                    s = q + left - kw
                    if s < 0 or s % SW != 0:
                        continue
                    j = s // SW
                    if j >= OW:
                        continue
                    columns = min(j * SW - left + KW, W) - max(j * SW - left, 0)
                    scale = 1.0 / (rows * columns)
                    for c in range(C):
                        dx[n, p, q, c] += dy[n, i, j, c] * scale

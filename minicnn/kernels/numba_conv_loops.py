"""Compiled loops around the one BLAS GEMM of a convolution: patches, scatter, epilogues.

These are the memory-bound passes of :mod:`minicnn.kernels.numba_ops`'s GEMM path.
Every loop is parallel over *rows* ``(n, i)`` of the batch (``prange`` over ``N * OH``
or ``N * H``), so that a batch of one large image (VGG16 visualizations) still uses
every core, and every parallel task writes memory no other task writes: no atomics, no
``np.add.at``.  Each loop body is an ``@njit`` helper for one row (called with an int64
index: a ``prange`` index is unsigned inside the parallel region, and a second integer
type would compile the helper twice), which the fused loops of
:mod:`minicnn.kernels.numba_blas` reuse.

Layout everywhere: ``x`` NHWC ``(N, H, W, C)``, kernel HWIO ``(KH, KW, C, F)``, patch
matrix ``cols`` of shape ``(N*OH*OW, KH*KW*C)`` with row ``(n*OH + i)*OW + j`` and
column ``(kh*KW + kw)*C + c`` holding ``x[n, i*SH - top + kh, j*SW - left + kw, c]``
(zero where that cell is padding).  This column order is exactly
``kernel.reshape(KH*KW*C, F)``'s row order, so ``y = cols @ kernel_matrix``.

``fastmath`` stays off (results must match the reference to round-off), so inner loops
are written to vectorize without reassociation: the innermost index always runs over
independent outputs (channels ``c`` or filters ``f``), never over a reduction, and a
flag such as ``relu`` is tested outside the inner loop (a branch inside it stops LLVM
from vectorizing, measured 3-4x slower).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba_parallel import parallel_loop, worker_share


@njit(cache=True)
def im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, task, cols, first_row):
    """Patches of output row ``task = n*OH + i`` into ``cols[task*OW - first_row ...]``.

    For one tap row ``kh`` the ``KW*C`` values of a patch are contiguous in ``x`` (NHWC)
    and in ``cols``; when the whole run lies inside the image it is one copy loop.
    """
    N, H, W, C = x.shape
    run = KW * C
    rows = x.reshape(N, H, W * C)
    n = task // OH
    i = task - n * OH
    for j in range(OW):
        row = task * OW + j - first_row
        iw0 = j * SW - left
        for kh in range(KH):
            ih = i * SH - top + kh
            base = kh * run
            if 0 <= ih < H and iw0 >= 0 and iw0 + KW <= W:
                first = iw0 * C
                for e in range(run):
                    cols[row, base + e] = rows[n, ih, first + e]
                continue
            for kw in range(KW):
                iw = iw0 + kw
                offset = base + kw * C
                if 0 <= ih < H and 0 <= iw < W:
                    for c in range(C):
                        cols[row, offset + c] = x[n, ih, iw, c]
                else:
                    for c in range(C):
                        cols[row, offset + c] = 0.0


@parallel_loop
def im2col(x, KH, KW, SH, SW, top, left, OH, OW, cols):
    """Fill ``cols`` ``(N*OH*OW, KH*KW*C)`` with the patches of ``x`` (padding read as 0)."""
    for task in prange(x.shape[0] * OH):
        im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, np.int64(task), cols, 0)


@njit(inline="always")
def source_index(p, before, k, stride, out):
    """The output index ``i`` whose window tap ``k`` reads input index ``p``, or -1.

    Along one axis output ``i`` reads inputs ``i*stride - before + k``; so ``p`` is read
    through tap ``k`` by ``i = (p + before - k) / stride`` when that is a whole number
    in ``0 <= i < out``.
    """
    t = p + before - k
    if t < 0 or t % stride != 0 or t // stride >= out:
        return -1
    return t // stride


@njit(cache=True)
def col2im_task(dcols, KH, KW, SH, SW, top, left, OH, OW, task, dx):
    """:func:`col2im` for input row ``task = n*H + p``: zero it, add the patches landing on it."""
    H, W, C = dx.shape[1], dx.shape[2], dx.shape[3]
    n = task // H
    p = task - n * H
    out = dx[n, p]
    out[:] = 0.0
    for kh in range(KH):
        i = source_index(p, top, kh, SH, OH)
        if i < 0:
            continue
        for j in range(OW):
            row = (n * OH + i) * OW + j
            for kw in range(KW):
                q = j * SW - left + kw
                if q < 0 or q >= W:
                    continue
                base = (kh * KW + kw) * C
                cell = out[q]
                for c in range(C):
                    cell[c] += dcols[row, base + c]


@parallel_loop
def col2im(dcols, KH, KW, SH, SW, top, left, OH, OW, dx):
    """Overwrite ``dx`` ``(N, H, W, C)`` with the patch gradients ``dcols`` summed back.

    ``dx[n, p, q, c] = sum over (kh, kw) with p = i*SH - top + kh, q = j*SW - left + kw
    of dcols[(n*OH + i)*OW + j, (kh*KW + kw)*C + c]``.  Each parallel task owns one input
    row ``(n, p)``: it zeroes it, then adds every patch row that lands on it (the output
    rows ``i`` whose tap ``kh`` reads row ``p``), so tasks never write the same cell.
    """
    for task in prange(dx.shape[0] * dx.shape[1]):
        col2im_task(dcols, KH, KW, SH, SW, top, left, OH, OW, np.int64(task), dx)


@njit(cache=True)
def bias_relu_rows(y, start, stop, bias, relu):
    """``y[r] += bias`` for rows ``start <= r < stop``, then ``max(., 0)`` when ``relu``."""
    F = y.shape[1]
    if relu:
        for r in range(start, stop):
            for f in range(F):
                v = y[r, f] + bias[f]
                y[r, f] = v if v > 0.0 else 0.0
    else:
        for r in range(start, stop):
            for f in range(F):
                y[r, f] += bias[f]


@parallel_loop
def bias_relu_inplace(y, bias, relu):
    """``y[r, f] = y[r, f] + bias[f]``, then ``max(., 0)`` when ``relu``; ``y`` is 2-D."""
    for r in prange(y.shape[0]):
        bias_relu_rows(y, np.int64(r), np.int64(r) + 1, bias, relu)


@njit(cache=True)
def sum_partials(partial):
    """``partial.sum(axis=0)`` for a float64 ``(threads, ...)`` array of per-thread sums.

    Written out: Numba's generic ``sum(axis=...)`` adds seconds of compile time.
    """
    total = partial[0].copy()
    for worker in range(1, partial.shape[0]):
        total += partial[worker]
    return total


# Rows summed in the array's own dtype before a float64 flush: short float32 sums keep
# the inner loop vectorized, the float64 total keeps a long batch from losing digits.
_FLUSH_ROWS = 64


@njit(cache=True)
def gradient_rows(dy, y, relu, first, last, g, sums):
    """Rows ``first <= r < last`` of a 2-D gradient: mask, and add to the float64 ``sums``.

    With ``relu``, ``g[r] = dy[r] * (y[r] > 0)`` (written as a select) and ``g``'s rows
    are summed; without, ``dy``'s rows are summed and ``g`` is not touched.
    """
    F = dy.shape[1]
    block = np.zeros(F, dtype=dy.dtype)
    for start in range(first, last, _FLUSH_ROWS):
        block[:] = 0.0
        for r in range(start, min(last, start + _FLUSH_ROWS)):
            grads = dy[r]
            if relu:
                kept = y[r]
                out = g[r]
                for f in range(F):
                    v = grads[f] if kept[f] > 0.0 else 0.0
                    out[f] = v
                    block[f] += v
            else:
                for f in range(F):
                    block[f] += grads[f]
        for f in range(F):
            sums[f] += block[f]


@parallel_loop
def relu_grad_and_bias_sums(dy, y, threads, g):
    """``g = dy * (y > 0)`` (the ReLU's backward) and its column sums (float64).

    ``dy``, ``y``, ``g`` are ``(M, F)``; ``y`` is the ReLU's output: positive exactly
    where its input was.  One partial sum per thread.
    """
    partial = np.zeros((threads, dy.shape[1]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, dy.shape[0])
        gradient_rows(dy, y, True, first, last, g, partial[worker])
    return sum_partials(partial)


@parallel_loop
def column_sums(g, threads):
    """``sum_r g[r, f]`` of a 2-D ``(M, F)`` array, in float64 (one partial per thread)."""
    partial = np.zeros((threads, g.shape[1]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, g.shape[0])
        gradient_rows(g, g, False, first, last, g, partial[worker])
    return sum_partials(partial)

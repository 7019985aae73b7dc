"""Compiled loops around the one BLAS GEMM of a convolution: patches, scatter, epilogues.

These are the memory-bound passes of :mod:`minicnn.kernels.numba_ops`'s GEMM path
(the direct path for single-channel 3x3 layers is :mod:`numba_direct_loops`).  Every loop is parallel over *rows* ``(n, i)`` of the batch (``prange`` over
``N * OH`` or ``N * H``), so that a batch of one large image (VGG16 visualizations)
still uses every core, and every parallel task writes memory no other task writes:
no atomics, no ``np.add.at``.

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

from minicnn.kernels.numba_parallel import parallel_and_serial


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


@parallel_and_serial
def im2col(x, KH, KW, SH, SW, top, left, OH, OW, cols):
    """Fill ``cols`` ``(N*OH*OW, KH*KW*C)`` with the patches of ``x`` (padding read as 0)."""
    for task in prange(x.shape[0] * OH):
        im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, task, cols, 0)


@parallel_and_serial
def col2im(dcols, KH, KW, SH, SW, top, left, OH, OW, dx):
    """Overwrite ``dx`` ``(N, H, W, C)`` with the patch gradients ``dcols`` summed back.

    ``dx[n, p, q, c] = sum over (kh, kw) with p = i*SH - top + kh, q = j*SW - left + kw
    of dcols[(n*OH + i)*OW + j, (kh*KW + kw)*C + c]``.  Each parallel task owns one input
    row ``(n, p)``: it zeroes it, then adds every patch row that lands on it (the output
    rows ``i`` whose tap ``kh`` reads row ``p``), so tasks never write the same cell.
    """
    N, H, W, C = dx.shape
    for task in prange(N * H):
        n = task // H
        p = task - n * H
        for q in range(W):
            for c in range(C):
                dx[n, p, q, c] = 0.0
        for kh in range(KH):
            # Output row i reads input row p through tap kh when i*SH - top + kh = p.
            t = p + top - kh
            if t < 0 or t % SH != 0 or t // SH >= OH:
                continue
            i = t // SH
            for j in range(OW):
                row = (n * OH + i) * OW + j
                for kw in range(KW):
                    q = j * SW - left + kw
                    if q < 0 or q >= W:
                        continue
                    base = (kh * KW + kw) * C
                    for c in range(C):
                        dx[n, p, q, c] += dcols[row, base + c]


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


@parallel_and_serial
def bias_relu_inplace(y, bias, relu):
    """``y[r, f] = y[r, f] + bias[f]``, then ``max(., 0)`` when ``relu``; ``y`` is 2-D."""
    for r in prange(y.shape[0]):
        bias_relu_rows(y, r, r + 1, bias, relu)


@parallel_and_serial
def relu_inplace(y):
    """``y = max(y, 0)`` elementwise on a 2-D array (the conv output without bias)."""
    M, F = y.shape
    for r in prange(M):
        for f in range(F):
            v = y[r, f]
            y[r, f] = v if v > 0.0 else 0.0


# Rows summed in the array's own dtype before a float64 flush: short float32 sums keep
# the inner loop vectorized, the float64 total keeps a long batch from losing digits.
_FLUSH_ROWS = 64


@parallel_and_serial
def relu_grad_and_bias_sums(dy, y, threads, g):
    """``g = dy * (y > 0)`` (the ReLU's backward, written as a select) and its column sums.

    ``dy``, ``y``, ``g`` are ``(M, F)``; returns ``sum_r g[r, f]`` (the bias gradient) in
    float64.  ``y`` is the ReLU's output: positive exactly where its input was.
    """
    M, F = dy.shape
    partial = np.zeros((threads, F), dtype=np.float64)
    chunk = (M + threads - 1) // threads
    for t in prange(threads):
        block = np.zeros(F, dtype=dy.dtype)
        stop = min(M, (t + 1) * chunk)
        for start in range(t * chunk, stop, _FLUSH_ROWS):
            block[:] = 0.0
            for r in range(start, min(stop, start + _FLUSH_ROWS)):
                for f in range(F):
                    v = dy[r, f] if y[r, f] > 0.0 else 0.0
                    g[r, f] = v
                    block[f] += v
            for f in range(F):
                partial[t, f] += block[f]
    sums = np.zeros(F, dtype=np.float64)
    for t in range(threads):
        for f in range(F):
            sums[f] += partial[t, f]
    return sums


@parallel_and_serial
def column_sums(g, threads):
    """``sum_r g[r, f]`` of a 2-D ``(M, F)`` array, in float64 (blocks as above)."""
    M, F = g.shape
    partial = np.zeros((threads, F), dtype=np.float64)
    chunk = (M + threads - 1) // threads
    for t in prange(threads):
        block = np.zeros(F, dtype=g.dtype)
        stop = min(M, (t + 1) * chunk)
        for start in range(t * chunk, stop, _FLUSH_ROWS):
            block[:] = 0.0
            for r in range(start, min(stop, start + _FLUSH_ROWS)):
                for f in range(F):
                    block[f] += g[r, f]
            for f in range(F):
                partial[t, f] += block[f]
    sums = np.zeros(F, dtype=np.float64)
    for t in range(threads):
        for f in range(F):
            sums[f] += partial[t, f]
    return sums

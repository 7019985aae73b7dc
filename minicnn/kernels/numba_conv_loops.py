"""Compiled loops behind the Numba convolution: patch gathering, scattering, direct conv.

These are the memory-bound passes around the one BLAS GEMM of a convolution (see
:mod:`minicnn.kernels.numba_ops`), and the direct loops used when the GEMM would be
tiny.  Every loop is parallel over *rows* ``(n, i)`` of the batch (``prange`` over
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
independent outputs (channels ``c`` or filters ``f``), never over a reduction.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from minicnn.kernels.numba_parallel import parallel_and_serial


@parallel_and_serial
def im2col(x, KH, KW, SH, SW, top, left, OH, OW, cols):
    """Fill ``cols`` ``(N*OH*OW, KH*KW*C)`` with the patches of ``x`` (padding read as 0)."""
    N, H, W, C = x.shape
    for task in prange(N * OH):
        n = task // OH
        i = task - n * OH
        for j in range(OW):
            row = task * OW + j
            for kh in range(KH):
                ih = i * SH - top + kh
                row_inside = 0 <= ih < H
                for kw in range(KW):
                    iw = j * SW - left + kw
                    base = (kh * KW + kw) * C
                    if row_inside and 0 <= iw < W:
                        for c in range(C):
                            cols[row, base + c] = x[n, ih, iw, c]
                    else:
                        for c in range(C):
                            cols[row, base + c] = 0.0


@parallel_and_serial
def col2im(dcols, KH, KW, SH, SW, top, left, OH, OW, dx):
    """Overwrite ``dx`` ``(N, H, W, C)`` with the patch gradients ``dcols`` summed back.

    ``dx[n, p, q, c] = sum over (kh, kw) with p = i*SH - top + kh, q = j*SW - left + kw
    of dcols[(n*OH + i)*OW + j, (kh*KW + kw)*C + c]``.  Written as a *gather*: each input
    row ``(n, p)`` collects from the outputs whose windows cover it, so parallel tasks
    never write the same cell and no zeroing pass is needed.
    """
    N, H, W, C = dx.shape
    for task in prange(N * H):
        n = task // H
        p = task - n * H
        for q in range(W):
            for c in range(C):
                dx[n, p, q, c] = 0.0
            for kh in range(KH):
                # Output row i covers input row p through tap kh when i*SH = p + top - kh.
                t = p + top - kh
                if t < 0 or t % SH != 0:
                    continue
                i = t // SH
                if i >= OH:
                    continue
                for kw in range(KW):
                    s = q + left - kw
                    if s < 0 or s % SW != 0:
                        continue
                    j = s // SW
                    if j >= OW:
                        continue
                    row = (n * OH + i) * OW + j
                    base = (kh * KW + kw) * C
                    for c in range(C):
                        dx[n, p, q, c] += dcols[row, base + c]


@parallel_and_serial
def bias_relu_inplace(y, bias, relu):
    """``y[r, f] = (y[r, f] + bias[f])``, then ``max(., 0)`` when ``relu``; ``y`` is 2-D."""
    M, F = y.shape
    for r in prange(M):
        for f in range(F):
            v = y[r, f] + bias[f]
            if relu and v < 0.0:
                v = 0.0
            y[r, f] = v


@parallel_and_serial
def relu_inplace(y):
    """``y = max(y, 0)`` elementwise on a 2-D array (the conv output without bias)."""
    M, F = y.shape
    for r in prange(M):
        for f in range(F):
            if y[r, f] < 0.0:
                y[r, f] = 0.0


@parallel_and_serial
def relu_grad_and_bias_sums(dy, y, relu, threads, g):
    """``g = dy * (y > 0)`` (or ``g = dy`` when not ``relu``) and its column sums.

    ``dy``, ``y``, ``g`` are ``(M, F)``.  Returns the per-filter sums
    ``sum_r g[r, f]`` (the bias gradient), accumulated in float64 per thread.
    """
    M, F = dy.shape
    partial = np.zeros((threads, F), dtype=np.float64)
    chunk = (M + threads - 1) // threads
    for t in prange(threads):
        start = t * chunk
        stop = min(M, start + chunk)
        for r in range(start, stop):
            for f in range(F):
                v = dy[r, f]
                if relu and not (y[r, f] > 0.0):
                    v = 0.0
                g[r, f] = v
                partial[t, f] += v
    sums = np.zeros(F, dtype=np.float64)
    for t in range(threads):
        for f in range(F):
            sums[f] += partial[t, f]
    return sums


@parallel_and_serial
def direct_conv_forward(x, kernel, bias, SH, SW, top, left, relu, y):
    """Direct convolution into ``y`` ``(N, OH, OW, F)``, for inputs with few channels.

    ``y[n, i, j, f] = bias[f] + sum_{kh, kw, c} x[n, i*SH - top + kh, j*SW - left + kw, c]
    * kernel[kh, kw, c, f]``, then ``max(., 0)`` when ``relu``.  With ``C = 1`` a GEMM
    would have an inner dimension of 9: memory traffic, not arithmetic.  Here each
    input value is read once per tap and broadcast over the ``F`` filters (a vector).
    """
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    _, OH, OW, _ = y.shape
    for task in prange(N * OH):
        n = task // OH
        i = task - n * OH
        acc = np.empty(F, dtype=y.dtype)
        for j in range(OW):
            for f in range(F):
                acc[f] = bias[f]
            for kh in range(KH):
                ih = i * SH - top + kh
                if ih < 0 or ih >= H:
                    continue
                for kw in range(KW):
                    iw = j * SW - left + kw
                    if iw < 0 or iw >= W:
                        continue
                    for c in range(C):
                        v = x[n, ih, iw, c]
                        for f in range(F):
                            acc[f] += v * kernel[kh, kw, c, f]
            for f in range(F):
                v = acc[f]
                if relu and v < 0.0:
                    v = 0.0
                y[n, i, j, f] = v


@parallel_and_serial
def direct_conv_backward_weights(x, dy, y, relu, KH, KW, SH, SW, top, left, threads):
    """Kernel and bias gradients of a direct convolution (no patch matrix).

    ``g = dy * (y > 0)`` when ``relu`` (``y`` the forward's output), else ``g = dy``;
    ``dkernel[kh, kw, c, f] = sum_{n, i, j} x[n, i*SH - top + kh, j*SW - left + kw, c]
    * g[n, i, j, f]`` and ``dbias[f] = sum_{n, i, j} g[n, i, j, f]``.

    Each thread sums its share of the ``N*OH`` output rows; one output row is
    accumulated in ``x``'s dtype (vectorizes over ``f``) and flushed into a float64
    per-thread total, so long batches do not lose float32 precision.
    Returns ``(dkernel, dbias)`` in float64.
    """
    N, H, W, C = x.shape
    _, OH, OW, F = dy.shape
    rows = N * OH
    partial_k = np.zeros((threads, KH, KW, C, F), dtype=np.float64)
    partial_b = np.zeros((threads, F), dtype=np.float64)
    chunk = (rows + threads - 1) // threads
    for t in prange(threads):
        row_k = np.empty((KH, KW, C, F), dtype=dy.dtype)
        row_b = np.empty(F, dtype=dy.dtype)
        g = np.empty(F, dtype=dy.dtype)
        for task in range(t * chunk, min(rows, (t + 1) * chunk)):
            n = task // OH
            i = task - n * OH
            row_k[:] = 0.0
            row_b[:] = 0.0
            for j in range(OW):
                for f in range(F):
                    v = dy[n, i, j, f]
                    if relu and not (y[n, i, j, f] > 0.0):
                        v = 0.0
                    g[f] = v
                    row_b[f] += v
                for kh in range(KH):
                    ih = i * SH - top + kh
                    if ih < 0 or ih >= H:
                        continue
                    for kw in range(KW):
                        iw = j * SW - left + kw
                        if iw < 0 or iw >= W:
                            continue
                        for c in range(C):
                            v = x[n, ih, iw, c]
                            for f in range(F):
                                row_k[kh, kw, c, f] += v * g[f]
            for kh in range(KH):
                for kw in range(KW):
                    for c in range(C):
                        for f in range(F):
                            partial_k[t, kh, kw, c, f] += row_k[kh, kw, c, f]
            for f in range(F):
                partial_b[t, f] += row_b[f]
    dkernel = np.zeros((KH, KW, C, F), dtype=np.float64)
    dbias = np.zeros(F, dtype=np.float64)
    for t in range(threads):
        dkernel += partial_k[t]
        dbias += partial_b[t]
    return dkernel, dbias


@parallel_and_serial
def direct_conv_backward_input(dy, y, relu, kernel, SH, SW, top, left, dx):
    """Input gradient of a direct convolution, overwriting ``dx`` ``(N, H, W, C)``.

    ``dx[n, p, q, c] = sum over taps (kh, kw) and outputs (i, j) with
    p = i*SH - top + kh, q = j*SW - left + kw of sum_f g[n, i, j, f] * kernel[kh, kw, c, f]``
    with ``g = dy * (y > 0)`` when ``relu``.  A gather over input rows, as in
    :func:`col2im`.  Used only for few-channel inputs, where a GEMM is a poor fit.
    """
    N, H, W, C = dx.shape
    KH, KW, _, F = kernel.shape
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
                for kw in range(KW):
                    s = q + left - kw
                    if s < 0 or s % SW != 0:
                        continue
                    j = s // SW
                    if j >= OW:
                        continue
                    for c in range(C):
                        total = 0.0
                        for f in range(F):
                            v = dy[n, i, j, f]
                            if relu and not (y[n, i, j, f] > 0.0):
                                v = 0.0
                            total += v * kernel[kh, kw, c, f]
                        dx[n, p, q, c] += total


@parallel_and_serial
def column_sums(g, threads):
    """``sum_r g[r, f]`` of a 2-D ``(M, F)`` array, accumulated in float64 per thread."""
    M, F = g.shape
    partial = np.zeros((threads, F), dtype=np.float64)
    chunk = (M + threads - 1) // threads
    for t in prange(threads):
        for r in range(t * chunk, min(M, (t + 1) * chunk)):
            for f in range(F):
                partial[t, f] += g[r, f]
    sums = np.zeros(F, dtype=np.float64)
    for t in range(threads):
        for f in range(F):
            sums[f] += partial[t, f]
    return sums

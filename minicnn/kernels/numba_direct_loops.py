"""Direct convolution for single-channel 3x3 layers (MNIST's first layer), no GEMM.

With ``C = 1`` and a 3x3 kernel the GEMM of the im2col path has an inner dimension of
9: building the ``(N*OH*OW, 9)`` patch matrix costs more than the arithmetic it feeds
(measured on the MNIST first layer, single core: patches 0.9 ms + GEMM 0.4 ms + bias/ReLU
0.1 ms, against 0.43 ms here).  Instead each output pixel loads its nine input values
into scalars and writes, for all ``F`` filters at once (a vector loop over ``f``)::

    y[n, i, j, f] = bias[f] + sum_{t < 9} patch_t * kernel_t[f]

with no read-modify-write of ``y``.  The input arrives zero-padded (``xp`` of shape
``(N, top + H + bottom, left + W + right)``; single-channel, so the copy is small), which
removes every bounds test from the loops.  Loops are parallel over output rows.

These loops exist only for ``KH = KW = 3``, ``C = 1``: the nine taps must be named
variables (scalars live in registers; a loop over taps would keep its sums in memory).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba_conv_loops import sum_partials
from minicnn.kernels.numba_parallel import parallel_loop, worker_share


@njit(cache=True)
def _forward_row(xp, kernel_rows, bias, SH, SW, relu, task, y):
    """:func:`forward` for output row ``task = n*OH + i``."""
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    n = task // OH
    i = task - n * OH
    r0 = xp[n, i * SH]
    r1 = xp[n, i * SH + 1]
    r2 = xp[n, i * SH + 2]
    out_row = y[n, i]
    for j in range(OW):
        q = j * SW
        a0, a1, a2 = r0[q], r0[q + 1], r0[q + 2]
        a3, a4, a5 = r1[q], r1[q + 1], r1[q + 2]
        a6, a7, a8 = r2[q], r2[q + 1], r2[q + 2]
        out = out_row[j]
        # The reference adds the taps in (kh, kw) order, then the bias; so do we.
        if relu:
            for f in range(F):
                v = (a0 * kernel_rows[0, f] + a1 * kernel_rows[1, f]
                     + a2 * kernel_rows[2, f] + a3 * kernel_rows[3, f]
                     + a4 * kernel_rows[4, f] + a5 * kernel_rows[5, f]
                     + a6 * kernel_rows[6, f] + a7 * kernel_rows[7, f]
                     + a8 * kernel_rows[8, f] + bias[f])
                out[f] = v if v > 0.0 else 0.0
        else:
            for f in range(F):
                out[f] = (a0 * kernel_rows[0, f] + a1 * kernel_rows[1, f]
                          + a2 * kernel_rows[2, f] + a3 * kernel_rows[3, f]
                          + a4 * kernel_rows[4, f] + a5 * kernel_rows[5, f]
                          + a6 * kernel_rows[6, f] + a7 * kernel_rows[7, f]
                          + a8 * kernel_rows[8, f] + bias[f])


@parallel_loop
def forward(xp, kernel_rows, bias, SH, SW, relu, y):
    """``y`` ``(N, OH, OW, F)`` = 3x3 convolution of the padded ``xp`` ``(N, HP, WP)``.

    ``kernel_rows`` is ``kernel.reshape(9, F)`` (tap ``t = kh*3 + kw``); ``max(., 0)``
    is applied when ``relu``.
    """
    for task in prange(y.shape[0] * y.shape[1]):
        _forward_row(xp, kernel_rows, bias, SH, SW, relu, np.int64(task), y)


@njit(cache=True)
def _backward_weights_rows(xp, dy, y, relu, SH, SW, first, last, sums):
    """:func:`backward_weights` for output rows ``first <= n*OH + i < last``; adds to ``sums``."""
    OH, OW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    acc = np.empty((10, F), dtype=dy.dtype)
    g = np.empty(F, dtype=dy.dtype)
    for task in range(first, last):
        n = task // OH
        i = task - n * OH
        r0 = xp[n, i * SH]
        r1 = xp[n, i * SH + 1]
        r2 = xp[n, i * SH + 2]
        acc[:] = 0.0
        for j in range(OW):
            q = j * SW
            a0, a1, a2 = r0[q], r0[q + 1], r0[q + 2]
            a3, a4, a5 = r1[q], r1[q + 1], r1[q + 2]
            a6, a7, a8 = r2[q], r2[q + 1], r2[q + 2]
            # The ReLU mask first, into its own small buffer (a select, vectorized).
            grads = dy[n, i, j]
            if relu:
                kept = y[n, i, j]
                for f in range(F):
                    g[f] = grads[f] if kept[f] > 0.0 else 0.0
            else:
                for f in range(F):
                    g[f] = grads[f]
            for f in range(F):
                v = g[f]
                acc[0, f] += a0 * v
                acc[1, f] += a1 * v
                acc[2, f] += a2 * v
                acc[3, f] += a3 * v
                acc[4, f] += a4 * v
                acc[5, f] += a5 * v
                acc[6, f] += a6 * v
                acc[7, f] += a7 * v
                acc[8, f] += a8 * v
                acc[9, f] += v
        # One output row summed in the data's dtype, flushed to float64.
        for k in range(10):
            for f in range(F):
                sums[k, f] += acc[k, f]


@parallel_loop
def backward_weights(xp, dy, y, relu, SH, SW, threads):
    """Kernel and bias gradients: ``(sums (10, F) float64)``, rows 0-8 taps, row 9 bias.

    ``g = dy * (y > 0)`` when ``relu`` (``y`` the forward's ReLU output), else ``dy``;
    ``dkernel_t[f] = sum_{n,i,j} patch_t(n, i, j) * g[n, i, j, f]``,
    ``dbias[f] = sum_{n,i,j} g[n, i, j, f]``; one partial sum per thread.
    """
    partial = np.zeros((threads, 10, dy.shape[3]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, dy.shape[0] * dy.shape[1])
        _backward_weights_rows(xp, dy, y, relu, SH, SW, first, last, partial[worker])
    return sum_partials(partial)


@njit(cache=True)
def _backward_input_image(dy, y, relu, kernel_rows, SH, SW, n, dxp):
    """:func:`backward_input` for image ``n``."""
    OH, OW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    dxp[n] = 0.0
    for i in range(OH):
        for j in range(OW):
            for t in range(9):
                total = 0.0
                for f in range(F):
                    v = dy[n, i, j, f]
                    if relu and not (y[n, i, j, f] > 0.0):
                        v = 0.0
                    total += v * kernel_rows[t, f]
                dxp[n, i * SH + t // 3, j * SW + t % 3] += total


@parallel_loop
def backward_input(dy, y, relu, kernel_rows, SH, SW, dxp):
    """Overwrite the padded input gradient ``dxp`` ``(N, HP, WP)``.

    ``dxp[n, i*SH + kh, j*SW + kw] += sum_f g[n, i, j, f] * kernel_t[f]`` for the nine
    taps; one task per image (windows of neighbouring rows overlap).  A first layer
    rarely needs this (only input-gradient visualizations), so it stays simple.
    """
    for n in prange(dy.shape[0]):
        _backward_input_image(dy, y, relu, kernel_rows, SH, SW, np.int64(n), dxp)


# --------------------------------------------------------------------------------------
# The first layer and the 2x2 max pooling after it, in one pass
# --------------------------------------------------------------------------------------
# Conv2D(relu) -> MaxPooling2D(2) is how the seed's convnet begins.  Run apart, the
# convolution writes its whole (N, OH, OW, F) output (MNIST: 5.5 MB a batch), the pooling
# reads it back, and backward writes and reads a gradient of that size again, three
# quarters zeros.  Fused, each 2x2 window's four outputs are computed from the 4x4 input
# patch under it, and only their maximum (with its position, "winner" 0-3 in row-major
# order) is written.  relu(max) = max(relu), so the values equal the unfused ones bit for
# bit; the winner of a window whose four values are all <= 0 may differ, but such a
# window passes no gradient either way (ReLU's derivative is 0 there).


@njit(inline='always')
def _taps(p0, p1, p2, p3, p4, p5, p6, p7, p8, kernel_rows, f):
    """One output: the nine taps in (kh, kw) order, as :func:`_forward_row` adds them."""
    return (p0 * kernel_rows[0, f] + p1 * kernel_rows[1, f] + p2 * kernel_rows[2, f]
            + p3 * kernel_rows[3, f] + p4 * kernel_rows[4, f] + p5 * kernel_rows[5, f]
            + p6 * kernel_rows[6, f] + p7 * kernel_rows[7, f] + p8 * kernel_rows[8, f])


@njit(inline='always')
def _patch_4x4(xp, n, p, q):
    """The 16 input values under a 2x2 pooling window of 3x3 convolutions, row by row."""
    r0, r1, r2, r3 = xp[n, p], xp[n, p + 1], xp[n, p + 2], xp[n, p + 3]
    return (r0[q], r0[q + 1], r0[q + 2], r0[q + 3], r1[q], r1[q + 1], r1[q + 2], r1[q + 3],
            r2[q], r2[q + 1], r2[q + 2], r2[q + 3], r3[q], r3[q + 1], r3[q + 2], r3[q + 3])


@njit(cache=True)
def _forward_relu_pool_row(xp, kernel_rows, bias, task, y, winner):
    """:func:`forward_relu_pool` for pooled row ``task = n*PH + i``."""
    PH, PW, F = y.shape[1], y.shape[2], y.shape[3]
    n = task // PH
    i = task - n * PH
    for j in range(PW):
        (a00, a01, a02, a03, a10, a11, a12, a13,
         a20, a21, a22, a23, a30, a31, a32, a33) = _patch_4x4(xp, n, 2 * i, 2 * j)
        out = y[n, i, j]
        won = winner[n, i, j]
        for f in range(F):
            v0 = _taps(a00, a01, a02, a10, a11, a12, a20, a21, a22, kernel_rows, f) + bias[f]
            v1 = _taps(a01, a02, a03, a11, a12, a13, a21, a22, a23, kernel_rows, f) + bias[f]
            v2 = _taps(a10, a11, a12, a20, a21, a22, a30, a31, a32, kernel_rows, f) + bias[f]
            v3 = _taps(a11, a12, a13, a21, a22, a23, a31, a32, a33, kernel_rows, f) + bias[f]
            # First maximum in row-major order wins ties, as the pooling kernels.
            best, at = v0, 0
            if v1 > best:
                best, at = v1, 1
            if v2 > best:
                best, at = v2, 2
            if v3 > best:
                best, at = v3, 3
            out[f] = best if best > 0.0 else 0.0
            won[f] = at


@parallel_loop
def forward_relu_pool(xp, kernel_rows, bias, y, winner):
    """``y = max_pool_2x2(relu(conv3x3(xp) + bias))`` and each window's winner (0-3).

    ``xp`` ``(N, HP, WP)`` padded single-channel input; ``y`` ``(N, PH, PW, F)`` with
    ``PH = (HP - 2) // 2`` (the convolution's last row is dropped when its height is
    odd, as a valid 2x2 pooling drops it); ``winner`` int8 of ``y``'s shape.
    """
    for task in prange(y.shape[0] * y.shape[1]):
        _forward_relu_pool_row(xp, kernel_rows, bias, np.int64(task), y, winner)


@njit(cache=True)
def _backward_weights_pool_rows(xp, dy, y, winner, first, last, sums):
    """:func:`backward_weights_pool` for pooled rows ``first <= n*PH + i < last``."""
    PH, PW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    acc = np.zeros((10, F), dtype=dy.dtype)
    g0 = np.empty(F, dtype=dy.dtype)
    g1 = np.empty(F, dtype=dy.dtype)
    g2 = np.empty(F, dtype=dy.dtype)
    g3 = np.empty(F, dtype=dy.dtype)
    for task in range(first, last):
        n = task // PH
        i = task - n * PH
        for j in range(PW):
            (a00, a01, a02, a03, a10, a11, a12, a13,
             a20, a21, a22, a23, a30, a31, a32, a33) = _patch_4x4(xp, n, 2 * i, 2 * j)
            grads = dy[n, i, j]
            kept = y[n, i, j]
            won = winner[n, i, j]
            # The gradient of each of the window's four outputs: dy at the winner when
            # the pooled value passed the ReLU, zero elsewhere (selects, vectorized).
            for f in range(F):
                g = grads[f] if kept[f] > 0.0 else 0.0
                g0[f] = g if won[f] == 0 else 0.0
                g1[f] = g if won[f] == 1 else 0.0
                g2[f] = g if won[f] == 2 else 0.0
                g3[f] = g if won[f] == 3 else 0.0
            for f in range(F):
                b0, b1, b2, b3 = g0[f], g1[f], g2[f], g3[f]
                acc[0, f] += a00 * b0 + a01 * b1 + a10 * b2 + a11 * b3
                acc[1, f] += a01 * b0 + a02 * b1 + a11 * b2 + a12 * b3
                acc[2, f] += a02 * b0 + a03 * b1 + a12 * b2 + a13 * b3
                acc[3, f] += a10 * b0 + a11 * b1 + a20 * b2 + a21 * b3
                acc[4, f] += a11 * b0 + a12 * b1 + a21 * b2 + a22 * b3
                acc[5, f] += a12 * b0 + a13 * b1 + a22 * b2 + a23 * b3
                acc[6, f] += a20 * b0 + a21 * b1 + a30 * b2 + a31 * b3
                acc[7, f] += a21 * b0 + a22 * b1 + a31 * b2 + a32 * b3
                acc[8, f] += a22 * b0 + a23 * b1 + a32 * b2 + a33 * b3
                acc[9, f] += b0 + b1 + b2 + b3
        # One pooled row summed in the data's dtype, flushed to float64.
        for k in range(10):
            for f in range(F):
                sums[k, f] += acc[k, f]
                acc[k, f] = 0.0


@parallel_loop
def backward_weights_pool(xp, dy, y, winner, threads):
    """Kernel and bias gradients of :func:`forward_relu_pool`: ``(10, F)`` float64 sums.

    Rows 0-8 are the taps, row 9 the bias; ``dy`` ``(N, PH, PW, F)`` is the gradient of
    the pooled output ``y``; one partial sum per thread.
    """
    partial = np.zeros((threads, 10, dy.shape[3]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, dy.shape[0] * dy.shape[1])
        _backward_weights_pool_rows(xp, dy, y, winner, first, last, partial[worker])
    return sum_partials(partial)


@njit(cache=True)
def _backward_input_pool_image(dy, y, winner, kernel_rows, n, dxp):
    """:func:`backward_input_pool` for image ``n``."""
    PH, PW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    dxp[n] = 0.0
    for i in range(PH):
        for j in range(PW):
            for f in range(F):
                if not (y[n, i, j, f] > 0.0):
                    continue
                g = dy[n, i, j, f]
                row = 2 * i + winner[n, i, j, f] // 2
                col = 2 * j + winner[n, i, j, f] % 2
                for t in range(9):
                    dxp[n, row + t // 3, col + t % 3] += g * kernel_rows[t, f]


@parallel_loop
def backward_input_pool(dy, y, winner, kernel_rows, dxp):
    """Overwrite the padded input gradient ``dxp`` ``(N, HP, WP)`` of :func:`forward_relu_pool`.

    Each window's gradient flows back through its winning output's nine taps.  Only
    input-gradient visualizations need it, so it stays simple (one task per image).
    """
    for n in prange(dy.shape[0]):
        _backward_input_pool_image(dy, y, winner, kernel_rows, np.int64(n), dxp)

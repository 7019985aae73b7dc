"""Direct 3x3 convolutions fused with the 2x2 max pooling after them: one or three channels.

The chapter's convnets begin with a Conv2D(relu) on one channel (MNIST's digits,
*Deep Learning with Python*, section 5.1) or on three (the RGB of cats and dogs,
section 5.2), followed by a 2x2 max pooling.  Run apart, the convolution writes its
whole output (the 150x150 convnet's first layer: 56 MB a batch of 20) and the pooling
reads it back; through im2col, an RGB layer also writes a patch matrix of 27 columns,
too thin a GEMM to run near the machine's rate.  Here each 2x2 pooling window's four
outputs are computed from the 4x4 input patch under it, held in scalars, for all ``F``
filters at once (a vector loop over ``f``), and only their maximum is written, with
its position ("winner", 0-3 in row-major order)::

    v_k[f] = bias[f] + sum_{c, kh, kw} patch_c[a_k + kh, b_k + kw] * kernel[kh, kw, c, f]
    y[n, i, j, f] = max(0, max_k v_k[f])          (a_k, b_k) = (0,0), (0,1), (1,0), (1,1)

The patches are named scalars, not a loop over taps (scalars live in registers; a loop
over taps would keep its sums in memory), so there is one written-out loop per channel
count: one channel and three.  The kernel arrives as ``taps`` ``(C, 9, F)``, row
``t = kh*3 + kw`` of channel ``c``, so that one channel's nine rows are adjacent.

Backward, only the winner of a window whose maximum passed the ReLU gets its gradient;
the kernel gradient adds, per window, each tap's input value times the four outputs'
gradients (three of them zero, selected without a branch so the loop stays a vector
loop).  A first layer needs no input gradient (only visualizations ask for it), so that
loop stays simple.

The input ``xp`` is ``x`` zero-padded, ``(N, HP, WP, C)``; with valid padding it is
``x`` itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba.pooling import first_maximum
from minicnn.kernels.numba.threads import parallel_loop, sum_partials, worker_share

CHANNELS = (1, 3)
"""The channel counts the written-out loops exist for."""


# --------------------------------------------------------------------------------------
# One window, written out
# --------------------------------------------------------------------------------------

@njit(inline='always')
def _taps(p0, p1, p2, p3, p4, p5, p6, p7, p8, taps, f):
    """One output of one channel: the nine taps in (kh, kw) order, as the direct loop adds them."""
    return (p0 * taps[0, f] + p1 * taps[1, f] + p2 * taps[2, f]
            + p3 * taps[3, f] + p4 * taps[4, f] + p5 * taps[5, f]
            + p6 * taps[6, f] + p7 * taps[7, f] + p8 * taps[8, f])


@njit(inline='always')
def _patch_4x4(xp, n, p, q, c):
    """Channel ``c``'s 16 input values under the pooling window at ``(p, q)``, row-major."""
    r0, r1, r2, r3 = xp[n, p], xp[n, p + 1], xp[n, p + 2], xp[n, p + 3]
    return (r0[q, c], r0[q + 1, c], r0[q + 2, c], r0[q + 3, c],
            r1[q, c], r1[q + 1, c], r1[q + 2, c], r1[q + 3, c],
            r2[q, c], r2[q + 1, c], r2[q + 2, c], r2[q + 3, c],
            r3[q, c], r3[q + 1, c], r3[q + 2, c], r3[q + 3, c])


@njit(inline='always')
def _window(a, taps, f):
    """The window's four outputs for filter ``f`` from one channel (no bias): the 3x3
    sub-patches of the 4x4 patch ``a`` starting at (0, 0), (0, 1), (1, 0), (1, 1)."""
    return (_taps(a[0], a[1], a[2], a[4], a[5], a[6], a[8], a[9], a[10], taps, f),
            _taps(a[1], a[2], a[3], a[5], a[6], a[7], a[9], a[10], a[11], taps, f),
            _taps(a[4], a[5], a[6], a[8], a[9], a[10], a[12], a[13], a[14], taps, f),
            _taps(a[5], a[6], a[7], a[9], a[10], a[11], a[13], a[14], a[15], taps, f))


@njit(inline='always')
def _add_window_gradient(acc, k, a, b0, b1, b2, b3, f):
    """``acc[k + t, f] += sum_m a[sub-patch m, tap t] * b_m``: one channel's nine taps."""
    acc[k, f] += a[0] * b0 + a[1] * b1 + a[4] * b2 + a[5] * b3
    acc[k + 1, f] += a[1] * b0 + a[2] * b1 + a[5] * b2 + a[6] * b3
    acc[k + 2, f] += a[2] * b0 + a[3] * b1 + a[6] * b2 + a[7] * b3
    acc[k + 3, f] += a[4] * b0 + a[5] * b1 + a[8] * b2 + a[9] * b3
    acc[k + 4, f] += a[5] * b0 + a[6] * b1 + a[9] * b2 + a[10] * b3
    acc[k + 5, f] += a[6] * b0 + a[7] * b1 + a[10] * b2 + a[11] * b3
    acc[k + 6, f] += a[8] * b0 + a[9] * b1 + a[12] * b2 + a[13] * b3
    acc[k + 7, f] += a[9] * b0 + a[10] * b1 + a[13] * b2 + a[14] * b3
    acc[k + 8, f] += a[10] * b0 + a[11] * b1 + a[14] * b2 + a[15] * b3


# --------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _forward_row_gray(xp, taps, bias, task, y, winner):
    """:func:`convolve_relu_pool` for pooled row ``task = n*PH + i``, one channel."""
    PH, PW, F = y.shape[1], y.shape[2], y.shape[3]
    n = task // PH
    i = task - n * PH
    t0 = taps[0]
    for j in range(PW):
        out = y[n, i, j]
        won = winner[n, i, j]
        a = _patch_4x4(xp, n, 2 * i, 2 * j, 0)
        for f in range(F):
            v0, v1, v2, v3 = _window(a, t0, f)
            best, at = first_maximum(v0 + bias[f], v1 + bias[f], v2 + bias[f], v3 + bias[f])
            out[f] = best if best > 0.0 else 0.0
            won[f] = at


@njit(cache=True)
def _forward_row_rgb(xp, taps, bias, task, y, winner):
    """:func:`convolve_relu_pool` for pooled row ``task = n*PH + i``, three channels."""
    PH, PW, F = y.shape[1], y.shape[2], y.shape[3]
    n = task // PH
    i = task - n * PH
    t0, t1, t2 = taps[0], taps[1], taps[2]
    for j in range(PW):
        out = y[n, i, j]
        won = winner[n, i, j]
        r = _patch_4x4(xp, n, 2 * i, 2 * j, 0)
        g = _patch_4x4(xp, n, 2 * i, 2 * j, 1)
        b = _patch_4x4(xp, n, 2 * i, 2 * j, 2)
        for f in range(F):
            r0, r1, r2, r3 = _window(r, t0, f)
            g0, g1, g2, g3 = _window(g, t1, f)
            b0, b1, b2, b3 = _window(b, t2, f)
            best, at = first_maximum(r0 + g0 + b0 + bias[f], r1 + g1 + b1 + bias[f],
                                      r2 + g2 + b2 + bias[f], r3 + g3 + b3 + bias[f])
            out[f] = best if best > 0.0 else 0.0
            won[f] = at


@parallel_loop
def convolve_relu_pool(xp, taps, bias, y, winner):
    """``y = max_pool_2x2(relu(conv3x3(xp) + bias))`` and each window's winner (0-3).

    ``xp`` ``(N, HP, WP, C)`` padded input, ``C`` 1 or 3; ``taps`` ``(C, 9, F)``;
    ``y`` ``(N, PH, PW, F)`` with ``PH = (HP - 2) // 2`` (the convolution's last row is
    dropped when its height is odd, as a valid 2x2 pooling drops it); ``winner`` int8 of
    ``y``'s shape.  (The channel count is tested once, outside the loop: a row function
    that tests it inside compiled to a slower loop for one channel.)
    """
    if xp.shape[3] == 1:
        for task in prange(y.shape[0] * y.shape[1]):
            _forward_row_gray(xp, taps, bias, np.int64(task), y, winner)
    else:
        for task in prange(y.shape[0] * y.shape[1]):
            _forward_row_rgb(xp, taps, bias, np.int64(task), y, winner)


# --------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _kernel_gradient_rows(xp, dy, y, winner, first, last, sums):
    """:func:`kernel_bias_sums` for pooled rows ``first <= n*PH + i < last``."""
    PH, PW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    C = xp.shape[3]
    acc = np.zeros((9 * C + 1, F), dtype=dy.dtype)
    g0 = np.empty(F, dtype=dy.dtype)
    g1 = np.empty(F, dtype=dy.dtype)
    g2 = np.empty(F, dtype=dy.dtype)
    g3 = np.empty(F, dtype=dy.dtype)
    for task in range(first, last):
        n = task // PH
        i = task - n * PH
        for j in range(PW):
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
            # One vector loop per channel: nine rows of acc each (a loop writing all
            # 27 rows does not vectorize).
            # One vector loop per channel, each adding to nine rows of acc at a constant
            # offset: one loop over all 27 rows, or a loop over channels with a computed
            # offset, compiles to a far slower loop.
            a = _patch_4x4(xp, n, 2 * i, 2 * j, 0)
            for f in range(F):
                _add_window_gradient(acc, 0, a, g0[f], g1[f], g2[f], g3[f], f)
            if C == 3:
                a = _patch_4x4(xp, n, 2 * i, 2 * j, 1)
                for f in range(F):
                    _add_window_gradient(acc, 9, a, g0[f], g1[f], g2[f], g3[f], f)
                a = _patch_4x4(xp, n, 2 * i, 2 * j, 2)
                for f in range(F):
                    _add_window_gradient(acc, 18, a, g0[f], g1[f], g2[f], g3[f], f)
            for f in range(F):
                acc[9 * C, f] += g0[f] + g1[f] + g2[f] + g3[f]
        # One pooled row summed in the data's dtype, flushed to float64.
        for k in range(9 * C + 1):
            for f in range(F):
                sums[k, f] += acc[k, f]
                acc[k, f] = 0.0


@parallel_loop
def kernel_bias_sums(xp, dy, y, winner, threads):
    """Kernel and bias gradients of :func:`convolve_relu_pool`: ``(9C + 1, F)`` float64 sums.

    Row ``9c + t`` is tap ``t`` of channel ``c``, row ``9C`` the bias; ``dy``
    ``(N, PH, PW, F)`` is the gradient of the pooled output ``y``; one partial sum per
    thread.
    """
    partial = np.zeros((threads, 9 * xp.shape[3] + 1, dy.shape[3]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, dy.shape[0] * dy.shape[1])
        _kernel_gradient_rows(xp, dy, y, winner, first, last, partial[worker])
    return sum_partials(partial)


@njit(cache=True)
def _input_gradient_image(dy, y, winner, taps, n, dxp):
    """:func:`input_gradient` for image ``n``."""
    PH, PW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    C = dxp.shape[3]
    dxp[n] = 0.0
    for i in range(PH):
        for j in range(PW):
            for f in range(F):
                if not (y[n, i, j, f] > 0.0):
                    continue
                g = dy[n, i, j, f]
                row = 2 * i + winner[n, i, j, f] // 2
                col = 2 * j + winner[n, i, j, f] % 2
                for c in range(C):
                    for t in range(9):
                        dxp[n, row + t // 3, col + t % 3, c] += g * taps[c, t, f]


@parallel_loop
def input_gradient(dy, y, winner, taps, dxp):
    """Overwrite the padded input gradient ``dxp`` ``(N, HP, WP, C)`` of
    :func:`convolve_relu_pool`: each window's gradient flows back through its winning
    output's taps (one task per image)."""
    for n in prange(dy.shape[0]):
        _input_gradient_image(dy, y, winner, taps, np.int64(n), dxp)


# --------------------------------------------------------------------------------------
# The kernel in and the gradients out
# --------------------------------------------------------------------------------------

def kernel_taps(kernel: np.ndarray) -> np.ndarray:
    """``taps[c, kh*3 + kw, f] = kernel[kh, kw, c, f]``: ``(C, 9, F)`` from ``(3, 3, C, F)``."""
    _, _, C, F = kernel.shape
    return np.ascontiguousarray(kernel.transpose(2, 0, 1, 3).reshape(C, 9, F))


def gradients_from_sums(sums: np.ndarray, C: int, has_bias: bool, dtype: np.dtype
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dkernel (3, 3, C, F), dbias or None)`` from :func:`kernel_bias_sums`' float64 sums."""
    F = sums.shape[1]
    dkernel = sums[:9 * C].astype(dtype).reshape(C, 3, 3, F).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(dkernel), (sums[9 * C].astype(dtype) if has_bias else None)

"""A Conv2D(relu) and the 2x2 max pooling after it as one kernel, forward and backward.

Conv2D(relu) -> MaxPooling2D(2) is how the chapter's MNIST convnet begins (*Deep
Learning with Python*, section 5.1), twice.  Run apart, the convolution writes its
whole ``(N, OH, OW, F)`` output (MNIST's first layer: 5.5 MB a batch of 64), the pooling
reads it back, and backward writes and reads a gradient of that size again, three
quarters zeros.  Fused, each 2x2 window's four outputs are computed from the 4x4 input
patch under it, and only their maximum (with its position, "winner" 0-3 in row-major
order) is written.  ``relu(max) = max(relu)``, so the values equal the unfused ones bit
for bit; the winner of a window whose four values are all <= 0 may differ, but such a
window passes no gradient either way (ReLU's derivative is 0 there).

Two shapes are fused, those whose convolution path can compute a window at a time:

* a single-channel 3x3 layer (the direct path, :mod:`~minicnn.kernels.numba.direct`):
  the loops below, the direct loops with the pooling folded in;
* a layer that takes Winograd: its tiles are exactly the pooling windows
  (:func:`minicnn.kernels.numba.winograd.forward_relu_max_pool`).

The three public functions are optional operations of the kernel contract (see
:mod:`minicnn.kernels`); a model runs such a pair as one step when
:func:`conv2d_relu_max_pool2d_supported` accepts its shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba import conv, winograd
from minicnn.kernels.numba.direct import crop, gradients_from_sums
from minicnn.kernels.numba.operands import conv_operands
from minicnn.kernels.numba.threads import parallel_loop, sum_partials, use_threads, worker_share
from minicnn.kernels.numba.winograd import WinogradConvPoolCache


# --------------------------------------------------------------------------------------
# The direct path with the pooling folded in
# --------------------------------------------------------------------------------------

@njit(inline='always')
def _taps(p0, p1, p2, p3, p4, p5, p6, p7, p8, kernel_rows, f):
    """One output: the nine taps in (kh, kw) order, as the direct loop adds them."""
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
    """:func:`convolve_relu_pool` for pooled row ``task = n*PH + i``."""
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
def convolve_relu_pool(xp, kernel_rows, bias, y, winner):
    """``y = max_pool_2x2(relu(conv3x3(xp) + bias))`` and each window's winner (0-3).

    ``xp`` ``(N, HP, WP)`` padded single-channel input; ``y`` ``(N, PH, PW, F)`` with
    ``PH = (HP - 2) // 2`` (the convolution's last row is dropped when its height is
    odd, as a valid 2x2 pooling drops it); ``winner`` int8 of ``y``'s shape.
    """
    for task in prange(y.shape[0] * y.shape[1]):
        _forward_relu_pool_row(xp, kernel_rows, bias, np.int64(task), y, winner)


@njit(cache=True)
def _backward_weights_pool_rows(xp, dy, y, winner, first, last, sums):
    """:func:`pool_kernel_bias_sums` for pooled rows ``first <= n*PH + i < last``."""
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
def pool_kernel_bias_sums(xp, dy, y, winner, threads):
    """Kernel and bias gradients of :func:`convolve_relu_pool`: ``(10, F)`` float64 sums.

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
    """:func:`pool_input_gradient` for image ``n``."""
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
def pool_input_gradient(dy, y, winner, kernel_rows, dxp):
    """Overwrite the padded input gradient ``dxp`` ``(N, HP, WP)`` of :func:`convolve_relu_pool`.

    Each window's gradient flows back through its winning output's nine taps.  Only
    input-gradient visualizations need it, so it stays simple (one task per image).
    """
    for n in prange(dy.shape[0]):
        _backward_input_pool_image(dy, y, winner, kernel_rows, np.int64(n), dxp)


# --------------------------------------------------------------------------------------
# The fused kernel
# --------------------------------------------------------------------------------------

class DirectConvPoolCache(NamedTuple):
    """What :func:`conv2d_relu_max_pool2d_backward` needs from the direct path."""

    xp: np.ndarray
    """The zero-padded single-channel input ``(N, top + H + bottom, left + W + right)``."""
    kernel_rows: np.ndarray
    """``kernel.reshape(9, F)``: row ``t = kh*3 + kw``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, 1)``."""
    pads: Pads
    has_bias: bool
    """Whether the forward had a bias (else ``dbias`` is None)."""
    y: np.ndarray
    """The pooled output ``(N, OH // 2, OW // 2, F)``."""
    winner: np.ndarray
    """int8 of ``y``'s shape: which of the window's four outputs won, 0-3 in row-major order."""


FusedConvPoolCache = DirectConvPoolCache | WinogradConvPoolCache
"""The cache of :func:`conv2d_relu_max_pool2d_forward`, whichever path it took."""


def conv2d_relu_max_pool2d_supported(x_shape: tuple, kernel_shape: tuple,
                                     strides: tuple[int, int], pads: Pads,
                                     pool_size: tuple[int, int], pool_strides: tuple[int, int],
                                     pool_pads: Pads) -> bool:
    """Whether :func:`conv2d_relu_max_pool2d_forward` handles these shapes.

    A 3x3, stride-1 convolution that takes the direct loop (one input channel: the
    MNIST convnet's first layer) or Winograd F(2x2, 3x3) (its second), followed by a
    valid 2x2, stride-2 max pooling.  Layers with many channels take larger Winograd
    tiles, which are not pooling windows: they run apart from their pooling.
    """
    N, H, W, C = x_shape
    KH, KW, kernel_channels, F = kernel_shape
    OH, OW = padded_output_hw(H, W, (KH, KW), (1, 1), pads)
    return (tuple(strides) == (1, 1) and kernel_channels == C
            and tuple(pool_size) == (2, 2) and tuple(pool_strides) == (2, 2)
            and tuple(map(tuple, pool_pads)) == ((0, 0), (0, 0)) and min(OH, OW) >= 2
            and (conv.use_direct_conv(KH, KW, C)
                 or (conv.use_winograd(KH, KW, strides, pads, C, F, OH, OW)
                     and not conv.use_wide_winograd(C, F, pooled=True))))


def conv2d_relu_max_pool2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                                   pads: Pads) -> tuple[np.ndarray, FusedConvPoolCache]:
    """``max_pool_2x2(relu(conv2d(x) + bias))`` in one pass, for supported shapes.

    Args:
        x: ``(N, H, W, C)``; kernel ``(3, 3, C, F)``; bias ``(F,)`` or None; pads of the
            convolution (stride 1).

    Returns:
        ``(y, cache)``: ``y`` ``(N, OH // 2, OW // 2, F)`` with ``OH = H + top + bottom
        - 2``, equal to the unfused layers' output bit for bit; the cache goes to
        :func:`conv2d_relu_max_pool2d_backward`.
    """
    x, kernel, bias_vector, has_bias = conv_operands(x, kernel, bias)
    N, H, W, C = x.shape
    F = kernel.shape[3]
    if C != 1:
        return winograd.forward_relu_max_pool(x, kernel, bias_vector, has_bias, pads)
    OH, OW = padded_output_hw(H, W, (3, 3), (1, 1), pads)
    xp = np.pad(x[..., 0], ((0, 0), *pads))
    kernel_rows = kernel.reshape(9, F)
    y = np.empty((N, OH // 2, OW // 2, F), dtype=x.dtype)
    winner = np.empty(y.shape, dtype=np.int8)
    use_threads(y.size * 36)
    convolve_relu_pool(xp, kernel_rows, bias_vector, y, winner)
    return y, DirectConvPoolCache(xp, kernel_rows, x.shape, pads, has_bias, y, winner)


def conv2d_relu_max_pool2d_backward(dy: np.ndarray, cache: FusedConvPoolCache,
                                    need_input_grad: bool = True
                                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d_relu_max_pool2d_forward`: ``(dx or None, dkernel, dbias)``.

    ``dy`` ``(N, OH // 2, OW // 2, F)`` is the gradient of the pooled output; ``dx``
    ``(N, H, W, C)``; ``dbias`` is None when the forward had no bias.
    """
    if isinstance(cache, WinogradConvPoolCache):
        return winograd.backward_relu_max_pool(dy, cache, need_input_grad)
    dtype = cache.y.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    threads = use_threads(dy.size * 36)   # for both loops below
    sums = pool_kernel_bias_sums(cache.xp, dy, cache.y, cache.winner, threads)
    dx = None
    if need_input_grad:
        dxp = np.empty(cache.xp.shape, dtype=dtype)
        pool_input_gradient(dy, cache.y, cache.winner, cache.kernel_rows, dxp)
        dx = crop(dxp, cache.pads, cache.x_shape)
    return (dx, *gradients_from_sums(sums, cache.has_bias, dtype))

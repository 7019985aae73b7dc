"""A Conv2D(relu) and the 2x2 max pooling after it as one kernel, forward and backward.

Conv2D(relu) -> MaxPooling2D(2) is how the chapter's convnets begin (*Deep Learning with
Python*, sections 5.1 and 5.2), again and again.  Run apart, the convolution writes its
whole ``(N, OH, OW, F)`` output (MNIST's first layer: 5.5 MB a batch of 64; the 150x150
convnet's: 56 MB a batch of 20), the pooling reads it back, and backward writes and
reads a gradient of that size again, three quarters zeros.  Fused, each 2x2 window's
four outputs are computed from the 4x4 input patch under it, and only their maximum
(with its position, "winner" 0-3 in row-major order) is written.  ``relu(max) =
max(relu)``, so the values equal the unfused ones (bit for bit where the unfused layer
adds in the same order); the winner of a window whose four values are all <= 0 may
differ, but such a window passes no gradient either way (ReLU's derivative is 0 there).

Two kinds of layers are fused, those whose convolution can compute a window at a time:

* a 3x3 layer on one channel (MNIST's first) or three (RGB: the 150x150 convnet's
  first), by the direct loops of :mod:`~minicnn.kernels.numba.direct_pool`;
* a layer that takes Winograd F(2x2, 3x3): its tiles are exactly the pooling windows
  (:func:`minicnn.kernels.numba.winograd.forward_relu_max_pool`).

The three public functions are optional operations of the kernel contract (see
:mod:`minicnn.kernels`); a model runs such a pair as one step when
:func:`conv2d_relu_max_pool2d_supported` accepts its shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba import conv, direct_pool, winograd
from minicnn.kernels.numba.direct import crop
from minicnn.kernels.numba.operands import conv_operands
from minicnn.kernels.numba.threads import use_threads
from minicnn.kernels.numba.winograd import WinogradConvPoolCache

USE_DIRECT_POOL = True
"""3x3 layers on one or three channels run the direct fused loops (tests turn it off)."""


def use_direct_pool(KH: int, KW: int, C: int) -> bool:
    """Whether a ``KH x KW`` layer on ``C`` channels takes the direct fused loops."""
    return USE_DIRECT_POOL and KH == 3 and KW == 3 and C in direct_pool.CHANNELS


class DirectConvPoolCache(NamedTuple):
    """What :func:`conv2d_relu_max_pool2d_backward` needs from the direct path."""

    xp: np.ndarray
    """The zero-padded input ``(N, top + H + bottom, left + W + right, C)``, ``C`` 1 or 3."""
    taps: np.ndarray
    """``(C, 9, F)``: row ``t = kh*3 + kw`` of channel ``c``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, C)``."""
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

    A 3x3, stride-1 convolution on one or three channels (the direct loops: the
    chapter's first layers) or one that takes Winograd F(2x2, 3x3), followed by a
    valid 2x2, stride-2 max pooling.  Layers with many channels take larger Winograd
    tiles, which are not pooling windows: they run apart from their pooling.
    """
    N, H, W, C = x_shape
    KH, KW, kernel_channels, F = kernel_shape
    OH, OW = padded_output_hw(H, W, (KH, KW), (1, 1), pads)
    return (tuple(strides) == (1, 1) and kernel_channels == C
            and tuple(pool_size) == (2, 2) and tuple(pool_strides) == (2, 2)
            and tuple(map(tuple, pool_pads)) == ((0, 0), (0, 0)) and min(OH, OW) >= 2
            and (use_direct_pool(KH, KW, C)
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
        - 2``, equal to the unfused layers' output (to float round-off); the cache goes to
        :func:`conv2d_relu_max_pool2d_backward`.
    """
    x, kernel, bias_vector, has_bias = conv_operands(x, kernel, bias)
    N, H, W, C = x.shape
    F = kernel.shape[3]
    if not use_direct_pool(3, 3, C):
        return winograd.forward_relu_max_pool(x, kernel, bias_vector, has_bias, pads)
    OH, OW = padded_output_hw(H, W, (3, 3), (1, 1), pads)
    # Valid padding (the chapter's convnets) reads x itself.
    xp = np.pad(x, ((0, 0), *pads, (0, 0))) if np.any(pads) else x
    taps = direct_pool.kernel_taps(kernel)
    y = np.empty((N, OH // 2, OW // 2, F), dtype=x.dtype)
    winner = np.empty(y.shape, dtype=np.int8)
    use_threads(y.size * 36 * C)
    direct_pool.convolve_relu_pool(xp, taps, bias_vector, y, winner)
    return y, DirectConvPoolCache(xp, taps, x.shape, pads, has_bias, y, winner)


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
    C = cache.x_shape[3]
    threads = use_threads(dy.size * 36 * C)   # for both loops below
    sums = direct_pool.kernel_bias_sums(cache.xp, dy, cache.y, cache.winner, threads)
    dx = None
    if need_input_grad:
        dxp = np.empty(cache.xp.shape, dtype=dtype)
        direct_pool.input_gradient(dy, cache.y, cache.winner, cache.taps, dxp)
        dx = crop(dxp, cache.pads, cache.x_shape)
    return (dx, *direct_pool.gradients_from_sums(sums, C, cache.has_bias, dtype))

"""The convolution of the numba backend: which path a shape takes, and the public functions.

Three paths, chosen by shape (each in its own module, with its own cache type):

* **Direct** (:mod:`~minicnn.kernels.numba.direct`) for single-channel 3x3 kernels
  (MNIST's first layer), where the GEMM would have an inner dimension of 9 and the
  patch matrix would cost more than the arithmetic: nine scalar taps per pixel, a
  vector loop over filters, no patches.
* **Winograd** F(2x2, 3x3) (:mod:`~minicnn.kernels.numba.winograd`) for 3x3, stride-1
  kernels with at least :data:`WINOGRAD_MIN_CHANNELS` input and output channels and
  :data:`WINOGRAD_MIN_OUTPUTS` outputs per image (MNIST's second layer, all of VGG16
  but the first): 2.25x fewer multiplications, done block by block in cache, with a
  float32 error no larger than the GEMM path's.  ``MINICNN_WINOGRAD=0`` turns it off.
  Layers with many channels (:func:`use_wide_winograd`: VGG16's, from 64 x 64) take
  larger tiles, F(3x3, 3x3) or F(4x4, 3x3)
  (:mod:`~minicnn.kernels.numba.winograd.wide`): 2.8x or 4x fewer multiplications,
  at the price of transforms that only many channels pay for.
* **im2col + GEMM** (:mod:`~minicnn.kernels.numba.im2col`) for everything else.

The switches below are module attributes, read at each call, so tests can send every
shape through one path (``monkeypatch.setattr(conv, "USE_WINOGRAD", False)``).
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba import blas, direct, im2col, winograd
from minicnn.kernels.numba.direct import DirectConvCache
from minicnn.kernels.numba.im2col import Im2colConvCache
from minicnn.kernels.numba.operands import conv_operands
from minicnn.kernels.numba.winograd import WinogradConvCache, wide
from minicnn.kernels.numba.winograd.wide import WideWinogradConvCache

USE_DIRECT_CONV = True
"""Single-channel 3x3 layers take the direct loop (tests turn it off to send them through
im2col + GEMM)."""

USE_WINOGRAD = os.environ.get("MINICNN_WINOGRAD", "1") != "0"
"""3x3 stride-1 layers take Winograd's F(2x2, 3x3); ``MINICNN_WINOGRAD=0`` turns it off at
import, tests at run time."""

WINOGRAD_MIN_CHANNELS = 16
"""Winograd's GEMMs have C (and F) as inner dimensions: below this many channels the
transforms cost more than the multiplications they save."""

WINOGRAD_MIN_OUTPUTS = 16
"""Below this many outputs per image and channel, the tiles hanging over the edge waste
too much (3x3 outputs take 2x2 tiles of 4x4: 44 % computed for nothing): MNIST's third
layer (3x3 outputs) is faster by im2col + GEMM, while at 5x5 outputs Winograd wins."""

USE_WIDE_WINOGRAD = True
"""Winograd layers with many channels take the larger tiles (tests turn it off, or send
small layers through them by lowering :data:`WIDE_WINOGRAD_MIN_CHANNELS`)."""

WIDE_WINOGRAD_MIN_CHANNELS = 64
"""Layers with at least this many input and output channels..."""

WIDE_WINOGRAD_MIN_PRODUCT = 64 * 64
"""...and at least this many input-output channel pairs ``C * F`` take F(3x3) or F(4x4)
(all of VGG16 but its first layer): below that (MNIST's 32 x 64), the larger tiles'
transforms cost more than their GEMMs save, and F(2x2) wins."""

WIDE_WINOGRAD_POOLED_MIN_PRODUCT = 128 * 256
"""A layer followed by a 2x2 max pooling runs fused with it by F(2x2), whose tiles are the
pooling windows, unless it has at least this many channel pairs (VGG16's blocks 3 to 5):
the fusion saves more than the larger tiles below that."""

ConvCache = DirectConvCache | WinogradConvCache | WideWinogradConvCache | Im2colConvCache
"""The cache of :func:`conv2d_forward`, whichever path it took."""


def use_direct_conv(KH: int, KW: int, C: int) -> bool:
    """Whether a ``KH x KW`` kernel over ``C`` channels takes the direct loop."""
    return USE_DIRECT_CONV and KH == 3 and KW == 3 and C == 1


def use_winograd(KH: int, KW: int, strides: tuple[int, int], pads: Pads, C: int, F: int,
                 OH: int, OW: int) -> bool:
    """Whether a convolution takes the Winograd path.

    3x3, stride 1, enough channels and outputs, pads of at most 2 (the input gradient
    is a full convolution of the output gradient padded by ``2 - pad``), and SciPy's
    BLAS callable from Numba's threads (the blocked GEMMs run there).
    """
    return (USE_WINOGRAD and KH == 3 and KW == 3 and tuple(strides) == (1, 1)
            and min(C, F) >= WINOGRAD_MIN_CHANNELS and OH * OW >= WINOGRAD_MIN_OUTPUTS
            and max(*pads[0], *pads[1]) <= 2 and blas.enable())


def use_wide_winograd(C: int, F: int, pooled: bool = False) -> bool:
    """Whether a layer that takes Winograd takes the larger tiles (many channels);
    ``pooled``: the layer could instead run fused with the 2x2 max pooling after it."""
    product = WIDE_WINOGRAD_POOLED_MIN_PRODUCT if pooled else WIDE_WINOGRAD_MIN_PRODUCT
    return USE_WIDE_WINOGRAD and min(C, F) >= WIDE_WINOGRAD_MIN_CHANNELS and C * F >= product


def _conv_forward(x, kernel, bias, strides, pads, relu):
    """:func:`conv2d_forward` (with a ReLU on the output when ``relu``), by shape."""
    x, kernel, bias_vector, has_bias = conv_operands(x, kernel, bias)
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    OH, OW = padded_output_hw(H, W, (KH, KW), strides, pads)
    if use_direct_conv(KH, KW, C):
        return direct.forward(x, kernel, bias_vector, has_bias, strides, pads, relu)
    if use_winograd(KH, KW, strides, pads, C, F, OH, OW):
        if use_wide_winograd(C, F):
            return wide.forward(x, kernel, bias_vector, has_bias, pads, relu)
        return winograd.forward(x, kernel, bias_vector, has_bias, pads, relu)
    return im2col.forward(x, kernel, bias_vector, has_bias, strides, pads, relu)


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                   strides: tuple[int, int], pads: Pads) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation), NHWC input and HWIO kernel.

    ``y[n, i, j, f] = bias[f] + sum_{kh, kw, c} x_padded[n, i*SH + kh, j*SW + kw, c]
    * kernel[kh, kw, c, f]``

    Args:
        x: ``(N, H, W, C)``, float32 or float64 (other dtypes compute in float32).
        kernel: ``(KH, KW, C, F)``.
        bias: ``(F,)`` or None.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))`` zero padding.

    Returns:
        ``(y, cache)``; ``y`` ``(N, OH, OW, F)`` with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``).
    """
    return _conv_forward(x, kernel, bias, strides, pads, relu=False)


def conv2d_bias_relu_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                             strides: tuple[int, int], pads: Pads
                             ) -> tuple[np.ndarray, ConvCache]:
    """``relu(conv2d_forward(x, kernel, bias, strides, pads))``, fused.

    The ReLU rides on the bias pass, the Winograd output transform or the direct loop.
    Returns ``(y, cache)`` like :func:`conv2d_forward`; pass the cache to
    :func:`conv2d_backward` with ``dy`` the gradient of the ReLU's output, and it
    applies the mask ``y > 0`` itself (fused with the bias-gradient sum).
    """
    return _conv_forward(x, kernel, bias, strides, pads, relu=True)


def conv2d_backward(dy: np.ndarray, cache: ConvCache, need_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of the convolution that made ``cache``, given ``dy = dL/dy``.

    With ``g = dy`` (or ``g = dy * (y > 0)`` when the forward fused a ReLU):
    ``dkernel[kh, kw, c, f] = sum_{n, i, j} x_padded[n, i*SH + kh, j*SW + kw, c] * g[n, i, j, f]``,
    ``dbias[f] = sum_{n, i, j} g[n, i, j, f]`` and
    ``dx_padded[n, i*SH + kh, j*SW + kw, c] += kernel[kh, kw, c, f] * g[n, i, j, f]``
    (cropped back to ``H x W``).

    Args:
        dy: ``(N, OH, OW, F)``.
        cache: from :func:`conv2d_forward` or :func:`conv2d_bias_relu_forward`.
        need_input_grad: False skips ``dx`` (a first layer needs none).

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` or None, ``dkernel``
        ``(KH, KW, C, F)``, ``dbias`` ``(F,)`` or None when the forward had no bias.
    """
    if isinstance(cache, DirectConvCache):
        return direct.backward(dy, cache, need_input_grad)
    if isinstance(cache, WinogradConvCache):
        return winograd.backward(dy, cache, need_input_grad)
    if isinstance(cache, WideWinogradConvCache):
        return wide.backward(dy, cache, need_input_grad)
    return im2col.backward(dy, cache, need_input_grad)

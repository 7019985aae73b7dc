"""Direct convolution for single-channel 3x3 layers (MNIST's first layer), no GEMM.

With ``C = 1`` and a 3x3 kernel the GEMM of the im2col path has an inner dimension of
9: building the ``(N*OH*OW, 9)`` patch matrix costs more than the arithmetic it feeds
(the patches, the GEMM and the bias/ReLU pass each take longer than this whole loop).
Instead each output pixel loads its nine input values into scalars and writes, for all
``F`` filters at once (a vector loop over ``f``)::

    y[n, i, j, f] = bias[f] + sum_{t < 9} patch_t * kernel_t[f]

with no read-modify-write of ``y``.  The input arrives zero-padded (``xp`` of shape
``(N, top + H + bottom, left + W + right)``; single-channel, so the copy is small), which
removes every bounds test from the loops.  Loops are parallel over output rows.

These loops exist only for ``KH = KW = 3``, ``C = 1``: the nine taps must be named
variables (scalars live in registers; a loop over taps would keep its sums in memory).
The same layer fused with the 2x2 max pooling after it is in
:mod:`~minicnn.kernels.numba.fusion`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba.threads import (parallel_loop, sum_partials,
                                           use_threads, worker_share)


@njit(cache=True)
def _forward_row(xp, kernel_rows, bias, SH, SW, relu, task, y):
    """:func:`convolve` for output row ``task = n*OH + i``."""
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
def convolve(xp, kernel_rows, bias, SH, SW, relu, y):
    """``y`` ``(N, OH, OW, F)`` = 3x3 convolution of the padded ``xp`` ``(N, HP, WP)``.

    ``kernel_rows`` is ``kernel.reshape(9, F)`` (tap ``t = kh*3 + kw``); ``max(., 0)``
    is applied when ``relu``.
    """
    for task in prange(y.shape[0] * y.shape[1]):
        _forward_row(xp, kernel_rows, bias, SH, SW, relu, np.int64(task), y)


@njit(cache=True)
def _backward_weights_rows(xp, dy, y, relu, SH, SW, first, last, sums):
    """:func:`kernel_bias_sums` for output rows ``first <= n*OH + i < last``; adds to ``sums``."""
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
def kernel_bias_sums(xp, dy, y, relu, SH, SW, threads):
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
    """:func:`input_gradient` for image ``n``."""
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
def input_gradient(dy, y, relu, kernel_rows, SH, SW, dxp):
    """Overwrite the padded input gradient ``dxp`` ``(N, HP, WP)``.

    ``dxp[n, i*SH + kh, j*SW + kw] += sum_f g[n, i, j, f] * kernel_t[f]`` for the nine
    taps; one task per image (windows of neighbouring rows overlap).  A first layer
    rarely needs this (only input-gradient visualizations), so it stays simple.
    """
    for n in prange(dy.shape[0]):
        _backward_input_image(dy, y, relu, kernel_rows, SH, SW, np.int64(n), dxp)


# --------------------------------------------------------------------------------------
# The convolution
# --------------------------------------------------------------------------------------

class DirectConvCache(NamedTuple):
    """What :func:`backward` needs from :func:`forward`."""

    xp: np.ndarray
    """The zero-padded single-channel input ``(N, top + H + bottom, left + W + right)``."""
    kernel_rows: np.ndarray
    """``kernel.reshape(9, F)``: row ``t = kh*3 + kw``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, 1)``."""
    strides: tuple[int, int]
    pads: Pads
    has_bias: bool
    """Whether the forward had a bias (else ``dbias`` is None)."""
    relu: bool
    """Whether the forward fused a ReLU (then ``dy`` is masked by ``y > 0``)."""
    y: np.ndarray
    """The forward's output ``(N, OH, OW, F)``, for the ReLU's mask."""


def forward(x: np.ndarray, kernel: np.ndarray, bias_vector: np.ndarray, has_bias: bool,
            strides: tuple[int, int], pads: Pads, relu: bool
            ) -> tuple[np.ndarray, DirectConvCache]:
    """3x3 convolution of a single-channel ``x`` ``(N, H, W, 1)``: ``(y, cache)``.

    ``kernel`` ``(3, 3, 1, F)`` and ``bias_vector`` ``(F,)`` (zeros when ``has_bias`` is
    False) have ``x``'s float dtype; ``y`` is ``(N, OH, OW, F)`` with
    ``OH = (H + top + bottom - 3) // SH + 1``, ``max(., 0)`` applied when ``relu``.
    """
    N, H, W, _ = x.shape
    F = kernel.shape[3]
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (3, 3), (SH, SW), pads)
    xp = np.pad(x[..., 0], ((0, 0), (top, bottom), (left, right)))
    kernel_rows = kernel.reshape(9, F)
    y = np.empty((N, OH, OW, F), dtype=x.dtype)
    use_threads(y.size * 9)
    convolve(xp, kernel_rows, bias_vector, SH, SW, relu, y)
    return y, DirectConvCache(xp, kernel_rows, x.shape, strides, pads, has_bias, relu, y)


def backward(dy: np.ndarray, cache: DirectConvCache, need_input_grad: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx or None, dkernel (3, 3, 1, F), dbias or None)`` of :func:`forward`."""
    dtype = cache.xp.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    SH, SW = cache.strides
    threads = use_threads(dy.size * 9)   # for both loops below
    sums = kernel_bias_sums(cache.xp, dy, cache.y, cache.relu, SH, SW, threads)
    dx = None
    if need_input_grad:
        dxp = np.empty(cache.xp.shape, dtype=dtype)
        input_gradient(dy, cache.y, cache.relu, cache.kernel_rows, SH, SW, dxp)
        dx = crop(dxp, cache.pads, cache.x_shape)
    return (dx, *gradients_from_sums(sums, cache.has_bias, dtype))


def gradients_from_sums(sums: np.ndarray, has_bias: bool, dtype: np.dtype
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dkernel (3, 3, 1, F), dbias or None)`` from the loops' float64 ``(10, F)`` sums."""
    dkernel = sums[:9].astype(dtype).reshape(3, 3, 1, sums.shape[1])
    return dkernel, (sums[9].astype(dtype) if has_bias else None)


def crop(dxp: np.ndarray, pads: Pads, x_shape: tuple[int, int, int, int]) -> np.ndarray:
    """The input gradient ``(N, H, W, C)`` cut out of its padded version ``dxp``."""
    (top, _), (left, _) = pads
    _, H, W, _ = x_shape
    return np.ascontiguousarray(dxp[:, top:top + H, left:left + W]).reshape(x_shape)

"""The Winograd convolution around the blocked loops: output sizes, threads, caches.

Forward transforms the kernel once and runs
:func:`~minicnn.kernels.numba.winograd.blocked.blocked_forward`, which reads ``x`` as if
zero-padded (:mod:`~minicnn.kernels.numba.winograd.patches`: no padded copy).  Backward
places the output gradient ``g`` in a zero buffer ``gp`` at ``(2 - top, 2 - left)``;
read from there it gives the gradient tiles of the kernel gradient, and read whole it is the
padded input of dx's full convolution (by the kernel turned 180 degrees, channel axes
swapped), which is the forward algorithm again.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba.threads import sum_partials, use_threads
from minicnn.kernels.numba.winograd.blocked import (block_rows, blocked_forward,
                                                    blocked_kernel_gradient,
                                                    gradient_block_rows, pad_gradient,
                                                    pad_pooled_gradient)
from minicnn.kernels.numba.winograd.transforms import (TILE, kernel_gradient_transform,
                                                       kernel_transform, tiles_along)


class WinogradConvCache(NamedTuple):
    """What :func:`backward` needs from :func:`forward`."""

    x: np.ndarray
    """The input ``(N, H, W, C)`` (read as if zero-padded, never copied)."""
    kernel: np.ndarray
    """``(3, 3, C, F)``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, C)``."""
    pads: Pads
    has_bias: bool
    """Whether the forward had a bias (else ``dbias`` is None)."""
    relu: bool
    """Whether the forward fused a ReLU (then ``dy`` is masked by ``y > 0``)."""
    y: np.ndarray
    """The forward's output ``(N, OH, OW, F)``, for the ReLU's mask."""


class WinogradConvPoolCache(NamedTuple):
    """What :func:`backward_relu_max_pool` needs from :func:`forward_relu_max_pool`."""

    x: np.ndarray
    """As in :class:`WinogradConvCache`."""
    kernel: np.ndarray
    """``(3, 3, C, F)``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, C)``."""
    pads: Pads
    has_bias: bool
    """Whether the forward had a bias (else ``dbias`` is None)."""
    y: np.ndarray
    """The pooled output ``(N, OH // 2, OW // 2, F)``."""
    winner: np.ndarray
    """int8 of ``y``'s shape: which of the window's four outputs won, 0-3 in row-major order."""


# A placeholder for blocked_forward's winner argument when it does not pool.
_NO_WINNER = np.zeros((1, 1, 1, 1), dtype=np.int8)


def forward(x: np.ndarray, kernel: np.ndarray, bias_vector: np.ndarray, has_bias: bool,
            pads: Pads, relu: bool) -> tuple[np.ndarray, WinogradConvCache]:
    """3x3 stride-1 convolution of ``x`` ``(N, H, W, C)`` by F(2x2, 3x3): ``(y, cache)``.

    Args:
        x: contiguous input; ``kernel`` ``(3, 3, C, F)`` and ``bias_vector`` ``(F,)``
            (zeros when ``has_bias`` is False) of the same dtype.
        pads: ``((top, bottom), (left, right))``, each at most 2.
        relu: apply ``max(., 0)`` after the bias.

    Returns:
        ``y`` ``(N, OH, OW, F)`` with ``OH = H + top + bottom - 2``, and the cache.
    """
    C, F = kernel.shape[2], kernel.shape[3]
    (top, _), (left, _) = pads
    OH, OW = padded_output_hw(x.shape[1], x.shape[2], (3, 3), (1, 1), pads)
    tiles_h, tiles_w = tiles_along(OH), tiles_along(OW)
    y = np.empty((x.shape[0], OH, OW, F), dtype=x.dtype)
    threads = use_threads(y.size * C)
    blocked_forward(x, top, left, kernel_transform(kernel), bias_vector, relu, False, tiles_h,
                    tiles_w, block_rows(tiles_w, C, F, x.dtype.itemsize), threads, y,
                    _NO_WINNER)
    return y, WinogradConvCache(x, kernel, x.shape, pads, has_bias, relu, y)


def forward_relu_max_pool(x: np.ndarray, kernel: np.ndarray, bias_vector: np.ndarray,
                          has_bias: bool, pads: Pads
                          ) -> tuple[np.ndarray, WinogradConvPoolCache]:
    """``max_pool_2x2(relu(conv(x) + bias))``: each tile is one pooling window.

    Only the ``(OH // 2) x (OW // 2)`` tiles under a window are computed (an odd last
    row or column of outputs belongs to no window).  Returns ``(y, cache)``, ``y``
    ``(N, OH // 2, OW // 2, F)``.
    """
    C, F = kernel.shape[2], kernel.shape[3]
    (top, _), (left, _) = pads
    OH, OW = padded_output_hw(x.shape[1], x.shape[2], (3, 3), (1, 1), pads)
    PH, PW = OH // 2, OW // 2
    y = np.empty((x.shape[0], PH, PW, F), dtype=x.dtype)
    winner = np.empty(y.shape, dtype=np.int8)
    threads = use_threads(y.size * 4 * C)
    blocked_forward(x, top, left, kernel_transform(kernel), bias_vector, True, True, PH, PW,
                    block_rows(PW, C, F, x.dtype.itemsize), threads, y, winner)
    return y, WinogradConvPoolCache(x, kernel, x.shape, pads, has_bias, y, winner)


def backward(dy: np.ndarray, cache: WinogradConvCache, need_input_grad: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx or None, dkernel, dbias or None)`` of :func:`forward`, given ``dy = dL/dy``.

    With a fused ReLU, ``dy`` is the gradient of the ReLU's output and ``cache.y``
    masks it.
    """
    dtype = cache.y.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    _, OH, OW, _ = dy.shape
    gp, g_top, g_left = _gradient_buffer(cache, tiles_along(OH), tiles_along(OW))
    threads = use_threads(gp.size)
    bias_sums = pad_gradient(dy, cache.y, cache.relu, g_top, g_left, threads, gp)
    dx, dkernel = _backward_from_gradient(gp, cache, tiles_along(OH), tiles_along(OW),
                                          need_input_grad)
    return dx, dkernel, (bias_sums.astype(dtype) if cache.has_bias else None)


def backward_relu_max_pool(dy: np.ndarray, cache: WinogradConvPoolCache, need_input_grad: bool
                           ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`forward_relu_max_pool` from the pooled output's ``dy``.

    Returns ``(dx or None, dkernel, dbias or None)``.  Outputs outside every window get
    no gradient, so the kernel gradient runs over the pooled tiles only.
    """
    dtype = cache.y.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    _, PH, PW, _ = dy.shape
    gp, g_top, g_left = _gradient_buffer(cache, PH, PW)
    threads = use_threads(gp.size)
    bias_sums = pad_pooled_gradient(dy, cache.y, cache.winner, g_top, g_left, threads, gp)
    # Input rows and columns beyond (2 - top) + 2*PH see only zero gradients (an odd
    # last output row belongs to no window): dx's tiles stop there.
    dx, dkernel = _backward_from_gradient(gp, cache, PH, PW, need_input_grad,
                                          g_top + 2 * PH, g_left + 2 * PW)
    return dx, dkernel, (bias_sums.astype(dtype) if cache.has_bias else None)


def _gradient_buffer(cache: WinogradConvCache | WinogradConvPoolCache, tiles_h: int,
                     tiles_w: int) -> tuple[np.ndarray, int, int]:
    """An empty ``gp`` for the output gradient at ``(2 - top, 2 - left)``, and that offset.

    Placed there, the gradient is the padded input of dx's full convolution, and (read
    from that offset) the source of the ``tiles_h x tiles_w`` gradient tiles.
    """
    N, H, W, _ = cache.x_shape
    (top, _), (left, _) = cache.pads
    g_top, g_left = 2 - top, 2 - left
    rows = max(tiles_along(H) * TILE + 2, g_top + tiles_h * TILE)
    columns = max(tiles_along(W) * TILE + 2, g_left + tiles_w * TILE)
    return (np.empty((N, rows, columns, cache.kernel.shape[3]), dtype=cache.x.dtype),
            g_top, g_left)


def _backward_from_gradient(gp: np.ndarray, cache: WinogradConvCache | WinogradConvPoolCache,
                            tiles_h: int, tiles_w: int, need_input_grad: bool,
                            dx_rows: int | None = None, dx_columns: int | None = None
                            ) -> tuple[np.ndarray | None, np.ndarray]:
    """``(dx or None, dkernel)`` from the output gradient placed in ``gp``.

    ``dx`` is computed in its first ``dx_rows`` x ``dx_columns`` (default: all), and is
    zero beyond.
    """
    x, kernel = cache.x, cache.kernel
    N, H, W, C = cache.x_shape
    (top, _), (left, _) = cache.pads
    F = kernel.shape[3]
    dtype = gp.dtype
    threads = use_threads(N * tiles_h * tiles_w * 4 * F * C)
    dU_parts = np.empty((threads, 16, C, F), dtype=dtype)
    blocked_kernel_gradient(x, top, left, gp, 2 - top, 2 - left, tiles_h, tiles_w,
                            gradient_block_rows(tiles_w, C, F, dtype.itemsize), threads,
                            dU_parts)
    dkernel = kernel_gradient_transform(sum_partials(dU_parts))

    dx = None
    if need_input_grad:
        # Turned 180 degrees, input and output channels swapped: (3, 3, F, C).
        flipped = np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))
        dx = np.empty((N, H, W, C), dtype=dtype)
        rows, columns = min(H, dx_rows or H), min(W, dx_columns or W)
        dx[:, rows:] = 0.0
        dx[:, :rows, columns:] = 0.0
        dx_tiles_h, dx_tiles_w = tiles_along(rows), tiles_along(columns)
        computed = dx if (rows, columns) == (H, W) else dx[:, :rows, :columns]
        threads = use_threads(computed.size * F)
        blocked_forward(gp, 0, 0, kernel_transform(flipped), np.zeros(C, dtype=dtype), False,
                        False, dx_tiles_h, dx_tiles_w,
                        block_rows(dx_tiles_w, F, C, dtype.itemsize), threads, computed,
                        _NO_WINNER)
    return dx, dkernel

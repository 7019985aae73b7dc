"""Winograd F(m x m, 3 x 3), m = 3 or 4, for 3x3 stride-1 layers with many channels.

The same algorithm as F(2x2, 3x3) (:mod:`~minicnn.kernels.numba.winograd`, read that
first), with ``n = m + 2`` cells a tile side: ``n*n`` GEMMs of ``(tiles, C) @ (C, F)``
per block of tiles instead of 16, each tile giving ``m x m`` outputs.  The matrices and
tile transforms are in :mod:`~minicnn.kernels.numba.winograd.wide_transforms` (F(4x4)'s
written out term by term in :mod:`~minicnn.kernels.numba.winograd.wide3` and
:mod:`~minicnn.kernels.numba.winograd.wide4`).

:func:`tile_size` picks m for a layer: the one with the fewest multiplications over the
whole output, counting the tiles that hang over its edge (VGG16's 150, 75 and 37 pixel
maps take m = 4; its 18 and 9 pixel maps m = 3, which covers them exactly).

Backward as F(2x2)'s: the output gradient (masked by ``y > 0`` after a fused ReLU) is
placed in a zero buffer at ``(2 - top, 2 - left)``; its ``A g A^T`` tiles against the
input's ``B^T d B`` tiles give ``dU`` (then ``dw = G^T dU G``), and read whole it is the
padded input of dx's full convolution by the kernel turned 180 degrees, which is this
forward again.

Blocks are sized for the GEMMs.  Where whole rows of tiles fit, a block holds as many
as keep its GEMMs on BLAS's small-matrix kernels
(:func:`~minicnn.kernels.numba.winograd.blocked.small_block_rows`: VGG16's 64 to 256
channel layers), which read ``U[xi]`` where it lies.  Past that (512 channels), a GEMM
packs its ``U[xi]`` (``C*F`` values, far larger than the cache) for each block, so a
block holds at least :data:`MIN_BLOCK_TILES` tiles to repay it.  The kernel gradient's
``V^T dM`` has the block's tiles as its inner dimension, short blocks are slow there,
so it takes small blocks only from :data:`MIN_GRADIENT_SMALL_TILES` tiles.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba.threads import parallel_loop, use_threads, worker_share
from minicnn.kernels.numba.winograd import wide3, wide4
from minicnn.kernels.numba.winograd.blocked import pad_gradient, small_block_rows
from minicnn.kernels.numba.winograd.wide_transforms import (gradient_transform_row,
                                                            input_transform_row,
                                                            kernel_gradient_transform,
                                                            kernel_transform, matrices,
                                                            output_transform_row)

TILE_SIZES = (3, 4)
"""The tile sizes m this path chooses from."""

WRITTEN_OUT = True
"""F(3x3) and F(4x4) use their written-out transforms (``wide3``, ``wide4``); False sends
them through the generic loops (a compile-time constant of the loops)."""

MIN_BLOCK_TILES = 256
"""Tiles per block at least, where the GEMMs are too large for BLAS's small-matrix
kernels (see the module docstring)."""

BLOCK_BYTES = 1 << 20
"""...or about this many bytes of transformed tiles, when that is more tiles."""

MIN_SMALL_BLOCK_TILES = 8
"""Blocks within the small-matrix kernels hold at least this many tiles: fewer rows
multiply too little per element of ``U[xi]`` they read."""

MIN_GRADIENT_SMALL_TILES = 48
"""The kernel gradient takes blocks within the small-matrix kernels only from this many
tiles (its inner dimension)."""


def tiles(length: int, m: int) -> int:
    """Tiles of ``m`` outputs that cover ``length`` outputs."""
    return -(-length // m)


def tile_size(OH: int, OW: int) -> int:
    """The m of :data:`TILE_SIZES` with the fewest multiplications for an ``OH x OW``
    output: ``tiles(OH) * tiles(OW) * (m + 2)^2``; ties go to the smaller m (less
    float32 error)."""
    return min(TILE_SIZES, key=lambda m: (tiles(OH, m) * tiles(OW, m) * (m + 2) ** 2, m))


def _block_rows(tiles_w: int, C: int, F: int, n: int, itemsize: int,
                min_small_tiles: int = MIN_SMALL_BLOCK_TILES) -> int:
    """Rows of tiles per block (see the module docstring) for ``n x n``-cell tiles."""
    small = small_block_rows(tiles_w, C, F, min_small_tiles)
    if small:
        return small
    count = max(MIN_BLOCK_TILES, BLOCK_BYTES // (n * n * (C + F) * itemsize))
    return max(1, count // tiles_w)


@parallel_loop
def blocked_forward(x, top, left, BT, AT, U, bias, relu, tiles_h, tiles_w, rows_per_block,
                    threads, y):
    """``y = A^T [(B^T d B) @ U] A`` (+ bias, ReLU if ``relu``), a block of tiles at a time.

    ``x`` ``(N, H, W, C)`` read as if zero-padded by ``top`` rows and ``left`` columns
    (and to whole tiles), ``U``
    ``(n*n, C, F)``, ``y`` ``(N, OH, OW, F)``; each of ``threads`` workers takes a
    contiguous share of the ``N*tiles_h`` rows of tiles.
    """
    cells, C, F = U.shape
    block = rows_per_block * tiles_w
    written_out = WRITTEN_OUT
    for worker in prange(threads):
        V = np.empty((cells, block, C), dtype=x.dtype)
        M = np.empty((cells, block, F), dtype=x.dtype)
        E = np.empty((cells, max(C, F)), dtype=x.dtype)
        start, stop = worker_share(worker, threads, x.shape[0] * tiles_h)
        for first_row in range(start, stop, rows_per_block):
            last_row = min(first_row + rows_per_block, stop)
            first, count = first_row * tiles_w, (last_row - first_row) * tiles_w
            for task in range(first_row, last_row):
                if written_out and AT.shape[0] == 4:
                    wide4.input_transform_row(x, top, left, tiles_h, tiles_w, task, first, V, E)
                elif written_out:
                    wide3.input_transform_row(x, top, left, tiles_h, tiles_w, task, first, V, E)
                else:
                    input_transform_row(x, top, left, BT, AT.shape[0], tiles_h, tiles_w, task,
                                        first, V, E)
            for xi in range(cells):
                np.dot(V[xi, :count], U[xi], M[xi, :count])
            for task in range(first_row, last_row):
                if written_out and AT.shape[0] == 4:
                    wide4.output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first, y,
                                               E)
                elif written_out:
                    wide3.output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first, y,
                                               E)
                else:
                    output_transform_row(M, AT, tiles_h, tiles_w, bias, relu, task, first, y, E)


@parallel_loop
def blocked_kernel_gradient(x, pad_top, pad_left, gp, BT, AT, top, left, tiles_h, tiles_w,
                            rows_per_block, threads, dU_parts):
    """``dU_parts[w] = sum over worker w's tiles of V^T dM`` (``(threads, n*n, C, F)``).

    ``x`` is read as in :func:`blocked_forward`, padded by ``pad_top`` and ``pad_left``;
    the output gradient starts at row ``top``, column ``left`` of ``gp``.
    """
    _, cells, C, F = dU_parts.shape
    block = rows_per_block * tiles_w
    written_out = WRITTEN_OUT
    for worker in prange(threads):
        V = np.empty((cells, block, C), dtype=x.dtype)
        dM = np.empty((cells, block, F), dtype=x.dtype)
        E = np.empty((cells, max(C, F)), dtype=x.dtype)
        product = np.empty((C, F), dtype=x.dtype)
        dU = dU_parts[worker]
        dU[:] = 0.0
        start, stop = worker_share(worker, threads, x.shape[0] * tiles_h)
        for first_row in range(start, stop, rows_per_block):
            last_row = min(first_row + rows_per_block, stop)
            first, count = first_row * tiles_w, (last_row - first_row) * tiles_w
            for task in range(first_row, last_row):
                if written_out and AT.shape[0] == 4:
                    wide4.input_transform_row(x, pad_top, pad_left, tiles_h, tiles_w, task,
                                              first, V, E)
                    wide4.gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first,
                                                 dM, E)
                elif written_out:
                    wide3.input_transform_row(x, pad_top, pad_left, tiles_h, tiles_w, task,
                                              first, V, E)
                    wide3.gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first,
                                                 dM, E)
                else:
                    input_transform_row(x, pad_top, pad_left, BT, AT.shape[0], tiles_h,
                                        tiles_w, task, first, V, E)
                    gradient_transform_row(gp, AT, top, left, tiles_h, tiles_w, task, first,
                                           dM, E)
            for xi in range(cells):
                np.dot(V[xi, :count].T, dM[xi, :count], product)
                dU[xi] += product


class WideWinogradConvCache(NamedTuple):
    """What :func:`backward` needs from :func:`forward`."""

    x: np.ndarray
    """The input ``(N, H, W, C)`` (read as if zero-padded, never copied)."""
    kernel: np.ndarray
    """``(3, 3, C, F)``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, C)``."""
    pads: Pads
    has_bias: bool
    relu: bool
    """Whether the forward fused a ReLU (then ``dy`` is masked by ``y > 0``)."""
    y: np.ndarray
    """The forward's output ``(N, OH, OW, F)``."""
    m: int
    """Outputs per tile side."""


def _convolve(x: np.ndarray, top: int, left: int, kernel: np.ndarray, bias: np.ndarray,
              relu: bool, m: int, y: np.ndarray) -> None:
    """``y`` = the 3x3 convolution (+ bias, ReLU), by F(m, 3), of ``x`` zero-padded by
    ``top`` rows and ``left`` columns (and to whole tiles)."""
    AT, _, BT = matrices(m)
    C, F = kernel.shape[2], kernel.shape[3]
    tiles_h, tiles_w = tiles(y.shape[1], m), tiles(y.shape[2], m)
    threads = use_threads(y.size * C)
    blocked_forward(x, top, left, BT.astype(x.dtype), AT.astype(x.dtype),
                    kernel_transform(kernel, m), bias, relu, tiles_h, tiles_w,
                    _block_rows(tiles_w, C, F, m + 2, x.dtype.itemsize), threads, y)


def forward(x: np.ndarray, kernel: np.ndarray, bias_vector: np.ndarray, has_bias: bool,
            pads: Pads, relu: bool, m: int | None = None
            ) -> tuple[np.ndarray, WideWinogradConvCache]:
    """3x3 stride-1 convolution of ``x`` ``(N, H, W, C)`` by F(m x m, 3 x 3): ``(y, cache)``.

    Args:
        x: contiguous input; ``kernel`` ``(3, 3, C, F)`` and ``bias_vector`` ``(F,)``
            (zeros when ``has_bias`` is False) of the same dtype.
        pads: ``((top, bottom), (left, right))``, each at most 2.
        relu: apply ``max(., 0)`` after the bias.
        m: tile size (default :func:`tile_size` of the output).

    Returns:
        ``y`` ``(N, OH, OW, F)`` with ``OH = H + top + bottom - 2``, and the cache.
    """
    N, H, W, C = x.shape
    (top, _), (left, _) = pads
    OH, OW = padded_output_hw(H, W, (3, 3), (1, 1), pads)
    m = m or tile_size(OH, OW)
    y = np.empty((N, OH, OW, kernel.shape[3]), dtype=x.dtype)
    _convolve(x, top, left, kernel, bias_vector, relu, m, y)
    return y, WideWinogradConvCache(x, kernel, x.shape, pads, has_bias, relu, y, m)


def backward(dy: np.ndarray, cache: WideWinogradConvCache, need_input_grad: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx or None, dkernel, dbias or None)`` of :func:`forward`, given ``dy = dL/dy``."""
    x, kernel, m = cache.x, cache.kernel, cache.m
    N, H, W, C = cache.x_shape
    (top, _), (left, _) = cache.pads
    F = kernel.shape[3]
    dtype = cache.y.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    _, OH, OW, _ = dy.shape
    tiles_h, tiles_w = tiles(OH, m), tiles(OW, m)
    # The gradient at (2 - top, 2 - left): room for its own tiles and for dx's input.
    g_top, g_left = 2 - top, 2 - left
    rows = max(tiles(H, m) * m + 2, g_top + tiles_h * m)
    columns = max(tiles(W, m) * m + 2, g_left + tiles_w * m)
    gp = np.empty((N, rows, columns, F), dtype=dtype)
    bias_sums = pad_gradient(dy, cache.y, cache.relu, g_top, g_left, use_threads(gp.size), gp)

    AT, _, BT = matrices(m)
    threads = use_threads(N * tiles_h * tiles_w * m * m * F * C)
    dU_parts = np.empty((threads, (m + 2) ** 2, C, F), dtype=dtype)
    blocked_kernel_gradient(x, top, left, gp, BT.astype(dtype), AT.astype(dtype), g_top, g_left,
                            tiles_h, tiles_w,
                            _block_rows(tiles_w, C, F, m + 2, dtype.itemsize,
                                        MIN_GRADIENT_SMALL_TILES),
                            threads, dU_parts)
    dkernel = kernel_gradient_transform(dU_parts, m)

    dx = None
    if need_input_grad:
        # Turned 180 degrees, input and output channels swapped: (3, 3, F, C).
        flipped = np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))
        dx = np.empty((N, H, W, C), dtype=dtype)
        _convolve(gp, 0, 0, flipped, np.zeros(C, dtype=dtype), False, m, dx)
    return dx, dkernel, (bias_sums.astype(dtype) if cache.has_bias else None)

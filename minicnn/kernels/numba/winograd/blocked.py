"""The blocked loops of Winograd F(2x2, 3x3): transform, multiply, transform back, in cache.

Written out whole, the transformed input tiles ``V`` ``(16, T, C)`` and products ``M``
``(16, T, F)`` are big (MNIST's second layer, batch 64: 4.7 MB and 9.4 MB), and a pass
over them costs more than its arithmetic.  Here each thread takes a share of the rows
of tiles and works through it a block at a time (about :data:`BLOCK_BYTES` of tiles:
85 tiles for that layer): transform the block's input tiles, multiply (16
single-threaded BLAS GEMMs called from inside the Numba thread, see
:mod:`~minicnn.kernels.numba.blas`), and transform the products into outputs while the
block is still in the core's L2 cache.  The kernel gradient does the same with input
and gradient tiles, adding ``V^T dM`` into a per-thread ``dU``.

The tile transforms they call are in :mod:`~minicnn.kernels.numba.winograd.transforms`;
the convolution around them (padding, kernel transform, thread counts) in
:mod:`~minicnn.kernels.numba.winograd.conv`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba import blas
from minicnn.kernels.numba.threads import parallel_loop, sum_partials, worker_share
from minicnn.kernels.numba.winograd import transforms

# Bytes of transformed tiles (input and output side) a block holds: half of the 1 MB
# per-core L2 cache of the machine this was tuned on, leaving room for U (block sizes
# from a quarter to twice this did about as well on MNIST's layers).
BLOCK_BYTES = 512 * 1024
# ...but never fewer tiles than this, so that each GEMM keeps enough rows.
MIN_BLOCK_TILES = 32
# When the transformed kernel U (16 C x F matrices) is larger than the cache, every
# block's 16 GEMMs stream all of U from L3 or memory again: a GEMM of ``tiles`` rows does
# ``tiles`` multiply-adds per element of U it loads, so with VGG16's 256 and 512 channels
# a block of 32 tiles spends its time loading U.  Such layers take blocks of at least
# this many tiles (the transformed tiles then leave L2, but each GEMM is big enough for
# BLAS's own cache blocking).
LARGE_KERNEL_MIN_TILES = 128


def block_rows(tiles_w: int, C: int, F: int, itemsize: int) -> int:
    """Rows of tiles per block: about :data:`BLOCK_BYTES` of ``V`` and ``M`` tiles, and at
    least :data:`LARGE_KERNEL_MIN_TILES` tiles when ``U`` does not fit in twice that."""
    tiles = max(MIN_BLOCK_TILES, BLOCK_BYTES // (16 * (C + F) * itemsize))
    if 16 * C * F * itemsize > 2 * BLOCK_BYTES:
        tiles = max(tiles, LARGE_KERNEL_MIN_TILES)
    return max(1, tiles // tiles_w)


def small_block_rows(tiles_w: int, C: int, F: int, min_tiles: int) -> int:
    """Rows of tiles per block that keep each ``(tiles, C) @ (C, F)`` GEMM on BLAS's
    small-matrix kernels (:func:`~minicnn.kernels.numba.blas.small_product_rows`): as
    many as fit, or 0 when fewer than one row of ``tiles_w`` tiles or ``min_tiles`` do.

    Where they fit, such blocks win twice: the GEMMs skip BLAS's packing copies, and the
    block's transformed tiles are small enough to stay in L2 between the transforms and
    the GEMMs.  (F(2x2)'s forward blocks, sized for L2, are within them already; the
    larger tiles' blocks and every kernel gradient's are sized by it.)
    """
    tiles = blas.small_product_rows(C, F)
    return tiles // tiles_w if tiles >= max(tiles_w, min_tiles) else 0


def gradient_block_rows(tiles_w: int, C: int, F: int, itemsize: int) -> int:
    """Rows of tiles per block of the kernel gradient: longer blocks than the forward's.

    Its GEMMs ``V^T dM`` sum over the block's tiles, and within BLAS's small-matrix
    kernels (the same limit on ``tiles * C * F``,
    :func:`~minicnn.kernels.numba.blas.small_product_rows`) a longer sum runs faster:
    at 64 channels, a sum over 128 tiles ran about half again as fast as one over 48
    (``python -m benchmarks small-products``).  So its blocks hold as many tiles as fit
    within that limit, when that is more than the forward's block, even though they then
    leave L2.  The 150x150 convnet's training step, whose three F(2x2) layers hold 72, 34
    and 28 tiles a forward block, ran several percent faster so.
    """
    return max(block_rows(tiles_w, C, F, itemsize), small_block_rows(tiles_w, C, F, 1))


# --------------------------------------------------------------------------------------
# The blocked loops
# --------------------------------------------------------------------------------------

@njit(inline="always")
def _block(first_row, stop, rows_per_block, tiles_w):
    """``(last_row, first tile, tile count)`` of the block starting at ``first_row``."""
    last_row = min(first_row + rows_per_block, stop)
    return last_row, first_row * tiles_w, (last_row - first_row) * tiles_w


@parallel_loop
def blocked_forward(x, top, left, U, bias, relu, pooled, tiles_h, tiles_w, rows_per_block,
                    threads, y, winner):
    """``y = A^T [(B^T d B) @ U] A`` (+ bias, ReLU if ``relu``), block by block.

    ``x`` ``(N, H, W, C)``, read as if zero-padded by ``top`` rows and ``left`` columns
    (and to whole tiles); ``U`` ``(16, C, F)``; ``y`` ``(N, OH, OW, F)``.  Each of
    ``threads`` workers takes a contiguous share of the ``N*tiles_h`` rows of tiles.
    With ``pooled``, each tile's four outputs are max-pooled after the ReLU instead:
    ``y`` and ``winner`` are ``(N, tiles_h, tiles_w, F)`` (see ``output_pool_row``).
    """
    _, C, F = U.shape
    block = rows_per_block * tiles_w
    for worker in prange(threads):
        V = np.empty((16, block, C), dtype=x.dtype)
        M = np.empty((16, block, F), dtype=x.dtype)
        start, stop = worker_share(worker, threads, x.shape[0] * tiles_h)
        for first_row in range(start, stop, rows_per_block):
            last_row, first, count = _block(first_row, stop, rows_per_block, tiles_w)
            for task in range(first_row, last_row):
                transforms.input_transform_row(x, top, left, tiles_h, tiles_w, task, first, V)
            for xi in range(16):
                np.dot(V[xi, :count], U[xi], M[xi, :count])
            for task in range(first_row, last_row):
                if pooled:
                    transforms.output_pool_row(M, tiles_h, tiles_w, bias, task, first, y, winner)
                else:
                    transforms.output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first,
                                                    y)


@parallel_loop
def blocked_kernel_gradient(x, pad_top, pad_left, gp, top, left, tiles_h, tiles_w,
                            rows_per_block, threads, dU_parts):
    """``dU_parts[w] = sum over worker w's tiles of V^T dM``, block by block.

    ``x`` read as if zero-padded by ``pad_top`` rows and ``pad_left`` columns, as in
    :func:`blocked_forward`; the output gradient starts at row ``top``,
    column ``left`` of ``gp`` and is zero beyond its edge; ``dU_parts``
    ``(threads, 16, C, F)`` (summed by the caller).
    """
    _, _, C, F = dU_parts.shape
    block = rows_per_block * tiles_w
    for worker in prange(threads):
        V = np.empty((16, block, C), dtype=x.dtype)
        dM = np.empty((16, block, F), dtype=x.dtype)
        product = np.empty((C, F), dtype=x.dtype)
        dU = dU_parts[worker]
        dU[:] = 0.0
        start, stop = worker_share(worker, threads, x.shape[0] * tiles_h)
        for first_row in range(start, stop, rows_per_block):
            last_row, first, count = _block(first_row, stop, rows_per_block, tiles_w)
            for task in range(first_row, last_row):
                transforms.input_transform_row(x, pad_top, pad_left, tiles_h, tiles_w, task,
                                               first, V)
                transforms.gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first, dM)
            for xi in range(16):
                np.dot(V[xi, :count].T, dM[xi, :count], product)
                dU[xi] += product


# --------------------------------------------------------------------------------------
# The output gradient, masked and zero-padded
# --------------------------------------------------------------------------------------

@parallel_loop
def pad_gradient(dy, y, relu, top, left, threads, gp):
    """``gp[:, top:top+OH, left:left+OW] = dy`` (times ``y > 0`` with ``relu``), 0 elsewhere.

    Returns ``sum g`` over every output (the bias gradient) in float64, from one partial
    sum per thread.
    """
    partial = np.zeros((threads, gp.shape[3]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, gp.shape[0] * gp.shape[1])
        transforms.pad_gradient_rows(dy, y, relu, top, left, first, last, gp, partial[worker])
    return sum_partials(partial)


@parallel_loop
def pad_pooled_gradient(dy, y, winner, top, left, threads, gp):
    """The gradient of a convolution whose ReLU output was max-pooled, into ``gp``.

    ``gp`` gets, from ``(top, left)`` on, each pooled gradient at its window's winner
    where the pooled value passed the ReLU, and zeros elsewhere (see
    ``pad_pooled_gradient_rows``).  Returns the bias gradient in float64.
    """
    partial = np.zeros((threads, gp.shape[3]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, gp.shape[0] * gp.shape[1])
        transforms.pad_pooled_gradient_rows(dy, y, winner, top, left, first, last, gp,
                                    partial[worker])
    return sum_partials(partial)

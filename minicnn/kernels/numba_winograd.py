"""Winograd convolution F(2x2, 3x3) for 3x3, stride-1 layers: fewer multiplications.

A 3x3 convolution computes a ``2 x 2`` block of outputs from a ``4 x 4`` input tile.
Winograd's minimal filtering algorithm (Lavin & Gray, 2016) does it as

    Y = A^T [ (G w G^T) (.) (B^T d B) ] A          (.) elementwise, per tile

with small constant matrices ``B^T (4 x 4)``, ``G (4 x 3)``, ``A^T (2 x 4)``.  Summed
over input channels, the elementwise products become 16 independent GEMMs:

    V[xi, t, c] = (B^T d_{t,c} B)[xi]        input tiles,   (16, T, C)
    U[xi, c, f] = (G w_{c,f} G^T)[xi]        kernel,        (16, C, F)
    M[xi]       = V[xi] @ U[xi]              16 GEMMs,      (16, T, F)
    y tile      = A^T M A                    output tiles

so a tile's ``4*9*C*F`` multiply-adds become ``16*C*F``: 2.25x fewer (less the tiles
that hang over the border).  Backward, with ``g`` the output gradient (times ``y > 0``
after a fused ReLU):

    dw: dM[xi] = (A g_t A^T)[xi],  dU[xi] = sum_t V[xi]^T dM[xi],  dw = G^T dU G
    dx: the "full" convolution of g by the kernel turned 180 degrees with its channel
        axes swapped -- g zero-padded by (2 - top, 2 - bottom) rows and (2 - left,
        2 - right) columns, then the same forward algorithm, C outputs per pixel.

Blocked, so the transformed tiles never leave the cache
-------------------------------------------------------
Written out whole, ``V`` and ``M`` are big (MNIST's second layer, batch 64: 4.7 MB and
9.4 MB), and a pass over them costs more than its arithmetic.  Here each thread takes a
share of the rows of tiles and works through it a block at a time (about
:data:`BLOCK_BYTES` of tiles: 85 tiles for that layer): transform the block's input
tiles, multiply (16 single-threaded BLAS GEMMs called from inside the Numba thread, see
:mod:`~minicnn.kernels.numba_blas`), and transform the products into outputs while the
block is still in the core's L2 cache.  The kernel gradient does the same with input and
gradient tiles, adding ``V^T dM`` into a per-thread ``dU``.  Measured on the 2-core
machine, MNIST's second layer (batch 64, float32, fused ReLU): forward 2.3 -> 1.1 ms,
backward 4.5 -> 3.0 ms against the same algebra done in whole-batch passes.

With a 2x2 max pooling after it
-------------------------------
A tile's 2x2 outputs are exactly one window of a 2x2, stride-2 pooling.  When the
layer's ReLU output is max-pooled (:mod:`minicnn.models.fusion`),
:func:`forward_relu_max_pool` computes only the tiles under a window and writes each
window's maximum and winner instead of its four outputs, and
:func:`backward_relu_max_pool` places the pooled gradient at the winners straight into
the gradient tiles, and stops dx's tiles where that gradient ends.  MNIST's second layer
then needs 25 tiles an image instead of 36.

Precision (float32, MNIST's second layer, largest error as a fraction of the largest
output): 2.4e-7, better than the GEMM path's 6.1e-7 (the coefficients are 0, +-1 and
+-1/2).  F(4x4, 3x3) would need 4x fewer multiplications, but its coefficients (up to 8
and 1/24) made its float32 error ~7x the GEMM path's, and blocked it was no faster on
MNIST's small layers, so it was removed.

The per-row transforms are compiled loops in :mod:`~minicnn.kernels.numba_winograd_f2`.
Inputs (and output gradients) are zero-padded to whole tiles first, so those loops
never test a border; the output transform writes only the outputs that exist.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minicnn.kernels import numba_winograd_f2 as f2
from minicnn.kernels.numba_conv_loops import sum_partials
from minicnn.kernels.numba_parallel import parallel_loop, threads_for, worker_share

# Lavin & Gray's matrices, interpolation points 0, 1, -1.  The loops have B^T and A^T
# written out term by term (numba_winograd_f2; tests check them against these); G,
# applied once per call to the kernel, is applied here with NumPy.
BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]], dtype=np.float64)

TILE = 2
"""Outputs per tile side; input tiles are ``TILE + 2 = 4`` cells a side."""

# Bytes of transformed tiles (input and output side) a block holds: half of the 1 MB
# per-core L2 cache of the machine this was tuned on (256 KB to 2 MB all measured within
# 10 % on MNIST's layers), leaving room for U.
BLOCK_BYTES = 512 * 1024
# ...but never fewer tiles than this, so that each GEMM keeps enough rows.
MIN_BLOCK_TILES = 32


def block_rows(tiles_w: int, C: int, F: int, itemsize: int) -> int:
    """Rows of tiles per block: about :data:`BLOCK_BYTES` of ``V`` and ``M`` tiles."""
    tiles = max(MIN_BLOCK_TILES, BLOCK_BYTES // (16 * (C + F) * itemsize))
    return max(1, tiles // tiles_w)


def tiles_along(length: int) -> int:
    """Tiles that cover ``length`` outputs: ``ceil(length / 2)``."""
    return -(-length // TILE)


# --------------------------------------------------------------------------------------
# The blocked loops
# --------------------------------------------------------------------------------------

@njit(inline="always")
def _block(first_row, stop, rows_per_block, tiles_w):
    """``(last_row, first tile, tile count)`` of the block starting at ``first_row``."""
    last_row = min(first_row + rows_per_block, stop)
    return last_row, first_row * tiles_w, (last_row - first_row) * tiles_w


@parallel_loop
def blocked_forward(xp, U, bias, relu, pooled, tiles_h, tiles_w, rows_per_block, threads, y,
                    winner):
    """``y = A^T [(B^T d B) @ U] A`` (+ bias, ReLU if ``relu``), block by block.

    ``xp`` ``(N, >= tiles_h*2 + 2, >= tiles_w*2 + 2, C)`` zero-padded input; ``U``
    ``(16, C, F)``; ``y`` ``(N, OH, OW, F)``.  Each of ``threads`` workers takes a
    contiguous share of the ``N*tiles_h`` rows of tiles.  With ``pooled``, each tile's
    four outputs are max-pooled after the ReLU instead: ``y`` and ``winner`` are
    ``(N, tiles_h, tiles_w, F)`` (see ``output_pool_row``).
    """
    _, C, F = U.shape
    block = rows_per_block * tiles_w
    for worker in prange(threads):
        V = np.empty((16, block, C), dtype=xp.dtype)
        M = np.empty((16, block, F), dtype=xp.dtype)
        start, stop = worker_share(worker, threads, xp.shape[0] * tiles_h)
        for first_row in range(start, stop, rows_per_block):
            last_row, first, count = _block(first_row, stop, rows_per_block, tiles_w)
            for task in range(first_row, last_row):
                f2.input_transform_row(xp, tiles_h, tiles_w, task, first, V)
            for xi in range(16):
                np.dot(V[xi, :count], U[xi], M[xi, :count])
            for task in range(first_row, last_row):
                if pooled:
                    f2.output_pool_row(M, tiles_h, tiles_w, bias, task, first, y, winner)
                else:
                    f2.output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first, y)


@parallel_loop
def blocked_kernel_gradient(xp, gp, top, left, tiles_h, tiles_w, rows_per_block, threads,
                            dU_parts):
    """``dU_parts[w] = sum over worker w's tiles of V^T dM``, block by block.

    ``xp`` as in :func:`blocked_forward`; the output gradient starts at row ``top``,
    column ``left`` of ``gp`` and is zero beyond its edge; ``dU_parts``
    ``(threads, 16, C, F)`` (summed by the caller).
    """
    _, _, C, F = dU_parts.shape
    block = rows_per_block * tiles_w
    for worker in prange(threads):
        V = np.empty((16, block, C), dtype=xp.dtype)
        dM = np.empty((16, block, F), dtype=xp.dtype)
        product = np.empty((C, F), dtype=xp.dtype)
        dU = dU_parts[worker]
        dU[:] = 0.0
        start, stop = worker_share(worker, threads, xp.shape[0] * tiles_h)
        for first_row in range(start, stop, rows_per_block):
            last_row, first, count = _block(first_row, stop, rows_per_block, tiles_w)
            for task in range(first_row, last_row):
                f2.input_transform_row(xp, tiles_h, tiles_w, task, first, V)
                f2.gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first, dM)
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
        f2.pad_gradient_rows(dy, y, relu, top, left, first, last, gp, partial[worker])
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
        f2.pad_pooled_gradient_rows(dy, y, winner, top, left, first, last, gp,
                                    partial[worker])
    return sum_partials(partial)


# --------------------------------------------------------------------------------------
# The whole convolution
# --------------------------------------------------------------------------------------

_NO_WINNER = np.zeros((1, 1, 1, 1), dtype=np.int8)

def kernel_transform(kernel: np.ndarray) -> np.ndarray:
    """``U[i*4 + j, c, f] = (G w_{c,f} G^T)[i, j]``: ``(16, C, F)`` from ``(3, 3, C, F)``."""
    _, _, C, F = kernel.shape
    transform = G.astype(kernel.dtype)
    # Two small GEMMs: rows (G w) for all (c, f) at once, then columns (. G^T).
    rows = (transform @ kernel.reshape(3, 3 * C * F)).reshape(4, 3, C * F)
    return np.ascontiguousarray(np.matmul(transform, rows).reshape(16, C, F))


def kernel_gradient_transform(dU: np.ndarray) -> np.ndarray:
    """``dw = G^T dU G`` per ``(c, f)``: ``(3, 3, C, F)`` from ``dU`` ``(16, C, F)``."""
    _, C, F = dU.shape
    transform = G.astype(dU.dtype)
    columns = np.matmul(transform.T, dU.reshape(4, 4, C * F))          # (4, 3, C*F): dU G
    return np.ascontiguousarray((transform.T @ columns.reshape(4, 3 * C * F))
                                .reshape(3, 3, C, F))


def _padded_input(x: np.ndarray, pads) -> tuple[np.ndarray, int, int]:
    """``(xp, OH, OW)``: ``x`` zero-padded to whole tiles of the output, and that output's size."""
    N, H, W, C = x.shape
    (top, bottom), (left, right) = pads
    OH = H + top + bottom - 2
    OW = W + left + right - 2
    # tiles*2 + 2 >= OH + 2 = H + top + bottom: the padded input holds all of x.
    xp = np.zeros((N, tiles_along(OH) * TILE + 2, tiles_along(OW) * TILE + 2, C),
                  dtype=x.dtype)
    xp[:, top:top + H, left:left + W] = x
    return xp, OH, OW


def forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, pads, relu: bool
            ) -> tuple[np.ndarray, tuple]:
    """3x3 stride-1 convolution of ``x`` ``(N, H, W, C)`` by F(2x2, 3x3).

    Args:
        x: contiguous input; kernel ``(3, 3, C, F)`` and bias ``(F,)`` (zeros for none)
            of the same dtype.
        pads: ``((top, bottom), (left, right))``, each at most 2.
        relu: apply ``max(., 0)`` after the bias.

    Returns:
        ``(y, state)``: ``y`` ``(N, OH, OW, F)`` with ``OH = H + top + bottom - 2``, and
        what :func:`backward` needs (the padded input and the kernel).
    """
    C, F = kernel.shape[2], kernel.shape[3]
    xp, OH, OW = _padded_input(x, pads)
    tiles_h, tiles_w = tiles_along(OH), tiles_along(OW)
    y = np.empty((x.shape[0], OH, OW, F), dtype=x.dtype)
    work = y.size * C
    blocked_forward.pick(work)(xp, kernel_transform(kernel), bias, relu, False, tiles_h,
                               tiles_w, block_rows(tiles_w, C, F, x.dtype.itemsize),
                               threads_for(work), y, _NO_WINNER)
    return y, (xp, kernel, x.shape, pads)


def forward_relu_max_pool(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, pads
                          ) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``max_pool_2x2(relu(conv(x) + bias))``: each tile is one pooling window.

    Only the ``(OH // 2) x (OW // 2)`` tiles under a window are computed (an odd last
    row or column of outputs belongs to no window).  Returns ``(y, winner, state)``,
    ``y`` and ``winner`` (int8, 0-3) ``(N, OH // 2, OW // 2, F)``.
    """
    C, F = kernel.shape[2], kernel.shape[3]
    xp, OH, OW = _padded_input(x, pads)
    PH, PW = OH // 2, OW // 2
    y = np.empty((x.shape[0], PH, PW, F), dtype=x.dtype)
    winner = np.empty(y.shape, dtype=np.int8)
    work = y.size * 4 * C
    blocked_forward.pick(work)(xp, kernel_transform(kernel), bias, True, True, PH, PW,
                               block_rows(PW, C, F, x.dtype.itemsize), threads_for(work),
                               y, winner)
    return y, winner, (xp, kernel, x.shape, pads)


def backward(dy: np.ndarray, y: np.ndarray, relu: bool, state: tuple, need_input_grad: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`forward`: ``(dx or None, dkernel, bias sums in float64)``.

    ``dy`` is contiguous, of ``y``'s shape; with ``relu`` it is the gradient of the ReLU's
    output and ``y`` (the forward's output) masks it.
    """
    _, OH, OW, _ = dy.shape
    gp, g_top, g_left = _gradient_buffer(state, tiles_along(OH), tiles_along(OW))
    bias_sums = pad_gradient.pick(gp.size)(dy, y, relu, g_top, g_left, threads_for(gp.size),
                                           gp)
    return _backward_from_gradient(gp, state, tiles_along(OH), tiles_along(OW),
                                   need_input_grad) + (bias_sums,)


def backward_relu_max_pool(dy: np.ndarray, y: np.ndarray, winner: np.ndarray, state: tuple,
                           need_input_grad: bool
                           ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`forward_relu_max_pool` from the pooled output's ``dy``.

    Returns ``(dx or None, dkernel, bias sums in float64)``.  Outputs outside every
    window get no gradient, so the kernel gradient runs over the pooled tiles only.
    """
    _, PH, PW, _ = dy.shape
    gp, g_top, g_left = _gradient_buffer(state, PH, PW)
    bias_sums = pad_pooled_gradient.pick(gp.size)(dy, y, winner, g_top, g_left,
                                                  threads_for(gp.size), gp)
    # Input rows and columns beyond (2 - top) + 2*PH see only zero gradients (an odd
    # last output row belongs to no window): dx's tiles stop there.
    return _backward_from_gradient(gp, state, PH, PW, need_input_grad,
                                   g_top + 2 * PH, g_left + 2 * PW) + (bias_sums,)


def _gradient_buffer(state: tuple, tiles_h: int, tiles_w: int) -> tuple[np.ndarray, int, int]:
    """An empty ``gp`` for the output gradient at ``(2 - top, 2 - left)``, and that offset.

    Placed there, the gradient is the padded input of dx's full convolution, and (read
    from that offset) the source of the ``tiles_h x tiles_w`` gradient tiles.
    """
    xp, kernel, (N, H, W, C), ((top, _), (left, _)) = state
    g_top, g_left = 2 - top, 2 - left
    rows = max(tiles_along(H) * TILE + 2, g_top + tiles_h * TILE)
    columns = max(tiles_along(W) * TILE + 2, g_left + tiles_w * TILE)
    return np.empty((N, rows, columns, kernel.shape[3]), dtype=xp.dtype), g_top, g_left


def _backward_from_gradient(gp: np.ndarray, state: tuple, tiles_h: int, tiles_w: int,
                            need_input_grad: bool, dx_rows: int | None = None,
                            dx_columns: int | None = None
                            ) -> tuple[np.ndarray | None, np.ndarray]:
    """``(dx or None, dkernel)`` from the output gradient placed in ``gp``.

    ``dx`` is computed in its first ``dx_rows`` x ``dx_columns`` (default: all), and is
    zero beyond.
    """
    xp, kernel, (N, H, W, C), ((top, _), (left, _)) = state
    F = kernel.shape[3]
    dtype = gp.dtype
    work = N * tiles_h * tiles_w * 4 * F * C
    threads = threads_for(work)
    dU_parts = np.empty((threads, 16, C, F), dtype=dtype)
    blocked_kernel_gradient.pick(work)(xp, gp, 2 - top, 2 - left, tiles_h, tiles_w,
                                       block_rows(tiles_w, C, F, dtype.itemsize), threads,
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
        work = computed.size * F
        blocked_forward.pick(work)(gp, kernel_transform(flipped), np.zeros(C, dtype=dtype),
                                   False, False, dx_tiles_h, dx_tiles_w,
                                   block_rows(dx_tiles_w, F, C, dtype.itemsize),
                                   threads_for(work), computed, _NO_WINNER)
    return dx, dkernel

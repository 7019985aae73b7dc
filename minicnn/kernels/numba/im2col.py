"""The im2col + GEMM convolution: patches, one BLAS GEMM, and the memory-bound passes around it.

The path every convolution can take (the others are faster for the shapes they
accept; :mod:`~minicnn.kernels.numba.conv` chooses).  Forward, with ``cols`` the patch
matrix ``(N*OH*OW, KH*KW*C)``::

    y = relu?(cols @ kernel.reshape(KH*KW*C, F) + bias)        already NHWC

Backward, with ``g = dy`` (or ``dy * (y > 0)`` after a fused ReLU)::

    dkernel = cols^T @ g        dbias = sum_rows g        dcols = g @ kernel_matrix^T

and ``dx`` the patch gradients ``dcols`` summed back onto the input cells (``col2im``).

Every loop is parallel over *rows* ``(n, i)`` of the batch (``prange`` over ``N * OH``
or ``N * H``), so that a batch of one large image (VGG16 visualizations) still uses
every core, and every parallel task writes memory no other task writes: no atomics, no
``np.add.at``.  Each loop body is an ``@njit`` helper for one row (called with an int64
index: a ``prange`` index is unsigned inside the parallel region, and a second integer
type would compile the helper twice), which :func:`gemm_forward` reuses to gather,
multiply and finish the output chunk by chunk in each thread.

Layout everywhere: ``x`` NHWC ``(N, H, W, C)``, kernel HWIO ``(KH, KW, C, F)``, patch
matrix ``cols`` of shape ``(N*OH*OW, KH*KW*C)`` with row ``(n*OH + i)*OW + j`` and
column ``(kh*KW + kw)*C + c`` holding ``x[n, i*SH - top + kh, j*SW - left + kw, c]``
(zero where that cell is padding).  This column order is exactly
``kernel.reshape(KH*KW*C, F)``'s row order, so ``y = cols @ kernel_matrix``.

``fastmath`` stays off (results must match the reference to round-off), so inner loops
are written to vectorize without reassociation: the innermost index always runs over
independent outputs (channels ``c`` or filters ``f``), never over a reduction, and a
flag such as ``relu`` is tested outside the inner loop (a branch inside it stops LLVM
from vectorizing it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from minicnn.kernels.geometry import Pads, padded_output_hw
from minicnn.kernels.numba import blas
from minicnn.kernels.numba.threads import (parallel_loop, sum_partials, threads_for,
                                           use_threads, worker_share)


# --------------------------------------------------------------------------------------
# Patches and their scatter back
# --------------------------------------------------------------------------------------

@njit(cache=True)
def im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, task, cols, first_row):
    """Patches of output row ``task = n*OH + i`` into ``cols[task*OW - first_row ...]``.

    For one tap row ``kh`` the ``KW*C`` values of a patch are contiguous in ``x`` (NHWC)
    and in ``cols``; when the whole run lies inside the image it is one copy loop.
    """
    N, H, W, C = x.shape
    run = KW * C
    rows = x.reshape(N, H, W * C)
    n = task // OH
    i = task - n * OH
    for j in range(OW):
        row = task * OW + j - first_row
        iw0 = j * SW - left
        for kh in range(KH):
            ih = i * SH - top + kh
            base = kh * run
            if 0 <= ih < H and iw0 >= 0 and iw0 + KW <= W:
                first = iw0 * C
                for e in range(run):
                    cols[row, base + e] = rows[n, ih, first + e]
                continue
            for kw in range(KW):
                iw = iw0 + kw
                offset = base + kw * C
                if 0 <= ih < H and 0 <= iw < W:
                    for c in range(C):
                        cols[row, offset + c] = x[n, ih, iw, c]
                else:
                    for c in range(C):
                        cols[row, offset + c] = 0.0


@parallel_loop
def im2col(x, KH, KW, SH, SW, top, left, OH, OW, cols):
    """Fill ``cols`` ``(N*OH*OW, KH*KW*C)`` with the patches of ``x`` (padding read as 0)."""
    for task in prange(x.shape[0] * OH):
        im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, np.int64(task), cols, 0)


@njit(inline="always")
def source_index(p, before, k, stride, out):
    """The output index ``i`` whose window tap ``k`` reads input index ``p``, or -1.

    Along one axis output ``i`` reads inputs ``i*stride - before + k``; so ``p`` is read
    through tap ``k`` by ``i = (p + before - k) / stride`` when that is a whole number
    in ``0 <= i < out``.
    """
    t = p + before - k
    if t < 0 or t % stride != 0 or t // stride >= out:
        return -1
    return t // stride


@njit(cache=True)
def col2im_task(dcols, KH, KW, SH, SW, top, left, OH, OW, task, dx):
    """:func:`col2im` for input row ``task = n*H + p``: zero it, add the patches landing on it."""
    H, W, C = dx.shape[1], dx.shape[2], dx.shape[3]
    n = task // H
    p = task - n * H
    out = dx[n, p]
    out[:] = 0.0
    for kh in range(KH):
        i = source_index(p, top, kh, SH, OH)
        if i < 0:
            continue
        for j in range(OW):
            row = (n * OH + i) * OW + j
            for kw in range(KW):
                q = j * SW - left + kw
                if q < 0 or q >= W:
                    continue
                base = (kh * KW + kw) * C
                cell = out[q]
                for c in range(C):
                    cell[c] += dcols[row, base + c]


@parallel_loop
def col2im(dcols, KH, KW, SH, SW, top, left, OH, OW, dx):
    """Overwrite ``dx`` ``(N, H, W, C)`` with the patch gradients ``dcols`` summed back.

    ``dx[n, p, q, c] = sum over (kh, kw) with p = i*SH - top + kh, q = j*SW - left + kw
    of dcols[(n*OH + i)*OW + j, (kh*KW + kw)*C + c]``.  Each parallel task owns one input
    row ``(n, p)``: it zeroes it, then adds every patch row that lands on it (the output
    rows ``i`` whose tap ``kh`` reads row ``p``), so tasks never write the same cell.
    """
    for task in prange(dx.shape[0] * dx.shape[1]):
        col2im_task(dcols, KH, KW, SH, SW, top, left, OH, OW, np.int64(task), dx)


# --------------------------------------------------------------------------------------
# Epilogues: bias and ReLU forward, ReLU mask and bias sums backward
# --------------------------------------------------------------------------------------

@njit(cache=True)
def bias_relu_rows(y, start, stop, bias, relu):
    """``y[r] += bias`` for rows ``start <= r < stop``, then ``max(., 0)`` when ``relu``."""
    F = y.shape[1]
    if relu:
        for r in range(start, stop):
            for f in range(F):
                v = y[r, f] + bias[f]
                y[r, f] = v if v > 0.0 else 0.0
    else:
        for r in range(start, stop):
            for f in range(F):
                y[r, f] += bias[f]


@parallel_loop
def bias_relu_inplace(y, bias, relu):
    """``y[r, f] = y[r, f] + bias[f]``, then ``max(., 0)`` when ``relu``; ``y`` is 2-D."""
    for r in prange(y.shape[0]):
        bias_relu_rows(y, np.int64(r), np.int64(r) + 1, bias, relu)


# Rows summed in the array's own dtype before a float64 flush: short float32 sums keep
# the inner loop vectorized, the float64 total keeps a long batch from losing digits.
_FLUSH_ROWS = 64


@njit(cache=True)
def gradient_rows(dy, y, relu, first, last, g, sums):
    """Rows ``first <= r < last`` of a 2-D gradient: mask, and add to the float64 ``sums``.

    With ``relu``, ``g[r] = dy[r] * (y[r] > 0)`` (written as a select) and ``g``'s rows
    are summed; without, ``dy``'s rows are summed and ``g`` is not touched.
    """
    F = dy.shape[1]
    block = np.zeros(F, dtype=dy.dtype)
    for start in range(first, last, _FLUSH_ROWS):
        block[:] = 0.0
        for r in range(start, min(last, start + _FLUSH_ROWS)):
            grads = dy[r]
            if relu:
                kept = y[r]
                out = g[r]
                for f in range(F):
                    v = grads[f] if kept[f] > 0.0 else 0.0
                    out[f] = v
                    block[f] += v
            else:
                for f in range(F):
                    block[f] += grads[f]
        for f in range(F):
            sums[f] += block[f]


@parallel_loop
def relu_grad_and_bias_sums(dy, y, threads, g):
    """``g = dy * (y > 0)`` (the ReLU's backward) and its column sums (float64).

    ``dy``, ``y``, ``g`` are ``(M, F)``; ``y`` is the ReLU's output: positive exactly
    where its input was.  One partial sum per thread.
    """
    partial = np.zeros((threads, dy.shape[1]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, dy.shape[0])
        gradient_rows(dy, y, True, first, last, g, partial[worker])
    return sum_partials(partial)


@parallel_loop
def column_sums(g, threads):
    """``sum_r g[r, f]`` of a 2-D ``(M, F)`` array, in float64 (one partial per thread)."""
    partial = np.zeros((threads, g.shape[1]), dtype=np.float64)
    for worker in prange(threads):
        first, last = worker_share(worker, threads, g.shape[0])
        gradient_rows(g, g, False, first, last, g, partial[worker])
    return sum_partials(partial)


@parallel_loop
def chunked_kernel_gradient(cols, dy2d, y2d, relu, threads, dkernel_parts, bias_parts):
    """``dkernel_parts[w] = cols^T g`` and ``bias_parts[w] = sum g`` over worker ``w``'s rows,
    ``CHUNK_ROWS`` rows at a time (``g = dy * (y > 0)`` when ``relu``, else ``dy``).

    Why: for an RGB first layer ``g`` and the patches are tens of megabytes; here each
    chunk of ``g`` is masked and multiplied while it and its patches are in cache.
    """
    M, K = cols.shape
    F = dy2d.shape[1]
    for worker in prange(threads):
        g = np.empty((CHUNK_ROWS, F), dtype=dy2d.dtype)
        product = np.empty((K, F), dtype=dy2d.dtype)
        dkernel = dkernel_parts[worker]
        dkernel[:] = 0.0
        bias_parts[worker][:] = 0.0
        first, last = worker_share(worker, threads, M)
        for start in range(first, last, CHUNK_ROWS):
            stop = min(last, start + CHUNK_ROWS)
            gradient_rows(dy2d[start:stop], y2d[start:stop], relu, 0, stop - start, g,
                          bias_parts[worker])
            if relu:
                np.dot(cols[start:stop].T, g[:stop - start], product)
            else:
                np.dot(cols[start:stop].T, dy2d[start:stop], product)
            dkernel += product


# --------------------------------------------------------------------------------------
# The forward pass as one parallel loop: patches, GEMM and epilogue chunk by chunk
# --------------------------------------------------------------------------------------

# Rows of the patch matrix a thread gathers before multiplying them: about half a
# megabyte of patches for MNIST's second layer, so the GEMM reads them from the core's
# own L2 cache.
CHUNK_ROWS = 512


@parallel_loop
def gemm_forward(x, kernel_matrix, bias, relu, KH, KW, SH, SW, top, left, OH, OW, threads,
                 cols, y2d):
    """``y2d = relu?(im2col(x) @ kernel_matrix + bias)``, and ``cols`` = the patches.

    Each thread takes a contiguous share of the ``N*OH`` output rows and, chunk by chunk,
    gathers their patches, multiplies them (single-threaded BLAS, see
    :mod:`~minicnn.kernels.numba.blas`) and applies the bias and ReLU while the chunk is
    still in its cache.
    """
    tasks = x.shape[0] * OH
    share = (tasks + threads - 1) // threads
    group = max(1, CHUNK_ROWS // OW)
    for worker in prange(threads):
        stop = min(tasks, (worker + 1) * share)
        for first in range(worker * share, stop, group):
            last = min(first + group, stop)
            for task in range(first, last):
                im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, task, cols, 0)
            np.dot(cols[first * OW:last * OW], kernel_matrix, y2d[first * OW:last * OW])
            bias_relu_rows(y2d, first * OW, last * OW, bias, relu)


# --------------------------------------------------------------------------------------
# The convolution
# --------------------------------------------------------------------------------------

class Im2colConvCache(NamedTuple):
    """What :func:`backward` needs from :func:`forward`."""

    cols: np.ndarray
    """Patch matrix ``(N*OH*OW, KH*KW*C)``; for a pointwise layer, ``x`` as ``(N*H*W, C)``."""
    kernel_matrix: np.ndarray
    """``kernel.reshape(KH*KW*C, F)``."""
    x_shape: tuple[int, int, int, int]
    """``(N, H, W, C)``."""
    kernel_shape: tuple[int, int, int, int]
    """``(KH, KW, C, F)``."""
    strides: tuple[int, int]
    pads: Pads
    has_bias: bool
    """Whether the forward had a bias (else ``dbias`` is None)."""
    relu: bool
    """Whether the forward fused a ReLU (then ``dy`` is masked by ``y > 0``)."""
    y: np.ndarray
    """The forward's output ``(N, OH, OW, F)``, for the ReLU's mask."""
    pointwise: bool
    """1x1, stride 1, unpadded: the GEMM ran on ``x`` itself, no patches."""


def forward(x: np.ndarray, kernel: np.ndarray, bias_vector: np.ndarray, has_bias: bool,
            strides: tuple[int, int], pads: Pads, relu: bool
            ) -> tuple[np.ndarray, Im2colConvCache]:
    """``y = relu?(im2col(x) @ kernel_matrix + bias)``: ``(y (N, OH, OW, F), cache)``.

    ``x``, ``kernel`` and ``bias_vector`` (zeros when ``has_bias`` is False) are
    contiguous and of one float dtype; ``OH = (H + top + bottom - KH) // SH + 1``.
    """
    dtype = x.dtype
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)
    depth = KH * KW * C
    kernel_matrix = kernel.reshape(depth, F)
    # A 1x1, stride-1, unpadded convolution is already a GEMM on x itself.
    pointwise = KH == 1 and KW == 1 and SH == 1 and SW == 1 and top == bottom == left == right == 0
    rows = N * OH * OW
    if not pointwise and threads_for(rows * depth) > 1 and blas.enable():
        # One parallel loop: patches, GEMM and bias/ReLU chunk by chunk in each thread.
        cols = np.empty((rows, depth), dtype=dtype)
        y2d = np.empty((rows, F), dtype=dtype)
        threads = use_threads(rows * depth)
        gemm_forward(x, kernel_matrix, bias_vector, relu, KH, KW, SH, SW, top, left, OH, OW,
                     threads, cols, y2d)
    else:
        if pointwise:
            cols = x.reshape(rows, C)
        else:
            cols = np.empty((rows, depth), dtype=dtype)
            use_threads(cols.size)
            im2col(x, KH, KW, SH, SW, top, left, OH, OW, cols)
        y2d = blas.matmul_2d(cols, kernel_matrix)
        if has_bias or relu:
            use_threads(y2d.size)
            bias_relu_inplace(y2d, bias_vector, relu)
    y = y2d.reshape(N, OH, OW, F)
    return y, Im2colConvCache(cols, kernel_matrix, (N, H, W, C), (KH, KW, C, F), strides,
                              pads, has_bias, relu, y, pointwise)


def backward(dy: np.ndarray, cache: Im2colConvCache, need_input_grad: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx or None, dkernel, dbias or None)`` of :func:`forward`, given ``dy = dL/dy``."""
    dtype = cache.cols.dtype
    N, H, W, C = cache.x_shape
    KH, KW, _, F = cache.kernel_shape
    _, OH, OW, _ = dy.shape
    dy2d = np.ascontiguousarray(dy, dtype=dtype).reshape(N * OH * OW, F)
    y2d = cache.y.reshape(N * OH * OW, F)

    if not need_input_grad and blas.enable():
        # Only the weight gradients (a first layer): g is never needed whole.
        threads = use_threads(dy2d.size * KH * KW * C)
        dkernel_parts = np.empty((threads, KH * KW * C, F), dtype=dtype)
        bias_parts = np.empty((threads, F), dtype=np.float64)
        chunked_kernel_gradient(cache.cols, dy2d, y2d, cache.relu, threads, dkernel_parts,
                                bias_parts)
        dkernel = sum_partials(dkernel_parts).reshape(cache.kernel_shape)
        dbias = sum_partials(bias_parts).astype(dtype) if cache.has_bias else None
        return None, dkernel, dbias

    if cache.relu:
        g = np.empty_like(dy2d)
        threads = use_threads(g.size)
        bias_sums = relu_grad_and_bias_sums(dy2d, y2d, threads, g)
    else:
        g = dy2d
        bias_sums = None
        if cache.has_bias:
            threads = use_threads(g.size)
            bias_sums = column_sums(g, threads)
    dkernel = blas.matmul_tn(cache.cols, g).reshape(cache.kernel_shape)
    dcols = blas.matmul_2d(g, cache.kernel_matrix.T) if need_input_grad else None
    dbias = bias_sums.astype(dtype) if cache.has_bias else None

    dx = None
    if need_input_grad:
        if cache.pointwise:
            dx = dcols.reshape(cache.x_shape)  # patches are the input cells themselves
        else:
            SH, SW = cache.strides
            (top, _), (left, _) = cache.pads
            dx = np.empty(cache.x_shape, dtype=dtype)
            use_threads(dcols.size)
            col2im(dcols, KH, KW, SH, SW, top, left, OH, OW, dx)
    return dx, dkernel, dbias

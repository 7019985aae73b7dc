"""Winograd F(2x2, 3x3): its matrices, the kernel transforms, and the compiled tile transforms.

Lavin & Gray's matrices (interpolation points 0, 1, -1; coefficients 0, +-1, +-1/2)::

    Y = A^T [ (G w G^T) (.) (B^T d B) ] A          (.) elementwise, per 4x4 tile

The kernel is transformed once per call (:func:`kernel_transform`, with NumPy).  The
input, output and gradient tiles are transformed inside the blocked loops of
:mod:`~minicnn.kernels.numba.winograd.blocked`, one row of tiles at a time, by the
compiled functions below.  Each 2-D transform is two 1-D passes over a tile: first down
its columns into a small per-task buffer ``E``, then along its rows.  The 1-D
transforms are written out term by term (``_bt2``, ``_at2``, ``_a2``, inlined), because a
loop over the constant matrices keeps partial sums in memory and does not vectorize;
the innermost loop always runs over channels (``c``) or filters (``f``), with no branch.
Tests check the written-out transforms against :data:`BT`, :data:`G` and :data:`AT`.

Naming: tile ``t = (n*tiles_h + ti)*tiles_w + tj``; transformed arrays are
``(16, tiles, channels)`` block buffers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from minicnn.kernels.numba.pooling import first_maximum
from minicnn.kernels.numba.winograd.patches import fill_patch, tile_is_inside

BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]], dtype=np.float64)
"""``B^T (4 x 4)``: an input tile ``d`` becomes ``B^T d B``."""
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
"""``G (4 x 3)``: a 3x3 kernel ``w`` becomes ``G w G^T``."""
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]], dtype=np.float64)
"""``A^T (2 x 4)``: a transformed product ``M`` becomes the 2x2 outputs ``A^T M A``."""

TILE = 2
"""Outputs per tile side; input tiles are ``TILE + 2 = 4`` cells a side."""


def tiles_along(length: int) -> int:
    """Tiles that cover ``length`` outputs: ``ceil(length / 2)``."""
    return -(-length // TILE)


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


# --------------------------------------------------------------------------------------
# One-dimensional transforms: rows of B^T and A^T, and A
# --------------------------------------------------------------------------------------

@njit(inline='always')
def _bt2(d0, d1, d2, d3):
    """``B^T d`` for F(2, 3): one column (or row) of an input tile."""
    return (
        d0 - d2,
        d1 + d2,
        -d1 + d2,
        d1 - d3)


@njit(inline='always')
def _at2(v0, v1, v2, v3):
    """``A^T v`` for F(2, 3): 4 transformed values to 2 outputs."""
    return (
        v0 + v1 + v2,
        v1 - v2 - v3)


@njit(inline='always')
def _a2(g0, g1):
    """``A g`` for F(2, 3): 2 output gradients to 4 values."""
    return (
        g0,
        g0 + g1,
        g0 - g1,
        -g1)


@njit(inline='always')
def _input_tile(d, p, q, t, E, V):
    """``V[:, t] = B^T d B`` for the 4x4 cells of ``d`` ``(rows, columns, C)`` at ``(p, q)``."""
    C = d.shape[2]
    for l in range(4):
        r0 = d[p, q + l]
        r1 = d[p + 1, q + l]
        r2 = d[p + 2, q + l]
        r3 = d[p + 3, q + l]
        for c in range(C):
            e0, e1, e2, e3 = _bt2(r0[c], r1[c], r2[c], r3[c])
            E[l, c] = e0
            E[4 + l, c] = e1
            E[8 + l, c] = e2
            E[12 + l, c] = e3
    for i in range(4):
        b = i * 4
        for c in range(C):
            v0, v1, v2, v3 = _bt2(E[b, c], E[b + 1, c], E[b + 2, c], E[b + 3, c])
            V[b, t, c] = v0
            V[b + 1, t, c] = v1
            V[b + 2, t, c] = v2
            V[b + 3, t, c] = v3


@njit(cache=True)
def input_transform_row(x, top, left, tiles_h, tiles_w, task, first, V):
    """``V[i*4 + j, t - first, :] = (B^T d_t B)[i, j]`` for the tiles ``t`` of tile row ``task``.

    ``d_t`` is read from ``x`` ``(N, H, W, C)`` as if it were zero-padded by ``top`` rows
    and ``left`` columns, and beyond its bottom and right edges
    (:mod:`~minicnn.kernels.numba.winograd.patches`); ``task = n*tiles_h + ti``, and tile
    ``t = task*tiles_w + tj`` starts at row ``ti*2``, column ``tj*2`` of that padded
    input.  ``V`` ``(16, tiles, C)`` is the caller's block buffer, which starts at tile
    ``first``.
    """
    C = x.shape[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 2 - top
    E = np.empty((16, C), dtype=V.dtype)   # B^T d, column by column
    patch = np.empty((4, 4, C), dtype=V.dtype)
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * 2 - left
        if tile_is_inside(x, p, q, 4):
            _input_tile(x[n], p, q, t, E, V)
        else:
            fill_patch(x, n, p, q, patch)
            _input_tile(patch, 0, 0, t, E, V)


@njit(inline='always')
def _output_columns(M, t, E):
    """``E = A^T M_t`` for tile ``t``, column by column: ``E[i*4 + l] = (A^T M_t)[i, l]``."""
    for l in range(4):
        for f in range(M.shape[2]):
            o0, o1 = _at2(M[l, t, f], M[4 + l, t, f], M[8 + l, t, f], M[12 + l, t, f])
            E[l, f] = o0
            E[4 + l, f] = o1


@njit(cache=True)
def output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first, y):
    """Outputs ``A^T M_t A`` (+ bias, then ReLU if ``relu``) of tile row ``task`` into ``y``.

    ``M`` ``(16, tiles, F)`` holds tile ``t`` at ``t - first``; ``y`` ``(N, OH, OW, F)``:
    outputs of tiles that hang over its edge are dropped.
    """
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 2
    E = np.empty((8, F), dtype=M.dtype)   # A^T M, column by column
    R = np.empty((2, F), dtype=M.dtype)   # one output row of a tile cut by the edge
    for tj in range(tiles_w):
        q = tj * 2
        _output_columns(M, task * tiles_w + tj - first, E)
        for i in range(min(2, OH - p)):
            b = i * 4
            if q + 2 <= OW:
                out0 = y[n, p + i, q]
                out1 = y[n, p + i, q + 1]
                if relu:
                    for f in range(F):
                        y0, y1 = _at2(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f])
                        v = y0 + bias[f]
                        out0[f] = v if v > 0.0 else 0.0
                        v = y1 + bias[f]
                        out1[f] = v if v > 0.0 else 0.0
                else:
                    for f in range(F):
                        y0, y1 = _at2(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f])
                        out0[f] = y0 + bias[f]
                        out1[f] = y1 + bias[f]
            else:
                # The tile hangs over the right edge: its row into R, then the columns
                # that exist.
                for f in range(F):
                    y0, y1 = _at2(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f])
                    R[0, f] = y0
                    R[1, f] = y1
                for j in range(OW - q):
                    out = y[n, p + i, q + j]
                    for f in range(F):
                        v = R[j, f] + bias[f]
                        out[f] = v if (v > 0.0 or not relu) else 0.0


@njit(cache=True)
def output_pool_row(M, tiles_h, tiles_w, bias, task, first, y, winner):
    """Each tile's four outputs (+ bias) max-pooled: ``y = relu(max)`` and the winner.

    A tile's 2x2 outputs are exactly a 2x2, stride-2 pooling window, so tile ``(ti, tj)``
    gives ``y[n, ti, tj]`` (``y`` and ``winner`` ``(N, tiles_h, tiles_w, F)``); the
    winner is the first maximum in row-major order, 0-3, as the pooling kernels pick it.
    ``relu(max) = max(relu)``: the values equal those of the unfused layers bit for bit.
    """
    F = y.shape[3]
    n = task // tiles_h
    i = task - n * tiles_h
    E = np.empty((8, F), dtype=M.dtype)
    for j in range(tiles_w):
        _output_columns(M, task * tiles_w + j - first, E)
        out = y[n, i, j]
        won = winner[n, i, j]
        for f in range(F):
            v0, v1 = _at2(E[0, f], E[1, f], E[2, f], E[3, f])
            v2, v3 = _at2(E[4, f], E[5, f], E[6, f], E[7, f])
            best, at = first_maximum(v0 + bias[f], v1 + bias[f], v2 + bias[f], v3 + bias[f])
            out[f] = best if best > 0.0 else 0.0
            won[f] = at


@njit(cache=True)
def gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first, dM):
    """``dM[k*4 + l, t - first, :] = (A g_t A^T)[k, l]`` for the tiles of tile row ``task``.

    The output gradient starts at row ``top``, column ``left`` of ``gp``
    ``(N, >= top + tiles_h*2, >= left + tiles_w*2, F)``, which is zero beyond its edge.
    """
    F = gp.shape[3]
    n = task // tiles_h
    p = top + (task - n * tiles_h) * 2
    E = np.empty((8, F), dtype=dM.dtype)   # A g, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = left + tj * 2
        for j in range(2):
            g0 = gp[n, p, q + j]
            g1 = gp[n, p + 1, q + j]
            for f in range(F):
                e0, e1, e2, e3 = _a2(g0[f], g1[f])
                E[j, f] = e0
                E[2 + j, f] = e1
                E[4 + j, f] = e2
                E[6 + j, f] = e3
        for k in range(4):
            b = k * 4
            c0 = k * 2
            for f in range(F):
                v0, v1, v2, v3 = _a2(E[c0, f], E[c0 + 1, f])
                dM[b, t, f] = v0
                dM[b + 1, t, f] = v1
                dM[b + 2, t, f] = v2
                dM[b + 3, t, f] = v3


@njit(cache=True)
def pad_gradient_rows(dy, y, relu, top, left, first, last, gp, sums):
    """Rows ``first <= n*HP + p < last`` of ``gp``: ``dy`` (masked by ``y > 0`` with
    ``relu``) where it lands at ``(top, left)`` onwards, zero elsewhere; adds to ``sums``.
    """
    N, OH, OW, F = dy.shape
    HP, WP = gp.shape[1], gp.shape[2]
    row_sums = np.zeros(F, dtype=gp.dtype)
    for task in range(first, last):
        n = task // HP
        p = task - n * HP
        i = p - top
        for q in range(WP):
            out = gp[n, p, q]
            j = q - left
            if i < 0 or i >= OH or j < 0 or j >= OW:
                for f in range(F):
                    out[f] = 0.0
                continue
            grads = dy[n, i, j]
            if relu:
                kept = y[n, i, j]
                for f in range(F):
                    out[f] = grads[f] if kept[f] > 0.0 else 0.0
            else:
                for f in range(F):
                    out[f] = grads[f]
            for f in range(F):
                row_sums[f] += out[f]
        # One row summed in the data's dtype, then flushed to float64: short float32
        # sums keep the loop vectorized, the float64 total keeps the batch's digits.
        for f in range(F):
            sums[f] += row_sums[f]
            row_sums[f] = 0.0


@njit(cache=True)
def pad_pooled_gradient_rows(dy, y, winner, top, left, first, last, gp, sums):
    """Rows ``first <= n*HP + p < last`` of ``gp``: the convolution's output gradient.

    ``dy``, ``y`` and ``winner`` ``(N, PH, PW, F)`` are the pooled output's gradient,
    value and winners: output ``(2i + a, 2j + b)`` (placed at ``(top, left)`` onwards)
    gets ``dy[n, i, j]`` where it won (``winner == 2a + b``) and passed the ReLU
    (``y > 0``), zero elsewhere; adds the gradient to ``sums``.
    """
    PH, PW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    HP, WP = gp.shape[1], gp.shape[2]
    row_sums = np.zeros(F, dtype=gp.dtype)
    for task in range(first, last):
        n = task // HP
        r = task - n * HP - top
        for q in range(WP):
            out = gp[n, task - n * HP, q]
            c = q - left
            if r < 0 or r >= 2 * PH or c < 0 or c >= 2 * PW:
                for f in range(F):
                    out[f] = 0.0
                continue
            i, j = r // 2, c // 2
            position = 2 * (r - 2 * i) + (c - 2 * j)
            grads, kept, won = dy[n, i, j], y[n, i, j], winner[n, i, j]
            for f in range(F):
                out[f] = grads[f] if (won[f] == position and kept[f] > 0.0) else 0.0
            for f in range(F):
                row_sums[f] += out[f]
        for f in range(F):
            sums[f] += row_sums[f]
            row_sums[f] = 0.0

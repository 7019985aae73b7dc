"""Compiled transforms of Winograd's F(2x2, 3x3) (see :mod:`minicnn.kernels.numba_winograd`).

Input tiles are 4x4, output tiles 2x2; points 0, 1, -1 (coefficients 0, +-1, +-1/2).
Each 2-D transform is two 1-D passes over a tile: first down its columns into a small
per-task buffer ``E``, then along its rows.  The 1-D transforms are written out term by
term (``_bt2`` ... ``_b2``, inlined), because a loop over the constant matrices keeps
partial sums in memory and does not vectorize (measured 4x slower); the innermost loop
always runs over channels (``c``) or filters (``f``), with no branch.  (``constants``
is unused here, kept so that both tile sizes share one calling convention.)

Naming: tile ``t = (n*tiles_h + ti)*tiles_w + tj``; transformed arrays are
``(16, T, channels)``.  Loops are parallel over rows of tiles; each body is an ``@njit``
helper called with an int64 tile row (one compiled specialization).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba_parallel import parallel_loop

# --------------------------------------------------------------------------------------
# One-dimensional transforms: rows of B^T and A^T, and their transposes
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
def _b2(v0, v1, v2, v3):
    """``B v`` for F(2, 3): 4 transformed gradients to input cells."""
    return (
        v0,
        v1 - v2 + v3,
        -v0 + v1 + v2,
        -v3)


# --------------------------------------------------------------------------------------
# Two-dimensional transforms, tile row by tile row
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _input_transform_2_row(xp, tiles_h, tiles_w, constants, task, V):
    """:func:`input_transform_2` for tile row ``task = n*tiles_h + ti``."""
    C = xp.shape[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 2
    E = np.empty((16, C), dtype=V.dtype)   # B^T d, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 2
        for l in range(4):
            r0 = xp[n, p, q + l]
            r1 = xp[n, p + 1, q + l]
            r2 = xp[n, p + 2, q + l]
            r3 = xp[n, p + 3, q + l]
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


@parallel_loop
def input_transform_2(xp, tiles_h, tiles_w, constants, V):
    """F(2, 3): ``V[i*4 + j, t, :] = (B^T d_t B)[i, j]`` for every 4x4 tile of ``xp``.

    ``xp`` ``(N, tiles_h*2 + 2, tiles_w*2 + 2, C)`` is the zero-padded input; tile
    ``t = (n*tiles_h + ti)*tiles_w + tj`` starts at row ``ti*2``, column ``tj*2``.
    """
    for task in prange(xp.shape[0] * tiles_h):
        _input_transform_2_row(xp, tiles_h, tiles_w, constants, np.int64(task), V)


@njit(cache=True)
def _output_transform_2_row(M, tiles_h, tiles_w, bias, relu, constants, task, y):
    """:func:`output_transform_2` for tile row ``task = n*tiles_h + ti``."""
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 2
    E = np.empty((8, F), dtype=M.dtype)   # A^T M, column by column
    R = np.empty((2, F), dtype=M.dtype)   # one output row of a tile cut by the edge
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 2
        for l in range(4):
            for f in range(F):
                o0, o1 = _at2(M[l, t, f], M[4 + l, t, f], M[8 + l, t, f], M[12 + l, t, f])
                E[l, f] = o0
                E[4 + l, f] = o1
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


@parallel_loop
def output_transform_2(M, tiles_h, tiles_w, bias, relu, constants, y):
    """F(2, 3): each tile's ``2x2`` outputs ``A^T M_t A`` (+ bias, then ReLU if ``relu``).

    ``M`` ``(16, T, F)``; ``y`` ``(N, OH, OW, F)``: outputs of tiles that hang over
    its edge are dropped.
    """
    for task in prange(y.shape[0] * tiles_h):
        _output_transform_2_row(M, tiles_h, tiles_w, bias, relu, constants, np.int64(task), y)


@njit(cache=True)
def _gradient_transform_2_row(gp, tiles_h, tiles_w, constants, task, dM):
    """:func:`gradient_transform_2` for tile row ``task = n*tiles_h + ti``."""
    F = gp.shape[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 2
    E = np.empty((8, F), dtype=dM.dtype)   # A g, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 2
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


@parallel_loop
def gradient_transform_2(gp, tiles_h, tiles_w, constants, dM):
    """F(2, 3): ``dM[k*4 + l, t, :] = (A g_t A^T)[k, l]`` for each ``2x2`` block of ``gp``.

    ``gp`` ``(N, tiles_h*2, tiles_w*2, F)`` is the output gradient, zero beyond the
    output's edge.
    """
    for task in prange(gp.shape[0] * tiles_h):
        _gradient_transform_2_row(gp, tiles_h, tiles_w, constants, np.int64(task), dM)


@njit(cache=True)
def _input_gradient_transform_2_row(dV, tiles_h, tiles_w, constants, task, dxp):
    """:func:`input_gradient_transform_2` for tile row ``task = n*tiles_h + ti``."""
    C = dxp.shape[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 2
    E = np.empty((16, C), dtype=dV.dtype)   # B dV, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 2
        for j in range(4):
            for c in range(C):
                e0, e1, e2, e3 = _b2(dV[j, t, c], dV[4 + j, t, c], dV[8 + j, t, c], dV[12 + j, t,
                                     c])
                E[j, c] = e0
                E[4 + j, c] = e1
                E[8 + j, c] = e2
                E[12 + j, c] = e3
        for k in range(4):
            b = k * 4
            out0 = dxp[n, p + k, q]
            out1 = dxp[n, p + k, q + 1]
            out2 = dxp[n, p + k, q + 2]
            out3 = dxp[n, p + k, q + 3]
            for c in range(C):
                o0, o1, o2, o3 = _b2(E[b, c], E[b + 1, c], E[b + 2, c], E[b + 3, c])
                out0[c] += o0
                out1[c] += o1
                out2[c] += o2
                out3[c] += o3


@parallel_loop
def input_gradient_transform_2(dV, tiles_h, tiles_w, parity, constants, dxp):
    """F(2, 3): add ``B dV_t B^T`` of the tile rows ``ti`` with ``ti % 2 == parity`` into ``dxp``.

    ``dxp`` ``(N, tiles_h*2 + 2, tiles_w*2 + 2, C)``, zeroed by the caller.  Tiles of
    neighbouring tile rows overlap by 2 input rows, so rows of one parity never touch:
    run parity 0, then 1, and no two parallel tasks write the same cell.
    """
    half_rows = (tiles_h - parity + 1) // 2
    for job in prange(dxp.shape[0] * half_rows):
        n = job // half_rows
        ti = 2 * (job - n * half_rows) + parity
        _input_gradient_transform_2_row(dV, tiles_h, tiles_w, constants,
                                        np.int64(n * tiles_h + ti), dxp)

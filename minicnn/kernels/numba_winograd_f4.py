"""Compiled transforms of Winograd's F(4x4, 3x3) (see :mod:`minicnn.kernels.numba_winograd`).

Input tiles are 6x6, output tiles 4x4; points 0, +-1, +-2 (coefficients up to 8 in
``B^T`` and ``A^T``, and 1/24 in ``G``).
Each 2-D transform is two 1-D passes over a tile: first down its columns into a small
per-task buffer ``E``, then along its rows.  The 1-D transforms are written out term by
term (``_bt4`` ... ``_b4``, inlined), because a loop over the constant matrices keeps
partial sums in memory and does not vectorize (measured 4x slower); the innermost loop
always runs over channels (``c``) or filters (``f``), with no branch.  Coefficients
arrive as values of the data's dtype (``constants = [2, 4, 5, 8]``): a Python literal
such as ``4.0`` is a float64 and would turn float32 arithmetic into float64 arithmetic.

Naming: tile ``t = (n*tiles_h + ti)*tiles_w + tj``; transformed arrays are
``(36, T, channels)``.  Loops are parallel over rows of tiles; each body is an ``@njit``
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
def _bt4(d0, d1, d2, d3, d4, d5, two, four, five):
    """``B^T d`` for F(4, 3): one column (or row) of an input tile."""
    return (
        four * d0 - five * d2 + d4,
        -four * d1 - four * d2 + d3 + d4,
        four * d1 - four * d2 - d3 + d4,
        -two * d1 - d2 + two * d3 + d4,
        two * d1 - d2 - two * d3 + d4,
        four * d1 - five * d3 + d5)


@njit(inline='always')
def _at4(v0, v1, v2, v3, v4, v5, two, four, eight):
    """``A^T v`` for F(4, 3): 6 transformed values to 4 outputs."""
    return (
        v0 + v1 + v2 + v3 + v4,
        v1 - v2 + two * v3 - two * v4,
        v1 + v2 + four * v3 + four * v4,
        v1 - v2 + eight * v3 - eight * v4 + v5)


@njit(inline='always')
def _a4(g0, g1, g2, g3, two, four, eight):
    """``A g`` for F(4, 3): 4 output gradients to 6 values."""
    return (
        g0,
        g0 + g1 + g2 + g3,
        g0 - g1 + g2 - g3,
        g0 + two * g1 + four * g2 + eight * g3,
        g0 - two * g1 + four * g2 - eight * g3,
        g3)


@njit(inline='always')
def _b4(v0, v1, v2, v3, v4, v5, two, four, five):
    """``B v`` for F(4, 3): 6 transformed gradients to input cells."""
    return (
        four * v0,
        -four * v1 + four * v2 - two * v3 + two * v4 + four * v5,
        -five * v0 - four * v1 - four * v2 - v3 - v4,
        v1 - v2 + two * v3 - two * v4 - five * v5,
        v0 + v1 + v2 + v3 + v4,
        v5)


# --------------------------------------------------------------------------------------
# Two-dimensional transforms, tile row by tile row
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _input_transform_4_row(xp, tiles_h, tiles_w, constants, task, V):
    """:func:`input_transform_4` for tile row ``task = n*tiles_h + ti``."""
    C = xp.shape[3]
    two, four, five = constants[0], constants[1], constants[2]
    n = task // tiles_h
    p = (task - n * tiles_h) * 4
    E = np.empty((36, C), dtype=V.dtype)   # B^T d, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 4
        for l in range(6):
            r0 = xp[n, p, q + l]
            r1 = xp[n, p + 1, q + l]
            r2 = xp[n, p + 2, q + l]
            r3 = xp[n, p + 3, q + l]
            r4 = xp[n, p + 4, q + l]
            r5 = xp[n, p + 5, q + l]
            for c in range(C):
                e0, e1, e2, e3, e4, e5 = _bt4(r0[c], r1[c], r2[c], r3[c], r4[c], r5[c], two, four,
                                              five)
                E[l, c] = e0
                E[6 + l, c] = e1
                E[12 + l, c] = e2
                E[18 + l, c] = e3
                E[24 + l, c] = e4
                E[30 + l, c] = e5
        for i in range(6):
            b = i * 6
            for c in range(C):
                v0, v1, v2, v3, v4, v5 = _bt4(E[b, c], E[b + 1, c], E[b + 2, c], E[b + 3, c],
                                              E[b + 4, c], E[b + 5, c], two, four, five)
                V[b, t, c] = v0
                V[b + 1, t, c] = v1
                V[b + 2, t, c] = v2
                V[b + 3, t, c] = v3
                V[b + 4, t, c] = v4
                V[b + 5, t, c] = v5


@parallel_loop
def input_transform_4(xp, tiles_h, tiles_w, constants, V):
    """F(4, 3): ``V[i*6 + j, t, :] = (B^T d_t B)[i, j]`` for every 6x6 tile of ``xp``.

    ``xp`` ``(N, tiles_h*4 + 2, tiles_w*4 + 2, C)`` is the zero-padded input; tile
    ``t = (n*tiles_h + ti)*tiles_w + tj`` starts at row ``ti*4``, column ``tj*4``.
    """
    for task in prange(xp.shape[0] * tiles_h):
        _input_transform_4_row(xp, tiles_h, tiles_w, constants, np.int64(task), V)


@njit(cache=True)
def _output_transform_4_row(M, tiles_h, tiles_w, bias, relu, constants, task, y):
    """:func:`output_transform_4` for tile row ``task = n*tiles_h + ti``."""
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    two, four, eight = constants[0], constants[1], constants[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 4
    E = np.empty((24, F), dtype=M.dtype)   # A^T M, column by column
    R = np.empty((4, F), dtype=M.dtype)   # one output row of a tile cut by the edge
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 4
        for l in range(6):
            for f in range(F):
                o0, o1, o2, o3 = _at4(M[l, t, f], M[6 + l, t, f], M[12 + l, t, f], M[18 + l, t, f],
                                      M[24 + l, t, f], M[30 + l, t, f], two, four, eight)
                E[l, f] = o0
                E[6 + l, f] = o1
                E[12 + l, f] = o2
                E[18 + l, f] = o3
        for i in range(min(4, OH - p)):
            b = i * 6
            if q + 4 <= OW:
                out0 = y[n, p + i, q]
                out1 = y[n, p + i, q + 1]
                out2 = y[n, p + i, q + 2]
                out3 = y[n, p + i, q + 3]
                if relu:
                    for f in range(F):
                        y0, y1, y2, y3 = _at4(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f],
                                              E[b + 4, f], E[b + 5, f], two, four, eight)
                        v = y0 + bias[f]
                        out0[f] = v if v > 0.0 else 0.0
                        v = y1 + bias[f]
                        out1[f] = v if v > 0.0 else 0.0
                        v = y2 + bias[f]
                        out2[f] = v if v > 0.0 else 0.0
                        v = y3 + bias[f]
                        out3[f] = v if v > 0.0 else 0.0
                else:
                    for f in range(F):
                        y0, y1, y2, y3 = _at4(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f],
                                              E[b + 4, f], E[b + 5, f], two, four, eight)
                        out0[f] = y0 + bias[f]
                        out1[f] = y1 + bias[f]
                        out2[f] = y2 + bias[f]
                        out3[f] = y3 + bias[f]
            else:
                # The tile hangs over the right edge: its row into R, then the columns
                # that exist.
                for f in range(F):
                    y0, y1, y2, y3 = _at4(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f],
                                          E[b + 4, f], E[b + 5, f], two, four, eight)
                    R[0, f] = y0
                    R[1, f] = y1
                    R[2, f] = y2
                    R[3, f] = y3
                for j in range(OW - q):
                    out = y[n, p + i, q + j]
                    for f in range(F):
                        v = R[j, f] + bias[f]
                        out[f] = v if (v > 0.0 or not relu) else 0.0


@parallel_loop
def output_transform_4(M, tiles_h, tiles_w, bias, relu, constants, y):
    """F(4, 3): each tile's ``4x4`` outputs ``A^T M_t A`` (+ bias, then ReLU if ``relu``).

    ``M`` ``(36, T, F)``; ``y`` ``(N, OH, OW, F)``: outputs of tiles that hang over
    its edge are dropped.
    """
    for task in prange(y.shape[0] * tiles_h):
        _output_transform_4_row(M, tiles_h, tiles_w, bias, relu, constants, np.int64(task), y)


@njit(cache=True)
def _gradient_transform_4_row(gp, tiles_h, tiles_w, constants, task, dM):
    """:func:`gradient_transform_4` for tile row ``task = n*tiles_h + ti``."""
    F = gp.shape[3]
    two, four, eight = constants[0], constants[1], constants[3]
    n = task // tiles_h
    p = (task - n * tiles_h) * 4
    E = np.empty((24, F), dtype=dM.dtype)   # A g, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 4
        for j in range(4):
            g0 = gp[n, p, q + j]
            g1 = gp[n, p + 1, q + j]
            g2 = gp[n, p + 2, q + j]
            g3 = gp[n, p + 3, q + j]
            for f in range(F):
                e0, e1, e2, e3, e4, e5 = _a4(g0[f], g1[f], g2[f], g3[f], two, four, eight)
                E[j, f] = e0
                E[4 + j, f] = e1
                E[8 + j, f] = e2
                E[12 + j, f] = e3
                E[16 + j, f] = e4
                E[20 + j, f] = e5
        for k in range(6):
            b = k * 6
            c0 = k * 4
            for f in range(F):
                v0, v1, v2, v3, v4, v5 = _a4(E[c0, f], E[c0 + 1, f], E[c0 + 2, f], E[c0 + 3, f],
                                             two, four, eight)
                dM[b, t, f] = v0
                dM[b + 1, t, f] = v1
                dM[b + 2, t, f] = v2
                dM[b + 3, t, f] = v3
                dM[b + 4, t, f] = v4
                dM[b + 5, t, f] = v5


@parallel_loop
def gradient_transform_4(gp, tiles_h, tiles_w, constants, dM):
    """F(4, 3): ``dM[k*6 + l, t, :] = (A g_t A^T)[k, l]`` for each ``4x4`` block of ``gp``.

    ``gp`` ``(N, tiles_h*4, tiles_w*4, F)`` is the output gradient, zero beyond the
    output's edge.
    """
    for task in prange(gp.shape[0] * tiles_h):
        _gradient_transform_4_row(gp, tiles_h, tiles_w, constants, np.int64(task), dM)


@njit(cache=True)
def _input_gradient_transform_4_row(dV, tiles_h, tiles_w, constants, task, dxp):
    """:func:`input_gradient_transform_4` for tile row ``task = n*tiles_h + ti``."""
    C = dxp.shape[3]
    two, four, five = constants[0], constants[1], constants[2]
    n = task // tiles_h
    p = (task - n * tiles_h) * 4
    E = np.empty((36, C), dtype=dV.dtype)   # B dV, column by column
    for tj in range(tiles_w):
        t = task * tiles_w + tj
        q = tj * 4
        for j in range(6):
            for c in range(C):
                e0, e1, e2, e3, e4, e5 = _b4(dV[j, t, c], dV[6 + j, t, c], dV[12 + j, t, c],
                                             dV[18 + j, t, c], dV[24 + j, t, c], dV[30 + j, t, c],
                                             two, four, five)
                E[j, c] = e0
                E[6 + j, c] = e1
                E[12 + j, c] = e2
                E[18 + j, c] = e3
                E[24 + j, c] = e4
                E[30 + j, c] = e5
        for k in range(6):
            b = k * 6
            out0 = dxp[n, p + k, q]
            out1 = dxp[n, p + k, q + 1]
            out2 = dxp[n, p + k, q + 2]
            out3 = dxp[n, p + k, q + 3]
            out4 = dxp[n, p + k, q + 4]
            out5 = dxp[n, p + k, q + 5]
            for c in range(C):
                o0, o1, o2, o3, o4, o5 = _b4(E[b, c], E[b + 1, c], E[b + 2, c], E[b + 3, c],
                                             E[b + 4, c], E[b + 5, c], two, four, five)
                out0[c] += o0
                out1[c] += o1
                out2[c] += o2
                out3[c] += o3
                out4[c] += o4
                out5[c] += o5


@parallel_loop
def input_gradient_transform_4(dV, tiles_h, tiles_w, parity, constants, dxp):
    """F(4, 3): add ``B dV_t B^T`` of the tile rows ``ti`` with ``ti % 2 == parity`` into ``dxp``.

    ``dxp`` ``(N, tiles_h*4 + 2, tiles_w*4 + 2, C)``, zeroed by the caller.  Tiles of
    neighbouring tile rows overlap by 2 input rows, so rows of one parity never touch:
    run parity 0, then 1, and no two parallel tasks write the same cell.
    """
    half_rows = (tiles_h - parity + 1) // 2
    for job in prange(dxp.shape[0] * half_rows):
        n = job // half_rows
        ti = 2 * (job - n * half_rows) + parity
        _input_gradient_transform_4_row(dV, tiles_h, tiles_w, constants,
                                        np.int64(n * tiles_h + ti), dxp)

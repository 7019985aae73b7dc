"""F(3x3, 3x3)'s tile transforms written out term by term (points ``0, 1, -1, 2``).

The same as :mod:`~minicnn.kernels.numba.winograd.wide4` (read it first) for 5x5
tiles and 3x3 outputs: VGG16's 18- and 9-pixel maps (blocks 4 and 5), which 3x3 outputs
cover exactly.  The coefficients (1 to 4) are exact; ``tests/test_numba_vgg_shapes.py``
checks these transforms against the matrix loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from minicnn.kernels.numba.winograd.patches import fill_patch, tile_is_inside
from minicnn.kernels.numba.winograd.wide4 import store_tile_row

_TWO = np.float32(2.0)
_THREE = np.float32(3.0)
_FOUR = np.float32(4.0)


@njit(inline="always")
def _bt5(d0, d1, d2, d3, d4):
    """``B^T d`` for F(3, 3): one column (or row) of a 5x5 input tile."""
    return (_TWO * d0 - d1 - _TWO * d2 + d3,
            -_TWO * d1 - d2 + d3,
            _TWO * d1 - _THREE * d2 + d3,
            -d1 + d3,
            _TWO * d1 - d2 - _TWO * d3 + d4)


@njit(inline="always")
def _at3(v0, v1, v2, v3, v4):
    """``A^T v`` for F(3, 3): 5 transformed values to 3 outputs."""
    return (v0 + v1 + v2 + v3,
            v1 - v2 + _TWO * v3,
            v1 + v2 + _FOUR * v3 + v4)


@njit(inline="always")
def _a3(g0, g1, g2):
    """``A g`` for F(3, 3): 3 output gradients to 5 values."""
    return (g0,
            g0 + g1 + g2,
            g0 - g1 + g2,
            g0 + _TWO * g1 + _FOUR * g2,
            g2)


@njit(inline="always")
def _input_tile(d, p, q, t, V, E):
    """``V[:, t] = B^T d B`` for the 5x5 cells of ``d`` ``(rows, columns, C)`` at ``(p, q)``."""
    C = d.shape[2]
    for col in range(5):
        r0, r1, r2 = d[p, q + col], d[p + 1, q + col], d[p + 2, q + col]
        r3, r4 = d[p + 3, q + col], d[p + 4, q + col]
        for c in range(C):
            e0, e1, e2, e3, e4 = _bt5(r0[c], r1[c], r2[c], r3[c], r4[c])
            E[col, c] = e0
            E[5 + col, c] = e1
            E[10 + col, c] = e2
            E[15 + col, c] = e3
            E[20 + col, c] = e4
    for i in range(5):
        b = i * 5
        for c in range(C):
            v0, v1, v2, v3, v4 = _bt5(E[b, c], E[b + 1, c], E[b + 2, c], E[b + 3, c],
                                      E[b + 4, c])
            V[b, t, c] = v0
            V[b + 1, t, c] = v1
            V[b + 2, t, c] = v2
            V[b + 3, t, c] = v3
            V[b + 4, t, c] = v4


@njit(cache=True)
def input_transform_row(x, top, left, tiles_h, tiles_w, task, first, V, E):
    """``V[i*5 + j, t - first, :] = (B^T d_t B)[i, j]`` for the tiles of tile row ``task``,
    ``x`` read as if zero-padded by ``top`` rows and ``left`` columns."""
    C = x.shape[3]
    image = task // tiles_h
    p = (task - image * tiles_h) * 3 - top
    patch = np.empty((5, 5, C), dtype=V.dtype)
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * 3 - left
        if tile_is_inside(x, p, q, 5):
            _input_tile(x[image], p, q, t, V, E)
        else:
            fill_patch(x, image, p, q, patch)
            _input_tile(patch, 0, 0, t, V, E)


@njit(cache=True)
def output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first, y, E):
    """Outputs ``A^T M_t A`` (+ bias, then ReLU if ``relu``) of tile row ``task`` into ``y``;
    outputs of tiles that hang over ``y``'s edge are dropped."""
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    image = task // tiles_h
    p = (task - image * tiles_h) * 3
    R = np.empty((3, F), dtype=M.dtype)     # one output row of a tile
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * 3
        for col in range(5):                # E[i*5 + col] = (A^T M_t)[i, col]
            for f in range(F):
                o0, o1, o2 = _at3(M[col, t, f], M[5 + col, t, f], M[10 + col, t, f],
                                  M[15 + col, t, f], M[20 + col, t, f])
                E[col, f] = o0
                E[5 + col, f] = o1
                E[10 + col, f] = o2
        for i in range(min(3, OH - p)):
            b = i * 5
            for f in range(F):
                y0, y1, y2 = _at3(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f], E[b + 4, f])
                R[0, f] = y0 + bias[f]
                R[1, f] = y1 + bias[f]
                R[2, f] = y2 + bias[f]
            store_tile_row(R, y, image, p + i, q, min(3, OW - q), relu)


@njit(cache=True)
def gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first, dM, E):
    """``dM[k*5 + l, t - first, :] = (A g_t A^T)[k, l]`` for the tiles of tile row ``task``;
    the output gradient starts at row ``top``, column ``left`` of ``gp``."""
    F = gp.shape[3]
    image = task // tiles_h
    p = top + (task - image * tiles_h) * 3
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = left + tj * 3
        for j in range(3):                  # E[k*3 + j] = (A g_t)[k, j]
            g0, g1, g2 = gp[image, p, q + j], gp[image, p + 1, q + j], gp[image, p + 2, q + j]
            for f in range(F):
                e0, e1, e2, e3, e4 = _a3(g0[f], g1[f], g2[f])
                E[j, f] = e0
                E[3 + j, f] = e1
                E[6 + j, f] = e2
                E[9 + j, f] = e3
                E[12 + j, f] = e4
        for k in range(5):
            b = k * 5
            c0 = k * 3
            for f in range(F):
                v0, v1, v2, v3, v4 = _a3(E[c0, f], E[c0 + 1, f], E[c0 + 2, f])
                dM[b, t, f] = v0
                dM[b + 1, t, f] = v1
                dM[b + 2, t, f] = v2
                dM[b + 3, t, f] = v3
                dM[b + 4, t, f] = v4

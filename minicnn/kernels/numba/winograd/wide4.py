"""F(4x4, 3x3)'s tile transforms written out term by term, like F(2x2)'s.

The generic transforms of :mod:`~minicnn.kernels.numba.winograd.wide_transforms` loop
over the matrices and keep their partial sums in memory; with 64 or 128 channels they
cost about as much as the GEMMs they feed.  Here the 1-D transforms of the points
``0, 1, -1, 1/2, -2`` are written out (``_bt6``, ``_at4``, ``_a4``, inlined): each value
is one expression of registers, and the innermost loop over channels vectorizes.  The
coefficients (1/8 to 8) are exact in binary; they are float32 constants, so float32
data stays float32.  ``tests/test_numba_vgg_shapes.py`` checks these against
:func:`~minicnn.kernels.numba.winograd.wide_transforms.matrices`.

Layout as in the generic version: ``n = 6`` cells a tile side, ``E`` a per-worker
scratch ``(36, >= channels)``, block buffers ``(36, tiles, channels)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from minicnn.kernels.numba.winograd.patches import fill_patch, tile_is_inside

_HALF = np.float32(0.5)
_QUARTER = np.float32(0.25)
_EIGHTH = np.float32(0.125)
_ONE_AND_HALF = np.float32(1.5)
_TWO = np.float32(2.0)
_TWO_AND_HALF = np.float32(2.5)
_FOUR = np.float32(4.0)
_EIGHT = np.float32(8.0)


@njit(inline="always")
def _bt6(d0, d1, d2, d3, d4, d5):
    """``B^T d`` for F(4, 3): one column (or row) of a 6x6 input tile."""
    return (d0 - _ONE_AND_HALF * d1 - _TWO * d2 + _ONE_AND_HALF * d3 + d4,
            -d1 + _HALF * d2 + _TWO_AND_HALF * d3 + d4,
            d1 - _TWO_AND_HALF * d2 + _HALF * d3 + d4,
            -_TWO * d1 - d2 + _TWO * d3 + d4,
            _HALF * d1 - d2 - _HALF * d3 + d4,
            d1 - _ONE_AND_HALF * d2 - _TWO * d3 + _ONE_AND_HALF * d4 + d5)


@njit(inline="always")
def _at4(v0, v1, v2, v3, v4, v5):
    """``A^T v`` for F(4, 3): 6 transformed values to 4 outputs."""
    return (v0 + v1 + v2 + v3 + v4,
            v1 - v2 + _HALF * v3 - _TWO * v4,
            v1 + v2 + _QUARTER * v3 + _FOUR * v4,
            v1 - v2 + _EIGHTH * v3 - _EIGHT * v4 + v5)


@njit(inline="always")
def _a4(g0, g1, g2, g3):
    """``A g`` for F(4, 3): 4 output gradients to 6 values."""
    return (g0,
            g0 + g1 + g2 + g3,
            g0 - g1 + g2 - g3,
            g0 + _HALF * g1 + _QUARTER * g2 + _EIGHTH * g3,
            g0 - _TWO * g1 + _FOUR * g2 - _EIGHT * g3,
            g3)


@njit(inline="always")
def _input_tile(d, p, q, t, V, E):
    """``V[:, t] = B^T d B`` for the 6x6 cells of ``d`` ``(rows, columns, C)`` at ``(p, q)``."""
    C = d.shape[2]
    for col in range(6):
        r0, r1, r2 = d[p, q + col], d[p + 1, q + col], d[p + 2, q + col]
        r3, r4, r5 = d[p + 3, q + col], d[p + 4, q + col], d[p + 5, q + col]
        for c in range(C):
            e0, e1, e2, e3, e4, e5 = _bt6(r0[c], r1[c], r2[c], r3[c], r4[c], r5[c])
            E[col, c] = e0
            E[6 + col, c] = e1
            E[12 + col, c] = e2
            E[18 + col, c] = e3
            E[24 + col, c] = e4
            E[30 + col, c] = e5
    for i in range(6):
        b = i * 6
        for c in range(C):
            v0, v1, v2, v3, v4, v5 = _bt6(E[b, c], E[b + 1, c], E[b + 2, c], E[b + 3, c],
                                          E[b + 4, c], E[b + 5, c])
            V[b, t, c] = v0
            V[b + 1, t, c] = v1
            V[b + 2, t, c] = v2
            V[b + 3, t, c] = v3
            V[b + 4, t, c] = v4
            V[b + 5, t, c] = v5


@njit(cache=True)
def input_transform_row(x, top, left, tiles_h, tiles_w, task, first, V, E):
    """``V[i*6 + j, t - first, :] = (B^T d_t B)[i, j]`` for the tiles of tile row ``task``,
    ``x`` read as if zero-padded by ``top`` rows and ``left`` columns."""
    C = x.shape[3]
    image = task // tiles_h
    p = (task - image * tiles_h) * 4 - top
    patch = np.empty((6, 6, C), dtype=V.dtype)
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * 4 - left
        if tile_is_inside(x, p, q, 6):
            _input_tile(x[image], p, q, t, V, E)
        else:
            fill_patch(x, image, p, q, patch)
            _input_tile(patch, 0, 0, t, V, E)


@njit(inline="always")
def store_tile_row(R, y, image, row, q, width, relu):
    """One output row of a tile, ``R[j]`` (bias added) for the ``width`` outputs inside
    ``y``, into ``y[image, row, q + j]``, through a ReLU when ``relu`` (F(3x3) uses it too)."""
    F = y.shape[3]
    for j in range(width):
        out = y[image, row, q + j]
        values = R[j]
        if relu:
            for f in range(F):
                v = values[f]
                out[f] = v if v > 0.0 else 0.0
        else:
            for f in range(F):
                out[f] = values[f]


@njit(cache=True)
def output_transform_row(M, tiles_h, tiles_w, bias, relu, task, first, y, E):
    """Outputs ``A^T M_t A`` (+ bias, then ReLU if ``relu``) of tile row ``task`` into ``y``;
    outputs of tiles that hang over ``y``'s edge are dropped."""
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    image = task // tiles_h
    p = (task - image * tiles_h) * 4
    R = np.empty((4, F), dtype=M.dtype)     # one output row of a tile cut by the edge
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * 4
        for col in range(6):                # E[i*6 + col] = (A^T M_t)[i, col]
            for f in range(F):
                o0, o1, o2, o3 = _at4(M[col, t, f], M[6 + col, t, f], M[12 + col, t, f],
                                      M[18 + col, t, f], M[24 + col, t, f], M[30 + col, t, f])
                E[col, f] = o0
                E[6 + col, f] = o1
                E[12 + col, f] = o2
                E[18 + col, f] = o3
        for i in range(min(4, OH - p)):
            b = i * 6
            for f in range(F):
                y0, y1, y2, y3 = _at4(E[b, f], E[b + 1, f], E[b + 2, f], E[b + 3, f],
                                      E[b + 4, f], E[b + 5, f])
                R[0, f] = y0 + bias[f]
                R[1, f] = y1 + bias[f]
                R[2, f] = y2 + bias[f]
                R[3, f] = y3 + bias[f]
            store_tile_row(R, y, image, p + i, q, min(4, OW - q), relu)


@njit(cache=True)
def gradient_transform_row(gp, top, left, tiles_h, tiles_w, task, first, dM, E):
    """``dM[k*6 + l, t - first, :] = (A g_t A^T)[k, l]`` for the tiles of tile row ``task``;
    the output gradient starts at row ``top``, column ``left`` of ``gp``."""
    F = gp.shape[3]
    image = task // tiles_h
    p = top + (task - image * tiles_h) * 4
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = left + tj * 4
        for j in range(4):                  # E[k*4 + j] = (A g_t)[k, j]
            g0, g1 = gp[image, p, q + j], gp[image, p + 1, q + j]
            g2, g3 = gp[image, p + 2, q + j], gp[image, p + 3, q + j]
            for f in range(F):
                e0, e1, e2, e3, e4, e5 = _a4(g0[f], g1[f], g2[f], g3[f])
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
                v0, v1, v2, v3, v4, v5 = _a4(E[c0, f], E[c0 + 1, f], E[c0 + 2, f], E[c0 + 3, f])
                dM[b, t, f] = v0
                dM[b + 1, t, f] = v1
                dM[b + 2, t, f] = v2
                dM[b + 3, t, f] = v3
                dM[b + 4, t, f] = v4
                dM[b + 5, t, f] = v5

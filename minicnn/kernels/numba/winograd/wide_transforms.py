"""Winograd F(m x m, 3 x 3) with larger tiles (m = 3 or 4): the matrices and tile transforms.

F(2x2, 3x3) (:mod:`~minicnn.kernels.numba.winograd.transforms`) does ``16 / 4 = 4``
multiply-adds per output and input-output channel pair, against 9 for the GEMM.  Larger
tiles do fewer: F(3x3, 3x3) ``25 / 9 = 2.8``, F(4x4, 3x3) ``36 / 16 = 2.25``.  They pay in
transforms (``(m+2)^2`` values per tile, each a sum over the tile) and in float32
error (larger coefficients), so they serve layers with many channels, where the GEMMs
are nearly all the work (VGG16's blocks 2 to 5), and F(2x2, 3x3) keeps the small ones
(MNIST).

The matrices come from the interpolation points (Lavin & Gray, 2016; Cook-Toom with
the point at infinity): :data:`POINTS` ``m -> points``.  ``A^T`` and ``G`` follow from
the points directly, ``B^T`` is solved from the identity the three must satisfy (the
1-D correlation ``y_i = sum_k g_k d_{i+k}``) and checked against it.  Points
``0, 1, -1, 2`` (m = 3) and ``0, 1, -1, 1/2, -2`` (m = 4) keep every coefficient of
``A^T`` and ``B^T`` a small multiple of a power of two, exact in binary, and gave the
smallest float32 error of the sets tried (with ``2, -2`` or ``1/2, -1/2`` for m = 4 the
largest error was more than twice as large); the kernel transform ``G w G^T`` is summed
in float64 and rounded once.  Even so the float32 error is several times the GEMM
path's: the transformed tiles are larger than the input tiles and the output transform
cancels much of what the GEMMs summed.

The compiled transforms below take the matrices as arrays and loop over them, skipping
zeros, with the innermost loop over channels; a tile's partial sums live in a small
per-worker scratch ``E`` ``(n*n, channels)``.  They are the readable definition (and
what ``WRITTEN_OUT = False`` in :mod:`~minicnn.kernels.numba.winograd.wide` runs):
the convolution uses the same transforms written out term by term
(:mod:`~minicnn.kernels.numba.winograd.wide3`, :mod:`~minicnn.kernels.numba.winograd.wide4`),
about twice as fast, and the tests check the two against each other.

Layout as in F(2x2): tile ``t = (image*tiles_h + ti)*tiles_w + tj`` covers outputs
``ti*m .. ti*m + m - 1`` (rows) and reads inputs ``ti*m .. ti*m + m + 1``; transformed
block buffers are ``(n*n, tiles, channels)`` with ``n = m + 2``.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba.threads import parallel_loop, use_threads
from minicnn.kernels.numba.winograd.patches import fill_patch

POINTS = {3: (0, 1, -1, 2), 4: (0, 1, -1, Fraction(1, 2), -2)}
"""Interpolation points (besides infinity) of F(m x m, 3 x 3) for each tile size m."""


@lru_cache(maxsize=None)
def matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T (m x n), G (n x 3), B^T (n x n))`` of F(m, 3), ``n = m + 2``, float64.

    ``y = A^T [(G g) (.) (B^T d)]`` is the 1-D correlation of ``d`` (n values) by ``g``
    (3 taps); in 2-D, ``Y = A^T [(G w G^T) (.) (B^T d B)] A``.
    """
    points = [Fraction(p) for p in POINTS[m]]
    n, r = m + 2, 3
    AT = [[points[j] ** i for j in range(n - 1)] + [Fraction(int(i == m - 1))] for i in range(m)]
    G = []
    for j in range(n - 1):
        scale = Fraction(1)
        for other in range(n - 1):
            if other != j:
                scale *= points[j] - points[other]
        G.append([points[j] ** k / scale for k in range(r)])
    G.append([Fraction(int(k == r - 1)) for k in range(r)])
    AT_, G_ = np.array(AT, dtype=np.float64), np.array(G, dtype=np.float64)
    # B^T column by column: sum_j AT[i, j] G[j, k] BT[j, s] = [s == i + k] for all i, k.
    equations = np.array([AT_[i] * G_[:, k] for i in range(m) for k in range(r)])
    BT = np.empty((n, n))
    for s in range(n):
        wanted = np.array([float(s == i + k) for i in range(m) for k in range(r)])
        column = np.linalg.lstsq(equations, wanted, rcond=None)[0]
        BT[:, s] = np.round(column * 64) / 64      # multiples of 1/64: exact
        if not np.allclose(equations @ BT[:, s], wanted, atol=1e-12):
            raise AssertionError(f"no exact B^T for F({m}, 3) with points {POINTS[m]}")
    return AT_, G_, BT


def kernel_transform(kernel: np.ndarray, m: int) -> np.ndarray:
    """``U[i*n + j, c, f] = (G w_{c,f} G^T)[i, j]``: ``(n*n, C, F)`` from ``(3, 3, C, F)``,
    summed in float64 and rounded once to ``kernel``'s dtype."""
    _, G, _ = matrices(m)
    _, _, C, F = kernel.shape
    U = np.empty(((m + 2) ** 2, C, F), dtype=kernel.dtype)
    use_threads(U.size * 3)
    _kernel_transform(np.ascontiguousarray(kernel), G, U)
    return U


def kernel_gradient_transform(dU_parts: np.ndarray, m: int) -> np.ndarray:
    """``dw = G^T dU G`` per ``(c, f)``: ``(3, 3, C, F)`` from the per-thread partial sums
    ``dU_parts`` ``(threads, n*n, C, F)`` of ``dU``, added up here, all in float64.

    (Adding the parts on the way saves a pass over them: with 512 channels each is
    26 MB.)
    """
    _, G, _ = matrices(m)
    _, _, C, F = dU_parts.shape
    dw = np.empty((3, 3, C, F), dtype=dU_parts.dtype)
    use_threads(dU_parts.size * 3)
    _kernel_gradient_transform(np.ascontiguousarray(dU_parts), G, dw)
    return dw


@parallel_loop
def _kernel_transform(kernel, G, U):
    """``U = G w G^T`` for each input channel ``c`` (a parallel loop over ``c``), the
    innermost loop over filters; partial sums ``G w`` in float64."""
    n = G.shape[0]
    C, F = kernel.shape[2], kernel.shape[3]
    for c in prange(C):
        rows = np.zeros((3, n, F), dtype=np.float64)       # rows[a, j] = (w G^T)[a, j]
        for a in range(3):
            for j in range(n):
                for b in range(3):
                    g = G[j, b]
                    if g != 0.0:
                        for f in range(F):
                            rows[a, j, f] += g * kernel[a, b, c, f]
        for i in range(n):
            for j in range(n):
                out = U[i * n + j, c]
                for f in range(F):
                    out[f] = (G[i, 0] * rows[0, j, f] + G[i, 1] * rows[1, j, f]
                              + G[i, 2] * rows[2, j, f])


@parallel_loop
def _kernel_gradient_transform(dU_parts, G, dw):
    """``dw = G^T (sum of dU_parts) G`` for each input channel ``c`` (parallel over
    ``c``), in float64."""
    n = G.shape[0]
    C, F = dU_parts.shape[2], dU_parts.shape[3]
    for c in prange(C):
        T = np.zeros((3, n, F), dtype=np.float64)          # T[k, j] = (G^T dU)[k, j]
        for part in range(dU_parts.shape[0]):
            dU = dU_parts[part]
            for k in range(3):
                for i in range(n):
                    g = G[i, k]
                    if g != 0.0:
                        for j in range(n):
                            for f in range(F):
                                T[k, j, f] += g * dU[i * n + j, c, f]
        total = np.empty(F, dtype=np.float64)
        for k in range(3):
            for col in range(3):
                total[:] = 0.0
                for j in range(n):
                    g = G[j, col]
                    if g != 0.0:
                        for f in range(F):
                            total[f] += T[k, j, f] * g
                out = dw[k, col, c]
                for f in range(F):
                    out[f] = total[f]


# --------------------------------------------------------------------------------------
# Compiled transforms of one row of tiles
# --------------------------------------------------------------------------------------

@njit(cache=True)
def input_transform_row(x, top, left, BT, m, tiles_h, tiles_w, task, first, V, E):
    """``V[i*n + j, t - first, :] = (B^T d_t B)[i, j]`` for the tiles of tile row ``task``.

    ``x`` ``(N, H, W, C)`` is read as if zero-padded by ``top`` rows and ``left`` columns
    (:mod:`~minicnn.kernels.numba.winograd.patches`); ``E`` ``(n*n, >= C)`` scratch.
    """
    n = BT.shape[0]
    C = x.shape[3]
    image = task // tiles_h
    p = (task - image * tiles_h) * m - top
    patch = np.empty((n, n, C), dtype=V.dtype)
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * m - left
        fill_patch(x, image, p, q, patch)      # every tile copied: these loops are for reading
        for i in range(n):                      # E = B^T d, column by column
            for col in range(n):
                e = E[i * n + col]
                for c in range(C):
                    e[c] = 0.0
                for k in range(n):
                    b = BT[i, k]
                    if b != 0.0:
                        row = patch[k, col]
                        for c in range(C):
                            e[c] += b * row[c]
        for i in range(n):                      # V = E B
            for j in range(n):
                v = V[i * n + j, t]
                for c in range(C):
                    v[c] = 0.0
                for col in range(n):
                    b = BT[j, col]
                    if b != 0.0:
                        e = E[i * n + col]
                        for c in range(C):
                            v[c] += b * e[c]


@njit(cache=True)
def output_transform_row(M, AT, tiles_h, tiles_w, bias, relu, task, first, y, E):
    """Outputs ``A^T M_t A`` (+ bias, then ReLU if ``relu``) of tile row ``task`` into ``y``.

    ``M`` ``(n*n, tiles, F)`` holds tile ``t`` at ``t - first``; outputs of tiles that
    hang over ``y``'s edge are dropped; ``E`` ``(n*n, >= F)`` scratch.
    """
    m, n = AT.shape
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    image = task // tiles_h
    p = (task - image * tiles_h) * m
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = tj * m
        rows = min(m, OH - p)
        for i in range(rows):                   # E = A^T M
            for col in range(n):
                e = E[i * n + col]
                for f in range(F):
                    e[f] = 0.0
                for k in range(n):
                    a = AT[i, k]
                    if a != 0.0:
                        source = M[k * n + col, t]
                        for f in range(F):
                            e[f] += a * source[f]
        for i in range(rows):                   # y = E A + bias
            for j in range(min(m, OW - q)):
                out = y[image, p + i, q + j]
                for f in range(F):
                    out[f] = bias[f]
                for col in range(n):
                    a = AT[j, col]
                    if a != 0.0:
                        e = E[i * n + col]
                        for f in range(F):
                            out[f] += a * e[f]
                if relu:
                    for f in range(F):
                        if out[f] < 0.0:
                            out[f] = 0.0


@njit(cache=True)
def gradient_transform_row(gp, AT, top, left, tiles_h, tiles_w, task, first, dM, E):
    """``dM[k*n + l, t - first, :] = (A g_t A^T)[k, l]`` for the tiles of tile row ``task``.

    The output gradient starts at row ``top``, column ``left`` of ``gp``
    ``(N, >= top + tiles_h*m, >= left + tiles_w*m, F)`` and is zero beyond its edge;
    ``g_t`` is the ``m x m`` gradient of tile ``t``'s outputs; ``E`` ``(n*n, >= F)``.
    """
    m, n = AT.shape
    F = gp.shape[3]
    image = task // tiles_h
    p = top + (task - image * tiles_h) * m
    for tj in range(tiles_w):
        t = task * tiles_w + tj - first
        q = left + tj * m
        for k in range(n):                      # E = A g  (n x m)
            for j in range(m):
                e = E[k * m + j]
                for f in range(F):
                    e[f] = 0.0
                for i in range(m):
                    a = AT[i, k]
                    if a != 0.0:
                        source = gp[image, p + i, q + j]
                        for f in range(F):
                            e[f] += a * source[f]
        for k in range(n):                      # dM = E A^T
            for col in range(n):
                out = dM[k * n + col, t]
                for f in range(F):
                    out[f] = 0.0
                for j in range(m):
                    a = AT[j, col]
                    if a != 0.0:
                        e = E[k * m + j]
                        for f in range(F):
                            out[f] += a * e[f]

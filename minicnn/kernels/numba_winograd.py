"""Winograd convolution F(m x m, 3 x 3) for 3x3, stride-1 layers: fewer multiplications.

A 3x3 convolution computes an ``m x m`` block of outputs from an ``a x a`` input tile
(``a = m + 2``).  Winograd's minimal filtering algorithm (Lavin & Gray, 2016) does it as

    Y = A^T [ (G w G^T) (.) (B^T d B) ] A          (.) elementwise, per tile

with small constant matrices ``B^T (a x a)``, ``G (a x 3)``, ``A^T (m x a)``.  Summed
over input channels, the elementwise products become ``a*a`` independent GEMMs:

    V[xi, t, c] = (B^T d_{t,c} B)[xi]        input tiles,   (a*a, T, C)
    U[xi, c, f] = (G w_{c,f} G^T)[xi]        kernel,        (a*a, C, F)
    M[xi]       = V[xi] @ U[xi]              a*a GEMMs,     (a*a, T, F)
    y tile      = A^T M A                    output tiles

so a tile's ``m*m*9*C*F`` multiply-adds become ``a*a*C*F``: 2.25x fewer for m = 2 and
4x fewer for m = 4 (less the tiles that hang over the border).  The backward pass is the
same algebra transposed, with the *same* ``V`` and ``U``:

    dM[xi] = (A dY A^T)[xi]                  gradient tiles (a*a, T, F)
    dU[xi] = V[xi]^T @ dM[xi]   ->  dw = G^T dU G
    dV[xi] = dM[xi] @ U[xi]^T   ->  dd = B dV B^T, tiles added back (they overlap by 2)

Precision (float32, MNIST's second layer, largest error as a fraction of the largest
output): m = 2 (coefficients 0, +-1, +-1/2) 2.4e-7, better than the GEMM path's
6.1e-7; m = 4 (coefficients up to 8 and 1/24) 4.2e-6, about 7x the GEMM path's.
:mod:`minicnn.kernels.numba_ops` chooses m (``WINOGRAD_TILE``).

The transforms are compiled loops (:mod:`~minicnn.kernels.numba_winograd_f2`,
:mod:`~minicnn.kernels.numba_winograd_f4`), parallel over rows of tiles and vectorized
over channels; each set of ``a*a`` GEMMs is one call of
:func:`minicnn.kernels.numba_blas.matmul` (spread over Numba's threads).  Inputs are
zero-padded to whole tiles first (and output gradients, and the input gradient is cropped
from whole tiles), so those loops never test a border; the output transform writes
only the outputs that exist.
"""

from __future__ import annotations

import numpy as np

from numba import njit, prange

from minicnn.kernels import numba_blas
from minicnn.kernels import numba_winograd_f2 as f2
from minicnn.kernels import numba_winograd_f4 as f4
from minicnn.kernels.numba_conv_loops import sum_partials
from minicnn.kernels.numba_parallel import parallel_loop, threads_for

# Lavin & Gray's matrices, interpolation points 0, 1, -1 (m = 2) and 0, +-1, +-2 (m = 4).
# The loops have B^T and A^T written out term by term; G (the kernel transform, done
# once per call on a tiny array) is applied here with NumPy.
TRANSFORMS = {
    2: dict(
        BT=np.array([[1, 0, -1, 0],
                     [0, 1, 1, 0],
                     [0, -1, 1, 0],
                     [0, 1, 0, -1]], dtype=np.float64),
        G=np.array([[1, 0, 0],
                    [0.5, 0.5, 0.5],
                    [0.5, -0.5, 0.5],
                    [0, 0, 1]], dtype=np.float64),
        AT=np.array([[1, 1, 1, 0],
                     [0, 1, -1, -1]], dtype=np.float64),
    ),
    4: dict(
        BT=np.array([[4, 0, -5, 0, 1, 0],
                     [0, -4, -4, 1, 1, 0],
                     [0, 4, -4, -1, 1, 0],
                     [0, -2, -1, 2, 1, 0],
                     [0, 2, -1, -2, 1, 0],
                     [0, 4, 0, -5, 0, 1]], dtype=np.float64),
        G=np.array([[1 / 4, 0, 0],
                    [-1 / 6, -1 / 6, -1 / 6],
                    [-1 / 6, 1 / 6, -1 / 6],
                    [1 / 24, 1 / 12, 1 / 6],
                    [1 / 24, -1 / 12, 1 / 6],
                    [0, 0, 1]], dtype=np.float64),
        AT=np.array([[1, 1, 1, 1, 1, 0],
                     [0, 1, -1, 2, -2, 0],
                     [0, 1, 1, 4, 4, 0],
                     [0, 1, -1, 8, -8, 1]], dtype=np.float64),
    ),
}

_LOOPS = {
    2: (f2.input_transform_2, f2.output_transform_2, f2.gradient_transform_2,
        f2.input_gradient_transform_2),
    4: (f4.input_transform_4, f4.output_transform_4, f4.gradient_transform_4,
        f4.input_gradient_transform_4),
}


# --------------------------------------------------------------------------------------
# The output gradient, masked and zero-padded to whole tiles
# --------------------------------------------------------------------------------------

@njit(cache=True)
def _pad_gradient_rows(dy, y, relu, first, last, gp, sums):
    """:func:`pad_gradient` for rows ``first <= n*HP + p < last`` of ``gp``; adds to ``sums``."""
    N, OH, OW, F = dy.shape
    HP, WP = gp.shape[1], gp.shape[2]
    row_sums = np.zeros(F, dtype=gp.dtype)
    for task in range(first, last):
        n = task // HP
        p = task - n * HP
        for q in range(WP):
            out = gp[n, p, q]
            if p >= OH or q >= OW:
                for f in range(F):
                    out[f] = 0.0
                continue
            grads = dy[n, p, q]
            if relu:
                kept = y[n, p, q]
                for f in range(F):
                    out[f] = grads[f] if kept[f] > 0.0 else 0.0
            else:
                for f in range(F):
                    out[f] = grads[f]
            for f in range(F):
                row_sums[f] += out[f]
        # One output row summed in the data's dtype, then flushed to float64.
        for f in range(F):
            sums[f] += row_sums[f]
            row_sums[f] = 0.0


@parallel_loop
def pad_gradient(dy, y, relu, threads, gp):
    """``gp[:, :OH, :OW] = dy`` (times ``y > 0`` when ``relu``), zero elsewhere; bias sums.

    ``gp`` ``(N, tiles_h*m, tiles_w*m, F)``.  Returns ``sum g`` over every output (the
    bias gradient) in float64, from one partial sum per thread.
    """
    rows = gp.shape[0] * gp.shape[1]
    chunk = (rows + threads - 1) // threads
    partial = np.zeros((threads, gp.shape[3]), dtype=np.float64)
    for worker in prange(threads):
        _pad_gradient_rows(dy, y, relu, worker * chunk, min(rows, (worker + 1) * chunk), gp,
                           partial[worker])
    return sum_partials(partial)


# --------------------------------------------------------------------------------------
# The whole convolution
# --------------------------------------------------------------------------------------


def kernel_transform(kernel: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``U[i*a + j, c, f] = (G w_{c,f} G^T)[i, j]``: ``(a*a, C, F)`` from ``(3, 3, C, F)``."""
    _, _, C, F = kernel.shape
    a = G.shape[0]
    # Two small GEMMs: rows (G w) for all (c, f) at once, then columns (. G^T).
    rows = (G @ kernel.reshape(3, 3 * C * F)).reshape(a, 3, C * F)
    return np.ascontiguousarray(np.matmul(G, rows).reshape(a * a, C, F))


def kernel_gradient_transform(dU: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``dw = G^T dU G`` per ``(c, f)``: ``(3, 3, C, F)`` from ``dU`` ``(a*a, C, F)``."""
    _, C, F = dU.shape
    a = G.shape[0]
    columns = np.matmul(G.T, dU.reshape(a, a, C * F))           # (a, 3, C*F): dU G
    return np.ascontiguousarray((G.T @ columns.reshape(a, 3 * C * F)).reshape(3, 3, C, F))


def forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, pads, relu: bool,
            m: int) -> tuple[np.ndarray, tuple]:
    """3x3 stride-1 convolution of ``x`` ``(N, H, W, C)`` by F(m x m, 3 x 3).

    Args:
        x: contiguous input; kernel ``(3, 3, C, F)`` and bias ``(F,)`` (zeros for none)
            of the same dtype.
        pads: ``((top, bottom), (left, right))``.
        relu: apply ``max(., 0)`` after the bias.
        m: output tile size, 2 or 4.

    Returns:
        ``(y, state)``: ``y`` ``(N, OH, OW, F)`` with ``OH = H + top + bottom - 2``, and
        what :func:`backward` needs.
    """
    N, H, W, C = x.shape
    F = kernel.shape[3]
    (top, bottom), (left, right) = pads
    OH = H + top + bottom - 2
    OW = W + left + right - 2
    tiles_h = -(-OH // m)
    tiles_w = -(-OW // m)
    a = m + 2
    dtype = x.dtype
    constants = np.array([2, 4, 5, 8], dtype=dtype)
    input_transform, output_transform, _, _ = _LOOPS[m]

    U = kernel_transform(kernel, TRANSFORMS[m]["G"].astype(dtype))
    # tiles_h*m + 2 >= OH + 2 = H + top + bottom: the padded input holds all of x.
    xp = np.zeros((N, tiles_h * m + 2, tiles_w * m + 2, C), dtype=dtype)
    xp[:, top:top + H, left:left + W] = x
    V = np.empty((a * a, N * tiles_h * tiles_w, C), dtype=dtype)
    input_transform.pick(V.size)(xp, tiles_h, tiles_w, constants, V)
    M = numba_blas.matmul(V, U)
    y = np.empty((N, OH, OW, F), dtype=dtype)
    output_transform.pick(M.size)(M, tiles_h, tiles_w, bias, relu, constants, y)
    return y, (V, U, x.shape, pads, m, tiles_h, tiles_w)


def backward(dy: np.ndarray, y: np.ndarray, relu: bool, state: tuple, need_input_grad: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`forward`: ``(dx or None, dkernel, bias sums in float64)``.

    ``dy`` is contiguous, of ``y``'s shape; with ``relu`` it is the gradient of the ReLU's
    output and ``y`` (the forward's output) masks it.
    """
    V, U, x_shape, pads, m, tiles_h, tiles_w = state
    a = m + 2
    _, C, F = U.shape
    N = x_shape[0]
    dtype = dy.dtype
    constants = np.array([2, 4, 5, 8], dtype=dtype)
    _, _, gradient_transform, input_gradient_transform = _LOOPS[m]

    gp = np.empty((N, tiles_h * m, tiles_w * m, F), dtype=dtype)
    bias_sums = pad_gradient.pick(gp.size)(dy, y, relu, threads_for(gp.size), gp)
    dM = np.empty((a * a, V.shape[1], F), dtype=dtype)
    gradient_transform.pick(dM.size)(gp, tiles_h, tiles_w, constants, dM)
    dU = numba_blas.matmul(V, dM, transpose_a=True)
    dkernel = kernel_gradient_transform(dU, TRANSFORMS[m]["G"].astype(dtype))

    dx = None
    if need_input_grad:
        (top, _), (left, _) = pads
        _, H, W, _ = x_shape
        dV = numba_blas.matmul(dM, U, transpose_b=True)
        dxp = np.zeros((N, tiles_h * m + 2, tiles_w * m + 2, C), dtype=dtype)
        loop = input_gradient_transform.pick(dV.size)
        loop(dV, tiles_h, tiles_w, 0, constants, dxp)
        loop(dV, tiles_h, tiles_w, 1, constants, dxp)
        dx = np.ascontiguousarray(dxp[:, top:top + H, left:left + W])
    return dx, dkernel, bias_sums

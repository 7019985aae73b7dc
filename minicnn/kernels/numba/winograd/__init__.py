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

Three modules, read in this order:

* :mod:`~minicnn.kernels.numba.winograd.transforms`: the matrices, the kernel
  transforms, and the compiled transforms of one row of tiles.  Input tiles are read
  from ``x`` itself as if it were zero-padded (only a tile that crosses an edge is
  copied first, with its zeros: :mod:`~minicnn.kernels.numba.winograd.patches`); output
  gradients are zero-padded to whole tiles (backward needs them masked anyway); the
  output transform writes only the outputs that exist.
* :mod:`~minicnn.kernels.numba.winograd.blocked`: the parallel loops, which work
  through the tiles a block at a time so that the transformed tiles never leave the
  core's cache (written out whole, they cost more to move than to multiply).
* :mod:`~minicnn.kernels.numba.winograd.conv`: the convolution around them (padding,
  thread counts, caches): :func:`forward`, :func:`backward`.

With a 2x2 max pooling after it
-------------------------------
A tile's 2x2 outputs are exactly one window of a 2x2, stride-2 pooling.  When the
layer's ReLU output is max-pooled (:mod:`~minicnn.kernels.numba.fusion`),
:func:`forward_relu_max_pool` computes only the tiles under a window and writes each
window's maximum and winner instead of its four outputs, and
:func:`backward_relu_max_pool` places the pooled gradient at the winners straight into
the gradient tiles, and stops dx's tiles where that gradient ends.  MNIST's second layer
then needs 25 tiles an image instead of 36.

Precision: in float32, the error of F(2x2, 3x3) is no larger than the GEMM path's (its
coefficients are 0, +-1 and +-1/2, exact in binary).  Larger tiles need fewer
multiplications but have larger coefficients and a larger float32 error (still within
float32 round-off of the GEMM path's results; ``tests/test_numba_vgg_shapes.py``), and
their transforms cost more per tile: MNIST's small layers keep F(2x2, 3x3), and only
layers with many channels take F(3x3, 3x3) or F(4x4, 3x3)
(:mod:`~minicnn.kernels.numba.winograd.wide`, chosen in
:mod:`~minicnn.kernels.numba.conv`).
"""

from minicnn.kernels.numba.winograd.conv import (WinogradConvCache, WinogradConvPoolCache,
                                                 backward, backward_relu_max_pool, forward,
                                                 forward_relu_max_pool)

__all__ = ["WinogradConvCache", "WinogradConvPoolCache", "forward", "backward",
           "forward_relu_max_pool", "backward_relu_max_pool"]

"""The compiled backend: convolution and pooling as Numba loops around BLAS GEMMs.

Same functions, signatures and results as :mod:`minicnn.kernels.reference` (the
contract, and the optional fused operations this package also provides, are declared
in :mod:`minicnn.kernels`); float32 and float64 both work (the output keeps ``x``'s
dtype; float64 is what the gradient checks use).

Where things are (read in this order)
-------------------------------------
* :mod:`~minicnn.kernels.numba.conv`: ``conv2d_forward``, ``conv2d_bias_relu_forward``,
  ``conv2d_backward``, and which of three paths a convolution takes, by shape:

  - :mod:`~minicnn.kernels.numba.direct`: single-channel 3x3 kernels (MNIST's first
    layer), nine scalar taps per pixel, no patches;
  - :mod:`~minicnn.kernels.numba.winograd`: 3x3 stride-1 kernels with enough channels
    (MNIST's second layer, VGG16), F(2x2, 3x3), 2.25x fewer multiplications: its
    matrices and tile transforms (``transforms``) apart from the blocked loops that
    keep the tiles in cache (``blocked``) and the convolution around them (``conv``);
    layers with many channels (VGG16's blocks 3 to 5) take larger tiles, F(3x3, 3x3)
    or F(4x4, 3x3) (``wide``, ``wide_transforms``);
  - :mod:`~minicnn.kernels.numba.im2col`: everything else, patches and one GEMM.

* :mod:`~minicnn.kernels.numba.fusion`: a Conv2D(relu) and the 2x2 max pooling after
  it as one kernel (``conv2d_relu_max_pool2d_supported/forward/backward``): Winograd's
  tiles, or for one or three input channels (the chapter's first layers) the direct
  loops of :mod:`~minicnn.kernels.numba.direct_pool`.
* :mod:`~minicnn.kernels.numba.pooling`: max and average pooling.
* :mod:`~minicnn.kernels.numba.blas`: the GEMMs, called single-threaded from inside
  Numba's threads so that one thread pool does all the work (``matmul`` for Dense
  layers), and :mod:`~minicnn.kernels.numba.skinny`, the streaming loop for a Dense
  layer's forward on a small batch.
* :mod:`~minicnn.kernels.numba.threads`: how many threads each call gets (one below a
  size, the pool above), set by the caller right before each compiled loop, and how
  long idle workers spin.
* :mod:`~minicnn.kernels.numba.optimizer`: RMSprop's update in one compiled pass
  (``rmsprop_update``).
* :mod:`~minicnn.kernels.numba.operands`: inputs made contiguous, in one float dtype.

Each path's forward returns a named cache (``DirectConvCache``, ``WinogradConvCache``,
``WideWinogradConvCache``, ``Im2colConvCache``, ``MaxPoolCache``, ``AvgPoolCache``,
``DirectConvPoolCache``, ``WinogradConvPoolCache``) that only the same package's
backward reads.

Buffers
-------
Returned arrays (``y``, ``dx``, gradients) are always fresh: the caller may hold them
as long as it likes, and two layers with the same shapes never share storage.  The
forward's cache keeps ``y`` (for the fused ReLU's mask), so the caller must not modify
``y`` in place.  Patches (or a zero-padded input) live in the cache, fresh too; where
no padding or patches are needed (Winograd, which reads its tiles from ``x`` as if it
were padded; valid padding in the direct loops; a 1x1 kernel) the cache keeps ``x``
itself, so ``x`` must not be modified in place before backward either.  Allocation
stays cheap because glibc is told to keep freed blocks in the heap
(:mod:`minicnn.kernels.allocator`, set when a backend is chosen): without that, every
array above glibc's mmap threshold came back as fresh pages, and a training step spent
much of its time in page faults.
"""

from __future__ import annotations

from minicnn.kernels.numba.blas import matmul_2d as matmul
from minicnn.kernels.numba.conv import (conv2d_backward, conv2d_bias_relu_forward,
                                        conv2d_forward)
from minicnn.kernels.numba.fusion import (conv2d_relu_max_pool2d_backward,
                                          conv2d_relu_max_pool2d_forward,
                                          conv2d_relu_max_pool2d_supported)
from minicnn.kernels.numba.optimizer import rmsprop_update
from minicnn.kernels.numba.pooling import (avg_pool2d_backward, avg_pool2d_forward,
                                           max_pool2d_backward, max_pool2d_forward)

__all__ = [
    "conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
    # Optional operations of the contract (declared in minicnn.kernels):
    "conv2d_bias_relu_forward", "conv2d_relu_max_pool2d_supported",
    "conv2d_relu_max_pool2d_forward", "conv2d_relu_max_pool2d_backward", "matmul",
    "rmsprop_update",
]

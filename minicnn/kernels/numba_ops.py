"""The compiled backend: convolution and pooling as Numba loops around BLAS GEMMs.

Same functions, signatures and results as :mod:`minicnn.kernels.reference` (the
contract is in :mod:`minicnn.kernels`); float32 and float64 both work (the output keeps
``x``'s dtype; float64 is what the gradient checks use).

How a convolution is computed (three paths, chosen by shape)
-----------------------------------------------------------
* **Winograd** F(2x2, 3x3) for 3x3, stride-1 kernels with at least
  ``WINOGRAD_MIN_CHANNELS`` input and output channels and ``WINOGRAD_MIN_OUTPUTS``
  outputs per image (MNIST's second layer, all of VGG16 but the first): 2.25x fewer
  multiplications, done block by block in cache, with a float32 error as small as the
  GEMM path's (:mod:`~minicnn.kernels.numba_winograd`).  ``MINICNN_WINOGRAD=0`` turns
  it off.
* **Direct** for single-channel 3x3 kernels (MNIST's first layer), where the GEMM
  would have an inner dimension of 9 and the patch matrix would cost more than the
  arithmetic (:mod:`~minicnn.kernels.numba_direct_loops`): nine scalar taps per pixel,
  a vector loop over filters, no patches.  The input gradient, which a first layer
  never needs (``need_input_grad=False``), is a separate simple loop.
* **im2col + GEMM** for everything else.  Patches ``cols`` ``(N*OH*OW, KH*KW*C)``
  (:func:`~minicnn.kernels.numba_conv_loops.im2col`), then
  ``y = cols @ kernel.reshape(KH*KW*C, F)``, already NHWC, and bias/ReLU in one pass;
  with several threads, all three run chunk by chunk in one parallel loop
  (:func:`~minicnn.kernels.numba_blas.conv_forward`).  Backward:
  ``dkernel = cols^T @ g``, ``dcols = g @ kernel_matrix^T`` and a parallel gather
  ``col2im`` (no ``np.add.at``), with ``g = dy`` (or ``dy * (y > 0)``).

Threads
-------
Loops run on Numba's thread pool, whose idle workers spin ~0.2 ms and then sleep
(see :mod:`~minicnn.kernels.numba_parallel`); calls on small arrays run the same loop on
one thread.  Every GEMM calls SciPy's BLAS single-threaded from inside those loops or
on the calling thread (:mod:`~minicnn.kernels.numba_blas`), so that one pool does the
work instead of two pools competing for the cores.

Fused helpers (optional; layers look them up with ``getattr(kernels, name, None)``)
--------------------------------------------------------------------------------
``conv2d_bias_relu_forward(x, kernel, bias, strides, pads) -> (y, cache)``
    ``y = relu(conv2d(x) + bias)`` in the same passes as :func:`conv2d_forward` (the
    ReLU rides on the bias pass, the Winograd output transform or the direct loop).
    ``bias`` may be None.  Its ``cache`` goes to the ordinary :func:`conv2d_backward`,
    which then takes ``dy`` as the gradient of the *ReLU output* and applies the mask
    ``y > 0`` itself (fused with the bias-gradient sum).  A Conv2D layer with
    ``activation="relu"`` uses it as::

        fused = getattr(kernels, "conv2d_bias_relu_forward", None)
        if activation is relu and fused is not None:
            y, cache = fused(x, kernel, bias, strides, pads)   # no separate ReLU
        ...
        dx, dkernel, dbias = kernels.conv2d_backward(dy, cache, need_input_grad)

``matmul(a, b) -> a @ b``
    For 2-D ``a`` ``(M, K)`` and ``b`` ``(K, N)`` (transposed views allowed): Dense
    layers multiply through it, so that their GEMMs run on the calling thread (small
    ones) or split among Numba's threads, never waking NumPy's BLAS threads
    (:func:`~minicnn.kernels.numba_blas.matmul_2d`).

``rmsprop_update(value, gradient, velocity, learning_rate, rho, one_minus_rho, epsilon)``
    Plain RMSprop's update of one variable, in place, in one compiled pass; bit for bit
    the NumPy version (:mod:`~minicnn.kernels.numba_optimizer_loops`).

``conv2d_relu_max_pool2d_supported(x_shape, kernel_shape, strides, pads, pool_size, pool_strides, pool_pads) -> bool``
``conv2d_relu_max_pool2d_forward(x, kernel, bias, pads) -> (y, cache)``
``conv2d_relu_max_pool2d_backward(dy, cache, need_input_grad) -> (dx, dkernel, dbias)``
    A Conv2D(relu) and the MaxPooling2D after it as one kernel, for the shapes the
    first function accepts (the seed convnet's first two convolutions and their
    poolings): the convolution's full-size output is never written, and Winograd
    computes only the tiles under a pooling window.  ``Sequential`` uses them for such
    pairs in training and inference (:mod:`minicnn.models.fusion`).

``max_pool2d_relu_forward(x, pool_size, strides, pads) -> (y, cache)``
    ``y = max_pool(relu(x))`` in one pass (``max relu(x) = relu(max x)``); its cache
    goes to :func:`max_pool2d_backward`, whose ``dx`` is then the gradient with respect
    to the *pre-ReLU* ``x``.  For an Activation("relu") followed by MaxPooling2D.

Buffers
-------
Returned arrays (``y``, ``dx``, gradients) are always fresh: the caller may hold them
as long as it likes, and two layers with the same shapes never share storage.  The
forward's cache keeps ``y`` (for the fused ReLU's mask), so the caller must not modify
``y`` in place.  Patches (or Winograd's zero-padded input) live in the cache, fresh
too.  Allocation stays cheap because glibc is told to keep freed blocks in the heap
(:mod:`~minicnn.kernels.allocator`, set when a backend is chosen): without that, every
array above its mmap threshold came back as fresh pages, which cost the MNIST step
~7 ms of page faults.
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.kernels import numba_blas
from minicnn.kernels import numba_conv_loops as conv_loops
from minicnn.kernels import numba_direct_loops as direct_loops
from minicnn.kernels import numba_optimizer_loops as optimizer_loops
from minicnn.kernels import numba_pool_loops as pool_loops
from minicnn.kernels import numba_winograd as winograd
from minicnn.kernels.numba_parallel import threads_for, use_threads
from minicnn.kernels.geometry import Pads, padded_output_hw

matmul = numba_blas.matmul_2d
rmsprop_update = optimizer_loops.rmsprop_update

# Single-channel 3x3 layers take the direct loop (see numba_direct_loops); tests flip
# this to send them through im2col + GEMM instead.
USE_DIRECT_CONV = True

# 3x3 stride-1 layers take Winograd's F(2x2, 3x3) (see numba_winograd); tests flip this
# to send them through im2col + GEMM, and MINICNN_WINOGRAD=0 does so at import.
USE_WINOGRAD = os.environ.get("MINICNN_WINOGRAD", "1") != "0"

# Winograd's GEMMs have C (and F) as inner dimensions: below this many channels the
# transforms cost more than the multiplications they save.
WINOGRAD_MIN_CHANNELS = 16
# ...and below this many outputs per image and channel, the tiles hanging over the
# edge waste too much (3x3 outputs take 2x2 tiles of 4x4: 44 % computed for nothing):
# MNIST's third layer (3x3 outputs) measured 1.7 ms forward + backward by Winograd
# against 1.2 ms by im2col + GEMM; at 5x5 outputs Winograd wins (2.4 against 2.6 ms).
WINOGRAD_MIN_OUTPUTS = 16


def use_direct_conv(KH: int, KW: int, C: int) -> bool:
    """Whether a ``KH x KW`` kernel over ``C`` channels takes the direct loop."""
    return USE_DIRECT_CONV and KH == 3 and KW == 3 and C == 1


def use_winograd(KH: int, KW: int, strides: tuple[int, int], pads: Pads, C: int, F: int,
                 OH: int, OW: int) -> bool:
    """Whether a convolution takes the Winograd path.

    3x3, stride 1, enough channels and outputs, pads of at most 2 (the input gradient
    is a full convolution of the output gradient padded by ``2 - pad``), and SciPy's
    BLAS callable from Numba's threads (the blocked GEMMs run there).
    """
    return (USE_WINOGRAD and KH == 3 and KW == 3 and tuple(strides) == (1, 1)
            and min(C, F) >= WINOGRAD_MIN_CHANNELS and OH * OW >= WINOGRAD_MIN_OUTPUTS
            and max(*pads[0], *pads[1]) <= 2 and numba_blas.enable())


def _float_dtype(x: np.ndarray) -> np.dtype:
    """``x``'s dtype when it is float32/float64, else float32 (Keras's default)."""
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)


# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------

def _conv_operands(x, kernel, bias):
    """``(x, kernel, bias_vector, has_bias)``: contiguous, in x's float dtype, zeros for no bias."""
    dtype = _float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    kernel = np.ascontiguousarray(kernel, dtype=dtype)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel expects {kernel.shape[2]} input channels, x has {x.shape[3]}")
    has_bias = bias is not None
    bias_vector = (np.ascontiguousarray(bias, dtype=dtype) if has_bias
                   else np.zeros(kernel.shape[3], dtype=dtype))
    return x, kernel, bias_vector, has_bias


def _direct_gradients(sums, has_bias, dtype):
    """``(dkernel (3, 3, 1, F), dbias or None)`` from the direct loops' ``(10, F)`` sums."""
    dkernel = sums[:9].astype(dtype).reshape(3, 3, 1, sums.shape[1])
    return dkernel, (sums[9].astype(dtype) if has_bias else None)


def _crop(dxp, pads, x_shape):
    """The input gradient ``(N, H, W, C)`` cut out of its padded version."""
    (top, _), (left, _) = pads
    _, H, W, _ = x_shape
    return np.ascontiguousarray(dxp[:, top:top + H, left:left + W]).reshape(x_shape)


def _conv_forward(x, kernel, bias, strides, pads, relu):
    x, kernel, bias_vector, has_bias = _conv_operands(x, kernel, bias)
    dtype = x.dtype
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)
    depth = KH * KW * C

    if use_direct_conv(KH, KW, C):
        # Single-channel 3x3: padded 2-D planes, nine scalar taps per pixel.
        xp = np.pad(x[..., 0], ((0, 0), (top, bottom), (left, right)))
        kernel_rows = kernel.reshape(9, F)
        y = np.empty((N, OH, OW, F), dtype=dtype)
        direct_loops.forward.pick(y.size * 9)(xp, kernel_rows, bias_vector, SH, SW, relu, y)
        cache = ("direct", xp, kernel_rows, (N, H, W, C), strides, pads, has_bias, relu, y)
        return y, cache

    if use_winograd(KH, KW, strides, pads, C, F, OH, OW):
        y, state = winograd.forward(x, kernel, bias_vector, pads, relu)
        return y, ("winograd", state, has_bias, relu, y)

    kernel_matrix = kernel.reshape(depth, F)
    # A 1x1, stride-1, unpadded convolution is already a GEMM on x itself.
    pointwise = KH == 1 and KW == 1 and SH == 1 and SW == 1 and top == bottom == left == right == 0
    rows = N * OH * OW
    if not pointwise and threads_for(rows * depth) > 1 and numba_blas.enable():
        # One parallel loop: patches, GEMM and bias/ReLU chunk by chunk in each thread.
        cols = np.empty((rows, depth), dtype=dtype)
        y2d = np.empty((rows, F), dtype=dtype)
        numba_blas.conv_forward(x, kernel_matrix, bias_vector, relu, KH, KW, SH, SW, top,
                                left, OH, OW, use_threads(rows * depth), cols, y2d)
    else:
        if pointwise:
            cols = x.reshape(rows, C)
        else:
            cols = np.empty((rows, depth), dtype=dtype)
            conv_loops.im2col.pick(cols.size)(x, KH, KW, SH, SW, top, left, OH, OW, cols)
        y2d = numba_blas.matmul_2d(cols, kernel_matrix)
        if has_bias or relu:
            conv_loops.bias_relu_inplace.pick(y2d.size)(y2d, bias_vector, relu)
    y = y2d.reshape(N, OH, OW, F)
    cache = ("gemm", cols, kernel_matrix, (N, H, W, C), (KH, KW, C, F),
             strides, pads, has_bias, relu, y, pointwise)
    return y, cache


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                   strides: tuple[int, int], pads: Pads) -> tuple[np.ndarray, tuple]:
    """2-D convolution (cross-correlation), NHWC input and HWIO kernel.

    ``y[n, i, j, f] = bias[f] + sum_{kh, kw, c} x_padded[n, i*SH + kh, j*SW + kw, c]
    * kernel[kh, kw, c, f]``

    Args:
        x: ``(N, H, W, C)``, float32 or float64.
        kernel: ``(KH, KW, C, F)``.
        bias: ``(F,)`` or None.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))`` zero padding.

    Returns:
        ``(y, cache)``; ``y`` ``(N, OH, OW, F)`` with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``).
    """
    return _conv_forward(x, kernel, bias, strides, pads, relu=False)


def conv2d_bias_relu_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                             strides: tuple[int, int], pads: Pads
                             ) -> tuple[np.ndarray, tuple]:
    """``relu(conv2d_forward(x, kernel, bias, strides, pads))``, fused (see module doc).

    Returns ``(y, cache)`` like :func:`conv2d_forward`; pass the cache to
    :func:`conv2d_backward` with ``dy`` the gradient of the ReLU's output.
    """
    return _conv_forward(x, kernel, bias, strides, pads, relu=True)


def conv2d_backward(dy: np.ndarray, cache: tuple, need_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of the convolution that made ``cache``, given ``dy = dL/dy``.

    With ``g = dy`` (or ``g = dy * (y > 0)`` when the forward fused a ReLU):
    ``dkernel[kh, kw, c, f] = sum_{n, i, j} x_padded[n, i*SH + kh, j*SW + kw, c] * g[n, i, j, f]``,
    ``dbias[f] = sum_{n, i, j} g[n, i, j, f]`` and
    ``dx_padded[n, i*SH + kh, j*SW + kw, c] += kernel[kh, kw, c, f] * g[n, i, j, f]``
    (cropped back to ``H x W``).

    Args:
        dy: ``(N, OH, OW, F)``.
        cache: from :func:`conv2d_forward` or :func:`conv2d_bias_relu_forward`.
        need_input_grad: False skips ``dx`` (a first layer needs none).

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` or None, ``dkernel``
        ``(KH, KW, C, F)``, ``dbias`` ``(F,)`` or None when the forward had no bias.
    """
    if cache[0] == "direct":
        _, xp, kernel_rows, x_shape, strides, pads, has_bias, relu, y = cache
        dtype = xp.dtype
        dy = np.ascontiguousarray(dy, dtype=dtype)
        SH, SW = strides
        elements = dy.size * 9
        sums = direct_loops.backward_weights.pick(elements)(xp, dy, y, relu, SH, SW,
                                                            threads_for(elements))
        dx = None
        if need_input_grad:
            dxp = np.empty(xp.shape, dtype=dtype)
            direct_loops.backward_input.pick(elements)(dy, y, relu, kernel_rows, SH, SW, dxp)
            dx = _crop(dxp, pads, x_shape)
        return (dx, *_direct_gradients(sums, has_bias, dtype))

    if cache[0] == "winograd":
        _, state, has_bias, relu, y = cache
        dy = np.ascontiguousarray(dy, dtype=y.dtype)
        dx, dkernel, bias_sums = winograd.backward(dy, y, relu, state, need_input_grad)
        return dx, dkernel, (bias_sums.astype(y.dtype) if has_bias else None)

    (_, cols, kernel_matrix, x_shape, kernel_shape, strides, pads, has_bias, relu, y,
     pointwise) = cache
    dtype = cols.dtype
    N, H, W, C = x_shape
    KH, KW, _, F = kernel_shape
    _, OH, OW, _ = dy.shape
    dy2d = np.ascontiguousarray(dy, dtype=dtype).reshape(N * OH * OW, F)
    y2d = y.reshape(N * OH * OW, F)

    if relu:
        g = np.empty_like(dy2d)
        loop = conv_loops.relu_grad_and_bias_sums
        bias_sums = loop.pick(g.size)(dy2d, y2d, threads_for(g.size), g)
    else:
        g = dy2d
        loop = conv_loops.column_sums
        bias_sums = loop.pick(g.size)(g, threads_for(g.size)) if has_bias else None
    dkernel = numba_blas.matmul_tn(cols, g).reshape(kernel_shape)
    dcols = numba_blas.matmul_2d(g, kernel_matrix.T) if need_input_grad else None
    dbias = bias_sums.astype(dtype) if has_bias else None

    dx = None
    if need_input_grad:
        if pointwise:
            dx = dcols.reshape(x_shape)  # patches are the input cells themselves
        else:
            SH, SW = strides
            (top, _), (left, _) = pads
            dx = np.empty(x_shape, dtype=dtype)
            conv_loops.col2im.pick(dcols.size)(dcols, KH, KW, SH, SW, top, left, OH, OW, dx)
    return dx, dkernel, dbias


# --------------------------------------------------------------------------------------
# A first layer fused with the max pooling after it
# --------------------------------------------------------------------------------------

def conv2d_relu_max_pool2d_supported(x_shape: tuple, kernel_shape: tuple,
                                     strides: tuple[int, int], pads: Pads,
                                     pool_size: tuple[int, int], pool_strides: tuple[int, int],
                                     pool_pads: Pads) -> bool:
    """Whether :func:`conv2d_relu_max_pool2d_forward` handles these shapes.

    A 3x3, stride-1 convolution that takes the direct loop (one input channel: the seed
    convnet's first layer) or Winograd (its second), followed by a valid 2x2, stride-2
    max pooling.
    """
    N, H, W, C = x_shape
    KH, KW, kernel_channels, F = kernel_shape
    OH, OW = padded_output_hw(H, W, (KH, KW), (1, 1), pads)
    return (tuple(strides) == (1, 1) and kernel_channels == C
            and tuple(pool_size) == (2, 2) and tuple(pool_strides) == (2, 2)
            and tuple(map(tuple, pool_pads)) == ((0, 0), (0, 0)) and min(OH, OW) >= 2
            and (use_direct_conv(KH, KW, C) or use_winograd(KH, KW, strides, pads, C, F, OH, OW)))


def conv2d_relu_max_pool2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                                   pads: Pads) -> tuple[np.ndarray, tuple]:
    """``max_pool_2x2(relu(conv2d(x) + bias))`` in one pass, for supported shapes.

    Args:
        x: ``(N, H, W, C)``; kernel ``(3, 3, C, F)``; bias ``(F,)`` or None; pads of the
            convolution (stride 1).

    Returns:
        ``(y, cache)``: ``y`` ``(N, OH // 2, OW // 2, F)`` with ``OH = H + top + bottom
        - 2``, equal to the unfused layers' output bit for bit; the cache goes to
        :func:`conv2d_relu_max_pool2d_backward`.
    """
    x, kernel, bias_vector, has_bias = _conv_operands(x, kernel, bias)
    N, H, W, C = x.shape
    F = kernel.shape[3]
    if C != 1:
        y, winner, state = winograd.forward_relu_max_pool(x, kernel, bias_vector, pads)
        return y, ("winograd", state, has_bias, y, winner)
    OH, OW = padded_output_hw(H, W, (3, 3), (1, 1), pads)
    xp = np.pad(x[..., 0], ((0, 0), *pads))
    kernel_rows = kernel.reshape(9, F)
    y = np.empty((N, OH // 2, OW // 2, F), dtype=x.dtype)
    winner = np.empty(y.shape, dtype=np.int8)
    direct_loops.forward_relu_pool.pick(y.size * 36)(xp, kernel_rows, bias_vector, y, winner)
    return y, ("direct", (xp, kernel_rows, x.shape, pads), has_bias, y, winner)


def conv2d_relu_max_pool2d_backward(dy: np.ndarray, cache: tuple, need_input_grad: bool = True
                                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d_relu_max_pool2d_forward`: ``(dx or None, dkernel, dbias)``.

    ``dy`` is the gradient of the pooled output; ``dx`` ``(N, H, W, C)``.
    """
    path, state, has_bias, y, winner = cache
    dtype = y.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    if path == "winograd":
        dx, dkernel, bias_sums = winograd.backward_relu_max_pool(dy, y, winner, state,
                                                                 need_input_grad)
        return dx, dkernel, (bias_sums.astype(dtype) if has_bias else None)
    xp, kernel_rows, x_shape, pads = state
    elements = dy.size * 36
    sums = direct_loops.backward_weights_pool.pick(elements)(xp, dy, y, winner,
                                                             threads_for(elements))
    dx = None
    if need_input_grad:
        dxp = np.empty(xp.shape, dtype=dtype)
        direct_loops.backward_input_pool.pick(elements)(dy, y, winner, kernel_rows, dxp)
        dx = _crop(dxp, pads, x_shape)
    return (dx, *_direct_gradients(sums, has_bias, dtype))


# --------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------

def _max_pool_forward(x, pool_size, strides, pads, relu):
    dtype = _float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)
    y = np.empty((N, OH, OW, C), dtype=dtype)
    # The winner's offset kh*KW + kw within its window: one byte for the usual windows.
    winner = np.empty((N, OH, OW, C), dtype=np.int8 if KH * KW <= 127 else np.int32)
    pool_loops.max_pool_forward.pick(x.size)(x, KH, KW, SH, SW, top, left, relu, y, winner)
    cache = (x.shape, winner, y, relu, pool_size, strides, pads)
    return y, cache


def max_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, tuple]:
    """Max over each ``KH x KW`` window, with the winner's position, in one pass.

    Padded cells never win (they act as ``-inf``); on ties the first maximum in
    row-major window order wins, and only it gets the gradient.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``, ``y`` ``(N, OH, OW, C)``, ``OH = (H + top + bottom - KH) // SH + 1``.
    """
    return _max_pool_forward(x, pool_size, strides, pads, relu=False)


def max_pool2d_relu_forward(x: np.ndarray, pool_size: tuple[int, int],
                            strides: tuple[int, int], pads: Pads
                            ) -> tuple[np.ndarray, tuple]:
    """``max_pool2d_forward(relu(x), ...)`` in one pass (see module doc).

    Its cache goes to :func:`max_pool2d_backward`, which then returns the gradient with
    respect to the pre-ReLU ``x``.
    """
    return _max_pool_forward(x, pool_size, strides, pads, relu=True)


def max_pool2d_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """Each ``dy[n, i, j, c]`` added to its window's winning cell; zeros elsewhere.

    Args:
        dy: ``(N, OH, OW, C)``.
        cache: from :func:`max_pool2d_forward` (or :func:`max_pool2d_relu_forward`).

    Returns:
        ``dx`` ``(N, H, W, C)``.
    """
    x_shape, winner, y, relu, pool_size, strides, pads = cache
    KH, KW = pool_size
    SH, SW = strides
    (top, _), (left, _) = pads
    dy = np.ascontiguousarray(dy, dtype=y.dtype)
    dx = np.empty(x_shape, dtype=y.dtype)
    if SH >= KH and SW >= KW:
        pool_loops.max_pool_backward_disjoint.pick(dx.size)(
            dy, y, relu, winner, KH, KW, SH, SW, top, left, dx)
    else:
        pool_loops.max_pool_backward_overlapping.pick(dx.size)(
            dy, y, relu, winner, KW, SH, SW, top, left, dx)
    return dx


# --------------------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------------------

def avg_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, tuple]:
    """Mean over the real (unpadded) cells of each ``KH x KW`` window.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``, ``y`` ``(N, OH, OW, C)``, ``OH = (H + top + bottom - KH) // SH + 1``.
    """
    dtype = _float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)
    y = np.empty((N, OH, OW, C), dtype=dtype)
    pool_loops.avg_pool_forward.pick(x.size)(x, KH, KW, SH, SW, top, left, y)
    return y, (x.shape, dtype, pool_size, strides, pads)


def avg_pool2d_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """``dy / count`` to every real cell of each window (overlaps add up).

    Args:
        dy: ``(N, OH, OW, C)``.
        cache: from :func:`avg_pool2d_forward`.

    Returns:
        ``dx`` ``(N, H, W, C)``.
    """
    x_shape, dtype, pool_size, strides, pads = cache
    KH, KW = pool_size
    SH, SW = strides
    (top, _), (left, _) = pads
    dy = np.ascontiguousarray(dy, dtype=dtype)
    dx = np.empty(x_shape, dtype=dtype)
    pool_loops.avg_pool_backward.pick(dx.size)(dy, KH, KW, SH, SW, top, left, dx)
    return dx

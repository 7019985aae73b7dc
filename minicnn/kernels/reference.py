"""Convolution and pooling written as plain loops, to be read line by line.

This backend is the definition the faster ones (``numpy_ops``, ``numba``) are
tested against.  It is slow on purpose: every multiply-add is a line of Python, so
a reader can follow exactly which input cell meets which kernel weight.

Layout is Keras's: inputs ``x`` are NHWC ``(N, H, W, C)``, kernels are HWIO
``(KH, KW, C, F)``, outputs are ``(N, OH, OW, F)``.  Pads arrive already resolved
by :mod:`minicnn.kernels.geometry` as ``((top, bottom), (left, right))``.

For one spatial axis of input length ``H``, window ``KH``, stride ``SH`` and pads
``top, bottom``, output row ``out_row`` looks at padded rows
``out_row * SH ... out_row * SH + KH - 1``, i.e. input rows
``out_row * SH - top + kh`` for ``kh = 0 .. KH - 1``, and::

    OH = (H + top + bottom - KH) // SH + 1

Arithmetic is done in Python floats (float64) and stored in an array of ``x``'s
dtype, so a float32 input gives a float32 output.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels.geometry import Pads, padded_output_hw



def _pad_zeros(x: np.ndarray, pads: Pads) -> np.ndarray:
    """``x`` with ``top``/``bottom`` zero rows and ``left``/``right`` zero columns added."""
    (top, bottom), (left, right) = pads
    N, H, W, C = x.shape
    x_padded = np.zeros((N, top + H + bottom, left + W + right, C), dtype=x.dtype)
    x_padded[:, top:top + H, left:left + W, :] = x
    return x_padded


# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------

def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                   strides: tuple[int, int], pads: Pads) -> tuple[np.ndarray, tuple]:
    """2-D convolution (a cross-correlation, as in every deep-learning library).

    ``y[n, i, j, f] = bias[f] + sum_{kh, kw, c} x_padded[n, i*SH + kh, j*SW + kw, c]
    * kernel[kh, kw, c, f]``

    Args:
        x: input ``(N, H, W, C)``, float32 or float64.
        kernel: ``(KH, KW, C, F)`` (HWIO, as Keras stores it).
        bias: ``(F,)`` or None.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))`` zero padding.

    Returns:
        ``(y, cache)`` with ``y`` of shape ``(N, OH, OW, F)``,
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``), and ``cache``
        holding what :func:`conv2d_backward` needs.
    """
    N, H, W, C = x.shape
    KH, KW, kernel_channels, F = kernel.shape
    assert kernel_channels == C, f"kernel expects {kernel_channels} channels, x has {C}"
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)

    # Padding with explicit zeros keeps the loops below free of bounds checks:
    # a padded cell contributes 0 * weight = 0, exactly as "zero padding" says.
    x_padded = _pad_zeros(x, pads)
    y = np.zeros((N, OH, OW, F), dtype=x.dtype)

    for n in range(N):
        for out_row in range(OH):
            for out_col in range(OW):
                # The patch this output position sees: KH x KW x C input values.
                row_start = out_row * SH
                col_start = out_col * SW
                patch = x_padded[n, row_start:row_start + KH, col_start:col_start + KW, :]
                for f in range(F):
                    # The dot product of the patch with filter f.
                    total = 0.0
                    for kh in range(KH):
                        for kw in range(KW):
                            for c in range(C):
                                total += float(patch[kh, kw, c]) * float(kernel[kh, kw, c, f])
                    if bias is not None:
                        total += float(bias[f])
                    y[n, out_row, out_col, f] = total

    cache = (x, kernel, bias is not None, strides, pads)
    return y, cache


def conv2d_backward(dy: np.ndarray, cache: tuple, need_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of a convolution given ``dy = d(loss)/d(y)``.

    Every output ``y[n, i, j, f]`` is a sum of products
    ``x_padded[n, i*SH + kh, j*SW + kw, c] * kernel[kh, kw, c, f]``.  The chain rule
    sends ``dy[n, i, j, f]`` back along each product to the *other* factor:

    * to the weight: ``dkernel[kh, kw, c, f] += x_padded[n, i*SH + kh, j*SW + kw, c]
      * dy[n, i, j, f]``.  Summed over ``n, i, j`` this slides ``dy`` over the padded
      input (taking every ``SH``-th row): a *correlation of x with dy*, the same
      operation as the forward pass with ``dy`` playing the kernel.
    * to the input: ``dx_padded[n, i*SH + kh, j*SW + kw, c] += kernel[kh, kw, c, f]
      * dy[n, i, j, f]``.  Each output scatters a kernel-shaped stamp, scaled by its
      ``dy``, onto the cells it read.  Read from the input cell's side, cell ``p``
      collects ``kernel[p - i*SH]`` from every output ``i`` whose window covers it,
      so the kernel index runs *backwards* as ``i`` runs forwards: a "full"
      convolution of (stride-dilated) ``dy`` with the *flipped* kernel.  The stamps
      land in the padded input; padded cells are not inputs, so their share is
      dropped by cropping ``dx_padded`` back to ``H x W``.
    * to the bias: it is added to every output of its filter, so
      ``dbias[f] = sum_{n, i, j} dy[n, i, j, f]``.

    Args:
        dy: ``(N, OH, OW, F)``.
        cache: the second result of :func:`conv2d_forward`.
        need_input_grad: False skips ``dx`` (a first layer needs no input gradient).

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` or None, ``dkernel``
        ``(KH, KW, C, F)``, ``dbias`` ``(F,)`` or None when the forward had no bias.
    """
    x, kernel, has_bias, strides, pads = cache
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    SH, SW = strides
    (top, bottom), (left, right) = pads
    _, OH, OW, _ = dy.shape

    x_padded = _pad_zeros(x, pads)
    dx_padded = np.zeros_like(x_padded)
    dkernel = np.zeros(kernel.shape, dtype=x.dtype)
    dbias = np.zeros((F,), dtype=x.dtype) if has_bias else None

    # The same loops as the forward pass: visit every product once and hand the
    # upstream gradient to both of its factors.
    for n in range(N):
        for out_row in range(OH):
            for out_col in range(OW):
                row_start = out_row * SH
                col_start = out_col * SW
                for f in range(F):
                    upstream = float(dy[n, out_row, out_col, f])
                    if dbias is not None:
                        dbias[f] += upstream
                    for kh in range(KH):
                        for kw in range(KW):
                            for c in range(C):
                                row = row_start + kh
                                col = col_start + kw
                                dkernel[kh, kw, c, f] += float(x_padded[n, row, col, c]) * upstream
                                if need_input_grad:
                                    dx_padded[n, row, col, c] += float(kernel[kh, kw, c, f]) * upstream

    # Crop: the gradient that landed on padding cells belongs to no input.
    dx = dx_padded[:, top:top + H, left:left + W, :].copy() if need_input_grad else None
    return dx, dkernel, dbias


# --------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------

def max_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, tuple]:
    """Max over each ``KH x KW`` window, channel by channel.

    Padded cells never win: they act as ``-inf`` (TensorFlow's "SAME"), so a window
    that hangs over the border takes the max of its real cells only.  On ties the
    *first* maximum in row-major window order is the winner; it alone receives the
    gradient (TensorFlow's CPU kernel does the same; ``tests/test_kernels.py``
    checks it against TensorFlow).

    Args:
        x: ``(N, H, W, C)``, finite values.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``, ``y`` of shape ``(N, OH, OW, C)`` with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``).
    """
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)

    y = np.zeros((N, OH, OW, C), dtype=x.dtype)
    # winners[n, i, j, c] = (row, col) in x of the cell that produced y[n, i, j, c].
    winners = np.zeros((N, OH, OW, C, 2), dtype=np.int64)

    for n in range(N):
        for out_row in range(OH):
            for out_col in range(OW):
                for c in range(C):
                    best_value = None
                    best_cell = (0, 0)
                    for kh in range(KH):
                        for kw in range(KW):
                            row = out_row * SH - top + kh   # in unpadded coordinates
                            col = out_col * SW - left + kw
                            if not (0 <= row < H and 0 <= col < W):
                                continue  # a padded cell: -inf, never the max
                            value = x[n, row, col, c]
                            # Strictly greater: a later equal value does not replace
                            # the first maximum.
                            if best_value is None or value > best_value:
                                best_value = value
                                best_cell = (row, col)
                    y[n, out_row, out_col, c] = best_value
                    winners[n, out_row, out_col, c] = best_cell

    cache = (x.shape, x.dtype, winners)
    return y, cache


def max_pool2d_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of max pooling: each ``dy`` goes to its window's winning cell.

    ``y = max(window)`` is locally ``y = x[winner]``, so ``dy/dx`` is 1 at the winner
    and 0 elsewhere.  Overlapping windows (stride < pool) can share a winner; its
    gradients add up.

    Args:
        dy: ``(N, OH, OW, C)``.
        cache: the second result of :func:`max_pool2d_forward`.

    Returns:
        ``dx`` of shape ``(N, H, W, C)``.
    """
    x_shape, dtype, winners = cache
    N, OH, OW, C = dy.shape
    dx = np.zeros(x_shape, dtype=dtype)
    for n in range(N):
        for out_row in range(OH):
            for out_col in range(OW):
                for c in range(C):
                    row, col = winners[n, out_row, out_col, c]
                    dx[n, row, col, c] += dy[n, out_row, out_col, c]
    return dx


# --------------------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------------------

def avg_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, tuple]:
    """Mean over the real (unpadded) cells of each ``KH x KW`` window.

    A window hanging over the border divides by the number of real cells it covers,
    not by ``KH * KW`` (TensorFlow's "SAME": padding is excluded, not zero).

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``, ``y`` of shape ``(N, OH, OW, C)`` with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``).
    """
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)

    y = np.zeros((N, OH, OW, C), dtype=x.dtype)
    for n in range(N):
        for out_row in range(OH):
            for out_col in range(OW):
                for c in range(C):
                    total = 0.0
                    count = 0
                    for kh in range(KH):
                        for kw in range(KW):
                            row = out_row * SH - top + kh
                            col = out_col * SW - left + kw
                            if 0 <= row < H and 0 <= col < W:
                                total += float(x[n, row, col, c])
                                count += 1
                    y[n, out_row, out_col, c] = total / count

    cache = (x.shape, x.dtype, pool_size, strides, pads)
    return y, cache


def avg_pool2d_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of average pooling: ``dy / count`` to each real cell of the window.

    ``y = (1 / count) * sum(real cells)``, so every real cell of the window gets
    ``dy / count``; overlapping windows add their shares.

    Args:
        dy: ``(N, OH, OW, C)``.
        cache: the second result of :func:`avg_pool2d_forward`.

    Returns:
        ``dx`` of shape ``(N, H, W, C)``.
    """
    x_shape, dtype, pool_size, strides, pads = cache
    N, H, W, C = x_shape
    KH, KW = pool_size
    SH, SW = strides
    (top, _), (left, _) = pads
    _, OH, OW, _ = dy.shape

    dx = np.zeros(x_shape, dtype=dtype)
    for n in range(N):
        for out_row in range(OH):
            for out_col in range(OW):
                # First the window's real cells (the same ones the forward averaged).
                cells = []
                for kh in range(KH):
                    for kw in range(KW):
                        row = out_row * SH - top + kh
                        col = out_col * SW - left + kw
                        if 0 <= row < H and 0 <= col < W:
                            cells.append((row, col))
                for c in range(C):
                    share = float(dy[n, out_row, out_col, c]) / len(cells)
                    for row, col in cells:
                        dx[n, row, col, c] += share
    return dx

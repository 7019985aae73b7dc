"""Convolution and pooling in vectorized NumPy: im2col + one GEMM, strided scatters.

The same functions and semantics as :mod:`minicnn.kernels.reference` (see the
contract in :mod:`minicnn.kernels`), written for speed:

* Convolution copies every patch into one row of a matrix ``cols`` of shape
  ``(N*OH*OW, KH*KW*C)`` -- one copy of a ``sliding_window_view``, not a Python
  loop over outputs -- and multiplies it by the kernel reshaped to
  ``(KH*KW*C, F)``: a single BLAS GEMM.  The row order ``(kh, kw, c)`` is exactly
  the memory order of an HWIO kernel, so the reshape is free, and the GEMM result
  ``(N*OH*OW, F)`` already *is* the NHWC output: no transposes anywhere.
* The backward pass is two more GEMMs (``cols.T @ dy`` and ``dy @ kernel.T``) and a
  col2im that adds the patch gradients back with ``KH*KW`` strided ``+=`` into a
  padded buffer.  Never ``np.add.at``: it is an unbuffered per-element loop, orders
  of magnitude slower.  Within one strided ``+=`` no two elements alias (distinct
  outputs of one kernel offset read distinct input cells), so plain ``+=`` is exact.
* Pooling works on the ``KH*KW`` strided views "the cell at offset (kh, kw) of every
  window", so each pass is a whole-array operation.

Arrays keep ``x``'s dtype (float32 stays float32) and results are C-contiguous.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minicnn.kernels.geometry import Pads, padded_output_hw



def _pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """``x`` surrounded by ``pads`` rows/columns of ``value`` (``x`` itself when no pads)."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    N, H, W, C = x.shape
    x_padded = np.full((N, top + H + bottom, left + W + right, C), value, dtype=x.dtype)
    x_padded[:, top:top + H, left:left + W, :] = x
    return x_padded


def _window_offset_view(x_padded: np.ndarray, kh: int, kw: int, OH: int, OW: int,
                        SH: int, SW: int) -> np.ndarray:
    """``(N, OH, OW, C)`` view: the cell at offset ``(kh, kw)`` of every window.

    Window ``(i, j)`` starts at padded cell ``(i*SH, j*SW)``, so its ``(kh, kw)`` cell
    is ``(i*SH + kh, j*SW + kw)``: a strided slice, no copy.
    """
    return x_padded[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :]


def _crop(x_padded: np.ndarray, pads: Pads, H: int, W: int) -> np.ndarray:
    """The ``H x W`` interior of a padded array, contiguous."""
    (top, _), (left, _) = pads
    if x_padded.shape[1] == H and x_padded.shape[2] == W:
        return x_padded
    return np.ascontiguousarray(x_padded[:, top:top + H, left:left + W, :])


# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------

def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                   strides: tuple[int, int], pads: Pads) -> tuple[np.ndarray, tuple]:
    """2-D convolution (cross-correlation) as im2col + one GEMM.

    ``y[n, i, j, f] = bias[f] + sum_{kh, kw, c} x_padded[n, i*SH + kh, j*SW + kw, c]
    * kernel[kh, kw, c, f]``

    Args:
        x: ``(N, H, W, C)``, float32 or float64.
        kernel: ``(KH, KW, C, F)`` (HWIO).
        bias: ``(F,)`` or None.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))`` zero padding.

    Returns:
        ``(y, cache)``: ``y`` ``(N, OH, OW, F)`` in ``x``'s dtype with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``); the cache keeps
        the patch matrix ``cols`` so the backward pass does not rebuild it.
    """
    dtype = x.dtype
    N, H, W, C = x.shape
    KH, KW, kernel_channels, F = kernel.shape
    assert kernel_channels == C, f"kernel expects {kernel_channels} channels, x has {C}"
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)

    kernel_2d = np.ascontiguousarray(kernel, dtype=dtype).reshape(KH * KW * C, F)

    if KH == KW == 1 and SH == SW == 1 and top == bottom == left == right == 0:
        # A 1x1 convolution is already a GEMM on the pixels: no patches to copy.
        cols = np.ascontiguousarray(x).reshape(N * H * W, C)
    else:
        x_padded = _pad(x, pads)
        # windows[n, i, j, c, kh, kw] = x_padded[n, i*SH + kh, j*SW + kw, c], a view
        # (no copy).  Reordered to (n, i, j, kh, kw, c) and copied once, the last three
        # axes flatten in the order of kernel.reshape(KH*KW*C, F).  The copy moves
        # runs of KW*C contiguous values, faster than KH*KW slice copies of C values.
        windows = sliding_window_view(x_padded, (KH, KW), axis=(1, 2))[:, ::SH, ::SW]
        cols = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(
            N * OH * OW, KH * KW * C)

    y_2d = cols @ kernel_2d                      # (N*OH*OW, F): the one GEMM
    if bias is not None:
        y_2d += bias.astype(dtype, copy=False)
    y = y_2d.reshape(N, OH, OW, F)

    cache = (cols, kernel_2d, bias is not None, x.shape, (KH, KW), strides, pads)
    return y, cache


def conv2d_backward(dy: np.ndarray, cache: tuple, need_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of the convolution: two GEMMs and a strided col2im.

    With ``y_2d = cols @ kernel_2d`` (see :func:`conv2d_forward`):

    * ``dkernel_2d = cols.T @ dy_2d`` -- the correlation of the input with ``dy``;
    * ``dcols = dy_2d @ kernel_2d.T`` -- the gradient of every patch copy;
    * ``dx``: each patch was a copy of input cells, so the patch gradients are
      added back to the cells they were copied from (col2im), into a padded buffer
      that is then cropped (padding cells are not inputs).  This is the "full"
      convolution of ``dy`` with the flipped kernel, done as a scatter.
    * ``dbias = sum of dy`` over ``N, OH, OW``.

    Args:
        dy: ``(N, OH, OW, F)``.
        cache: the second result of :func:`conv2d_forward`.
        need_input_grad: False skips the ``dx`` GEMM and col2im (returns None).

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` or None, ``dkernel``
        ``(KH, KW, C, F)``, ``dbias`` ``(F,)`` or None when the forward had no bias.
    """
    cols, kernel_2d, has_bias, x_shape, (KH, KW), strides, pads = cache
    dtype = cols.dtype
    N, H, W, C = x_shape
    SH, SW = strides
    (top, bottom), (left, right) = pads
    _, OH, OW, F = dy.shape
    dy_2d = np.ascontiguousarray(dy, dtype=dtype).reshape(N * OH * OW, F)

    dkernel = (cols.T @ dy_2d).reshape(KH, KW, C, F)
    dbias = dy_2d.sum(axis=0) if has_bias else None

    if not need_input_grad:
        return None, dkernel, dbias

    dcols = dy_2d @ kernel_2d.T                  # (N*OH*OW, KH*KW*C)
    if KH == KW == 1 and SH == SW == 1 and top == bottom == left == right == 0:
        return dcols.reshape(N, H, W, C), dkernel, dbias

    dcols_6d = dcols.reshape(N, OH, OW, KH, KW, C)
    dx_padded = np.zeros((N, top + H + bottom, left + W + right, C), dtype=dtype)
    for kh in range(KH):
        for kw in range(KW):
            # One strided += per kernel offset (col2im).  Overlapping windows
            # (stride < kernel) are summed across offsets, never within one.
            _window_offset_view(dx_padded, kh, kw, OH, OW, SH, SW)[...] += dcols_6d[:, :, :, kh, kw, :]
    return _crop(dx_padded, pads, H, W), dkernel, dbias


# --------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------

def max_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, tuple]:
    """Max over each ``KH x KW`` window, remembering which cell won as a boolean mask.

    Padded cells act as ``-inf`` and never win (TensorFlow's "SAME").  The winner is
    the *first* maximum in row-major window order (offset ``kh * KW + kw``); on ties
    it alone gets the gradient, as in TensorFlow's CPU kernel.  Inputs are assumed
    finite (a NaN window routes no gradient).

    Non-overlapping windows without padding (``pool == stride``, Keras's default)
    see ``x`` as ``(N, OH, KH, OW, KW, C)`` by a reshape, and the winner mask is laid
    out like ``x`` so the backward pass is a single broadcast multiply.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``: ``y`` ``(N, OH, OW, C)`` with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``); the cache holds
        which cell of every window won.
    """
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)

    non_overlapping = (KH, KW) == (SH, SW) and top == bottom == left == right == 0
    if non_overlapping:
        # Rows/cols past OH*KH (a remainder "valid" drops) are cut off; the rest is a
        # free reshape: windows[n, i, kh, j, kw, c] = x[n, i*KH + kh, j*KW + kw, c].
        windows = x[:, :OH * KH, :OW * KW, :].reshape(N, OH, KH, OW, KW, C)
        winner_mask = np.empty((N, OH, KH, OW, KW, C), dtype=bool)

        def offset_view(kh: int, kw: int) -> np.ndarray:
            return windows[:, :, kh, :, kw, :]

        def mask_view(kh: int, kw: int) -> np.ndarray:
            return winner_mask[:, :, kh, :, kw, :]
    else:
        x_padded = _pad(x, pads, value=-np.inf)
        winner_mask = np.empty((KH, KW, N, OH, OW, C), dtype=bool)

        def offset_view(kh: int, kw: int) -> np.ndarray:
            return _window_offset_view(x_padded, kh, kw, OH, OW, SH, SW)

        def mask_view(kh: int, kw: int) -> np.ndarray:
            return winner_mask[kh, kw]

    # The max: an elementwise maximum of the KH*KW offset views (much faster than a
    # reduction over the two window axes of a 6-D view).
    y = offset_view(0, 0).copy()
    for kh in range(KH):
        for kw in range(KW):
            if kh or kw:
                np.maximum(y, offset_view(kh, kw), out=y)

    # The winner: the first offset, in row-major order, whose cell equals the max.
    # "already_won" removes later ties.  Only boolean passes: masked assignments
    # (np.copyto(..., where=...)) are several times slower.
    already_won = np.zeros((N, OH, OW, C), dtype=bool)
    for kh in range(KH):
        for kw in range(KW):
            is_winner = mask_view(kh, kw)
            np.equal(offset_view(kh, kw), y, out=is_winner)
            np.greater(is_winner, already_won, out=is_winner)   # bool a > b  ==  a and not b
            np.logical_or(already_won, is_winner, out=already_won)

    cache = (x.shape, x.dtype, pool_size, strides, pads, winner_mask, non_overlapping)
    return y, cache


def max_pool2d_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """Route each ``dy`` to its window's winning cell.

    Non-overlapping windows: ``dx = winner_mask * dy`` broadcast over the window
    axes, one pass.  Otherwise, for each window offset ``(kh, kw)`` the outputs whose
    winner sits at that offset add their ``dy`` to those cells: ``KH * KW`` strided
    ``+=`` into a padded buffer, then cropped.

    Args:
        dy: ``(N, OH, OW, C)``.
        cache: the second result of :func:`max_pool2d_forward`.

    Returns:
        ``dx`` of shape ``(N, H, W, C)``.
    """
    x_shape, dtype, (KH, KW), (SH, SW), pads, winner_mask, non_overlapping = cache
    N, H, W, C = x_shape
    _, OH, OW, _ = dy.shape
    dy = np.asarray(dy, dtype=dtype)

    if non_overlapping:
        # Every input cell is in at most one window; bool * float keeps the float dtype.
        dx_windows = np.multiply(winner_mask, dy[:, :, None, :, None, :], dtype=dtype)
        dx_covered = dx_windows.reshape(N, OH * KH, OW * KW, C)
        if OH * KH == H and OW * KW == W:
            return dx_covered
        dx = np.zeros(x_shape, dtype=dtype)
        dx[:, :OH * KH, :OW * KW, :] = dx_covered
        return dx

    (top, bottom), (left, right) = pads
    dx_padded = np.zeros((N, top + H + bottom, left + W + right, C), dtype=dtype)
    routed = np.empty_like(dy)
    for kh in range(KH):
        for kw in range(KW):
            np.multiply(winner_mask[kh, kw], dy, out=routed)
            _window_offset_view(dx_padded, kh, kw, OH, OW, SH, SW)[...] += routed
    return _crop(dx_padded, pads, H, W)


# --------------------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------------------

def _real_cell_counts(length: int, window: int, stride: int, before: int, out: int) -> np.ndarray:
    """For each output position of one axis, how many real (unpadded) cells its window covers.

    Window ``i`` covers unpadded positions ``[i*S - before, i*S - before + K)``;
    clip that to ``[0, L)``.
    """
    starts = np.arange(out) * stride - before
    return np.minimum(starts + window, length) - np.maximum(starts, 0)


def avg_pool2d_forward(x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int],
                       pads: Pads) -> tuple[np.ndarray, tuple]:
    """Mean over the real (unpadded) cells of each ``KH x KW`` window.

    Sum of the window (padding contributes zeros) divided by the count of real
    cells, ``count[i, j] = rows_real(i) * cols_real(j)`` (TensorFlow's "SAME").

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(KH, KW)``.
        strides: ``(SH, SW)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        ``(y, cache)``: ``y`` ``(N, OH, OW, C)`` with
        ``OH = (H + top + bottom - KH) // SH + 1`` (same for ``OW``).
    """
    dtype = x.dtype
    N, H, W, C = x.shape
    KH, KW = pool_size
    SH, SW = strides
    (top, bottom), (left, right) = pads
    OH, OW = padded_output_hw(H, W, (KH, KW), (SH, SW), pads)

    counts = np.outer(_real_cell_counts(H, KH, SH, top, OH),
                      _real_cell_counts(W, KW, SW, left, OW))
    inverse_counts = (1.0 / counts).astype(dtype)[None, :, :, None]   # (1, OH, OW, 1)

    x_padded = _pad(x, pads)
    y = _window_offset_view(x_padded, 0, 0, OH, OW, SH, SW).copy()
    for kh in range(KH):
        for kw in range(KW):
            if kh or kw:
                y += _window_offset_view(x_padded, kh, kw, OH, OW, SH, SW)
    y *= inverse_counts

    cache = (x.shape, dtype, pool_size, strides, pads, inverse_counts)
    return y, cache


def avg_pool2d_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """Spread ``dy / count`` over the cells of each window, then drop the padding.

    Args:
        dy: ``(N, OH, OW, C)``.
        cache: the second result of :func:`avg_pool2d_forward`.

    Returns:
        ``dx`` of shape ``(N, H, W, C)``.
    """
    x_shape, dtype, (KH, KW), (SH, SW), pads, inverse_counts = cache
    N, H, W, C = x_shape
    _, OH, OW, _ = dy.shape
    (top, bottom), (left, right) = pads

    share = np.asarray(dy, dtype=dtype) * inverse_counts     # what each cell of a window gets
    dx_padded = np.zeros((N, top + H + bottom, left + W + right, C), dtype=dtype)
    for kh in range(KH):
        for kw in range(KW):
            # The shares that land on padding are cropped away below; the counts
            # already excluded those cells, so the real cells get exactly dy / count.
            _window_offset_view(dx_padded, kh, kw, OH, OW, SH, SW)[...] += share
    return _crop(dx_padded, pads, H, W)

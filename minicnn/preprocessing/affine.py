"""One affine warp per image: Keras 2's matrix, and a bilinear resampler written in NumPy.

Keras 2 (``tf_keras.preprocessing.image.apply_affine_transform``) composes rotation,
shift, shear and zoom into one 3x3 matrix, moves its origin to the image centre, and
hands it to ``scipy.ndimage.affine_transform(order=1)`` once per channel. This module
builds the same matrix with the same floating-point operations and resamples it here,
without SciPy, following SciPy's own rules step by step so the two agree to the last bit:

* every output pixel ``(r, c)`` reads the input at ``M @ (r, c) + offset``
  (an *inverse* map: the matrix says where each output pixel comes from);
* the coordinate is first folded into the image by the fill mode (``map_coordinate``
  below; ``nearest`` leaves it and clamps the neighbours instead), then interpolated from its two neighbours per axis with weights
  ``w0 = 1 - frac``, ``w1 = 1 - w0``; a neighbour that falls outside the image is
  folded again (by the mode for ``nearest``/``reflect``, by mirroring otherwise).

The fill modes, on a row ``a b c d`` (what SciPy >= 1.6 does, which is what Keras 2
actually returns; the Keras 2 docstring's pictures for ``wrap`` are not what happens):

* ``nearest``   ``a a a a | a b c d | d d d d``
* ``reflect``   ``d c b a | a b c d | d c b a``  (half-sample symmetric, period 2n)
* ``wrap``      ``... b c | a b c d | b c ...``  (period n - 1: the first and last
  samples coincide -- SciPy's ``"wrap"``, not its ``"grid-wrap"``)
* ``constant``  ``k k k k | a b c d | k k k k``  with ``k = cval``; a coordinate outside
  ``[0, n - 1]`` on either axis gives ``cval`` outright (no blending with ``cval``).
"""

from __future__ import annotations

import numpy as np

FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def transform_matrix_offset_center(matrix: np.ndarray, x: int, y: int) -> np.ndarray:
    """``matrix`` (3x3) re-expressed about the image centre, exactly as Keras 2 does it.

    Args:
        matrix: (3, 3) homogeneous transform about the origin.
        x, y: the image size along the matrix's first and second axes (Keras passes
            ``(height, width)``, even though the matrix is in (x, y) order; for square
            images the distinction vanishes).
    Returns:
        ``offset @ matrix @ reset`` with offsets ``(x / 2 - 0.5, y / 2 - 0.5)``.
    """
    o_x = float(x) / 2 - 0.5
    o_y = float(y) / 2 - 0.5
    offset_matrix = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset_matrix = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return np.dot(np.dot(offset_matrix, matrix), reset_matrix)


def compose_affine_matrix(theta: float = 0, tx: float = 0, ty: float = 0, shear: float = 0,
                          zx: float = 1, zy: float = 1) -> np.ndarray | None:
    """Rotation @ shift @ shear @ zoom as one 3x3 matrix (Keras 2's order), or None.

    Angles are in degrees. None means "no transform at all" (every parameter neutral):
    Keras then returns the image untouched, without resampling it.
    """
    matrix = None
    if theta != 0:
        theta = np.deg2rad(theta)
        matrix = np.array([[np.cos(theta), -np.sin(theta), 0],
                           [np.sin(theta), np.cos(theta), 0],
                           [0, 0, 1]])
    if tx != 0 or ty != 0:
        shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        matrix = shift if matrix is None else np.dot(matrix, shift)
    if shear != 0:
        shear = np.deg2rad(shear)
        shear_matrix = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
        matrix = shear_matrix if matrix is None else np.dot(matrix, shear_matrix)
    if zx != 1 or zy != 1:
        zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        matrix = zoom if matrix is None else np.dot(matrix, zoom)
    return matrix


def _fold_coordinate(coordinate: np.ndarray, length: int, mode: str):
    """SciPy's ``map_coordinate``: fold float coordinates into the image along one axis.

    Returns ``(folded, inside)``; ``inside`` is False where the output must be ``cval``
    (constant mode outside ``[0, length - 1]``, and NaN coordinates in any mode).
    """
    folded = coordinate.copy()
    inside = ~np.isnan(coordinate)
    below = coordinate < 0
    above = coordinate > length - 1
    if mode == "constant":
        return folded, inside & ~below & ~above
    if mode == "nearest":
        # SciPy leaves the coordinate as it is and clamps the two neighbours instead.
        return folded, inside
    if length <= 1:
        folded[below | above] = 0.0
        return folded, inside
    if mode == "reflect":
        period = 2 * length
        value = folded[below]
        value = np.where(value < -period, period * np.trunc(-value / period) + value, value)
        # SciPy's -1e-15 guard keeps a coordinate just below 0 from folding to exactly -1.
        value = np.where(value < -length, value + period,
                         np.where(value > -1e-15, 1e-15, -value) - 1)
        folded[below] = value
        value = folded[above]
        value = value - period * np.trunc(value / period)
        folded[above] = np.where(value >= length, period - value - 1, value)
    elif mode == "wrap":
        period = length - 1
        value = folded[below]
        folded[below] = value + period * (np.trunc(-value / period) + 1)
        value = folded[above]
        folded[above] = value - period * np.trunc(value / period)
    else:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, received {mode!r}")
    # Coordinates folded to -1 or below (only reachable through round-off) give cval in SciPy.
    return folded, inside & (folded > -1.0)


def _fold_index(index: np.ndarray, length: int, mode: str) -> np.ndarray:
    """Where SciPy reads a neighbour that lies outside the image (integer indices)."""
    if length <= 1:
        return np.zeros_like(index)
    index = index.copy()
    if mode == "nearest":
        return np.clip(index, 0, length - 1, out=index)
    below, above = index < 0, index > length - 1
    if mode == "reflect":  # half-sample symmetric, period 2n
        period = 2 * length
        value = index[below]
        value = np.where(value < -period, period * (-value // period) + value, value)
        index[below] = np.where(value < -length, value + period, -value - 1)
        value = index[above]
        value = value - period * (value // period)
        index[above] = np.where(value >= length, period - value - 1, value)
    else:  # constant and wrap read neighbours by whole-sample mirroring, period 2n - 2
        period = 2 * length - 2
        value = index[below]
        value = period * (-value // period) + value
        index[below] = np.where(value <= 1 - length, value + period, -value)
        value = index[above]
        value = value - period * (value // period)
        index[above] = np.where(value >= length, period - value, value)
    return index


def warp_affine(image: np.ndarray, matrix: np.ndarray, offset: np.ndarray,
                fill_mode: str = "nearest", cval: float = 0.0, order: int = 1,
                implementation: str = "numba") -> np.ndarray:
    """Resample ``image`` once: ``out[r, c] = image(matrix @ (r, c) + offset)``.

    ``implementation="numba"`` (default) runs the compiled per-pixel loop of
    :mod:`.warp_numba`; ``"numpy"`` runs :func:`warp_affine_numpy`, the same
    arithmetic over whole grids (the readable reference). Results are identical.

    Args:
        image: (H, W) or (H, W, C); every channel uses the same coordinates.
        matrix: (2, 2) map from output (row, col) to input (row, col).
        offset: (2,) added after the matrix.
        fill_mode: one of ``FILL_MODES`` (see the module docstring).
        cval: the fill value for ``"constant"``.
        order: 1 (bilinear, Keras's default) or 0 (nearest neighbour).
    Returns:
        An array of ``image``'s shape and dtype (integer types rounded and clipped as
        SciPy does); the arithmetic is float64 throughout.
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, received {fill_mode!r}")
    if order not in (0, 1):
        raise ValueError(f"interpolation order must be 0 or 1, received {order!r}")
    if implementation == "numpy":
        return warp_affine_numpy(image, matrix, offset, fill_mode, cval, order)
    if implementation != "numba":
        raise ValueError(f"implementation must be 'numba' or 'numpy', "
                         f"received {implementation!r}")
    from minicnn.preprocessing import warp_numba

    image = np.asarray(image)
    values = np.ascontiguousarray(image, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    out = np.empty_like(values)
    warp_numba.warp_loop(values, np.ascontiguousarray(matrix, dtype=np.float64),
                         np.ascontiguousarray(offset, dtype=np.float64),
                         warp_numba.MODE_CODES[fill_mode], float(cval), int(order), out)
    return _cast_like(out if image.ndim == 3 else out[:, :, 0], image.dtype)


def warp_affine_numpy(image: np.ndarray, matrix: np.ndarray, offset: np.ndarray,
                      fill_mode: str = "nearest", cval: float = 0.0,
                      order: int = 1) -> np.ndarray:
    """:func:`warp_affine` over whole coordinate grids in NumPy: the rules, step by step."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    matrix = np.asarray(matrix, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    # Same operation order as SciPy: (offset + r * m0) + c * m1, in float64.
    source_rows = offset[0] + rows * matrix[0, 0] + cols * matrix[0, 1]
    source_cols = offset[1] + rows * matrix[1, 0] + cols * matrix[1, 1]
    source_rows, inside_rows = _fold_coordinate(source_rows, height, fill_mode)
    source_cols, inside_cols = _fold_coordinate(source_cols, width, fill_mode)
    inside = inside_rows & inside_cols
    source_rows = np.where(inside, source_rows, 0.0)
    source_cols = np.where(inside, source_cols, 0.0)
    values = image.astype(np.float64, copy=False)
    if values.ndim == 2:
        values = values[:, :, None]

    if order == 0:
        row0 = _fold_index(np.floor(source_rows + 0.5).astype(np.intp), height, fill_mode)
        col0 = _fold_index(np.floor(source_cols + 0.5).astype(np.intp), width, fill_mode)
        result = values[row0, col0]
    else:
        row_floor, col_floor = np.floor(source_rows), np.floor(source_cols)
        row_w0 = (1.0 - (source_rows - row_floor))[:, :, None]
        col_w0 = (1.0 - (source_cols - col_floor))[:, :, None]
        row_w1, col_w1 = 1.0 - row_w0, 1.0 - col_w0
        row_floor, col_floor = row_floor.astype(np.intp), col_floor.astype(np.intp)
        row0 = _fold_index(row_floor, height, fill_mode)
        row1 = _fold_index(row_floor + 1, height, fill_mode)
        col0 = _fold_index(col_floor, width, fill_mode)
        col1 = _fold_index(col_floor + 1, width, fill_mode)
        # Summed in SciPy's order, each term (value * row weight) * column weight.
        result = values[row0, col0] * row_w0 * col_w0
        result += values[row0, col1] * row_w0 * col_w1
        result += values[row1, col0] * row_w1 * col_w0
        result += values[row1, col1] * row_w1 * col_w1
    result = np.where(inside[:, :, None], result, float(cval))
    if image.ndim == 2:
        result = result[:, :, 0]
    return _cast_like(result, image.dtype)


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float64 -> ``dtype``; integers round half away from zero and saturate (SciPy)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        rounded = np.where(values > 0, values + 0.5, values - 0.5 if dtype.kind == "i" else 0.0)
        return np.trunc(np.clip(rounded, info.min, info.max)).astype(dtype)
    return values.astype(dtype)


def apply_affine_transform(x: np.ndarray, theta: float = 0, tx: float = 0, ty: float = 0,
                           shear: float = 0, zx: float = 1, zy: float = 1, row_axis: int = 1,
                           col_axis: int = 2, channel_axis: int = 0,
                           fill_mode: str = "nearest", cval: float = 0.0,
                           order: int = 1) -> np.ndarray:
    """Keras 2's ``apply_affine_transform`` (same arguments and defaults), one resampling.

    Args:
        x: a 3-D image; ``channel_axis`` is 0 or 2.
        theta: rotation in degrees; tx, ty: shifts in pixels along the matrix's first and
            second axes (for channels-last images ``tx`` moves content along columns and
            ``ty`` along rows, as in Keras); shear: degrees; zx, zy: zoom factors
            (> 1 shows a smaller part of the image, i.e. zooms out).
        fill_mode, cval, order: see :func:`warp_affine`.
    Returns:
        The transformed image, shape and dtype of ``x``; ``x`` itself when every
        parameter is neutral (Keras skips the resampling then).
    """
    if np.unique([row_axis, col_axis, channel_axis]).size != 3 or \
            {row_axis, col_axis, channel_axis} != {0, 1, 2}:
        raise ValueError(f"row_axis, col_axis and channel_axis must be 0, 1, 2 in some "
                         f"order, received {(row_axis, col_axis, channel_axis)}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"apply_affine_transform needs a 3-D image (rows, cols, channels), "
                         f"received shape {x.shape}")
    if channel_axis not in (0, 2):
        raise ValueError(f"channel_axis must be 0 or 2, received {channel_axis}")
    matrix = compose_affine_matrix(theta, tx, ty, shear, zx, zy)
    if matrix is None:
        return x
    height, width = x.shape[row_axis], x.shape[col_axis]
    matrix = transform_matrix_offset_center(matrix, height, width)
    if col_axis > row_axis:
        # The matrix is in (x, y) order and arrays are (row, col): conjugate by the swap.
        matrix[:, [0, 1]] = matrix[:, [1, 0]]
        matrix[[0, 1]] = matrix[[1, 0]]
    # SciPy resamples each channel over the array's own two spatial axes, in stored order.
    channels_last = np.moveaxis(x, channel_axis, 2)
    warped = warp_affine(channels_last, matrix[:2, :2], matrix[:2, 2], fill_mode, cval, order)
    return np.moveaxis(warped, 2, channel_axis)


def flip_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` reversed along ``axis`` (a view, as in Keras)."""
    return np.flip(np.asarray(x), axis)

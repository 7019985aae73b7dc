"""Input tiles read straight from the input, as if it were zero-padded.

A 'same' convolution (or any padded one) reads its input zero-padded by ``top`` rows
and ``left`` columns, and Winograd's tiles reach further still, to whole tiles past the
bottom and right edges.  Building that padded copy first costs a full pass over memory
before the convolution starts (VGG16's second layer, a batch of 20 at 150x150:
118 MB written).  Instead, the input transforms read each tile where it lies: the
tile whose top-left cell is at ``(row, column)`` of the padded input starts at
``(row - top, column - left)`` of ``x``.  A tile entirely inside ``x`` (almost all of
them) is read from ``x`` itself; only a tile that crosses an edge is first copied, with
its zeros, into a small per-call ``patch`` ``(size, size, C)``.

A transform's tile function is inlined twice, once reading ``x[n]`` and once reading the
patch: a single loop that chose its source cell by cell compiled to slower code (the
MNIST convnet's training step lost about a tenth).
"""

from __future__ import annotations

from numba import njit


@njit(inline="always")
def tile_is_inside(x, row, column, size):
    """Whether the ``size x size`` tile at ``(row, column)`` of ``x`` (``(N, H, W, C)``;
    ``row`` and ``column`` may be negative) lies entirely inside it."""
    return row >= 0 and column >= 0 and row + size <= x.shape[1] and column + size <= x.shape[2]


@njit(inline="always")
def fill_patch(x, image, row, column, patch):
    """``patch[i, j] = x[image, row + i, column + j]``, zeros where that is outside ``x``."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    size = patch.shape[0]
    for i in range(size):
        for j in range(size):
            out = patch[i, j]
            r, c = row + i, column + j
            if 0 <= r < H and 0 <= c < W:
                source = x[image, r, c]
                for k in range(C):
                    out[k] = source[k]
            else:
                for k in range(C):
                    out[k] = 0.0

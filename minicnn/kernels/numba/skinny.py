"""A product with few rows: a Dense layer's forward GEMM on a small batch.

The chapter's 150x150 convnet trains with batches of 20 (*Deep Learning with Python*,
section 5.2): its Dense 6272 -> 512 layer multiplies ``x (20, 6272) @ W (6272, 512)``.
A BLAS GEMM packs both operands into panels before it multiplies; with 20 rows on one
side, packing the 12.8 MB weight matrix weighs as much as the 64 million multiply-adds,
and SciPy's single-threaded BLAS runs this product far below its rate on square ones.
What bounds it is reading ``W`` once, so :func:`thin_rows` streams it once, in row
order: each thread takes a block of ``W``'s columns and adds four of its rows at a time,
times four of ``x``'s scalars, into an ``(M, block)`` accumulator that stays in L1.

The backward products (``dz @ W^T``, ``x^T @ dz``) were tried the same way and were no
faster than BLAS, so they stay BLAS's.  The sums run in a different order than BLAS's:
results differ from ``a @ b`` by float round-off only.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from minicnn.kernels.numba.threads import parallel_loop, worker_share

THIN_MAX = 32
"""Products ``a @ b`` whose ``a`` has at most this many rows run here."""

COLUMN_BLOCK = 128
"""Columns of ``b`` a thread accumulates at once in :func:`thin_rows` (``M x 128``
floats stay in L1)."""


@parallel_loop
def thin_rows(a, b, threads, out):
    """``out = a @ b`` for ``a`` ``(M, K)`` with few rows, ``b`` ``(K, N)``, both C-ordered."""
    M, K = a.shape
    N = b.shape[1]
    blocks = (N + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for worker in prange(threads):
        first, last = worker_share(worker, threads, blocks)
        acc = np.empty((M, COLUMN_BLOCK), dtype=out.dtype)
        for block in range(first, last):
            n0 = block * COLUMN_BLOCK
            width = min(N, n0 + COLUMN_BLOCK) - n0
            acc[:, :width] = 0.0
            k = 0
            while k + 4 <= K:
                b0, b1 = b[k, n0:n0 + width], b[k + 1, n0:n0 + width]
                b2, b3 = b[k + 2, n0:n0 + width], b[k + 3, n0:n0 + width]
                for m in range(M):
                    s0, s1, s2, s3 = a[m, k], a[m, k + 1], a[m, k + 2], a[m, k + 3]
                    row = acc[m]
                    for n in range(width):
                        row[n] += s0 * b0[n] + s1 * b1[n] + s2 * b2[n] + s3 * b3[n]
                k += 4
            for rest in range(k, K):
                b0 = b[rest, n0:n0 + width]
                for m in range(M):
                    s0 = a[m, rest]
                    row = acc[m]
                    for n in range(width):
                        row[n] += s0 * b0[n]
            for m in range(M):
                out[m, n0:n0 + width] = acc[m, :width]

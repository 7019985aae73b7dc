"""How fast SciPy's BLAS multiplies the Winograd blocks' small matrices, by their row count.

``python -m benchmarks small-products [--repeats 3]`` prints, for ``(rows, K) @ (K, N)``
products with ``K = N`` from 64 to 512 channels, the single-threaded GFLOP/s of 36 such
products in a row (one per cell of an F(4x4) tile, each with its own right-hand
matrix, as a block of tiles does), called from inside Numba as the blocked loops call
them; then the same for the kernel gradient's ``a^T b`` products, whose inner dimension
is the row count.  The row counts where the first table drops are where OpenBLAS stops
taking its small-matrix kernels (``rows * K * N`` above 100^3,
:data:`minicnn.kernels.numba.blas.SMALL_PRODUCT_MACS`) and starts packing its operands.
The Winograd block sizes (:mod:`minicnn.kernels.numba.winograd.wide`,
:func:`minicnn.kernels.numba.winograd.blocked.gradient_block_rows`) follow from it.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from numba import njit

from minicnn.kernels.numba import blas

ROWS = (6, 10, 16, 24, 32, 48, 64, 96, 128, 256, 512)
CHANNELS = (64, 128, 256, 512)
CELLS = 36


@njit(cache=True)
def _products(V, U, M, rows, calls):
    for _ in range(calls):
        for cell in range(U.shape[0]):
            np.dot(V[cell, :rows], U[cell], M[cell, :rows])


@njit(cache=True)
def _transposed_products(V, dM, dU, rows, calls):
    product = np.empty((dU.shape[1], dU.shape[2]), dtype=V.dtype)
    for _ in range(calls):
        for cell in range(V.shape[0]):
            np.dot(V[cell, :rows].T, dM[cell, :rows], product)
            dU[cell] += product


def measure(transposed: bool, channels: int, rows: int, repeats: int) -> float:
    """GFLOP/s of ``CELLS`` products of ``rows`` rows, best of ``repeats`` timings."""
    rng = np.random.default_rng(0)
    V = rng.standard_normal((CELLS, rows, channels), dtype=np.float32)
    if transposed:
        run = _transposed_products
        right = rng.standard_normal((CELLS, rows, channels), dtype=np.float32)
        out = np.zeros((CELLS, channels, channels), dtype=np.float32)
    else:
        run = _products
        right = rng.standard_normal((CELLS, channels, channels), dtype=np.float32)
        out = np.empty((CELLS, rows, channels), dtype=np.float32)
    flops = 2 * CELLS * rows * channels * channels
    calls = max(1, int(2e8 // flops))
    run(V, right, out, rows, 1)     # compiled, pages touched
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(V, right, out, rows, calls)
        best = min(best, time.perf_counter() - started)
    return flops * calls / best / 1e9


def table(transposed: bool, repeats: int) -> str:
    """One markdown table: a row per channel count, a column per row count."""
    what = "a^T b, rows = inner dimension" if transposed else "(rows, K) @ (K, K)"
    lines = [f"| {what}: K | " + " | ".join(str(rows) for rows in ROWS) + " |",
             "| ---: | " + " | ".join("---:" for _ in ROWS) + " |"]
    for channels in CHANNELS:
        rates = [measure(transposed, channels, rows, repeats) for rows in ROWS]
        lines.append(f"| {channels} | " + " | ".join(f"{rate:.0f}" for rate in rates) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks small-products",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error("--repeats must be positive")
    if not blas.enable():
        print("SciPy's BLAS cannot be called from Numba here.", file=sys.stderr)
        return 1
    print("Single-threaded GFLOP/s, 36 products of each shape in a row:\n")
    print(table(False, arguments.repeats))
    print()
    print(table(True, arguments.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GEMMs called from inside Numba's threads, so that one thread pool does all the work.

Why: on a 2-core machine, NumPy's OpenBLAS keeps its worker threads spinning (yielding)
for a while after every multi-threaded GEMM, and a step that alternates between its
pool and Numba's has three busy threads on two cores; each parallel loop then waits for
its slowest thread.  Here every GEMM of the numba backend runs either on the calling
thread or as a ``prange`` over shares of the work, each thread calling a
*single-threaded* BLAS (``np.dot`` inside Numba goes to SciPy's BLAS, through
``scipy.linalg.cython_blas``): the blocked Winograd loops
(:mod:`~minicnn.kernels.numba.winograd.blocked`), the im2col forward
(:func:`~minicnn.kernels.numba.im2col.gemm_forward`), the im2col backward
(:func:`matmul_tn`, :func:`matmul_2d`) and Dense layers (:func:`matmul_2d`).

This needs SciPy, and SciPy's OpenBLAS set to one thread (:func:`enable`, done on the
first use; it affects SciPy's BLAS only, not NumPy's).  When that is not possible (no
SciPy, or a BLAS whose thread count cannot be set), :data:`ENABLED` stays False, the
numba backend leaves Winograd aside, and these products are NumPy's.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba import skinny
from minicnn.kernels.numba.threads import MAX_THREADS, sum_partials, use_threads, worker_share

ENABLED = False
"""True once SciPy's BLAS is known to run single-threaded inside Numba's threads."""

_TRIED = False


def _scipy_blas_libraries() -> list[str]:
    """Paths of the OpenBLAS shared objects SciPy has loaded (Linux: /proc/self/maps)."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS)
        import scipy
    except ImportError:
        return []
    scipy_root = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))
    paths = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if "/" in line else ""
                name = os.path.basename(path).lower()
                if "openblas" in name and path.startswith(scipy_root) and "numpy" not in path:
                    paths.add(path)
    except OSError:
        return []
    return sorted(paths)


def enable() -> bool:
    """Set SciPy's OpenBLAS to one thread and turn on :data:`ENABLED`; False if impossible.

    Idempotent.  Setting ``MINICNN_BLAS_IN_LOOPS=0`` disables it (NumPy's threaded
    ``np.matmul`` is used instead).
    """
    global ENABLED, _TRIED
    if _TRIED:
        return ENABLED
    _TRIED = True
    if os.environ.get("MINICNN_BLAS_IN_LOOPS", "1") == "0":
        return False
    done = False
    for path in _scipy_blas_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(1)
                done = True
                break
    ENABLED = done
    return ENABLED


SMALL_PRODUCT_MACS = 100 ** 3
"""The largest product, in multiply-adds ``rows * inner * columns``, that OpenBLAS hands
to its small-matrix kernels (its SkylakeX kernels, which SciPy's wheels run on AVX-512
machines, from OpenBLAS 0.3.17 on).  Those kernels read the operands where they lie.
A larger product is first copied into packed panels, a cost that only many rows repay:
single-threaded, a ``(16, 256) @ (256, 256)`` product runs several times slower than a
``(10, 256) @ (256, 256)`` one, and a ``(64, 128) @ (128, 128)`` one slower than a
``(48, 128) @ (128, 128)`` one; the kernel gradient's ``a^T b`` products drop at the
same limit (``python -m benchmarks small-products`` measures both).  The Winograd loops
size their blocks of tiles by it (:func:`small_product_rows`)."""


def small_product_rows(inner: int, columns: int) -> int:
    """The most rows of a ``(rows, inner) @ (inner, columns)`` product within
    :data:`SMALL_PRODUCT_MACS` (0 when not even one row is)."""
    return SMALL_PRODUCT_MACS // (inner * columns)


# Products up to this many multiply-adds run on the calling thread: waking Numba's
# sleeping threads costs more than splitting so small a product saves.
SERIAL_MATMUL_MAX_MACS = 1 << 22


@njit(cache=True)
def _serial_matmul(a, b, out):
    np.dot(a, b, out)


@njit(cache=True, parallel=True)
def _row_split_matmul(a, b, threads, out):
    """``out = a @ b``, each thread multiplying a contiguous share of ``a``'s rows."""
    for worker in prange(threads):
        first, last = worker_share(worker, threads, a.shape[0])
        if first < last:
            np.dot(a[first:last], b, out[first:last])


@njit(cache=True, parallel=True)
def _inner_split_matmul_tn(a, b, threads, parts):
    """``parts[w] = a[rows_w]^T @ b[rows_w]``: ``a^T b`` split along its inner dimension."""
    for worker in prange(threads):
        first, last = worker_share(worker, threads, a.shape[0])
        if first < last:
            np.dot(a[first:last].T, b[first:last], parts[worker])
        else:
            parts[worker][:] = 0.0


def _blas_ready(array: np.ndarray) -> np.ndarray:
    """``array`` if BLAS can take it as is (C- or Fortran-ordered), else a C-ordered copy."""
    flags = array.flags
    return array if flags.c_contiguous or flags.f_contiguous else np.ascontiguousarray(array)


def _in_numba(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` can be multiplied by SciPy's BLAS from Numba's threads."""
    return (a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and a.size > 0
            and b.size > 0 and enable())


def matmul_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` ``(M, K)`` and ``b`` ``(K, N)``, without NumPy's threads.

    Why: a GEMM big enough for NumPy's OpenBLAS to wake its threads (a Dense layer's
    64 x 576 x 64 is) leaves them spinning for a while after it, stealing the cores from
    the next convolution's Numba threads (a training step of the MNIST convnet is
    markedly faster when NumPy's BLAS keeps to one thread).  Here small products run
    on the calling thread and larger ones are split by rows of ``a`` among Numba's
    threads, each calling SciPy's single-threaded BLAS (transposed views are taken
    without a copy).  Unusual products (mixed dtypes,
    integers, empty) are ``a @ b``.
    """
    if not _in_numba(a, b):
        return a @ b
    M, K = a.shape
    N = b.shape[1]
    thin = _thin_product(a, b)
    if thin is not None:
        return thin
    out = np.empty((M, N), dtype=a.dtype)
    if M * K * N <= SERIAL_MATMUL_MAX_MACS or M < MAX_THREADS:
        _serial_matmul(_blas_ready(a), _blas_ready(b), out)
    else:
        threads = use_threads(M * K * N)
        _row_split_matmul(_blas_ready(a), _blas_ready(b), threads, out)
    return out


def _thin_product(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a @ b`` by :func:`~minicnn.kernels.numba.skinny.thin_rows` when ``a`` has few rows
    (a Dense layer's forward on a small batch) and both are C-ordered; else None."""
    M, K = a.shape
    N = b.shape[1]
    if (M > skinny.THIN_MAX or M * K * N <= SERIAL_MATMUL_MAX_MACS
            or not (a.flags.c_contiguous and b.flags.c_contiguous)):
        return None
    out = np.empty((M, N), dtype=a.dtype)
    skinny.thin_rows(a, b, use_threads(M * K * N), out)
    return out


def matmul_tn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^T @ b`` for C-ordered ``a`` ``(R, M)`` and ``b`` ``(R, N)``: a sum over rows.

    A convolution's kernel gradient ``cols^T g`` is of this shape, with ``R`` the
    (many) output pixels: each of Numba's threads multiplies its share of the rows, and
    the partial products are added.
    """
    if not _in_numba(a, b):
        return a.T @ b
    R, M = a.shape
    N = b.shape[1]
    if R * M * N <= SERIAL_MATMUL_MAX_MACS or R < MAX_THREADS:
        out = np.empty((M, N), dtype=a.dtype)
        _serial_matmul(_blas_ready(a.T), _blas_ready(b), out)
        return out
    threads = use_threads(R * M * N)
    parts = np.empty((threads, M, N), dtype=a.dtype)
    _inner_split_matmul_tn(np.ascontiguousarray(a), np.ascontiguousarray(b), threads, parts)
    return sum_partials(parts)

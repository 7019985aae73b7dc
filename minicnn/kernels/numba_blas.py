"""GEMMs called from inside Numba's threads, so that one thread pool does all the work.

Why: on a 2-core machine, NumPy's OpenBLAS keeps its worker threads spinning (yielding)
for about 0.1 s after every multi-threaded GEMM, and Numba's OpenMP workers spin after
every parallel loop; a convolution that alternates between the two pools has three busy
threads on two cores, and each parallel loop waits for its slowest thread.  Here the
batched GEMMs of the Winograd path run as a ``prange`` over the batch, each thread
calling a *single-threaded* BLAS (``np.dot`` inside Numba goes to SciPy's BLAS, through
``scipy.linalg.cython_blas``).  Measured under load on the 2-core machine, for the 36
GEMMs of MNIST's second layer: 0.68 ms (fastest of 300) against 0.75 ms for
``np.matmul``, and a median 2x lower.

This needs SciPy, and SciPy's OpenBLAS set to one thread (:func:`enable`, done on the
first :func:`matmul`; it affects SciPy's BLAS only, not NumPy's).  When that is not
possible (no SciPy, or a BLAS whose thread count cannot be set), :data:`ENABLED` stays
False and :func:`matmul` is ``np.matmul``.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
from numba import njit, prange

from minicnn.kernels.numba_conv_loops import bias_relu_rows, im2col_task
from minicnn.kernels.numba_parallel import threads_for, use_threads

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


@njit(cache=True, parallel=True)
def batched_matmul(A, B, out):
    """``out[b] = A[b] @ B[b]`` for every ``b``: ``(P, M, K) @ (P, K, N) -> (P, M, N)``."""
    for b in prange(A.shape[0]):
        np.dot(A[b], B[b], out[b])


@njit(cache=True, parallel=True)
def batched_matmul_tn(A, B, out):
    """``out[b] = A[b]^T @ B[b]``: ``(P, K, M), (P, K, N) -> (P, M, N)``."""
    for b in prange(A.shape[0]):
        np.dot(A[b].T, B[b], out[b])


@njit(cache=True, parallel=True)
def batched_matmul_nt(A, B, out):
    """``out[b] = A[b] @ B[b]^T``: ``(P, M, K), (P, N, K) -> (P, M, N)``."""
    for b in prange(A.shape[0]):
        np.dot(A[b], B[b].T, out[b])


def matmul(A: np.ndarray, B: np.ndarray, transpose_a: bool = False,
           transpose_b: bool = False) -> np.ndarray:
    """Batched ``A @ B`` (either operand transposed in its last two axes), contiguous inputs.

    Inside Numba's threads when :data:`ENABLED` and the work is large enough to share
    out, else ``np.matmul``.
    """
    assert not (transpose_a and transpose_b)
    P = A.shape[0]
    M = A.shape[2] if transpose_a else A.shape[1]
    N = B.shape[1] if transpose_b else B.shape[2]
    if P < 2 or threads_for(P * M * N) < 2 or not enable():
        return np.matmul(A.transpose(0, 2, 1) if transpose_a else A,
                         B.transpose(0, 2, 1) if transpose_b else B)
    out = np.empty((P, M, N), dtype=np.result_type(A, B))
    use_threads(P * M * N)
    if transpose_a:
        batched_matmul_tn(A, B, out)
    elif transpose_b:
        batched_matmul_nt(A, B, out)
    else:
        batched_matmul(A, B, out)
    return out


# Products up to this many multiply-adds run on the calling thread (about 1 ms of one
# core); larger ones go to NumPy's threaded BLAS.
SERIAL_MATMUL_MAX_MACS = 1 << 26


@njit(cache=True)
def _serial_matmul(a, b, out):
    np.dot(a, b, out)


def _blas_ready(array: np.ndarray) -> np.ndarray:
    """``array`` if BLAS can take it as is (C- or Fortran-ordered), else a C-ordered copy."""
    flags = array.flags
    return array if flags.c_contiguous or flags.f_contiguous else np.ascontiguousarray(array)


def matmul_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` ``(M, K)`` and ``b`` ``(K, N)``, small ones single-threaded.

    Why: a Dense layer's GEMM (MNIST: 64 x 576 x 64) is big enough for NumPy's OpenBLAS
    to wake its threads, which then spin for a while after it and steal the cores from
    the next convolution's Numba threads.  Measured on the 2-core machine: a training
    step of the MNIST convnet went from 19.5 ms to 12.2 ms with NumPy's BLAS on one
    thread.  Run here, the product takes SciPy's single-threaded BLAS on the calling
    thread (transposed views included, without a copy); large or unusual products
    (mixed dtypes, integers, empty) are ``a @ b``.
    """
    M, K = a.shape
    N = b.shape[1]
    if (a.dtype != b.dtype or a.dtype not in (np.float32, np.float64) or M * K * N == 0
            or M * K * N > SERIAL_MATMUL_MAX_MACS or not enable()):
        return a @ b
    out = np.empty((M, N), dtype=a.dtype)
    _serial_matmul(_blas_ready(a), _blas_ready(b), out)
    return out


# --------------------------------------------------------------------------------------
# The im2col + GEMM convolution's forward pass as one parallel loop
# --------------------------------------------------------------------------------------
# (Its backward pass stays with NumPy's BLAS: the kernel gradient cols^T g is a GEMM
# with a transposed operand, which SciPy's OpenBLAS ran ~25% slower than NumPy's.)

# Rows of the patch matrix a thread gathers before multiplying them: ~0.5 MB of patches
# for MNIST's second layer, so the GEMM reads them from the core's own L2 cache.
CHUNK_ROWS = 512


@njit(cache=True, parallel=True)
def conv_forward(x, kernel_matrix, bias, relu, KH, KW, SH, SW, top, left, OH, OW, threads,
                 cols, y2d):
    """``y2d = relu?(im2col(x) @ kernel_matrix + bias)``, and ``cols`` = the patches.

    Each thread takes a contiguous share of the ``N*OH`` output rows and, chunk by chunk,
    gathers their patches, multiplies them (single-threaded BLAS) and applies the bias
    and ReLU while the chunk is still in its cache.
    """
    tasks = x.shape[0] * OH
    share = (tasks + threads - 1) // threads
    group = max(1, CHUNK_ROWS // OW)
    for worker in prange(threads):
        stop = min(tasks, (worker + 1) * share)
        for first in range(worker * share, stop, group):
            last = min(first + group, stop)
            for task in range(first, last):
                im2col_task(x, KH, KW, SH, SW, top, left, OH, OW, task, cols, 0)
            np.dot(cols[first * OW:last * OW], kernel_matrix, y2d[first * OW:last * OW])
            bias_relu_rows(y2d, first * OW, last * OW, bias, relu)

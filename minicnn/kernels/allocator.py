"""Why a training step's arrays come from a warm heap: glibc's ``mallopt``, set once.

A training step allocates a few dozen arrays (activations, patches, Winograd tiles,
gradients) and frees them a step later.  glibc hands every block above its mmap
threshold (128 KiB at start, adapting upwards to the largest block freed) to the kernel
with ``mmap`` and gives it back with ``munmap`` when freed, so the next step's array of
the same size starts as untouched pages: one page fault, and a zeroing by the kernel,
per 4 KiB.  On the MNIST convnet's numba step those page faults cost a large share of
the step, and the settings below remove them; the kernel benchmarks, which call one
layer in a loop, never saw it, because there glibc's adaptive threshold does settle.

:func:`keep_freed_memory` raises the mmap threshold to glibc's maximum (32 MiB on
64-bit) and the trim threshold to :data:`TRIM_THRESHOLD_BYTES`, so freed blocks stay in
the heap and the next step reuses them.  The cost: up to that much freed memory stays
mapped to the process between steps.  It only changes where glibc gets memory from; no
array is shared or reused by minicnn itself (returned arrays stay fresh and owned by
the caller).  Set ``MINICNN_MALLOC_TUNING=0`` to leave glibc's defaults alone; on other
C libraries (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Blocks below this come from the heap: glibc's largest allowed value on 64-bit."""

TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
"""Freed memory at the top of the heap kept for reuse, at most."""

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc to keep freed blocks for reuse; True when applied (once per process)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("MINICNN_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has mallopt stubs)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                    and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _applied

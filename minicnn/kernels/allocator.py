"""Why a training step's arrays come from a warm heap: glibc's ``mallopt``, set once.

A training step allocates a few dozen arrays (activations, patches, Winograd tiles,
gradients) and frees them a step later.  glibc hands every block above its mmap
threshold (128 KiB at start, adapting upwards to the largest block freed) to the kernel
with ``mmap`` and gives it back with ``munmap`` when freed, so the next step's array of
the same size starts as untouched pages: one page fault, and a zeroing by the kernel,
per 4 KiB.  On the MNIST convnet's numba step those page faults cost a large share of
the step, and the settings below remove them; the kernel benchmarks, which call one
layer in a loop, never saw it, because there glibc's adaptive threshold does settle.

:func:`keep_freed_memory` sets the number of blocks glibc may map with ``mmap`` to zero,
so every block comes from the heap and freed blocks stay there for the next request
that fits, and raises the trim threshold to :data:`TRIM_THRESHOLD_BYTES`, so freed
memory at the heap's top is not handed back at once either.  (Raising the mmap
threshold instead, as an earlier version did, stops at glibc's maximum of 32 MiB: past
28x28 many arrays are larger, VGG16's first block at 150x150, batch 20, has 115 MB
activations (and then had a 118 MB padded copy), and each was mapped fresh, a page
fault per page or a huge page the kernel must first find and zero, which on a machine
with fragmented memory stalled a 10 ms copy for as long as a whole convolution.)

The cost: up to :data:`TRIM_THRESHOLD_BYTES` of freed memory stays mapped to the
process between steps, and a heap freed in its middle keeps its pages until they are
reused.  It only changes where glibc gets memory from; no array is shared or reused by
minicnn itself (returned arrays stay fresh and owned by the caller).  Set
``MINICNN_MALLOC_TUNING=0`` to leave glibc's defaults alone; on other C libraries
(macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

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
    _applied = bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _applied

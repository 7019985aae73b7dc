"""Each Numba loop compiled twice, parallel and serial, and the rule that picks one.

A ``prange`` loop compiled with ``parallel=True`` wakes the thread pool on every call:
a few microseconds on an idle machine, but a whole scheduler time slice (milliseconds)
when another process holds a core, because the call waits for its slowest thread.
Small calls (a test's 5x5 image, a 64x5x5x64 layer) gain nothing from threads, so
they run the serial build of the same source, where ``prange`` is a plain ``range``.
"""

from __future__ import annotations

import os
import types
from typing import Callable

import numba
from numba import njit

# Idle OpenMP workers sleep instead of spinning.  Numba's pool starts on the first
# parallel call and reads this then (unless the user set it, or another library already
# started OpenMP).  Measured on the 2-core machine with other processes running: with the
# default spin-wait, a training step's convolutions took a median 10x longer, because
# each parallel loop waits for its slowest thread and spinning threads crowd out the
# working ones (and the BLAS threads); sleeping costs a few microseconds per loop.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Below this many array elements touched, a call runs single-threaded.  Waking the
# pool costs ~5-10 us on an idle machine; a core streams ~10^4 float32 in that time.
PARALLEL_MIN_ELEMENTS = 1 << 15


class ParallelPair:
    """A loop compiled both ways; ``pick(elements)`` returns the build to call."""

    def __init__(self, function: Callable) -> None:
        self.parallel = njit(cache=True, parallel=True)(function)
        # A second function object with its own qualified name: Numba's on-disk cache
        # is keyed by qualified name, and the two builds must not share an entry.
        serial_function = types.FunctionType(function.__code__, function.__globals__,
                                             function.__name__ + "_serial",
                                             function.__defaults__, function.__closure__)
        serial_function.__qualname__ = function.__qualname__ + "_serial"
        serial_function.__doc__ = function.__doc__
        self.serial = njit(cache=True)(serial_function)
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def pick(self, elements: int) -> Callable:
        """The parallel build when ``elements`` is large enough to pay for threads."""
        return self.parallel if threads_for(elements) > 1 else self.serial

    def threads(self, elements: int) -> int:
        """How many per-thread partial sums a reduction loop should keep for ``elements``."""
        return threads_for(elements)


def threads_for(elements: int) -> int:
    """Threads a call over ``elements`` runs on: 1 below :data:`PARALLEL_MIN_ELEMENTS`."""
    return numba.get_num_threads() if elements >= PARALLEL_MIN_ELEMENTS else 1


def parallel_and_serial(function: Callable) -> ParallelPair:
    """Decorator: compile ``function`` (a ``prange`` loop) as a :class:`ParallelPair`."""
    return ParallelPair(function)

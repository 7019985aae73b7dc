"""How the Numba loops use threads: one parallel build each, and how many threads a call gets.

Every loop is compiled once, with ``parallel=True``; a call on a small array runs it on
one thread (``numba.set_num_threads(1)``: ~1 us of overhead, against ~10 us to wake the
pool), because a tiny call gains nothing from threads, and on a busy machine waking the
pool costs a scheduler time slice (the call waits for its slowest thread).  An earlier
version kept a second, serial build of every loop; compiling both doubled the first
run's compile time for ~1 us per call.

Idle workers sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, set below before
Numba starts its OpenMP pool, unless the user set it or OpenMP is already running).
Measured on the 2-core machine with other processes running, the default spin-wait made
a training step's convolutions a median 10x slower: each parallel loop waits for its
slowest thread, and spinning threads crowd out the working ones (and BLAS's threads).
Sleeping costs ~7 us per parallel loop on an idle machine (2-thread launch: 8.7 us
against 1.6 us spinning), about 0.2 ms per MNIST training step.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402  (after the environment is set)
from numba import njit  # noqa: E402

# Below this many array elements touched, a call runs on one thread.
PARALLEL_MIN_ELEMENTS = 1 << 15

MAX_THREADS = numba.config.NUMBA_NUM_THREADS
"""Threads a large call uses: Numba's pool size (``NUMBA_NUM_THREADS``)."""


def threads_for(elements: int) -> int:
    """Threads a call over ``elements`` runs on: 1 below :data:`PARALLEL_MIN_ELEMENTS`."""
    return MAX_THREADS if elements >= PARALLEL_MIN_ELEMENTS else 1


# The count this Python thread last set (Numba's setting is per thread).  Checked first:
# ``numba.set_num_threads`` costs ~10 us, and a training step makes ~20 calls.
_last_set = threading.local()


def use_threads(elements: int) -> int:
    """Set this thread's Numba thread count for a call over ``elements``; return it."""
    threads = threads_for(elements)
    if getattr(_last_set, "threads", None) != threads:
        numba.set_num_threads(threads)
        _last_set.threads = threads
    return threads


class ParallelLoop:
    """A ``prange`` loop compiled with ``parallel=True``; ``pick`` sets its thread count."""

    def __init__(self, function: Callable) -> None:
        self.compiled = njit(cache=True, parallel=True)(function)
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def pick(self, elements: int) -> Callable:
        """The compiled loop, with this thread's thread count set for ``elements``."""
        use_threads(elements)
        return self.compiled


def parallel_loop(function: Callable) -> ParallelLoop:
    """Decorator: compile ``function`` (a ``prange`` loop) as a :class:`ParallelLoop`."""
    return ParallelLoop(function)

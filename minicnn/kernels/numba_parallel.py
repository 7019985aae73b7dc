"""How the Numba loops use threads: one parallel build each, and how many threads a call gets.

Every loop is compiled once, with ``parallel=True``; a call on a small array runs it on
one thread (``numba.set_num_threads(1)``: ~1 us of overhead, against ~10 us to wake the
pool), because a tiny call gains nothing from threads, and on a busy machine waking the
pool costs a scheduler time slice (the call waits for its slowest thread).  An earlier
version kept a second, serial build of every loop; compiling both doubled the first
run's compile time for ~1 us per call.

Between parallel loops, idle workers spin briefly, then sleep: ``GOMP_SPINCOUNT``
(:data:`SPIN_COUNT` = 10,000 pause instructions, about 0.2 ms on the machine this was
tuned on) is set below before Numba starts its OpenMP pool, unless the user set it or
``OMP_WAIT_POLICY``.  A training step runs a dozen parallel loops with a little Python
between them; measured on the 2-core machine (MNIST convnet, batch 64, median of 3
alternated runs), the step took 6.7 ms with workers that sleep at once
(``OMP_WAIT_POLICY=PASSIVE``) and 6.1 ms with the brief spin (6.0 ms spinning 10x
longer).  The price is paid on a machine busy with other work: with two CPU-bound
processes beside it, the step took 11.7-17.5 ms sleeping and 18.0-18.5 ms spinning (and
libgomp's own default, 300,000 spins, made convolutions ~10x slower under heavy load).
On a shared machine, set ``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

SPIN_COUNT = 10_000
"""Spins of an idle OpenMP worker before it sleeps (libgomp's ``GOMP_SPINCOUNT``)."""

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)

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


@njit(inline="always")
def worker_share(worker, threads, rows):
    """``(first, stop)``: the contiguous share of ``rows`` tasks that ``worker`` takes."""
    share = (rows + threads - 1) // threads
    return worker * share, min(rows, (worker + 1) * share)

"""How the compiled loops use threads: one parallel build each, and how many threads a call gets.

Every loop is compiled once, with ``parallel=True`` (:func:`parallel_loop`).  Before a
call, the caller sets this Python thread's Numba thread count with
:func:`use_threads` (one thread below :data:`PARALLEL_MIN_ELEMENTS` array elements,
the whole pool above), in plain sight at the call site::

    threads = use_threads(y.size * 9)
    direct_forward(xp, kernel_rows, bias, SH, SW, relu, y)

A tiny call gains nothing from threads: waking the pool costs more than the work, and
on a busy machine it costs a scheduler time slice (a parallel loop waits for its
slowest thread).  Setting the count to one is far cheaper than waking the pool, so
every loop keeps one build; an earlier version kept a second, serial build of each
loop, which doubled the first run's compile time to save very little per call.

Between parallel loops, idle workers spin briefly, then sleep: ``GOMP_SPINCOUNT``
(:data:`SPIN_COUNT`) is set below before Numba starts its OpenMP pool, unless the user
set it or ``OMP_WAIT_POLICY``.  A training step runs a dozen parallel loops with a
little Python between them: a short spin bridges those gaps, so a step is faster than
with workers that sleep at once, and spinning longer than this gained nothing.  The
price is paid on a machine busy with other work, where spinning workers take cores
from other processes (libgomp's own default spin, 30 times longer, made convolutions
many times slower under heavy load).  On a shared machine, set
``OMP_WAIT_POLICY=PASSIVE``.  The numbers are in ``benchmarks/RESULTS.md``.

Loops that reduce (a kernel or bias gradient) keep one partial sum per thread and add
them at the end (:func:`sum_partials`): no atomics, and the same result for the same
thread count.
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

PARALLEL_MIN_ELEMENTS = 1 << 15
"""Below this many array elements touched, a call runs on one thread (tests change it)."""

MAX_THREADS = numba.config.NUMBA_NUM_THREADS
"""Threads a large call uses: Numba's pool size (``NUMBA_NUM_THREADS``)."""


def threads_for(elements: int) -> int:
    """Threads a call over ``elements`` runs on: 1 below :data:`PARALLEL_MIN_ELEMENTS`."""
    return MAX_THREADS if elements >= PARALLEL_MIN_ELEMENTS else 1


# The count this Python thread last set (Numba's setting is per thread).  Checked first:
# ``numba.set_num_threads`` is not free, and a training step makes about twenty calls.
_last_set = threading.local()


def use_threads(elements: int) -> int:
    """Set this thread's Numba thread count for a call over ``elements``; return it.

    Call it right before a :func:`parallel_loop`; loops that keep one partial sum per
    thread take the returned count as an argument.
    """
    threads = threads_for(elements)
    if getattr(_last_set, "threads", None) != threads:
        numba.set_num_threads(threads)
        _last_set.threads = threads
    return threads


def parallel_loop(function: Callable) -> Callable:
    """Decorator: compile ``function`` (a ``prange`` loop) with ``parallel=True``, cached.

    The thread count it runs on is whatever :func:`use_threads` set last on this thread.
    """
    return njit(cache=True, parallel=True)(function)


@njit(inline="always")
def worker_share(worker, threads, rows):
    """``(first, stop)``: the contiguous share of ``rows`` tasks that ``worker`` takes."""
    share = (rows + threads - 1) // threads
    return worker * share, min(rows, (worker + 1) * share)


@njit(cache=True)
def sum_partials(partial):
    """``partial.sum(axis=0)`` for a float64 ``(threads, ...)`` array of per-thread sums.

    Written out: Numba's generic ``sum(axis=...)`` adds seconds of compile time.
    """
    total = partial[0].copy()
    for worker in range(1, partial.shape[0]):
        total += partial[worker]
    return total

"""Runnable benchmark scripts; the measuring code is :mod:`minicnn.bench` (``minicnn bench``).

From a source checkout (the repository root)::

    python -m benchmarks.machine                 # cores, CPU, BLAS, SGEMM GFLOP/s
    python -m benchmarks.kernels [--quick]       # = minicnn bench kernels
    python -m benchmarks.end_to_end [--quick]    # = minicnn bench end-to-end
    python -m benchmarks.run_all [--quick]       # = minicnn bench all (the RESULTS.md run)
    python -m benchmarks.report                  # re-render RESULTS.md from RESULTS.json

Every script takes ``minicnn bench``'s options (``--out``, ``--images``, ``--rounds``, ...).
Results go to ``benchmarks/RESULTS.md``, with ``RESULTS.json`` beside it.
"""

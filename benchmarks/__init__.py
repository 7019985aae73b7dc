"""The cross-framework benchmark harness: minicnn beside Keras and PyTorch.

Run from the repository root (it is not installed with the ``minicnn`` package)::

    python -m benchmarks all [--quick]     # everything, into benchmarks/RESULTS.md
    python -m benchmarks kernels           # each step of the MNIST convnet, every backend
    python -m benchmarks end-to-end        # training epochs and predictions, alternated
    python -m benchmarks machine           # cores, CPU, BLAS, SGEMM GFLOP/s (JSON)
    python -m benchmarks report            # re-render RESULTS.md from RESULTS.json

One concept per module:

- :mod:`benchmarks.machine`: what the timings depend on, and the SGEMM yardstick;
- :mod:`benchmarks.sessions`, :mod:`benchmarks.torch_session`: a framework's model and
  data inside a worker (minicnn, Keras, PyTorch);
- :mod:`benchmarks.workers`: the JSON-lines protocol between the parent and a worker
  subprocess;
- :mod:`benchmarks.end_to_end`: epochs and predictions, alternated between workers;
- :mod:`benchmarks.kernels`: the per-step table, built on the engine's profiler
  (:mod:`minicnn.profiler`, also ``minicnn bench layers``);
- :mod:`benchmarks.report`: the Markdown report and its JSON;
- :mod:`benchmarks.run_all`: the options and the run that ties them together.

The engine never imports this package; Keras, TensorFlow and PyTorch are imported only
inside the worker sessions.
"""

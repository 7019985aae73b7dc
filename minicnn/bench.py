"""``minicnn bench``: how fast minicnn is, per layer and end to end, beside Keras and PyTorch.

Three measurements, all on the MNIST convnet of :func:`minicnn.applications.mnist_convnet`
(batch 64, RMSprop, categorical crossentropy, as the seed trains it):

* **machine**: cores, CPU model, BLAS, and the single-precision GEMM rate measured in
  the same run (``np.dot`` on two float32 ``2048 x 2048`` matrices, best of several);
  it is the yardstick every kernel is compared with.
* **kernels**: each layer's ``forward(training=True)`` and ``backward`` (the calls
  ``fit`` makes, so fused kernels and Python overhead are included) for every
  backend: median and minimum time after a warm-up, GFLOP/s (multiply-adds x 2) and
  that rate as a fraction of the SGEMM rate.  Also a whole ``train_on_batch`` step,
  which against the sum of its layers shows the loss/optimizer/Python overhead.  The
  reference backend is plain Python loops: it runs on a batch of one, once.
* **end to end**: seconds per training epoch (``fit(epochs=1)``) and prediction
  images/s for minicnn (each compiled backend), Keras and PyTorch (when installed).
  Each framework lives in its own worker subprocess (so TensorFlow's and Torch's
  thread pools never share a process with minicnn, and each peak RSS is its own);
  the parent drives them in turn -- warm-up epoch and prediction for each, then
  alternated timed rounds (minicnn, Keras, Torch, minicnn, ...) -- and reports
  medians with min and max, the first epoch separately (compilation, tracing), test
  accuracy after the same number of epochs, and peak memory (``VmHWM``).

Results go to ``benchmarks/RESULTS.md`` (and ``RESULTS.json`` beside it, from which the
Markdown is rendered), written atomically; ``minicnn bench kernels`` replaces only the
kernel section of an existing file, ``end-to-end`` only its own.

Keras and TensorFlow are never imported here: the Keras worker builds its model with
:func:`minicnn.interop.keras.keras_reference_model` and drives it through its methods.
PyTorch is imported only inside the Torch worker, and is optional.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["describe_machine", "measure_sgemm", "run_kernel_benchmarks", "run_end_to_end",
           "render_markdown", "write_results", "add_arguments", "run_command", "main",
           "training_step_flops", "DEFAULT_OUT"]

BATCH_SIZE = 64
FULL_EPOCH_IMAGES = 60_000
DEFAULT_OUT = "benchmarks/RESULTS.md"
REFERENCE_BATCH = 1
FRAMEWORKS = ("minicnn-numba", "minicnn-numpy", "keras", "torch")
# The targets, checked (not asserted) in the report.
TARGET_EPOCH_RATIO = 0.6
TARGET_PREDICT_TIME_RATIO = 0.67
TARGET_ACCURACY_GAP_POINTS = 0.2

# Layer names used in the tables, in the model's order (Flatten is a reshape: skipped).
_LAYER_LABELS = ["conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "dense2"]


# ======================================================================================
# Machine
# ======================================================================================

def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_flags() -> list[str]:
    """The SIMD flags that matter for float32 GEMM (avx2, fma, avx512f), when listed."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in ("avx2", "fma", "avx512f") if flag in flags]
    except OSError:
        pass
    return []


def _memory_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def blas_description() -> str:
    """NumPy's BLAS: via threadpoolctl when installed (with its thread count), else
    ``numpy.show_config``'s build record."""
    try:
        import threadpoolctl

        infos = [info for info in threadpoolctl.threadpool_info()
                 if info.get("user_api") == "blas"]
        if infos:
            info = infos[0]
            return (f"{info.get('internal_api')} {info.get('version')} "
                    f"({info.get('num_threads')} threads, {info.get('architecture')}) "
                    f"via threadpoolctl")
    except Exception:  # noqa: BLE001 - optional and purely descriptive
        pass
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        text = f"{blas.get('name')} {blas.get('version')}"
        extra = blas.get("openblas configuration")
        return f"{text} ({extra})" if extra else text
    except Exception:  # noqa: BLE001 - older NumPy: no dict mode
        return "unknown (numpy.show_config)"


def _version(distribution: str) -> str | None:
    """An installed distribution's version, without importing it (TensorFlow is slow to import)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def measure_sgemm(size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """This machine's float32 GEMM rate: ``np.dot`` of two ``size x size`` matrices.

    Returns:
        ``{"size", "repeats", "best_seconds", "gflops"}``; ``gflops = 2 size^3 / best``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    np.dot(a, b, out=out)  # warm-up: threads started, pages touched
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.dot(a, b, out=out)
        times.append(time.perf_counter() - started)
    best = min(times)
    return {"size": size, "repeats": repeats, "best_seconds": best,
            "median_seconds": statistics.median(times), "gflops": 2 * size**3 / best / 1e9}


def describe_machine(sgemm_size: int = 2048, sgemm_repeats: int = 5) -> dict[str, Any]:
    """What the timings depend on, with the SGEMM rate measured now."""
    try:
        import numba

        numba_version, numba_threads = numba.__version__, numba.config.NUMBA_NUM_THREADS
    except ImportError:
        numba_version, numba_threads = None, None
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "simd": _cpu_flags(),
        "memory_gib": _memory_total_gib(),
        "blas": blas_description(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"numpy": np.__version__, "numba": numba_version,
                     "tensorflow": _version("tensorflow"), "keras": _version("keras"),
                     "torch": _version("torch"), "minicnn": _version("minicnn")},
        "numba_threads": numba_threads,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "sgemm": measure_sgemm(sgemm_size, sgemm_repeats),
    }


# ======================================================================================
# Work counts
# ======================================================================================

def _layer_flops(layer, input_shape: tuple, need_input_grad: bool) -> tuple[int, int]:
    """(forward, backward) floating-point operations of one layer, 2 per multiply-add.

    Convolution: ``N*OH*OW*F*KH*KW*C`` multiply-adds forward; backward the same for the
    kernel gradient and again for the input gradient (when it is wanted).  Dense:
    ``N*in*out`` likewise.  Pooling, Flatten, biases and activations count as zero:
    they are memory traffic, not arithmetic.
    """
    kind = type(layer).__name__
    if kind == "Conv2D":
        N = input_shape[0]
        _, OH, OW, F = layer.compute_output_shape(input_shape)
        KH, KW = layer.kernel_size
        multiply_adds = N * OH * OW * F * KH * KW * input_shape[3]
    elif kind == "Dense":
        multiply_adds = int(np.prod(input_shape[:-1])) * input_shape[-1] * layer.units
    else:
        return 0, 0
    return 2 * multiply_adds, 2 * multiply_adds * (2 if need_input_grad else 1)


def training_step_flops(model, batch_size: int) -> int:
    """Floating-point operations of one training step (forward + backward) of ``model``.

    The first layer computes no input gradient (``fit`` does not ask for it).
    """
    total, shape = 0, (batch_size,) + model.input_shape[1:]
    for index, layer in enumerate(model.layers):
        forward, backward = _layer_flops(layer, shape, need_input_grad=index > 0)
        total += forward + backward
        shape = layer.compute_output_shape(shape)
    return total


def _shape_text(shape: tuple) -> str:
    return "(" + ",".join(str(size) for size in shape) + ")"


def _layer_description(layer, input_shape: tuple) -> str:
    kind = type(layer).__name__
    if kind == "Conv2D":
        return f"{_shape_text(input_shape)}x{_shape_text(layer.kernel.shape)}"
    if kind == "Dense":
        return f"{input_shape[-1]}->{layer.units} ({layer.activation.name})"
    if kind.endswith("Pooling2D"):
        return f"{_shape_text(input_shape)} {layer.pool_size[0]}x{layer.pool_size[1]}"
    return _shape_text(input_shape)


# ======================================================================================
# Kernel level
# ======================================================================================

def _time_calls(function: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    """Seconds of each of ``repeats`` calls, after ``warmup`` untimed ones; GC paused."""
    for _ in range(warmup):
        function()
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
    finally:
        if was_enabled:
            gc.enable()
    return times


def _nbytes(*arrays) -> int:
    return sum(array.nbytes for array in arrays if array is not None)


def _kernel_rows_for_backend(backend: str, batch: int, repeats: int, warmup: int,
                             sgemm_gflops: float, seed: int, with_step: bool,
                             layers: list[str] | None) -> list[dict[str, Any]]:
    """Time every layer of the MNIST convnet, forward and backward, on ``backend``."""
    import minicnn
    from minicnn.applications.mnist_models import mnist_convnet
    from minicnn.backend import get_backend_name, set_backend

    previous = get_backend_name()
    set_backend(backend)
    try:
        minicnn.set_random_seed(seed)
        model = mnist_convnet()
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                      metrics=["accuracy"])
        rng = np.random.default_rng(seed)
        x = rng.random((batch, 28, 28, 1), dtype=np.float32)
        labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]

        rows: list[dict[str, Any]] = []
        last = len(model.layers) - 1
        activations = x
        layer_inputs = []
        for index, layer in enumerate(model.layers):
            label = _LAYER_LABELS[index] if index < len(_LAYER_LABELS) else layer.name
            layer_input = activations
            layer_inputs.append(layer_input)
            output = layer.forward(layer_input, training=True)
            if type(layer).__name__ == "Flatten" or (layers and label not in layers):
                activations = output
                continue
            need_dx = index > 0
            forward_flops, backward_flops = _layer_flops(layer, layer_input.shape, need_dx)
            description = _layer_description(layer, layer_input.shape)
            dy = (rng.standard_normal(output.shape, dtype=np.float32) * 0.01).astype(
                output.dtype)

            def forward(layer=layer, layer_input=layer_input):
                return layer.forward(layer_input, training=True)

            if index == last:
                # fit backpropagates the loss from the logits into the last layer.
                def backward(layer=layer, dy=dy, need_dx=need_dx):
                    return layer.backward_from_preactivation(dy, need_dx)
            else:
                def backward(layer=layer, dy=dy, need_dx=need_dx):
                    return layer.backward(dy, need_dx)

            forward_times = _time_calls(forward, repeats, warmup)
            forward()  # the backward below must see this input's cache
            backward_times = _time_calls(backward, repeats, warmup)
            dx = backward()
            for pass_name, times, flops, moved in (
                    ("forward", forward_times, forward_flops, _nbytes(layer_input, output)),
                    ("backward", backward_times, backward_flops, _nbytes(dy, dx))):
                rows.append(_timing_row(backend, label, description, pass_name, batch,
                                        times, flops, sgemm_gflops, moved))
            activations = output

        if not layers:
            rows += _fused_pair_rows(model, layer_inputs, backend, batch, repeats, warmup,
                                     sgemm_gflops, rng)

        if with_step and not layers:
            step_flops = training_step_flops(model, batch)
            step_times = _time_calls(lambda: model.train_on_batch(x, labels), repeats, warmup)
            rows.append(_timing_row(backend, "train step", "train_on_batch (all layers, "
                                    "loss, RMSprop)", "step", batch, step_times, step_flops,
                                    sgemm_gflops, 0))
            predict_times = _time_calls(lambda: model.predict_on_batch(x), repeats, warmup)
            predict_flops = sum(_layer_flops(layer, shape, False)[0] for layer, shape in
                                _layer_shapes(model, batch))
            rows.append(_timing_row(backend, "predict batch", "predict_on_batch (forward)",
                                    "forward", batch, predict_times, predict_flops,
                                    sgemm_gflops, 0))
        return rows
    finally:
        set_backend(previous)


def _fused_pair_rows(model, layer_inputs: list[np.ndarray], backend: str, batch: int,
                     repeats: int, warmup: int, sgemm_gflops: float, rng
                     ) -> list[dict[str, Any]]:
    """Rows for the conv + pool pairs that ``fit`` runs as one kernel on this backend.

    ``layer_inputs[i]`` is what ``model.layers[i]`` received in the per-layer timing.
    """
    from minicnn.backend import kernels
    from minicnn.models.fusion import ConvReluMaxPool

    rows: list[dict[str, Any]] = []
    for index, (layer, layer_input) in enumerate(zip(model.layers, layer_inputs)):
        fused = ConvReluMaxPool.find(model.layers, index, layer_input, True, kernels())
        if fused is None:
            continue
        label = "+".join(_LAYER_LABELS[index:index + 2])
        need_dx = index > 0
        forward_flops, backward_flops = _layer_flops(layer, layer_input.shape, need_dx)
        pooled = fused.forward(layer_input)
        dy = (rng.standard_normal(pooled.shape, dtype=np.float32) * 0.01).astype(pooled.dtype)
        forward_times = _time_calls(lambda: fused.forward(layer_input), repeats, warmup)
        fused.forward(layer_input)  # the backward below must see this input's cache
        backward_times = _time_calls(lambda: fused.backward(dy, need_dx), repeats, warmup)
        description = _layer_description(layer, layer_input.shape) + " + 2x2 max pool"
        for pass_name, times, flops in (("fused forward", forward_times, forward_flops),
                                        ("fused backward", backward_times, backward_flops)):
            rows.append(_timing_row(backend, label, description, pass_name, batch, times,
                                    flops, sgemm_gflops, 0))
    return rows


def _layer_shapes(model, batch: int):
    """(layer, its input shape with batch ``batch``) for every layer."""
    shape = (batch,) + model.input_shape[1:]
    for layer in model.layers:
        yield layer, shape
        shape = layer.compute_output_shape(shape)


def _timing_row(backend: str, layer: str, description: str, pass_name: str, batch: int,
                times: list[float], flops: int, sgemm_gflops: float, moved_bytes: int
                ) -> dict[str, Any]:
    median = statistics.median(times)
    gflops = flops / median / 1e9 if flops and median > 0 else None
    return {
        "backend": backend, "layer": layer, "shapes": description, "pass": pass_name,
        "batch": batch, "repeats": len(times), "median_ms": median * 1e3,
        "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3, "gflop": flops / 1e9,
        "gflops": gflops,
        "fraction_of_sgemm": gflops / sgemm_gflops if gflops and sgemm_gflops else None,
        "gb_per_s": moved_bytes / median / 1e9 if moved_bytes and median > 0 else None,
    }


def run_kernel_benchmarks(backends: list[str] | None = None, batch: int = BATCH_SIZE,
                          repeats: int = 20, warmup: int = 2, seed: int = 0,
                          machine: dict[str, Any] | None = None,
                          reference_batch: int = REFERENCE_BATCH,
                          layers: list[str] | None = None,
                          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Per-layer forward/backward timings of the MNIST convnet on each backend.

    Args:
        backends: default every backend that imports here (reference included; it
            runs on ``reference_batch`` images, once, without warm-up).
        batch: images per call for the compiled backends (64, as training).
        repeats, warmup: timed calls (median reported) and untimed calls before them.
        machine: from :func:`describe_machine` (measured now when None).
        layers: only these labels ("conv1", "pool1", ..., "dense2"); the whole-step
            rows are then skipped.

    Returns:
        ``{"machine", "rows", "notes", "settings"}``; one row per (backend, layer,
        pass) plus, per backend, a whole training step and a prediction batch.
    """
    from minicnn.backend import available_backends

    if machine is None:
        machine = describe_machine()
    sgemm = machine["sgemm"]["gflops"]
    available = available_backends()
    backends = list(backends) if backends else available
    rows, notes = [], []
    for backend in backends:
        if backend not in available:
            notes.append(f"{backend}: not available here (skipped)")
            continue
        is_reference = backend == "reference"
        backend_batch = reference_batch if is_reference else batch
        log(f"kernels: {backend} (batch {backend_batch})")
        rows += _kernel_rows_for_backend(
            backend, backend_batch, 1 if is_reference else repeats,
            0 if is_reference else warmup, sgemm, seed, with_step=not is_reference,
            layers=layers)
        if is_reference:
            notes.append(f"reference: plain Python loops, timed once on a batch of "
                         f"{backend_batch} (not {batch}); no whole-step rows")
    return {"machine": machine, "rows": rows, "notes": notes,
            "settings": {"batch": batch, "repeats": repeats, "warmup": warmup, "seed": seed,
                         "reference_batch": reference_batch, "backends": backends}}


# ======================================================================================
# End to end: workers (one subprocess per framework)
# ======================================================================================

def _peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``), MiB."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _load_mnist(images: int, test_images: int):
    """The seed's preprocessing: ``(N, 28, 28, 1)`` float32 in [0, 1], one-hot labels."""
    from minicnn.datasets import mnist
    from minicnn.utils import to_categorical

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, y_train = x_train[:images], y_train[:images]
    x_test, y_test = x_test[:test_images], y_test[:test_images]

    def prepare(x):
        return x.reshape(len(x), 28, 28, 1).astype("float32") / 255

    return (prepare(x_train), to_categorical(y_train, 10), y_train.astype(np.int64),
            prepare(x_test), to_categorical(y_test, 10), y_test.astype(np.int64))


def _seeded_minicnn_model(seed: int):
    import minicnn
    from minicnn.applications.mnist_models import mnist_convnet

    minicnn.set_random_seed(seed)
    return mnist_convnet()


class _Session:
    """One framework's model and data inside a worker; each method is one request."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.batch_size = spec["batch_size"]

    def setup(self) -> dict[str, Any]:
        started = time.perf_counter()
        (self.x, self.y, self.labels, self.x_test, self.y_test,
         self.test_labels) = _load_mnist(self.spec["images"], self.spec["test_images"])
        self.build()
        return {"setup_seconds": time.perf_counter() - started, "threads": self.threads()}

    def train_epoch(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.fit_one_epoch()
        return {"seconds": time.perf_counter() - started}

    def predict(self) -> dict[str, Any]:
        started = time.perf_counter()
        probabilities = self.predict_test()
        seconds = time.perf_counter() - started
        if probabilities.shape != (len(self.x_test), 10):
            raise RuntimeError(f"predictions have shape {probabilities.shape}")
        return {"seconds": seconds}

    def evaluate(self) -> dict[str, Any]:
        probabilities = self.predict_test()
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == self.test_labels))
        return {"test_accuracy": accuracy}

    def finish(self) -> dict[str, Any]:
        return {"peak_rss_mib": _peak_rss_mib()}

    # Framework-specific parts.
    def build(self) -> None:
        raise NotImplementedError

    def threads(self) -> str:
        raise NotImplementedError

    def fit_one_epoch(self) -> None:
        raise NotImplementedError

    def predict_test(self) -> np.ndarray:
        raise NotImplementedError


class _MinicnnSession(_Session):
    def build(self) -> None:
        import minicnn

        minicnn.set_backend(self.spec["backend"])
        self.model = _seeded_minicnn_model(self.spec["seed"])
        self.model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                           metrics=["accuracy"])

    def threads(self) -> str:
        if self.spec["backend"] == "numba":
            import numba

            return f"numba {numba.get_num_threads()} threads, BLAS default"
        return "BLAS default"

    def fit_one_epoch(self) -> None:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                       shuffle=True)

    def predict_test(self) -> np.ndarray:
        return self.model.predict(self.x_test, batch_size=self.batch_size, verbose=0)


class _KerasSession(_Session):
    def build(self) -> None:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from minicnn.interop.keras import keras_reference_model

        self.model = keras_reference_model("mnist-convnet")
        # The same starting weights as minicnn's model with this seed.
        self.model.set_weights(_seeded_minicnn_model(self.spec["seed"]).get_weights())
        self.model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                           metrics=["accuracy"])

    def threads(self) -> str:
        return "TensorFlow defaults"

    def fit_one_epoch(self) -> None:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                       shuffle=True)

    def predict_test(self) -> np.ndarray:
        return np.asarray(self.model.predict(self.x_test, batch_size=self.batch_size,
                                             verbose=0))


class _TorchSession(_Session):
    """The same network in PyTorch: NCHW tensors (a free reshape for one channel),
    the same starting weights, RMSprop with Keras's defaults, and the loss and
    accuracy of every batch computed as Keras's ``fit`` computes them."""

    def build(self) -> None:
        torch = self.make_network()
        # Keras's RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps).
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=1e-3, alpha=0.9,
                                             eps=1e-7)
        # (N, 28, 28, 1) -> (N, 1, 28, 28) is the same memory: no copy.
        self.x_nchw = torch.from_numpy(self.x.reshape(len(self.x), 1, 28, 28))
        self.labels_tensor = torch.from_numpy(self.labels)
        self.x_test_nchw = torch.from_numpy(self.x_test.reshape(len(self.x_test), 1, 28, 28))
        self.generator = torch.Generator().manual_seed(self.spec["seed"])

    def make_network(self):
        """The network, holding minicnn's starting weights for this seed; returns torch."""
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(self.spec["threads"])
        torch.manual_seed(self.spec["seed"])
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
        self._copy_weights(_seeded_minicnn_model(self.spec["seed"]).get_weights())
        return torch

    def _copy_weights(self, weights: list[np.ndarray]) -> None:
        torch = self.torch
        convs = [m for m in self.model if isinstance(m, torch.nn.Conv2d)]
        denses = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        arrays = iter(weights)
        with torch.no_grad():
            for conv in convs:
                conv.weight.copy_(torch.from_numpy(next(arrays).transpose(3, 2, 0, 1).copy()))
                conv.bias.copy_(torch.from_numpy(next(arrays)))
            for position, dense in enumerate(denses):
                kernel = next(arrays)  # (in, out)
                if position == 0:
                    # minicnn flattens (H, W, C); torch flattens (C, H, W).
                    kernel = kernel.reshape(3, 3, 64, -1).transpose(2, 0, 1, 3).reshape(576, -1)
                dense.weight.copy_(torch.from_numpy(kernel.T.copy()))
                dense.bias.copy_(torch.from_numpy(next(arrays)))

    def threads(self) -> str:
        return f"torch.set_num_threads({self.torch.get_num_threads()})"

    def fit_one_epoch(self) -> None:
        torch = self.torch
        functional = torch.nn.functional
        self.model.train()
        order = torch.randperm(len(self.x_nchw), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            images, labels = self.x_nchw[batch], self.labels_tensor[batch]
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(images)
            loss = functional.cross_entropy(logits, labels)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():  # what Keras's fit reports per batch
                float(loss)
                float((logits.argmax(dim=1) == labels).float().mean())

    def predict_test(self) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        out = np.empty((len(self.x_test_nchw), 10), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(out), self.batch_size):
                logits = self.model(self.x_test_nchw[start:start + self.batch_size])
                out[start:start + len(logits)] = torch.softmax(logits, dim=1).numpy()
        return out


_SESSIONS = {"minicnn": _MinicnnSession, "keras": _KerasSession, "torch": _TorchSession}


def _worker_main(spec_text: str) -> None:
    """A worker's loop: JSON requests on stdin, one JSON answer per line on the
    original stdout; everything the frameworks print goes to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    spec = json.loads(spec_text)
    session = _SESSIONS[spec["framework"]](spec)
    for line in sys.stdin:
        command = json.loads(line)["command"]
        try:
            answer = getattr(session, command)()
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            answer = {"error": f"{type(error).__name__}: {error}",
                      "traceback": traceback.format_exc()}
        protocol.write(json.dumps(answer) + "\n")
        if command == "finish":
            break


class _Worker:
    """The parent's handle on one worker subprocess."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile(mode="w+")
        environment = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(
            [package_root] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        environment.setdefault("KERAS_BACKEND", "tensorflow")
        code = "import sys; from minicnn.bench import _worker_main; _worker_main(sys.argv[1])"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(spec)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=environment)

    def request(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"command": command}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError(f"{self.name} worker exited (status {self.process.returncode}) "
                               f"during {command!r}:\n{self.stderr_tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name} worker failed in {command!r}: {answer['error']}\n"
                               f"{answer.get('traceback', '')}")
        return answer

    def stderr_tail(self, characters: int = 3000) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-characters:]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def _framework_available(name: str) -> str | None:
    """None when ``name`` can run here, else why not."""
    framework, _, backend = name.partition("-")
    if framework == "minicnn":
        from minicnn.backend import available_backends

        if backend == "reference":
            return "the reference backend is plain Python loops (an epoch would take days)"
        return None if backend in available_backends() else f"backend {backend!r} not available"
    if framework == "keras":
        missing = [m for m in ("keras", "tensorflow") if importlib.util.find_spec(m) is None]
        return f"not installed ({', '.join(missing)})" if missing else None
    if framework == "torch":
        return None if importlib.util.find_spec("torch") else "PyTorch is not installed"
    return f"unknown framework {name!r}"


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_end_to_end(frameworks: list[str] | None = None, images: int = FULL_EPOCH_IMAGES,
                   test_images: int = 10_000, rounds: int = 3, batch_size: int = BATCH_SIZE,
                   seed: int = 0, machine: dict[str, Any] | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Training epochs and predictions, alternated between frameworks.

    Args:
        frameworks: names from :data:`FRAMEWORKS` (default all; unavailable ones are
            skipped with a note).
        images: training images per epoch (60,000 for a real epoch; fewer for a quick
            run, whose times are also reported extrapolated to 60,000).
        test_images: images predicted (timed) and evaluated (accuracy).
        rounds: timed epochs (and predictions) per framework, after one warm-up each.

    Returns:
        ``{"machine", "settings", "results": [per framework], "notes"}``.
    """
    if machine is None:
        machine = describe_machine()
    frameworks = list(frameworks) if frameworks else list(FRAMEWORKS)
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    workers: list[tuple[_Worker, dict[str, Any]]] = []

    def fail(worker: _Worker, result: dict[str, Any], error: Exception) -> None:
        result["status"] = f"failed: {str(error).splitlines()[0]}"
        notes.append(f"{worker.name}: {error}")
        log(f"end-to-end: {worker.name} failed: {error}")
        worker.close()
        workers.remove((worker, result))

    try:
        for name in frameworks:
            result: dict[str, Any] = {"name": name, "status": "ok", "epoch_seconds": [],
                                      "predict_seconds": []}
            results.append(result)
            reason = _framework_available(name)
            if reason:
                result["status"] = f"skipped: {reason}"
                notes.append(f"{name}: skipped ({reason})")
                continue
            framework, _, backend = name.partition("-")
            spec = {"framework": framework, "backend": backend or None, "images": images,
                    "test_images": test_images, "batch_size": batch_size, "seed": seed,
                    "threads": usable_cores()}
            log(f"end-to-end: starting {name}")
            worker = _Worker(name, spec)
            workers.append((worker, result))
            try:
                result.update(worker.request("setup"))
            except RuntimeError as error:
                fail(worker, result, error)

        # Warm-up, one framework at a time: compilation, tracing, first allocations.
        for worker, result in list(workers):
            try:
                result["first_epoch_seconds"] = worker.request("train_epoch")["seconds"]
                result["first_predict_seconds"] = worker.request("predict")["seconds"]
                log(f"end-to-end: {worker.name} warm-up epoch "
                    f"{result['first_epoch_seconds']:.2f} s")
            except RuntimeError as error:
                fail(worker, result, error)

        # Timed rounds, alternating: each framework's epoch in turn, then predictions.
        for round_index in range(rounds):
            for kind in ("train_epoch", "predict"):
                for worker, result in list(workers):
                    try:
                        seconds = worker.request(kind)["seconds"]
                    except RuntimeError as error:
                        fail(worker, result, error)
                        continue
                    key = "epoch_seconds" if kind == "train_epoch" else "predict_seconds"
                    result[key].append(seconds)
                    log(f"end-to-end: round {round_index + 1}/{rounds} {worker.name} "
                        f"{kind.replace('_', ' ')} {seconds:.2f} s")

        for worker, result in list(workers):
            try:
                result.update(worker.request("evaluate"))
                result["epochs_trained"] = 1 + len(result["epoch_seconds"])
                result.update(worker.request("finish"))
            except RuntimeError as error:
                fail(worker, result, error)
    finally:
        for worker, _ in workers:
            worker.close()

    for result in results:
        if result["status"] != "ok":
            continue
        epoch = _spread(result["epoch_seconds"]) if result["epoch_seconds"] else None
        result["epoch"] = epoch
        if epoch:
            result["epoch_per_60k"] = {k: v * FULL_EPOCH_IMAGES / images for k, v in epoch.items()}
            result["warmup_extra_seconds"] = result["first_epoch_seconds"] - epoch["median"]
        if result["predict_seconds"]:
            predict = _spread(result["predict_seconds"])
            result["predict"] = predict
            result["images_per_second"] = {"median": test_images / predict["median"],
                                           "min": test_images / predict["max"],
                                           "max": test_images / predict["min"]}
    return {"machine": machine, "results": results, "notes": notes,
            "settings": {"images": images, "test_images": test_images, "rounds": rounds,
                         "batch_size": batch_size, "seed": seed, "frameworks": frameworks},
            "verdict": _verdict(results)}


def _verdict(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's three targets, from whatever was measured."""
    by_name = {r["name"]: r for r in results if r["status"] == "ok" and r.get("epoch")}
    verdict: dict[str, Any] = {}
    ours, keras = by_name.get("minicnn-numba"), by_name.get("keras")
    if ours and keras:
        epoch_ratio = ours["epoch"]["median"] / keras["epoch"]["median"]
        predict_ratio = ours["predict"]["median"] / keras["predict"]["median"]
        verdict["epoch_time_ratio_vs_keras"] = epoch_ratio
        verdict["epoch_target_met"] = epoch_ratio <= TARGET_EPOCH_RATIO
        verdict["predict_time_ratio_vs_keras"] = predict_ratio
        verdict["predict_target_met"] = predict_ratio <= TARGET_PREDICT_TIME_RATIO
        # The same medians of ours against Keras's fastest run: the stricter reading,
        # since Keras's epoch time varies by up to 2x between rounds on a small machine.
        verdict["epoch_time_ratio_vs_keras_fastest"] = (ours["epoch"]["median"]
                                                        / keras["epoch"]["min"])
        verdict["predict_time_ratio_vs_keras_fastest"] = (ours["predict"]["median"]
                                                          / keras["predict"]["min"])
    numpy_result = by_name.get("minicnn-numpy")
    if ours and numpy_result and "test_accuracy" in ours and "test_accuracy" in numpy_result:
        gap = abs(ours["test_accuracy"] - numpy_result["test_accuracy"]) * 100
        verdict["accuracy_gap_points"] = gap
        verdict["accuracy_target_met"] = gap <= TARGET_ACCURACY_GAP_POINTS
    return verdict


# ======================================================================================
# Report
# ======================================================================================

_PRETTY = {"minicnn-numba": "minicnn (numba)", "minicnn-numpy": "minicnn (numpy)",
           "minicnn-reference": "minicnn (reference)", "keras": "Keras", "torch": "PyTorch"}


def _pretty(name: str, versions: dict[str, Any]) -> str:
    if name == "keras" and versions.get("keras"):
        return f"Keras {versions['keras']} (TensorFlow {versions.get('tensorflow')})"
    if name == "torch" and versions.get("torch"):
        return f"PyTorch {versions['torch']}"
    return _PRETTY.get(name, name)


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _machine_lines(machine: dict[str, Any]) -> list[str]:
    versions = machine.get("versions", {})
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    sgemm = machine["sgemm"]
    load = machine.get("load_average")
    lines = [
        f"- CPU: {machine['cpu']} — {machine['cores']} usable cores "
        f"({machine['logical_cpus']} logical CPUs), SIMD: {', '.join(machine['simd']) or '?'}, "
        f"memory {machine.get('memory_gib')} GiB",
        f"- BLAS (NumPy): {machine['blas']}",
        f"- SGEMM measured in this run: **{sgemm['gflops']:.0f} GFLOP/s** "
        f"(np.dot, float32 {sgemm['size']}x{sgemm['size']}, best of {sgemm['repeats']}; "
        f"median {2 * sgemm['size']**3 / sgemm['median_seconds'] / 1e9:.0f})",
        f"- Software: Python {machine['python']}, {shown}; numba threads "
        f"{machine.get('numba_threads')}; {machine['platform']}",
    ]
    if load:
        warning = ""
        if load[0] > 0.5 * machine["cores"]:
            warning = " — **the machine was busy: these numbers are not reliable**"
        lines.append(f"- Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{warning}")
    return lines


def _kernel_section(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    machine = section["machine"]
    sgemm = machine["sgemm"]["gflops"]
    settings = section["settings"]
    lines = ["## Kernels: each layer of the MNIST convnet", "",
             f"Measured {section['date']} with `{section['command']}`.", ""]
    lines += _machine_lines(machine)
    lines += ["",
              f"Layer `forward(training=True)` and `backward` as `fit` calls them (fused "
              f"kernels and Python overhead included), on random inputs; median of "
              f"{settings['repeats']} calls after {settings['warmup']} warm-up calls. "
              f"GFLOP/s counts multiply-adds x 2 (pooling counts none: its GB/s column "
              f"is the input plus output arrays over the time). \"% SGEMM\" is GFLOP/s over "
              f"this run's {sgemm:.0f} GFLOP/s. conv1 computes no input gradient (as in "
              f"training); dense2's backward starts from the logits (softmax + "
              f"crossentropy fused, as in `fit`). The \"fused\" rows time a convolution "
              f"and the pooling after it run as one kernel, which is how `fit` runs them "
              f"where the backend can (numba: `minicnn/models/fusion.py`).", ""]
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    keys = list(dict.fromkeys((row["layer"], row["pass"]) for row in rows))
    by_key = {(row["backend"], row["layer"], row["pass"]): row for row in rows}
    # Side by side: median milliseconds per backend.
    header = ["layer", "pass", "shapes", "GFLOP"]
    for backend in backends:
        batch = next(row["batch"] for row in rows if row["backend"] == backend)
        header.append(f"{backend} ms" + (f" (batch {batch})" if batch != settings["batch"] else ""))
    table_rows = []
    for layer, pass_name in keys:
        first = next(by_key[(b, layer, pass_name)] for b in backends
                     if (b, layer, pass_name) in by_key)
        gflop = first["gflop"] * settings["batch"] / first["batch"]
        cells = [layer, pass_name, first["shapes"], _number(gflop or None, 4)]
        for backend in backends:
            row = by_key.get((backend, layer, pass_name))
            cells.append(_number(row["median_ms"], 3) if row else "—")
        table_rows.append(cells)
    lines += _table(header, table_rows, ["l", "l", "l"] + ["r"] * (len(header) - 3))
    for backend in backends:
        backend_rows = [row for row in rows if row["backend"] == backend]
        lines += ["", f"### {backend} (batch {backend_rows[0]['batch']})", ""]
        lines += _table(
            ["layer", "pass", "median ms", "min ms", "max ms", "GFLOP/s", "% SGEMM", "GB/s"],
            [[row["layer"], row["pass"], _number(row["median_ms"], 3), _number(row["min_ms"], 3),
              _number(row["max_ms"], 3), _number(row["gflops"], 1),
              _number(None if row["fraction_of_sgemm"] is None
                      else 100 * row["fraction_of_sgemm"], 1),
              _number(row["gb_per_s"], 1)] for row in backend_rows],
            ["l", "l"] + ["r"] * 6)
        # Layers fit runs as one fused kernel count once, by their fused rows.
        fused = {label for row in backend_rows if row["pass"].startswith("fused")
                 for label in row["layer"].split("+")}
        layer_sum = sum(row["median_ms"] for row in backend_rows
                        if (row["pass"] in ("forward", "backward")
                            and row["layer"] not in fused | {"predict batch"})
                        or row["pass"].startswith("fused"))
        step = next((row for row in backend_rows if row["layer"] == "train step"), None)
        if step:
            counted = (" (the fused pairs in place of their two layers, as fit runs them)"
                       if fused else "")
            lines += ["", f"Whole training step {step['median_ms']:.2f} ms; the sum of the "
                          f"layers' forward and backward medians above{counted} "
                          f"{layer_sum:.2f} ms; the difference "
                          f"({step['median_ms'] - layer_sum:+.2f} ms) is the loss, the RMSprop "
                          f"update, the accuracy metric and Python between layers, plus "
                          f"whatever the layers lose to cold caches inside a step."]
    for note in section.get("notes", []):
        lines += ["", f"Note: {note}"]
    return lines


def _headline_rows(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    versions = section["machine"].get("versions", {})
    images = section["settings"]["images"]
    extrapolated = images != FULL_EPOCH_IMAGES
    results = section["results"]
    keras = next((r for r in results if r["name"] == "keras" and r["status"] == "ok"
                  and r.get("epoch")), None)
    epoch_header = ("s/epoch, 60k images (extrapolated from "
                    f"{images:,}), median [min–max]" if extrapolated
                    else "s/epoch (60,000 images), median [min–max]")
    header = ["framework", epoch_header, "time ÷ Keras", "predict images/s, median [min–max]",
              "images/s ÷ Keras", "test accuracy", "peak RSS MiB"]
    rows = []
    for result in results:
        name = _pretty(result["name"], versions)
        if result["status"] != "ok" or not result.get("epoch"):
            rows.append([name, result["status"], "", "", "", "", ""])
            continue
        epoch = result["epoch_per_60k"]
        speed = result["images_per_second"]
        epoch_ratio = predict_ratio = "—"
        if keras:
            epoch_ratio = f"{result['epoch']['median'] / keras['epoch']['median']:.2f}"
            predict_ratio = f"{speed['median'] / keras['images_per_second']['median']:.2f}"
        rows.append([
            name, f"{epoch['median']:.2f} [{epoch['min']:.2f}–{epoch['max']:.2f}]", epoch_ratio,
            f"{speed['median']:,.0f} [{speed['min']:,.0f}–{speed['max']:,.0f}]", predict_ratio,
            f"{100 * result['test_accuracy']:.2f} %" if "test_accuracy" in result else "—",
            f"{result['peak_rss_mib']:.0f}" if "peak_rss_mib" in result else "—"])
    return header, rows


def _end_to_end_section(section: dict[str, Any]) -> list[str]:
    settings = section["settings"]
    machine = section["machine"]
    versions = machine.get("versions", {})
    images = settings["images"]
    lines = ["## End to end: MNIST convnet, batch "
             f"{settings['batch_size']}, RMSprop", "",
             f"Measured {section['date']} with `{section['command']}`.", ""]
    lines += _machine_lines(machine)
    header, rows = _headline_rows(section)
    lines += ["", "### Headline", ""]
    lines += _table(header, rows)
    lines += ["",
              f"Each framework ran in its own subprocess with the same {images:,} training "
              f"and {settings['test_images']:,} test images and the same starting weights; "
              f"after one warm-up epoch and prediction each, {settings['rounds']} timed "
              f"rounds alternated between them (one epoch each, then one prediction each). "
              f"An epoch is `fit(epochs=1, batch_size={settings['batch_size']}, shuffle=True, "
              f"verbose=0)` (PyTorch: the equivalent loop with loss and accuracy per batch); "
              f"prediction is `predict(batch_size={settings['batch_size']})` of the test "
              f"images. For epochs the ratio to Keras is of times (below 1 is faster), for "
              f"prediction of throughputs (above 1 is faster). Test accuracy is after "
              f"the same number of epochs for every framework. Peak RSS includes the "
              f"framework, the data (float32) and the model."]
    if images != FULL_EPOCH_IMAGES:
        lines += ["", f"**Quick run:** epochs of {images:,} images; the per-60k column "
                      f"multiplies by {FULL_EPOCH_IMAGES / images:.2f}, which ignores "
                      f"per-epoch fixed costs."]
    lines += ["", "### Details", ""]
    detail_rows = []
    for result in section["results"]:
        if result["status"] != "ok" or not result.get("epoch"):
            continue
        epoch, predict = result["epoch"], result["predict"]
        detail_rows.append([
            _pretty(result["name"], versions),
            f"{epoch['median']:.3f} [{epoch['min']:.3f}–{epoch['max']:.3f}]",
            f"{result['first_epoch_seconds']:.3f}", f"{result['warmup_extra_seconds']:+.3f}",
            f"{predict['median']:.3f} [{predict['min']:.3f}–{predict['max']:.3f}]",
            f"{result['first_predict_seconds']:.3f}", f"{result['setup_seconds']:.2f}",
            str(result.get("epochs_trained", "—")), result.get("threads", "")])
    lines += _table(["framework", f"epoch s ({images:,} images)", "first epoch s",
                     "first − median", "predict s", "first predict s", "start-up s",
                     "epochs trained", "threads"], detail_rows,
                    ["l"] + ["r"] * 7 + ["l"])
    lines += ["", "\"first epoch\" includes compilation (Numba, loaded from its on-disk "
                  "cache when warm), graph tracing (TensorFlow) and first allocations; "
                  "\"start-up\" is import, data loading and model building."]
    verdict = section.get("verdict", {})
    if verdict:
        lines += ["", "### The issue's targets", ""]
        if "epoch_time_ratio_vs_keras" in verdict:
            lines.append(f"- minicnn (numba) epoch time / Keras: "
                         f"{verdict['epoch_time_ratio_vs_keras']:.2f} (target ≤ "
                         f"{TARGET_EPOCH_RATIO}): "
                         f"{'met' if verdict['epoch_target_met'] else 'NOT met'}")
            lines.append(f"- minicnn (numba) prediction time / Keras: "
                         f"{verdict['predict_time_ratio_vs_keras']:.2f} (target ≤ "
                         f"{TARGET_PREDICT_TIME_RATIO}): "
                         f"{'met' if verdict['predict_target_met'] else 'NOT met'}")
            if "epoch_time_ratio_vs_keras_fastest" in verdict:
                lines.append(f"- the same medians of minicnn against Keras's fastest round "
                             f"(the stricter reading): epoch "
                             f"{verdict['epoch_time_ratio_vs_keras_fastest']:.2f}, prediction "
                             f"{verdict['predict_time_ratio_vs_keras_fastest']:.2f}")
        if "accuracy_gap_points" in verdict:
            accuracies = {r["name"]: r["test_accuracy"] for r in section["results"]
                          if "test_accuracy" in r}
            lines.append(f"- test accuracy numba {100 * accuracies['minicnn-numba']:.2f} % vs "
                         f"numpy {100 * accuracies['minicnn-numpy']:.2f} % (same seed): gap "
                         f"{verdict['accuracy_gap_points']:.2f} points (target ≤ "
                         f"{TARGET_ACCURACY_GAP_POINTS}): "
                         f"{'met' if verdict['accuracy_target_met'] else 'NOT met'}")
        if images != FULL_EPOCH_IMAGES:
            lines.append("- (a quick run: the targets are judged on full 60,000-image epochs)")
    floor = section.get("gemm_floor")
    if floor:
        lines += ["", f"GEMM floor: one training step is {floor['step_gflop']:.3f} GFLOP "
                      f"(batch {settings['batch_size']}), {floor['epoch_tflop']:.3f} TFLOP per "
                      f"60,000-image epoch; at this run's SGEMM rate that is "
                      f"**{floor['epoch_seconds']:.2f} s per epoch**."]
    for note in section.get("notes", []):
        lines += ["", f"Note: {note.splitlines()[0]}"]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """``RESULTS.md`` from the stored sections (``"end_to_end"``, ``"kernels"``)."""
    lines = ["# minicnn benchmarks", "",
             "Written by `minicnn bench` (code: `minicnn/bench.py`; scripts: `python -m "
             "benchmarks.run_all`). Each section records the exact command, the date and "
             "the machine it was measured on; `minicnn bench all` regenerates both.", ""]
    if results.get("end_to_end"):
        lines += _end_to_end_section(results["end_to_end"]) + [""]
    if results.get("kernels"):
        lines += _kernel_section(results["kernels"]) + [""]
    if not results.get("end_to_end") and not results.get("kernels"):
        lines += ["(no measurements yet)", ""]
    return "\n".join(lines)


def write_results(out: str | os.PathLike, sections: dict[str, Any]) -> Path:
    """Store ``sections`` in ``OUT.json`` (keeping the other sections already there) and
    render ``OUT`` (Markdown); both written atomically."""
    from minicnn.io import atomic_write

    out = Path(out)
    json_path = out.with_suffix(".json")
    stored: dict[str, Any] = {}
    if json_path.exists():
        try:
            stored = json.loads(json_path.read_text())
        except (OSError, ValueError):
            stored = {}
    stored.update(sections)
    json_text = json.dumps(stored, indent=1) + "\n"
    atomic_write(json_path, lambda handle: handle.write(json_text.encode()))
    markdown = render_markdown(stored)
    atomic_write(out, lambda handle: handle.write(markdown.encode()))
    return out


# ======================================================================================
# Command line
# ======================================================================================

_QUICK = {"repeats": 3, "warmup": 1, "images": 1024, "test_images": 1000, "rounds": 1,
          "sgemm_size": 1024}
_FULL = {"repeats": 20, "warmup": 2, "images": FULL_EPOCH_IMAGES, "test_images": 10_000,
         "rounds": 3, "sgemm_size": 2048}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``minicnn bench`` (also ``python -m minicnn.bench``)."""
    parser.add_argument("what", nargs="?", choices=["kernels", "end-to-end", "all"],
                        default="all", help="what to measure (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 repeats per kernel, no reference backend, "
                             "epochs of 1,024 images, 1 timed round")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"Markdown report (default {DEFAULT_OUT}; JSON beside it)")
    parser.add_argument("--backends", nargs="+", choices=["numba", "numpy", "reference"],
                        help="kernel backends (default: all available; --quick drops "
                             "reference)")
    parser.add_argument("--frameworks", nargs="+", choices=list(FRAMEWORKS),
                        help="end-to-end entries (default: all)")
    parser.add_argument("--images", type=int, help="training images per epoch "
                        "(default 60000; times are also given per 60k)")
    parser.add_argument("--test-images", type=int, help="images predicted and evaluated "
                        "(default 10000)")
    parser.add_argument("--rounds", type=int, help="timed epochs per framework after the "
                        "warm-up (default 3)")
    parser.add_argument("--repeats", type=int, help="timed calls per kernel (default 20)")
    parser.add_argument("--warmup", type=int, help="untimed calls per kernel (default 2)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--sgemm-size", type=int, help="SGEMM matrix size (default 2048)")
    parser.add_argument("--seed", type=int, default=0)


def _resolved(arguments: argparse.Namespace) -> dict[str, Any]:
    defaults = _QUICK if arguments.quick else _FULL
    settings = {key: getattr(arguments, key) if getattr(arguments, key) is not None else value
                for key, value in defaults.items()}
    for key, value in settings.items():
        if value < (0 if key == "warmup" else 1):
            raise ValueError(f"--{key.replace('_', '-')} must be positive, received {value}")
    if arguments.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, received {arguments.batch_size}")
    backends = arguments.backends
    if backends is None:
        from minicnn.backend import available_backends

        backends = [b for b in available_backends() if not (arguments.quick and b == "reference")]
    settings["backends"] = backends
    settings["frameworks"] = arguments.frameworks or list(FRAMEWORKS)
    return settings


def _command_line(arguments: argparse.Namespace, settings: dict[str, Any], what: str) -> str:
    """The exact command that reproduces this section, every setting spelled out."""
    parts = ["minicnn", "bench", what]
    if what == "kernels":
        parts += ["--backends", *settings["backends"], "--repeats", str(settings["repeats"]),
                  "--warmup", str(settings["warmup"])]
    else:
        parts += ["--frameworks", *settings["frameworks"], "--images", str(settings["images"]),
                  "--test-images", str(settings["test_images"]),
                  "--rounds", str(settings["rounds"])]
    parts += ["--batch-size", str(arguments.batch_size), "--sgemm-size",
              str(settings["sgemm_size"]), "--seed", str(arguments.seed),
              "--out", arguments.out]
    return shlex.join(parts)


def run_command(arguments: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    """Run what ``arguments`` ask for, write the report, print the headline."""
    settings = _resolved(arguments)
    log(f"machine: measuring SGEMM ({settings['sgemm_size']}^2 float32)")
    machine = describe_machine(settings["sgemm_size"])
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, SGEMM "
        f"{machine['sgemm']['gflops']:.0f} GFLOP/s, load {machine['load_average']}")
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    sections: dict[str, Any] = {}
    if arguments.what in ("kernels", "all"):
        kernels = run_kernel_benchmarks(settings["backends"], batch=arguments.batch_size,
                                        repeats=settings["repeats"], warmup=settings["warmup"],
                                        seed=arguments.seed, machine=machine, log=log)
        kernels.update(date=date, command=_command_line(arguments, settings, "kernels"))
        sections["kernels"] = kernels
    if arguments.what in ("end-to-end", "all"):
        end_to_end = run_end_to_end(settings["frameworks"], images=settings["images"],
                                    test_images=settings["test_images"],
                                    rounds=settings["rounds"], batch_size=arguments.batch_size,
                                    seed=arguments.seed, machine=machine, log=log)
        end_to_end.update(date=date, command=_command_line(arguments, settings, "end-to-end"),
                          gemm_floor=_gemm_floor(arguments.batch_size,
                                                 machine["sgemm"]["gflops"]))
        sections["end_to_end"] = end_to_end
    path = write_results(arguments.out, sections)
    if "end_to_end" in sections:
        header, rows = _headline_rows(sections["end_to_end"])
        log("\n".join([""] + _table(header, rows)))
    if "kernels" in sections:
        log("")
        for row in sections["kernels"]["rows"]:
            fraction = row["fraction_of_sgemm"]
            log(f"  {row['backend']:>9} {row['layer']:>13} {row['pass']:>8} "
                f"{row['median_ms']:9.3f} ms  "
                + (f"{row['gflops']:6.1f} GFLOP/s {100 * fraction:5.1f} % SGEMM"
                   if row["gflops"] else ""))
    log(f"\nwrote {path} and {path.with_suffix('.json')}")
    return 0


def _gemm_floor(batch_size: int, sgemm_gflops: float) -> dict[str, float]:
    from minicnn.applications.mnist_models import mnist_convnet

    step = training_step_flops(mnist_convnet(), batch_size)
    steps = -(-FULL_EPOCH_IMAGES // batch_size)
    return {"step_gflop": step / 1e9, "epoch_tflop": step * steps / 1e12,
            "epoch_seconds": step * steps / (sgemm_gflops * 1e9)}


def main(argv: list[str] | None = None) -> int:
    """``python -m minicnn.bench [kernels|end-to-end|all] [--quick] [--out ...]``."""
    parser = argparse.ArgumentParser(prog="minicnn bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    arguments = parser.parse_args(argv)
    try:
        return run_command(arguments)
    except ValueError as error:
        print(f"minicnn bench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

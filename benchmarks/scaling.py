"""How cost grows: one 3x3 convolution, forward and backward, over size, channels and batch.

``python -m benchmarks scaling`` times one 'same' 3x3 convolution with bias and ReLU,
forward and backward with the input gradient (what a middle layer of a convnet costs
in training), in minicnn (numba kernels), Keras (a ``Conv2D`` layer under
``tf.GradientTape`` in a ``tf.function``) and PyTorch, over three sweeps from a base
point: image size (28 -> 224), channels (C = F, 32 -> 512) and batch (1 -> 128).  Each
framework runs in a subprocess of its own.  The report gives time per image against
the layer's multiply-adds per image, with the GEMM floor (3 GEMMs of that many
multiply-adds at the SGEMM rate), and draws it (``docs/images/scaling.png``): where
the points sit below the line, Winograd's fewer multiplications win; where they sit
far above it, the layer is too small for its GEMMs or bound by memory.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.machine import usable_cores
from benchmarks.workers import REPOSITORY_ROOT, framework_available

__all__ = ["FRAMEWORKS", "sweep_points", "run_scaling", "plot_scaling", "PLOT_PATH"]

FRAMEWORKS = ("minicnn-numba", "keras", "torch")
PLOT_PATH = "docs/images/scaling.png"
BASE = {"size": (8, 56, 64), "channels": (8, 28, 64), "batch": (8, 56, 64)}
"""Each sweep's fixed point: (batch, image size, channels)."""
SWEEPS = {"size": (28, 56, 112, 224), "channels": (32, 64, 128, 256, 512),
          "batch": (1, 8, 32, 128)}


def sweep_points(quick: bool = False) -> list[dict[str, Any]]:
    """``[{"sweep", "shape": (N, H, W, C, F), "macs_per_image"}]`` for the three sweeps."""
    points = []
    for sweep, values in SWEEPS.items():
        for value in (values[:2] if quick else values):
            N, size, channels = BASE[sweep]
            if sweep == "size":
                size = value
            elif sweep == "channels":
                channels = value
            else:
                N = value
            points.append({"sweep": sweep, "shape": (N, size, size, channels, channels),
                           "macs_per_image": size * size * channels * channels * 9})
    return points


def _timer(framework: str, shape) -> Callable[[], None]:
    """A function running one forward + backward of the layer in ``framework``."""
    import numpy as np

    N, H, W, C, F = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, C, F)) * (2 / (9 * C)) ** 0.5).astype(np.float32)
    bias = np.zeros(F, dtype=np.float32)
    dy = rng.standard_normal((N, H, W, F)).astype(np.float32)
    if framework == "minicnn-numba":
        from minicnn.kernels import numba as kernels

        pads = ((1, 1), (1, 1))

        def run() -> None:
            _, cache = kernels.conv2d_bias_relu_forward(x, kernel, bias, (1, 1), pads)
            kernels.conv2d_backward(dy, cache, True)
        return run
    if framework == "keras":
        from minicnn.interop.keras import import_keras

        keras = import_keras()
        import tensorflow as tf

        layer = keras.layers.Conv2D(F, 3, padding="same", activation="relu")
        xt, dyt = tf.constant(x), tf.constant(dy)
        layer.build(x.shape)

        @tf.function
        def step(inputs, upstream):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs)
            return tape.gradient(outputs, [inputs] + layer.trainable_weights,
                                 output_gradients=upstream)

        def run() -> None:
            for gradient in step(xt, dyt):
                gradient.numpy()   # wait for the values
        return run
    import torch

    torch.set_num_threads(usable_cores())
    convolution = torch.nn.Conv2d(C, F, 3, padding=1)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

    def run() -> None:
        xt.grad = None
        convolution.zero_grad(set_to_none=True)
        torch.relu(convolution(xt)).backward(dyt)
    return run


def worker(framework: str, points: list[dict[str, Any]], repeats: int) -> list[float | None]:
    """Seconds per call (median) of each point in ``framework``, in this process."""
    seconds: list[float | None] = []
    for point in points:
        run = _timer(framework, tuple(point["shape"]))
        run()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        seconds.append(statistics.median(times))
    return seconds


def run_scaling(machine: dict[str, Any], frameworks: list[str] | None = None,
                repeats: int = 3, quick: bool = False,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every point in every framework (a subprocess each); the ``"scaling"`` section."""
    frameworks = list(frameworks or FRAMEWORKS)
    points = sweep_points(quick)
    sgemm = machine["sgemm"]["gflops"]
    notes = []
    for point in points:
        point["ms_per_image"] = {}
        point["floor_ms_per_image"] = 3 * 2 * point["macs_per_image"] / (sgemm * 1e9) * 1e3
    for framework in frameworks:
        reason = framework_available(framework)
        if reason:
            notes.append(f"{framework}: skipped ({reason})")
            continue
        log(f"scaling: {framework}, {len(points)} points")
        environment = dict(os.environ, PYTHONPATH=str(REPOSITORY_ROOT),
                           TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
        code = ("import json, sys; from benchmarks.scaling import worker; "
                "print(json.dumps(worker(sys.argv[1], json.loads(sys.argv[2]), "
                "int(sys.argv[3]))))")
        finished = subprocess.run([sys.executable, "-c", code, framework, json.dumps(points),
                                   str(repeats)], capture_output=True, text=True,
                                  env=environment)
        if finished.returncode != 0:
            notes.append(f"{framework}: failed: {finished.stderr.strip()[-500:]}")
            continue
        seconds = json.loads(finished.stdout.strip().splitlines()[-1])
        for point, value in zip(points, seconds):
            point["ms_per_image"][framework] = value * 1e3 / point["shape"][0]
    return {"machine": machine, "points": points, "notes": notes, "plot_link": "../" + PLOT_PATH,
            "settings": {"frameworks": frameworks, "repeats": repeats, "quick": quick,
                         "base": "; ".join(f"{k}: batch {v[0]}, {v[1]}×{v[1]}, {v[2]} channels"
                                           for k, v in BASE.items())}}


def plot_scaling(section: dict[str, Any], path: str | os.PathLike = PLOT_PATH) -> Path:
    """Time per image against multiply-adds per image, one colour per framework, one
    marker per sweep, the GEMM floor as a line; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minicnn.files import atomic_write

    colours = {"minicnn-numba": "tab:red", "keras": "tab:blue", "torch": "tab:orange"}
    names = {"minicnn-numba": "minicnn (numba)", "keras": "Keras", "torch": "PyTorch"}
    markers = {"size": "o", "channels": "s", "batch": "^"}
    figure, axes = plt.subplots(figsize=(8, 5.5))
    for framework in section["settings"]["frameworks"]:
        for sweep, marker in markers.items():
            points = sorted((p for p in section["points"] if p["sweep"] == sweep
                             and p["ms_per_image"].get(framework)),
                            key=lambda p: (p["macs_per_image"], p["shape"][0]))
            if points:
                axes.plot([p["macs_per_image"] for p in points],
                          [p["ms_per_image"][framework] for p in points], marker=marker,
                          color=colours.get(framework), linestyle="-" if sweep != "batch" else ":",
                          label=f"{names.get(framework, framework)}, {sweep}")
    macs = sorted({p["macs_per_image"] for p in section["points"]})
    sgemm = section["machine"]["sgemm"]["gflops"]
    axes.plot(macs, [6 * m / (sgemm * 1e9) * 1e3 for m in macs], color="black",
              linestyle="--", label=f"GEMM floor (3 GEMMs at {sgemm:.0f} GFLOP/s)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("multiply-adds per image (one 3×3 'same' convolution)")
    axes.set_ylabel("ms per image, forward + backward")
    axes.set_title("One 3×3 convolution: time per image against work")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda handle: figure.savefig(handle, format="png", dpi=110))
    plt.close(figure)
    return target

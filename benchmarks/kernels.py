"""Kernels: each step of the MNIST convnet's training step, on every backend, for the report.

The timing itself is the engine's per-layer profiler (:mod:`minicnn.profiler`, also
``minicnn bench layers``): each step of ``model.plan_steps`` forward and backward as
``fit`` runs it, then a whole ``train_on_batch`` and a ``predict_on_batch``.  This
module runs it on each backend and turns its rows into the report's: GFLOP/s
(multiply-adds x 2, :mod:`minicnn.flops`), that rate as a fraction of the SGEMM rate
measured in the same run, and GB/s of the arrays read and written.  The reference
backend is plain Python loops: it runs on a batch of one, once, without warm-up.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from benchmarks.machine import describe_machine

__all__ = ["REFERENCE_BATCH", "run_kernel_benchmarks", "report_rows"]

MODEL_NAME = "mnist-convnet"
REFERENCE_BATCH = 1


def _shape_text(shape: Iterable[int]) -> str:
    from minicnn.shapes import format_shape

    return format_shape(tuple(shape))


def _layer_description(layer, input_shape: tuple) -> str:
    """What a layer computes, in shapes: ``(N, H, W, C)x(KH, KW, C, F)`` for a Conv2D."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        return f"{_shape_text(input_shape)}x{_shape_text(layer.kernel.shape)}"
    if kind == "Dense":
        return f"{input_shape[-1]}->{layer.units} ({layer.activation.name})"
    if kind.endswith("Pooling2D"):
        return f"{_shape_text(input_shape)} {layer.pool_size[0]}x{layer.pool_size[1]}"
    return _shape_text(input_shape)


def _step_description(layers: list, input_shape: tuple) -> str:
    """The first layer's description, then what the fused layers after it add."""
    parts = [_layer_description(layers[0], tuple(input_shape))]
    for layer in layers[1:]:
        kind = type(layer).__name__
        if kind.endswith("Pooling2D"):
            pooling = "max" if kind.startswith("Max") else "average"
            parts.append(f"{layer.pool_size[0]}x{layer.pool_size[1]} {pooling} pool")
        else:
            parts.append(kind)
    return " + ".join(parts)


def report_rows(profile: dict[str, Any], model, sgemm_gflops: float) -> list[dict[str, Any]]:
    """The report's rows from :func:`minicnn.profiler.profile_model`'s result.

    Each row: ``backend, layer, shapes, pass, batch, repeats, median_ms, min_ms, max_ms,
    gflop, gflops, fraction_of_sgemm, gb_per_s``; the whole-step rows are called
    ``train step`` (pass ``step``) and ``predict batch`` (pass ``forward``).
    """
    by_name = {layer.name: layer for layer in model.layers}
    rows = []
    for row in profile["rows"]:
        median = row["median_ms"] / 1e3
        if row["pass"] == "train_on_batch":
            label, pass_name, shapes = ("train step", "step",
                                        "train_on_batch (all layers, loss, RMSprop)")
        elif row["pass"] == "predict_on_batch":
            label, pass_name, shapes = ("predict batch", "forward",
                                        "predict_on_batch (forward)")
        else:
            label, pass_name = row["step"], row["pass"]
            input_shape = row["input_shape"] if pass_name == "forward" else row["output_shape"]
            shapes = _step_description([by_name[name] for name in row["layers"]],
                                       tuple(input_shape))
        gflops = row["flops"] / median / 1e9 if row["flops"] and median > 0 else None
        rows.append({
            "backend": profile["backend"], "layer": label, "shapes": shapes,
            "pass": pass_name, "batch": profile["batch_size"], "repeats": row["repeats"],
            "median_ms": row["median_ms"], "min_ms": row["min_ms"], "max_ms": row["max_ms"],
            "gflop": row["flops"] / 1e9, "gflops": gflops,
            "fraction_of_sgemm": gflops / sgemm_gflops if gflops and sgemm_gflops else None,
            "gb_per_s": row["bytes"] / median / 1e9 if row["bytes"] and median > 0 else None,
        })
    return rows


def _profile_backend(backend: str, batch: int, repeats: int, warmup: int, seed: int,
                     steps: list[str] | None, whole_step: bool, sgemm_gflops: float
                     ) -> list[dict[str, Any]]:
    import minicnn
    from minicnn.applications.registry import build_model
    from minicnn.backend import using_backend
    from minicnn.naming import clear_session
    from minicnn.profiler import profile_model

    with using_backend(backend):
        clear_session()  # the same step names (conv2d, ...) on every backend
        minicnn.set_random_seed(seed)
        model = build_model(MODEL_NAME)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                      metrics=["accuracy"])
        profile = profile_model(model, batch, repeats=repeats, warmup=warmup, seed=seed,
                                only=steps, whole_step=whole_step)
    return report_rows(profile, model, sgemm_gflops)


def run_kernel_benchmarks(backends: list[str] | None = None, batch: int = 64,
                          repeats: int = 20, warmup: int = 2, seed: int = 0,
                          machine: dict[str, Any] | None = None,
                          reference_batch: int = REFERENCE_BATCH,
                          steps: list[str] | None = None,
                          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Each step of the MNIST convnet, forward and backward, on each backend.

    Args:
        backends: default every backend that imports here (reference included; it
            runs on ``reference_batch`` images, once, without warm-up).
        batch: images per call for the compiled backends (64, as training).
        repeats, warmup: timed calls (median reported) and untimed calls before them.
        machine: from :func:`benchmarks.machine.describe_machine` (measured now when None).
        steps: only the steps with these names (``conv2d``, ``max_pooling2d``, ...,
            ``dense_1``; a fused step is ``conv2d + max_pooling2d``); the whole-step
            rows are then skipped.

    Returns:
        ``{"machine", "rows", "notes", "settings"}``; one row per (backend, step, pass)
        plus, per compiled backend, a whole training step and a prediction batch.
    """
    from minicnn.backend import available_backends

    if machine is None:
        machine = describe_machine()
    sgemm = machine["sgemm"]["gflops"]
    available = available_backends()
    backends = list(backends) if backends else available
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for backend in backends:
        if backend not in available:
            notes.append(f"{backend}: not available here (skipped)")
            continue
        is_reference = backend == "reference"
        backend_batch = reference_batch if is_reference else batch
        log(f"kernels: {backend} (batch {backend_batch})")
        rows += _profile_backend(backend, backend_batch, 1 if is_reference else repeats,
                                 0 if is_reference else warmup, seed, steps,
                                 not is_reference, sgemm)
        if is_reference:
            notes.append(f"reference: plain Python loops, timed once on a batch of "
                         f"{backend_batch} (not {batch}); no whole-step rows")
    return {"machine": machine, "rows": rows, "notes": notes,
            "settings": {"batch": batch, "repeats": repeats, "warmup": warmup, "seed": seed,
                         "reference_batch": reference_batch, "backends": backends,
                         "timed_by": "minicnn.profiler (the steps of model.plan_steps)"}}

"""Where a training step's time goes: each step of a model timed forward and backward.

``minicnn bench layers`` prints what :func:`profile_model` measures::

    with using_backend("numba"):
        model = build_model("mnist-convnet")
        profile = profile_model(model, batch_size=64, repeats=20, warmup=2)
    print(format_profile(profile))

The model is timed the way ``fit`` runs it: through the steps of
``model.plan_steps(input_shape, training=True)`` (one per layer, or one for a
convolution and the pooling after it where the backend fuses them), each called on
random data of the right shape.  For every step it reports the forward pass and the
backward pass (with the input gradient only where a training step computes one; the
last step starts from the logits where the loss does, and steps below the first
trainable layer are not timed backward because training never runs them).  Then it
times one whole ``train_on_batch`` and one ``predict_on_batch``: against the sum of
the steps, the whole step shows the loss, the optimizer update and the Python between
steps.

Each time is the median (with min and max) of ``repeats`` calls after ``warmup``
untimed ones, with the garbage collector paused.  FLOPs follow :mod:`minicnn.flops`.
The cross-framework comparison (Keras, PyTorch, whole epochs) lives outside the
engine, in the repository's ``benchmarks/`` (``python -m benchmarks all``).
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any, Callable, Iterable

import numpy as np

from minicnn.backend import get_backend_name
from minicnn.flops import (computing_layers, first_trainable_index, layer_flops, predict_flops,
                           training_step_flops)
from minicnn.shapes import format_shape

__all__ = ["time_calls", "profile_model", "format_profile"]


def time_calls(function: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``function``, after ``warmup`` untimed
    calls, with the garbage collector paused (a collection would land in one call)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, received repeats={repeats}, "
                         f"warmup={warmup}")
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


def _row(step: str, layers: Iterable, pass_name: str, input_shape: tuple, output_shape: tuple,
         flops: int, moved_bytes: int, times: list[float]) -> dict[str, Any]:
    return {"step": step, "layers": [layer.name for layer in layers],
            "kinds": [type(layer).__name__ for layer in layers], "pass": pass_name,
            "input_shape": list(input_shape), "output_shape": list(output_shape),
            "flops": int(flops), "bytes": int(moved_bytes),
            "median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
            "max_ms": max(times) * 1e3, "repeats": len(times)}


def _default_loss(model) -> str:
    """A loss that fits the model's output, for profiling an uncompiled model."""
    activation = getattr(getattr(model.layers[-1], "activation", None), "name", None)
    if activation == "softmax":
        return "categorical_crossentropy"
    if activation == "sigmoid":
        return "binary_crossentropy"
    return "mean_squared_error"


def _random_targets(loss_name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Labels of ``shape`` that ``loss_name`` accepts: one-hot rows, 0/1, or values."""
    if loss_name == "categorical_crossentropy":
        return np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
    if loss_name == "sparse_categorical_crossentropy":
        return rng.integers(0, shape[-1], shape[:-1])
    if loss_name == "binary_crossentropy":
        return rng.integers(0, 2, shape).astype(np.float32)
    return rng.standard_normal(shape, dtype=np.float32)


def _starts_from_logits(model, step) -> bool:
    """Whether ``fit`` hands ``step`` (the last one) d loss / d logits, not d loss / d y."""
    activation = getattr(getattr(step.layers[-1], "activation", None), "name", None)
    return (len(step.layers) == 1 and activation is not None
            and model.loss.uses_cached_logits(activation))


def profile_model(model, batch_size: int = 64, repeats: int = 20, warmup: int = 2,
                  seed: int = 0, only: Iterable[str] | None = None,
                  whole_step: bool = True) -> dict[str, Any]:
    """Time every step of ``model``'s training step on the active backend.

    Args:
        model: a built ``Sequential``; compiled with RMSprop and a loss that fits its
            output when it is not compiled.  Its weights change (``train_on_batch`` runs
            when ``whole_step``): profile a fresh model.
        batch_size: images per call, ``N``; inputs are uniform in [0, 1), ``(N, ...)`` as
            ``model.input_shape``; output gradients are normal with scale 0.01.
        repeats, warmup: timed calls (median, min, max reported) and untimed calls.
        seed: the random data's seed.
        only: time only the steps with these names (others still run forward, once,
            to give the next step its input); whole-step rows are then left out.
        whole_step: also time ``train_on_batch`` and ``predict_on_batch``.

    Returns:
        ``{"model", "backend", "batch_size", "repeats", "warmup", "seed", "rows"}``;
        each row ``{"step", "layers", "kinds", "pass", "input_shape", "output_shape",
        "flops", "bytes", "median_ms", "min_ms", "max_ms", "repeats"}`` with ``pass``
        one of "forward", "backward", "train_on_batch", "predict_on_batch"; ``bytes`` is
        the input plus output arrays of the call (0 for the whole-step rows).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, received {batch_size}")
    if model.input_shape is None:
        raise ValueError(f"model {model.name!r} is not built: its input shape is unknown")
    if model.optimizer is None or model.loss is None:
        model.compile(optimizer="rmsprop", loss=_default_loss(model))
    only = set(only) if only is not None else None
    rng = np.random.default_rng(seed)
    dtype = computing_layers(model)[0].dtype
    x = rng.random((batch_size,) + tuple(model.input_shape[1:])).astype(dtype)

    steps = model.plan_steps(x.shape, training=True)
    layers = computing_layers(model)
    first = first_trainable_index(layers)
    position = {id(layer): index for index, layer in enumerate(layers)}
    rows: list[dict[str, Any]] = []
    activations = x
    for number, step in enumerate(steps):
        step_input = activations
        activations = step.forward(step_input, True)
        if only is not None and step.name not in only:
            continue
        lowest = position[id(step.layers[0])]
        runs_backward = first is not None and position[id(step.layers[-1])] >= first
        need_input_grad = first is not None and lowest > first
        forward_flops = backward_flops = 0
        shape = step_input.shape
        for index, layer in enumerate(step.layers, start=lowest):
            forward, backward = layer_flops(layer, shape, first is not None and index > first)
            forward_flops += forward
            backward_flops += backward if first is not None and index >= first else 0
            shape = layer.compute_output_shape(shape)

        output = activations
        forward_times = time_calls(lambda: step.forward(step_input, True), repeats, warmup)
        rows.append(_row(step.name, step.layers, "forward", step_input.shape, output.shape,
                         forward_flops, step_input.nbytes + output.nbytes, forward_times))
        if not runs_backward:
            continue
        # The timed calls all saw ``step_input``: the step's state is for this input.
        dy = (rng.standard_normal(output.shape) * 0.01).astype(output.dtype)
        if number == len(steps) - 1 and _starts_from_logits(model, step):
            def backward():
                return step.backward(dy, need_input_grad, at_preactivation=True)
        else:
            def backward():
                return step.backward(dy, need_input_grad)
        backward_times = time_calls(backward, repeats, warmup)
        dx = backward()
        rows.append(_row(step.name, step.layers, "backward", output.shape, step_input.shape,
                         backward_flops, dy.nbytes + (dx.nbytes if dx is not None else 0),
                         backward_times))

    if whole_step and only is None:
        y = _random_targets(model.loss.function_name, activations.shape, rng)
        step_times = time_calls(lambda: model.train_on_batch(x, y), repeats, warmup)
        rows.append(_row("train_on_batch", model.layers, "train_on_batch", x.shape,
                         activations.shape, training_step_flops(model, batch_size), 0,
                         step_times))
        predict_times = time_calls(lambda: model.predict_on_batch(x), repeats, warmup)
        rows.append(_row("predict_on_batch", model.layers, "predict_on_batch", x.shape,
                         activations.shape, predict_flops(model, batch_size), 0, predict_times))
    return {"model": model.name, "backend": get_backend_name(), "batch_size": batch_size,
            "repeats": repeats, "warmup": warmup, "seed": seed, "rows": rows}


def format_profile(profile: dict[str, Any]) -> str:
    """``profile_model``'s result as a text table: one line per step and pass, then the
    sum of the steps beside the whole ``train_on_batch``."""
    header = (f"{'step':<34} {'pass':<16} {'input -> output':<40} {'median ms':>10} "
              f"{'min ms':>9} {'GFLOP':>8} {'GFLOP/s':>8}")
    lines = [f"Model {profile['model']!r} on the {profile['backend']} backend, batch "
             f"{profile['batch_size']}: median of {profile['repeats']} calls after "
             f"{profile['warmup']} warm-up calls", "", header, "-" * len(header)]
    step_sum = 0.0
    whole = None
    for row in profile["rows"]:
        median = row["median_ms"]
        rate = row["flops"] / (median * 1e6) if row["flops"] and median > 0 else None
        shapes = f"{format_shape(row['input_shape'])} -> {format_shape(row['output_shape'])}"
        lines.append(f"{row['step']:<34} {row['pass']:<16} {shapes:<40} {median:>10.3f} "
                     f"{row['min_ms']:>9.3f} {row['flops'] / 1e9:>8.4f} "
                     + (f"{rate:>8.1f}" if rate is not None else f"{'-':>8}"))
        if row["pass"] in ("forward", "backward"):
            step_sum += median
        elif row["pass"] == "train_on_batch":
            whole = median
    if whole is not None:
        lines += ["", f"Sum of the steps' forward and backward medians: {step_sum:.3f} ms; "
                      f"whole train_on_batch: {whole:.3f} ms (the whole step adds the loss, "
                      f"the optimizer update, the metrics and the Python between steps)."]
    return "\n".join(lines)

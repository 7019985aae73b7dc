"""Per-layer parity report: minicnn against Keras on the same weights and the same batch.

    python -m compare.parity [--out runs/parity] [--models mnist-convnet vgg16-base]

For the MNIST convnet (a batch of 64 real MNIST training images when the data set is
available offline, random images otherwise; categorical cross-entropy, RMSprop with
the book's learning rate 1e-3) and the VGG16 convolutional base (2 random 150x150
images preprocessed as Keras does; mean squared error against random targets,
RMSprop with the book's fine-tuning learning rate 1e-5), each engine runs one
training step layer by layer and the report gives, for every layer, the largest
absolute difference between the engines and the same relative to the largest Keras
magnitude (see :func:`compare._keras_models.differences`) in

* the layer's output (activation);
* d loss / d (layer input), Keras's from ``tf.GradientTape``;
* d loss / d kernel and d loss / d bias;
* the kernel and bias after one optimizer step, relative to the largest update Keras
  made (the weights start identical, so only the update can differ), and in float32
  spacings (ulps) of the largest weight: 1 ulp is the finest difference two stored
  float32 weights can have, whatever the update.

Two tables per model.  "Per layer" feeds each minicnn layer Keras's input and Keras's
gradient at its output, so a row measures that layer's own arithmetic.  "End to end"
lets each engine feed itself, as training does: differences accumulate, and wherever
round-off puts a pre-activation on the other side of a ReLU's kink (an output exactly 0
in one engine, 1e-6 in the other; counted in the "kinks" column), a gradient is routed
differently from there down; that is the expected sensitivity of a piecewise-linear
network to float32 round-off, not an error of either engine.

Everything is written to OUT/parity.json and printed as one table per model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from compare._keras_models import differences, twins
from minicnn.interop.keras import import_keras

MODELS = ("mnist-convnet", "vgg16-base")


def make_batch(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str, float]:
    """(x, y, loss name, RMSprop learning rate) for ``name``."""
    rng = np.random.default_rng(seed)
    if name == "mnist-convnet":
        try:
            from minicnn.datasets import mnist

            (x_train, y_train), _ = mnist.load_data()
            images, labels = x_train[:64], y_train[:64]
        except Exception as error:  # no data offline: the arithmetic is what is compared
            print(f"(MNIST unavailable: {error}; using random images)")
            images, labels = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), \
                rng.integers(0, 10, 64)
        x = (images.reshape(-1, 28, 28, 1) / 255).astype(np.float32)
        y = np.eye(10, dtype=np.float32)[labels]
        return x, y, "categorical_crossentropy", 1e-3
    from minicnn.applications.vgg16 import preprocess_input

    x = preprocess_input(rng.uniform(0, 255, (2, 150, 150, 3)))
    y = rng.uniform(0, 1, (2, 4, 4, 512)).astype(np.float32)
    return x, y, "mean_squared_error", 1e-5


def minicnn_step(model, x: np.ndarray, y: np.ndarray, loss_name: str, learning_rate: float,
                 keras_result: dict | None = None) -> dict:
    """One training step of minicnn, layer by layer, keeping every intermediate.

    With ``keras_result`` (from :func:`keras_step`) each layer is fed *Keras's* input
    activation and *Keras's* gradient at its output, so the differences measure that
    layer's own arithmetic; without it, minicnn feeds itself end to end.
    """
    from minicnn import losses, optimizers

    loss = losses.get(loss_name)
    isolated = keras_result is not None
    outputs, h = [], x
    for index, layer in enumerate(model.layers):
        if isolated:
            h = keras_result["inputs"][index]
        h = layer.forward(h, training=True)
        outputs.append(h)
    # As Sequential.training_step: a softmax output with a cross-entropy loss is
    # differentiated from the logits, as Keras 3 does.
    loss_value, gradient, from_logits = loss.value_and_output_gradient(y, h, model.layers[-1])
    loss_value = float(loss_value)
    last = len(model.layers) - 1
    input_gradients = [None] * len(model.layers)
    for index in range(last, -1, -1):
        layer = model.layers[index]
        if index == last and from_logits:
            gradient = layer.backward_from_preactivation(gradient, True)
        else:
            if isolated and index < last:
                gradient = keras_result["input_gradients"][index + 1]
            gradient = layer.backward(gradient, True)
        input_gradients[index] = gradient
    weight_gradients = [[variable.grad.copy() for variable in layer.weights]
                        for layer in model.layers]
    before = [layer.get_weights() for layer in model.layers]
    optimizers.RMSprop(learning_rate=learning_rate).apply_gradients(model.trainable_weights)
    after = [layer.get_weights() for layer in model.layers]
    for layer, weights in zip(model.layers, before):  # leave the model as it was
        layer.set_weights(weights)
    return {"loss": loss_value, "outputs": outputs, "input_gradients": input_gradients,
            "weight_gradients": weight_gradients, "before": before, "after": after}


def keras_step(keras_model, x: np.ndarray, y: np.ndarray, loss_name: str,
               learning_rate: float) -> dict:
    """The same step in Keras: layers called one by one under a ``tf.GradientTape``."""
    import tensorflow as tf

    keras = import_keras(require_tensorflow=True)
    loss = keras.losses.get(loss_name)
    # A functional model (Keras's VGG16) lists its InputLayer: not a computation.
    chain = [layer for layer in keras_model.layers
             if not isinstance(layer, keras.layers.InputLayer)]
    layer_inputs, outputs = [], []
    with tf.GradientTape(persistent=True) as tape:
        h = tf.constant(x)
        for layer in chain:
            tape.watch(h)
            layer_inputs.append(h)
            h = layer(h, training=True)
            outputs.append(h)
        loss_value = tf.reduce_mean(loss(tf.constant(y), h))
    input_gradients = tape.gradient(loss_value, layer_inputs)
    variables = keras_model.trainable_variables
    gradients = tape.gradient(loss_value, variables)
    del tape
    before = [[np.asarray(w) for w in layer.get_weights()] for layer in chain]
    optimizer = keras.optimizers.RMSprop(learning_rate=learning_rate)
    optimizer.apply_gradients(zip(gradients, variables))
    after = [[np.asarray(w) for w in layer.get_weights()] for layer in chain]
    for layer, weights in zip(chain, before):  # leave the model as it was
        layer.set_weights(weights)
    by_variable = {id(variable): np.asarray(gradient)
                   for variable, gradient in zip(variables, gradients)}
    return {"loss": float(loss_value),
            "inputs": [np.asarray(tensor) for tensor in layer_inputs],
            "outputs": [np.asarray(output) for output in outputs],
            "input_gradients": [np.asarray(gradient) for gradient in input_gradients],
            "weight_gradients": [[by_variable[id(v)] for v in layer.trainable_variables]
                                 for layer in chain],
            "before": before, "after": after}


def _rows(model, ours: dict, theirs: dict) -> list[dict]:
    rows = []
    for index, layer in enumerate(model.layers):
        output_ours, output_theirs = ours["outputs"][index], theirs["outputs"][index]
        row = {"layer": layer.name, "type": type(layer).__name__,
               "activation": differences(output_ours, output_theirs),
               "input_gradient": differences(ours["input_gradients"][index],
                                             theirs["input_gradients"][index]),
               # Outputs exactly 0 in one engine and not in the other: a ReLU kink
               # that round-off put on different sides.
               "kink_flips": int(np.sum((output_ours == 0) != (output_theirs == 0)))}
        for position, weight in enumerate(("kernel", "bias")[:len(layer.weights)]):
            row[f"{weight}_gradient"] = differences(ours["weight_gradients"][index][position],
                                                    theirs["weight_gradients"][index][position])
            after_ours, after_theirs = ours["after"][index][position], theirs["after"][index][position]
            update = after_theirs - theirs["before"][index][position]
            row[f"{weight}_after_step"] = {
                **differences(after_ours, after_theirs, scale=update),
                # In float32 spacings (ulps) of the tensor's largest weight: the
                # resolution at which the updated weights can be stored at all.
                "max_ulps": float(np.max(np.abs(after_ours.astype(np.float64) - after_theirs))
                                  / np.spacing(np.max(np.abs(after_theirs)))),
            }
        rows.append(row)
    return rows


def compare_model(name: str, seed: int = 0) -> dict:
    """Run both engines on ``name``; per-layer differences, isolated and end to end."""
    model, keras_model = twins(name, seed)
    x, y, loss_name, learning_rate = make_batch(name, seed)
    started = time.perf_counter()
    theirs = keras_step(keras_model, x, y, loss_name, learning_rate)
    keras_seconds = time.perf_counter() - started
    started = time.perf_counter()
    chained = minicnn_step(model, x, y, loss_name, learning_rate)
    minicnn_seconds = time.perf_counter() - started
    isolated = minicnn_step(model, x, y, loss_name, learning_rate, keras_result=theirs)
    return {"model": name, "batch_shape": list(x.shape), "loss_function": loss_name,
            "optimizer": f"RMSprop(learning_rate={learning_rate:g})",
            "loss": {"minicnn": chained["loss"], "keras": theirs["loss"],
                     **differences(chained["loss"], theirs["loss"])},
            "seconds": {"minicnn": minicnn_seconds, "keras": keras_seconds},
            "layers": _rows(model, isolated, theirs),
            "end_to_end": _rows(model, chained, theirs)}


COLUMNS = [("activation", "output"), ("input_gradient", "d/d input"),
           ("kernel_gradient", "d/d kernel"), ("bias_gradient", "d/d bias"),
           ("kernel_after_step", "kernel+step"), ("bias_after_step", "bias+step")]


def _table(rows: list[dict], with_kinks: bool) -> list[str]:
    header = f"{'layer':<16}" + "".join(f"{title:>21}" for _, title in COLUMNS)
    if with_kinks:
        header += f"{'kinks':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            if key in row:
                cells.append(f"{row[key]['max_abs']:>9.1e} / {row[key]['max_rel']:<9.1e}")
            else:
                cells.append(f"{'-':^21}")
        line = f"{row['layer']:<16}" + "".join(f"{cell:>21}" for cell in cells)
        lines.append(line + (f"{row['kink_flips']:>7}" if with_kinks else ""))
    return lines


def _worst(rows: list[dict]) -> str:
    relative = max(row[key]["max_rel"] for row in rows for key, _ in COLUMNS
                   if key in row and not key.endswith("_after_step"))
    step = max((row[key]["max_rel"] for row in rows for key, _ in COLUMNS
                if key in row and key.endswith("_after_step")), default=0.0)
    # Kernels only: biases start at 0, so their largest value is the update itself.
    ulps = max((row["kernel_after_step"]["max_ulps"] for row in rows
                if "kernel_after_step" in row), default=0.0)
    return (f"{relative:.1e} relative (activations and gradients); weights after the step "
            f"{step:.1e} of the largest update (kernels: {ulps:.1f} float32 ulp of their "
            f"largest weight)")


def format_report(report: dict) -> str:
    """Two tables: each layer on Keras's inputs (its own arithmetic), then end to end."""
    lines = [f"== {report['model']}: batch {tuple(report['batch_shape'])}, "
             f"{report['loss_function']}, {report['optimizer']}; loss minicnn "
             f"{report['loss']['minicnn']:.7g}, Keras {report['loss']['keras']:.7g} "
             f"(difference {report['loss']['max_abs']:.1e})",
             "cells: max |minicnn - Keras|  /  that relative to the largest Keras value "
             "(weights after the step: relative to the largest update)",
             "",
             "Per layer: each minicnn layer fed Keras's input and Keras's gradient at its output"]
    lines += _table(report["layers"], with_kinks=False)
    lines.append(f"largest difference: {_worst(report['layers'])}")
    lines += ["", "End to end: each engine feeds itself ('kinks': outputs that are exactly 0 "
              "in one engine only, a ReLU that round-off put on the other side)"]
    lines += _table(report["end_to_end"], with_kinks=True)
    lines.append(f"largest difference: {_worst(report['end_to_end'])}   "
                 f"(one step: minicnn {report['seconds']['minicnn']:.2f} s, "
                 f"Keras {report['seconds']['keras']:.2f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compare.parity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/parity", help="folder for parity.json")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    reports = []
    for name in arguments.models:
        report = compare_model(name, arguments.seed)
        print(format_report(report), end="\n\n", flush=True)
        reports.append(report)
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.json").write_text(json.dumps(reports, indent=2))
    print(f"wrote {out / 'parity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

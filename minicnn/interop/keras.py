"""Move models and weights between minicnn and Keras 3, and compare their summaries.

Both engines store parameters the same way (NHWC activations, HWIO Conv2D kernels,
Dense kernels ``(in, out)``, kernel before bias), so a transfer is a copy of the
``get_weights()`` list: no transposes, no reordering.

    from minicnn.interop.keras import from_keras, to_keras, load_weights
    model = from_keras(keras_model)          # same layers, names, weights, trainable flags
    keras_model = to_keras(model)            # the reverse
    load_weights(model, "vgg16_notop.h5")    # a Keras weights file, read with h5py only

Keras (and TensorFlow) are imported inside the functions that need them, never at
import time: ``import minicnn`` must stay light.  ``load_weights`` needs only h5py.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from minicnn import initializers as minicnn_initializers
from minicnn.layers import (Activation, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Input,
                            MaxPooling2D)
from minicnn.layers.base import Layer
from minicnn.models import Sequential
from minicnn.naming import to_snake_case
from minicnn.shapes import format_shape

# Every minicnn layer class, by the class name Keras uses for the same layer.
_MINICNN_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (
        Conv2D, MaxPooling2D, AveragePooling2D, Dense, Flatten, Dropout, Activation)}
SUPPORTED_LAYERS: tuple[str, ...] = tuple(_MINICNN_CLASSES)

# Activations minicnn implements (Keras names).
_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")

# Initializers both sides know: Keras class name <-> minicnn name.  They matter only
# for re-initialization: transferred weights are copied exactly whatever they are.
_INITIALIZER_NAMES = {"GlorotUniform": "glorot_uniform", "HeNormal": "he_normal",
                      "Zeros": "zeros", "Ones": "ones"}

# Keras config keys minicnn has no counterpart for, with the one value it can honour.
# A layer whose config holds anything else cannot be reproduced, so it is refused.
_NEUTRAL_OPTIONS: dict[str, Any] = {
    "data_format": "channels_last",
    "dilation_rate": (1, 1),
    "groups": 1,
    "kernel_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "kernel_constraint": None,
    "bias_constraint": None,
    "noise_shape": None,
    "quantization_config": None,
    "lora_rank": None,
    "lora_alpha": None,
}

# The config keys each layer class translates; any other non-neutral key is refused.
_TRANSLATED_KEYS = {
    "Conv2D": {"filters", "kernel_size", "strides", "padding", "activation", "use_bias",
               "kernel_initializer", "bias_initializer"},
    "Dense": {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer"},
    "MaxPooling2D": {"pool_size", "strides", "padding"},
    "AveragePooling2D": {"pool_size", "strides", "padding"},
    "Flatten": set(),
    "Dropout": {"rate", "seed"},
    "Activation": {"activation"},
}
_COMMON_KEYS = {"name", "trainable", "dtype"}


class UnsupportedKerasLayerError(ValueError):
    """A Keras layer (or one of its options) that minicnn cannot reproduce."""


def _import_keras():
    """Import Keras on demand, with an install hint when it is missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up quiet
    try:
        import keras
    except ImportError as error:
        raise RuntimeError(
            "this needs Keras 3 with TensorFlow: pip install 'minicnn[keras]' "
            f"({error})") from error
    return keras


# ----------------------------------------------------------------------------- Keras -> minicnn
def _keras_layers_in_order(keras_model) -> list:
    """The model's layers from input to output, without the InputLayer.

    Accepts a ``keras.Sequential`` or a functional ``keras.Model`` that is a plain
    chain (one input, one output, each layer fed by the previous one), such as
    ``keras.applications.VGG16``.  Anything else cannot become a minicnn Sequential.
    """
    keras = _import_keras()
    if not isinstance(keras_model, keras.Model):
        raise TypeError(f"from_keras expects a keras.Model, received {type(keras_model).__name__}")
    if isinstance(keras_model, keras.Sequential):
        if not keras_model.built:
            raise ValueError(
                f"Keras model {keras_model.name!r} is not built: start it with "
                "keras.Input(shape) or call build((None, ...)) so its input shape is known")
        return [layer for layer in keras_model.layers
                if not isinstance(layer, keras.layers.InputLayer)]
    if not hasattr(keras_model, "inputs") or keras_model.inputs is None:
        raise ValueError(
            f"Keras model {keras_model.name!r} ({type(keras_model).__name__}) is a subclassed "
            "model; from_keras needs a keras.Sequential or a functional chain of layers")
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise ValueError(
            f"Keras model {keras_model.name!r} has {len(keras_model.inputs)} inputs and "
            f"{len(keras_model.outputs)} outputs; a minicnn Sequential has one of each")
    chain = [layer for layer in keras_model.layers
             if not isinstance(layer, keras.layers.InputLayer)]
    previous_output = keras_model.inputs[0]
    for layer in chain:
        try:
            fed_by_previous = layer.input is previous_output
        except (AttributeError, ValueError):  # a layer used at several places
            fed_by_previous = False
        if not fed_by_previous:
            raise ValueError(
                f"Keras model {keras_model.name!r} is not a plain chain of layers: layer "
                f"{layer.name!r} does not take the previous layer's output as its only input")
        previous_output = layer.output
    if keras_model.outputs[0] is not previous_output:
        raise ValueError(f"Keras model {keras_model.name!r}: the output is not the last layer's")
    return chain


def _input_shape_of(keras_model) -> tuple[int, ...]:
    """Per-sample input shape (no batch axis); every size must be known."""
    shape = tuple(keras_model.inputs[0].shape)[1:]
    if any(size is None for size in shape):
        raise ValueError(
            f"Keras model {keras_model.name!r} has input shape {(None,) + shape} with unknown "
            "sizes; minicnn models need a fixed per-sample shape (rebuild the Keras model "
            "with e.g. input_shape=(150, 150, 3))")
    return tuple(int(size) for size in shape)


def _unsupported(layer, reason: str) -> UnsupportedKerasLayerError:
    return UnsupportedKerasLayerError(
        f"Keras layer {layer.name!r} ({type(layer).__name__}): {reason}. minicnn supports "
        f"these Keras layers: {', '.join(SUPPORTED_LAYERS)} (and the model's InputLayer)")


def _initializer_from_keras(layer, key: str, config: dict):
    """The minicnn initializer equal to a Keras one, or minicnn's default with a warning."""
    value = config[key]
    class_name = value.get("class_name") if isinstance(value, dict) else value
    options = dict(value.get("config", {})) if isinstance(value, dict) else {}
    seed = options.pop("seed", None)
    known = _INITIALIZER_NAMES.get(class_name)
    if known is not None and all(option is None for option in options.values()):
        return minicnn_initializers.get(
            {"class_name": known, "config": {"seed": seed}} if seed is not None else known)
    default = "zeros" if key == "bias_initializer" else "glorot_uniform"
    warnings.warn(
        f"Keras layer {layer.name!r}: {key} {class_name!r} has no minicnn counterpart; the "
        f"weights are copied exactly, but re-initializing would use {default!r}", stacklevel=3)
    return minicnn_initializers.get(default)


def minicnn_config_from_keras(layer) -> tuple[str, dict]:
    """(minicnn class name, constructor arguments) reproducing the Keras ``layer``.

    Raises:
        UnsupportedKerasLayerError: the class, an activation or an option minicnn lacks.
    """
    keras = _import_keras()
    class_name = type(layer).__name__
    # Exact classes only: a subclass of Conv2D may compute something else.
    keras_class = getattr(keras.layers, class_name, None)
    if class_name not in _MINICNN_CLASSES or type(layer) is not keras_class:
        raise _unsupported(layer, "minicnn has no such layer")
    config = layer.get_config()
    policy = layer.dtype_policy
    if policy.variable_dtype != policy.compute_dtype:
        raise _unsupported(layer, f"mixed precision policy {policy.name!r} is not supported")
    problems = []
    for key, value in config.items():
        if key in _COMMON_KEYS or key in _TRANSLATED_KEYS[class_name]:
            continue
        neutral = _NEUTRAL_OPTIONS.get(key)
        if isinstance(value, list):
            value = tuple(value)
        if value != neutral:
            problems.append(f"{key}={value!r} (minicnn supports only {neutral!r})")
    activation = config.get("activation")
    if "activation" in config and activation not in _ACTIVATIONS:
        problems.append(f"activation {activation!r} (minicnn has {', '.join(_ACTIVATIONS)})")
    if problems:
        raise _unsupported(layer, "unsupported option " + "; ".join(problems))
    arguments: dict[str, Any] = {"name": layer.name, "trainable": bool(layer.trainable),
                                 "dtype": policy.variable_dtype}
    for key in _TRANSLATED_KEYS[class_name]:
        if key.endswith("_initializer"):
            arguments[key] = _initializer_from_keras(layer, key, config)
        else:
            value = config[key]
            arguments[key] = tuple(value) if isinstance(value, list) else value
    return class_name, arguments


def from_keras(keras_model, name: str | None = None) -> Sequential:
    """The minicnn ``Sequential`` equal to ``keras_model``: layers, configs, names,
    trainable flags and weights (copied, so the two models do not share memory).

    Args:
        keras_model: a built ``keras.Sequential`` or a functional chain (e.g.
            ``keras.applications.VGG16(include_top=False, input_shape=...)``).
        name: the minicnn model's name (default: the Keras model's).
    Raises:
        UnsupportedKerasLayerError: a layer minicnn lacks; the message names the layer,
            its class and the supported classes.
        ValueError: the Keras model is not a chain or has no fixed input shape.
    """
    chain = _keras_layers_in_order(keras_model)
    input_shape = _input_shape_of(keras_model)
    # Translate everything first, so an unsupported layer fails before any work.
    translated = [minicnn_config_from_keras(layer) for layer in chain]
    model = Sequential(name=name or keras_model.name)
    model.add(Input(input_shape, dtype=keras_model.inputs[0].dtype))
    for keras_layer, (class_name, arguments) in zip(chain, translated):
        layer = _MINICNN_CLASSES[class_name](**arguments)
        model.add(layer)
        layer.set_weights([np.asarray(w) for w in keras_layer.get_weights()])
    return model


# ----------------------------------------------------------------------------- minicnn -> Keras
def _keras_initializer(keras, initializer):
    """The Keras initializer equal to a minicnn one."""
    serialized = minicnn_initializers.serialize(initializer)
    if isinstance(serialized, str):
        name, options = serialized, {}
    else:
        name, options = serialized["class_name"], serialized.get("config", {})
    class_name = {value: key for key, value in _INITIALIZER_NAMES.items()}[name]
    keras_class = getattr(keras.initializers, class_name)
    return keras_class(**options) if options else keras_class()


def keras_layer_from_minicnn(layer: Layer):
    """A new (unbuilt) Keras layer with ``layer``'s configuration and name."""
    keras = _import_keras()
    class_name = type(layer).__name__
    if class_name not in _MINICNN_CLASSES:
        raise ValueError(f"layer {layer.name!r}: no Keras counterpart for {class_name}")
    config = layer.get_config()
    arguments: dict[str, Any] = {"name": layer.name, "dtype": config["dtype"]}
    for key in _TRANSLATED_KEYS[class_name]:
        value = config[key]
        if key.endswith("_initializer"):
            value = _keras_initializer(keras, getattr(layer, key))
        elif isinstance(value, list):
            value = tuple(value)
        arguments[key] = value
    keras_layer = getattr(keras.layers, class_name)(**arguments)
    keras_layer.trainable = layer.trainable
    return keras_layer


def to_keras(model: Sequential):
    """The ``keras.Sequential`` equal to ``model``: layers, configs, names, trainable
    flags and weights.

    Raises:
        ValueError: ``model`` is not built (its input shape is unknown).
    """
    keras = _import_keras()
    if not model.built or model.input_spec is None:
        raise ValueError(
            f"model {model.name!r} is not built: give it an Input(shape) first so Keras can "
            "create the same weights")
    keras_layers = [keras_layer_from_minicnn(layer) for layer in model.layers]
    keras_model = keras.Sequential(
        [keras.Input(shape=model.input_spec.shape, dtype=model.input_spec.dtype.name),
         *keras_layers], name=model.name)
    for layer, keras_layer in zip(model.layers, keras_layers):
        keras_layer.set_weights(layer.get_weights())
    return keras_model


# ------------------------------------------------------------------------------- weight files
def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _weighted_layers(model: Sequential) -> list[Layer]:
    return [layer for layer in model.layers if layer.weights]


def _arrays_from_keras3_file(handle, model: Sequential, path: str) -> dict[str, list[np.ndarray]]:
    """Read a Keras 3 ``.weights.h5`` file: ``layers/<key>/vars/<i>``.

    Keras 3 names each layer's group after its class (``conv2d``, ``conv2d_1``, ... in
    model order) and, in recent versions, stores the layer's own name as the ``name``
    attribute of ``vars``.  When every layer with weights finds its name there, layers
    are matched by name; otherwise by the class-based position, as Keras's own
    ``load_weights`` always does.
    """
    groups = handle["layers"]
    by_name = {}
    for key in groups:
        variables = groups[key].get("vars")
        if variables is not None and "name" in variables.attrs:
            by_name[_decode(variables.attrs["name"])] = variables
    layers = _weighted_layers(model)
    if not all(layer.name in by_name for layer in layers):
        by_name = {}
        counters: dict[str, int] = {}
        for layer in model.layers:
            prefix = to_snake_case(type(layer).__name__)
            count = counters.get(prefix, 0)
            counters[prefix] = count + 1
            key = prefix if count == 0 else f"{prefix}_{count}"
            if layer.weights and key in groups and "vars" in groups[key]:
                by_name[layer.name] = groups[key]["vars"]
    missing = [layer.name for layer in layers if layer.name not in by_name]
    if missing:
        raise ValueError(
            f"weights file {path!r} does not fit model {model.name!r}: no weights for layers "
            f"{missing} (matched by name, then by position); the file holds {sorted(groups)}")
    return {layer.name: [np.asarray(by_name[layer.name][str(i)])
                         for i in range(len(by_name[layer.name]))] for layer in layers}


def _arrays_from_legacy_file(handle, model: Sequential, path: str) -> dict[str, list[np.ndarray]]:
    """Read a Keras 2 style ``.h5`` file (the format of the ImageNet VGG16 files).

    The layer names are the ``layer_names`` attribute (of the root, or of
    ``model_weights`` in a whole-model file); each layer group lists its arrays in
    ``weight_names``.  Layers are matched by name; if the names differ but the number
    of layers with weights agrees, by order, as Keras's ``load_weights`` does.
    """
    if "layer_names" not in handle.attrs and "model_weights" in handle:
        handle = handle["model_weights"]
    layer_names = [_decode(name) for name in handle.attrs["layer_names"]]
    stored = {}
    for name in layer_names:
        group = handle[name]
        weight_names = [_decode(w) for w in group.attrs.get("weight_names", [])]
        if weight_names:
            stored[name] = [np.asarray(group[w]) for w in weight_names]
    layers = _weighted_layers(model)
    if all(layer.name in stored for layer in layers):
        return {layer.name: stored[layer.name] for layer in layers}
    if len(stored) == len(layers):
        return {layer.name: arrays for layer, arrays in zip(layers, stored.values())}
    missing = [layer.name for layer in layers if layer.name not in stored]
    raise ValueError(
        f"weights file {path!r} does not fit model {model.name!r}: no weights for layers "
        f"{missing}, and it holds {len(stored)} layers with weights where the model has "
        f"{len(layers)} (file layers: {list(stored)})")


def load_weights(model: Sequential, path: str | os.PathLike) -> None:
    """Load a Keras weights file into ``model`` (built, with Keras's layer names).

    Reads both Keras 3 ``.weights.h5`` files (``keras_model.save_weights``) and
    Keras 2 style ``.h5`` files (``keras_model.save("x.h5")``, the downloadable
    ImageNet VGG16 weights).  Needs h5py, not TensorFlow.  Every array is checked
    against the layer's weight shapes before anything is assigned.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file's layers or shapes do not fit ``model``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file at {path!r}")
    try:
        import h5py
    except ImportError as error:
        raise RuntimeError(
            f"reading Keras weights files needs h5py: pip install h5py ({error})") from error
    with h5py.File(path, "r") as handle:
        if "layers" in handle and "layer_names" not in handle.attrs:
            arrays = _arrays_from_keras3_file(handle, model, path)
        elif "layer_names" in handle.attrs or "model_weights" in handle:
            arrays = _arrays_from_legacy_file(handle, model, path)
        else:
            raise ValueError(f"{path!r} is not a Keras weights file (neither the Keras 3 "
                             "'.weights.h5' layout nor the legacy '.h5' one)")
    layers = _weighted_layers(model)
    for layer in layers:  # check every shape first: a failed load changes nothing
        expected = [variable.shape for variable in layer.weights]
        received = [array.shape for array in arrays[layer.name]]
        if expected != received:
            raise ValueError(
                f"weights file {path!r}: layer {layer.name!r} needs arrays of shapes "
                f"{expected}, the file holds {received}")
    for layer in layers:
        layer.set_weights(arrays[layer.name])


# ------------------------------------------------------------------------------------ summaries
def keras_summary_rows(keras_model) -> list[tuple[str, str, str]]:
    """(``name (Type)``, output shape, parameter count) per Keras layer, formatted as
    :func:`minicnn.summary.summary_rows` formats minicnn's."""
    rows = []
    for layer in keras_model.layers:
        shape = tuple(layer.output.shape)
        rows.append((f"{layer.name} ({type(layer).__name__})", format_shape(shape),
                     f"{layer.count_params():,}"))
    return rows


def keras_summary_totals(keras_model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a Keras model."""
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in keras_model.non_trainable_weights)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def compare_summaries(model: Sequential, keras_model) -> tuple[list[dict], bool]:
    """Row-by-row verdict between minicnn's summary and Keras's.

    Keras lists a functional model's ``InputLayer`` as a row; a Sequential (minicnn's,
    like Keras's own) does not, so those rows are reported as skipped, not compared.

    Returns:
        (rows, all_equal); each row is a dict with ``minicnn`` and ``keras`` (the
        three cells, or None when one side has no such row), ``equal`` (bool, or
        None for skipped rows) and ``differences`` (which of name/type, output
        shape, parameters differ).
    """
    from minicnn.summary import summary_rows, summary_totals

    keras = _import_keras()
    keras_rows = keras_summary_rows(keras_model)
    skipped = [row for row, layer in zip(keras_rows, keras_model.layers)
               if isinstance(layer, keras.layers.InputLayer)]
    compared = [row for row in keras_rows if row not in skipped]
    ours = summary_rows(model)
    verdict: list[dict] = [{"minicnn": None, "keras": row, "equal": None,
                            "differences": ["Keras lists the functional model's input; a "
                                            "Sequential does not (not a layer)"]}
                           for row in skipped]
    all_equal = len(ours) == len(compared)
    columns = ("layer (type)", "output shape", "parameters")
    for index in range(max(len(ours), len(compared))):
        mine = ours[index] if index < len(ours) else None
        theirs = compared[index] if index < len(compared) else None
        if mine is None or theirs is None:
            differences = ["missing on one side"]
        else:
            differences = [column for column, a, b in zip(columns, mine, theirs) if a != b]
        all_equal &= not differences
        verdict.append({"minicnn": mine, "keras": theirs, "equal": not differences,
                        "differences": differences})
    totals = summary_totals(model)
    keras_totals = keras_summary_totals(keras_model)
    for key in ("total", "trainable", "non_trainable"):
        mine, theirs = totals[key][0], keras_totals[key]
        equal = mine == theirs
        all_equal &= equal
        verdict.append({"minicnn": (f"{key} params", "", f"{mine:,}"),
                        "keras": (f"{key} params", "", f"{theirs:,}"), "equal": equal,
                        "differences": [] if equal else ["parameters"]})
    return verdict, all_equal


def format_verdict(verdict: list[dict]) -> str:
    """The verdict as a plain-text table: one line per row, EQUAL / DIFFERS / skipped."""
    lines = []
    for row in verdict:
        mine, theirs = row["minicnn"], row["keras"]
        label = {True: "EQUAL  ", False: "DIFFERS", None: "skipped"}[row["equal"]]
        shown = mine or theirs
        line = f"{label}  {shown[0]:<36} {shown[1]:<22} {shown[2]:>12}"
        if row["equal"] is False:
            line += f"   minicnn={mine} keras={theirs} ({', '.join(row['differences'])})"
        elif row["equal"] is None:
            line += f"   ({row['differences'][0]})"
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------------ Keras reference twins
def keras_reference_model(name: str):
    """Keras's own build of the model called ``name`` in
    :data:`minicnn.applications.registry.MODEL_NAMES`, made independently of minicnn
    (so comparing the two checks minicnn, not the bridge)."""
    keras = _import_keras()
    layers = keras.layers
    if name == "mnist-convnet":
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
    if name == "mnist-dense":
        return keras.Sequential([keras.Input((28 * 28,)),
                                 layers.Dense(512, activation="relu"),
                                 layers.Dense(10, activation="softmax")])
    if name == "no-max-pool":
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
        ])
    if name == "vgg16-base":
        return keras.applications.VGG16(weights=None, include_top=False,
                                        input_shape=(150, 150, 3))
    if name == "cats-dogs-convnet":
        blocks = []
        for filters in (32, 64, 128, 128):
            blocks += [layers.Conv2D(filters, (3, 3), activation="relu"),
                       layers.MaxPooling2D((2, 2))]
        return keras.Sequential([
            keras.Input((150, 150, 3)),
            *blocks,
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ])
    raise ValueError(f"no Keras reference model called {name!r}")

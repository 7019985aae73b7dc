"""A model's description in Keras's own JSON, and back: pure dicts, no Keras import.

minicnn describes a model with ``Sequential.get_config()``::

    {"name", "trainable", "input_shape": [H, W, C], "layers": [
        {"class_name": "Conv2D", "config": {...minicnn arguments...}},
        {"class_name": "Functional", "config": {...a nested model, same form...}}, ...]}

Keras 3 describes it as ``keras.saving.serialize_keras_object(model)`` does (what a
``.keras`` file's ``config.json`` holds), or, in a legacy ``.h5`` file, in the older form
without ``module`` / ``registered_name`` / ``build_config``.  A ``Sequential`` lists an
``InputLayer`` first; a ``Functional`` (Keras's VGG16) lists its layers with the
``inbound_nodes`` that chain them.  :func:`keras_model_config` writes that form;
:func:`minicnn_model_config` reads it back (Keras 3's form, legacy ``.h5`` configs, and
Keras 2's ``batch_input_shape``), refusing any layer or option minicnn cannot run.
"""

from __future__ import annotations

import warnings
from typing import Any

# minicnn initializer names <-> Keras class names.
_INITIALIZERS = {"glorot_uniform": "GlorotUniform", "he_normal": "HeNormal",
                 "zeros": "Zeros", "ones": "Ones"}
_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
MODEL_CLASSES = ("Sequential", "Functional")

# Keras keys each layer class has beyond name/trainable/dtype: minicnn's own arguments
# (translated), then the ones minicnn has no counterpart for, with the one value it runs.
_OWN_KEYS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias",
               "kernel_initializer", "bias_initializer"),
    "Dense": ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer"),
    "MaxPooling2D": ("pool_size", "padding", "strides"),
    "AveragePooling2D": ("pool_size", "padding", "strides"),
    "Flatten": (),
    "Dropout": ("rate", "seed"),
    "Activation": ("activation",),
}
_NEUTRAL = {"data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None, "noise_shape": None,
            "quantization_config": None, "lora_rank": None, "lora_alpha": None}
# The neutral keys Keras 3 writes for each class (so Keras reads back what it writes).
_NEUTRAL_WRITTEN = {
    "Conv2D": ("data_format", "dilation_rate", "groups", "kernel_regularizer",
               "bias_regularizer", "activity_regularizer", "kernel_constraint",
               "bias_constraint"),
    "Dense": ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"),
    "MaxPooling2D": ("data_format",), "AveragePooling2D": ("data_format",),
    "Flatten": ("data_format",), "Dropout": ("noise_shape",), "Activation": (),
}


class KerasConfigError(ValueError):
    """A Keras model description minicnn cannot rebuild (the message says what and why)."""


# ------------------------------------------------------------------ minicnn -> Keras
def _keras_initializer(value) -> dict:
    name, options = (value, {}) if isinstance(value, str) else (
        value["class_name"], dict(value.get("config", {})))
    class_name = _INITIALIZERS.get(name, name)
    config = {} if class_name in ("Zeros", "Ones") else {"seed": options.get("seed")}
    return {"module": "keras.initializers", "class_name": class_name, "config": config,
            "registered_name": None}


def _keras_layer_config(class_name: str, config: dict) -> dict:
    keras_config: dict[str, Any] = {"name": config["name"],
                                    "trainable": config.get("trainable", True),
                                    "dtype": config.get("dtype", "float32")}
    for key in _OWN_KEYS[class_name]:
        value = config[key]
        if key.endswith("_initializer"):
            value = _keras_initializer(value)
        keras_config[key] = list(value) if isinstance(value, tuple) else value
    for key in _NEUTRAL_WRITTEN[class_name]:
        keras_config[key] = _NEUTRAL[key]
    return keras_config


def _entry(class_name: str, config: dict, legacy: bool, module: str = "keras.layers",
           registered_name: str | None = None, input_shape=None) -> dict:
    if legacy:
        return {"class_name": class_name, "config": config}
    entry = {"module": module, "class_name": class_name, "config": config,
             "registered_name": registered_name}
    if input_shape is not None:
        entry["build_config"] = {"input_shape": list(input_shape)}
    return entry


def _input_entry(batch_shape: list, name: str, legacy: bool) -> dict:
    config = {"batch_shape": batch_shape, "dtype": "float32", "sparse": False, "name": name}
    return _entry("InputLayer", config, legacy)


def is_model(layer) -> bool:
    """Whether a layer of a model is itself a model (duck-typed: saving knows no models)."""
    return hasattr(layer, "leaf_layers")


def keras_model_config(model, legacy: bool = False) -> dict:
    """Keras's description of ``model`` (a built minicnn model, nested models included).

    Args:
        model: a built ``Sequential`` (or ``Functional``).
        legacy: the legacy ``.h5`` form (only ``class_name`` and ``config`` per entry).
    Returns:
        The entry ``{"class_name": ..., "config": {...}, ...}``; for the top level of a
        ``.keras`` file the caller adds ``compile_config``.
    """
    functional = type(model).__name__ == "Functional"
    shape = list(model.input_shape)
    input_name = "input_layer"
    layers = [_input_entry(shape, input_name, legacy)]
    if functional:
        layers[0].update({"name": input_name, "inbound_nodes": []})
    previous = input_name
    for layer in model.layers:
        if is_model(layer):
            entry = keras_model_config(layer, legacy)
        else:
            kind = type(layer).__name__
            if kind not in _OWN_KEYS:
                raise KerasConfigError(f"layer {layer.name!r}: minicnn cannot write a {kind} "
                                       "layer in Keras's format")
            entry = _entry(kind, _keras_layer_config(kind, layer.get_config()), legacy,
                           input_shape=shape)
        if functional:
            tensor = {"class_name": "__keras_tensor__",
                      "config": {"shape": shape, "dtype": "float32",
                                 "keras_history": [previous, 0, 0]}}
            entry.update({"name": layer.name, "inbound_nodes": [{"args": [tensor], "kwargs": {}}]})
        layers.append(entry)
        previous, shape = layer.name, list(layer.output_shape)
    config = {"name": model.name, "trainable": model.trainable}
    if functional:
        config.update({"layers": layers, "input_layers": [input_name, 0, 0],
                       "output_layers": [previous, 0, 0]})
        entry = _entry("Functional", config, legacy, module="keras.src.models.functional",
                       registered_name="Functional")
        if not legacy:
            entry["build_config"] = {"input_shape": None}
        return entry
    config.update({"dtype": "float32", "layers": layers,
                   "build_input_shape": list(model.input_shape)})
    entry = _entry("Sequential", config, legacy, module="keras")
    if not legacy:
        entry["build_config"] = {"input_shape": list(model.input_shape)}
    return entry


# ------------------------------------------------------------------ Keras -> minicnn
def _dtype_name(value) -> str:
    if isinstance(value, dict):  # a DTypePolicy entry
        value = value.get("config", {}).get("name", "float32")
    if value not in ("float32", "float64"):
        raise KerasConfigError(f"dtype {value!r} is not supported (minicnn runs float32 or "
                               "float64 layers)")
    return value


def _minicnn_initializer(layer_name: str, key: str, value):
    class_name = value.get("class_name") if isinstance(value, dict) else value
    options = dict(value.get("config") or {}) if isinstance(value, dict) else {}
    seed = options.pop("seed", None)
    names = {keras: ours for ours, keras in _INITIALIZERS.items()}
    name = names.get(class_name, class_name if class_name in _INITIALIZERS else None)
    if name is not None and all(option is None for option in options.values()):
        return {"class_name": name, "config": {"seed": seed}} if seed is not None else name
    default = "zeros" if key == "bias_initializer" else "glorot_uniform"
    warnings.warn(f"layer {layer_name!r}: {key} {class_name!r} has no minicnn counterpart; the "
                  f"weights are read exactly, but re-initializing would use {default!r}",
                  stacklevel=4)
    return default


def minicnn_layer_config(entry: dict) -> dict:
    """``{"class_name", "config"}`` of the minicnn layer equal to a Keras layer entry.

    Raises:
        KerasConfigError: a class, an activation or an option minicnn does not have.
    """
    class_name, config = entry["class_name"], dict(entry["config"])
    name = config.get("name")
    if class_name not in _OWN_KEYS:
        raise KerasConfigError(f"layer {name!r}: minicnn has no {class_name} layer (it has "
                               f"{', '.join(_OWN_KEYS)}, and Sequential / Functional chains)")
    problems = []
    for key, value in config.items():
        if key in ("name", "trainable", "dtype", "batch_input_shape") or key in _OWN_KEYS[class_name]:
            continue
        neutral = _NEUTRAL.get(key, "unknown option")
        if isinstance(value, tuple):
            value = list(value)
        if value != neutral:
            problems.append(f"{key}={value!r}")
    if config.get("activation", "linear") not in _ACTIVATIONS:
        problems.append(f"activation={config['activation']!r}")
    if problems:
        raise KerasConfigError(f"layer {name!r} ({class_name}): minicnn cannot run "
                               f"{', '.join(problems)}")
    arguments: dict[str, Any] = {"name": name, "trainable": bool(config.get("trainable", True)),
                                 "dtype": _dtype_name(config.get("dtype", "float32"))}
    for key in _OWN_KEYS[class_name]:
        if key not in config:
            continue
        value = config[key]
        if key.endswith("_initializer"):
            value = _minicnn_initializer(name, key, value)
        arguments[key] = value
    return {"class_name": class_name, "config": arguments}


def _chain_of(entry: dict) -> list[dict]:
    """A functional model's layers in order, checking that each feeds the next."""
    config = entry["config"]
    layers = list(config["layers"])
    previous = None
    for layer in layers:
        nodes = layer.get("inbound_nodes", [])
        sources = []
        for node in nodes:
            args = node.get("args", []) if isinstance(node, dict) else node
            for argument in args:
                if isinstance(argument, dict):  # Keras 3: {"class_name": "__keras_tensor__"}
                    sources.append(argument["config"]["keras_history"][0])
                elif isinstance(argument, list) and argument:  # Keras 2: [name, 0, 0, {}]
                    sources.append(argument[0])
        expected = [] if previous is None else [previous]
        if sources != expected:
            raise KerasConfigError(
                f"model {config.get('name')!r} is not a plain chain of layers (layer "
                f"{layer['config'].get('name')!r} takes {sources}); minicnn runs chains only")
        previous = layer.get("name", layer["config"].get("name"))
    output = config.get("output_layers")
    if output and (output[0] if isinstance(output[0], str) else output[0][0]) != previous:
        raise KerasConfigError(f"model {config.get('name')!r}: its output is not its last layer")
    return layers


def keras_layers(entry: dict) -> list[dict]:
    """A Keras model entry's layers as its ``layers`` attribute lists them: a functional
    model's include its InputLayer, a Sequential's do not."""
    layers = entry["config"]["layers"]
    if entry["class_name"] == "Functional":
        return _chain_of(entry)
    return [layer for layer in layers if layer["class_name"] != "InputLayer"]


def minicnn_model_config(entry: dict) -> dict:
    """The minicnn model config (``Sequential.get_config()``'s form, with the class under
    ``"class_name"``) of a Keras ``Sequential`` or chain-shaped ``Functional`` entry.

    Raises:
        KerasConfigError: not a model minicnn can run (the message says why).
    """
    class_name = entry.get("class_name")
    if class_name not in MODEL_CLASSES:
        raise KerasConfigError(f"the file holds a {class_name!r}; minicnn reads Sequential and "
                               "Functional (chain) models")
    config = entry["config"]
    input_shape = None
    layers = []
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"].get("batch_shape") or layer["config"].get("batch_input_shape")
            input_shape = list(shape[1:])
            continue
        if input_shape is None and not layers and "batch_input_shape" in layer["config"]:
            input_shape = list(layer["config"]["batch_input_shape"][1:])
        if layer["class_name"] in MODEL_CLASSES:
            nested = minicnn_model_config(layer)
            layers.append({"class_name": nested.pop("class_name"), "config": nested})
        else:
            layers.append(minicnn_layer_config(layer))
    if class_name == "Functional":
        _chain_of(entry)
    if input_shape is None and config.get("build_input_shape"):
        input_shape = list(config["build_input_shape"][1:])
    if input_shape is None or any(size is None for size in input_shape):
        raise KerasConfigError(f"model {config.get('name')!r} has no fixed input shape "
                               f"({input_shape}); minicnn models need one")
    return {"class_name": class_name, "name": config["name"],
            "trainable": bool(config.get("trainable", True)), "input_shape": input_shape,
            "layers": layers}

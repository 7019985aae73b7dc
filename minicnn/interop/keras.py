"""Move models and weights between minicnn and Keras 3, and compare their summaries.

Both engines store parameters the same way (NHWC activations, HWIO Conv2D kernels,
Dense kernels ``(in, out)``, kernel before bias), so a transfer is a copy of the
``get_weights()`` list: no transposes, no reordering.

    from minicnn.interop.keras import from_keras, to_keras, load_weights
    model = from_keras(keras_model)          # same layers, names, weights, trainable flags
    keras_model = to_keras(model)            # the reverse
    load_weights(model, "vgg16_notop.h5")    # a Keras weights file, read with h5py only

Keras (and TensorFlow) are imported inside the functions that need them, through the
one quiet import :func:`import_keras`, never at import time: ``import minicnn`` must
stay light.  ``load_weights`` (:mod:`~minicnn.interop.keras_files`) needs only h5py;
the summary verdict and Keras's builds of the registry models are in
:mod:`~minicnn.interop.keras_reference`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from minicnn import initializers as minicnn_initializers
from minicnn.interop.keras_files import load_weights
from minicnn.interop.keras_import import import_keras
from minicnn.interop.keras_reference import (compare_summaries, format_verdict,
                                             keras_reference_model, keras_summary_rows,
                                             keras_summary_totals)
from minicnn.layers import (Activation, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Input,
                            MaxPooling2D)
from minicnn.layers.base import Layer
from minicnn.models import Sequential

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

__all__ = ["SUPPORTED_LAYERS", "UnsupportedKerasLayerError", "compare_summaries",
           "format_verdict", "from_keras", "import_keras", "keras_layer_from_minicnn",
           "keras_reference_model", "keras_summary_rows", "keras_summary_totals",
           "load_weights", "minicnn_config_from_keras", "to_keras"]

# The old private name, still used by minicnn/interop/keras_step.py.
_import_keras = import_keras


# ----------------------------------------------------------------------------- Keras -> minicnn
def _keras_layers_in_order(keras_model) -> list:
    """The model's layers from input to output, without the InputLayer.

    Accepts a ``keras.Sequential`` or a functional ``keras.Model`` that is a plain
    chain (one input, one output, each layer fed by the previous one), such as
    ``keras.applications.VGG16``.  Anything else cannot become a minicnn Sequential.
    """
    keras = import_keras()
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
    keras = import_keras()
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
    keras = import_keras()
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
    flags and weights.  A model used as a layer (the book's ``model.add(conv_base)``)
    becomes a nested Keras model the same way, with its layers' own trainable flags.

    Raises:
        ValueError: ``model`` is not built (its input shape is unknown).
    """
    keras = import_keras()
    if not model.built or model.input_spec is None:
        raise ValueError(
            f"model {model.name!r} is not built: give it an Input(shape) first so Keras can "
            "create the same weights")
    keras_layers = [to_keras(layer) if isinstance(layer, Sequential)
                    else keras_layer_from_minicnn(layer) for layer in model.layers]
    keras_model = keras.Sequential(
        [keras.Input(shape=model.input_spec.shape, dtype=model.input_spec.dtype.name),
         *keras_layers], name=model.name)
    for layer, keras_layer in zip(model.layers, keras_layers):
        if isinstance(layer, Sequential):
            # Keras 3 sets ``trainable`` on every layer inside, so only a frozen model is
            # told: its layers already carry their own flags.
            if not layer.trainable:
                keras_layer.trainable = False
        else:
            keras_layer.set_weights(layer.get_weights())
    return keras_model

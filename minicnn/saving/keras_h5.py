"""Keras's legacy ``.h5`` model file (the book's ``model.save('cats_and_dogs_small_1.h5')``),
written and read with h5py alone.

Layout (``keras/src/legacy/saving/legacy_h5_format.py``): the root's attributes hold
``model_config`` (JSON, :mod:`.keras_config` in its legacy form) and, once compiled,
``training_config``; ``model_weights`` has ``layer_names`` and one group per layer,
whose ``weight_names`` attribute lists its arrays in the order of the layer's
``trainable_weights + non_trainable_weights`` (for a nested model whose layers are
partly frozen, that is not the layer order); ``optimizer_weights`` holds the
optimizer's variables.  Keras matches layers with weights by position, as here.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from minicnn.files import atomic_write
from minicnn.saving.h5 import KERAS_FORMAT_VERSION, decode, import_h5py
from minicnn.saving.keras_config import is_model, keras_model_config
from minicnn.saving.keras_training import compile_config, optimizer_variables


def _names(values: list[str]) -> np.ndarray:
    # As Keras writes them: bytes, or an empty float array when there are none.
    return np.asarray([value.encode("utf8") for value in values])


def legacy_weights(layer) -> list:
    """A layer's variables in the order a legacy ``.h5`` file stores them."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def save_h5(model, path: str | os.PathLike) -> None:
    """Write ``model`` as a Keras legacy ``.h5`` file, atomically."""
    h5py = import_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.attrs["backend"] = "tensorflow"
        handle.attrs["keras_version"] = KERAS_FORMAT_VERSION
        handle.attrs["model_config"] = json.dumps(keras_model_config(model, legacy=True))
        weights = handle.create_group("model_weights")
        weights.attrs["backend"] = "tensorflow"
        weights.attrs["keras_version"] = KERAS_FORMAT_VERSION
        weights.attrs["layer_names"] = _names([layer.name for layer in model.layers])
        for layer in model.layers:
            group = weights.create_group(layer.name)
            variables = legacy_weights(layer)
            # Keras names a top-level layer's arrays by their path from the model.
            prefix = "" if is_model(layer) else f"{model.name}/"
            names = [f"{prefix}{variable.name}" for variable in variables]
            group.attrs["weight_names"] = _names(names)
            for name, variable in zip(names, variables):
                group.create_dataset(name, data=variable.value)
        weights.create_group("top_level_model_weights").attrs["weight_names"] = _names([])
        training = compile_config(model, legacy=True)
        if training is not None:
            handle.attrs["training_config"] = json.dumps(training)
            values = optimizer_variables(model)
            optimizer = handle.create_group("optimizer_weights")
            name = model.optimizer.name
            names = [f"{name}/iteration", f"{name}/learning_rate"] + [
                f"{name}/slot_{index}" for index in range(len(values) - 2)]
            optimizer.attrs["weight_names"] = _names(names)
            for slot_name, value in zip(names, values):
                optimizer.create_dataset(slot_name, data=value)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _list_attribute(group, name: str) -> list[str]:
    if name in group.attrs:
        return [decode(value) for value in group.attrs[name]]
    # Keras splits long attributes into name0, name1, ...
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values.extend(decode(value) for value in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return values


def read_h5(path: str | os.PathLike) -> dict:
    """``{"config": Keras model entry, "layer_weights": [[arrays] per layer with weights,
    legacy order], "compile_config": dict | None, "optimizer": [arrays]}``.

    Raises:
        ValueError: a weights-only file (no ``model_config``), with what to do instead.
    """
    h5py = import_h5py()
    with h5py.File(path, "r") as handle:
        if "model_config" not in handle.attrs:
            raise ValueError(
                f"{os.fspath(path)!r} holds weights only (no model_config): build the model, "
                "then load them with minicnn.interop.keras.load_weights(model, path)")
        config = json.loads(decode(handle.attrs["model_config"]))
        training = handle.attrs.get("training_config")
        weights = handle["model_weights"]
        layer_weights = []
        for name in _list_attribute(weights, "layer_names"):
            group = weights[name]
            arrays = [np.asarray(group[weight]) for weight in _list_attribute(group, "weight_names")]
            if arrays:
                layer_weights.append(arrays)
        optimizer = []
        if "optimizer_weights" in handle:
            group = handle["optimizer_weights"]
            optimizer = [np.asarray(group[name])
                         for name in _list_attribute(group, "weight_names")]
    return {"config": config, "layer_weights": layer_weights,
            "compile_config": json.loads(decode(training)) if training is not None else None,
            "optimizer": optimizer}

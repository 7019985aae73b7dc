"""Keras 3's ``.keras`` file: a zip of ``config.json``, ``metadata.json`` and
``model.weights.h5``, written and read with json, zipfile and h5py (no Keras).

``config.json`` is the model's description (:mod:`.keras_config`) with its
``compile_config``.  ``model.weights.h5`` mirrors the model's structure
(``keras/src/saving/saving_lib.py``): each model has a ``vars`` group and a ``layers``
group holding one group per layer, named after the layer's *class* in snake case with
a counter per model (``conv2d``, ``conv2d_1``, ..., ``functional``), each with
``vars/0``, ``vars/1``, ... (kernel, bias); a functional model lists its input layer
too; the optimizer's variables are ``optimizer/vars/0...``.  Layers are matched by
that position, as Keras does, not by their names.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile

import numpy as np

from minicnn.files import atomic_write
from minicnn.naming import to_snake_case
from minicnn.saving.h5 import KERAS_FORMAT_VERSION, import_h5py
from minicnn.saving.keras_config import is_model, keras_layers, keras_model_config
from minicnn.saving.keras_training import compile_config, optimizer_variables

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's per-container key: ``conv2d``, then ``conv2d_1``, ``conv2d_2``, ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _write_vars(group, name: str, arrays: list[np.ndarray]) -> None:
    variables = group.create_group("vars")
    variables.attrs["name"] = name
    for index, value in enumerate(arrays):
        variables.create_dataset(str(index), data=value)


def _write_model(group, model) -> None:
    _write_vars(group, model.name, [])
    layers = group.create_group("layers")
    used: dict[str, int] = {}
    if type(model).__name__ == "Functional":
        _write_vars(layers.create_group(_unique("input_layer", used)), "input_layer", [])
    for layer in model.layers:
        child = layers.create_group(_unique(to_snake_case(type(layer).__name__), used))
        if is_model(layer):
            _write_model(child, layer)
        else:
            _write_vars(child, layer.name, layer.get_weights())


def save_keras(model, path: str | os.PathLike) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file, atomically."""
    h5py = import_h5py()
    config = keras_model_config(model)
    training = compile_config(model)
    if training is not None:
        config["compile_config"] = training
    metadata = {"keras_version": KERAS_FORMAT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = io.BytesIO()
    with h5py.File(weights, "w") as handle:
        _write_model(handle, model)
        if model.optimizer is not None:
            optimizer = handle.create_group("optimizer")
            _write_vars(optimizer, model.optimizer.name, optimizer_variables(model))

    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(METADATA, json.dumps(metadata))
            archive.writestr(CONFIG, json.dumps(config))
            archive.writestr(WEIGHTS, weights.getvalue())

    atomic_write(path, write)


def _read_vars(group) -> list[np.ndarray]:
    variables = group["vars"]
    return [np.asarray(variables[str(index)]) for index in range(len(variables))]


def _read_model(group, entry: dict) -> list[np.ndarray]:
    """The model's weights in ``get_weights()`` order."""
    arrays: list[np.ndarray] = []
    used: dict[str, int] = {}
    for layer in keras_layers(entry):
        key = _unique(to_snake_case(layer["class_name"]), used)
        if layer["class_name"] == "InputLayer":
            continue
        child = group["layers"][key]
        if layer["class_name"] in ("Sequential", "Functional"):
            arrays.extend(_read_model(child, layer))
        else:
            arrays.extend(_read_vars(child))
    return arrays


def read_keras(path: str | os.PathLike) -> dict:
    """``{"config": Keras model entry, "weights": [arrays in get_weights order],
    "compile_config": dict | None, "optimizer": [arrays]}`` from a ``.keras`` file."""
    h5py = import_h5py()
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read(CONFIG))
        weights = io.BytesIO(archive.read(WEIGHTS))
    with h5py.File(weights, "r") as handle:
        arrays = _read_model(handle, config)
        optimizer = _read_vars(handle["optimizer"]) if "optimizer" in handle else []
    return {"config": config, "weights": arrays, "legacy_order": False,
            "compile_config": config.get("compile_config") or None, "optimizer": optimizer}

"""Keras weights files read into a minicnn model with h5py alone (no TensorFlow):
Keras 3 ``.weights.h5`` files and Keras 2 style ``.h5`` files (the ImageNet VGG16
weights).  ``minicnn.interop.keras.load_weights`` is :func:`load_weights`."""

from __future__ import annotations

import os

import numpy as np

from minicnn.layers.base import Layer
from minicnn.models import Sequential
from minicnn.naming import to_snake_case

__all__ = ["load_weights"]


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

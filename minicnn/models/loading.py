"""Reading a model back from its file: ``minicnn.models.load_model(path)``.

Three formats, told apart by their first bytes: minicnn's ``.npz`` (:mod:`minicnn.io`),
Keras 3's ``.keras`` zip and Keras's legacy ``.h5`` (:mod:`minicnn.saving`).  Each
gives a model config in minicnn's form and the weights; this module rebuilds the
:class:`~minicnn.models.Sequential` model (nested models included) from them.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from minicnn import layers as layers_module
from minicnn import losses, optimizers
from minicnn.io import (BAD_CONTENT_ERRORS, DAMAGED_ARCHIVE_ERRORS, ModelFileError,
                        parse_json_entry, read_model_file)
from minicnn.models.functional import Functional
from minicnn.models.sequential import Sequential
from minicnn.saving.keras_archive import CONFIG, read_keras
from minicnn.saving.keras_config import KerasConfigError, minicnn_model_config
from minicnn.saving.keras_h5 import legacy_weights, read_h5
from minicnn.saving.keras_training import compile_from_config, restore_optimizer

MODEL_CLASSES = {"Sequential": Sequential, "Functional": Functional}
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def load_model(path: str | os.PathLike, compile: bool = True):  # noqa: A002 (Keras's name)
    """Rebuild the model saved at ``path`` (``.npz``, ``.keras`` or ``.h5``): architecture,
    weights, and (when saved) the compiled loss, metrics and optimizer state.

    Raises:
        ModelFileError: the file is missing, truncated, corrupted, of a newer format
            version, not a model, or its contents do not make a valid model (an
            unknown layer class, bad layer arguments, weights of the wrong shapes), or it
            is a Keras file (``.keras``, ``.h5``) and h5py (the ``h5`` extra) is missing.
    """
    kind = _file_kind(path)
    try:
        if kind == "npz":
            return _model_from_arrays(read_model_file(path), path, compile)
        return _model_from_keras_file(path, kind, compile)
    except ModelFileError:
        raise
    except ImportError as error:
        # h5py missing: the file cannot be read here, which is the file reader's one
        # documented error (the message says how to install it).
        raise ModelFileError(f"{str(path)!r} is a Keras {kind} file: {error}") from error
    except BAD_CONTENT_ERRORS as error:
        # A layer refusing its saved arguments, set_weights refusing a shape, ...:
        # the file is damaged (or was edited), which is what the caller must hear.
        raise ModelFileError(
            f"{str(path)!r}: its contents do not make a valid minicnn model "
            f"({type(error).__name__}: {error})") from error


def _file_kind(path) -> str:
    """``"npz"``, ``"keras"`` or ``"h5"`` from the file's first bytes."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError:
        return "npz"  # read_model_file says what is wrong
    if magic == HDF5_MAGIC:
        return "h5"
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                if CONFIG in archive.namelist():
                    return "keras"
        except DAMAGED_ARCHIVE_ERRORS:
            pass  # read_model_file says what is wrong with the archive
    return "npz"


def build_model(config: dict, cls=Sequential):
    """A built model from minicnn's model config (``Sequential.get_config()``'s form),
    nested models included; ``trainable`` flags as saved, weights fresh."""
    try:
        model = cls(name=config["name"])
        if config.get("input_shape") is not None:
            model.add(layers_module.Input(tuple(config["input_shape"])))
        for entry in config["layers"]:
            if entry["class_name"] in MODEL_CLASSES:
                model.add(build_model(entry["config"], MODEL_CLASSES[entry["class_name"]]))
                continue
            layer_class = layers_module.LAYER_CLASSES.get(entry["class_name"])
            if layer_class is None:
                raise ModelFileError(
                    f"unknown layer class {entry['class_name']!r}; known: "
                    f"{sorted(layers_module.LAYER_CLASSES) + sorted(MODEL_CLASSES)}")
            layer_config = dict(entry["config"])
            if model.layers or config.get("input_shape") is not None:
                layer_config.pop("input_shape", None)
            model.add(layer_class(**layer_config))
        # Not through the setter: the layers keep their own saved flags.
        model._trainable = bool(config.get("trainable", True))
    except (KeyError, TypeError) as error:
        raise ModelFileError(f"malformed model_config: {error!r}") from error
    return model


def _model_from_arrays(arrays: dict[str, np.ndarray], path, compile: bool):  # noqa: A002
    config = parse_json_entry(arrays, "model_config", path)
    try:
        model = build_model(config)
    except ModelFileError as error:
        raise ModelFileError(f"{str(path)!r}: {error}") from error
    weight_names = sorted(name for name in arrays if name.startswith("weight_"))
    model.set_weights([arrays[name] for name in weight_names])
    if compile and "compile_config" in arrays:
        compile_config = parse_json_entry(arrays, "compile_config", path)

        model.compile(optimizer=optimizers.from_config(compile_config["optimizer"]),
                      loss=losses.from_config(compile_config["loss"]),
                      metrics=compile_config["metrics"])
        slot_names = sorted(name for name in arrays if name.startswith("optimizer_slot_"))
        if slot_names or int(arrays.get("optimizer_iterations", 0)):
            model.optimizer.set_state(
                {"iterations": int(arrays["optimizer_iterations"]),
                 "slots": [arrays[name] for name in slot_names]},
                model.trainable_weights)
    model.extra = parse_json_entry(arrays, "extra_json", path) if "extra_json" in arrays else {}
    model.extra_arrays = {name[len("extra_array_"):]: value for name, value in arrays.items()
                          if name.startswith("extra_array_")}
    return model


def _set_legacy_weights(model, layer_weights: list[list[np.ndarray]], path) -> None:
    """Keras's legacy rule: the layers with weights, in order, each taking its arrays in
    ``trainable_weights + non_trainable_weights`` order."""
    weighted = [layer for layer in model.layers if layer.weights]
    if len(weighted) != len(layer_weights):
        raise ModelFileError(f"{str(path)!r}: {len(layer_weights)} layers with weights in the "
                             f"file, {len(weighted)} in its model_config")
    for layer, arrays in zip(weighted, layer_weights):
        variables = legacy_weights(layer)
        if [np.shape(a) for a in arrays] != [v.shape for v in variables]:
            raise ModelFileError(
                f"{str(path)!r}: layer {layer.name!r} expects weights of shapes "
                f"{[v.shape for v in variables]}, the file has {[np.shape(a) for a in arrays]}")
        for variable, value in zip(variables, arrays):
            variable.assign(np.asarray(value, dtype=variable.dtype))


def _model_from_keras_file(path, kind: str, compile: bool):  # noqa: A002
    try:
        contents = read_keras(path) if kind == "keras" else read_h5(path)
        config = minicnn_model_config(contents["config"])
    except (KerasConfigError, KeyError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise ModelFileError(f"{str(path)!r}: not a Keras model minicnn can read "
                             f"({type(error).__name__}: {error})") from error
    model = build_model(config, MODEL_CLASSES[config["class_name"]])
    if "weights" in contents:
        model.set_weights(contents["weights"])
    else:
        _set_legacy_weights(model, contents["layer_weights"], path)
    if compile and contents["compile_config"]:
        compile_from_config(model, contents["compile_config"], str(path))
        restore_optimizer(model, contents["optimizer"], str(path))
    model.extra, model.extra_arrays = {}, {}
    return model

"""Reading a model back from its ``.npz`` file: ``minicnn.load_model(path)``.

The file format (and writing it) is :mod:`minicnn.io`; this module rebuilds the
:class:`~minicnn.models.Sequential` model from its arrays, layer class by layer class.
"""

from __future__ import annotations

import os

import numpy as np

from minicnn import layers as layers_module
from minicnn import losses, optimizers
from minicnn.io import BAD_CONTENT_ERRORS, ModelFileError, parse_json_entry, read_model_file
from minicnn.models.sequential import Sequential


def load_model(path: str | os.PathLike, compile: bool = True):  # noqa: A002 (Keras's name)
    """Rebuild the model saved at ``path``: architecture, weights, and (when saved)
    the compiled loss, metrics and optimizer state.

    Raises:
        ModelFileError: the file is missing, truncated, corrupted, of a newer format
            version, not a model, or its contents do not make a valid model (an
            unknown layer class, bad layer arguments, weights of the wrong shapes).
    """
    arrays = read_model_file(path)
    try:
        return _model_from_arrays(arrays, path, compile)
    except ModelFileError:
        raise
    except BAD_CONTENT_ERRORS as error:
        # A layer refusing its saved arguments, set_weights refusing a shape, ...:
        # the file is damaged (or was edited), which is what the caller must hear.
        raise ModelFileError(
            f"{str(path)!r}: its contents do not make a valid minicnn model "
            f"({type(error).__name__}: {error})") from error


def _model_from_arrays(arrays: dict[str, np.ndarray], path, compile: bool):  # noqa: A002
    config = parse_json_entry(arrays, "model_config", path)
    try:
        model = Sequential(name=config["name"])
        if config.get("input_shape") is not None:
            model.add(layers_module.Input(tuple(config["input_shape"])))
        for entry in config["layers"]:
            cls = layers_module.LAYER_CLASSES.get(entry["class_name"])
            if cls is None:
                raise ModelFileError(
                    f"{str(path)!r}: unknown layer class {entry['class_name']!r}; known: "
                    f"{sorted(layers_module.LAYER_CLASSES)}")
            layer_config = dict(entry["config"])
            if model.layers or config.get("input_shape") is not None:
                layer_config.pop("input_shape", None)
            model.add(cls(**layer_config))
    except (KeyError, TypeError) as error:
        raise ModelFileError(f"{str(path)!r}: malformed model_config: {error!r}") from error
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

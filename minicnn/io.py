"""Saving and loading models: one ``.npz`` file with the architecture and the weights.

File layout (a NumPy ``.npz``, readable with ``allow_pickle=False`` -- no code runs on load):

* ``format_version``: int, currently :data:`FORMAT_VERSION`;
* ``model_config``: JSON text of ``Sequential.get_config()`` (layer classes and arguments);
* ``weight_00000``, ``weight_00001``, ...: the arrays of ``model.get_weights()``;
* optionally ``optimizer_config`` (JSON) and ``optimizer_slot_*`` arrays, and
  ``extra_json`` (JSON) with anything a caller adds (checkpoints store training state).

Every file is written atomically: a temporary file in the same folder, flushed and
fsynced, then renamed over the target, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.files import atomic_write

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that is missing, truncated, corrupted, too new, or not a model."""


# What ``np.load`` raises on damaged bytes (found by tests/test_fuzz_readers.py):
# zipfile's BadZipFile, and NotImplementedError for header flags it does not support
# (a "zip file version 7.8", "strong encryption"); zlib.error for a broken deflate
# stream; EOFError / OSError for a short or bad offset; ValueError, SyntaxError or
# tokenize.TokenError for an unparsable .npy header; MemoryError or OverflowError for a
# header that declares an array larger than memory.
_DAMAGED_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
                           zlib.error, EOFError, OSError, ValueError, KeyError, SyntaxError,
                           tokenize.TokenError, MemoryError, OverflowError)
# What rebuilding a model from well-formed arrays with the wrong contents raises.
_BAD_CONTENT_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError,
                       OverflowError, RecursionError)


def _json_array(value: Any) -> np.ndarray:
    return np.array(json.dumps(value))


def save_model(model, path: str | os.PathLike, extra: dict | None = None,
               include_optimizer: bool = True,
               extra_arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``model`` (architecture, weights, optionally optimizer state) to ``path``.

    ``extra`` (JSON-friendly) and ``extra_arrays`` ride along unchanged; checkpoints
    keep their training state there.  ``load_model`` returns them as ``model.extra``
    and ``model.extra_arrays``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"model files end in .npz, received {str(path)!r}")
    model._require_built("save")
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "model_config": _json_array(model.get_config()),
    }
    for index, value in enumerate(model.get_weights()):
        arrays[f"weight_{index:05d}"] = value
    if include_optimizer and model.optimizer is not None:
        from minicnn import losses, optimizers

        arrays["compile_config"] = _json_array({
            "optimizer": optimizers.serialize(model.optimizer),
            "loss": losses.serialize(model.loss),
            "metrics": [metric.name for metric in model.metrics],
        })
        state = model.optimizer.get_state()
        arrays["optimizer_iterations"] = np.array(state["iterations"])
        for index, slot in enumerate(state["slots"]):
            arrays[f"optimizer_slot_{index:05d}"] = slot
    if extra is not None:
        arrays["extra_json"] = _json_array(extra)
    for name, value in (extra_arrays or {}).items():
        arrays[f"extra_array_{name}"] = np.asarray(value)
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def read_model_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of a model file, with each failure turned into a clear ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if not magic.startswith(b"PK"):
            # np.load would call any other file "pickled data" and suggest
            # allow_pickle=True: never the advice to give about a file of unknown origin.
            what = ("empty" if not magic else "a single NumPy array (a .npy file)"
                    if magic == b"\x93NUMPY" else f"not a .npz (zip) archive: it starts with "
                    f"{magic!r}")
            raise ModelFileError(f"{str(path)!r} is not a minicnn model file (a .npz written "
                                 f"by model.save); it is {what}")
        archive = np.load(path, allow_pickle=False)
        with archive:
            arrays = {name: archive[name] for name in archive.files}
        for name, value in arrays.items():
            # NpzFile hands back a member without the .npy magic as raw bytes.
            if not isinstance(value, np.ndarray):
                raise ModelFileError(f"{str(path)!r}: entry {name!r} is not a NumPy array; the "
                                     f"file is corrupted or not a minicnn model file")
    except ModelFileError:
        raise
    except MemoryError as error:
        raise ModelFileError(
            f"{str(path)!r} declares arrays larger than this machine's memory (the file "
            f"is corrupted, or too big to load here): {error}") from error
    except _DAMAGED_ARCHIVE_ERRORS as error:
        raise ModelFileError(
            f"{str(path)!r} is not a readable minicnn model file (a .npz written by "
            f"model.save); it may be truncated or corrupted: {type(error).__name__}: "
            f"{error}") from error
    if "format_version" not in arrays or "model_config" not in arrays:
        raise ModelFileError(
            f"{str(path)!r} is a .npz file but not a minicnn model: it lacks "
            f"'format_version' and 'model_config' (found {sorted(arrays)[:5]})")
    try:
        version = int(arrays["format_version"])
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFileError(f"{str(path)!r}: 'format_version' is not an integer "
                             f"({error})") from error
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has model format version {version}, newer than this minicnn "
            f"reads ({FORMAT_VERSION}); upgrade minicnn")
    return arrays


def _parse_json(arrays: dict[str, np.ndarray], key: str, path) -> Any:
    try:
        return json.loads(str(arrays[key]))
    except (json.JSONDecodeError, TypeError, RecursionError) as error:
        raise ModelFileError(f"{str(path)!r}: entry {key!r} is not valid JSON: {error}") from error


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
    except _BAD_CONTENT_ERRORS as error:
        # A layer refusing its saved arguments, set_weights refusing a shape, ...:
        # the file is damaged (or was edited), which is what the caller must hear.
        raise ModelFileError(
            f"{str(path)!r}: its contents do not make a valid minicnn model "
            f"({type(error).__name__}: {error})") from error


def _model_from_arrays(arrays: dict[str, np.ndarray], path, compile: bool):  # noqa: A002
    from minicnn import layers as layers_module
    from minicnn.models.sequential import Sequential

    config = _parse_json(arrays, "model_config", path)
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
        compile_config = _parse_json(arrays, "compile_config", path)
        from minicnn import losses, optimizers

        model.compile(optimizer=optimizers.from_config(compile_config["optimizer"]),
                      loss=losses.from_config(compile_config["loss"]),
                      metrics=compile_config["metrics"])
        slot_names = sorted(name for name in arrays if name.startswith("optimizer_slot_"))
        if slot_names or int(arrays.get("optimizer_iterations", 0)):
            model.optimizer.set_state(
                {"iterations": int(arrays["optimizer_iterations"]),
                 "slots": [arrays[name] for name in slot_names]},
                model.trainable_weights)
    model.extra = _parse_json(arrays, "extra_json", path) if "extra_json" in arrays else {}
    model.extra_arrays = {name[len("extra_array_"):]: value for name, value in arrays.items()
                          if name.startswith("extra_array_")}
    return model

"""The model file: one ``.npz`` with the architecture and the weights, written and read.

Rebuilding a model from it is :func:`minicnn.models.loading.load_model`.

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

from minicnn import losses, optimizers
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
DAMAGED_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
                           zlib.error, EOFError, OSError, ValueError, KeyError, SyntaxError,
                           tokenize.TokenError, MemoryError, OverflowError)
# What rebuilding a model from well-formed arrays with the wrong contents raises.
BAD_CONTENT_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError,
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
    if not model.built:
        raise ValueError(f"Model {model.name!r} has not been built: there are no weights to "
                         f"save yet (give it an input shape or call it on data first)")
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "model_config": _json_array(model.get_config()),
    }
    for index, value in enumerate(model.get_weights()):
        arrays[f"weight_{index:05d}"] = value
    if include_optimizer and model.optimizer is not None:
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
    except DAMAGED_ARCHIVE_ERRORS as error:
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


def parse_json_entry(arrays: dict[str, np.ndarray], key: str, path) -> Any:
    try:
        return json.loads(str(arrays[key]))
    except (json.JSONDecodeError, TypeError, RecursionError) as error:
        raise ModelFileError(f"{str(path)!r}: entry {key!r} is not valid JSON: {error}") from error

"""Model files: minicnn's ``.npz`` (:mod:`minicnn.io`) and Keras's own ``.keras`` and
legacy ``.h5`` formats, chosen by the file's extension::

    model.save("cats_and_dogs_small_1.h5")      # Keras's legacy format (the book's)
    model.save("model.keras")                   # Keras 3's format
    model.save("model.npz")                     # minicnn's own
    keras.models.load_model("model.keras")      # Keras 3 opens the first two
    minicnn.models.load_model("model.h5")       # and minicnn reads all three back

The Keras formats are written and read with json, zipfile and h5py only (``pip install
minicnn[h5]``); Keras and TensorFlow are never imported.  Reading rebuilds the model
from Keras's description (:mod:`.keras_config`) in :mod:`minicnn.models.loading`.
"""

from __future__ import annotations

import os
from pathlib import Path

from minicnn import io as npz_io
from minicnn.saving.keras_archive import save_keras
from minicnn.saving.keras_h5 import save_h5

KERAS_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


def save_model(model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` in the format its extension names, atomically.

    Raises:
        ValueError: another extension, or a model that is not built.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        npz_io.save_model(model, path)
        return
    if suffix not in KERAS_SUFFIXES:
        raise ValueError(f"model files end in .npz (minicnn's), .keras or .h5 (Keras's), "
                         f"received {os.fspath(path)!r}")
    if not model.built:
        raise ValueError(f"Model {model.name!r} has not been built: there are no weights to "
                         f"save yet (give it an input shape or call it on data first)")
    if KERAS_SUFFIXES[suffix] == "keras":
        save_keras(model, path)
    else:
        save_h5(model, path)

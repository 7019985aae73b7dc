"""h5py, imported only when a Keras file is written or read (it is the ``h5`` extra)."""

from __future__ import annotations

# The Keras version whose file formats minicnn writes (config keys, weight layout).
KERAS_FORMAT_VERSION = "3.0.0"


def import_h5py():
    """The h5py module, or an ImportError that says how to install it."""
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "Keras's .h5 and .keras files need h5py, which is not installed: "
            "pip install minicnn[h5]  (or pip install h5py); minicnn's own .npz files "
            "need nothing more") from error
    return h5py


def decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)

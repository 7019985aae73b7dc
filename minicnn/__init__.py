"""minicnn: a convnet engine written from scratch in NumPy and Numba, checked against Keras.

    import minicnn
    from minicnn import Sequential, Input, layers, optimizers, losses
"""

from minicnn import (activations, callbacks, initializers, layers, losses, metrics, models,
                     optimizers, utils)
from minicnn.backend import available_backends, get_backend_name, set_backend
from minicnn.models.loading import load_model
from minicnn.layers import Input
from minicnn.models import Sequential
from minicnn.random import set_random_seed



def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written).

    From a source checkout that was never installed (``PYTHONPATH=.``), read it from the
    ``pyproject.toml`` beside the package; ``"0+unknown"`` if neither is there.
    """
    from importlib import metadata
    from pathlib import Path

    try:
        return metadata.version("minicnn")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        for line in pyproject.read_text(encoding="utf-8").splitlines():
            if line.startswith("version") and "=" in line:
                return line.split("=", 1)[1].strip().strip('"').strip("'")
    except OSError:
        pass
    return "0+unknown"


__version__ = _version()


def __getattr__(name: str):
    # Heavier subpackages load on first use: ``minicnn.datasets``, ``minicnn.viz``, ...
    import importlib

    if name in ("datasets", "applications", "interop", "viz", "preprocessing"):
        return importlib.import_module(f"minicnn.{name}")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")


__all__ = ["__version__", "Sequential", "Input", "layers", "models", "optimizers", "losses", "metrics", "callbacks",
           "activations", "initializers", "utils", "load_model", "set_backend",
           "get_backend_name", "available_backends", "set_random_seed"]

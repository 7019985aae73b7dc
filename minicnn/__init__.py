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

__version__ = "0.1.0"


def __getattr__(name: str):
    # Heavier subpackages load on first use: ``minicnn.datasets``, ``minicnn.viz``, ...
    import importlib

    if name in ("datasets", "applications", "interop", "viz", "preprocessing"):
        return importlib.import_module(f"minicnn.{name}")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")


__all__ = ["Sequential", "Input", "layers", "models", "optimizers", "losses", "metrics", "callbacks",
           "activations", "initializers", "utils", "load_model", "set_backend",
           "get_backend_name", "available_backends", "set_random_seed"]

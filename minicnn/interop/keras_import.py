"""The one quiet Keras import: every place that needs Keras (the bridge, ``compare/``,
``benchmarks/``, the tests) gets it from :func:`import_keras`."""

from __future__ import annotations

import os


def import_keras(require_tensorflow: bool = False):
    """Import Keras 3 with TensorFlow's start-up logging silenced; return the module.

    Sets, unless already set, ``TF_CPP_MIN_LOG_LEVEL=3`` (TensorFlow's C++ start-up
    lines) and ``KERAS_BACKEND=tensorflow`` (Keras's own default).

    Args:
        require_tensorflow: refuse another Keras backend (the comparisons measure
            Keras on TensorFlow).
    Raises:
        RuntimeError: Keras is not installed (with the install hint), or
            ``require_tensorflow`` and Keras runs on another backend.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras
    except ImportError as error:
        raise RuntimeError(
            "this needs Keras 3 with TensorFlow: pip install 'minicnn[keras]' "
            f"({error})") from error
    if require_tensorflow and keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"the comparisons use Keras's TensorFlow backend, found "
                           f"{keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow)")
    return keras

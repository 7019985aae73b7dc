"""Helpers shared by the comparison scripts: the Keras twins of minicnn's models, the
same weights in both, and difference statistics.  Keras itself comes from the one quiet
import, ``minicnn.interop.keras.import_keras(require_tensorflow=True)``."""

from __future__ import annotations

import numpy as np

from minicnn.interop.keras import import_keras


def twins(name: str, seed: int = 0):
    """(minicnn model, Keras model built by Keras) for ``name``, holding the same
    random weights: minicnn draws them (Glorot uniform, zero biases, as Keras would),
    Keras receives a copy with ``set_weights``.

    ``name``: a name of :data:`minicnn.applications.registry.MODEL_NAMES`
    ("mnist-convnet", "vgg16-base", ...).
    """
    import minicnn
    from minicnn.applications.registry import build_model
    from minicnn.interop.keras import keras_reference_model

    import_keras(require_tensorflow=True)
    minicnn.set_random_seed(seed)
    model = build_model(name)
    keras_model = keras_reference_model(name)
    keras_model.set_weights(model.get_weights())
    return model, keras_model


def differences(ours: np.ndarray, theirs: np.ndarray, scale: np.ndarray | None = None) -> dict:
    """Largest absolute difference, and the same relative to the largest magnitude.

    ``max_rel = max|ours - theirs| / max|scale|`` with ``scale`` Keras's array unless
    given.  Relative to the array's largest value, not element by element: an
    elementwise ratio explodes on values that are round-off around zero, which every
    gradient has (dead ReLUs, cancelling sums) and which says nothing about agreement.
    """
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(f"shapes differ: minicnn {ours.shape}, Keras {theirs.shape}")
    scale = theirs if scale is None else np.asarray(scale, dtype=np.float64)
    largest_difference = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    largest = float(np.max(np.abs(scale))) if scale.size else 0.0
    return {"max_abs": largest_difference,
            "max_rel": largest_difference / largest if largest > 0 else
            (0.0 if largest_difference == 0 else float("inf")),
            "scale": largest}

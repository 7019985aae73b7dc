"""Small helpers with Keras's names: ``to_categorical``, ``set_random_seed``, ``clear_session``."""

from __future__ import annotations

import numpy as np

from minicnn.naming import clear_session
from minicnn.random import set_random_seed

__all__ = ["to_categorical", "set_random_seed", "clear_session"]


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot encode integer class labels: ``(N,)`` -> ``(N, num_classes)``, as Keras.

    A trailing axis of size 1 is dropped first (``(N, 1)`` labels work too).
    """
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
            raise ValueError(f"to_categorical expects integer class labels, received dtype "
                             f"{y.dtype}")
        y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, found {int(y.min())}")
    largest = int(y.max()) if y.size else -1
    if num_classes is None:
        num_classes = largest + 1
    elif largest >= num_classes:
        raise ValueError(f"to_categorical: label {largest} is out of range for "
                         f"num_classes={num_classes}")
    one_hot = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(one_hot, y[..., None], 1, axis=-1)
    return one_hot

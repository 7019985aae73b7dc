"""Accuracy metrics as Keras 3 computes them, and a running mean for the fit loop.

How Keras resolves ``metrics=["accuracy"]`` (keras/src/trainers/compile_utils.py,
``get_metric``): the string ``"accuracy"`` or ``"acc"`` (any case) becomes

- ``BinaryAccuracy`` (threshold 0.5) when the predictions' last axis has size 1;
- otherwise ``SparseCategoricalAccuracy`` when the labels have fewer axes than the
  predictions, or their last axis has size 1;
- otherwise ``CategoricalAccuracy``;

decided from the shapes of the first batch's ``y_true`` and ``y_pred``, *not* from the
loss.  The metric keeps the name the user wrote (``"accuracy"`` or ``"acc"``), which is
the key in ``history.history``.  :func:`get` takes the loss for symmetry with
``compile`` but, like Keras, does not use it.
"""

from __future__ import annotations

import numpy as np

ACCURACY_ALIASES = ("accuracy", "acc")


def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Elementwise ``1.0`` where ``[y_pred > threshold] == y_true``, else ``0.0`` (float32).

    Labels (N,) are compared with predictions (N, 1), as Keras's rank adjustment does.
    """
    y_true, y_pred = _same_rank(np.asarray(y_true), np.asarray(y_pred))
    predicted = (y_pred > threshold).astype(y_true.dtype)
    return (y_true == predicted).astype(np.float32)


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per sample ``1.0`` where ``argmax(y_true) == argmax(y_pred)`` (first index on ties)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical_accuracy expects one-hot labels of shape {y_pred.shape}, "
            f"received {y_true.shape}; use sparse_categorical_accuracy for integer labels")
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per sample ``1.0`` where the integer label equals ``argmax(y_pred)``.

    Labels may be (N,) or (N, 1).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
        y_true = y_true.reshape(y_true.shape[:-1])
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"sparse_categorical_accuracy expects integer labels of shape {y_pred.shape[:-1]}, "
            f"received {np.shape(y_true)}")
    return (y_true == np.argmax(y_pred, axis=-1)).astype(np.float32)


def _same_rank(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's squeeze_or_expand_to_same_rank: add or drop one trailing axis of size 1."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1:] == (1,):
        y_true = y_true[..., None]
    elif y_pred.ndim == y_true.ndim - 1 and y_true.shape[-1:] == (1,):
        y_pred = y_pred[..., None]
    return y_true, y_pred


def resolve_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """The accuracy Keras substitutes for ``"accuracy"`` given these shapes.

    Returns one of ``"binary_accuracy"``, ``"sparse_categorical_accuracy"``,
    ``"categorical_accuracy"`` (compile_utils.is_binary_or_sparse_categorical).
    """
    true_shape, predicted_shape = np.shape(y_true), np.shape(y_pred)
    if predicted_shape[-1:] == (1,):
        return "binary_accuracy"
    if len(true_shape) < len(predicted_shape) or (
            true_shape[-1:] == (1,) and predicted_shape[-1:] != (1,)):
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


_FUNCTIONS = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}
_CLASS_NAMES = {
    "BinaryAccuracy": "binary_accuracy",
    "CategoricalAccuracy": "categorical_accuracy",
    "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
}


class Metric:
    """A stateless batch metric: ``metric(y_true, y_pred)`` is its mean over the batch.

    ``name`` is what ``fit`` reports (``"accuracy"`` when the user wrote "accuracy");
    ``identifier`` is the string ``get`` rebuilds it from (saved with a model).
    For ``"accuracy"``/``"acc"`` the concrete function is chosen from the shapes on
    each call (:func:`resolve_accuracy`); ``resolved`` says which one was used last.
    """

    def __init__(self, name: str, function_name: str | None = None,
                 threshold: float = 0.5) -> None:
        self.name = name
        self.identifier = name
        self.function_name = function_name  # None: resolve "accuracy" from the shapes
        self.threshold = threshold
        self.resolved: str | None = function_name

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """The per-sample (binary: per-element) values, float32."""
        function_name = self.function_name or resolve_accuracy(y_true, y_pred)
        self.resolved = function_name
        if function_name == "binary_accuracy":
            return binary_accuracy(y_true, y_pred, self.threshold)
        return _FUNCTIONS[function_name](y_true, y_pred)

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """Mean of :meth:`values` over the batch (0.0 for an empty batch)."""
        values = self.values(y_true, y_pred)
        return float(np.mean(values)) if values.size else 0.0

    def __repr__(self) -> str:
        return f"<Metric {self.name} ({self.resolved or 'resolved on first batch'})>"


def get(identifier: str | Metric, loss: object = None) -> Metric:
    """Resolve a metric: ``"accuracy"``/``"acc"`` or an explicit accuracy name, or an instance.

    Args:
        identifier: ``"accuracy"``, ``"acc"`` (any case), ``"binary_accuracy"``,
            ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``, their Keras
            class names, or a :class:`Metric` (returned unchanged).
        loss: the compiled loss; accepted for symmetry with ``compile`` and unused,
            since Keras picks the accuracy from the data's shapes, not from the loss.

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ACCURACY_ALIASES:
            return Metric(name=identifier)
        function_name = _CLASS_NAMES.get(identifier, identifier.lower())
        if function_name in _FUNCTIONS:
            # Keras names a metric given as a string by that string.
            return Metric(name=identifier, function_name=function_name)
    raise ValueError(
        f"unknown metric {identifier!r}; expected one of {list(ACCURACY_ALIASES)}, "
        f"{sorted(_FUNCTIONS)}, {sorted(_CLASS_NAMES)} or a Metric instance")


class Mean:
    """Running weighted mean, as Keras's ``Mean`` metric tracks the loss during ``fit``.

    ``update(value, weight)`` adds ``value * weight`` to a total and ``weight`` to a
    count; ``result() = total / count`` (0.0 before any update).  ``fit`` passes the
    batch mean with the batch size as weight, so the epoch value is the mean over all
    samples even when the last batch is short.  Accumulated in float64.
    """

    def __init__(self, name: str = "mean") -> None:
        self.name = name
        self.total = 0.0
        self.count = 0.0

    def update(self, value: float, weight: float = 1.0) -> None:
        self.total += float(value) * float(weight)
        self.count += float(weight)

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def __repr__(self) -> str:
        return f"<Mean {self.name}={self.result():.6g} over {self.count:g}>"

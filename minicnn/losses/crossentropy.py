"""Cross-entropies: categorical (one-hot labels), sparse categorical (integer labels), binary.

Each is computed from the logits where Keras does (after a softmax or sigmoid output:
see :mod:`minicnn.losses`), otherwise from clipped probabilities.
"""

from __future__ import annotations

import numpy as np

from minicnn.losses.base import (EPSILON, LOGIT_CACHING_ACTIVATIONS, Loss, _require_default,
                                 _stable_softmax_and_log_sum_exp)


class _SmoothedCrossentropy(Loss):
    """What categorical and binary crossentropy share: ``from_logits``, label smoothing,
    Keras's config keys, and the cached-logits path after softmax/sigmoid outputs."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 name: str | None = None, reduction: str = "sum_over_batch_size") -> None:
        super().__init__(name=name, reduction=reduction)
        _require_default(self.function_name, "axis", axis, -1)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"{self.function_name}: label_smoothing must be in [0, 1], "
                             f"received {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": -1}

    def uses_cached_logits(self, activation_name: str) -> bool:
        return activation_name in LOGIT_CACHING_ACTIVATIONS


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Cross-entropy between one-hot labels ``t`` (N, K) and class probabilities ``p`` (N, K).

    From probabilities (Keras, nn.categorical_crossentropy)::

        q = p / sum_k p_k                     # renormalise each row
        c = clip(q, eps, 1 - eps)
        loss_n = -sum_k t_k log c_k

    with gradient ``dL/dp_j = (g_j - sum_k g_k q_k) / s`` where ``s = sum_k p_k`` and
    ``g_k = -t_k / c_k`` where ``q_k`` is inside the clip interval, else 0.

    From logits ``z`` (tf.nn.softmax_cross_entropy_with_logits)::

        loss_n = sum_k t_k (logsumexp(z) - z_k),   dL/dz = softmax(z) - t

    The logits gradient is TensorFlow's kernel gradient, the exact derivative when
    each label row sums to 1 (one-hot or label-smoothed labels).

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: ``t <- t (1 - label_smoothing) + label_smoothing / K``.
    """

    function_name = "categorical_crossentropy"

    def _check_labels(self, y_true, y_pred):
        labels = np.asarray(y_true)
        if labels.shape != y_pred.shape:
            message = self._shape_error(labels.shape, y_pred.shape, "one-hot labels")
            if labels.shape == y_pred.shape[:-1] or labels.shape == y_pred.shape[:-1] + (1,):
                message += "; use sparse_categorical_crossentropy for integer labels"
            raise ValueError(message)
        labels = labels.astype(y_pred.dtype, copy=False)
        if self.label_smoothing:
            classes = y_pred.shape[-1]
            labels = labels * y_pred.dtype.type(1.0 - self.label_smoothing) \
                + y_pred.dtype.type(self.label_smoothing / classes)
        return labels

    def _probabilities_path(self, labels, probabilities, need_gradient):
        dtype = probabilities.dtype.type
        count = int(np.prod(probabilities.shape[:-1]))
        row_sums = np.sum(probabilities, axis=-1, keepdims=True)
        normalised = probabilities / row_sums
        clipped = np.clip(normalised, dtype(EPSILON), dtype(1.0 - EPSILON))
        total = -np.sum(labels * np.log(clipped))
        if not need_gradient:
            return total, count, None
        inside = (normalised >= dtype(EPSILON)) & (normalised <= dtype(1.0 - EPSILON))
        gradient_normalised = np.where(inside, -labels / clipped, dtype(0))
        # Through q = p / s: dL/dp_j = (g_j - sum_k g_k q_k) / s.
        gradient = (gradient_normalised
                    - np.sum(gradient_normalised * normalised, axis=-1, keepdims=True)) / row_sums
        return total, count, gradient

    def _logits_path(self, labels, logits, need_gradient):
        count = int(np.prod(logits.shape[:-1]))
        softmax, shifted, log_sum_exp = _stable_softmax_and_log_sum_exp(logits)
        total = np.sum(labels * (log_sum_exp - shifted))
        gradient = softmax - labels if need_gradient else None
        return total, count, gradient


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy between integer labels ``y`` (N,) or (N, 1) and probabilities ``p`` (N, K).

    From probabilities, Keras clips and takes the log, then calls
    ``sparse_softmax_cross_entropy_with_logits`` on ``log c``; that renormalises::

        c = clip(p, eps, 1 - eps),   S = sum_k c_k
        loss_n = log S - log c_y

    with ``dL/dp_j = 1/S - [j = y] / c_y`` where ``p_j`` is inside the clip interval,
    else 0.  From logits ``z``: ``loss_n = logsumexp(z) - z_y``, ``dL/dz = softmax(z) - onehot(y)``.

    Labels must be integers (integer dtype, or floats with integral values) in ``[0, K)``.
    """

    function_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 name: str | None = None, reduction: str = "sum_over_batch_size") -> None:
        super().__init__(name=name, reduction=reduction)
        _require_default(self.function_name, "ignore_class", ignore_class, None)
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": None}

    def uses_cached_logits(self, activation_name: str) -> bool:
        return activation_name in LOGIT_CACHING_ACTIVATIONS

    def _check_labels(self, y_true, y_pred):
        labels = np.asarray(y_true)
        if labels.ndim == y_pred.ndim and labels.shape[-1:] == (1,):
            labels = labels.reshape(labels.shape[:-1])
        if labels.shape != y_pred.shape[:-1]:
            message = (f"{self.function_name} expects integer labels of shape "
                       f"{tuple(map(int, y_pred.shape[:-1]))} or {tuple(map(int, y_pred.shape[:-1] + (1,)))}"
                       f", received {tuple(map(int, np.shape(y_true)))}")
            if np.shape(y_true) == y_pred.shape:
                message += "; use categorical_crossentropy for one-hot labels"
            raise ValueError(message)
        classes = y_pred.shape[-1]
        if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.number):
            raise ValueError(f"{self.function_name} expects integer labels, received dtype "
                             f"{labels.dtype}")
        if not np.issubdtype(labels.dtype, np.integer):
            not_integral = labels != np.floor(labels)  # also True for NaN
            if np.any(not_integral) or np.any(~np.isfinite(labels)):
                index = np.argwhere(not_integral | ~np.isfinite(labels))[0]
                raise ValueError(
                    f"{self.function_name} expects integer labels, received "
                    f"{labels[tuple(index)].item()!r} at index {tuple(int(i) for i in index)}")
        out_of_range = (labels < 0) | (labels >= classes)
        if np.any(out_of_range):
            index = np.argwhere(out_of_range)[0]
            value = labels[tuple(index)]
            raise ValueError(
                f"{self.function_name} expects labels in [0, {classes}) for {classes} classes, "
                f"received {value.item()!r} at index {tuple(int(i) for i in index)}")
        return labels.astype(np.intp, copy=False)

    @staticmethod
    def _take_label_column(array: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.take_along_axis(array, labels[..., None], axis=-1)[..., 0]

    def _probabilities_path(self, labels, probabilities, need_gradient):
        dtype = probabilities.dtype.type
        count = labels.size
        clipped = np.clip(probabilities, dtype(EPSILON), dtype(1.0 - EPSILON))
        sums = np.sum(clipped, axis=-1, keepdims=True)
        label_probabilities = self._take_label_column(clipped, labels)
        total = np.sum(np.log(sums[..., 0]) - np.log(label_probabilities))
        if not need_gradient:
            return total, count, None
        gradient_clipped = np.broadcast_to(1 / sums, clipped.shape).copy()
        label_gradient = self._take_label_column(gradient_clipped, labels) - 1 / label_probabilities
        np.put_along_axis(gradient_clipped, labels[..., None], label_gradient[..., None], axis=-1)
        inside = (probabilities >= dtype(EPSILON)) & (probabilities <= dtype(1.0 - EPSILON))
        gradient = np.where(inside, gradient_clipped, dtype(0))
        return total, count, gradient

    def _logits_path(self, labels, logits, need_gradient):
        count = labels.size
        softmax, shifted, log_sum_exp = _stable_softmax_and_log_sum_exp(logits)
        total = np.sum(log_sum_exp[..., 0] - self._take_label_column(shifted, labels))
        if not need_gradient:
            return total, count, None
        gradient = softmax
        np.put_along_axis(gradient, labels[..., None],
                          self._take_label_column(gradient, labels)[..., None] - 1, axis=-1)
        return total, count, gradient


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Elementwise binary cross-entropy between labels ``t`` in [0, 1] and probabilities ``p``.

    Keras averages over the last axis and then over the batch, which for a
    rectangular batch is the mean over all elements.  From probabilities::

        c = clip(p, eps, 1 - eps)
        loss = -(t log c + (1 - t) log(1 - c))
        dL/dp = -t / c + (1 - t) / (1 - c)     (0 where p was clipped)

    From logits ``z`` (tf.nn.sigmoid_cross_entropy_with_logits, stable for any z)::

        loss = max(z, 0) - z t + log(1 + exp(-|z|)),   dL/dz = sigmoid(z) - t

    Labels of shape (N,) are accepted for predictions (N, 1), as Keras does.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: ``t <- t (1 - label_smoothing) + 0.5 label_smoothing``.
    """

    function_name = "binary_crossentropy"

    def _check_labels(self, y_true, y_pred):
        labels = self._same_shape_labels(y_true, y_pred, "labels (0 or 1, one per output)")
        if self.label_smoothing:
            labels = labels * y_pred.dtype.type(1.0 - self.label_smoothing) \
                + y_pred.dtype.type(0.5 * self.label_smoothing)
        return labels

    def _probabilities_path(self, labels, probabilities, need_gradient):
        dtype = probabilities.dtype.type
        clipped = np.clip(probabilities, dtype(EPSILON), dtype(1.0 - EPSILON))
        one_minus_clipped = 1 - clipped
        total = -np.sum(labels * np.log(clipped) + (1 - labels) * np.log(one_minus_clipped))
        if not need_gradient:
            return total, probabilities.size, None
        inside = (probabilities >= dtype(EPSILON)) & (probabilities <= dtype(1.0 - EPSILON))
        gradient = np.where(inside, -labels / clipped + (1 - labels) / one_minus_clipped,
                            dtype(0))
        return total, probabilities.size, gradient

    def _logits_path(self, labels, logits, need_gradient):
        dtype = logits.dtype.type
        exp_minus_abs = np.exp(-np.abs(logits))
        total = np.sum(np.maximum(logits, dtype(0)) - logits * labels + np.log1p(exp_minus_abs))
        if not need_gradient:
            return total, logits.size, None
        # sigmoid(z) from exp(-|z|) without overflow: 1/(1+e) for z >= 0, e/(1+e) for z < 0.
        sigmoid = np.where(logits >= 0, dtype(1), exp_minus_abs) / (1 + exp_minus_abs)
        return total, logits.size, sigmoid - labels

"""Loss functions with Keras 3's formulas, and their gradients with respect to the predictions.

Every loss is reduced as Keras's default ``reduction="sum_over_batch_size"``: the
per-sample losses are summed and divided by their number, so ``loss(y_true, y_pred)``
is the mean over the batch, and ``loss.gradient(...)`` is the gradient of that mean
(hence the ``1/N`` in every gradient below).

Probabilities are clipped to ``[epsilon, 1 - epsilon]`` (``epsilon = 1e-7``, Keras's
``backend.epsilon()``) before the logarithm, as keras/src/backend/tensorflow/nn.py
does; the gradient through the clip is TensorFlow's: zero where a value was clipped,
passed through where it lies inside the interval or exactly on its ends.

Cached logits.  Keras 3's ``softmax`` and ``sigmoid`` activations attach their input
to their output (``output._keras_logits = x``), and the TensorFlow cross-entropies
then compute the loss *from those logits* (``_get_logits`` sets ``from_logits=True``),
whatever ``from_logits`` says.  So a model ending in ``Dense(10, activation="softmax")``
trained with ``categorical_crossentropy`` is trained on
``logsumexp(z) - z_label``, never on the clipped ``-log(clip(softmax(z)))``: for
extreme logits Keras reports e.g. 200.0 where the clipped formula gives 16.118.  The
cache does not remember *which* activation made it: ``binary_crossentropy`` after a
softmax applies the sigmoid formula to the pre-softmax values, and
``categorical_crossentropy`` after a sigmoid applies the softmax formula.  The model
reproduces this with :meth:`Loss.value_and_gradient_from_logits`; calling a loss on a
plain array of probabilities (as ``keras.losses.*`` on a NumPy array) takes the
clipped path.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7  # keras.backend.epsilon()

# The activations whose output carries Keras's cached logits (keras/src/activations).
LOGIT_CACHING_ACTIVATIONS = ("softmax", "sigmoid")


def _require_default(owner: str, name: str, value, default) -> None:
    """Keras arguments minicnn keeps at their default (so Keras configs round-trip)."""
    if value != default:
        raise ValueError(f"{owner}: {name}={value!r} is not supported by minicnn; only "
                         f"Keras's default {name}={default!r} is")


def _as_float_predictions(y_pred: np.ndarray) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float32)
    return y_pred


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(int(d) for d in shape))


def _stable_softmax_and_log_sum_exp(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(softmax, shifted, log_sum_exp_shifted)`` along the last axis.

    ``shifted = z - max(z)`` so ``exp`` cannot overflow;
    ``logsumexp(z) - z_k = log_sum_exp_shifted - shifted_k``.
    """
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    total = np.sum(exponentials, axis=-1, keepdims=True)
    return exponentials / total, shifted, np.log(total)


class Loss:
    """Base class: a per-sample loss, its mean over the batch, and the mean's gradient.

    Subclasses implement ``_check_labels`` (validate and convert ``y_true`` for
    ``y_pred``), ``_probabilities_path`` and, for the cross-entropies, ``_logits_path``;
    each path returns ``(sum of the per-sample losses, number of samples,
    d(sum)/d(y_pred) or None)``.
    """

    #: Keras's function name, used in error messages and as the default ``name``.
    function_name: str = "loss"

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size") -> None:
        if reduction not in ("sum_over_batch_size", "mean"):
            raise ValueError(
                f"{self.function_name}: only reduction='sum_over_batch_size' (the mean over "
                f"the batch, Keras's default) is supported, received reduction={reduction!r}")
        self.name = name or self.function_name
        self.reduction = reduction
        self.from_logits = False

    # -- public API ---------------------------------------------------------------------------

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """The mean loss over the batch (a Python float)."""
        total, count, _ = self._compute(y_true, y_pred, need_gradient=False)
        return float(total) / max(count, 1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """``d(mean loss)/d(y_pred)``, same shape and dtype as ``y_pred``."""
        return self.value_and_gradient(y_true, y_pred)[1]

    def value_and_gradient(self, y_true: np.ndarray,
                           y_pred: np.ndarray) -> tuple[float, np.ndarray]:
        """``(mean loss, d(mean loss)/d(y_pred))`` in one pass."""
        total, count, gradient = self._compute(y_true, y_pred, need_gradient=True)
        gradient /= gradient.dtype.type(max(count, 1))
        return float(total) / max(count, 1), gradient

    def uses_cached_logits(self, activation_name: str) -> bool:
        """Whether Keras computes this loss from the logits cached by ``activation_name``.

        True for the cross-entropies after ``softmax`` or ``sigmoid`` (see the module
        docstring); then the model should call :meth:`value_and_gradient_from_logits`
        with the last layer's pre-activation and skip the activation's backward.
        """
        return False

    def value_and_gradient_from_logits(self, y_true: np.ndarray, logits: np.ndarray,
                                       activation_name: str) -> tuple[float, np.ndarray]:
        """``(mean loss, d(mean loss)/d(logits))`` computed as Keras does from cached logits.

        ``logits`` is the input of the final ``activation_name`` (softmax or sigmoid).
        The loss's own from-logits formula is used whatever the activation was, as in
        Keras 3, and whatever ``from_logits`` was set to.

        Raises:
            ValueError: this loss has no logits path, or the activation caches no logits.
        """
        if not self.uses_cached_logits(activation_name):
            raise ValueError(
                f"{self.function_name} is not computed from cached logits after a "
                f"{activation_name!r} activation; Keras caches logits only on "
                f"{list(LOGIT_CACHING_ACTIVATIONS)} outputs, for the cross-entropies")
        logits = _as_float_predictions(logits)
        labels = self._check_labels(y_true, logits)
        total, count, gradient = self._logits_path(labels, logits, need_gradient=True)
        gradient /= gradient.dtype.type(max(count, 1))
        return float(total) / max(count, 1), gradient

    def check_labels(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Raise ``ValueError`` if ``y_true`` does not suit this loss for ``y_pred``.

        Only shapes, dtypes and (sparse) label values are read, so ``y_pred`` may be a
        zero-stride stand-in of the right shape.
        """
        self._check_labels(y_true, _as_float_predictions(y_pred))

    def get_config(self) -> dict:
        """Constructor arguments, with Keras's keys (``from_config`` rebuilds the loss)."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_config()}>"

    # -- subclass hooks -----------------------------------------------------------------------

    def _compute(self, y_true, y_pred, need_gradient: bool):
        y_pred = _as_float_predictions(y_pred)
        labels = self._check_labels(y_true, y_pred)
        if self.from_logits:
            return self._logits_path(labels, y_pred, need_gradient)
        return self._probabilities_path(labels, y_pred, need_gradient)

    def _check_labels(self, y_true, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _probabilities_path(self, labels, y_pred, need_gradient):
        raise NotImplementedError

    def _logits_path(self, labels, logits, need_gradient):
        raise NotImplementedError

    def _same_shape_labels(self, y_true, y_pred: np.ndarray, expected: str) -> np.ndarray:
        """``y_true`` as ``y_pred``'s dtype and shape, with Keras's rank adjustment.

        Keras's ``squeeze_or_expand_to_same_rank`` lets labels differ from the
        predictions by one trailing axis of size 1 ((N,) against (N, 1)).
        """
        labels = np.asarray(y_true)
        if labels.shape != y_pred.shape:
            if labels.ndim == y_pred.ndim - 1 and y_pred.shape[-1:] == (1,) \
                    and labels.shape == y_pred.shape[:-1]:
                labels = labels.reshape(y_pred.shape)
            elif labels.ndim == y_pred.ndim + 1 and labels.shape[-1:] == (1,) \
                    and labels.shape[:-1] == y_pred.shape:
                labels = labels.reshape(y_pred.shape)
            else:
                raise ValueError(self._shape_error(labels.shape, y_pred.shape, expected))
        if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_):
            raise ValueError(
                f"{self.function_name} expects numeric labels, received dtype {labels.dtype}")
        return labels.astype(y_pred.dtype, copy=False)

    def _shape_error(self, labels_shape, predictions_shape, expected: str) -> str:
        return (f"{self.function_name} expects {expected} of shape "
                f"{_shape_text(predictions_shape)}, received {_shape_text(labels_shape)}")


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
                       f"{_shape_text(y_pred.shape[:-1])} or {_shape_text(y_pred.shape[:-1] + (1,))}"
                       f", received {_shape_text(np.shape(y_true))}")
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


class MeanSquaredError(Loss):
    """Mean squared error: ``loss = mean((p - t)^2)`` over all elements; ``dL/dp = 2 (p - t) / size``.

    Keras averages over the last axis and then over the batch (the same number for a
    rectangular batch).  MSE has no logits path: Keras applies it to the
    activation's output even after softmax or sigmoid.
    """

    function_name = "mean_squared_error"

    def _check_labels(self, y_true, y_pred):
        return self._same_shape_labels(y_true, y_pred, "targets")

    def _probabilities_path(self, labels, predictions, need_gradient):
        difference = predictions - labels
        total = np.sum(difference * difference)
        gradient = difference * difference.dtype.type(2) if need_gradient else None
        return total, predictions.size, gradient


_LOSSES: dict[str, type[Loss]] = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}
_CLASS_NAMES = {cls.__name__: cls for cls in set(_LOSSES.values())}


def get(identifier: str | dict | Loss) -> Loss:
    """Resolve a loss from its Keras name (or class name), a config dict (see
    :func:`from_config`), or return a Loss instance unchanged.

    Raises:
        ValueError: the name is not one of the known losses.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return from_config(identifier)
    if isinstance(identifier, str):
        if identifier in _CLASS_NAMES:
            return _CLASS_NAMES[identifier]()
        key = identifier.lower()
        if key in _LOSSES:
            # Keras names a loss given as a string by that string ("mse" stays "mse").
            return _LOSSES[key](name=key)
    raise ValueError(
        f"unknown loss {identifier!r}; expected one of {sorted(_LOSSES)}, "
        f"{sorted(_CLASS_NAMES)} or a Loss instance")


def serialize(loss: Loss) -> dict:
    """``{"class_name": "CategoricalCrossentropy", "config": loss.get_config()}``, as Keras."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def from_config(config: dict) -> Loss:
    """Rebuild a loss from :func:`serialize`'s dict or from a plain ``get_config()``.

    A plain config (Keras's keys, which name no class) is recognised by its keys
    (``ignore_class``: sparse; no ``from_logits``: mean squared error) and, for the
    two that share their keys (categorical and binary cross-entropy), by its name.

    Raises:
        ValueError: the class cannot be told from ``config``.
    """
    if "class_name" in config:
        cls = _CLASS_NAMES.get(config["class_name"]) or _LOSSES.get(str(config["class_name"]).lower())
        if cls is None:
            raise ValueError(f"unknown loss class {config['class_name']!r}; expected one of "
                             f"{sorted(_CLASS_NAMES)}")
        return cls.from_config(dict(config.get("config", {})))
    keys = set(config)
    candidates = {cls for cls in _CLASS_NAMES.values() if set(cls().get_config()) == keys}
    by_name = _LOSSES.get(str(config.get("name", "")).lower())
    if len(candidates) > 1 and by_name in candidates:
        candidates = {by_name}
    if len(candidates) != 1:
        raise ValueError(
            f"cannot tell which loss this config is for ({config!r}); "
            "pass losses.serialize(loss), which names the class")
    return candidates.pop().from_config(dict(config))

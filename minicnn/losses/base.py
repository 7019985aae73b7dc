"""The base of every loss: Keras's reduction, the clipping constant, the logits rule.

See :mod:`minicnn.losses` for what the losses compute and why the cached logits matter.
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

    def value_and_output_gradient(self, y_true: np.ndarray, y_pred: np.ndarray,
                                  last_layer) -> tuple[float, np.ndarray, bool]:
        """``(mean loss, gradient, at_logits)`` for a model whose last layer is ``last_layer``.

        Where Keras computes this loss from the logits cached by the last layer's
        activation (see :meth:`uses_cached_logits`), the gradient is d loss / d logits
        (``at_logits`` True) and the model skips that activation's backward; otherwise
        it is d loss / d y_pred.
        """
        activation_name = getattr(getattr(last_layer, "activation", None), "name", None)
        if activation_name is not None and self.uses_cached_logits(activation_name):
            loss_value, dlogits = self.value_and_gradient_from_logits(
                y_true, last_layer.last_preactivation, activation_name)
            return loss_value, dlogits, True
        loss_value, gradient = self.value_and_gradient(y_true, y_pred)
        return loss_value, gradient, False

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
                f"{tuple(map(int, predictions_shape))}, received {tuple(map(int, labels_shape))}")

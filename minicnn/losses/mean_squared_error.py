"""Mean squared error: ``mean((y_pred - y_true) ** 2)`` over every element."""

from __future__ import annotations

import numpy as np

from minicnn.losses.base import Loss


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

"""SGD, with optional (Nesterov) momentum, as keras/src/optimizers/sgd.py."""

from __future__ import annotations

import numpy as np

from minicnn.optimizers.base import DefaultRate, Optimizer, _check_number


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    Update for a parameter ``w`` with gradient ``g`` (keras/src/optimizers/sgd.py)::

        momentum == 0:   w <- w - learning_rate * g
        momentum  > 0:   v <- momentum * v - learning_rate * g      (v starts at 0)
                         w <- w + v
        nesterov:        v <- momentum * v - learning_rate * g
                         w <- w + momentum * v - learning_rate * g
    """

    def __init__(self, learning_rate: float = DefaultRate(0.01), momentum: float = 0.0,
                 nesterov: bool = False, name: str | None = None, **keras_options) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **keras_options)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def slot_groups(self) -> list[tuple[str, ...]]:
        return [("momentum",)] if self.momentum != 0 else []

    def _update(self, value, gradient, slots, scratch, scratch_2):
        dtype = value.dtype.type
        # scratch = learning_rate * g
        np.multiply(gradient, dtype(self.learning_rate), out=scratch)
        if self.momentum == 0:
            np.subtract(value, scratch, out=value)
            return
        velocity = slots["momentum"]
        np.multiply(velocity, dtype(self.momentum), out=velocity)
        np.subtract(velocity, scratch, out=velocity)
        if self.nesterov:
            np.multiply(velocity, dtype(self.momentum), out=scratch_2)
            np.subtract(scratch_2, scratch, out=scratch_2)
            np.add(value, scratch_2, out=value)
        else:
            np.add(value, velocity, out=value)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

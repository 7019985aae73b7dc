"""Adam, as keras/src/optimizers/adam.py."""

from __future__ import annotations

import numpy as np

from minicnn.optimizers.base import DefaultRate, Optimizer, _check_number


class Adam(Optimizer):
    """Adam, with Keras's bias correction folded into the step size.

    Update (keras/src/optimizers/adam.py), ``t = iterations + 1`` (the step being
    taken, counted from 1), ``m`` and ``v`` starting at 0::

        alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g^2 - v) * (1 - beta_2)
        amsgrad:  v_hat <- max(v_hat, v), and v_hat replaces v below
        w <- w - m * alpha / (sqrt(v) + epsilon)                # epsilon outside the sqrt

    Because the correction multiplies the step rather than dividing ``m`` and ``v``,
    ``epsilon`` is added to the uncorrected ``sqrt(v)`` ("epsilon hat" of Kingma & Ba).
    """

    def __init__(self, learning_rate: float = DefaultRate(0.001), beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: str | None = None,
                 **keras_options) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **keras_options)
        self.beta_1 = _check_number("Adam", "beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = _check_number("Adam", "beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.epsilon = _check_number("Adam", "epsilon", epsilon, 0.0)
        self.amsgrad = bool(amsgrad)

    def slot_groups(self) -> list[tuple[str, ...]]:
        groups = [("momentum", "velocity")]
        if self.amsgrad:
            groups.append(("velocity_hat",))
        return groups

    def _update(self, value, gradient, slots, scratch, scratch_2):
        dtype = value.dtype.type
        # The scalars in the variable's dtype, in Keras's order of operations.
        step = dtype(self.iterations + 1)
        beta_1_power = np.power(dtype(self.beta_1), step)
        beta_2_power = np.power(dtype(self.beta_2), step)
        alpha = dtype(self.learning_rate) * np.sqrt(dtype(1) - beta_2_power) \
            / (dtype(1) - beta_1_power)
        momentum, velocity = slots["momentum"], slots["velocity"]
        # m <- m + (g - m)(1 - beta_1)
        np.subtract(gradient, momentum, out=scratch)
        np.multiply(scratch, dtype(1 - self.beta_1), out=scratch)
        np.add(momentum, scratch, out=momentum)
        # v <- v + (g^2 - v)(1 - beta_2)
        np.multiply(gradient, gradient, out=scratch)
        np.subtract(scratch, velocity, out=scratch)
        np.multiply(scratch, dtype(1 - self.beta_2), out=scratch)
        np.add(velocity, scratch, out=velocity)
        if self.amsgrad:
            velocity_hat = slots["velocity_hat"]
            np.maximum(velocity_hat, velocity, out=velocity_hat)
            velocity = velocity_hat
        # w <- w - (m alpha) / (sqrt(v) + epsilon)
        np.sqrt(velocity, out=scratch)
        np.add(scratch, dtype(self.epsilon), out=scratch)
        np.multiply(momentum, alpha, out=scratch_2)
        np.divide(scratch_2, scratch, out=scratch_2)
        np.subtract(value, scratch_2, out=value)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}

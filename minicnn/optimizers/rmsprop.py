"""RMSprop, plain, with momentum or centered, as keras/src/optimizers/rmsprop.py."""

from __future__ import annotations

import numpy as np

from minicnn.backend import kernels
from minicnn.optimizers.base import DefaultRate, Optimizer, _check_number


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

    Update (keras/src/optimizers/rmsprop.py), all slots starting at 0::

        v <- rho * v + (1 - rho) * g^2
        centered:  a <- rho * a + (1 - rho) * g
                   denominator = v - a^2 + epsilon
        otherwise: denominator = v + epsilon
        increment = learning_rate * g / sqrt(denominator)     # epsilon inside the sqrt
        momentum > 0:  m <- momentum * m + increment;  w <- w - m
        otherwise:     w <- w - increment
    """

    def __init__(self, learning_rate: float = DefaultRate(0.001), rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, name: str | None = None,
                 **keras_options) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **keras_options)
        self.rho = _check_number("RMSprop", "rho", rho, 0.0, 1.0)
        self.momentum = _check_number("RMSprop", "momentum", momentum, 0.0)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon, 0.0)
        self.centered = bool(centered)

    def slot_groups(self) -> list[tuple[str, ...]]:
        groups = [("velocity",)]
        if self.momentum > 0:
            groups.append(("momentum",))
        if self.centered:
            groups.append(("average_gradient",))
        return groups

    def _update(self, value, gradient, slots, scratch, scratch_2):
        dtype = value.dtype.type
        rho, one_minus_rho = dtype(self.rho), dtype(1 - self.rho)
        velocity = slots["velocity"]
        compiled = kernels().rmsprop_update
        if (compiled is not None and not self.centered and self.momentum == 0
                and value.flags.c_contiguous and gradient.flags.c_contiguous):
            # The same operations in one compiled pass (bit for bit the lines below).
            compiled(value.reshape(-1), gradient.reshape(-1), velocity.reshape(-1),
                     dtype(self.learning_rate), rho, one_minus_rho, dtype(self.epsilon))
            return
        # v <- rho v + (1 - rho) g^2
        np.multiply(velocity, rho, out=velocity)
        np.multiply(gradient, gradient, out=scratch)
        np.multiply(scratch, one_minus_rho, out=scratch)
        np.add(velocity, scratch, out=velocity)
        if self.centered:
            average = slots["average_gradient"]
            np.multiply(average, rho, out=average)
            np.multiply(gradient, one_minus_rho, out=scratch)
            np.add(average, scratch, out=average)
            # denominator = (v - a^2) + epsilon
            np.multiply(average, average, out=scratch)
            np.subtract(velocity, scratch, out=scratch)
            np.add(scratch, dtype(self.epsilon), out=scratch)
        else:
            np.add(velocity, dtype(self.epsilon), out=scratch)
        np.sqrt(scratch, out=scratch)
        # increment = (learning_rate * g) / sqrt(denominator)
        np.multiply(gradient, dtype(self.learning_rate), out=scratch_2)
        np.divide(scratch_2, scratch, out=scratch_2)
        if self.momentum > 0:
            momentum = slots["momentum"]
            np.multiply(momentum, dtype(self.momentum), out=momentum)
            np.add(momentum, scratch_2, out=momentum)
            np.subtract(value, momentum, out=value)
        else:
            np.subtract(value, scratch_2, out=value)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}

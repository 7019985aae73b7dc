"""RMSprop's update as one compiled pass over a variable (the numba backend's ``rmsprop_update``).

NumPy does the update in nine whole-array operations per variable (see
:class:`minicnn.optimizers.RMSprop`), each a Python call and a pass over memory, for
each of the MNIST convnet's ten variables at every step.  This loop does the same
IEEE float32 (or float64) operations in the same order for each element, so the result
is bit for bit NumPy's (Numba does not contract ``a * b + c`` into a fused multiply-add
unless asked to, and is not asked to here).
"""

from __future__ import annotations

import numpy as np
from numba import njit


# error_model="numpy": a division by zero gives inf as in NumPy instead of raising, which
# lets LLVM vectorize the loop (without the check for zero in every iteration; same bits).
@njit(cache=True, error_model="numpy")
def rmsprop_update(value, gradient, velocity, learning_rate, rho, one_minus_rho, epsilon):
    """In place, for every element (flat, contiguous arrays of one dtype)::

        v <- rho * v + (g * g) * (1 - rho)
        w <- w - (learning_rate * g) / sqrt(v + epsilon)
    """
    for k in range(value.size):
        g = gradient[k]
        v = velocity[k] * rho + (g * g) * one_minus_rho
        velocity[k] = v
        value[k] = value[k] - (g * learning_rate) / np.sqrt(v + epsilon)

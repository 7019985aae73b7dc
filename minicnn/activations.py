"""Activation functions: forward values and the backward (vector-Jacobian) product.

Each activation is a small object with

- ``forward(z) -> a``: the elementwise (softmax: along the last axis) function;
- ``backward(dy, z, a) -> dz``: given ``dy = d(loss)/da``, return ``d(loss)/dz``.
  Both the pre-activation ``z`` and the output ``a`` are passed so the cheaper one can
  be used; the five activations here all read only ``a`` (``z`` may be ``None``).

Arrays keep their dtype: float32 in, float32 out.  Names follow Keras
(``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"linear"``), and
``get(None)`` is ``linear``, as ``keras.activations.get(None)`` is.
"""

from __future__ import annotations

import numpy as np


class Activation:
    """Base class: an elementwise function and its backward product."""

    name: str = "activation"

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``a = f(z)``, same shape and dtype as ``z``."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray, z: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        """Return ``dz = d(loss)/dz`` given ``dy = d(loss)/da``, ``z`` and ``a = f(z)``."""
        raise NotImplementedError

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.forward(z)

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


class Linear(Activation):
    """Identity: ``a = z``, ``dz = dy``.  (Keras calls it ``"linear"``.)"""

    name = "linear"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, dy: np.ndarray, z: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        return dy


class ReLU(Activation):
    """Rectified linear unit: ``a = max(z, 0)``.

    Backward: ``dz = dy * [z > 0]``.  The derivative at exactly 0 is taken as 0, as
    TensorFlow's ReluGrad does; ``a > 0`` is the same test as ``z > 0``, so only the
    output is needed.
    """

    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, z.dtype.type(0))

    def backward(self, dy: np.ndarray, z: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        positive = (a if a is not None else z) > 0
        # multiply by the boolean mask: one pass, keeps dy's dtype
        return np.multiply(dy, positive, dtype=dy.dtype)


class Sigmoid(Activation):
    """Logistic function: ``a = 1 / (1 + exp(-z))``.

    Computed without overflow for any ``z``: with ``e = exp(-|z|)`` (always <= 1),
    ``a = 1 / (1 + e)`` for ``z >= 0`` and ``a = e / (1 + e)`` for ``z < 0``.
    Backward: ``dz = dy * a * (1 - a)``.
    """

    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        exp_minus_abs = np.exp(-np.abs(z))
        denominator = 1 + exp_minus_abs
        numerator = np.where(z >= 0, z.dtype.type(1), exp_minus_abs)
        return np.divide(numerator, denominator, out=denominator)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        return dy * a * (1 - a)


class Tanh(Activation):
    """Hyperbolic tangent: ``a = tanh(z)``.  Backward: ``dz = dy * (1 - a^2)``."""

    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        return dy * (1 - a * a)


class Softmax(Activation):
    """Softmax along the last axis: ``a_i = exp(z_i - max z) / sum_j exp(z_j - max z)``.

    Subtracting the row maximum keeps ``exp`` from overflowing and does not change
    the result.  Backward is the Jacobian-vector product with
    ``da_i/dz_j = a_i (delta_ij - a_j)``:
    ``dz = a * (dy - sum(dy * a, axis=-1))``.
    """

    name = "softmax"

    def forward(self, z: np.ndarray) -> np.ndarray:
        shifted = z - np.max(z, axis=-1, keepdims=True)
        np.exp(shifted, out=shifted)
        shifted /= np.sum(shifted, axis=-1, keepdims=True)
        return shifted

    def backward(self, dy: np.ndarray, z: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        dot = np.sum(dy * a, axis=-1, keepdims=True)
        return a * (dy - dot)


_ACTIVATIONS: dict[str, type[Activation]] = {
    "linear": Linear,
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def get(identifier: str | Activation | None) -> Activation:
    """Resolve an activation from its name, ``None`` (linear) or an instance.

    Raises:
        ValueError: the name is not one of the known activations.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[identifier.lower()]()
    raise ValueError(
        f"unknown activation {identifier!r}; expected one of {sorted(_ACTIVATIONS)}, "
        "None (linear) or an Activation instance")


def serialize(activation: Activation) -> str:
    """The name that ``get`` turns back into the same activation."""
    return activation.name

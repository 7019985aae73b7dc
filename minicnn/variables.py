"""Trainable arrays: a value, its gradient, and a name for people to read."""

from __future__ import annotations

import numpy as np


class Variable:
    """One parameter array of a layer, e.g. a Conv2D kernel of shape (KH, KW, C, F).

    ``value`` is updated in place by optimizers, so references to it stay valid;
    ``grad`` has the same shape and holds d(loss)/d(value) after ``backward``.
    Optimizers key their state by the Variable object itself (identity), never by name.
    """

    def __init__(self, value: np.ndarray, name: str) -> None:
        self.value = np.ascontiguousarray(value)
        self.grad = np.zeros_like(self.value)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def assign(self, new_value: np.ndarray) -> None:
        """Copy ``new_value`` into the existing array (shape must match)."""
        new_value = np.asarray(new_value)
        if new_value.shape != self.value.shape:
            raise ValueError(
                f"variable {self.name!r} has shape {self.value.shape}, "
                f"received a value of shape {new_value.shape}")
        self.value[...] = new_value

    def __repr__(self) -> str:
        return f"<Variable {self.name} shape={self.value.shape} dtype={self.value.dtype}>"

"""The layer contract every minicnn layer follows.

A layer's life, as in Keras:

1. ``__init__`` validates and stores the configuration (bad values raise ``ValueError``
   quoting the value and the layer's name); no arrays exist yet.
2. ``build(input_shape)`` creates the parameters once the input shape is known (lazy).
3. ``compute_output_shape(input_shape)`` needs no data, so ``summary()`` works early.
4. ``forward(x, training)`` computes the output and keeps only what ``backward`` needs.
5. ``backward(dy)`` stores d(loss)/d(parameter) in each ``Variable.grad`` and returns
   d(loss)/d(x).  The input gradient is a first-class result: visualizations use it.

Shapes passed around include the batch axis as ``None``: ``(None, H, W, C)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn.naming import auto_name
from minicnn.variables import Variable

Shape = tuple[Any, ...]


class Layer:
    """Base class: naming, trainable flag, parameter bookkeeping and input checks."""

    # When False (set by ``model.predict``), forward keeps no state for backward, so
    # large inference batches do not hold on to patch matrices and activations.
    keep_for_backward = True

    def __init__(self, name: str | None = None, trainable: bool = True,
                 input_shape: Shape | None = None, dtype: str = "float32") -> None:
        self.name = name if name is not None else auto_name(type(self).__name__)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"layer name must be a non-empty string, received {name!r}")
        self.trainable = bool(trainable)
        if input_shape is not None:
            input_shape = tuple(input_shape)
            if not all(isinstance(size, (int, np.integer)) and size > 0 for size in input_shape):
                raise ValueError(
                    f"Layer {self.name!r}: input_shape must be positive integers "
                    f"(without the batch axis), received {input_shape!r}")
        # The per-sample shape given with ``input_shape=`` (Keras 2 style); Sequential
        # turns it into its input.
        self.declared_input_shape: Shape | None = input_shape
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as error:
            raise ValueError(f"Layer {self.name!r}: unknown dtype {dtype!r}") from error
        if self.dtype.kind != "f":
            raise ValueError(
                f"Layer {self.name!r}: dtype must be a float type, received {dtype!r}")
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self._variables: list[Variable] = []

    # ----------------------------------------------------------------- building
    def build(self, input_shape: Shape) -> None:
        """Create parameters for ``input_shape`` (with ``None`` for the batch)."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape for ``input_shape``; the default keeps the shape."""
        return tuple(input_shape)

    def add_weight(self, name: str, shape: tuple[int, ...], initializer) -> Variable:
        """Create a parameter ``Variable`` of ``shape`` filled by ``initializer``."""
        from minicnn import random as minicnn_random

        value = initializer(shape, dtype=self.dtype, rng=minicnn_random.generator())
        variable = Variable(np.asarray(value, dtype=self.dtype), f"{self.name}/{name}")
        self._variables.append(variable)
        return variable

    # --------------------------------------------------------------- computing
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def release_backward_state(self) -> None:
        """Forget what the last ``forward`` kept for ``backward``.

        A fused step that ran this layer inside one kernel with its neighbour calls it:
        the layer's own state would be stale, and its arrays are freed sooner.
        """
        self._cache = None

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Build on first use, then ``forward``: ``layer(x)`` as in Keras."""
        x = np.asarray(x)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(self.check_input(x), training=training)

    def check_input(self, x: np.ndarray) -> np.ndarray:
        """Validate ``x`` against the built input shape and cast it to the layer's dtype.

        Raises ``ValueError`` naming the layer, the expected and the received shape.
        """
        expected = self.input_shape
        assert expected is not None, "check_input needs a built layer"
        if x.ndim != len(expected) or any(
                want is not None and want != got for want, got in zip(expected, x.shape)):
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected shape={expected}, found shape={tuple(x.shape)}")
        if x.dtype != self.dtype:
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
                raise TypeError(
                    f"Input of layer {self.name!r} must be numeric, received dtype {x.dtype}")
            x = x.astype(self.dtype)
        return x

    # ---------------------------------------------------------------- weights
    @property
    def weights(self) -> list[Variable]:
        """Every parameter, in Keras's order (kernel, then bias)."""
        return list(self._variables)

    @property
    def trainable_weights(self) -> list[Variable]:
        return list(self._variables) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [] if self.trainable else list(self._variables)

    def count_params(self) -> int:
        """Number of scalars in all parameters."""
        return int(sum(variable.value.size for variable in self._variables))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameter arrays, in Keras's order and shapes."""
        return [variable.value.copy() for variable in self._variables]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace the parameters; count and shapes must equal ``get_weights()``'s."""
        weights = list(weights)
        if len(weights) != len(self._variables):
            raise ValueError(
                f"Layer {self.name!r} expects {len(self._variables)} weights "
                f"({[v.shape for v in self._variables]}), received {len(weights)}")
        for variable, value in zip(self._variables, weights):
            value = np.asarray(value)
            if value.shape != variable.shape:
                raise ValueError(
                    f"Layer {self.name!r} weight {variable.name!r} has shape {variable.shape}, "
                    f"received an array of shape {value.shape}")
        for variable, value in zip(self._variables, weights):
            variable.assign(np.asarray(value, dtype=variable.dtype))

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        """The constructor arguments that rebuild this layer (JSON-friendly)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.declared_input_shape is not None:
            config["input_shape"] = list(self.declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def normalize_pair(value, argument: str, layer_name: str) -> tuple[int, int]:
    """Turn ``3`` or ``(3, 3)`` into ``(3, 3)``; only positive integers are allowed."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(
            f"Layer {layer_name!r}: {argument} must be an integer or a pair of integers, "
            f"received {value!r}")
    if pair[0] <= 0 or pair[1] <= 0:
        raise ValueError(
            f"Layer {layer_name!r}: {argument} must be positive, received {value!r}")
    return pair


def normalize_padding(value, layer_name: str) -> str:
    """``"valid"`` or ``"same"`` (case-insensitive, as Keras)."""
    padding = value.lower() if isinstance(value, str) else value
    if padding not in ("valid", "same"):
        raise ValueError(
            f"Layer {layer_name!r}: padding must be 'valid' or 'same', received {value!r}")
    return padding


def require_rank(input_shape: Shape, rank: int, layer: Layer, meaning: str) -> None:
    """Raise a clear error when ``input_shape`` (with batch) does not have ``rank`` axes."""
    if len(input_shape) != rank:
        raise ValueError(
            f"Input 0 of layer {layer.name!r} is incompatible with the layer: expected "
            f"ndim={rank} {meaning}, found ndim={len(input_shape)}. "
            f"Full shape received: {tuple(input_shape)}")

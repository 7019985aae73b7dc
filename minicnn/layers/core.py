"""The non-spatial layers: Input, Dense, Flatten, Dropout, Activation."""

from __future__ import annotations

import numpy as np

from minicnn import activations, initializers
from minicnn import random as minicnn_random
from minicnn.backend import kernels
from minicnn.layers.base import Layer, Shape


class InputLayer:
    """Declares the per-sample input shape of a model: ``Input((28, 28, 1))``.

    As in Keras's Sequential, it is not listed in ``model.layers`` nor in the summary.
    """

    def __init__(self, shape, name: str | None = None, dtype: str = "float32") -> None:
        from minicnn.naming import auto_name

        try:
            shape = tuple(int(size) for size in shape)
        except TypeError:
            raise ValueError(
                f"Input shape must be a tuple of positive integers (without the batch "
                f"axis), received {shape!r}") from None
        if not shape or any(size <= 0 for size in shape):
            raise ValueError(
                f"Input shape must be a tuple of positive integers (without the batch "
                f"axis), received {shape!r}")
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.name = name if name is not None else auto_name("InputLayer")

    def __repr__(self) -> str:
        return f"Input(shape={self.shape})"


def Input(shape, name: str | None = None, dtype: str = "float32") -> InputLayer:  # noqa: N802
    """``Input(shape)`` as in Keras: the per-sample shape, without the batch axis."""
    return InputLayer(shape, name=name, dtype=dtype)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a`` ``(..., K)`` and 2-D ``b`` ``(K, N)``, by the backend's GEMM.

    The numba backend multiplies on the calling thread (see its ``matmul``); the
    others leave it to NumPy (the contract's fallback, :mod:`minicnn.kernels`).
    """
    product = kernels().matmul(a.reshape(-1, a.shape[-1]), b)
    return product.reshape(a.shape[:-1] + (b.shape[-1],))


class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ kernel + bias)``.

    Args:
        units: number of outputs U.
        activation: name or None (linear).
        use_bias: add a bias vector.
        input_dim: Keras 2's ``input_shape=(input_dim,)`` for a first layer.

    Shapes: input (N, ..., D), kernel (D, U), bias (U,), output (N, ..., U); like Keras,
    higher-rank inputs are transformed along their last axis.
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs) -> None:
        if "input_dim" in kwargs:
            # Keras 2's spelling (the book's section 5.3.1): input_dim=N is input_shape=(N,).
            input_dim = kwargs.pop("input_dim")
            if kwargs.get("input_shape") is not None:
                raise ValueError(f"Dense: give input_dim={input_dim!r} or input_shape="
                                 f"{kwargs['input_shape']!r}, not both")
            if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)):
                raise ValueError(f"Dense: input_dim must be a positive integer, received "
                                 f"{input_dim!r}")
            kwargs["input_shape"] = (int(input_dim),)
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                f"Layer {self.name!r}: units must be a positive integer, received {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel = None
        self.bias = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 2:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                f"min_ndim=2, found ndim={len(input_shape)}. Full shape received: "
                f"{tuple(input_shape)}")
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        super().build(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        z = _matmul(x, self.kernel.value)
        if self.use_bias:
            z += self.bias.value
        y = self.activation.forward(z)
        if self.keep_for_backward:
            self.last_input, self.last_preactivation, self.last_output = x, z, y
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        dz = self.activation.backward(dy, self.last_preactivation, self.last_output)
        return self.backward_from_preactivation(dz, need_input_grad)

    def backward_from_preactivation(self, dz: np.ndarray,
                                    need_input_grad: bool = True) -> np.ndarray | None:
        """Given dz = d(loss)/d(x @ kernel + bias): dkernel = x^T dz, dbias = sum dz, dx = dz kernel^T."""
        x = self.last_input
        x2d = x.reshape(-1, x.shape[-1])
        dz2d = dz.reshape(-1, self.units)
        if self.trainable:   # a frozen layer computes and keeps no weight gradient
            self.kernel.grad = _matmul(x2d.T, dz2d)
            if self.use_bias:
                self.bias.grad = dz2d.sum(axis=0)
        return _matmul(dz, self.kernel.value.T) if need_input_grad else None

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class Flatten(Layer):
    """Flatten each sample to a vector in NHWC order: (N, H, W, C) -> (N, H*W*C)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 2:
            raise ValueError(
                f"Input 0 of layer {self.name!r} needs a batch axis and at least one more, "
                f"found shape {tuple(input_shape)}")
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._input_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        return dy.reshape(self._input_shape) if need_input_grad else None


class Dropout(Layer):
    """Inverted dropout: while training, zero a fraction ``rate`` of the values and scale
    the rest by ``1 / (1 - rate)``, so the expected output equals the input; at inference
    it is the identity.

    Args:
        rate: fraction of the values dropped, in [0, 1).
        seed: optional seed of this layer's own generator (else the global one).
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) \
                or not 0 <= rate < 1:
            raise ValueError(
                f"Layer {self.name!r}: rate must be a number in [0, 1) (the fraction "
                f"dropped), received {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0:
            self._mask = None
            return x
        rng = self._rng if self._rng is not None else minicnn_random.generator()
        keep = rng.random(x.shape, dtype=np.float32) >= self.rate
        # One array holds both the mask and the scale: 0 or 1 / (1 - rate).
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return dy if self._mask is None else dy * self._mask

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    """Apply an activation function elementwise (softmax along the last axis)."""

    def __init__(self, activation, **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = self.activation.forward(x)
        self.last_preactivation, self.last_output = x, y
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return self.activation.backward(dy, self.last_preactivation, self.last_output)

    def backward_from_preactivation(self, dz: np.ndarray,
                                    need_input_grad: bool = True) -> np.ndarray | None:
        return dz if need_input_grad else None

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation.name}

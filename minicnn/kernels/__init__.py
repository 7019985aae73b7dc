"""Array-in/array-out kernels, one module per backend, all with the same signatures.

Every backend module (``reference``, ``numpy_ops``, the ``numba`` package) exports::

    conv2d_forward(x, kernel, bias, strides, pads) -> (y, cache)
        x       (N, H, W, C)      input, float32 or float64 (the output keeps x's dtype)
        kernel  (KH, KW, C, F)    HWIO, as Keras stores it
        bias    (F,) or None
        strides (SH, SW)
        pads    ((top, bottom), (left, right))  zero padding, already resolved
        y       (N, OH, OW, F)    OH = (H + top + bottom - KH) // SH + 1, same for OW
        cache   opaque; whatever conv2d_backward of the *same* backend needs

    conv2d_backward(dy, cache, need_input_grad=True) -> (dx, dkernel, dbias)
        dy (N, OH, OW, F); dx (N, H, W, C) or None when need_input_grad is False;
        dkernel (KH, KW, C, F); dbias (F,) or None when the forward had no bias.

    max_pool2d_forward(x, pool_size, strides, pads) -> (y, cache)
        Padded cells never win (they act as -inf, as in TensorFlow's "SAME").
    max_pool2d_backward(dy, cache) -> dx
        Each output's gradient goes to the *first* maximum of its window in
        row-major order (ties: one winner, as TensorFlow's CPU kernel).

    avg_pool2d_forward(x, pool_size, strides, pads) -> (y, cache)
        Each output is the mean over the real (unpadded) cells of its window.
    avg_pool2d_backward(dy, cache) -> dx

Optional operations
-------------------
A backend may also offer faster, fused versions of work the layers would otherwise do
in several passes.  They are named here, and only here; the layers, the optimizers
and the model ask :class:`KernelBackend` for them, which answers with the backend's
function or the plain fallback:

    conv2d_bias_relu_forward(x, kernel, bias, strides, pads) -> (y, cache)
        ``y = relu(conv2d(x) + bias)`` in the convolution's own passes.  Its ``cache``
        goes to the ordinary ``conv2d_backward``, which then takes ``dy`` as the
        gradient of the ReLU *output* and applies the mask ``y > 0`` itself.
        Fallback: None (Conv2D runs its activation as a separate pass).

    conv2d_relu_max_pool2d_supported(x_shape, kernel_shape, strides, pads,
                                     pool_size, pool_strides, pool_pads) -> bool
    conv2d_relu_max_pool2d_forward(x, kernel, bias, pads) -> (y, cache)
    conv2d_relu_max_pool2d_backward(dy, cache, need_input_grad) -> (dx, dkernel, dbias)
        A ``Conv2D(activation="relu")`` and the ``MaxPooling2D`` after it as one kernel
        (for the shapes the first function accepts): the same pooled output, bit for
        bit, without writing the convolution's full-size output.  The model runs such
        a pair as one step (:mod:`minicnn.models.steps`).  Fallback: None (two steps).

    matmul(a, b) -> a @ b
        2-D ``a`` ``(M, K)`` and ``b`` ``(K, N)``: the GEMM of Dense layers.
        Fallback: NumPy's ``a @ b``.

    rmsprop_update(value, gradient, velocity, learning_rate, rho, one_minus_rho, epsilon)
        Plain RMSprop's update of one variable, in place, in one pass, bit for bit the
        NumPy operations of :class:`minicnn.optimizers.RMSprop`.  Fallback: None (the
        optimizer runs those operations itself).

Pads and output sizes come from :mod:`minicnn.kernels.geometry`, so every backend sees
the same resolved numbers.  The backend is chosen in one place: :mod:`minicnn.backend`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable, NamedTuple

import numpy as np

BACKEND_MODULES = {
    "reference": "minicnn.kernels.reference",
    "numpy": "minicnn.kernels.numpy_ops",
    "numba": "minicnn.kernels.numba",
}

REQUIRED_OPERATIONS = ("conv2d_forward", "conv2d_backward", "max_pool2d_forward",
                       "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward")
OPTIONAL_OPERATIONS = ("conv2d_bias_relu_forward", "conv2d_relu_max_pool2d_supported",
                       "conv2d_relu_max_pool2d_forward", "conv2d_relu_max_pool2d_backward",
                       "matmul", "rmsprop_update")


class ConvReluMaxPoolKernels(NamedTuple):
    """The three functions of the fused ``Conv2D(relu)`` + ``MaxPooling2D`` operation."""

    supported: Callable[..., bool]
    forward: Callable
    backward: Callable


def numpy_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The plain ``a @ b``: what ``matmul`` means where a backend has no GEMM of its own."""
    return a @ b


class KernelBackend:
    """One backend module seen through the contract above.

    The required kernels are the module's own functions (``backend.conv2d_forward``);
    each optional operation is the module's function or its fallback.  Attributes are
    read from the module on every access, so a test that replaces a module function
    (to break a kernel on purpose) is seen at once.
    """

    def __init__(self, name: str, module: ModuleType) -> None:
        missing = [operation for operation in REQUIRED_OPERATIONS
                   if not hasattr(module, operation)]
        if missing:
            raise TypeError(f"kernel backend {name!r} ({module.__name__}) lacks {missing}")
        self.name = name
        self.module = module

    def __getattr__(self, operation: str):
        if operation in REQUIRED_OPERATIONS:
            return getattr(self.module, operation)
        raise AttributeError(f"{operation!r} is not an operation of the kernel contract "
                             f"(minicnn.kernels)")

    def _optional(self, operation: str):
        return getattr(self.module, operation, None)

    @property
    def conv2d_bias_relu_forward(self) -> Callable | None:
        return self._optional("conv2d_bias_relu_forward")

    @property
    def conv_relu_max_pool(self) -> ConvReluMaxPoolKernels | None:
        functions = [self._optional(f"conv2d_relu_max_pool2d_{part}")
                     for part in ("supported", "forward", "backward")]
        return None if None in functions else ConvReluMaxPoolKernels(*functions)

    @property
    def matmul(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return self._optional("matmul") or numpy_matmul

    @property
    def rmsprop_update(self) -> Callable | None:
        return self._optional("rmsprop_update")

    def __repr__(self) -> str:
        return f"<KernelBackend {self.name!r} ({self.module.__name__})>"

"""Neighbouring layers run as one kernel: a Conv2D with ReLU and the MaxPooling2D after it.

The seed's convnet is ``Conv2D(relu)`` then ``MaxPooling2D(2)``, twice.  Layer by
layer, the convolution writes its whole output (MNIST's first layer, batch 64: 5.5 MB),
the pooling reads it back and keeps a quarter, and backward writes a gradient of the full
size again, three quarters zeros, for the convolution to read.  When the backend has a
fused kernel for the pair (``conv2d_relu_max_pool2d_*``: the numba backend, for a
single-channel 3x3 convolution or a Winograd one, and a 2x2 pooling),
:class:`~minicnn.models.Sequential` runs the two as one :class:`ConvReluMaxPool` step
instead: the same output values (bit for bit) and gradients (to float32 round-off),
with the full-size arrays never made, and Winograd computing only the tiles under a
pooling window.  Measured on the 2-core machine (MNIST convnet, batch 64, median of 4
alternated runs): 12.1 -> 9.6 ms a training step for the first pair, 8.8 -> 7.5 ms
for the second.

Fusing is an execution detail, as Keras's own graph compiler fuses: the model still has
both layers, with their names, weights and summary rows.  It applies where the
convolution would fuse its ReLU anyway (training, and inference that keeps no state),
so visualizations that look at a layer's own output see the unfused layers.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from minicnn.layers.conv import Conv2D
from minicnn.layers.pooling import MaxPooling2D


ENABLED = True
"""Set False to run every layer on its own (tests compare the two)."""


class ConvReluMaxPool:
    """A ``Conv2D(activation="relu")`` and the ``MaxPooling2D`` after it, as one step."""

    def __init__(self, conv: Conv2D, pool: MaxPooling2D, backend: ModuleType) -> None:
        self.conv, self.pool, self.backend = conv, pool, backend
        self._cache = None

    @classmethod
    def find(cls, layers: list, index: int, x: np.ndarray, training: bool,
             backend: ModuleType) -> "ConvReluMaxPool | None":
        """The fused step for ``layers[index]`` and ``layers[index + 1]``, or None."""
        if not ENABLED or index + 1 >= len(layers):
            return None
        conv, pool = layers[index], layers[index + 1]
        supported = getattr(backend, "conv2d_relu_max_pool2d_supported", None)
        # Only where the convolution fuses its own ReLU (so not in inference that keeps
        # each layer's state for visualizations), and likewise for the pooling.
        if (supported is None or type(conv) is not Conv2D or type(pool) is not MaxPooling2D
                or not conv.fuses_relu(training) or (pool.keep_for_backward and not training)
                or conv.dtype != pool.dtype):
            return None
        if not supported(x.shape, conv.kernel.value.shape, conv.strides, conv.pads,
                         pool.pool_size, pool.strides, pool.pads):
            return None
        return cls(conv, pool, backend)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The pooled output, as ``pool.forward(conv.forward(x))`` would give it."""
        conv = self.conv
        bias = conv.bias.value if conv.use_bias else None
        y, cache = self.backend.conv2d_relu_max_pool2d_forward(x, conv.kernel.value, bias,
                                                               conv.pads)
        self._cache = cache if conv.keep_for_backward else None
        # The layers' own backward state would be stale: drop it.
        conv._cache = self.pool._cache = None
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        """Set the convolution's gradients from the pooled output's ``dy``; return ``dx``."""
        if self._cache is None:
            raise RuntimeError(f"layers {self.conv.name!r} and {self.pool.name!r} kept no "
                               f"state for backward: run forward with training=True first")
        dx, dkernel, dbias = self.backend.conv2d_relu_max_pool2d_backward(
            dy, self._cache, need_input_grad)
        self.conv.kernel.grad = dkernel
        if self.conv.use_bias:
            self.conv.bias.grad = dbias
        return dx

"""The steps a model runs: one per layer, or one for a fused Conv2D(relu) + MaxPooling2D.

A :class:`~minicnn.models.Sequential` model runs a list of steps forward, then the
same list backward::

    steps = plan_steps(layers, backend, x.shape, training)
    for step in steps:            x  = step.forward(x, training)
    for step in reversed(steps):  dy = step.backward(dy, need_input_grad)

Most steps are one layer (:class:`LayerStep`).  Where the backend offers the fused
``conv2d_relu_max_pool2d`` operation of the kernel contract (:mod:`minicnn.kernels`:
the numba backend, for a single-channel 3x3 convolution or a Winograd one, and a 2x2
pooling), a ``Conv2D(activation="relu")`` and the ``MaxPooling2D`` after it are one
:class:`ConvReluMaxPoolStep`.  Layer by layer, the convolution writes its whole output,
the pooling reads it back and keeps a quarter, and backward writes a gradient of the
full size again, three quarters zeros; fused, the full-size arrays are never made and
Winograd computes only the tiles under a pooling window.  The output is the same bit
for bit and the gradients agree to float32 round-off.

Fusing is an execution detail, as in Keras's own graph compiler: the model still has
both layers, with their names, weights and summary rows.  It applies where the
convolution would fuse its ReLU anyway (training, and inference that keeps no state),
so visualizations that look at a layer's own output see the unfused layers.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import ConvReluMaxPoolKernels, KernelBackend
from minicnn.layers.base import Layer
from minicnn.layers.conv import Conv2D
from minicnn.layers.pooling import MaxPooling2D

FUSION_ENABLED = True
"""Set False to run every layer as its own step (tests compare the two)."""


class LayerStep:
    """One layer, run as itself."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.layers = (layer,)
        self.name = layer.name

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``layer.forward(x)``, with ``x`` first cast to the layer's dtype if needed."""
        if x.dtype != self.layer.dtype:
            x = self.layer.check_input(x)
        return self.layer.forward(x, training)

    def backward(self, dy: np.ndarray, need_input_grad: bool,
                 at_preactivation: bool = False) -> np.ndarray | None:
        """The layer's backward; ``at_preactivation``: ``dy`` is d loss / d z, before
        the layer's activation (the loss computed it from the logits)."""
        if at_preactivation:
            return self.layer.backward_from_preactivation(dy, need_input_grad)
        return self.layer.backward(dy, need_input_grad)


class ConvReluMaxPoolStep:
    """A ``Conv2D(activation="relu")`` and the ``MaxPooling2D`` after it, as one kernel."""

    def __init__(self, conv: Conv2D, pool: MaxPooling2D, fused: ConvReluMaxPoolKernels) -> None:
        self.conv, self.pool, self.fused = conv, pool, fused
        self.layers = (conv, pool)
        self.name = f"{conv.name} + {pool.name}"
        self._cache = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """The pooled output ``(N, OH / 2, OW / 2, F)``, as ``pool(conv(x))`` gives it."""
        if x.dtype != self.conv.dtype:
            x = self.conv.check_input(x)
        conv = self.conv
        bias = conv.bias.value if conv.use_bias else None
        y, cache = self.fused.forward(x, conv.kernel.value, bias, conv.pads)
        self._cache = cache if conv.keep_for_backward else None
        # The layers' own backward state would be stale: they did not run.
        conv.release_backward_state()
        self.pool.release_backward_state()
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        """Set the convolution's gradients from the pooled output's ``dy``; return ``dx``."""
        if self._cache is None:
            raise RuntimeError(f"layers {self.conv.name!r} and {self.pool.name!r} kept no "
                               f"state for backward: run forward with training=True first")
        dx, dkernel, dbias = self.fused.backward(dy, self._cache, need_input_grad)
        self.conv.set_gradients(dkernel, dbias)
        return dx


Step = LayerStep | ConvReluMaxPoolStep


def _fuse(conv: Layer, pool: Layer, backend: KernelBackend, x_shape: tuple,
          training: bool) -> ConvReluMaxPoolStep | None:
    """The fused step for ``conv`` then ``pool`` on inputs of ``x_shape``, or None."""
    fused = backend.conv_relu_max_pool
    # Only where the convolution fuses its own ReLU (so not in inference that keeps
    # each layer's state for visualizations), and likewise for the pooling.
    if (fused is None or type(conv) is not Conv2D or type(pool) is not MaxPooling2D
            or not conv.fuses_relu(training) or (pool.keep_for_backward and not training)
            or conv.dtype != pool.dtype):
        return None
    if not fused.supported(x_shape, conv.kernel.value.shape, conv.strides, conv.pads,
                           pool.pool_size, pool.strides, pool.pads):
        return None
    return ConvReluMaxPoolStep(conv, pool, fused)


def plan_steps(layers: list[Layer], backend: KernelBackend, input_shape: tuple,
               training: bool) -> list[Step]:
    """The steps that run ``layers`` on a batch of ``input_shape`` ``(N, ...)``.

    Args:
        layers: the model's built layers, in order.
        backend: the active kernel backend (it decides which pairs fuse).
        input_shape: the batch's shape, with its real batch size.
        training: whether the forward pass is a training one.
    """
    steps: list[Step] = []
    shape = tuple(input_shape)
    index = 0
    while index < len(layers):
        layer = layers[index]
        fused = None
        if FUSION_ENABLED and index + 1 < len(layers):
            fused = _fuse(layer, layers[index + 1], backend, shape, training)
        if fused is not None:
            steps.append(fused)
            last = layers[index + 1]
            index += 2
        else:
            steps.append(LayerStep(layer))
            last = layer
            index += 1
        shape = (shape[0],) + tuple(last.output_shape[1:])
    return steps

"""Conv2D: the 2-D convolution layer (channels-last, HWIO kernel, as Keras)."""

from __future__ import annotations

import numpy as np

from minicnn import activations, initializers
from minicnn.backend import kernels
from minicnn.kernels.geometry import output_hw, resolve_pads
from minicnn.layers.base import Layer, Shape, normalize_padding, normalize_pair, require_rank


class Conv2D(Layer):
    """2-D convolution: slide ``filters`` kernels of ``kernel_size`` over the input.

    For every output position ``(i, j)`` and filter ``f``::

        z[n, i, j, f] = bias[f] + sum_{a, b, c} x_pad[n, i*SH + a, j*SW + b, c] * kernel[a, b, c, f]
        y = activation(z)

    Args:
        filters: F, the number of output channels.
        kernel_size: (KH, KW) or one int for both.
        strides: (SH, SW) or one int.
        padding: "valid" (no padding) or "same" (pad so that OH = ceil(H / SH); an odd
            total goes to the bottom/right, as Keras).
        activation: name or None (linear).
        use_bias: add one bias per filter.

    Shapes: input (N, H, W, C), kernel (KH, KW, C, F), bias (F,), output (N, OH, OW, F)
    with ``OH = (H + pad_top + pad_bottom - KH) // SH + 1`` (same for OW).
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(
                f"Layer {self.name!r}: filters must be a positive integer, received {filters!r}")
        self.filters = int(filters)
        self.kernel_size = normalize_pair(kernel_size, "kernel_size", self.name)
        self.strides = normalize_pair(strides, "strides", self.name)
        self.padding = normalize_padding(padding, self.name)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel = None
        self.bias = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        require_rank(input_shape, 4, self, "(batch, height, width, channels)")
        _, height, width, _ = input_shape
        if self.padding == "valid" and (height < self.kernel_size[0] or width < self.kernel_size[1]):
            raise ValueError(
                f"Layer {self.name!r}: kernel_size {self.kernel_size} is larger than its "
                f"{height}x{width} input with padding='valid'; use a smaller kernel, a larger "
                f"input, or padding='same'")
        out_height, out_width = output_hw(height, width, self.kernel_size, self.strides, self.padding)
        return (input_shape[0], out_height, out_width, self.filters)

    def build(self, input_shape: Shape) -> None:
        output_shape = self.compute_output_shape(input_shape)
        channels = input_shape[3]
        self.kernel = self.add_weight("kernel", (*self.kernel_size, channels, self.filters),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)
        self.pads = resolve_pads(input_shape[1], input_shape[2], self.kernel_size,
                                 self.strides, self.padding)
        super().build(input_shape)
        self.output_shape = output_shape

    def fuses_relu(self, training: bool) -> bool:
        """Whether a forward pass runs the ReLU inside the convolution's kernel.

        In training and in plain inference the ReLU rides on the convolution's bias pass
        (one memory pass saved, and backward applies the mask with the bias sums).
        Visualizations (inference that keeps state) need the pre-activation: unfused.
        """
        return self.activation.name == "relu" and (training or not self.keep_for_backward)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        backend = kernels()
        bias = self.bias.value if self.use_bias else None
        fused = backend.conv2d_bias_relu_forward
        fuse = fused is not None and self.fuses_relu(training)
        if fuse:
            y, cache = fused(x, self.kernel.value, bias, self.strides, self.pads)
            z = None
        else:
            z, cache = backend.conv2d_forward(x, self.kernel.value, bias, self.strides, self.pads)
            y = self.activation.forward(z)
        if self.keep_for_backward:
            # What backward needs: the kernel's cache, the pre-activation and the output.
            self._cache, self.last_preactivation, self.last_output = cache, z, y
            self._relu_fused = fuse
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if self._relu_fused:
            # The fused cache makes conv2d_backward apply the ReLU mask itself.
            return self._backward_kernels(dy, need_input_grad)
        dz = self.activation.backward(dy, self.last_preactivation, self.last_output)
        return self._backward_kernels(dz, need_input_grad)

    def backward_from_preactivation(self, dz: np.ndarray,
                                    need_input_grad: bool = True) -> np.ndarray | None:
        """Backward pass given d(loss)/dz, the gradient before the activation."""
        if self._relu_fused:
            raise RuntimeError(
                f"Layer {self.name!r} ran its ReLU fused into the convolution (training "
                f"forward); call forward(x, training=False) to get pre-activation gradients")
        return self._backward_kernels(dz, need_input_grad)

    def _backward_kernels(self, gradient: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        # A frozen layer (trainable = False) keeps no weight gradient: with nothing
        # below it needing dx either, there is nothing to compute at all.
        if not self.trainable and not need_input_grad:
            return None
        dx, dkernel, dbias = kernels().conv2d_backward(gradient, self._cache, need_input_grad)
        self.set_gradients(dkernel, dbias)
        return dx

    def set_gradients(self, dkernel: np.ndarray, dbias: np.ndarray | None) -> None:
        """Store d loss / d kernel ``(KH, KW, C, F)`` and d loss / d bias ``(F,)``.

        ``backward`` calls it; so does a fused step that computed this layer's
        gradients inside one kernel with the layer after it
        (:class:`minicnn.models.steps.ConvReluMaxPoolStep`).  A frozen layer
        (``trainable = False``) keeps its gradients as they were.
        """
        if not self.trainable:
            return
        self.kernel.grad = dkernel
        if self.use_bias:
            self.bias.grad = dbias

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}

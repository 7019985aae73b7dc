"""MaxPooling2D and AveragePooling2D: downsample each channel over small windows."""

from __future__ import annotations

from typing import Callable

import numpy as np

from minicnn.backend import kernels
from minicnn.kernels import KernelBackend
from minicnn.kernels.geometry import output_hw, resolve_pads
from minicnn.layers.base import Layer, Shape, normalize_padding, normalize_pair, require_rank


class _Pooling2D(Layer):
    """Shared configuration and shapes of the 2-D pooling layers.

    Args:
        pool_size: (PH, PW) window, or one int.
        strides: step between windows; None means ``pool_size`` (as Keras).
        padding: "valid" or "same" (padded cells never count: max ignores them,
            average divides by the number of real cells).

    Shapes: input (N, H, W, C), output (N, OH, OW, C) with
    ``OH = (H - PH) // SH + 1`` for "valid" and ``OH = ceil(H / SH)`` for "same".
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", **kwargs) -> None:
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size", self.name)
        self.strides = self.pool_size if strides is None else normalize_pair(
            strides, "strides", self.name)
        self.padding = normalize_padding(padding, self.name)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        require_rank(input_shape, 4, self, "(batch, height, width, channels)")
        _, height, width, channels = input_shape
        if self.padding == "valid" and (height < self.pool_size[0] or width < self.pool_size[1]):
            raise ValueError(
                f"Layer {self.name!r}: pool_size {self.pool_size} is larger than its "
                f"{height}x{width} input with padding='valid'")
        out_height, out_width = output_hw(height, width, self.pool_size, self.strides, self.padding)
        return (input_shape[0], out_height, out_width, channels)

    def build(self, input_shape: Shape) -> None:
        self.pads = resolve_pads(input_shape[1], input_shape[2], self.pool_size,
                                 self.strides, self.padding)
        super().build(input_shape)

    def _kernels(self, backend: KernelBackend) -> tuple[Callable, Callable]:
        """This pooling's (forward, backward) kernels in ``backend``."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        forward_kernel, _ = self._kernels(kernels())
        y, cache = forward_kernel(x, self.pool_size, self.strides, self.pads)
        self._cache = cache if self.keep_for_backward else None
        return y

    def backward(self, dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        _, backward_kernel = self._kernels(kernels())
        return backward_kernel(dy, self._cache)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max pooling: ``y[n, i, j, c] = max over the window of x[n, i*SH + a, j*SW + b, c]``.

    The gradient flows only to the window's maximum (the first one on ties).
    """

    def _kernels(self, backend: KernelBackend) -> tuple[Callable, Callable]:
        return backend.max_pool2d_forward, backend.max_pool2d_backward


class AveragePooling2D(_Pooling2D):
    """Average pooling: the mean of the real (unpadded) cells of each window.

    The gradient is spread evenly: each real cell of a window gets ``dy / count``.
    """

    def _kernels(self, backend: KernelBackend) -> tuple[Callable, Callable]:
        return backend.avg_pool2d_forward, backend.avg_pool2d_backward

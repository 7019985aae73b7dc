"""The one FLOP count: how much arithmetic a layer, a prediction and a training step do.

The rule, used by ``minicnn explain``, the per-layer profiler (``minicnn bench layers``)
and the benchmark report in ``benchmarks/``:

* A multiply-add counts as **2 FLOPs** (one multiply, one add), as SGEMM rates are
  quoted: a ``(M, K) @ (K, N)`` product is ``2 M K N`` FLOPs.
* **Forward**: Conv2D does ``N * OH * OW * F * KH * KW * C`` multiply-adds (each output
  value is a dot product over its ``KH x KW x C`` window); Dense does
  ``N * D * U`` (``D`` inputs, ``U`` units; on an input with more axes, every position
  counts, as ``x @ kernel`` does).
* **Weight gradient**: as many multiply-adds as the forward pass (Conv2D:
  ``dK = patches^T @ dy``; Dense: ``dK = x^T @ dz``).  Computed for every layer that
  backward runs through, frozen or not, because the layers compute it.
* **Input gradient**: the same again (Conv2D: the full convolution of ``dy`` with the
  flipped kernel; Dense: ``dz @ kernel^T``), but only where it is needed.  A training
  step backpropagates from the loss down to the first layer that has trainable
  weights and stops there: that layer computes no input gradient, and the layers
  below it run no backward pass at all (as ``Sequential.backward`` does).
* Pooling, Flatten, Dropout, activations and biases count as zero: they move memory,
  their arithmetic is a few operations per value, not a product.

For the MNIST convnet of the book's section 5.1 at batch 64 this gives 1.05 GFLOP per
training step, 80 % of it the three products of the second convolution.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from minicnn.layers import Conv2D, Dense

__all__ = ["layer_multiply_adds", "layer_flops", "first_trainable_index", "layer_input_shapes",
           "predict_flops", "training_step_flops"]

Shape = tuple


def layer_multiply_adds(layer, input_shape: Shape) -> int:
    """Multiply-adds of ``layer``'s forward pass on a batch of ``input_shape``
    (batch axis included); 0 for layers that only move or compare values."""
    if isinstance(layer, Conv2D):
        batch = input_shape[0]
        _, out_height, out_width, filters = layer.compute_output_shape(tuple(input_shape))
        kernel_height, kernel_width = layer.kernel_size
        return int(batch * out_height * out_width * filters
                   * kernel_height * kernel_width * input_shape[3])
    if isinstance(layer, Dense):
        positions = int(np.prod(input_shape[:-1]))
        return positions * int(input_shape[-1]) * int(layer.units)
    return 0


def layer_flops(layer, input_shape: Shape, need_input_grad: bool) -> tuple[int, int]:
    """(forward, backward) FLOPs of one layer on a batch of ``input_shape``.

    Args:
        layer: a built or unbuilt layer (only its configuration is read).
        input_shape: ``(N, ...)``, the batch axis included.
        need_input_grad: whether backward also computes the gradient with respect to the
            layer's input (False for the lowest layer a training step runs backward).

    Returns:
        ``(2 m, 2 m * (2 if need_input_grad else 1))`` with ``m`` the forward
        multiply-adds: the backward pass is the weight gradient, plus the input gradient
        when it is needed.
    """
    multiply_adds = layer_multiply_adds(layer, input_shape)
    return 2 * multiply_adds, 2 * multiply_adds * (2 if need_input_grad else 1)


def first_trainable_index(layers: Sequence) -> int | None:
    """Index of the lowest layer with trainable weights (where a training step's backward
    pass stops), or None when nothing is trainable."""
    for index, layer in enumerate(layers):
        if layer.trainable_weights:
            return index
    return None


def computing_layers(model) -> list:
    """The layers that compute, in order: a model added to a model (the book's
    ``model.add(conv_base)``) counts by its own layers."""
    return model.leaf_layers() if hasattr(model, "leaf_layers") else list(model.layers)


def layer_input_shapes(model, batch_size: int) -> Iterator[tuple[object, Shape]]:
    """``(layer, its input shape)`` for every computing layer of a built ``model``,
    batch ``batch_size``."""
    if model.input_shape is None:
        raise ValueError(f"model {model.name!r} is not built: its input shape is unknown")
    shape = (batch_size,) + tuple(model.input_shape[1:])
    for layer in computing_layers(model):
        yield layer, shape
        shape = tuple(layer.compute_output_shape(shape))


def predict_flops(model, batch_size: int) -> int:
    """FLOPs of one forward pass (``predict_on_batch``) on ``batch_size`` images."""
    return sum(layer_flops(layer, shape, False)[0]
               for layer, shape in layer_input_shapes(model, batch_size))


def training_step_flops(model, batch_size: int) -> int:
    """FLOPs of one training step (``train_on_batch``) on ``batch_size`` images.

    Every layer's forward pass; then, from the last layer down to the first trainable
    one, each layer's weight gradient and, above that first trainable layer, its input
    gradient (see the module docstring).  A model with nothing trainable counts the
    forward pass only.
    """
    first = first_trainable_index(computing_layers(model))
    total = 0
    for index, (layer, shape) in enumerate(layer_input_shapes(model, batch_size)):
        forward, backward = layer_flops(layer, shape, need_input_grad=first is not None
                                        and index > first)
        total += forward
        if first is not None and index >= first:
            total += backward
    return total

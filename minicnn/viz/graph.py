"""Running a Sequential model part of the way, and backpropagating from the middle.

The three views need two things the fit loop never asks for:

* the output of every layer for one input (``forward_all``), and
* the gradient of a scalar with respect to an *intermediate* tensor: a class score with
  respect to a convolution's output (Grad-CAM), or a filter's mean activation with
  respect to the input image (filter patterns).  ``backpropagate`` runs the layers'
  own ``backward`` from any layer down to any other, exactly as ``Sequential.backward``
  does for the whole stack.

Layers store their parameter gradients in ``Variable.grad`` as a side effect of
``backward``; ``preserved_gradients`` puts the previous ones back afterwards, so a
visualization in the middle of training leaves the model's state as it found it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from minicnn.layers.base import Layer


def layer_index(model, layer_name: str) -> int:
    """Position of the layer called ``layer_name`` in ``model.layers``.

    Raises:
        ValueError: no such layer; the message lists the model's layer names.
    """
    for index, layer in enumerate(model.layers):
        if layer.name == layer_name:
            return index
    raise ValueError(
        f"model {model.name!r} has no layer named {layer_name!r}; its layers are: "
        f"{', '.join(layer.name for layer in model.layers)}")


def is_spatial(layer: Layer) -> bool:
    """True for layers whose output is a feature map (N, H, W, C)."""
    return layer.output_shape is not None and len(layer.output_shape) == 4


def as_batch(model, image) -> np.ndarray:
    """One image as a batch of one, in the model's dtype.

    Args:
        image: (H, W, C), (H, W) when the model takes one channel, or (1, H, W, C).
    Returns:
        (1, H, W, C) contiguous array of the first layer's dtype.
    Raises:
        ValueError: the model is not built, or the image does not fit its input shape.
    """
    if not model.built or model.input_shape is None:
        raise ValueError(f"model {model.name!r} is not built: its input shape is unknown")
    expected = tuple(model.input_shape[1:])
    array = np.asarray(image)
    if array.ndim == len(expected) - 1 and expected[-1] == 1:
        array = array[..., np.newaxis]
    if array.ndim == len(expected):
        array = array[np.newaxis]
    if array.ndim != len(expected) + 1 or array.shape[0] != 1 or tuple(array.shape[1:]) != expected:
        raise ValueError(
            f"model {model.name!r} takes one image of shape {expected}, received an array "
            f"of shape {np.shape(image)}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"the image must be numeric, received dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=model.layers[0].dtype)


@contextmanager
def preserved_gradients(model) -> Iterator[None]:
    """Keep every layer's backward state and put the parameter gradients back afterwards."""
    saved_grads = [(variable, variable.grad) for variable in model.weights]
    saved_keep = [(layer, layer.keep_for_backward) for layer in model.layers]
    for layer in model.layers:
        layer.keep_for_backward = True  # backward needs each layer's cache
    try:
        yield
    finally:
        for variable, grad in saved_grads:
            variable.grad = grad
        for layer, keep in saved_keep:
            layer.keep_for_backward = keep


def forward_all(model, x: np.ndarray, stop: int | None = None) -> list[np.ndarray]:
    """Run layers ``0 .. stop`` (default: all) on ``x``; return every layer's output.

    Inference mode (``training=False``): dropout is the identity, as in ``predict``.
    Each layer keeps what its ``backward`` needs, so ``backpropagate`` may follow.
    """
    last = len(model.layers) - 1 if stop is None else stop
    outputs = []
    for layer in model.layers[:last + 1]:
        x = layer.forward(layer.check_input(x) if x.dtype != layer.dtype else x, False)
        outputs.append(x)
    return outputs


def backpropagate(model, gradient: np.ndarray, start: int, stop: int,
                  at_preactivation: bool = False) -> np.ndarray:
    """Carry ``gradient`` from layer ``start``'s output back to layer ``stop``'s input.

    Args:
        gradient: d scalar / d (output of layer ``start``), or d scalar / d (its
            pre-activation) when ``at_preactivation``.
        start: index of the layer the gradient sits at (``forward_all`` must have run
            at least that far on the input of interest).
        stop: index of the last layer to go back through: the result is the gradient
            at its input (``stop = 0``: at the model input).
        at_preactivation: start below layer ``start``'s activation (its
            ``backward_from_preactivation``): the gradient of a logit, not of a
            probability.
    Returns:
        d scalar / d (input of layer ``stop``) = d scalar / d (output of layer ``stop - 1``).
    """
    if not 0 <= stop <= start < len(model.layers):
        raise ValueError(f"backpropagate needs 0 <= stop <= start < {len(model.layers)}, "
                         f"received start={start}, stop={stop}")
    for index in range(start, stop - 1, -1):
        layer = model.layers[index]
        if index == start and at_preactivation:
            gradient = layer.backward_from_preactivation(gradient, True)
        else:
            gradient = layer.backward(gradient, True)
    return gradient


def gradient_at_layer(model, x: np.ndarray, layer_name: str, output_gradient,
                      at_preactivation: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of a scalar of the model output with respect to an intermediate output.

    Args:
        x: a checked batch (see :func:`as_batch`).
        layer_name: the layer whose output the gradient is taken with respect to.
        output_gradient: a function ``model_output -> d scalar / d model_output`` (or
            d scalar / d the last layer's pre-activation when ``at_preactivation``).
    Returns:
        ``(layer_output, gradient, model_output)``; the first two have the same shape.
    """
    index = layer_index(model, layer_name)
    if index == len(model.layers) - 1:
        raise ValueError(f"layer {layer_name!r} is the model's output layer; choose a layer "
                         "before it (e.g. the last Conv2D)")
    with preserved_gradients(model):
        outputs = forward_all(model, x)
        seed = output_gradient(outputs[-1])
        gradient = backpropagate(model, seed, len(model.layers) - 1, index + 1,
                                 at_preactivation=at_preactivation)
    return outputs[index], gradient, outputs[-1]

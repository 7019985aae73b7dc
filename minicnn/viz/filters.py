"""Filter patterns: the input a filter responds to most, found by gradient ascent.

As the book (first edition) does it: start from a grey image with
a little noise, and repeat ``steps`` times::

    loss  = mean over (i, j) of layer_output[0, i, j, filter_index]
    g     = d loss / d image                     (backpropagation down to the input)
    image = image + step_size * g / (rms(g) + 1e-5)

Dividing by the root mean square of ``g`` makes every step the same size whatever the
gradient's scale ("normalized gradient steps").  The image is not clipped, so values
leave the input range; :func:`minicnn.viz.plotting.deprocess_image` rescales it for
display.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minicnn.viz.graph import backpropagate, forward_all, layer_index, preserved_gradients

# Added to the gradient's RMS, as in the book, so a tiny gradient cannot blow up.
RMS_EPSILON = 1e-5


@dataclass
class FilterAscent:
    """One gradient ascent: the images and the filter's mean activation along the way.

    Attributes:
        image: the final input image, (H, W, C), in input units (not clipped).
        start_image: the grey noisy starting image, (H, W, C).
        activations: the filter's mean activation before each step and after the last
            one (``steps + 1`` values): ``activations[0]`` is the start value,
            ``activations[-1]`` the value for ``image``.
        preactivation_steps: how many steps climbed the pre-activation because the
            filter was silent everywhere (ReLU output 0, so no gradient).
    """

    image: np.ndarray
    start_image: np.ndarray
    activations: list[float] = field(default_factory=list)
    preactivation_steps: int = 0

    @property
    def start_activation(self) -> float:
        return self.activations[0]

    @property
    def final_activation(self) -> float:
        return self.activations[-1]


def grey_noisy_image(shape: tuple[int, ...], grey: float = 0.5, noise: float = 0.1,
                     seed: int | None = 0, dtype=np.float32) -> np.ndarray:
    """A grey image with uniform noise: values in [grey, grey + noise), as the book's
    ``random((1, H, W, C)) * 20 + 128`` on a 0-255 scale (grey 0.5, noise 0.08 on 0-1)."""
    rng = np.random.default_rng(seed)
    return (grey + noise * rng.random(shape)).astype(dtype)


def _check_filter(model, layer_name: str, filter_index: int) -> int:
    index = layer_index(model, layer_name)
    layer = model.layers[index]
    channels = int(layer.output_shape[-1])
    if not (isinstance(filter_index, (int, np.integer)) and 0 <= filter_index < channels):
        raise ValueError(f"layer {layer_name!r} has {channels} filters (channels); "
                         f"filter_index must be in [0, {channels}), received {filter_index!r}")
    return index


def filter_ascent(model, layer_name: str, filter_index: int, steps: int = 40,
                  step_size: float = 1.0, *, start: np.ndarray | None = None,
                  seed: int | None = 0, grey: float = 0.5, noise: float = 0.1) -> FilterAscent:
    """Gradient ascent in input space on one filter's mean activation; see module doc.

    Args:
        model: a built minicnn ``Sequential``.
        layer_name: the layer holding the filter (any layer: for a Dense layer the
            "filter" is one unit).
        filter_index: the channel (last axis) of that layer's output.
        steps: number of ascent steps.
        step_size: RMS size of each step, in input units.
        start: the starting image (H, W, C); default :func:`grey_noisy_image` with
            ``grey``, ``noise`` and ``seed``.
    Returns:
        A :class:`FilterAscent` with the image and the activations along the way.
    """
    index = _check_filter(model, layer_name, filter_index)
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, received {steps!r}")
    input_shape = tuple(model.input_shape[1:])
    dtype = model.layers[0].dtype
    if start is None:
        start = grey_noisy_image(input_shape, grey, noise, seed, dtype)
    start = np.asarray(start, dtype=dtype)
    if start.shape != input_shape:
        raise ValueError(f"start image must have the model's input shape {input_shape}, "
                         f"received {start.shape}")
    layer = model.layers[index]
    x = start[np.newaxis].copy()
    result = FilterAscent(image=x[0], start_image=start.copy())
    with preserved_gradients(model):
        for step in range(steps + 1):
            output = forward_all(model, x, stop=index)[-1]
            channel = output[..., filter_index]
            result.activations.append(float(channel.mean(dtype=np.float64)))
            if step == steps:
                break
            gradient = np.zeros_like(output)
            gradient[..., filter_index] = 1.0 / channel.size  # d mean / d each value
            input_gradient = backpropagate(model, gradient, index, 0)
            if not np.any(input_gradient) and hasattr(layer, "backward_from_preactivation"):
                # Silent filter: its ReLU passes no gradient.  Climb the pre-activation's
                # mean instead until the filter fires somewhere.
                input_gradient = backpropagate(model, gradient, index, 0, at_preactivation=True)
                result.preactivation_steps += 1
            rms = np.sqrt(np.mean(np.square(input_gradient, dtype=np.float64)))
            x = x + (step_size / (rms + RMS_EPSILON)) * input_gradient
            x = x.astype(dtype, copy=False)
    result.image = x[0]
    return result


def filter_pattern(model, layer_name: str, filter_index: int, steps: int = 40,
                   step_size: float = 1.0, **options) -> np.ndarray:
    """The input image that maximizes one filter's mean activation (gradient ascent).

    Args:
        model: a built minicnn ``Sequential``.
        layer_name: e.g. a Conv2D layer's name.
        filter_index: which filter (output channel) of that layer.
        steps, step_size: the ascent (40 normalized steps of RMS 1.0, as the book).
        **options: ``seed``, ``grey``, ``noise`` or ``start``, see :func:`filter_ascent`.
    Returns:
        (H, W, C) float array in input units (use ``plotting.deprocess_image`` to show it).
    """
    return filter_ascent(model, layer_name, filter_index, steps, step_size, **options).image

"""Intermediate activations: what every convolution and pooling layer makes of one image.

The book's "feature maps": for an input image, the output of each Conv2D and pooling
layer is an (H, W, C) stack of C maps, one per filter; plotting each channel as a
small grey image shows how the network decomposes the input (edges first, then more
abstract, sparser patterns deeper in).
"""

from __future__ import annotations

import numpy as np

from minicnn.layers.conv import Conv2D
from minicnn.layers.pooling import _Pooling2D
from minicnn.viz.graph import as_batch, forward_all, layer_index, preserved_gradients


def feature_map_layers(model) -> list[str]:
    """Names of the layers whose outputs are feature maps: every Conv2D and pooling layer."""
    return [layer.name for layer in model.layers if isinstance(layer, (Conv2D, _Pooling2D))]


def activations(model, image, layer_names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The output of every Conv2D and pooling layer for one image.

    Args:
        model: a built minicnn ``Sequential``.
        image: (H, W, C) (or (H, W) for a one-channel model, or (1, H, W, C)), already
            scaled as the model expects (the MNIST models take pixels / 255).
        layer_names: only these layers (any layer with a 4-D output); default: every
            Conv2D and pooling layer, in model order.
    Returns:
        ``{layer_name: array (OH, OW, C)}`` in model order, each the layer's output
        after its activation (what ``keras.Model(inputs, layer.output)`` returns).
    """
    names = feature_map_layers(model) if layer_names is None else list(layer_names)
    indices = [layer_index(model, name) for name in names]
    for name, index in zip(names, indices):
        if len(model.layers[index].output_shape) != 4:
            raise ValueError(
                f"layer {name!r} outputs shape {model.layers[index].output_shape}, not a "
                "feature map (N, H, W, C); choose a Conv2D or pooling layer")
    if not indices:
        return {}
    x = as_batch(model, image)
    with preserved_gradients(model):
        outputs = forward_all(model, x, stop=max(indices))
    return {name: outputs[index][0].copy() for name, index in
            sorted(zip(names, indices), key=lambda pair: pair[1])}

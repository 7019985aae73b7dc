"""Grad-CAM: which places in an image made the network choose a class.

Selvaraju et al. (2017), as the book (section 5.4.3) and Keras's example compute it.  With ``A`` the
output of a convolution layer for one image, shape (h, w, K), and ``y_c`` the score of
class ``c``::

    G      = d y_c / d A                       (h, w, K), by backpropagation
    alpha  = mean over (i, j) of G[i, j, :]    (K,)  how much each channel matters
    cam    = relu(sum_k alpha[k] * A[:, :, k]) (h, w)
    cam    = cam / max(cam)                    in [0, 1] (all zeros if max(cam) == 0)

The score is the class *logit* (the last layer's pre-activation, before softmax), as
in the paper and Keras's Grad-CAM example; ``score="output"`` uses the probability
instead (as the book does).  The heatmap has the layer's resolution;
:func:`minicnn.viz.images.resize_bilinear` brings it to the input's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.viz.graph import as_batch, gradient_at_layer, layer_index

SCORES = ("logit", "output")


@dataclass
class GradCAM:
    """Everything Grad-CAM computed for one image.

    Attributes:
        heatmap: (h, w) in [0, 1], at the layer's resolution.
        class_index: the class explained.
        predictions: the model output for the image, (classes,).
        channel_weights: alpha, the spatial mean of the gradient, (K,).
        layer_output: A, (h, w, K).
        layer_gradient: d score / d A, (h, w, K).
        raw: the map before ReLU and normalization, (h, w).
    """

    heatmap: np.ndarray
    class_index: int
    predictions: np.ndarray
    channel_weights: np.ndarray
    layer_output: np.ndarray
    layer_gradient: np.ndarray
    raw: np.ndarray


def last_conv_layer_name(model) -> str:
    """The last layer with a feature-map output before the head (Grad-CAM's usual choice)."""
    from minicnn.layers.conv import Conv2D

    names = [layer.name for layer in model.layers[:-1] if isinstance(layer, Conv2D)]
    if not names:
        raise ValueError(f"model {model.name!r} has no Conv2D layer before its output layer")
    return names[-1]


def grad_cam_details(model, image, layer_name: str | None = None, class_index: int | None = None,
                     score: str = "logit") -> GradCAM:
    """Grad-CAM with every intermediate result; see :func:`grad_cam`."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, received {score!r}")
    layer_name = last_conv_layer_name(model) if layer_name is None else layer_name
    layer = model.layers[layer_index(model, layer_name)]
    if len(layer.output_shape) != 4:
        raise ValueError(
            f"Grad-CAM needs a feature-map layer (N, H, W, C); {layer_name!r} outputs "
            f"{layer.output_shape}")
    x = as_batch(model, image)
    last = model.layers[-1]
    classes = int(last.output_shape[-1])
    if class_index is not None and not (isinstance(class_index, (int, np.integer))
                                        and 0 <= class_index < classes):
        raise ValueError(f"class_index must be an integer in [0, {classes}), "
                         f"received {class_index!r}")
    at_logits = score == "logit" and hasattr(last, "backward_from_preactivation")
    chosen: list[int] = []

    def seed(output: np.ndarray) -> np.ndarray:
        index = int(np.argmax(output[0])) if class_index is None else int(class_index)
        chosen.append(index)
        gradient = np.zeros_like(output)  # the logits have the output's shape
        gradient[0, index] = 1
        return gradient

    output, gradient, predictions = gradient_at_layer(model, x, layer_name, seed,
                                                      at_preactivation=at_logits)
    feature_map, gradient = output[0], gradient[0]
    # float64 sums so the two engines' round-off does not decide the result
    weights = gradient.astype(np.float64).mean(axis=(0, 1))
    raw = feature_map.astype(np.float64) @ weights
    heatmap = np.maximum(raw, 0)
    peak = heatmap.max()
    heatmap = heatmap / peak if peak > 0 else np.zeros_like(heatmap)
    return GradCAM(heatmap=heatmap.astype(np.float32), class_index=chosen[0],
                   predictions=predictions[0].copy(), channel_weights=weights.astype(np.float32),
                   layer_output=feature_map.copy(), layer_gradient=gradient.copy(),
                   raw=raw.astype(np.float32))


def grad_cam(model, image, layer_name: str, class_index: int | None = None,
             score: str = "logit") -> np.ndarray:
    """Grad-CAM heatmap of ``class_index`` for one image at ``layer_name``'s resolution.

    Args:
        model: a built minicnn ``Sequential`` ending in a class-score layer.
        image: (H, W, C) (or (H, W) for a one-channel model), scaled as the model expects.
        layer_name: a convolution (or pooling) layer; usually the last Conv2D.
        class_index: the class to explain; None means the predicted class.
        score: "logit" (default, the pre-softmax score) or "output" (the probability).
    Returns:
        (h, w) float32 in [0, 1]: the ReLU of the gradient-weighted channel sum,
        divided by its maximum; all zeros when nothing speaks for the class.
    """
    return grad_cam_details(model, image, layer_name, class_index, score).heatmap

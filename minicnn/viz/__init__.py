"""Looking inside a convnet: intermediate activations, filter patterns, Grad-CAM.

    from minicnn import viz
    maps = viz.activations(model, image)                  # {layer: (H, W, C)}
    pattern = viz.filter_pattern(model, "conv2d_1", 3)    # (H, W, C) input image
    heatmap = viz.grad_cam(model, image, "conv2d_2")      # (h, w) in [0, 1]
    viz.plotting.plot_grad_cam(image, heatmap, "gradcam.png")

The gradients come from the layers' own ``backward`` (see :mod:`minicnn.viz.graph`);
the same computations in Keras agree to float32 round-off (tests/test_viz.py).
"""

from minicnn.viz import plotting
from minicnn.viz.activations import activations, feature_map_layers
from minicnn.viz.filters import FilterAscent, filter_ascent, filter_pattern, grey_noisy_image
from minicnn.viz.gradcam import GradCAM, grad_cam, grad_cam_details, last_conv_layer_name
from minicnn.viz.graph import gradient_at_layer
from minicnn.viz.images import image_for_model, load_image, resize_bilinear

__all__ = ["activations", "feature_map_layers", "filter_pattern", "filter_ascent",
           "FilterAscent", "grey_noisy_image", "grad_cam", "grad_cam_details", "GradCAM",
           "last_conv_layer_name", "gradient_at_layer", "image_for_model", "load_image",
           "resize_bilinear", "plotting"]

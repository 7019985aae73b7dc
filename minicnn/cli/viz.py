"""``minicnn viz activations|filters|gradcam``: the three views as PNG files.

    minicnn viz activations --model runs/mnist/model.npz --index 0 --out runs/viz
    minicnn viz filters     --model runs/mnist/model.npz --layer conv2d_1 --out runs/viz
    minicnn viz gradcam     --model runs/mnist/model.npz --image digit.png --class 7 --out runs/viz

Images come from the MNIST test set (``--index I``, pixels / 255 as in training) or
from any image file (``--image PATH``: resized to the model's input, grey or RGB,
scaled to [0, 1]; ``--invert`` for dark strokes on a light background).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

VIEWS = ("activations", "filters", "gradcam")


def register(commands) -> None:
    """Add ``viz`` to the subparsers object ``commands``."""
    parser = commands.add_parser("viz", help="look inside a trained model: activations, filter "
                                             "patterns, Grad-CAM (PNG files; the book's "
                                             "section 5.4)")
    parser.add_argument("view", choices=VIEWS,
                        help="activations: every channel of every Conv2D/pooling output; "
                             "filters: gradient-ascent patterns; gradcam: class heatmap")
    parser.add_argument("--model", required=True,
                        help="a model file, e.g. runs/mnist/model.npz (required)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", help="an image file (PNG, JPEG, ...); default: an MNIST "
                                           "test image (--index)")
    source.add_argument("--index", type=int, default=None,
                        help="an MNIST test image by index (default 0 when no --image)")
    parser.add_argument("--invert", action="store_true",
                        help="invert the --image (dark digit on white -> MNIST's white on black)")
    parser.add_argument("--layer", default=None,
                        help="activations: only this layer; filters: this layer (default: "
                             "every Conv2D); gradcam: this layer (default: the last Conv2D)")
    parser.add_argument("--class", dest="class_index", type=int, default=None,
                        help="gradcam: the class to explain (default: the predicted one)")
    parser.add_argument("--count", type=int, default=16,
                        help="filters: the first COUNT filters of each layer")
    parser.add_argument("--steps", type=int, default=40, help="filters: gradient-ascent steps")
    parser.add_argument("--step-size", type=float, default=1.0,
                        help="filters: RMS size of each step in input units")
    parser.add_argument("--out", required=True, help="folder for the PNG files (required)")
    parser.set_defaults(run=run)


def _mnist_test_image(index: int) -> tuple[np.ndarray, int]:
    from minicnn.datasets import mnist

    (_, _), (x_test, y_test) = mnist.load_data()
    if not -len(x_test) <= index < len(x_test):
        raise ValueError(f"--index must be in [0, {len(x_test)}), received {index}")
    return x_test[index].astype(np.float32)[..., np.newaxis] / 255.0, int(y_test[index])


def choose_image(model, image_path: str | None, index: int | None,
                 invert: bool = False) -> tuple[np.ndarray, str]:
    """The input image for the model and a short description of where it came from."""
    from minicnn.viz.images import image_for_model

    if image_path is not None:
        return image_for_model(model, image_path, invert=invert), f"image {image_path}"
    index = 0 if index is None else index
    expected = tuple(model.input_shape[1:])
    if expected != (28, 28, 1):
        raise ValueError(f"--index picks an MNIST test image (28, 28, 1), but the model takes "
                         f"{expected}; pass --image PATH instead")
    image, label = _mnist_test_image(index)
    return image, f"MNIST test image {index} (label {label})"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def view_activations(model, image: np.ndarray, source: str, layer: str | None,
                     out: Path) -> list[Path]:
    from minicnn import viz

    maps = viz.activations(model, image, None if layer is None else [layer])
    if not maps:
        raise ValueError(f"model {model.name!r} has no Conv2D or pooling layer to show")
    print(f"activations of {source}:")
    paths = []
    for name, feature_map in maps.items():
        path = out / f"activations_{_slug(name)}.png"
        viz.plotting.plot_activations(feature_map, path, title=name)
        blank = int(np.sum(~feature_map.reshape(-1, feature_map.shape[-1]).any(axis=0)))
        print(f"  {name:<20} {str(feature_map.shape):<16} blank channels {blank:>3} of "
              f"{feature_map.shape[-1]:<4} -> {path}")
        paths.append(path)
    return paths


def view_filters(model, layer: str | None, count: int, steps: int, step_size: float,
                 out: Path) -> list[Path]:
    from minicnn import viz
    from minicnn.layers.conv import Conv2D

    if count <= 0:
        raise ValueError(f"--count must be positive, received {count}")
    names = ([layer] if layer is not None else
             [item.name for item in model.layers if isinstance(item, Conv2D)])
    if not names:
        raise ValueError(f"model {model.name!r} has no Conv2D layer; pass --layer NAME")
    paths = []
    for name in names:
        channels = int(model.get_layer(name).output_shape[-1])
        patterns, labels = [], []
        print(f"{name}: gradient ascent, {steps} steps of RMS {step_size}, from a grey noisy image")
        print(f"  {'filter':>6} {'mean activation at start':>25} {'after':>10} {'ratio':>9}")
        for index in range(min(count, channels)):
            ascent = viz.filter_ascent(model, name, index, steps=steps, step_size=step_size)
            start, final = ascent.start_activation, ascent.final_activation
            ratio = final / start if start > 0 else float("inf")
            note = ""
            if start == 0:
                note = "  (silent at the start: climbed its pre-activation first)"
            elif ascent.preactivation_steps:
                note = (f"  ({ascent.preactivation_steps} step(s) without a gradient through "
                        "its ReLU: climbed its pre-activation)")
            print(f"  {index:>6} {start:>25.4g} {final:>10.4g} {ratio:>9.3g}{note}")
            patterns.append(ascent.image)
            labels.append(str(index))
        path = out / f"filters_{_slug(name)}.png"
        viz.plotting.plot_filter_patterns(
            patterns, path, labels=labels,
            title=f"{name}: patterns that maximize each filter's mean activation")
        print(f"  -> {path}")
        paths.append(path)
    return paths


def view_grad_cam(model, image: np.ndarray, source: str, layer: str | None,
                  class_index: int | None, out: Path) -> Path:
    from minicnn import viz

    result = viz.grad_cam_details(model, image, layer, class_index)
    layer = layer or viz.last_conv_layer_name(model)
    predictions = result.predictions
    top = np.argsort(predictions)[::-1][:3]
    print(f"Grad-CAM of {source} at layer {layer!r}")
    print("  top predictions: " + ", ".join(f"class {k} ({predictions[k]:.4f})" for k in top))
    chosen = "the predicted class" if class_index is None else "asked for"
    print(f"  explaining class {result.class_index} ({chosen}), score = its logit")
    print("  heatmap at the layer's resolution:")
    for row in result.heatmap:
        print("    " + " ".join(f"{value:4.2f}" for value in row))
    path = out / f"gradcam_{_slug(layer)}_class{result.class_index}.png"
    viz.plotting.plot_grad_cam(
        image, result.heatmap, path,
        title=f"Grad-CAM, class {result.class_index} "
              f"(p={predictions[result.class_index]:.3f}), layer {layer}")
    print(f"  -> {path}")
    return path


def run(arguments: argparse.Namespace) -> int:
    """Load the model, pick the image, draw the view."""
    from minicnn.models import load_model

    model = load_model(arguments.model, compile=False)
    if model.input_shape is None or len(model.input_shape) != 4:
        raise ValueError(f"model {arguments.model!r} takes input {model.input_shape}, not "
                         "images (N, H, W, C): the views need a convnet")
    out = Path(arguments.out)
    if arguments.view == "filters":
        view_filters(model, arguments.layer, arguments.count, arguments.steps,
                     arguments.step_size, out)
        return 0
    image, source = choose_image(model, arguments.image, arguments.index, arguments.invert)
    if arguments.view == "activations":
        view_activations(model, image, source, arguments.layer, out)
    else:
        view_grad_cam(model, image, source, arguments.layer, arguments.class_index, out)
    return 0

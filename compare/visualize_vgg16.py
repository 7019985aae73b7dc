"""The three views of the book's section 5.4 with Keras on VGG16, and the same views from minicnn.

    python -m compare.visualize_vgg16 [--image PATH] [--weights imagenet|none|FILE.h5]
                                      [--out runs/vgg16_viz] [--no-minicnn]

1. Intermediate activations: the first channels of one convolution per block for the
   image (default: the photo of Grace Hopper that ships with matplotlib's sample data).
2. Filter patterns: gradient ascent in input space (40 normalized steps from a grey
   noisy image, as the book does) for the first filters of several convolutions, on
   the convolutional base at a small size so it runs on a CPU.
3. Grad-CAM: the top class's logit against ``block5_conv3``; with ImageNet weights the
   top-3 ImageNet classes are printed.

All three are computed by Keras (``tf.GradientTape``).  Then, unless ``--no-minicnn``,
the Keras model goes through the bridge (``minicnn.interop.keras.from_keras``) and
minicnn computes the activations and Grad-CAM on the same weights; the largest
differences are printed and written to OUT/summary.json.

VGG16's ImageNet weights come through Keras's own download (or ``--weights FILE``, a
Keras weights file of the full model).  When neither is reachable the script says so
and goes on with random weights (``weights=None``): the pictures then show the
pipeline, not what VGG16 learned, and the class numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from minicnn.interop.keras import import_keras

ACTIVATION_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
                     "block5_conv1")
PATTERN_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
GRAD_CAM_LAYER = "block5_conv3"


def default_image() -> str:
    """A photo that ships with matplotlib (its sample data): Grace Hopper, 512x600 RGB."""
    import matplotlib.cbook

    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def build_vgg16(weights: str, size: int):
    """(Keras VGG16 with its classifier, "imagenet" | "random" | the file used).

    ImageNet weights that cannot be had are reported on stderr, then random ones used.
    """
    keras = import_keras(require_tensorflow=True)
    shape = (size, size, 3)
    if weights.lower() == "none":
        return keras.applications.VGG16(weights=None, input_shape=shape), "random"
    if size != 224:
        print(f"note: pretrained weights need 224x224 inputs (asked {size}); using random "
              "weights", file=sys.stderr)
        return keras.applications.VGG16(weights=None, input_shape=shape), "random"
    try:
        model = keras.applications.VGG16(weights=weights, input_shape=shape)
        return model, ("imagenet" if weights == "imagenet" else weights)
    except Exception as error:  # Keras raises a bare Exception on a failed download
        print("\n" + "=" * 78, file=sys.stderr)
        print(f"VGG16 weights {weights!r} are NOT available here:\n  {error}\n"
              "Continuing with weights=None (random weights): the pictures show the\n"
              "pipeline only, not what VGG16 learned, and class numbers mean nothing.\n"
              "To use the real weights, download\n"
              "  https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
              "vgg16_weights_tf_dim_ordering_tf_kernels.h5\n"
              "on a machine that can, and pass --weights /path/to/that/file.h5",
              file=sys.stderr)
        print("=" * 78 + "\n", file=sys.stderr)
        return keras.applications.VGG16(weights=None, input_shape=shape), "random"


def load_picture(path: str, size: int) -> np.ndarray:
    """The image resized to size x size, RGB, float32 in 0..255 (as keras.utils.load_img)."""
    keras = import_keras(require_tensorflow=True)
    return np.asarray(keras.utils.img_to_array(keras.utils.load_img(path, target_size=(size, size))),
                      dtype=np.float32)


def keras_activations(model, x: np.ndarray, names) -> dict[str, np.ndarray]:
    keras = import_keras(require_tensorflow=True)
    extractor = keras.Model(model.inputs[0], [model.get_layer(name).output for name in names])
    return {name: np.asarray(value)[0] for name, value in zip(names, extractor(x, training=False))}


def keras_grad_cam(model, x: np.ndarray, layer_name: str, class_index: int | None):
    """Keras's Grad-CAM example: the class logit (pre-softmax) against the layer's output."""
    keras = import_keras(require_tensorflow=True)
    import tensorflow as tf

    head = model.layers[-1]
    grad_model = keras.Model(model.inputs[0], [model.get_layer(layer_name).output,
                                               model.layers[-2].output])
    with tf.GradientTape() as tape:
        feature_map, features = grad_model(x, training=False)
        logits = tf.matmul(features, head.kernel) + head.bias
        if class_index is None:
            class_index = int(tf.argmax(logits[0]))
        score = logits[:, class_index]
    grads = tape.gradient(score, feature_map)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(feature_map[0] @ pooled[..., tf.newaxis], -1)
    heatmap = tf.maximum(heatmap, 0)
    peak = float(tf.reduce_max(heatmap))
    heatmap = (heatmap / peak).numpy() if peak > 0 else np.zeros(heatmap.shape, np.float32)
    probabilities = tf.nn.softmax(logits[0]).numpy()
    return heatmap, class_index, probabilities


def keras_filter_patterns(weights_model, layer_names, count: int, steps: int, size: int,
                          seed: int = 0):
    """Gradient ascent on each filter's mean activation (the book's loop, in Keras).

    The base is rebuilt at ``size`` x ``size`` with the classifier's weights copied,
    as the book does with ``include_top=False``.  The start image is the book's grey
    noise, ``128 + 20 * uniform`` in 0..255, taken through VGG16's preprocessing; each
    step adds ``g / (rms(g) + 1e-5)`` (one grey level in RMS).

    Returns:
        ``(patterns, base, start)``: ``{layer: [image (size, size, 3), ...]}``, the base
        model and the start image (1, size, size, 3), for the comparison with minicnn.
    """
    keras = import_keras(require_tensorflow=True)
    import tensorflow as tf

    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    for layer in base.layers:
        if layer.weights:
            layer.set_weights(weights_model.get_layer(layer.name).get_weights())
    rng = np.random.default_rng(seed)
    start = keras.applications.vgg16.preprocess_input(
        128.0 + 20.0 * rng.random((1, size, size, 3)).astype(np.float32))
    patterns: dict[str, list[np.ndarray]] = {}
    for name in layer_names:
        extractor = keras.Model(base.inputs[0], base.get_layer(name).output)

        @tf.function
        def step(image, filter_index):
            with tf.GradientTape() as tape:
                tape.watch(image)
                loss = tf.reduce_mean(extractor(image, training=False)[..., filter_index])
            grads = tape.gradient(loss, image)
            grads = grads / (tf.sqrt(tf.reduce_mean(tf.square(grads))) + 1e-5)
            return image + grads, loss

        patterns[name] = []
        for filter_index in range(count):
            image = tf.constant(start)
            first = None
            for _ in range(steps):
                image, loss = step(image, tf.constant(filter_index))
                first = float(loss) if first is None else first
            final = float(tf.reduce_mean(extractor(image, training=False)[..., filter_index]))
            note = "  (silent on the start image: zero gradient, nothing to climb)" \
                if first == 0 and final == 0 else ""
            print(f"  {name} filter {filter_index}: mean activation {first:.4g} -> {final:.4g}"
                  + note)
            patterns[name].append(image.numpy()[0])
    return patterns, base, start


def top_classes(probabilities: np.ndarray, weights: str, top: int = 3) -> list[str]:
    """"index name (probability)" for the top classes; names only with ImageNet weights."""
    order = np.argsort(probabilities)[::-1][:top]
    names = {}
    if weights == "imagenet":
        try:
            keras = import_keras(require_tensorflow=True)
            decoded = keras.applications.vgg16.decode_predictions(probabilities[np.newaxis],
                                                                  top=top)[0]
            names = {int(np.flatnonzero(np.isclose(probabilities, p))[0]): label
                     for _, label, p in decoded}
        except Exception as error:  # the class index file is another download
            print(f"note: ImageNet class names unavailable ({error}); printing indices",
                  file=sys.stderr)
    return [f"{k} {names.get(int(k), '')} ({probabilities[k]:.4f})".replace("  ", " ")
            for k in order]


def minicnn_comparison(keras_model, x: np.ndarray, keras_maps, keras_heatmap, class_index):
    """The same activations and Grad-CAM from minicnn on the same weights (via the bridge)."""
    from minicnn import viz
    from minicnn.interop.keras import from_keras

    started = time.perf_counter()
    model = from_keras(keras_model)
    maps = viz.activations(model, x[0], list(keras_maps))
    result = viz.grad_cam_details(model, x[0], GRAD_CAM_LAYER, class_index)
    report = {"seconds": None, "activations": {}, "grad_cam": {}}
    for name, keras_map in keras_maps.items():
        difference = float(np.abs(maps[name] - keras_map).max())
        scale = float(np.abs(keras_map).max())
        report["activations"][name] = {"max_abs_diff": difference,
                                       "relative_to_max": difference / scale if scale else 0.0}
    report["grad_cam"] = {
        "class_index": result.class_index,
        "max_abs_diff": float(np.abs(result.heatmap - keras_heatmap).max()),
        "predictions_max_abs_diff": None,   # filled in by the caller
    }
    report["seconds"] = time.perf_counter() - started
    return report, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compare.visualize_vgg16",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=None, help="default: matplotlib's grace_hopper.jpg")
    parser.add_argument("--weights", default="imagenet",
                        help="imagenet (Keras's download), none, or a Keras .h5 file")
    parser.add_argument("--out", default="runs/vgg16_viz")
    parser.add_argument("--size", type=int, default=224,
                        help="input size of the full model (224 for pretrained weights)")
    parser.add_argument("--class", dest="class_index", type=int, default=None,
                        help="Grad-CAM class (default: the top one)")
    parser.add_argument("--pattern-size", type=int, default=64,
                        help="image size for the filter patterns (the book uses 150; smaller "
                             "runs faster on a CPU)")
    parser.add_argument("--pattern-count", type=int, default=8, help="filters per layer")
    parser.add_argument("--steps", type=int, default=40, help="gradient ascent steps")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random weights (when used) and of the noise")
    parser.add_argument("--no-minicnn", action="store_true",
                        help="skip the comparison with minicnn through the bridge")
    arguments = parser.parse_args(argv)

    from minicnn.viz import plotting
    keras = import_keras(require_tensorflow=True)
    keras.utils.set_random_seed(arguments.seed)   # random weights are repeatable
    out = Path(arguments.out)
    image_path = arguments.image or default_image()
    model, weights = build_vgg16(arguments.weights, arguments.size)
    print(f"VGG16 ({model.count_params():,} parameters), weights: {weights}; image: {image_path}")
    picture = load_picture(image_path, arguments.size)
    x = keras.applications.vgg16.preprocess_input(picture[np.newaxis].copy())
    summary: dict = {"weights": weights, "image": image_path, "size": arguments.size,
                     "files": []}

    print("\n1. Intermediate activations")
    keras_maps = keras_activations(model, x, ACTIVATION_LAYERS)
    for name, feature_map in keras_maps.items():
        path = out / f"keras_activations_{name}.png"
        plotting.plot_activations(feature_map, path, title=f"Keras VGG16 {name}",
                                  max_channels=32, cell_inches=0.7)
        print(f"  {name} {feature_map.shape} -> {path}")
        summary["files"].append(str(path))

    print("\n2. Filter patterns (gradient ascent, Keras)")
    patterns, base, start = keras_filter_patterns(model, PATTERN_LAYERS, arguments.pattern_count,
                                                  arguments.steps, arguments.pattern_size,
                                                  seed=arguments.seed)
    for name, images in patterns.items():
        path = out / f"keras_filters_{name}.png"
        plotting.plot_filter_patterns(
            [image[..., ::-1] for image in images],   # BGR (VGG16's input) -> RGB to show
            path, title=f"Keras VGG16 {name}",
            labels=[str(i) for i in range(len(images))])
        print(f"  -> {path}")
        summary["files"].append(str(path))

    print(f"\n3. Grad-CAM at {GRAD_CAM_LAYER}")
    heatmap, class_index, probabilities = keras_grad_cam(model, x, GRAD_CAM_LAYER,
                                                         arguments.class_index)
    top = top_classes(probabilities, weights)
    print("  top-3 classes: " + "; ".join(top)
          + ("" if weights == "imagenet" else "   (random weights: meaningless)"))
    path = out / "keras_gradcam.png"
    plotting.plot_grad_cam(picture / 255.0, heatmap, path,
                           title=f"Keras VGG16 Grad-CAM, class {class_index}, "
                                 f"{GRAD_CAM_LAYER} ({weights} weights)")
    print(f"  explaining class {class_index} -> {path}")
    summary.update({"top3": top, "grad_cam_class": class_index})
    summary["files"].append(str(path))

    if not arguments.no_minicnn:
        print("\n4. minicnn on the same weights (from_keras), same image")
        report, result = minicnn_comparison(model, x, keras_maps, heatmap, class_index)
        report["grad_cam"]["predictions_max_abs_diff"] = float(
            np.abs(result.predictions - probabilities).max())
        for name, row in report["activations"].items():
            print(f"  activations {name:<14} max abs diff {row['max_abs_diff']:.3g} "
                  f"({row['relative_to_max']:.2g} of the largest value)")
        print(f"  Grad-CAM heatmap        max abs diff {report['grad_cam']['max_abs_diff']:.3g}"
              f"  (class {result.class_index}, {report['seconds']:.1f} s)")
        print(f"  class probabilities     max abs diff "
              f"{report['grad_cam']['predictions_max_abs_diff']:.3g}")
        path = out / "minicnn_gradcam.png"
        plotting.plot_grad_cam(picture / 255.0, result.heatmap, path,
                               title=f"minicnn VGG16 Grad-CAM, class {result.class_index}, "
                                     f"{GRAD_CAM_LAYER} ({weights} weights)")
        # one filter pattern too: the first filter of the first layer, same start image
        from minicnn import viz
        from minicnn.interop.keras import from_keras

        name = PATTERN_LAYERS[0]
        ascent = viz.filter_ascent(from_keras(base), name, 0, steps=arguments.steps,
                                   start=start[0])
        report["filter_pattern"] = {
            "layer": name, "filter": 0,
            "max_abs_diff": float(np.abs(ascent.image - patterns[name][0]).max()),
            "image_max_abs": float(np.abs(patterns[name][0]).max())}
        print(f"  filter pattern {name}[0]  max abs diff "
              f"{report['filter_pattern']['max_abs_diff']:.3g} (image values up to "
              f"{report['filter_pattern']['image_max_abs']:.3g}); mean activation "
              f"{ascent.start_activation:.4g} -> {ascent.final_activation:.4g}")
        summary["minicnn"] = report
        summary["files"].append(str(path))

    out.mkdir(parents=True, exist_ok=True)
    from minicnn.files import atomic_write

    text = json.dumps(summary, indent=2).encode()
    atomic_write(out / "summary.json", lambda handle: handle.write(text))
    print(f"\nsummary -> {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

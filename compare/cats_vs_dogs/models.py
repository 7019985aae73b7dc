"""The models of the book's sections 5.2-5.3, built once in minicnn (and moved to Keras
with :func:`minicnn.interop.keras.to_keras`, so both engines start from the same
weights): the small convnet, the VGG16 convolutional base, the dense head on its
features, and the base with the head on top."""

from __future__ import annotations

import os
from pathlib import Path

from minicnn.experiments.small_data import CHAPTER_AUGMENTATION

# The book's ImageDataGenerator (section 5.2.5), fed to both engines by minicnn.
AUGMENTATION = dict(CHAPTER_AUGMENTATION)
SHEAR_NOTE = (
    "shear_range=0.2 is passed as the book's code passes it; minicnn's ImageDataGenerator "
    "reads it in degrees, as Keras 2 did from release 2.2 on (Keras 2.0, which the book "
    "used, read radians: a shear of about 11 degrees). One affine warp per image, as "
    "ImageDataGenerator did.")
VGG16_PREPROCESSING = ("minicnn.applications.vgg16.preprocess_input (RGB->BGR, ImageNet mean "
                       "subtracted), applied by the batch generator to both engines' inputs")
RESCALING = "rescale=1/255 in the batch generator (the book's ImageDataGenerator(rescale=1./255))"


def min_scratch_size() -> int:
    """Smallest square input the small convnet accepts: four (3x3 valid conv, 2x2 pool)."""
    size = 1
    for _ in range(4):
        size = 2 * size + 2  # invert: after conv + pool, s -> (s - 2) // 2
    return size


def small_convnet(image_size: int, dropout: bool):
    """The book's convnet for small data (sections 5.2.3 and 5.2.5): the registry's
    ``cats-dogs-convnet`` for ``image_size`` x ``image_size`` x 3 inputs in [0, 1]:
    Conv 32-64-128-128 (3x3, ReLU) each with a 2x2 max pool, Flatten, [Dropout 0.5,]
    Dense 512 ReLU, Dense 1 sigmoid. Weights from the engine's generator.

    Raises:
        ValueError: ``image_size`` below :func:`min_scratch_size`.
    """
    from minicnn.experiments.small_data import arm_model

    if image_size < min_scratch_size():
        raise ValueError(f"--image-size {image_size} is too small for the small convnet "
                         f"(four 3x3 convolutions and 2x2 pools need at least "
                         f"{min_scratch_size()})")
    return arm_model("folder", dropout, image_size)


def resolve_weights(weights: str) -> str | None:
    """``--weights`` as ``minicnn.applications.VGG16`` takes it: "imagenet", None or a path.

    Raises:
        ValueError: a path that is not a file.
    """
    if weights == "imagenet":
        return "imagenet"
    if weights.lower() == "none":
        return None
    if not Path(weights).is_file():
        raise ValueError(f"--weights {weights!r}: no such file; give a VGG16 weights file "
                         f"(.h5, e.g. vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5), "
                         f"'imagenet' or 'none'")
    return os.fspath(weights)


def vgg16_base(weights: str, image_size: int):
    """minicnn's ``VGG16(include_top=False)`` for (image_size, image_size, 3): random
    weights (``none``), a Keras weights file, or ImageNet's through Keras's download.

    Raises:
        RuntimeError: "imagenet" while offline; the message says how to pass a file.
    """
    from minicnn.applications import VGG16

    resolved = resolve_weights(weights)
    try:
        return VGG16(weights=resolved, include_top=False, input_shape=(image_size, image_size, 3))
    except RuntimeError as error:
        if resolved != "imagenet":
            raise
        raise RuntimeError(
            f"{error}. Here: --weights PATH with a copy of "
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 fetched elsewhere (or that "
            "file in ~/.keras/models/ and --weights imagenet), or --weights none to run the "
            "same pipeline with random weights (the accuracy then measures a random base)"
        ) from error


def _head_layers():
    from minicnn.layers import Dense, Dropout

    return [Dense(256, activation="relu"), Dropout(0.5), Dense(1, activation="sigmoid")]


def feature_classifier(feature_shape: tuple[int, ...]):
    """The book's classifier on VGG16 features (section 5.3.1): the (H, W, 512) features
    flattened (4 * 4 * 512 = 8,192 at 150x150), Dense 256 ReLU, Dropout 0.5, Dense 1."""
    from math import prod

    from minicnn.layers import Input
    from minicnn.models import Sequential

    return Sequential([Input((prod(feature_shape),)), *_head_layers()],
                      name="feature_classifier")


def base_with_head(conv_base):
    """The frozen conv base with Flatten and the head on top (section 5.3.1, "feature
    extraction with data augmentation"): ``conv_base.trainable = False`` freezes every
    layer of the base, so only the head learns.

    The base's layers are added one by one to a new Sequential (a flat model: Keras's
    twin is then a plain ``keras.Sequential``), sharing the base's layer objects.
    """
    from minicnn.layers import Flatten, Input
    from minicnn.models import Sequential

    for layer in conv_base.layers:
        layer.trainable = False
    return Sequential([Input(tuple(conv_base.input_shape[1:])), *conv_base.layers, Flatten(),
                       *_head_layers()], name="vgg16_base_with_head")


def unfreeze_block5(model) -> list[str]:
    """Make the layers named ``block5*`` trainable and the other base layers (``block1-4``)
    frozen, in a minicnn or a Keras model; returns the names of block5's layers with
    weights (``block5_conv1``-``block5_conv3``)."""
    unfrozen = []
    for layer in model.layers:
        if layer.name.startswith("block"):
            layer.trainable = layer.name.startswith("block5")
            if layer.trainable and layer.get_weights():
                unfrozen.append(layer.name)
    return unfrozen

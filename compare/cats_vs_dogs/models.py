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
    """The book's model for feature extraction with data augmentation (section 5.3.1),
    spelled as the book spells it::

        model = models.Sequential()
        model.add(conv_base)              # VGG16's convolutional base, used as a layer
        model.add(layers.Flatten())
        model.add(layers.Dense(256, activation="relu"))   # + Dropout 0.5, Dense 1 sigmoid
        conv_base.trainable = False       # freezes every layer of the base

    Only the head learns: 4 trainable weight arrays (two kernels, two biases).
    """
    from minicnn.layers import Flatten
    from minicnn.models import Sequential

    model = Sequential(name="vgg16_base_with_head")
    model.add(conv_base)
    model.add(Flatten())
    for layer in _head_layers():
        model.add(layer)
    conv_base.trainable = False
    return model


def conv_base_of(model):
    """The nested convolutional base of a :func:`base_with_head` model (minicnn's or its
    Keras twin): its first layer that holds layers."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            return layer
    raise ValueError(f"model {model.name!r} holds no nested convolutional base")


def unfreeze_block5(model) -> list[str]:
    """The book's fine-tuning switch (section 5.3.2), on a minicnn model or its Keras twin::

        conv_base.trainable = True
        set_trainable = False
        for layer in conv_base.layers:
            if layer.name == "block5_conv1":
                set_trainable = True
            layer.trainable = set_trainable

    Returns the names of the unfrozen layers with weights (``block5_conv1``-``3``).
    """
    conv_base = conv_base_of(model)
    conv_base.trainable = True
    set_trainable = False
    unfrozen = []
    for layer in conv_base.layers:
        if layer.name == "block5_conv1":
            set_trainable = True
        layer.trainable = set_trainable
        if set_trainable and layer.get_weights():
            unfrozen.append(layer.name)
    return unfrozen

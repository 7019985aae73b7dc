"""The Keras 3 models of the cats-vs-dogs steps: the small convnet, the seed's
augmentation as preprocessing layers, the VGG16 convolutional base and its heads."""

from __future__ import annotations

import os
from pathlib import Path

from minicnn.interop.keras import import_keras

# The seed's ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
# height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
# fill_mode="nearest"), layer by layer (see augmentation()).
AUGMENTATION = {
    "RandomFlip": "horizontal",
    "RandomRotation": "factor 40/360 (up to 40 degrees either way)",
    "RandomTranslation": "height 0.2, width 0.2",
    "RandomShear": "x_factor 0.2, y_factor 0 (horizontal shear, up to 0.2 of the width)",
    "RandomZoom": "height (-0.2, 0.2), width (-0.2, 0.2) drawn independently",
    "fill_mode": "nearest (every geometric layer)",
}
SHEAR_NOTE = (
    "shear_range=0.2 becomes keras.layers.RandomShear(x_factor=0.2, y_factor=0.0): a "
    "horizontal shear of up to 0.2 (x' = x + s*y), which is what the seed's Keras 2.0 "
    "meant (a shear angle of 0.2 radians, sin 0.2 = 0.199); later Keras 2 releases read "
    "shear_range in degrees (0.2 degrees, almost nothing). Keras 3 applies the five "
    "layers one after another (five resamplings), where ImageDataGenerator composed "
    "one affine warp.")
VGG16_PREPROCESSING = "keras.applications.vgg16.preprocess_input (RGB->BGR, ImageNet mean subtracted)"


def min_scratch_size() -> int:
    """Smallest square input the small convnet accepts: four (3x3 valid conv, 2x2 pool)."""
    size = 1
    for _ in range(4):
        size = 2 * size + 2  # invert: after conv + pool, s -> (s - 2) // 2
    return size


def augmentation(seed: int):
    """The seed's augmentation as a Keras 3 Sequential of preprocessing layers.

    Active only in training (Keras skips these layers at inference), as the generator
    was used only for the training data.
    """
    keras = import_keras(require_tensorflow=True)
    layers = keras.layers
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(40 / 360, fill_mode="nearest", seed=seed + 1),
        layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=seed + 2),
        layers.RandomShear(x_factor=0.2, y_factor=0.0, fill_mode="nearest", seed=seed + 3),
        layers.RandomZoom((-0.2, 0.2), (-0.2, 0.2), fill_mode="nearest", seed=seed + 4),
    ], name="augmentation")


def small_convnet(image_size: int, augment: bool, seed: int):
    """The seed's convnet for small data: Conv 32-64-128-128 (3x3, ReLU) each with a
    2x2 max pool, Flatten, [Dropout 0.5,] Dense 512 ReLU, Dense 1 sigmoid; inputs are
    0-255 pixels, rescaled by 1/255 inside the model (the seed's ``rescale=1./255``)."""
    keras = import_keras(require_tensorflow=True)
    layers = keras.layers
    if image_size < min_scratch_size():
        raise ValueError(f"--image-size {image_size} is too small for the small convnet "
                         f"(four 3x3 convolutions and 2x2 pools need at least "
                         f"{min_scratch_size()})")
    inputs = keras.Input((image_size, image_size, 3))
    x = augmentation(seed)(inputs) if augment else inputs
    x = layers.Rescaling(1.0 / 255)(x)
    for filters in (32, 64, 128, 128):
        x = layers.Conv2D(filters, (3, 3), activation="relu")(x)
        x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Flatten()(x)
    if augment:
        x = layers.Dropout(0.5, seed=seed)(x)
    x = layers.Dense(512, activation="relu")(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="small_convnet_augmented" if augment
                       else "small_convnet")


def resolve_weights(weights: str):
    """``--weights`` as ``keras.applications.VGG16`` takes it: "imagenet", None or a path."""
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
    """``keras.applications.VGG16(include_top=False)`` for (image_size, image_size, 3).

    Raises:
        RuntimeError: "imagenet" and Keras's download fails (offline); the message
            names ``--weights PATH`` and ``--weights none``.
    """
    keras = import_keras(require_tensorflow=True)
    resolved = resolve_weights(weights)
    try:
        return keras.applications.VGG16(weights=resolved, include_top=False,
                                        input_shape=(image_size, image_size, 3))
    except ValueError:
        raise  # a bad argument: Keras's own message says which
    except Exception as error:  # noqa: BLE001 - get_file raises a bare Exception offline
        if resolved != "imagenet":
            raise
        raise RuntimeError(
            "could not get the VGG16 ImageNet weights through Keras's download "
            f"({type(error).__name__}: {error}). This machine may be offline. Alternatives: "
            "--weights PATH with a copy of "
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 fetched elsewhere (or put "
            "that file in ~/.keras/models/ and keep --weights imagenet), or --weights none "
            "to run the same pipeline with random weights (the accuracy then means "
            "nothing)") from error


def dense_head(inputs, seed: int):
    """The seed's classifier on VGG16 features: Dense 256 ReLU, Dropout 0.5, Dense 1."""
    keras = import_keras(require_tensorflow=True)
    layers = keras.layers
    x = layers.Dense(256, activation="relu")(inputs)
    x = layers.Dropout(0.5, seed=seed)(x)
    return layers.Dense(1, activation="sigmoid")(x)


def feature_classifier(feature_shape: tuple[int, ...], seed: int):
    """The head alone, on flattened features (4 * 4 * 512 = 8,192 at 150x150)."""
    keras = import_keras(require_tensorflow=True)
    size = 1
    for dimension in feature_shape:
        size *= int(dimension)
    inputs = keras.Input((size,))
    return keras.Model(inputs, dense_head(inputs, seed), name="feature_classifier")


def base_with_head(conv_base, image_size: int, seed: int):
    """Augmentation, VGG16 preprocessing, the frozen conv base, Flatten and the head,
    trained end to end (only the head learns while ``conv_base.trainable`` is False)."""
    keras = import_keras(require_tensorflow=True)
    conv_base.trainable = False
    inputs = keras.Input((image_size, image_size, 3))
    x = augmentation(seed)(inputs)
    x = keras.applications.vgg16.preprocess_input(x)
    x = conv_base(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, dense_head(x, seed), name="vgg16_base_with_head")


def unfreeze_block5(conv_base) -> list[str]:
    """Make block5's layers trainable, keep blocks 1-4 frozen; returns their names."""
    conv_base.trainable = True
    unfrozen = []
    for layer in conv_base.layers:
        layer.trainable = layer.name.startswith("block5")
        if layer.trainable and layer.weights:
            unfrozen.append(layer.name)
    return unfrozen

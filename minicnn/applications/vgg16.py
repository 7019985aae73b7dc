"""VGG16 (Simonyan & Zisserman, 2014) as Keras builds it: same layers, names, shapes.

Five blocks of 3x3 "same" convolutions with ReLU (64, 128, 256, 512, 512 filters;
two, two, three, three, three convolutions), each block ending in a 2x2 max pool of
stride 2; optionally the classifier on top: Flatten, fc1 and fc2 (4096 ReLU units)
and predictions (1000 softmax units).  13 convolutions hold 14,714,688 parameters;
the top adds 123,642,856 (138,357,544 in all for 224x224 inputs).

    conv_base = VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
    conv_base = VGG16(weights="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                      include_top=False, input_shape=(150, 150, 3))
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from minicnn.models import Functional

# (filters, number of convolutions) of the five blocks.
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
DEFAULT_SIZE = 224
MIN_SIZE = 32
# The ImageNet mean pixel in BGR order (Keras's "caffe" preprocessing).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
               "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_URL_NO_TOP = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                      "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")


def _input_shape(input_shape, include_top: bool, weights) -> tuple[int, int, int]:
    """Validate ``input_shape`` as ``keras.applications.VGG16`` does.

    Unlike Keras, a missing ``input_shape`` without the top gives (224, 224, 3), not
    (None, None, 3): minicnn layers are built for fixed sizes.
    """
    default = (DEFAULT_SIZE, DEFAULT_SIZE, 3)
    if input_shape is None:
        return default
    try:
        input_shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"`input_shape` must be a tuple of three integers. Received: "
            f"input_shape={input_shape!r}") from None
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be a tuple of three integers. Received: "
                         f"input_shape={input_shape}")
    if weights == "imagenet" and include_top and input_shape != default:
        raise ValueError(
            f"When setting `include_top=True` and loading `imagenet` weights, `input_shape` "
            f"should be {default}.  Received: input_shape={input_shape}")
    if weights == "imagenet" and input_shape[-1] != 3:
        raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
    if input_shape[0] < MIN_SIZE or input_shape[1] < MIN_SIZE:
        raise ValueError(f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}; Received: "
                         f"input_shape={input_shape}")
    return input_shape


def _imagenet_model(include_top: bool, input_shape: tuple[int, int, int], classes: int,
                    classifier_activation, name: str) -> Functional:
    """The ImageNet weights through Keras's own download, then ``from_keras``."""
    from minicnn.interop.keras import from_keras

    url = WEIGHTS_URL if include_top else WEIGHTS_URL_NO_TOP
    how_to = (f"Download {url} on a machine that can, then pass its path: "
              f"VGG16(weights='/path/to/{url.rsplit('/', 1)[1]}', include_top={include_top}, "
              f"input_shape={input_shape}), or copy it to ~/.keras/models/ where Keras "
              "looks first; or use weights=None for random weights")
    try:
        import keras
    except ImportError as error:
        raise RuntimeError(f"weights='imagenet' goes through Keras, which is not installed "
                           f"({error}). {how_to}") from error
    try:
        keras_model = keras.applications.VGG16(
            include_top=include_top, weights="imagenet", input_shape=input_shape,
            classes=classes, classifier_activation=classifier_activation)
    except ValueError:
        raise  # a bad argument: Keras's own message says which
    except Exception as error:  # Keras raises a bare Exception on a failed download
        raise RuntimeError(
            f"could not get the VGG16 ImageNet weights through Keras's download (offline? "
            f"{error}). {how_to}") from error
    chain = from_keras(keras_model, name=name)
    # The same layers (weights and all) in a Functional, as the weights=None path builds.
    model = Functional(name=name)
    model.add(Input(input_shape))
    for layer in chain.layers:
        model.add(layer)
    return model


def VGG16(include_top: bool = True, weights: str | os.PathLike | None = "imagenet",  # noqa: N802
          input_tensor=None, input_shape=None, pooling=None, classes: int = 1000,
          classifier_activation: str | None = "softmax", name: str = "vgg16") -> Functional:
    """The VGG16 network with Keras's arguments, layer names and parameter counts.

    Args:
        include_top: add flatten, fc1, fc2 and predictions after block5_pool.
        weights: None (random, Glorot-uniform kernels and zero biases as Keras), the
            path of a Keras weights file (``.h5`` legacy or ``.weights.h5``; read with
            h5py, no TensorFlow needed), or "imagenet" (Keras downloads the file and
            :func:`minicnn.interop.keras.from_keras` copies the weights).
        input_tensor: not supported (Keras tensors have no meaning here); must be None.
        input_shape: (H, W, 3), at least 32x32; with the top and ImageNet weights it must
            be (224, 224, 3).  None means (224, 224, 3).
        pooling: only None: minicnn has no global pooling layer.
        classes: units of the predictions layer (1000 with ImageNet weights).
        classifier_activation: activation of predictions ("softmax" or None with
            pretrained weights).
        name: the model's name.
    Returns:
        A built ``Functional`` (a ``Sequential`` that Keras calls functional):
        input (N, H, W, 3) -> block5_pool (N, H/32, W/32, 512)
        (each pool floors: 150 -> 75 -> 37 -> 18 -> 9 -> 4), or (N, classes) with the top.
    Raises:
        ValueError: bad arguments (messages as Keras's), or a weights file that does not fit.
        RuntimeError: "imagenet" weights that cannot be downloaded (says how to pass a file).
    """
    if not (weights in ("imagenet", None) or os.path.isfile(os.fspath(weights))):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to the weights file to be "
            f"loaded.  Received: weights={weights}")
    if input_tensor is not None:
        raise ValueError("minicnn's VGG16 does not take input_tensor; pass input_shape")
    if pooling is not None:
        raise ValueError(f"pooling={pooling!r} is not supported: minicnn has no global "
                         "pooling layer; use pooling=None (and Flatten) instead")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("If using `weights='imagenet'` with `include_top=True`, `classes` "
                         f"should be 1000.  Received classes={classes}")
    if weights is not None and include_top and classifier_activation not in ("softmax", None):
        raise ValueError(
            "Only `None` and `softmax` activations are allowed for the "
            "`classifier_activation` argument when using pretrained weights, with "
            f"`include_top=True`; Received: classifier_activation={classifier_activation}")
    shape = _input_shape(input_shape, include_top, weights)
    if weights == "imagenet":
        return _imagenet_model(include_top, shape, classes, classifier_activation, name)

    # Keras builds VGG16 as a functional model: a Functional prints and saves as one.
    model = Functional(name=name)
    model.add(Input(shape))
    for block, (filters, convolutions) in enumerate(BLOCKS, start=1):
        for index in range(1, convolutions + 1):
            model.add(Conv2D(filters, (3, 3), activation="relu", padding="same",
                             name=f"block{block}_conv{index}"))
        model.add(MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool"))
    if include_top:
        model.add(Flatten(name="flatten"))
        model.add(Dense(4096, activation="relu", name="fc1"))
        model.add(Dense(4096, activation="relu", name="fc2"))
        model.add(Dense(classes, activation=classifier_activation, name="predictions"))
    if weights is not None:
        from minicnn.interop.keras import load_weights

        load_weights(model, weights)
    return model


def preprocess_input(x) -> np.ndarray:
    """Keras's VGG16 preprocessing ("caffe" mode): RGB -> BGR, then subtract the ImageNet
    mean pixel per channel; no scaling.  Works on (H, W, 3) or (N, H, W, 3) arrays of
    0-255 values and returns a new float32 array (Keras modifies float input in place)."""
    x = np.asarray(x)
    if x.shape[-1] != 3:
        raise ValueError(f"preprocess_input expects RGB images with 3 channels last, "
                         f"received shape {x.shape}")
    x = np.array(x[..., ::-1], dtype=np.float32)
    x -= np.asarray(IMAGENET_BGR_MEAN, dtype=np.float32)
    return x

"""The one registry of named models: every name the command line, ``minicnn explain``,
``compare/`` and the benchmarks know, and how each is built.

=====================  ===================================================================
``mnist-convnet``      the chapter's MNIST convnet (section 5.1): 93,322 parameters
``mnist-dense``        the dense network it is measured against: 784 -> 512 -> 10
``no-max-pool``        the convolutional base without downsampling (section 5.1.2): 55,744
``vgg16-base``         VGG16's convolutional base for 150x150x3 images, random weights
                       (section 5.3.1): 14,714,688 parameters
``cats-dogs-convnet``  the small convnet trained from scratch on cats vs dogs
                       (section 5.2.3, with the Dropout of 5.2.5): 3,453,121 parameters
=====================  ===================================================================

Keras builds the same models under the same names, independently of minicnn, in
:func:`minicnn.interop.keras.keras_reference_model`.

``minicnn train mnist --model`` names the MNIST classifiers by shorter names
(:data:`MNIST_CLASSIFIERS`): there ``no-max-pool`` ends with Flatten and a Dense 10
softmax head, so that it can be trained.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from minicnn.applications.mnist_models import mnist_convnet, mnist_dense, mnist_no_max_pool
from minicnn.applications.vgg16 import VGG16
from minicnn.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from minicnn.models import Sequential

__all__ = ["MNIST_CLASSIFIERS", "MODEL_NAMES", "build_mnist_classifier", "build_model",
           "cats_dogs_convnet", "resolve_model"]

CATS_DOGS_INPUT = (150, 150, 3)


def cats_dogs_convnet() -> Sequential:
    """The chapter's small convnet for 150x150 RGB images of cats and dogs.

    Four blocks of Conv2D 3x3 (32, 64, 128, 128 filters, ReLU) each followed by a 2x2
    max pool: 150 -> 148 -> 74 -> 72 -> 36 -> 34 -> 17 -> 15 -> 7, so Flatten gives
    7 * 7 * 128 = 6,272 values; then Dropout(0.5), Dense 512 ReLU and one sigmoid unit.
    """
    blocks = []
    for filters in (32, 64, 128, 128):
        blocks += [Conv2D(filters, (3, 3), activation="relu"), MaxPooling2D((2, 2))]
    return Sequential([
        Input(CATS_DOGS_INPUT),
        *blocks,
        Flatten(),
        Dropout(0.5),
        Dense(512, activation="relu"),
        Dense(1, activation="sigmoid"),
    ])


_BUILDERS: dict[str, Callable[[], Sequential]] = {
    "mnist-convnet": mnist_convnet,
    "mnist-dense": mnist_dense,
    "no-max-pool": lambda: mnist_no_max_pool(with_head=False),
    "vgg16-base": lambda: VGG16(weights=None, include_top=False, input_shape=CATS_DOGS_INPUT),
    "cats-dogs-convnet": cats_dogs_convnet,
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)

# ``minicnn train mnist --model NAME``: the MNIST models with a softmax head.
MNIST_CLASSIFIERS: dict[str, Callable[[], Sequential]] = {
    "convnet": mnist_convnet,
    "dense": mnist_dense,
    "no-max-pool": lambda: mnist_no_max_pool(with_head=True),
}


def build_model(name: str) -> Sequential:
    """A new, built model (fresh random weights) called ``name`` in :data:`MODEL_NAMES`.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of "
                         f"{', '.join(MODEL_NAMES)}") from None
    return builder()


def build_mnist_classifier(name: str) -> Sequential:
    """The MNIST classifier ``minicnn train mnist --model NAME`` trains.

    Raises:
        ValueError: an unknown name.
    """
    if name not in MNIST_CLASSIFIERS:
        raise ValueError(f"unknown MNIST model {name!r}; expected one of "
                         f"{sorted(MNIST_CLASSIFIERS)}")
    return MNIST_CLASSIFIERS[name]()


def resolve_model(name_or_path: str | os.PathLike) -> Sequential:
    """A model by registry name (:data:`MODEL_NAMES`) or read from a ``.npz`` model file.

    Raises:
        ValueError: neither a known name nor a path ending in ``.npz``.
    """
    text = os.fspath(name_or_path)
    if text in _BUILDERS:
        return build_model(text)
    if text.endswith(".npz"):
        from minicnn.models import load_model

        return load_model(text, compile=False)
    raise ValueError(f"{text!r} is not a model name ({', '.join(MODEL_NAMES)}) or a model "
                     "file ending in .npz")

"""Ready-made architectures: the chapter's MNIST models, its small cats-vs-dogs convnet
and VGG16, each also known by name in :mod:`minicnn.applications.registry`."""

from minicnn.applications.mnist_models import mnist_convnet, mnist_dense, mnist_no_max_pool
from minicnn.applications.registry import (MNIST_CLASSIFIERS, MODEL_NAMES,
                                           build_mnist_classifier, build_model,
                                           cats_dogs_convnet, resolve_model)
from minicnn.applications.vgg16 import VGG16

__all__ = ["MNIST_CLASSIFIERS", "MODEL_NAMES", "VGG16", "build_mnist_classifier", "build_model",
           "cats_dogs_convnet", "mnist_convnet", "mnist_dense", "mnist_no_max_pool",
           "resolve_model"]

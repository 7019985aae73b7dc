"""Ready-made architectures: the seed's MNIST models and VGG16."""

from minicnn.applications.mnist_models import (MNIST_MODELS, mnist_convnet, mnist_dense,
                                               mnist_no_max_pool)
from minicnn.applications.vgg16 import VGG16

__all__ = ["MNIST_MODELS", "mnist_convnet", "mnist_dense", "mnist_no_max_pool", "VGG16"]

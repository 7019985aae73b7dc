"""Ready-made architectures: the seed's MNIST models (and VGG16, see vgg16.py)."""

from minicnn.applications.mnist_models import (MNIST_MODELS, mnist_convnet, mnist_dense,
                                               mnist_no_max_pool)

__all__ = ["MNIST_MODELS", "mnist_convnet", "mnist_dense", "mnist_no_max_pool"]

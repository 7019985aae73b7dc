"""Keras-style layers: ``from minicnn import layers; layers.Conv2D(32, (3, 3))``."""

from minicnn.layers.base import Layer
from minicnn.layers.conv import Conv2D
from minicnn.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer
from minicnn.layers.pooling import AveragePooling2D, MaxPooling2D

# Keras's aliases.
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
Convolution2D = Conv2D

LAYER_CLASSES = {cls.__name__: cls for cls in (
    Conv2D, MaxPooling2D, AveragePooling2D, Dense, Flatten, Dropout, Activation)}

__all__ = ["Layer", "Input", "InputLayer", "Conv2D", "Convolution2D", "MaxPooling2D",
           "MaxPool2D", "AveragePooling2D", "AvgPool2D", "Dense", "Flatten", "Dropout",
           "Activation", "LAYER_CLASSES"]

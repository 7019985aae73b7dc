"""Bridges to other frameworks.  ``minicnn.interop.keras`` moves models and weights
to and from Keras 3; it imports Keras only when one of its functions is called, so
``import minicnn`` never loads TensorFlow."""

from minicnn.interop import keras

__all__ = ["keras"]

"""Data sets in the layouts Keras uses (``from minicnn.datasets import mnist``)."""

from minicnn.datasets import mnist

__all__ = ["mnist"]

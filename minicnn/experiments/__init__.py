"""Studies that train several models under the same budget and compare them.

``downsampling``: the book's question "why downsample, and why max pooling rather than
strided convolutions or average pooling?" (``minicnn experiment downsampling``).

``transfer``: pretrain the MNIST convnet on digits 0-4, then learn 5-9 from a few labeled
images from scratch, by feature extraction and by fine-tuning
(``minicnn experiment transfer``).
"""

__all__ = ["downsampling", "transfer"]

"""Studies that train several models under the same budget and compare them.

``downsampling``: the book's question "why downsample, and why max pooling rather than
strided convolutions or average pooling?" (``minicnn experiment downsampling``).

``transfer``: pretrain the MNIST convnet on digits 0-4, then learn 5-9 from a few labeled
images from scratch, by feature extraction and by fine-tuning
(``minicnn experiment transfer``).

``invariance``: the chapter's claim that convnets learn translation-invariant patterns,
measured: the dense network and the convnet on shifted test digits, and a convnet
trained on one half of a wider canvas tested on the other (``minicnn experiment
invariance``).

``small_data``: section 5.2's lesson in the engine: the convnet on 2,000 digits, plain,
with dropout, with augmentation and with both (``minicnn experiment small-data``).

``train_mnist``: the main job, ``minicnn train mnist``: train one of the MNIST models,
evaluate it and save the model, the metrics and the curves.
"""

__all__ = ["downsampling", "invariance", "small_data", "train_mnist", "transfer"]

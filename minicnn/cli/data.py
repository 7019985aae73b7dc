"""``minicnn data mnist``: fetch and verify a data set, print where the file is; with
``--export DIR``, also write real digits as an image folder in the Kaggle layout
(see :mod:`minicnn.datasets.export`)."""

from __future__ import annotations

import argparse

# Options that mean something only with --export: {option: attribute}.
_EXPORT_OPTIONS = {"--classes": "classes", "--names": "names", "--train": "train",
                   "--validation": "validation", "--test": "test", "--size": "size"}


def register(commands) -> None:
    """Add ``data`` to the subparsers object ``commands``."""
    parser = commands.add_parser(
        "data", help="fetch and verify a dataset, print its path; --export DIR writes "
                     "MNIST digits as an image folder (train/validation/test, one folder "
                     "per class)")
    parser.add_argument("dataset", choices=["mnist"], help="the dataset")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="write digits as PNG files in DIR/train|validation|test/CLASS/, "
                             "the layout of 'python -m compare.cats_vs_dogs split' (the "
                             "book's section 5.2.2; default: no export, only fetch and "
                             "verify)")
    parser.add_argument("--classes", type=int, nargs="+", default=None, metavar="DIGIT",
                        help="--export: the digits, one class folder each (default 3 5)")
    parser.add_argument("--names", nargs="+", default=None, metavar="NAME",
                        help="--export: class folder names (default digit3 digit5; e.g. "
                             "'cats dogs' for the Kaggle names; Keras labels classes by "
                             "their sorted names)")
    parser.add_argument("--train", type=int, default=None,
                        help="--export: training images per class, from MNIST's training "
                             "set (default 1000)")
    parser.add_argument("--validation", type=int, default=None,
                        help="--export: validation images per class, the next ones of "
                             "MNIST's training set (default 500)")
    parser.add_argument("--test", type=int, default=None,
                        help="--export: test images per class, from MNIST's test set "
                             "(default 500)")
    parser.add_argument("--size", type=int, default=None,
                        help="--export: resize to SIZE x SIZE RGB (e.g. 150 for the "
                             "chapter's convnet and VGG16); default the 28x28 grayscale "
                             "digit as it is")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Print the path of the verified ``mnist.npz`` (fetched first if needed); with
    ``--export``, then write the image folder."""
    if arguments.export is None:
        for option, attribute in _EXPORT_OPTIONS.items():
            if getattr(arguments, attribute) is not None:
                raise ValueError(f"{option} is an option of 'data mnist --export DIR'")
    from minicnn.datasets import mnist

    print(mnist.fetch())
    if arguments.export is None:
        return 0
    from minicnn.datasets.export import export_mnist

    export_mnist(arguments.export,
                 classes=(3, 5) if arguments.classes is None else arguments.classes,
                 names=arguments.names,
                 train=1000 if arguments.train is None else arguments.train,
                 validation=500 if arguments.validation is None else arguments.validation,
                 test=500 if arguments.test is None else arguments.test,
                 size=arguments.size)
    return 0

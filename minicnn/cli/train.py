"""``minicnn train mnist``: the chapter's MNIST recipe end to end (see
:mod:`minicnn.experiments.train_mnist`)."""

from __future__ import annotations

import argparse

from minicnn.applications.registry import MNIST_CLASSIFIERS

BACKENDS = ("numba", "numpy", "reference")


def register(commands) -> None:
    """Add ``train`` to the subparsers object ``commands``."""
    parser = commands.add_parser("train", help="train a model on a dataset")
    parser.add_argument("dataset", choices=["mnist"])
    parser.add_argument("--model", choices=sorted(MNIST_CLASSIFIERS), default="convnet")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 64 for convnets, 128 for the dense model (the book's)")
    parser.add_argument("--optimizer", default="rmsprop")
    parser.add_argument("--backend", choices=list(BACKENDS), default=None)
    parser.add_argument("--out", default="runs/mnist")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    parser.add_argument("--validation-split", type=float, default=0.0,
                        help="hold out this fraction of the training images for validation "
                             "curves (default 0: the book trains on all and tests after)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.npz (written after every epoch) "
                             "with the same options; without it a fresh run removes it")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                        help="also write OUT/checkpoint.npz every N batches")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Train, evaluate and save one MNIST model."""
    from minicnn.experiments import train_mnist

    train_mnist.train_mnist(
        model_name=arguments.model, epochs=arguments.epochs, batch_size=arguments.batch_size,
        optimizer=arguments.optimizer, backend=arguments.backend, out=arguments.out,
        seed=arguments.seed, verbose=arguments.verbose,
        validation_split=arguments.validation_split, resume=arguments.resume,
        checkpoint_every=arguments.checkpoint_every)
    return 0

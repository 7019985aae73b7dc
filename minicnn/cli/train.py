"""``minicnn train mnist``: the MNIST recipe of the book's section 5.1 end to end (see
:mod:`minicnn.experiments.train_mnist`); the numba kernels are compiled first, with a line
saying so on a fresh machine (:mod:`minicnn.cli.warmup`)."""

from __future__ import annotations

import argparse

from minicnn.applications.registry import MNIST_CLASSIFIERS

BACKENDS = ("numba", "numpy", "reference")


def register(commands) -> None:
    """Add ``train`` to the subparsers object ``commands``."""
    parser = commands.add_parser(
        "train", help="train a model on a dataset (MNIST: the book's section 5.1)",
        description="Train, test and save an MNIST classifier: writes OUT/model.npz, "
                    "OUT/metrics.json, OUT/curves.png and OUT/checkpoint.npz.")
    parser.add_argument("dataset", choices=["mnist"], help="the dataset")
    parser.add_argument("--model", choices=sorted(MNIST_CLASSIFIERS), default="convnet",
                        help="convnet: the book's convnet (section 5.1); dense: the densely "
                             "connected network it is compared with; no-max-pool: the "
                             "convnet without pooling")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default: 64 for the convnets, 128 for the "
                             "dense model, as in the book)")
    parser.add_argument("--optimizer", default="rmsprop",
                        help="an optimizer name: rmsprop, sgd or adam")
    parser.add_argument("--backend", choices=list(BACKENDS), default=None,
                        help="kernels to run (default: $MINICNN_BACKEND, else numba when "
                             "it is installed)")
    parser.add_argument("--out", default="runs/mnist", help="folder for the files written")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed of the weights and the batch order (default: a "
                             "different run each time)")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                        help="0 silent, 1 a progress bar per epoch, 2 one line per epoch")
    parser.add_argument("--validation-split", type=float, default=0.0,
                        help="hold out this fraction of the training images for validation "
                             "curves (0: the book trains on all and tests after)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.npz (written after every epoch) "
                             "with the same options; without it a fresh run removes it")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                        help="also write OUT/checkpoint.npz every N batches (default: after "
                             "every epoch only)")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Train, evaluate and save one MNIST model (the numba kernels compiled first)."""
    from minicnn.backend import using_backend
    from minicnn.cli.warmup import warm_up_mnist
    from minicnn.experiments import train_mnist

    batch_size = (train_mnist.default_batch_size(arguments.model)
                  if arguments.batch_size is None else arguments.batch_size)
    if batch_size >= 1:  # a bad value is left to train_mnist's own error
        with using_backend(arguments.backend):
            warm_up_mnist(arguments.model, batch_size, arguments.optimizer,
                          verbose=arguments.verbose)
    train_mnist.train_mnist(
        model_name=arguments.model, epochs=arguments.epochs, batch_size=arguments.batch_size,
        optimizer=arguments.optimizer, backend=arguments.backend, out=arguments.out,
        seed=arguments.seed, verbose=arguments.verbose,
        validation_split=arguments.validation_split, resume=arguments.resume,
        checkpoint_every=arguments.checkpoint_every)
    return 0

"""``minicnn data mnist``: fetch and verify a data set, print where the file is."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    """Add ``data`` to the subparsers object ``commands``."""
    parser = commands.add_parser("data", help="fetch and verify a dataset, print its path")
    parser.add_argument("dataset", choices=["mnist"])
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Print the path of the verified ``mnist.npz`` (fetched first if needed)."""
    from minicnn.datasets import mnist

    print(mnist.fetch())
    return 0

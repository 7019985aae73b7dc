"""The ``minicnn`` command: ``minicnn --help`` lists everything.

One module per command group (``summary``, ``train``, ``experiment``, ``bench``,
``data``, ``viz``, ``explain``); each has ``register(commands)``, which adds its
subparser to the argparse subparsers object ``commands`` and sets
``run=<function(arguments) -> exit status>`` as its default.  A new command is a new
module here plus one line in :data:`GROUPS`.

Errors a user can cause (bad options, missing files, bad data) become one line on
stderr and exit status 2; only genuine bugs show a traceback.
"""

from __future__ import annotations

import argparse
import sys

from minicnn.cli import bench, data, experiment, explain, summary, train, viz

# In the order ``minicnn --help`` lists them.
GROUPS = (summary, train, experiment, bench, data, viz, explain)


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="minicnn", description="A convnet engine in NumPy and Numba, checked against Keras.")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit status."""
    arguments = make_parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except (ValueError, TypeError, OSError, RuntimeError, FloatingPointError) as error:
        # FloatingPointError: NonFiniteLossError, "training stopped at epoch E, batch B".
        print(f"minicnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minicnn: interrupted", file=sys.stderr)
        return 130

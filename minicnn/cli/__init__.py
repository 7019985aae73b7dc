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

DESCRIPTION = (
    "A convnet engine in NumPy and Numba, checked against Keras. It follows chapter 5, "
    "'Deep learning for computer vision', of Deep Learning with Python (François Chollet, "
    "first edition): the MNIST convnet (5.1), small data (5.2), a pretrained VGG16 (5.3) "
    "and looking inside a convnet (5.4).")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless its text already says it, or
    there is nothing to say: a flag (off unless given) or no default (``None``, whose
    meaning the help text explains)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or "default" in text
                or any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS))
                or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows defaults; subcommands inherit it
    (``add_subparsers`` makes its parsers of the parent's class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command group registered."""
    from minicnn import __version__

    parser = Parser(prog="minicnn", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands (minicnn COMMAND --help for each)")
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

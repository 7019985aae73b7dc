"""``minicnn explain TARGET``: the arithmetic of a model layer by layer, or ``conv``:
one tiny convolution step by step (see :mod:`minicnn.explain`)."""

from __future__ import annotations

import argparse

from minicnn.applications.registry import MODEL_NAMES


def register(commands) -> None:
    """Add ``explain`` to the subparsers object ``commands``."""
    parser = commands.add_parser(
        "explain", help="the arithmetic of a model layer by layer, or 'conv': one tiny "
                        "convolution step by step")
    parser.add_argument("target", help="'conv', a model name (" + ", ".join(MODEL_NAMES)
                        + ") or a model file (.npz)")
    parser.add_argument("--batch", type=int, default=1,
                        help="model: multiply-adds and patch matrices for this batch size")
    parser.add_argument("--size", type=int, default=5, help="conv: input height = width (5)")
    parser.add_argument("--kernel-size", type=int, default=3, help="conv: kernel size (3)")
    parser.add_argument("--stride", type=int, default=1, help="conv: stride (1)")
    parser.add_argument("--padding", choices=["valid", "same"], default="valid")
    parser.add_argument("--channels", type=int, default=1, help="conv: input channels (1-3)")
    parser.add_argument("--seed", type=int, default=0, help="conv: seed of the small integers")
    parser.add_argument("--all", action="store_true", help="conv: show every position")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Print the explanation of ``arguments.target``."""
    from minicnn import explain
    from minicnn.applications.registry import resolve_model

    if arguments.target == "conv":
        print(explain.explain_conv(size=arguments.size, kernel_size=arguments.kernel_size,
                                   stride=arguments.stride, padding=arguments.padding,
                                   channels=arguments.channels, seed=arguments.seed,
                                   show_all=arguments.all))
        return 0
    if arguments.target not in MODEL_NAMES and not arguments.target.endswith(".npz"):
        raise ValueError(f"explain: {arguments.target!r} is not 'conv', a model name "
                         f"({', '.join(MODEL_NAMES)}) or a model file ending in .npz")
    print(explain.explain_model(resolve_model(arguments.target), batch=arguments.batch,
                                label=arguments.target))
    return 0

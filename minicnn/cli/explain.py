"""``minicnn explain TARGET``: the arithmetic of a model layer by layer, or a walk-through
worked by hand: ``conv`` (one tiny convolution; ``--backward`` its gradients), ``pool``
(max or average pooling, forward and backward), ``step`` (one SGD step of a tiny convnet;
``--keras`` compares it with Keras).  See :mod:`minicnn.explain`."""

from __future__ import annotations

import argparse

from minicnn.applications.registry import MODEL_NAMES


def register(commands) -> None:
    """Add ``explain`` to the subparsers object ``commands``."""
    parser = commands.add_parser(
        "explain", help="the arithmetic of a model layer by layer, or worked by hand: "
                        "'conv' (one tiny convolution, --backward its gradients), 'pool' "
                        "(pooling forward and backward), 'step' (one SGD training step)")
    parser.add_argument("target", help="'conv', 'pool', 'step', a model name ("
                        + ", ".join(MODEL_NAMES) + ") or a model file (.npz)")
    parser.add_argument("--batch", type=int, default=1,
                        help="model: multiply-adds and patch matrices for this batch size")
    parser.add_argument("--size", type=int, default=None,
                        help="conv, pool: input height = width (default: 5 for conv, 4 for pool)")
    parser.add_argument("--kernel-size", type=int, default=3, help="conv: kernel size")
    parser.add_argument("--stride", type=int, default=None,
                        help="conv: stride (default 1); pool: stride (default: the pool size)")
    parser.add_argument("--padding", choices=["valid", "same"], default="valid",
                        help="conv: zero padding")
    parser.add_argument("--channels", type=int, default=1, help="conv: input channels, 1 to 3")
    parser.add_argument("--seed", type=int, default=0,
                        help="conv, pool, step: random seed of the small numbers")
    parser.add_argument("--all", action="store_true",
                        help="conv: show every position (with --backward, every stamp)")
    parser.add_argument("--backward", action="store_true",
                        help="conv: the backward pass (kernel, input and bias gradients)")
    parser.add_argument("--kind", choices=["max", "average"], default=None,
                        help="pool: max or average pooling (default max)")
    parser.add_argument("--pool-size", type=int, default=None, help="pool: window size (default 2)")
    parser.add_argument("--keras", action="store_true",
                        help="step: also run the step in Keras and print the differences")
    parser.set_defaults(run=run)


# Options of one walk-through only: {attribute: (option, target)}.
_TARGET_OPTIONS = {"backward": ("--backward", "conv"), "kind": ("--kind", "pool"),
                   "pool_size": ("--pool-size", "pool"), "keras": ("--keras", "step")}


def run(arguments: argparse.Namespace) -> int:
    """Print the explanation of ``arguments.target``."""
    from minicnn import explain
    from minicnn.applications.registry import resolve_model

    for attribute, (option, target) in _TARGET_OPTIONS.items():
        if arguments.target != target and getattr(arguments, attribute) not in (None, False):
            raise ValueError(f"{option} is an option of 'explain {target}', not of "
                             f"'explain {arguments.target}'")
    if arguments.target == "conv":
        from minicnn.explain.conv_backward import explain_conv_backward

        walk = explain_conv_backward if arguments.backward else explain.explain_conv
        print(walk(size=5 if arguments.size is None else arguments.size,
                   kernel_size=arguments.kernel_size,
                   stride=1 if arguments.stride is None else arguments.stride,
                   padding=arguments.padding, channels=arguments.channels, seed=arguments.seed,
                   show_all=arguments.all))
        return 0
    if arguments.target == "pool":
        from minicnn.explain.pool import explain_pool

        print(explain_pool(kind=arguments.kind or "max",
                           size=4 if arguments.size is None else arguments.size,
                           pool_size=2 if arguments.pool_size is None else arguments.pool_size,
                           stride=arguments.stride, seed=arguments.seed))
        return 0
    if arguments.target == "step":
        from minicnn.explain.step import explain_step

        print(explain_step(seed=arguments.seed, keras=arguments.keras))
        return 0
    if arguments.target not in MODEL_NAMES and not arguments.target.endswith(".npz"):
        raise ValueError(f"explain: {arguments.target!r} is not 'conv', a model name "
                         f"({', '.join(MODEL_NAMES)}), a model file ending in .npz, 'pool' "
                         "or 'step'")
    print(explain.explain_model(resolve_model(arguments.target), batch=arguments.batch,
                                label=arguments.target))
    return 0

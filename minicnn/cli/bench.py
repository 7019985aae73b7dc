"""``minicnn bench``: where a training step's time goes, step by step.

    minicnn bench layers [--model mnist-convnet] [--backend numba] [--batch-size 64]
                         [--repeats 20] [--warmup 2] [--steps NAME ...] [--json PATH]

times each step of the model's training step forward and backward, then one whole
``train_on_batch`` and one ``predict_on_batch`` (:mod:`minicnn.profiler`), and prints
a table with GFLOP/s (:mod:`minicnn.flops`).  ``minicnn bench`` alone is
``minicnn bench layers``.

The comparison with Keras and PyTorch (whole epochs, each framework in its own
process, the report in ``benchmarks/RESULTS.md``) is not part of the installed
package: from a checkout of the repository run ``python -m benchmarks all`` (or
``kernels``, ``end-to-end``, ``machine``, ``report``).  ``minicnn bench all``,
``kernels`` and ``end-to-end`` say so and exit with status 2.
"""

from __future__ import annotations

import argparse
import shlex

from minicnn.applications.registry import MODEL_NAMES

MOVED = ("all", "kernels", "end-to-end")
"""The former cross-framework commands, now ``python -m benchmarks WHAT``."""

_DEFAULTS = {"model": "mnist-convnet", "backend": None, "batch_size": None, "repeats": None,
             "warmup": None, "seed": 0, "steps": None, "json": None}


def _add_layers_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODEL_NAMES, default=_DEFAULTS["model"],
                        help="the model to profile")
    parser.add_argument("--backend", choices=["numba", "numpy", "reference"],
                        help="kernel backend (default: the active one)")
    parser.add_argument("--batch-size", type=int,
                        help="images per call (default 64; 1 on the reference backend)")
    parser.add_argument("--repeats", type=int,
                        help="timed calls per step (default 20; 1 on the reference backend)")
    parser.add_argument("--warmup", type=int,
                        help="untimed calls first (default 2; 0 on the reference backend)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the weights and the data")
    parser.add_argument("--steps", nargs="+", metavar="NAME",
                        help="time only these steps, named as the table prints them (default: all)")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the timings as JSON to PATH (default: none)")


def register(commands) -> None:
    """Add ``bench`` (and ``bench layers``) to the subparsers object ``commands``."""
    parser = commands.add_parser(
        "bench", help="time each step of a model's training step (the comparison with "
                      "Keras and PyTorch: python -m benchmarks)",
        description="Where a training step's time goes, step by step.")
    parser.set_defaults(run=run_layers, **_DEFAULTS)
    what = parser.add_subparsers(dest="what", metavar="{layers}")
    layers = what.add_parser("layers", help="time each step forward and backward")
    _add_layers_options(layers)
    layers.set_defaults(run=run_layers)
    for name in MOVED:
        # Any options are accepted and only repeated in the message: prefix_chars="+"
        # makes "--quick" an ordinary word here.
        moved = what.add_parser(name, prefix_chars="+", add_help=False)
        moved.add_argument("options", nargs="*")
        moved.set_defaults(run=run_moved)


def run_moved(arguments: argparse.Namespace) -> int:
    """``minicnn bench all|kernels|end-to-end``: point to the harness in ``benchmarks/``."""
    command = shlex.join(["python", "-m", "benchmarks", arguments.what, *arguments.options])
    print(f"minicnn bench {arguments.what}: the comparison with Keras and PyTorch moved out "
          f"of the package; from a checkout of the repository run:\n    {command}\n"
          f"(minicnn bench layers profiles one model's steps on one backend.)")
    return 2


def run_layers(arguments: argparse.Namespace) -> int:
    """Profile ``--model`` on ``--backend`` and print the table (and ``--json``)."""
    from minicnn.applications.registry import build_model
    from minicnn.backend import using_backend
    from minicnn.files import write_json
    from minicnn.naming import clear_session
    from minicnn.profiler import format_profile, profile_model
    from minicnn.random import set_random_seed

    reference = arguments.backend == "reference"
    batch_size = arguments.batch_size if arguments.batch_size is not None else (
        1 if reference else 64)
    repeats = arguments.repeats if arguments.repeats is not None else (1 if reference else 20)
    warmup = arguments.warmup if arguments.warmup is not None else (0 if reference else 2)
    for option, value in (("--batch-size", batch_size), ("--repeats", repeats)):
        if value < 1:
            raise ValueError(f"{option} must be positive, received {value}")
    if warmup < 0:
        raise ValueError(f"--warmup must be >= 0, received {warmup}")
    with using_backend(arguments.backend):
        clear_session()  # the table's step names are the model's own: conv2d, ...
        set_random_seed(arguments.seed)
        model = build_model(arguments.model)
        profile = profile_model(model, batch_size, repeats=repeats, warmup=warmup,
                                seed=arguments.seed, only=arguments.steps)
    profile["model"] = arguments.model
    print(format_profile(profile))
    if arguments.steps and not profile["rows"]:
        raise ValueError(f"no step is called {' or '.join(map(repr, arguments.steps))}; "
                         f"run without --steps to see the names")
    if arguments.json:
        write_json(arguments.json, profile)
        print(f"\nwrote {arguments.json}")
    print("\nThe comparison with Keras and PyTorch: python -m benchmarks all "
          "(from a checkout of the repository).")
    return 0

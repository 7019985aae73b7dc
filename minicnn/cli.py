"""The ``minicnn`` command: ``minicnn --help`` lists everything.

Errors a user can cause (bad options, missing files, bad data) become one line on
stderr and exit status 2; only genuine bugs show a traceback.
"""

from __future__ import annotations

import argparse
import sys

from minicnn.applications.registry import MNIST_CLASSIFIERS, MODEL_NAMES, build_model


def command_summary(arguments: argparse.Namespace) -> int:
    """Print minicnn's summary; with --keras also Keras's and a row-by-row verdict.

    Exit status 0 when every row (name, type, output shape, parameters) and every
    total agree, 1 on any mismatch.
    """
    model = build_model(arguments.name)
    model.summary()
    if not arguments.keras:
        return 0
    from minicnn.interop import keras as keras_bridge

    keras_model = keras_bridge.keras_reference_model(arguments.name)
    print("\nKeras's summary of the same model, built by Keras:")
    keras_model.summary()
    verdict, all_equal = keras_bridge.compare_summaries(model, keras_model)
    print("\nRow by row (layer (type), output shape, parameters):")
    print(keras_bridge.format_verdict(verdict))
    compared = [row for row in verdict if row["equal"] is not None]
    differing = sum(not row["equal"] for row in compared)
    if all_equal:
        print(f"\nverdict: all {len(compared)} rows equal ({model.count_params():,} parameters)")
        return 0
    print(f"\nverdict: {differing} of {len(compared)} rows differ")
    return 1


def command_train(arguments: argparse.Namespace) -> int:
    from minicnn.train_mnist import train_mnist

    train_mnist(model_name=arguments.model, epochs=arguments.epochs,
                batch_size=arguments.batch_size, optimizer=arguments.optimizer,
                backend=arguments.backend, out=arguments.out, seed=arguments.seed,
                verbose=arguments.verbose, validation_split=arguments.validation_split,
                resume=arguments.resume, checkpoint_every=arguments.checkpoint_every)
    return 0


# Options that belong to one study only: {option: (attribute, study)}.
_STUDY_OPTIONS = {"--variants": ("variants", "downsampling"), "--seed": ("seed", "downsampling"),
                  "--labeled": ("labeled", "transfer"),
                  "--pretrain-epochs": ("pretrain_epochs", "transfer"),
                  "--fine-tune-epochs": ("fine_tune_epochs", "transfer")}


def command_experiment(arguments: argparse.Namespace) -> int:
    for option, (attribute, study) in _STUDY_OPTIONS.items():
        if study != arguments.study and getattr(arguments, attribute) is not None:
            hint = " (use --seeds)" if option == "--seed" else ""
            raise ValueError(f"{option} is an option of 'experiment {study}', not of "
                             f"'experiment {arguments.study}'{hint}")
    if arguments.study == "transfer":
        from minicnn.experiments import transfer

        if arguments.optimizer not in (None, "rmsprop"):
            raise ValueError(f"experiment transfer uses RMSprop (1e-3, then 1e-4 to fine-tune); "
                             f"--optimizer {arguments.optimizer!r} is not supported")
        transfer.run(labeled=100 if arguments.labeled is None else arguments.labeled,
                     seeds=(0, 1, 2) if arguments.seeds is None else arguments.seeds,
                     epochs=30 if arguments.epochs is None else arguments.epochs,
                     fine_tune_epochs=arguments.fine_tune_epochs,
                     pretrain_epochs=5 if arguments.pretrain_epochs is None
                     else arguments.pretrain_epochs,
                     batch_size=20 if arguments.batch_size is None else arguments.batch_size,
                     out=arguments.out or "runs/transfer", backend=arguments.backend,
                     verbose=arguments.verbose)
        return 0
    from minicnn.experiments import downsampling

    downsampling.run(epochs=2 if arguments.epochs is None else arguments.epochs,
                     out=arguments.out or "runs/downsampling", seed=arguments.seed,
                     seeds=arguments.seeds,
                     batch_size=64 if arguments.batch_size is None else arguments.batch_size,
                     optimizer=arguments.optimizer or "rmsprop",
                     backend=arguments.backend, variants=arguments.variants,
                     verbose=arguments.verbose)
    return 0


def command_bench(arguments: argparse.Namespace) -> int:
    from minicnn import bench

    return bench.run_command(arguments)


def command_data(arguments: argparse.Namespace) -> int:
    from minicnn.datasets import mnist

    print(mnist.fetch())
    return 0


def command_viz(arguments: argparse.Namespace) -> int:
    from minicnn.viz import command

    return command.run(arguments)


def command_explain(arguments: argparse.Namespace) -> int:
    from minicnn import explain

    if arguments.target == "conv":
        print(explain.explain_conv(size=arguments.size, kernel_size=arguments.kernel_size,
                                   stride=arguments.stride, padding=arguments.padding,
                                   channels=arguments.channels, seed=arguments.seed,
                                   show_all=arguments.all))
    else:
        if arguments.target not in MODEL_NAMES and not arguments.target.endswith(".npz"):
            raise ValueError(f"explain: {arguments.target!r} is not 'conv', a model name "
                             f"({', '.join(MODEL_NAMES)}) or a model file ending in .npz")
        print(explain.explain_model(explain.resolve_model(arguments.target),
                                    batch=arguments.batch, label=arguments.target))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minicnn", description="A convnet engine in NumPy and Numba, checked against Keras.")
    commands = parser.add_subparsers(dest="command", required=True)

    summary = commands.add_parser("summary", help="print a model's Keras-style summary")
    summary.add_argument("name", choices=MODEL_NAMES)
    summary.add_argument("--keras", action="store_true",
                         help="also build the model with Keras, print its summary and a "
                              "row-by-row verdict (exit status 1 on any difference)")
    summary.set_defaults(handler=command_summary)

    train = commands.add_parser("train", help="train a model on a dataset")
    train.add_argument("dataset", choices=["mnist"])
    train.add_argument("--model", choices=sorted(MNIST_CLASSIFIERS), default="convnet")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=None,
                       help="default: 64 for convnets, 128 for the dense model (the seed's)")
    train.add_argument("--optimizer", default="rmsprop")
    train.add_argument("--backend", choices=["numba", "numpy", "reference"], default=None)
    train.add_argument("--out", default="runs/mnist")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    train.add_argument("--validation-split", type=float, default=0.0,
                       help="hold out this fraction of the training images for validation "
                            "curves (default 0: the seed trains on all and tests after)")
    train.add_argument("--resume", action="store_true",
                       help="continue from OUT/checkpoint.npz (written after every epoch) "
                            "with the same options; without it a fresh run removes it")
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                       help="also write OUT/checkpoint.npz every N batches")
    train.set_defaults(handler=command_train)

    experiment = commands.add_parser("experiment", help="run a study that compares models")
    experiment.add_argument("study", choices=["downsampling", "transfer"],
                            help="downsampling: pooling vs strides vs none on MNIST; transfer: "
                                 "pretrain on digits 0-4, learn 5-9 from a few labeled images")
    experiment.add_argument("--epochs", type=int, default=None,
                            help="epochs per model (downsampling: 2; transfer: 30, for scratch "
                                 "and for feature extraction)")
    experiment.add_argument("--batch-size", type=int, default=None,
                            help="downsampling: 64; transfer: 20")
    experiment.add_argument("--optimizer", default=None, help="downsampling: rmsprop")
    experiment.add_argument("--backend", choices=["numba", "numpy", "reference"], default=None)
    experiment.add_argument("--out", default=None,
                            help="default runs/downsampling or runs/transfer")
    experiment.add_argument("--seed", type=int, default=None, help="downsampling only")
    experiment.add_argument("--variants", nargs="+", default=None,
                            choices=["max-pool", "avg-pool", "strided-conv", "no-downsampling"],
                            help="downsampling: run only these models (default: all four)")
    experiment.add_argument("--labeled", type=int, default=None,
                            help="transfer: labeled images of digits 5-9 (default 100)")
    experiment.add_argument("--seeds", type=int, nargs="+", default=None,
                            help="one run per seed (transfer: default 0 1 2; downsampling: "
                                 "every model once per seed, the table shows means and ranges)")
    experiment.add_argument("--pretrain-epochs", type=int, default=None,
                            help="transfer: epochs of pretraining on digits 0-4 (default 5; "
                                 "1 is already enough); cached in OUT")
    experiment.add_argument("--fine-tune-epochs", type=int, default=None,
                            help="transfer: epochs of fine-tuning (default: --epochs)")
    experiment.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    experiment.set_defaults(handler=command_experiment)

    from minicnn.bench import add_arguments as add_bench_arguments

    bench = commands.add_parser(
        "bench", help="time each layer and whole training epochs beside Keras and PyTorch "
                      "(writes benchmarks/RESULTS.md)")
    add_bench_arguments(bench)
    bench.set_defaults(handler=command_bench)

    data = commands.add_parser("data", help="fetch and verify a dataset, print its path")
    data.add_argument("dataset", choices=["mnist"])
    data.set_defaults(handler=command_data)

    from minicnn.viz.command import add_arguments as add_viz_arguments

    viz = commands.add_parser("viz", help="look inside a trained model: activations, filter "
                                          "patterns, Grad-CAM (PNG files)")
    add_viz_arguments(viz)
    viz.set_defaults(handler=command_viz)

    explain = commands.add_parser(
        "explain", help="the arithmetic of a model layer by layer, or 'conv': one tiny "
                        "convolution step by step")
    explain.add_argument("target", help="'conv', a model name (" + ", ".join(MODEL_NAMES)
                         + ") or a model file (.npz)")
    explain.add_argument("--batch", type=int, default=1,
                         help="model: multiply-adds and patch matrices for this batch size")
    explain.add_argument("--size", type=int, default=5, help="conv: input height = width (5)")
    explain.add_argument("--kernel-size", type=int, default=3, help="conv: kernel size (3)")
    explain.add_argument("--stride", type=int, default=1, help="conv: stride (1)")
    explain.add_argument("--padding", choices=["valid", "same"], default="valid")
    explain.add_argument("--channels", type=int, default=1, help="conv: input channels (1-3)")
    explain.add_argument("--seed", type=int, default=0, help="conv: seed of the small integers")
    explain.add_argument("--all", action="store_true", help="conv: show every position")
    explain.set_defaults(handler=command_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = make_parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except (ValueError, TypeError, OSError, RuntimeError, FloatingPointError) as error:
        # FloatingPointError: NonFiniteLossError, "training stopped at epoch E, batch B".
        print(f"minicnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minicnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

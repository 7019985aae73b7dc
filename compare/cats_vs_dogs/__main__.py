"""``python -m compare.cats_vs_dogs``: the command line (see the package docstring)."""

from __future__ import annotations

import argparse
import sys

from compare.cats_vs_dogs.split import SplitError, split

TRAINING_STEPS = ("scratch", "augment", "extract", "extract-augment", "finetune")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compare.cats_vs_dogs",
        description="The book's sections 5.2-5.3 (cats vs dogs) in minicnn, in Keras 3, or "
                    "both side by side: split the Kaggle folder (or export MNIST digits with "
                    "'minicnn data mnist --export DIR'), then train (scratch, augment, "
                    "extract, extract-augment, finetune).")
    steps = parser.add_subparsers(dest="step", required=True)
    split_parser = steps.add_parser("split", help="copy the Kaggle images into "
                                                  "train/validation/test, cats/ and dogs/")
    split_parser.add_argument("source", help="the Kaggle folder of cat.N.jpg and dog.N.jpg")
    split_parser.add_argument("destination")
    split_parser.add_argument("--train", type=int, default=1000, help="images per class (1000)")
    split_parser.add_argument("--validation", type=int, default=500, help="per class (500)")
    split_parser.add_argument("--test", type=int, default=500, help="per class (500)")
    for step in TRAINING_STEPS:
        sub = steps.add_parser(step, help=f"train: {step}")
        sub.add_argument("--data", required=True,
                         help="the DST folder made by split (or by minicnn data mnist --export)")
        sub.add_argument("--engine", choices=["minicnn", "keras", "both"], default="both",
                         help="train in minicnn, in Keras, or in both from the same starting "
                              "weights on the same batches (default both)")
        sub.add_argument("--out", required=True, help="folder for metrics.json and curves.png")
        sub.add_argument("--epochs", type=int, default=30)
        sub.add_argument("--image-size", type=int, default=150)
        sub.add_argument("--batch-size", type=int, default=20)
        sub.add_argument("--steps-per-epoch", type=int, default=None,
                         help="training batches per epoch (default one pass over the images; "
                              "not used by extract)")
        sub.add_argument("--weights", default="imagenet",
                         help="VGG16 weights: imagenet (Keras's download), a .h5 PATH, or none "
                              "(random; the scratch and augment steps do not use VGG16)")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--verbose", type=int, choices=[0, 1, 2], default=2)
        if step == "finetune":
            sub.add_argument("--head-from", default=None,
                             help="an extract-augment --out folder: start from its trained "
                                  "head instead of training one first")
            sub.add_argument("--head-epochs", type=int, default=None,
                             help="epochs of head training before unfreezing (default --epochs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = make_parser().parse_args(argv)
    try:
        if arguments.step == "split":
            split(arguments.source, arguments.destination, arguments.train,
                  arguments.validation, arguments.test)
            return 0
        from compare.cats_vs_dogs.steps import run_step

        options = {"data": arguments.data, "out": arguments.out, "epochs": arguments.epochs,
                   "image_size": arguments.image_size, "batch_size": arguments.batch_size,
                   "weights": arguments.weights, "seed": arguments.seed,
                   "engine": arguments.engine, "steps_per_epoch": arguments.steps_per_epoch}
        if arguments.step == "finetune":
            options["head_from"] = arguments.head_from
            options["head_epochs"] = (arguments.epochs if arguments.head_epochs is None
                                      else arguments.head_epochs)
        run_step(arguments.step, options, verbose=arguments.verbose)
        return 0
    except (SplitError, ValueError, OSError, RuntimeError) as error:
        print(f"cats_vs_dogs {arguments.step}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

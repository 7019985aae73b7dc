"""``minicnn experiment downsampling|transfer|invariance|small-data``: studies that compare
models (see :mod:`minicnn.experiments`)."""

from __future__ import annotations

import argparse

from minicnn.cli.train import BACKENDS

# Options that belong to some studies only: {option: (attribute, study or studies)}.
_STUDY_OPTIONS = {"--variants": ("variants", "downsampling"), "--seed": ("seed", "downsampling"),
                  "--labeled": ("labeled", "transfer"),
                  "--pretrain-epochs": ("pretrain_epochs", "transfer"),
                  "--fine-tune-epochs": ("fine_tune_epochs", "transfer"),
                  "--max-shift": ("max_shift", "invariance"),
                  "--canvas-step": ("canvas_step", "invariance"),
                  "--models": ("models", "invariance"),
                  "--test-images": ("test_images", ("invariance", "small-data")),
                  "--small": ("small", "invariance"),
                  "--arms": ("arms", "small-data"), "--data": ("data", "small-data"),
                  "--image-size": ("image_size", "small-data"),
                  "--train-images": ("train_images", "small-data"),
                  "--validation-images": ("validation_images", "small-data"),
                  "--smooth": ("smooth", "small-data")}


def register(commands) -> None:
    """Add ``experiment`` to the subparsers object ``commands``."""
    parser = commands.add_parser("experiment", help="run a study that compares models")
    parser.add_argument("study", choices=["downsampling", "transfer", "invariance",
                                          "small-data"],
                        help="downsampling: pooling vs strides vs none on MNIST; transfer: "
                             "pretrain on digits 0-4, learn 5-9 from a few labeled images; "
                             "invariance: dense network vs convnets on shifted digits and on "
                             "the half of a wider image they never saw; small-data: the "
                             "convnet on 2,000 images, plain, + Dropout, + augmentation, "
                             "+ both (the book's section 5.2)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per model (default: downsampling 2; transfer 30, for scratch "
                             "and for feature extraction; invariance: 2; small-data: 50)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default: downsampling 64; transfer 20; "
                             "invariance 64; small-data 64 on MNIST, 20 with --data)")
    parser.add_argument("--optimizer", default=None,
                        help="downsampling, invariance: an optimizer name (default rmsprop; "
                             "transfer and small-data use RMSprop only)")
    parser.add_argument("--backend", choices=list(BACKENDS), default=None,
                        help="kernels to run (default: $MINICNN_BACKEND, else numba when "
                             "it is installed)")
    parser.add_argument("--out", default=None,
                        help="folder for the files written (default: runs/downsampling, "
                             "runs/transfer, runs/invariance or runs/small-data)")
    parser.add_argument("--seed", type=int, default=None,
                        help="downsampling: random seed of the weights and the batch order "
                             "(default: a different run each time; --seeds for several)")
    parser.add_argument("--variants", nargs="+", default=None,
                        choices=["max-pool", "avg-pool", "strided-conv", "no-downsampling"],
                        help="downsampling: run only these models (default: all four)")
    parser.add_argument("--labeled", type=int, default=None,
                        help="transfer: labeled images of digits 5-9 (default 100)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="random seeds, one run per seed (default: transfer and "
                             "small-data 0 1 2; downsampling: one run, see --seed, or every "
                             "model once per seed, the table shows means and ranges; "
                             "invariance: 0, the tables show means)")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="transfer: epochs of pretraining on digits 0-4 (default 5; "
                             "1 is already enough); cached in OUT")
    parser.add_argument("--fine-tune-epochs", type=int, default=None,
                        help="transfer: epochs of fine-tuning (default: --epochs)")
    parser.add_argument("--max-shift", type=int, default=None,
                        help="invariance: test shifts 0..N pixels in each direction (default 6)")
    parser.add_argument("--canvas-step", type=int, default=None,
                        help="invariance: step of the digit's position on the 28x56 canvas "
                             "(default 4)")
    parser.add_argument("--models", nargs="+", default=None,
                        choices=["dense", "convnet", "convnet-global-max"],
                        help="invariance: run only these models (default: all three)")
    parser.add_argument("--test-images", type=int, default=None,
                        help="invariance, small-data: use the first N test images (default: "
                             "all 10,000)")
    parser.add_argument("--small", action="store_true", default=None,
                        help="invariance: tiny synthetic data instead of MNIST (for tests)")
    parser.add_argument("--arms", nargs="+", default=None,
                        choices=["plain", "dropout", "augment", "both"],
                        help="small-data: run only these arms (default: all four)")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="small-data: an image folder (train/validation/test, two class "
                             "folders each, e.g. from 'minicnn data mnist --export DIR "
                             "--size 150') trained with the chapter's 150x150 convnet "
                             "(default: MNIST digits)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="small-data with --data: resize images to this side (default 150)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="small-data on MNIST: training images (default 2000)")
    parser.add_argument("--validation-images", type=int, default=None,
                        help="small-data on MNIST: validation images, the next ones of "
                             "MNIST's training set (default 1000)")
    parser.add_argument("--smooth", type=float, default=None, metavar="FACTOR",
                        help="small-data: smooth the curves with the book's exponential "
                             "moving average (e.g. 0.8; default: raw curves)")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                        help="0 silent, 1 progress bars, 2 one line per epoch")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Run the study; refuse the options of the other one."""
    for option, (attribute, studies) in _STUDY_OPTIONS.items():
        studies = (studies,) if isinstance(studies, str) else studies
        if arguments.study not in studies and getattr(arguments, attribute) is not None:
            hint = " (use --seeds)" if option == "--seed" else ""
            owners = " and ".join(f"'experiment {study}'" for study in studies)
            raise ValueError(f"{option} is an option of {owners}, not of "
                             f"'experiment {arguments.study}'{hint}")
    if arguments.study == "transfer":
        return _run_transfer(arguments)
    if arguments.study == "invariance":
        return _run_invariance(arguments)
    if arguments.study == "small-data":
        return _run_small_data(arguments)
    from minicnn.experiments import downsampling

    downsampling.run(epochs=2 if arguments.epochs is None else arguments.epochs,
                     out=arguments.out or "runs/downsampling", seed=arguments.seed,
                     seeds=arguments.seeds,
                     batch_size=64 if arguments.batch_size is None else arguments.batch_size,
                     optimizer=arguments.optimizer or "rmsprop",
                     backend=arguments.backend, variants=arguments.variants,
                     verbose=arguments.verbose)
    return 0


def _run_transfer(arguments: argparse.Namespace) -> int:
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


def _run_invariance(arguments: argparse.Namespace) -> int:
    from minicnn.experiments import invariance

    invariance.run(epochs=2 if arguments.epochs is None else arguments.epochs,
                   out=arguments.out or "runs/invariance",
                   seeds=(0,) if arguments.seeds is None else arguments.seeds,
                   max_shift=6 if arguments.max_shift is None else arguments.max_shift,
                   canvas_step=4 if arguments.canvas_step is None else arguments.canvas_step,
                   batch_size=64 if arguments.batch_size is None else arguments.batch_size,
                   optimizer=arguments.optimizer or "rmsprop", backend=arguments.backend,
                   models=arguments.models, test_images=arguments.test_images,
                   small=bool(arguments.small), verbose=arguments.verbose)
    return 0


def _run_small_data(arguments: argparse.Namespace) -> int:
    from minicnn.experiments import small_data

    if arguments.optimizer not in (None, "rmsprop"):
        raise ValueError(f"experiment small-data uses RMSprop (1e-3 on MNIST, 1e-4 with "
                         f"--data, as the book); --optimizer {arguments.optimizer!r} is not "
                         f"supported")
    if arguments.data is None and arguments.image_size is not None:
        raise ValueError("--image-size is for 'experiment small-data --data DIR' (MNIST "
                         "digits are 28x28)")
    if arguments.data is not None:
        for option, value in (("--train-images", arguments.train_images),
                              ("--validation-images", arguments.validation_images),
                              ("--test-images", arguments.test_images)):
            if value is not None:
                raise ValueError(f"{option} is for small-data on MNIST; with --data the "
                                 f"folder's train/validation/test subsets are used whole")
    small_data.run(epochs=50 if arguments.epochs is None else arguments.epochs,
                   out=arguments.out or "runs/small-data",
                   seeds=(0, 1, 2) if arguments.seeds is None else arguments.seeds,
                   arms=arguments.arms, data=arguments.data,
                   image_size=150 if arguments.image_size is None else arguments.image_size,
                   train_images=2000 if arguments.train_images is None
                   else arguments.train_images,
                   validation_images=1000 if arguments.validation_images is None
                   else arguments.validation_images,
                   test_images=arguments.test_images, batch_size=arguments.batch_size,
                   smooth=arguments.smooth, backend=arguments.backend,
                   verbose=arguments.verbose)
    return 0

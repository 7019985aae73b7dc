"""The MNIST convnet of the book's section 5.1 trained by minicnn and by Keras, side by side.

    python -m compare.mnist_side_by_side [--epochs 1] [--out runs/side_by_side]

Both engines start from the same initial weights (minicnn's Glorot-uniform draw,
copied into Keras) and see the same batches in the same order (one seeded shuffle per
epoch, batches of 64, RMSprop with Keras's defaults, categorical cross-entropy), one
``train_on_batch`` each, alternately.  Written to OUT: ``loss_curves.png`` (both
per-batch training losses on one plot, with a running mean), ``side_by_side.json``
(every batch loss, the test loss and accuracy of each engine, the seconds each spent
training).  Exit status 1 if the final test accuracies differ by 0.3 points or more.

The two trajectories start identical and drift apart only through float32 round-off
(see ``python -m compare.parity``), which the chaos of training amplifies; the
curves should lie on top of each other and the accuracies agree to a few tenths.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from compare._keras_models import twins

MAX_ACCURACY_GAP_POINTS = 0.3


def load_mnist(limit: int | None = None):
    """MNIST scaled to [0, 1], shaped (N, 28, 28, 1), labels one-hot (as the book does)."""
    from minicnn.datasets import mnist
    from minicnn.utils import to_categorical

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    prepare = lambda images: (images.reshape(-1, 28, 28, 1) / 255).astype(np.float32)  # noqa: E731
    return (prepare(x_train), to_categorical(y_train, 10)), \
        (prepare(x_test), to_categorical(y_test, 10))


def running_mean(values: np.ndarray, window: int = 50) -> np.ndarray:
    """Mean of the last ``window`` values at each step (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot(path: Path, ours: np.ndarray, theirs: np.ndarray, steps_per_epoch: int,
         accuracies: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 5))
    steps = np.arange(1, len(ours) + 1)
    axis.plot(steps, ours, color="tab:blue", alpha=0.25, linewidth=0.7)
    axis.plot(steps, theirs, color="tab:orange", alpha=0.25, linewidth=0.7)
    axis.plot(steps, running_mean(ours), color="tab:blue",
              label=f"minicnn (test accuracy {100 * accuracies['minicnn']:.2f} %)")
    axis.plot(steps, running_mean(theirs), color="tab:orange", linestyle="--",
              label=f"Keras (test accuracy {100 * accuracies['keras']:.2f} %)")
    for epoch_end in range(steps_per_epoch, len(ours), steps_per_epoch):
        axis.axvline(epoch_end, color="gray", linewidth=0.5)
    axis.set_yscale("log")
    axis.set_xlabel("batch (64 images; faint: each batch, solid/dashed: mean of the last 50)")
    axis.set_ylabel("training loss (categorical cross-entropy)")
    axis.set_title("MNIST convnet, same initial weights and batches: minicnn vs Keras")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compare.mnist_side_by_side",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/side_by_side")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on only the first N images (a quick look; the 0.3-point "
                             "check is meant for the full set)")
    arguments = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_mnist(arguments.limit)
    model, keras_model = twins("mnist-convnet", arguments.seed)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    keras_model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                        metrics=["accuracy"])
    rng = np.random.default_rng(arguments.seed)
    steps_per_epoch = -(-len(x_train) // arguments.batch_size)
    losses = {"minicnn": [], "keras": []}
    seconds = {"minicnn": 0.0, "keras": 0.0}
    for epoch in range(arguments.epochs):
        order = rng.permutation(len(x_train))
        for step in range(steps_per_epoch):
            batch = order[step * arguments.batch_size:(step + 1) * arguments.batch_size]
            x_batch, y_batch = x_train[batch], y_train[batch]
            started = time.perf_counter()
            ours = model.train_on_batch(x_batch, y_batch)
            middle = time.perf_counter()
            theirs = keras_model.train_on_batch(x_batch, y_batch)
            seconds["minicnn"] += middle - started
            seconds["keras"] += time.perf_counter() - middle
            losses["minicnn"].append(float(ours[0]))
            losses["keras"].append(float(theirs[0]))
            if (step + 1) % 100 == 0 or step + 1 == steps_per_epoch:
                print(f"epoch {epoch + 1}/{arguments.epochs} batch {step + 1}/{steps_per_epoch}: "
                      f"loss minicnn {np.mean(losses['minicnn'][-100:]):.4f}, "
                      f"Keras {np.mean(losses['keras'][-100:]):.4f}", flush=True)

    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    keras_loss, keras_accuracy = keras_model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    weight_gap = max(float(np.max(np.abs(a - np.asarray(b))))
                     for a, b in zip(model.get_weights(), keras_model.get_weights()))
    gap_points = 100 * abs(test_accuracy - keras_accuracy)
    result = {
        "epochs": arguments.epochs, "batch_size": arguments.batch_size, "seed": arguments.seed,
        "training_images": len(x_train), "optimizer": "rmsprop (Keras defaults)",
        "test": {"minicnn": {"loss": float(test_loss), "accuracy": float(test_accuracy)},
                 "keras": {"loss": float(keras_loss), "accuracy": float(keras_accuracy)}},
        "accuracy_gap_points": gap_points,
        "max_weight_difference_after_training": weight_gap,
        "training_seconds": seconds,
        "batch_losses": losses,
    }
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "side_by_side.json").write_text(json.dumps(result, indent=2))
    plot(out / "loss_curves.png", np.asarray(losses["minicnn"]), np.asarray(losses["keras"]),
         steps_per_epoch, {"minicnn": test_accuracy, "keras": keras_accuracy})
    print(f"test accuracy: minicnn {100 * test_accuracy:.2f} %, Keras {100 * keras_accuracy:.2f} % "
          f"(gap {gap_points:.2f} points); test loss minicnn {test_loss:.4f}, Keras "
          f"{keras_loss:.4f}")
    print(f"training time: minicnn {seconds['minicnn']:.1f} s, Keras {seconds['keras']:.1f} s; "
          f"largest weight difference after training {weight_gap:.2e}")
    print(f"wrote {out / 'loss_curves.png'} and {out / 'side_by_side.json'}")
    if gap_points >= MAX_ACCURACY_GAP_POINTS:
        print(f"accuracies differ by {gap_points:.2f} points, more than "
              f"{MAX_ACCURACY_GAP_POINTS}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Are the convnet's patterns translation invariant?  The chapter's claim, measured on MNIST.

*Deep Learning with Python* (first edition, section 5.1.1): "The patterns they learn are
translation invariant. After learning a certain pattern in the lower-right corner of a
picture, a convnet can recognize it anywhere [...]. A densely connected network would
have to learn the pattern anew if it appeared at a new location."  Two measurements:

1. **Shifted test digits.**  The dense network and the convnet of section 5.1, trained on
   MNIST as usual, are tested on the test digits shifted by 0..6 pixels right, left, down
   and up (the vacated pixels are zeros, nothing wraps round).
2. **The other half.**  Each digit is placed on the left half of a 28x56 canvas (columns
   0..27) and the models are trained on those only; they are tested with the digit moved
   right by 0, 4, ..., 28 columns, the last being the half they never saw.

Both add a third model, the convnet with a global max-pool head: the same convolutional
base, then a MaxPooling2D as large as its last feature map (so 1x1x64) before the Dense
layers.  The convolutions are shift-equivariant, the Flatten + Dense head is not (every
position has its own weights); the global max makes the head ignore where a pattern
was found, which is what recognizing a pattern "anywhere" needs.

Outputs in ``OUT``: ``invariance.json`` (every accuracy, per seed and direction, and the
options), ``invariance.md`` (the two tables) and ``invariance.png`` (accuracy against
shift and against position), rewritten after each model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DIRECTIONS", "MODELS", "build", "canvas", "format_tables", "run", "shift_images",
           "synthetic_digits"]

JSON_FILE = "invariance.json"
MARKDOWN_FILE = "invariance.md"
PLOT_FILE = "invariance.png"

# (row step, column step) of each direction of shift.
DIRECTIONS: dict[str, tuple[int, int]] = {"right": (0, 1), "left": (0, -1), "down": (1, 0),
                                          "up": (-1, 0)}
MODELS: dict[str, str] = {
    "dense": "Dense 512 relu -> Dense 10 (the dense network of section 5.1)",
    "convnet": "the MNIST convnet of section 5.1 (Flatten -> Dense head)",
    "convnet-global-max": "the same convolutions, then a global max pool -> Dense head",
}
CANVAS_WIDTH = 56


def shift_images(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """``images`` (N, H, W) moved down by ``rows`` and right by ``columns`` (negative: up,
    left); pixels moved out are dropped and the vacated ones are 0 (no wrap-around)."""
    shifted = np.zeros_like(images)
    height, width = images.shape[1:3]
    if abs(rows) >= height or abs(columns) >= width:
        return shifted
    source_rows = slice(max(-rows, 0), height - max(rows, 0))
    source_columns = slice(max(-columns, 0), width - max(columns, 0))
    target_rows = slice(max(rows, 0), height - max(-rows, 0))
    target_columns = slice(max(columns, 0), width - max(-columns, 0))
    shifted[:, target_rows, target_columns] = images[:, source_rows, source_columns]
    return shifted


def canvas(images: np.ndarray, offset: int, width: int = CANVAS_WIDTH) -> np.ndarray:
    """``images`` (N, H, W0) on a zero canvas (N, H, width), left edge at column ``offset``."""
    placed = np.zeros((images.shape[0], images.shape[1], width), dtype=images.dtype)
    placed[:, :, offset:offset + images.shape[2]] = images
    return placed


def synthetic_digits(count: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Tiny stand-in data for tests: ten fixed 10x10 random patterns (one per class) with
    noise, centred in ``size x size`` images: x float32 (count, size, size) in [0, 1],
    labels int64 (count,)."""
    patterns = np.random.default_rng(1234).random((10, 10, 10)) > 0.5
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    images = 0.1 * rng.random((count, size, size)).astype(np.float32)
    start = (size - 10) // 2
    images[:, start:start + 10, start:start + 10] += patterns[labels]
    return np.clip(images, 0, 1).astype(np.float32), labels.astype(np.int64)


def build(name: str, height: int = 28, width: int = 28):
    """A fresh model ``name`` (see :data:`MODELS`) for ``height x width`` images.

    At 28x28 ``dense`` and ``convnet`` are the registry's ``mnist-dense`` and
    ``mnist-convnet``; on the wider canvas the same layers take the wider input.
    """
    from minicnn.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
    from minicnn.models import Sequential

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}")
    if (height, width) == (28, 28) and name != "convnet-global-max":
        from minicnn.applications.registry import build_model

        return build_model(f"mnist-{name}")
    if name == "dense":
        return Sequential([Input((height * width,)), Dense(512, activation="relu"),
                           Dense(10, activation="softmax")])
    model = Sequential([Input((height, width, 1)), Conv2D(32, (3, 3), activation="relu"),
                        MaxPooling2D((2, 2)), Conv2D(64, (3, 3), activation="relu"),
                        MaxPooling2D((2, 2)), Conv2D(64, (3, 3), activation="relu")])
    if name == "convnet-global-max":
        # One window as large as the last map: the head sees each filter's strongest
        # response, wherever it was.
        model.add(MaxPooling2D(tuple(model.output_shape[1:3])))
    for layer in (Flatten(), Dense(64, activation="relu"), Dense(10, activation="softmax")):
        model.add(layer)
    return model


def _inputs(name: str, images: np.ndarray) -> np.ndarray:
    """(N, H, W) images as the model wants them: (N, H*W) for dense, (N, H, W, 1) otherwise."""
    if name == "dense":
        return images.reshape(len(images), -1)
    return images[..., np.newaxis]


def _accuracy(model, name: str, images: np.ndarray, labels: np.ndarray) -> float:
    predictions = model.predict(_inputs(name, images), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=1) == labels))


def _train(name: str, images: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int,
           batch_size: int, optimizer: str, verbose: int):
    import minicnn
    from minicnn.utils import to_categorical

    minicnn.set_random_seed(seed)
    model = build(name, *images.shape[1:3])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(_inputs(name, images), to_categorical(labels, 10), epochs=epochs,
              batch_size=batch_size, verbose=verbose)
    return model


def _load(small: bool, test_images: int | None) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): x float32 (N, 28, 28) in [0, 1], y int."""
    if small:
        x_train, y_train = synthetic_digits(400, seed=1)
        x_test, y_test = synthetic_digits(100, seed=2)
    else:
        from minicnn.datasets import mnist

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
        x_train, x_test = x_train.astype(np.float32) / 255, x_test.astype(np.float32) / 255
    if test_images is not None:
        x_test, y_test = x_test[:test_images], y_test[:test_images]
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def format_tables(result: dict[str, Any]) -> str:
    """The two measurements as Markdown tables of test accuracy (%)."""
    options = result["options"]
    shifts, positions = result["shifts"], result["canvas"]
    names = [name for name in MODELS if name in shifts or name in positions]
    header = "| " + " | ".join(names) + " |"
    rule = "| ---: " * (len(names) + 1) + "|"
    seeds = options["seeds"]
    lines = ["# Translation invariance (MNIST" + (", small synthetic data" if options["small"]
                                                   else "") + ")", "",
             f"Each model trained {options['epochs']} epoch(s), batch {options['batch_size']}, "
             f"{options['optimizer']}, backend {options['backend']}, "
             f"{options['train_images']:,} training / {options['test_images']:,} test images, "
             + ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))
             + (" (means over the seeds)" if len(seeds) > 1 else "") + ".", "",
             "## 1. Test digits shifted (zeros fill the vacated pixels)", "",
             "Test accuracy (%), the mean over shifts right, left, down and up, and in "
             "parentheses the worst of the four.", "",
             "| shift (pixels) " + header, rule]
    for index, shift in enumerate(result["shift_pixels"]):
        cells = []
        for name in names:
            per_direction = [shifts[name][direction][index] for direction in DIRECTIONS] \
                if name in shifts else None
            cells.append("" if per_direction is None else
                         f"{100 * _mean(per_direction):.1f} ({100 * min(per_direction):.1f})")
        lines.append(f"| {shift} | " + " | ".join(cells) + " |")
    lines += ["", f"## 2. Trained on the left half of a 28x{CANVAS_WIDTH} canvas, tested further "
              "right", "", "Test accuracy (%) with the digit's 28 columns starting at column "
              f"k; training used k = 0 only, and k = {CANVAS_WIDTH - 28} is the right half, "
              "never seen.", "", "| k " + header, rule]
    for index, offset in enumerate(result["canvas_offsets"]):
        cells = [f"{100 * positions[name][index]:.1f}" if name in positions else ""
                 for name in names]
        lines.append(f"| {offset} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_invariance(result: dict[str, Any], path: str | os.PathLike[str] | None = None):
    """Accuracy against shift (left) and against the digit's place on the wide canvas
    (right); returns the matplotlib Figure and writes a PNG only when given ``path``."""
    from minicnn.plots import finish_figure, new_figure

    figure = new_figure(11, 4)
    left, right = figure.subplots(1, 2)
    for name, per_direction in result["shifts"].items():
        means = np.mean([per_direction[direction] for direction in DIRECTIONS], axis=0)
        left.plot(result["shift_pixels"], 100 * means, marker="o", label=name)
    left.set(xlabel="shift (pixels, mean over 4 directions)", ylabel="test accuracy (%)",
             title="MNIST test digits shifted", ylim=(0, 100))
    for name, accuracies in result["canvas"].items():
        right.plot(result["canvas_offsets"], 100 * np.asarray(accuracies), marker="o", label=name)
    right.set(xlabel=f"digit's left column on the 28x{CANVAS_WIDTH} canvas (trained at 0)",
              ylabel="test accuracy (%)", title="trained on the left half only", ylim=(0, 100))
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    return finish_figure(figure, path)


def _save(result: dict[str, Any], out: Path) -> None:
    from minicnn.files import atomic_write, write_json

    write_json(out / JSON_FILE, result)
    table = format_tables(result)
    atomic_write(out / MARKDOWN_FILE, lambda handle: handle.write(table.encode()))
    plot_invariance(result, out / PLOT_FILE)


def run(epochs: int = 2, out: str | os.PathLike[str] = "runs/invariance",
        seeds: Sequence[int] = (0,), max_shift: int = 6, canvas_step: int = 4,
        batch_size: int = 64, optimizer: str = "rmsprop", backend: str | None = None,
        models: Sequence[str] | None = None, test_images: int | None = None,
        small: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Train each model, measure both experiments, print and save the tables and the plot.

    Args:
        epochs: epochs per model (the same budget for every model).
        out: folder for ``invariance.json``, ``invariance.md`` and ``invariance.png``.
        seeds: one training run per model and seed; the tables show means.
        max_shift: largest shift of part 1, in pixels (0..max_shift are tested).
        canvas_step: step of the digit's position in part 2 (0, step, ..., 28).
        batch_size, optimizer: the same for every model.
        backend: kernel backend (default the active one; restored afterwards).
        models: a subset of :data:`MODELS`; default all three.
        test_images: use only the first N test images (default all).
        small: tiny synthetic data (400 training, 100 test images) instead of MNIST,
            for tests; the numbers then say nothing about MNIST.
        verbose: passed to ``fit``; 0 prints only the tables.
    Returns:
        the dict written to ``invariance.json``: ``shifts`` (model -> direction -> one
        accuracy per shift), ``canvas`` (model -> one accuracy per position), the shifts
        and positions, ``runs`` (the same per seed) and ``options``.
    """
    import minicnn
    from minicnn.backend import using_backend

    names = list(MODELS) if models is None else list(models)
    for name in names:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, received {list(seeds)}")
    if max_shift < 0 or not 1 <= canvas_step <= CANVAS_WIDTH - 28:
        raise ValueError(f"max_shift must be >= 0 and canvas_step in 1..{CANVAS_WIDTH - 28}, "
                         f"received {max_shift} and {canvas_step}")
    x_train, y_train, x_test, y_test = _load(small, test_images)
    out = Path(out)
    shift_pixels = list(range(max_shift + 1))
    offsets = list(range(0, CANVAS_WIDTH - 28 + 1, canvas_step))
    wide_train = canvas(x_train, 0)
    with using_backend(backend) as backend_name:
        result: dict[str, Any] = {
            "shifts": {}, "canvas": {}, "shift_pixels": shift_pixels, "canvas_offsets": offsets,
            "runs": [], "options": {
                "epochs": epochs, "seeds": list(seeds), "batch_size": batch_size,
                "optimizer": optimizer, "backend": backend_name, "small": small,
                "train_images": len(x_train), "test_images": len(x_test),
                "minicnn_version": minicnn.__version__}}
        for name in names:
            shift_runs, canvas_runs = [], []
            for seed in seeds:
                if verbose:
                    print(f"\n== {name} on 28x28 digits, seed {seed}", flush=True)
                model = _train(name, x_train, y_train, seed=seed, epochs=epochs,
                               batch_size=batch_size, optimizer=optimizer, verbose=verbose)
                shift_runs.append({
                    direction: [_accuracy(model, name, shift_images(x_test, k * step[0],
                                                                    k * step[1]), y_test)
                                for k in shift_pixels]
                    for direction, step in DIRECTIONS.items()})
                if verbose:
                    print(f"== {name} on the left half of 28x{CANVAS_WIDTH}, seed {seed}",
                          flush=True)
                model = _train(name, wide_train, y_train, seed=seed, epochs=epochs,
                               batch_size=batch_size, optimizer=optimizer, verbose=verbose)
                canvas_runs.append([_accuracy(model, name, canvas(x_test, offset), y_test)
                                    for offset in offsets])
                result["runs"].append({"model": name, "seed": seed, "shifts": shift_runs[-1],
                                       "canvas": canvas_runs[-1]})
            result["shifts"][name] = {direction: np.mean([run[direction] for run in shift_runs],
                                                         axis=0).tolist()
                                      for direction in DIRECTIONS}
            result["canvas"][name] = np.mean(canvas_runs, axis=0).tolist()
            # Rewritten after every model: an interrupted study keeps what it measured.
            _save(result, out)
    print(format_tables(result))
    if verbose:
        print(f"minicnn: wrote {out / JSON_FILE}, {out / MARKDOWN_FILE}, {out / PLOT_FILE}")
    return result

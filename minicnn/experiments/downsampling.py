"""Why downsample, and why max pooling? The book's question, measured on MNIST.

Four versions of the book's convnet, trained with the same budget (optimizer, batch
size, epochs, data, seed) and compared on parameters, test accuracy and seconds per
epoch:

=================  ===========================================================
max-pool           the book's convnet: Conv 32 -> MaxPool -> Conv 64 -> MaxPool
                   -> Conv 64 -> Flatten -> Dense 64 -> Dense 10
avg-pool           the same with AveragePooling2D in place of MaxPooling2D
strided-conv       no pooling layers; the convolution each pool followed takes
                   strides=2 instead (the book: "use strides in the prior
                   convolution layer"); everything else unchanged
no-downsampling    the book's ``model_no_max_pool`` (three 3x3 convolutions,
                   55,744 parameters) with a Flatten + Dense 10 softmax head
=================  ===========================================================

It also reports, from the no-downsampling model's shapes, what the book's hypothetical
``Dense(512)`` on its final 22x22x64 map would cost (15.8 million parameters).

A single run's accuracy after two epochs is noisy (see :func:`run`); ``--seeds 0 1 2``
runs every model once per seed and the table shows the means and the accuracy's range.

Outputs in ``OUT``: ``downsampling.json`` (every number, the histories, the options),
``downsampling.md`` (the table) and ``downsampling.png`` (bar charts). They are
rewritten after each model, so an interrupted study keeps what it measured.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from math import prod
from pathlib import Path
from typing import Any

from minicnn.shapes import format_shape

__all__ = ["VARIANTS", "build_variant", "dense_on_unpooled_map_parameters", "run", "format_table"]

JSON_FILE = "downsampling.json"
MARKDOWN_FILE = "downsampling.md"
PLOT_FILE = "downsampling.png"

# The book's hypothetical classifier on the unpooled map: "a Dense layer of size 512".
HYPOTHETICAL_DENSE_UNITS = 512


def _convnet(pooling: str | None, conv_strides: int):
    """The book's convnet with a choice of downsampling.

    Args:
        pooling: ``"max"``, ``"avg"`` or None (no pooling layers).
        conv_strides: stride of the two convolutions that a pooling layer follows
            (1 with pooling, 2 for the strided version).
    """
    from minicnn.layers import AveragePooling2D, Conv2D, Dense, Flatten, Input, MaxPooling2D
    from minicnn.models import Sequential

    pool_class = {"max": MaxPooling2D, "avg": AveragePooling2D, None: None}[pooling]
    layers: list = [Input((28, 28, 1))]
    for filters in (32, 64):
        layers.append(Conv2D(filters, (3, 3), strides=conv_strides, activation="relu"))
        if pool_class is not None:
            layers.append(pool_class((2, 2)))
    layers += [Conv2D(64, (3, 3), activation="relu"), Flatten(),
               Dense(64, activation="relu"), Dense(10, activation="softmax")]
    return Sequential(layers)


def _no_downsampling():
    from minicnn.applications.mnist_models import mnist_no_max_pool

    return mnist_no_max_pool(with_head=True)


# name -> (what it is, builder); the order is the table's.
VARIANTS: dict[str, tuple[str, Callable[[], Any]]] = {
    "max-pool": ("MaxPooling2D 2x2 after conv 1 and 2 (the book's convnet)",
                 lambda: _convnet("max", 1)),
    "avg-pool": ("AveragePooling2D 2x2 after conv 1 and 2", lambda: _convnet("avg", 1)),
    "strided-conv": ("conv 1 and 2 with strides=2, no pooling", lambda: _convnet(None, 2)),
    "no-downsampling": ("three 3x3 convs, then Flatten + Dense 10", _no_downsampling),
}


def build_variant(name: str):
    """The model called ``name`` in :data:`VARIANTS` (a fresh, uncompiled Sequential)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown downsampling variant {name!r}; expected one of {list(VARIANTS)}")
    return VARIANTS[name][1]()


def feature_map_shape(model) -> tuple[int, ...]:
    """Shape (H, W, C) of the map the classifier sees: the input of the first Flatten."""
    from minicnn.layers import Flatten

    for layer in model.layers:
        if isinstance(layer, Flatten):
            return tuple(layer.input_shape[1:])
    return tuple(model.output_shape[1:])


def dense_on_unpooled_map_parameters(units: int = HYPOTHETICAL_DENSE_UNITS) -> dict[str, Any]:
    """What ``Dense(units)`` on the no-downsampling model's final map would cost.

    Computed from the model's shapes (not written down): a Dense layer on a flattened
    (H, W, C) map has ``H * W * C * units`` weights plus ``units`` biases.
    """
    from minicnn.applications.mnist_models import mnist_no_max_pool

    shape = tuple(mnist_no_max_pool(with_head=False).output_shape[1:])
    inputs = prod(shape)
    return {"feature_map": list(shape), "flattened": inputs, "units": units,
            "parameters": inputs * units + units}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _seed_text(seeds: Sequence[int | None]) -> str:
    if list(seeds) == [None]:
        return "one unseeded run"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(seed) for seed in seeds)


def _accuracy_text(row: dict[str, Any]) -> str:
    """``99.05 %``, or with several seeds the mean and the range: ``98.80 % (98.69-98.91)``."""
    accuracies = [100 * run["test_accuracy"] for run in row["runs"]]
    text = f"{100 * row['test_accuracy']:.2f} %"
    if len(accuracies) > 1:
        text += f" ({min(accuracies):.2f}-{max(accuracies):.2f})"
    return text


def format_table(rows: Sequence[dict[str, Any]], dense_cost: dict[str, Any],
                 budget: dict[str, Any]) -> str:
    """The study as Markdown: the budget, one row per model, the Dense 512 estimate.

    With several seeds each number is the mean over the seeds' runs; the accuracy also
    shows the range (lowest-highest).
    """
    seeds = budget["seeds"]
    lines = [
        "# Downsampling study (MNIST)",
        "",
        f"Same budget for every model: {_plural(budget['epochs'], 'epoch')}, batch {budget['batch_size']}, "
        f"{budget['optimizer']}, {budget['train_images']:,} training / {budget['test_images']:,} "
        f"test images, backend {budget['backend']}, {_seed_text(seeds)}, "
        f"{budget.get('cpu_count', '?')} CPU cores. Seconds are wall clock; on a shared machine "
        "they include time other processes held the cores, which CPU seconds (this process's "
        "threads, summed) do not."
        + (" Numbers are means over the seeds; the accuracy's range is in parentheses."
           if len(seeds) > 1 else ""),
        "",
        "| model | downsampling | map before Flatten | parameters | test accuracy | test loss "
        "| seconds per epoch | CPU seconds per epoch |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['description']} | {format_shape(row['feature_map'], 'x')} "
            f"| {row['parameters']:,} | {_accuracy_text(row)} | {row['test_loss']:.4f} "
            f"| {row['seconds_per_epoch']:.1f} | {row['cpu_seconds_per_epoch']:.1f} |")
    h, w, c = dense_cost["feature_map"]
    lines += [
        "",
        f"A Dense {dense_cost['units']} on the unpooled {h}x{w}x{c} map "
        f"({dense_cost['flattened']:,} values per image) would have {h}*{w}*{c}*{dense_cost['units']} "
        f"+ {dense_cost['units']} = {dense_cost['parameters']:,} parameters "
        f"(about {dense_cost['parameters'] / 1e6:.1f} million).",
        "",
    ]
    return "\n".join(lines)


def _plot(rows: Sequence[dict[str, Any]], path: Path, budget: dict[str, Any]) -> None:
    from minicnn.plots import plot_bars

    # Test *error* rather than accuracy: bars of 0.990 and 0.985 look identical from zero.
    plot_bars(
        [row["model"] for row in rows],
        [("test error (%)", [100 * (1 - row["test_accuracy"]) for row in rows], "{:.2f}"),
         ("parameters", [row["parameters"] for row in rows], "{:,}"),
         ("seconds per epoch", [row["seconds_per_epoch"] for row in rows], "{:.1f}"),
         ("CPU seconds per epoch", [row["cpu_seconds_per_epoch"] for row in rows], "{:.1f}")],
        path,
        title=f"MNIST downsampling study: {_plural(budget['epochs'], 'epoch')}, batch {budget['batch_size']}, "
              f"{budget['optimizer']}, backend {budget['backend']}, {_seed_text(budget['seeds'])}")


_AVERAGED = ("test_accuracy", "test_loss", "seconds_per_epoch", "cpu_seconds_per_epoch")


def _summarize(name: str, model, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: the variant, its shapes, and the means of its runs (kept in ``runs``)."""
    row: dict[str, Any] = {"model": name, "description": VARIANTS[name][0],
                           "feature_map": list(feature_map_shape(model)),
                           "parameters": model.count_params()}
    for key in _AVERAGED:
        row[key] = sum(run[key] for run in runs) / len(runs)
    row["runs"] = runs
    return row


def run(epochs: int = 2, out: str | os.PathLike[str] = "runs/downsampling", seed: int | None = None,
        batch_size: int = 64, optimizer: str = "rmsprop", backend: str | None = None,
        variants: Sequence[str] | None = None, verbose: int = 1,
        seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """Train every variant with the same budget; print and save the table and the plot.

    A single run's test accuracy after 2 epochs of RMSprop moves by several tenths of
    a point from one epoch to the next (measured: 98.68, 97.33, 98.50 % after epochs
    1-3 for one seed of the max-pool model), as much as the differences the study
    looks for; ``seeds`` repeats every model over several seeds and reports the mean
    and the range.

    Args:
        epochs: epochs per model (the study's budget).
        out: folder for ``downsampling.json``, ``downsampling.md`` and ``downsampling.png``.
        seed: one seed: ``set_random_seed(seed)`` before building each model, so each
            one starts from a repeatable draw. Ignored when ``seeds`` is given.
        batch_size: the same for every model (the book's convnet uses 64).
        optimizer: the same for every model (the book's ``"rmsprop"``).
        backend: kernel backend (default the active one; restored afterwards).
        variants: a subset of :data:`VARIANTS` names, in the order given; default all.
        verbose: passed to ``fit`` (1 a progress bar, 2 a line per epoch, 0 quiet).
        seeds: one run of every model per seed; the same seeds for every model.
    Returns:
        the dict written to ``downsampling.json``: ``rows`` (one per model: means over
        its runs, and ``runs`` with each seed's result and history),
        ``dense_512_on_unpooled_map``, ``budget``.
    """
    import minicnn
    from minicnn.backend import using_backend
    from minicnn.datasets import mnist
    from minicnn.experiments.train_mnist import compile_and_fit
    from minicnn.files import atomic_write, write_json

    names = list(VARIANTS) if variants is None else list(variants)
    for name in names:
        build_variant(name)  # fail on a bad name before any training
    run_seeds: list[int | None] = list(seeds) if seeds else [seed]
    if len(set(run_seeds)) != len(run_seeds):
        raise ValueError(f"seeds must be distinct, received {run_seeds}")
    out = Path(out)
    dense_cost = dense_on_unpooled_map_parameters()
    train, test = mnist.load_prepared(flatten=False)
    rows: list[dict[str, Any]] = []
    with using_backend(backend) as backend_name:
        budget = {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
                  "seeds": run_seeds, "backend": backend_name, "train_images": len(train[0]),
                  "test_images": len(test[0]), "minicnn_version": minicnn.__version__,
                  "cpu_count": os.cpu_count()}
        for name in names:
            runs: list[dict[str, Any]] = []
            for run_seed in run_seeds:
                if run_seed is not None:
                    minicnn.set_random_seed(run_seed)
                model = build_variant(name)
                if verbose:
                    print(f"\n== {name}: {VARIANTS[name][0]} ({model.count_params():,} parameters)"
                          + ("" if run_seed is None else f", seed {run_seed}"), flush=True)
                result = compile_and_fit(model, train, test, epochs=epochs, batch_size=batch_size,
                                         optimizer=optimizer, verbose=verbose)
                runs.append({"seed": run_seed, **result})
                if verbose:
                    print(f"{name}: test accuracy {result['test_accuracy']:.4f}, "
                          f"{result['seconds_per_epoch']:.1f} s per epoch "
                          f"({result['cpu_seconds_per_epoch']:.1f} s of CPU time)", flush=True)
                # Rewritten after every run: an interrupted study keeps what it measured.
                current = rows + [_summarize(name, model, runs)]
                write_json(out / JSON_FILE, {"rows": current,
                                             "dense_512_on_unpooled_map": dense_cost,
                                             "budget": budget})
                table = format_table(current, dense_cost, budget)
                atomic_write(out / MARKDOWN_FILE, lambda handle: handle.write(table.encode()))
                _plot(current, out / PLOT_FILE, budget)
            rows = current
    print(format_table(rows, dense_cost, budget))
    if verbose:
        print(f"minicnn: wrote {out / JSON_FILE}, {out / MARKDOWN_FILE}, {out / PLOT_FILE}")
    return {"rows": rows, "dense_512_on_unpooled_map": dense_cost, "budget": budget}

"""Keras beside minicnn: Keras's own build of every registry model
(:func:`keras_reference_model`, made without minicnn, so a comparison checks minicnn
and not the bridge) and the row-by-row verdict between the two summaries
(``minicnn summary NAME --keras``)."""

from __future__ import annotations

import numpy as np

from minicnn.interop.keras_import import import_keras
from minicnn.models import Sequential
from minicnn.shapes import format_shape

__all__ = ["compare_summaries", "format_verdict", "keras_reference_model",
           "keras_summary_rows", "keras_summary_totals"]


def keras_summary_rows(keras_model) -> list[tuple[str, str, str]]:
    """(``name (Type)``, output shape, parameter count) per Keras layer, formatted as
    :func:`minicnn.summary.summary_rows` formats minicnn's."""
    rows = []
    for layer in keras_model.layers:
        shape = tuple(layer.output.shape)
        rows.append((f"{layer.name} ({type(layer).__name__})", format_shape(shape),
                     f"{layer.count_params():,}"))
    return rows


def keras_summary_totals(keras_model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a Keras model."""
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in keras_model.non_trainable_weights)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def compare_summaries(model: Sequential, keras_model) -> tuple[list[dict], bool]:
    """Row-by-row verdict between minicnn's summary and Keras's.

    Keras lists a functional model's ``InputLayer`` as a row; a Sequential (minicnn's,
    like Keras's own) does not, so those rows are reported as skipped, not compared.

    Returns:
        (rows, all_equal); each row is a dict with ``minicnn`` and ``keras`` (the
        three cells, or None when one side has no such row), ``equal`` (bool, or
        None for skipped rows) and ``differences`` (which of name/type, output
        shape, parameters differ).
    """
    from minicnn.summary import summary_rows, summary_totals

    keras = import_keras()
    keras_rows = keras_summary_rows(keras_model)
    skipped = [row for row, layer in zip(keras_rows, keras_model.layers)
               if isinstance(layer, keras.layers.InputLayer)]
    compared = [row for row in keras_rows if row not in skipped]
    ours = summary_rows(model)
    verdict: list[dict] = [{"minicnn": None, "keras": row, "equal": None,
                            "differences": ["Keras lists the functional model's input; a "
                                            "Sequential does not (not a layer)"]}
                           for row in skipped]
    all_equal = len(ours) == len(compared)
    columns = ("layer (type)", "output shape", "parameters")
    for index in range(max(len(ours), len(compared))):
        mine = ours[index] if index < len(ours) else None
        theirs = compared[index] if index < len(compared) else None
        if mine is None or theirs is None:
            differences = ["missing on one side"]
        else:
            differences = [column for column, a, b in zip(columns, mine, theirs) if a != b]
        all_equal &= not differences
        verdict.append({"minicnn": mine, "keras": theirs, "equal": not differences,
                        "differences": differences})
    totals = summary_totals(model)
    keras_totals = keras_summary_totals(keras_model)
    for key in ("total", "trainable", "non_trainable"):
        mine, theirs = totals[key][0], keras_totals[key]
        equal = mine == theirs
        all_equal &= equal
        verdict.append({"minicnn": (f"{key} params", "", f"{mine:,}"),
                        "keras": (f"{key} params", "", f"{theirs:,}"), "equal": equal,
                        "differences": [] if equal else ["parameters"]})
    return verdict, all_equal


def format_verdict(verdict: list[dict]) -> str:
    """The verdict as a plain-text table: one line per row, EQUAL / DIFFERS / skipped."""
    lines = []
    for row in verdict:
        mine, theirs = row["minicnn"], row["keras"]
        label = {True: "EQUAL  ", False: "DIFFERS", None: "skipped"}[row["equal"]]
        shown = mine or theirs
        line = f"{label}  {shown[0]:<36} {shown[1]:<22} {shown[2]:>12}"
        if row["equal"] is False:
            line += f"   minicnn={mine} keras={theirs} ({', '.join(row['differences'])})"
        elif row["equal"] is None:
            line += f"   ({row['differences'][0]})"
        lines.append(line)
    return "\n".join(lines)


def keras_reference_model(name: str):
    """Keras's own build of the model called ``name`` in
    :data:`minicnn.applications.registry.MODEL_NAMES`, made independently of minicnn
    (so comparing the two checks minicnn, not the bridge)."""
    keras = import_keras()
    layers = keras.layers
    if name == "mnist-convnet":
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
    if name == "mnist-dense":
        return keras.Sequential([keras.Input((28 * 28,)),
                                 layers.Dense(512, activation="relu"),
                                 layers.Dense(10, activation="softmax")])
    if name == "no-max-pool":
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
        ])
    if name == "vgg16-base":
        return keras.applications.VGG16(weights=None, include_top=False,
                                        input_shape=(150, 150, 3))
    if name == "cats-dogs-convnet":
        blocks = []
        for filters in (32, 64, 128, 128):
            blocks += [layers.Conv2D(filters, (3, 3), activation="relu"),
                       layers.MaxPooling2D((2, 2))]
        return keras.Sequential([
            keras.Input((150, 150, 3)),
            *blocks,
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ])
    raise ValueError(f"no Keras reference model called {name!r}")

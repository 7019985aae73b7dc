"""``minicnn summary NAME|PATH [--keras]``: a model's Keras-style summary, for a named
model or a saved model file, optionally beside Keras's own with a row-by-row verdict."""

from __future__ import annotations

import argparse
from pathlib import Path

from minicnn.applications.registry import MODEL_NAMES, build_model

MODEL_FILE_SUFFIXES = (".npz", ".keras", ".h5")


def register(commands) -> None:
    """Add ``summary`` to the subparsers object ``commands``."""
    parser = commands.add_parser(
        "summary", help="print a model's Keras-style summary (a named model or a saved file)")
    parser.add_argument("model", metavar="NAME|PATH",
                        help="a named model (" + ", ".join(MODEL_NAMES) + ") or a saved model "
                             "file (" + ", ".join(MODEL_FILE_SUFFIXES) + ", e.g. "
                             "runs/mnist/model.npz)")
    parser.add_argument("--keras", action="store_true",
                        help="named models: also build the model with Keras, print its "
                             "summary and a row-by-row verdict (exit status 1 on any "
                             "difference)")
    parser.set_defaults(run=run)


def load(name_or_path: str):
    """The named model, built; or the model saved at ``name_or_path`` (uncompiled)."""
    if name_or_path in MODEL_NAMES:
        return build_model(name_or_path)
    path = Path(name_or_path)
    if path.suffix not in MODEL_FILE_SUFFIXES and not path.exists():
        raise ValueError(f"{name_or_path!r} is not a model name ({', '.join(MODEL_NAMES)}) "
                         f"or a model file ({', '.join(MODEL_FILE_SUFFIXES)})")
    from minicnn.models import load_model

    return load_model(path, compile=False)


def run(arguments: argparse.Namespace) -> int:
    """Print minicnn's summary; with --keras also Keras's and a row-by-row verdict.

    Exit status 0 when every row (name, type, output shape, parameters) and every
    total agree, 1 on any mismatch.
    """
    if arguments.keras and arguments.model not in MODEL_NAMES:
        raise ValueError("--keras compares with Keras's own build of a named model ("
                         + ", ".join(MODEL_NAMES) + "), not a model file")
    model = load(arguments.model)
    model.summary()
    if not arguments.keras:
        return 0
    from minicnn.interop import keras as keras_bridge

    keras_model = keras_bridge.keras_reference_model(arguments.model)
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

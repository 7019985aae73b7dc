"""``minicnn summary NAME [--keras]``: a model's Keras-style summary, optionally beside
Keras's own and with a row-by-row verdict."""

from __future__ import annotations

import argparse

from minicnn.applications.registry import MODEL_NAMES, build_model


def register(commands) -> None:
    """Add ``summary`` to the subparsers object ``commands``."""
    parser = commands.add_parser("summary", help="print a model's Keras-style summary")
    parser.add_argument("name", choices=MODEL_NAMES)
    parser.add_argument("--keras", action="store_true",
                        help="also build the model with Keras, print its summary and a "
                             "row-by-row verdict (exit status 1 on any difference)")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
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

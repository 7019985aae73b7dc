"""summary(): Keras 3's rows, names and totals; the book's numbers."""

from __future__ import annotations

import pytest

import minicnn
from minicnn import layers
from minicnn.applications import mnist_convnet, mnist_no_max_pool


@pytest.fixture(autouse=True)
def fresh_names():
    minicnn.utils.clear_session()
    yield
    minicnn.utils.clear_session()


def summary_text(model, line_length=None) -> str:
    captured = []
    model.summary(line_length=line_length, print_fn=captured.append)
    return "".join(captured)


def test_seed_model_without_pooling_rows_and_total():
    text = summary_text(mnist_no_max_pool(with_head=False))
    assert "conv2d (Conv2D)" in text and "conv2d_1 (Conv2D)" in text and "conv2d_2 (Conv2D)" in text
    for shape, params in [("(None, 26, 26, 32)", "320"), ("(None, 24, 24, 64)", "18,496"),
                          ("(None, 22, 22, 64)", "36,928")]:
        row = next(line for line in text.splitlines() if shape in line)
        assert row.rstrip(" │").endswith(params), row
    assert " Total params: 55,744 (217.75 KB)" in text
    assert " Trainable params: 55,744 (217.75 KB)" in text
    assert " Non-trainable params: 0 (0.00 B)" in text


def test_mnist_convnet_totals_93322():
    model = mnist_convnet()
    assert model.count_params() == 93_322
    text = summary_text(model)
    assert " Total params: 93,322 (364.54 KB)" in text
    assert [layer.name for layer in model.layers] == [
        "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2", "flatten",
        "dense", "dense_1"]


def test_frozen_layers_count_as_non_trainable():
    model = minicnn.Sequential([layers.Conv2D(32, (3, 3), input_shape=(28, 28, 1)),
                                layers.Dropout(0.5)])
    model.layers[0].trainable = False
    text = summary_text(model)
    assert " Trainable params: 0 (0.00 B)" in text
    assert " Non-trainable params: 320 (1.25 KB)" in text


def test_unbuilt_model_prints_question_marks():
    text = summary_text(minicnn.Sequential([layers.Dense(3)]))
    assert "dense (Dense)" in text and "?" in text and "0 (unbuilt)" in text


@pytest.mark.keras
def test_summary_text_equals_keras_character_for_character():
    keras = pytest.importorskip("keras")

    def build(library):
        return library.Sequential([
            library.Input((28, 28, 1)),
            library.layers.Conv2D(32, (3, 3), activation="relu"),
            library.layers.MaxPooling2D((2, 2)),
            library.layers.Conv2D(64, (3, 3), padding="same"),
            library.layers.AveragePooling2D((2, 2), padding="same"),
            library.layers.Flatten(),
            library.layers.Dropout(0.5),
            library.layers.Dense(10, activation="softmax"),
        ])

    keras.backend.clear_session()
    keras_model = build(keras)
    ours = build(minicnn)
    for line_length in (None, 98):
        keras_lines = []
        keras_model.summary(line_length=line_length, print_fn=keras_lines.append)
        assert summary_text(ours, line_length) == "".join(keras_lines)


@pytest.mark.keras
def test_summary_after_training_shows_optimizer_params_like_keras():
    keras = pytest.importorskip("keras")
    import numpy as np

    keras.backend.clear_session()
    keras_model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"),
                                    keras.layers.Dense(3, activation="softmax")])
    ours = minicnn.Sequential([minicnn.Input((6,)), layers.Dense(4, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((8, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    for model in (keras_model, ours):
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        model.train_on_batch(x, y)
    keras_lines = []
    keras_model.summary(print_fn=keras_lines.append)
    text = summary_text(ours)
    assert " Optimizer params: " in text
    assert text == "".join(keras_lines)

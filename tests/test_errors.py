"""Bad input gets a clear error, of the documented type, naming what was wrong."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import layers
from minicnn.utils import to_categorical


def convnet() -> minicnn.Sequential:
    model = minicnn.Sequential([
        minicnn.Input((8, 8, 1)),
        layers.Conv2D(4, (3, 3), activation="relu", name="first_conv"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


X = np.zeros((4, 8, 8, 1), np.float32)
Y = to_categorical([0, 1, 2, 0], 3)


@pytest.mark.parametrize("x, fragment", [
    (np.zeros((4, 8, 8), np.float32), "expected shape=(None, 8, 8, 1), found shape=(4, 8, 8)"),
    (np.zeros((4, 9, 8, 1), np.float32), "expected shape=(None, 8, 8, 1), found shape=(4, 9, 8, 1)"),
    (np.zeros((4, 8, 8, 3), np.float32), "first_conv"),
])
def test_wrong_input_shape_or_rank_names_layer_and_shapes(x, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        convnet().predict(x, verbose=0)


def test_layer_called_directly_names_itself_and_shapes():
    layer = layers.Conv2D(2, 3, name="direct")
    layer.build((None, 5, 5, 1))
    with pytest.raises(ValueError, match=r"'direct'.*expected shape=\(None, 5, 5, 1\), found "
                                         r"shape=\(1, 5, 5, 2\)"):
        layer(np.zeros((1, 5, 5, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(bad):
    x = X.copy()
    x[1, 2, 3, 0] = bad
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        convnet().fit(x, Y, verbose=0)


def test_non_numeric_input_is_refused():
    with pytest.raises(TypeError, match="array of numbers"):
        convnet().predict(np.array([["a"] * 8] * 8).reshape(1, 8, 8, 1), verbose=0)


def test_empty_and_mismatched_arrays():
    with pytest.raises(ValueError, match="empty"):
        convnet().fit(X[:0], Y[:0], verbose=0)
    with pytest.raises(ValueError, match="same number of samples.*4 inputs and 3 targets"):
        convnet().fit(X, Y[:3], verbose=0)


@pytest.mark.parametrize("argument, value", [("batch_size", 0), ("batch_size", -3),
                                             ("epochs", 0), ("batch_size", 2.5)])
def test_batch_size_and_epochs_must_be_positive_integers(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer, received"):
        convnet().fit(X, Y, verbose=0, **{argument: value})


@pytest.mark.parametrize("make, fragment", [
    (lambda: layers.Conv2D(0, 3), "filters must be a positive integer, received 0"),
    (lambda: layers.Conv2D(-2, 3), "received -2"),
    (lambda: layers.Conv2D(4, (3, 0)), "kernel_size must be positive"),
    (lambda: layers.Conv2D(4, 3, strides="2"), "strides must be an integer or a pair"),
    (lambda: layers.Conv2D(4, 3, padding="full"), "padding must be 'valid' or 'same', received 'full'"),
    (lambda: layers.Conv2D(4, 3, activation="relu6"), "relu6"),
    (lambda: layers.Dense(0), "units must be a positive integer"),
    (lambda: layers.Dropout(1.5), "rate must be a number in"),
    (lambda: layers.MaxPooling2D(0), "pool_size must be positive"),
    (lambda: layers.Dense(3, kernel_initializer="glorot_fancy"), "glorot_fancy"),
])
def test_invalid_layer_configs(make, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_kernel_larger_than_valid_input():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) is larger than its 4x4 input"):
        minicnn.Sequential([minicnn.Input((4, 4, 1)), layers.Conv2D(2, 5)])
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) is larger than its 2x2 input"):
        minicnn.Sequential([minicnn.Input((2, 2, 1)), layers.MaxPooling2D(3)])


@pytest.mark.parametrize("argument, value, fragment", [
    ("loss", "categorical_crossentropyy", "unknown loss 'categorical_crossentropyy'"),
    ("optimizer", "adamw", "unknown optimizer 'adamw'"),
    ("metrics", ["precision"], "unknown metric 'precision'"),
])
def test_unknown_names_in_compile(argument, value, fragment):
    model = convnet()
    arguments = {"optimizer": "sgd", "loss": "mse", **{argument: value}}
    with pytest.raises(ValueError, match=fragment):
        model.compile(**arguments)


def test_set_weights_with_wrong_count_or_shapes():
    model = convnet()
    weights = model.get_weights()
    with pytest.raises(ValueError, match="weight list of length 3, but the model was expecting 4"):
        model.set_weights(weights[:3])
    weights[2] = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"weight 2 .* has shape \(144, 3\), received an array "
                                         r"of shape \(5, 3\)"):
        model.set_weights(weights)
    with pytest.raises(ValueError, match="expects 2 weights"):
        model.layers[0].set_weights([np.zeros((3, 3, 1, 4))])


def test_fit_before_compile():
    model = minicnn.Sequential([minicnn.Input((8, 8, 1)), layers.Flatten(), layers.Dense(3)])
    for call in (lambda: model.fit(X, Y, verbose=0), lambda: model.evaluate(X, Y, verbose=0),
                 lambda: model.train_on_batch(X, Y)):
        with pytest.raises(RuntimeError, match="must call compile()"):
            call()


def test_labels_not_matching_the_loss():
    model = convnet()
    with pytest.raises(ValueError, match="use sparse_categorical_crossentropy"):
        model.fit(X, np.array([0, 1, 2, 0]), verbose=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="labels in"):
        model.fit(X, np.array([0, 1, 7, 0]), verbose=0)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        minicnn.set_backend("cuda")

"""``minicnn explain``: the arithmetic of each layer, and a convolution by hand.

The numbers are checked against things computed another way: output sizes against
the layers' own shapes, receptive fields against the support of a real input gradient
(backpropagated by the engine through linear layers), multiply-adds against the book's
MNIST convnet counted by hand, and the walked-through convolution against a direct
sliding-window sum (and, marked ``keras``, TensorFlow's conv2d).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import Input, Sequential, cli, explain, layers
from minicnn.naming import clear_session
from minicnn.viz.graph import backpropagate, forward_all


# Every test here runs on the numpy backend (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("numpy_backend")


def mnist_convnet() -> Sequential:
    clear_session()
    return explain.resolve_model("mnist-convnet")


def test_mnist_convnet_numbers() -> None:
    rows = {row.name: row for row in explain.model_arithmetic(mnist_convnet())}
    # receptive fields: 3, then +1 (pool 2, jump 1), +2*2 (conv 3, jump 2), +2, +2*4
    assert [rows[name].receptive_field for name in
            ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2")] == \
        [(3, 3), (4, 4), (8, 8), (10, 10), (18, 18)]
    assert rows["conv2d_2"].jump == (4, 4)
    assert rows["flatten"].receptive_field is None and rows["dense"].receptive_field is None
    # multiply-adds counted by hand: OH*OW*F*KH*KW*C, D*U
    assert rows["conv2d"].multiply_adds == 26 * 26 * 32 * 9
    assert rows["conv2d_1"].multiply_adds == 11 * 11 * 64 * 9 * 32 == 2_230_272
    assert rows["conv2d_2"].multiply_adds == 3 * 3 * 64 * 9 * 64
    assert rows["dense"].multiply_adds == 576 * 64 and rows["dense_1"].multiply_adds == 640
    assert rows["max_pooling2d"].multiply_adds == 0
    # im2col patch matrices (per image)
    assert rows["conv2d"].patch_matrix == (676, 9)
    assert rows["conv2d_1"].patch_matrix == (121, 288)
    assert rows["conv2d_2"].patch_matrix == (9, 576)
    assert rows["dense"].patch_matrix is None
    assert rows["conv2d_1"].formula.startswith(
        "OH = (H + pad_top + pad_bottom - KH) // SH + 1 = (13 + 0 + 0 - 3) // 1 + 1 = 11")
    # README.md, "Speed": a training step of the MNIST convnet on 64 images is 1.05 GFLOP
    assert explain.training_step_flops(mnist_convnet(), 64) / 1e9 == pytest.approx(1.05, abs=0.01)


def test_explain_model_text() -> None:
    text = explain.explain_model(mnist_convnet(), batch=64, label="mnist-convnet")
    assert text.startswith("Model 'mnist-convnet': input 28x28x1, 93,322 parameters, batch N = 64")
    assert re.search(r"conv2d_1\s+11x11x64\s+8x8\s+142,737,408\s+\(7,744, 288\)", text)
    assert f"{64 * 2_794_240:,}" in text          # forward total for the batch
    assert "= 1.05 GFLOP" in text
    assert "(13 + 0 + 0 - 3) // 1 + 1 = 11" in text
    assert "comparisons OH*OW*C*PH*PW = 13*13*32*2*2 = 21,632" in text


@settings(max_examples=40, deadline=None)
@given(size=st.integers(5, 30), kernel=st.integers(1, 5), stride=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), pool=st.integers(1, 3))
def test_formula_numbers_are_the_layers_output_sizes(size, kernel, stride, padding, pool) -> None:
    clear_session()
    model = Sequential([Input((size, size + 1, 2)),
                        layers.Conv2D(3, (kernel, kernel), strides=(stride, stride),
                                      padding=padding),
                        layers.MaxPooling2D((pool, pool), padding="same")])
    for row, layer in zip(explain.model_arithmetic(model), model.layers):
        numbers = [int(n) for n in re.findall(r"= (\d+)(?:\s|;|$)", row.formula)]
        # the formula's results for OH (and OW when it differs) are the layer's sizes
        assert numbers[0] == layer.output_shape[1]
        assert layer.output_shape[2] in numbers or "OW likewise" in row.formula


def test_receptive_field_is_the_support_of_the_input_gradient() -> None:
    """Linear layers and average pooling: every weight of the field reaches the input."""
    clear_session()
    minicnn.set_random_seed(0)
    model = Sequential([Input((40, 40, 1), dtype="float64"),
                        layers.Conv2D(2, (3, 3), strides=(2, 2), padding="same", dtype="float64"),
                        layers.AveragePooling2D((2, 2), strides=(1, 1), dtype="float64"),
                        layers.Conv2D(2, (3, 2), dtype="float64"),
                        layers.AveragePooling2D((3, 3), dtype="float64"),
                        layers.Conv2D(1, (2, 2), dtype="float64")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in model.get_weights()])
    rows = explain.model_arithmetic(model)
    x = rng.random((1, 40, 40, 1))
    for index, row in enumerate(rows):
        output = forward_all(model, x, stop=index)[-1]
        gradient = np.zeros_like(output)
        i, j = output.shape[1] // 2, output.shape[2] // 2   # an interior output
        gradient[0, i, j, 0] = 1
        support = np.argwhere(backpropagate(model, gradient, index, 0)[0, ..., 0] != 0)
        extent = tuple(int(v) for v in support.max(axis=0) - support.min(axis=0) + 1)
        assert extent == row.receptive_field, row.name


def test_explain_conv_walks_a_convolution() -> None:
    text = explain.explain_conv()
    x, kernel = explain.tiny_problem(5, 3, 1, 0)
    expected = np.array([[np.sum(x[i:i + 3, j:j + 3] * kernel) for j in range(3)]
                         for i in range(3)])
    for i in range(3):
        for j in range(3):
            assert f"-> lands at out[{i}, {j}] = {expected[i, j]}" in text
    assert "(5 + 0 + 0 - 3) // 1 + 1 = 3" in text
    assert "equal to step 4" in text
    assert "reference loops: same" in text and "numpy backend: same" in text
    assert "DIFFERENT" not in text


@pytest.mark.parametrize("size, kernel_size, stride, padding, channels",
                         [(6, 3, 2, "same", 2), (4, 2, 1, "same", 1), (7, 3, 3, "valid", 3)])
def test_explain_conv_other_shapes(size, kernel_size, stride, padding, channels) -> None:
    text = explain.explain_conv(size, kernel_size, stride, padding, channels, seed=3,
                                show_all=True)
    assert "DIFFERENT" not in text and "equal to step 4" in text
    clear_session()
    layer = layers.Conv2D(1, kernel_size, strides=stride, padding=padding, use_bias=False)
    x, kernel = explain.tiny_problem(size, kernel_size, channels, 3)
    layer.build((None, size, size, channels))
    layer.set_weights([kernel[..., np.newaxis].astype(np.float32)])
    output = layer(x[np.newaxis].astype(np.float32))[0, ..., 0]
    for i, j in np.ndindex(*output.shape):
        assert f"-> lands at out[{i}, {j}] = {int(output[i, j])}" in text


@pytest.mark.keras
def test_explain_conv_equals_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    x, kernel = explain.tiny_problem(6, 3, 2, 1)
    text = explain.explain_conv(6, 3, 2, "same", 2, seed=1, show_all=True)
    expected = tf.nn.conv2d(x[np.newaxis].astype(np.float32),
                            kernel[..., np.newaxis].astype(np.float32), 2, "SAME").numpy()
    for i, j in np.ndindex(3, 3):
        assert f"-> lands at out[{i}, {j}] = {int(expected[0, i, j, 0])}" in text


def test_cli_explain(tmp_path: Path, capsys) -> None:
    assert cli.main(["explain", "conv", "--size", "4", "--kernel-size", "2"]) == 0
    assert "lands at out[2, 2]" in capsys.readouterr().out
    assert cli.main(["explain", "mnist-convnet"]) == 0
    assert "forward total" in capsys.readouterr().out
    assert cli.main(["explain", "vgg16-base"]) == 0
    printed = capsys.readouterr().out
    assert "14,714,688 parameters" in printed and "block5_pool" in printed
    model = mnist_convnet()
    model.save(tmp_path / "model.npz")
    assert cli.main(["explain", str(tmp_path / "model.npz"), "--batch", "2"]) == 0
    assert "batch N = 2" in capsys.readouterr().out
    assert cli.main(["explain", "resnet"]) == 2
    assert "is not 'conv', a model name" in capsys.readouterr().err
    assert cli.main(["explain", "conv", "--kernel-size", "9"]) == 2
    assert "explain conv wants" in capsys.readouterr().err

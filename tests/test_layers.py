"""Every layer: the shape/parameter tier and the correctness tier.

Shape tier: output shapes and parameter counts equal the closed-form formulas on
hypothesis-drawn configurations, before any data flows.
Correctness tier: input and parameter gradients agree with central differences in
float64 on every backend, including "same" padding with even kernels, strides that
leave a remainder and pooling with partial windows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import layers
from tests.helpers import FLOAT64_GRADIENT, assert_close, numerical_gradient

BACKENDS = minicnn.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = minicnn.get_backend_name()
    minicnn.set_backend(request.param)
    yield request.param
    minicnn.set_backend(previous)


def same_or_valid_length(length: int, window: int, stride: int, padding: str) -> int:
    """The closed form the layers must follow."""
    if padding == "same":
        return math.ceil(length / stride)
    return (length - window) // stride + 1


# ------------------------------------------------------------------ shape tier
@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 12), width=st.integers(1, 12), channels=st.integers(1, 5),
       filters=st.integers(1, 6), kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.sampled_from(["valid", "same"]), use_bias=st.booleans())
def test_conv2d_output_shape_and_parameter_count(height, width, channels, filters, kernel,
                                                 strides, padding, use_bias):
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias)
    input_shape = (None, height, width, channels)
    if padding == "valid" and (height < kernel[0] or width < kernel[1]):
        with pytest.raises(ValueError, match="larger than"):
            layer.build(input_shape)
        return
    layer.build(input_shape)
    expected = (None, same_or_valid_length(height, kernel[0], strides[0], padding),
                same_or_valid_length(width, kernel[1], strides[1], padding), filters)
    assert layer.output_shape == expected
    assert layer.count_params() == kernel[0] * kernel[1] * channels * filters + filters * use_bias
    y = layer(np.zeros((2, height, width, channels), np.float32))
    assert y.shape == (2,) + expected[1:] and y.dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 12), width=st.integers(1, 12), channels=st.integers(1, 4),
       pool=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       strides=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       padding=st.sampled_from(["valid", "same"]),
       cls=st.sampled_from([layers.MaxPooling2D, layers.AveragePooling2D]))
def test_pooling_output_shape(height, width, channels, pool, strides, padding, cls):
    layer = cls(pool, strides=strides, padding=padding)
    step = pool if strides is None else strides
    assert layer.strides == step  # strides default to pool_size, as Keras
    input_shape = (None, height, width, channels)
    if padding == "valid" and (height < pool[0] or width < pool[1]):
        with pytest.raises(ValueError, match="larger than"):
            layer.build(input_shape)
        return
    layer.build(input_shape)
    assert layer.output_shape == (None, same_or_valid_length(height, pool[0], step[0], padding),
                                  same_or_valid_length(width, pool[1], step[1], padding), channels)
    assert layer.count_params() == 0


@settings(max_examples=40, deadline=None)
@given(inputs=st.integers(1, 50), units=st.integers(1, 50), use_bias=st.booleans())
def test_dense_and_flatten_shapes(inputs, units, use_bias):
    dense = layers.Dense(units, use_bias=use_bias)
    dense.build((None, inputs))
    assert dense.output_shape == (None, units)
    assert dense.count_params() == inputs * units + units * use_bias
    assert [w.shape for w in dense.get_weights()] == [(inputs, units)] + [(units,)] * use_bias
    flatten = layers.Flatten()
    flatten.build((None, 3, inputs, 2))
    assert flatten.output_shape == (None, 3 * inputs * 2)


def test_flatten_is_channels_last_order():
    x = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    assert_close(layers.Flatten()(x), x.reshape(2, -1), rtol=0, atol=0, what="flatten")


def test_weights_follow_keras_order_and_shapes():
    conv = layers.Conv2D(8, (3, 2))
    conv.build((None, 9, 9, 3))
    assert [w.shape for w in conv.get_weights()] == [(3, 2, 3, 8), (8,)]
    assert [v.name for v in conv.weights] == [f"{conv.name}/kernel", f"{conv.name}/bias"]


def test_dropout_is_inverted_and_only_active_in_training():
    layer = layers.Dropout(0.25, seed=3)
    x = np.ones((400, 50), np.float32)
    inference = layer(x, training=False)
    assert inference.shape == x.shape and inference.dtype == x.dtype
    assert_close(inference, x, rtol=0, atol=0, what="inference dropout")
    y = layer(x, training=True)
    kept = y != 0
    assert_close(y[kept], np.full(kept.sum(), 1 / 0.75, np.float32), rtol=1e-6, atol=0,
                 what="kept values are scaled by 1/(1-rate)")
    assert abs(1 - kept.mean() - 0.25) < 0.02  # the fraction dropped is the rate
    dx = layer.backward(np.ones_like(x))
    assert_close(dx, y, rtol=0, atol=0, what="dropout backward uses the same mask")


# ------------------------------------------------------------ correctness tier
def layer_gradient_check(layer, x: np.ndarray, seed: int = 0) -> None:
    """d(sum(y * R))/d(x) and d/d(each parameter) against central differences (float64)."""
    rng = np.random.default_rng(seed)
    y = layer(x, training=False)
    weights_r = rng.standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=False) * weights_r))

    loss()
    dx = layer.backward(weights_r.copy())
    analytic = {variable.name: variable.grad.copy() for variable in layer.weights}
    assert_close(dx, numerical_gradient(loss, x), **FLOAT64_GRADIENT,
                 what=f"{layer.name} input gradient")
    for variable in layer.weights:
        assert_close(analytic[variable.name], numerical_gradient(loss, variable.value),
                     **FLOAT64_GRADIENT, what=f"{variable.name} gradient")


CONV_CASES = [
    # (input HxW, channels, filters, kernel, strides, padding)
    ((6, 7), 2, 3, (3, 3), (1, 1), "valid"),
    ((6, 6), 2, 2, (2, 2), (1, 1), "same"),      # even kernel: odd padding goes bottom/right
    ((7, 5), 1, 2, (4, 2), (1, 1), "same"),
    ((7, 7), 2, 2, (3, 3), (2, 2), "valid"),     # stride leaves a remainder
    ((8, 7), 2, 2, (3, 2), (3, 2), "same"),
    ((5, 6), 3, 2, (2, 3), (2, 3), "same"),
]


@pytest.mark.parametrize("hw, channels, filters, kernel, strides, padding", CONV_CASES)
@pytest.mark.parametrize("activation", [None, "tanh"])
def test_conv2d_gradients_match_central_differences(backend, hw, channels, filters, kernel,
                                                    strides, padding, activation):
    rng = np.random.default_rng(1)
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                          activation=activation, dtype="float64")
    layer.build((None, *hw, channels))
    layer.bias.value[...] = rng.standard_normal(filters)
    layer_gradient_check(layer, rng.standard_normal((2, *hw, channels)))


POOL_CASES = [
    ((6, 6), (2, 2), None, "valid"),
    ((7, 5), (2, 2), None, "valid"),      # a remainder row/column is dropped
    ((7, 5), (2, 2), None, "same"),       # partial windows at the bottom/right
    ((7, 7), (3, 3), (2, 2), "valid"),    # overlapping windows
    ((6, 5), (3, 2), (2, 1), "same"),
]


@pytest.mark.parametrize("hw, pool, strides, padding", POOL_CASES)
@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling_gradients_match_central_differences(backend, hw, pool, strides, padding, cls):
    layer = cls(pool, strides=strides, padding=padding, dtype="float64")
    # Distinct values (a permutation) so the max is never tied: differentiable everywhere.
    x = np.random.default_rng(2).permutation(2 * hw[0] * hw[1] * 3).reshape(2, *hw, 3) * 0.1
    layer_gradient_check(layer, x.astype(np.float64))


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_gradients_match_central_differences(activation):
    rng = np.random.default_rng(3)
    layer = layers.Dense(4, activation=activation, dtype="float64")
    layer.build((None, 5))
    layer.bias.value[...] = rng.standard_normal(4)
    layer_gradient_check(layer, rng.standard_normal((3, 5)) + 0.05)


@pytest.mark.parametrize("layer", [layers.Flatten(dtype="float64"),
                                   layers.Activation("sigmoid", dtype="float64"),
                                   layers.Dropout(0.5, dtype="float64")])
def test_shape_and_activation_layers_gradients(layer):
    layer_gradient_check(layer, np.random.default_rng(4).standard_normal((2, 3, 4, 2)))


def test_max_pool_ties_send_gradient_once():
    x = np.ones((1, 4, 4, 1), np.float64)
    layer = layers.MaxPooling2D((2, 2), dtype="float64")
    layer(x)
    dx = layer.backward(np.ones((1, 2, 2, 1)))
    assert dx.sum() == 4 and np.count_nonzero(dx) == 4
    assert dx[0, 0, 0, 0] == 1  # the first maximum of the window, in row-major order


def test_model_gradient_through_whole_stack():
    """The model's backward equals central differences of the compiled loss (float64)."""
    rng = np.random.default_rng(5)
    model = minicnn.Sequential([
        minicnn.Input((6, 6, 2)),
        layers.Conv2D(3, (3, 3), padding="same", activation="tanh", dtype="float64"),
        layers.MaxPooling2D((2, 2), dtype="float64"),
        layers.Conv2D(2, (2, 2), activation="sigmoid", dtype="float64"),
        layers.AveragePooling2D((2, 2), padding="same", dtype="float64"),
        layers.Flatten(dtype="float64"),
        layers.Dense(3, activation="softmax", dtype="float64"),
    ])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = rng.standard_normal((4, 6, 6, 2))
    y = np.eye(3)[rng.integers(0, 3, 4)]

    def loss() -> float:
        return model.loss.value_and_output_gradient(y, model.forward(x, training=True), model.layers[-1])[0]

    loss()
    _, gradient, from_logits = model.loss.value_and_output_gradient(y, model.forward(x, True), model.layers[-1])
    dx = model.backward(gradient, from_logits=from_logits, need_input_grad=True)
    analytic = [variable.grad.copy() for variable in model.weights]
    assert_close(dx, numerical_gradient(loss, x), **FLOAT64_GRADIENT, what="model input grad")
    for variable, grad in zip(model.weights, analytic):
        assert_close(grad, numerical_gradient(loss, variable.value), **FLOAT64_GRADIENT,
                     what=variable.name)


@pytest.mark.parametrize("hw, channels, kernel", [((9, 9), 1, (3, 3)), ((7, 8), 3, (3, 2))])
def test_conv2d_relu_training_path_equals_the_unfused_one(backend, hw, channels, kernel):
    """Backends may fuse the ReLU into the convolution while training: same numbers."""
    rng = np.random.default_rng(6)
    layer = layers.Conv2D(5, kernel, padding="same", activation="relu", dtype="float64")
    layer.build((None, *hw, channels))
    layer.bias.value[...] = rng.standard_normal(5) * 0.1
    x = rng.standard_normal((2, *hw, channels))
    dy = rng.standard_normal((2, *hw, 5))
    results = []
    for training in (True, False):
        y = layer.forward(x, training=training)
        dx = layer.backward(dy)
        results.append((y, dx, layer.kernel.grad.copy(), layer.bias.grad.copy()))
    for fused, plain, what in zip(results[0], results[1], ["y", "dx", "dkernel", "dbias"]):
        assert_close(fused, plain, **FLOAT64_GRADIENT, what=f"{backend} fused ReLU {what}")

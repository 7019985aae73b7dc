"""minicnn against Keras on random small architectures: predictions and training steps.

Hypothesis draws a small convnet (Conv2D with valid/same padding and strides,
max/average pooling, Activation, Dropout, Flatten, Dense), builds it once in each
engine *independently* (minicnn layers and Keras layers from the same description),
copies the same starting weights into both with ``set_weights`` and checks

* ``predict`` equals Keras's (Dropout at inference is the identity);
* the weights after three ``train_on_batch`` steps equal Keras's, for SGD (plain,
  momentum, Nesterov), RMSprop (plain, centered with momentum) and Adam (plain,
  AMSGrad), with categorical cross-entropy on a softmax output (Keras's logits path)
  or mean squared error on a linear/tanh output.  Dropout is left out of these
  architectures: its random masks cannot be shared between the engines.

Tolerances (float32 round-off; the two engines sum products in different orders) are
named constants below, each with the largest difference measured on the examples CI
draws (derandomized, so the same ten architectures every run) and the margin allowed;
each bar fails if the measured figure gets ten times worse.

The adaptive optimizers divide each gradient by its own running magnitude (plus epsilon
1e-7), so a gradient that is float32 noise near zero in both engines (a sum that
cancels) is amplified to a step that is a visible, but still small, fraction of the
learning rate: their bar is in units of the learning rate.

Seen while measuring (not a minicnn bug): TensorFlow's oneDNN convolution returns
uninitialized values for a (1, 2) kernel with strides (1, 2) on an input 3 wide
(``TF_ENABLE_ONEDNN_OPTS=0`` gives the right values, which minicnn's three backends
give too); an architecture drawn outside CI's fixed examples can meet it.

Keras runs eagerly here (``run_eagerly=True``): the same update code, without a
tf.function trace per drawn model, which keeps this file fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import layers, optimizers
from tests.helpers import assert_close, assert_weights_close

pytestmark = [pytest.mark.keras,
              # Keras 3 converting its variables with NumPy 2 (not ours to fix).
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]

ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid"]

# predict on O(1) outputs: measured at most 1.8e-7 apart; bar 1e-6 (5.6x).
PREDICT_TOLERANCE = dict(rtol=0.0, atol=1e-6)
# losses returned by train_on_batch (O(1)): measured at most 2.4e-7; bar 1e-6 (4.2x).
LOSS_TOLERANCE = dict(rtol=0.0, atol=1e-6)
# weights after three SGD steps (O(1) weights): measured at most 6.0e-8; bar 5e-7 (8.3x).
SGD_WEIGHTS_TOLERANCE = dict(rtol=0.0, atol=5e-7)
# weights after three RMSprop/Adam steps, in units of the learning rate: measured at most
# 8.7e-5 x lr (centered RMSprop with momentum); bar 5e-4 x lr (5.7x).
ADAPTIVE_WEIGHTS_LR_UNITS = 5e-4
# The chapter's convnet, two RMSprop steps at lr 1e-3: weights measured at most
# 6.5e-5 x lr apart (two weight draws); bar 5e-4 x lr (7.7x).  Losses (about 2.3)
# measured 2.4e-7 apart; bar 1e-6 (4.2x).
SEED_CONVNET_LR_UNITS = 5e-4
SEED_CONVNET_LOSS_TOLERANCE = dict(rtol=0.0, atol=1e-6)

# (name, minicnn constructor arguments == Keras constructor arguments)
OPTIMIZERS = [
    ("SGD", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True)),
    ("Adam", dict(learning_rate=0.01)),
    ("Adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, amsgrad=True)),
]


def keras():
    return pytest.importorskip("keras")


# ------------------------------------------------------------------ random architectures
def _output_size(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


@st.composite
def architectures(draw, allow_dropout: bool = True, head: str | None = None):
    """(input_shape, [(class name, arguments)]) of a small valid Sequential convnet.

    ``head``: "softmax" (a Dense softmax output) or "regression" (a linear or tanh
    Dense output); None lets hypothesis choose either.
    """
    input_shape = (draw(st.integers(5, 10)), draw(st.integers(5, 10)), draw(st.integers(1, 3)))
    height, width = input_shape[:2]
    spec = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["Conv2D", "Conv2D", "MaxPooling2D", "AveragePooling2D"]))
        window = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        padding = draw(st.sampled_from(["valid", "same"]))
        if height < window[0] or width < window[1]:
            padding = "same"  # a "valid" window larger than its input is an error in both
        if kind == "Conv2D":
            arguments = dict(filters=draw(st.integers(1, 4)), kernel_size=window, strides=strides,
                             padding=padding, activation=draw(st.sampled_from(ACTIVATIONS)),
                             use_bias=draw(st.booleans()))
        else:
            arguments = dict(pool_size=window, padding=padding,
                             strides=draw(st.sampled_from([None, strides])))
            strides = window if arguments["strides"] is None else strides
        spec.append((kind, arguments))
        height = _output_size(height, window[0], strides[0], padding)
        width = _output_size(width, window[1], strides[1], padding)
        if draw(st.integers(0, 4)) == 0:
            spec.append(("Activation", dict(activation=draw(st.sampled_from(ACTIVATIONS)))))
        if allow_dropout and draw(st.integers(0, 4)) == 0:
            spec.append(("Dropout", dict(rate=draw(st.sampled_from([0.2, 0.5])))))
    spec.append(("Flatten", {}))
    if draw(st.booleans()):
        spec.append(("Dense", dict(units=draw(st.integers(2, 6)),
                                   activation=draw(st.sampled_from(ACTIVATIONS)),
                                   use_bias=draw(st.booleans()))))
        if allow_dropout and draw(st.booleans()):
            spec.append(("Dropout", dict(rate=0.3)))
    head = head or draw(st.sampled_from(["softmax", "regression"]))
    units = draw(st.integers(2, 4))
    activation = "softmax" if head == "softmax" else draw(st.sampled_from(["linear", "tanh"]))
    spec.append(("Dense", dict(units=units, activation=activation)))
    return input_shape, spec


def build_minicnn(input_shape, spec) -> minicnn.Sequential:
    """The minicnn model described by ``spec``."""
    return minicnn.Sequential([minicnn.Input(input_shape)]
                              + [getattr(layers, kind)(**arguments) for kind, arguments in spec])


def build_keras(input_shape, spec):
    """The Keras model described by ``spec``, built by Keras alone."""
    k = keras()
    return k.Sequential([k.Input(input_shape)]
                        + [getattr(k.layers, kind)(**arguments) for kind, arguments in spec])


def random_weights(model: minicnn.Sequential, rng: np.random.Generator) -> list[np.ndarray]:
    """Weights scaled so every pre-activation stays O(1): no saturation, no dead layers."""
    weights = []
    for variable in model.weights:
        fan_in = int(np.prod(variable.shape[:-1])) if len(variable.shape) > 1 else 4
        weights.append((rng.standard_normal(variable.shape) / np.sqrt(fan_in)).astype(np.float32))
    return weights


def batch_for(input_shape, spec, rng, size: int = 4):
    """Inputs and targets suiting the model's head (one-hot labels or real targets)."""
    x = rng.standard_normal((size, *input_shape)).astype(np.float32)
    kind, head = spec[-1]
    if head["activation"] == "softmax":
        y = np.eye(head["units"], dtype=np.float32)[rng.integers(0, head["units"], size)]
        return x, y, "categorical_crossentropy"
    return x, rng.uniform(-0.8, 0.8, (size, head["units"])).astype(np.float32), "mean_squared_error"


SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------- tests
@SETTINGS
@given(architecture=architectures(), seed=st.integers(0, 2**16))
def test_predict_matches_keras(architecture, seed):
    input_shape, spec = architecture
    rng = np.random.default_rng(seed)
    ours, theirs = build_minicnn(input_shape, spec), build_keras(input_shape, spec)
    weights = random_weights(ours, rng)
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x = rng.standard_normal((5, *input_shape)).astype(np.float32)
    expected = keras().ops.convert_to_numpy(theirs(x, training=False))
    assert_close(ours.predict(x, verbose=0), expected, **PREDICT_TOLERANCE,
                 what=f"predict of {spec}")


@SETTINGS
@given(architecture=architectures(allow_dropout=False), seed=st.integers(0, 2**16))
def test_train_on_batch_matches_keras_for_every_optimizer(architecture, seed):
    input_shape, spec = architecture
    rng = np.random.default_rng(seed)
    ours, theirs = build_minicnn(input_shape, spec), build_keras(input_shape, spec)
    initial = random_weights(ours, rng)
    batches = [batch_for(input_shape, spec, rng) for _ in range(3)]
    loss = batches[0][2]
    for name, arguments in OPTIMIZERS:
        ours.set_weights(initial)
        theirs.set_weights(initial)
        ours.compile(optimizer=getattr(optimizers, name)(**arguments), loss=loss)
        theirs.compile(optimizer=getattr(keras().optimizers, name)(**arguments), loss=loss,
                       run_eagerly=True)
        for step, (x, y, _) in enumerate(batches):
            our_loss = ours.train_on_batch(x, y)
            their_loss = theirs.train_on_batch(x, y)
            assert_close(our_loss, their_loss, **LOSS_TOLERANCE,
                         what=f"{name}{arguments} loss at step {step} of {spec}")
        tolerance = SGD_WEIGHTS_TOLERANCE if name == "SGD" else dict(
            rtol=0.0, atol=ADAPTIVE_WEIGHTS_LR_UNITS * arguments["learning_rate"])
        assert_weights_close(ours.get_weights(), theirs.get_weights(), **tolerance,
                             names=[variable.name for variable in ours.weights],
                             what=f"after 3 {name}{arguments} steps of {spec}")


def keras_seed_convnet():
    """The chapter's MNIST convnet written out with keras.layers (not minicnn's
    ``keras_reference_model`` nor ``to_keras``: an independent reference)."""
    k = keras()
    return k.Sequential([
        k.Input((28, 28, 1)),
        k.layers.Conv2D(32, (3, 3), activation="relu"),
        k.layers.MaxPooling2D((2, 2)),
        k.layers.Conv2D(64, (3, 3), activation="relu"),
        k.layers.MaxPooling2D((2, 2)),
        k.layers.Conv2D(64, (3, 3), activation="relu"),
        k.layers.Flatten(),
        k.layers.Dense(64, activation="relu"),
        k.layers.Dense(10, activation="softmax"),
    ])


def test_seed_convnet_rmsprop_steps_match_keras():
    """The chapter's own model and optimizer (RMSprop): two steps equal Keras's.

    Batches of 16 rather than the chapter's 64 keep the test fast; the arithmetic is the same.
    """
    from minicnn.applications import mnist_convnet

    rng = np.random.default_rng(0)
    ours, theirs = mnist_convnet(), keras_seed_convnet()
    assert [tuple(w.shape) for w in theirs.get_weights()] == \
        [w.shape for w in ours.get_weights()]
    theirs.set_weights(ours.get_weights())
    ours.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    theirs.compile(optimizer="rmsprop", loss="categorical_crossentropy", run_eagerly=True)
    for _ in range(2):
        x = rng.uniform(0, 1, (16, 28, 28, 1)).astype(np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
        assert_close(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                     **SEED_CONVNET_LOSS_TOLERANCE, what="seed convnet loss")
    assert_weights_close(ours.get_weights(), theirs.get_weights(), rtol=0.0,
                         atol=SEED_CONVNET_LR_UNITS * 1e-3,
                         names=[variable.name for variable in ours.weights],
                         what="after 2 RMSprop steps")

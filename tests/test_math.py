"""Activations, losses, metrics, optimizers and initializers: formulas, gradients, Keras.

Tiers: gradients against central differences in float64 (FLOAT64_GRADIENT), values and
gradients against Keras / tf.GradientTape in float32 (FLOAT32_ROUNDOFF: rtol 1e-4,
atol 1e-5), optimizer trajectories against Keras's optimizers (OPTIMIZER_TOLERANCE).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minicnn import activations, initializers, losses, metrics, optimizers
from minicnn.variables import Variable
from tests.helpers import FLOAT32_ROUNDOFF, FLOAT64_GRADIENT, assert_close, numerical_gradient

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ACTIVATION_NAMES = ["linear", "relu", "sigmoid", "tanh", "softmax"]
# Five float32 steps against Keras: measured bit-identical for SGD and RMSprop and within
# 1 ulp for Adam (its beta^t power); allow a few ulps.
OPTIMIZER_TOLERANCE = dict(rtol=1e-6, atol=1e-7)


def _keras():
    keras = pytest.importorskip("keras")
    return keras


def _tensorflow():
    return pytest.importorskip("tensorflow")


# ----------------------------------------------------------------------------- activations

@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_backward_matches_central_differences(name):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3, 5)) * 2
    z[np.abs(z) < 0.05] = 0.3  # keep ReLU's kink out of the finite differences
    dy = rng.normal(size=z.shape)
    activation = activations.get(name)

    def weighted_output():
        return float(np.sum(activation.forward(z) * dy))

    expected = numerical_gradient(weighted_output, z)
    actual = activation.backward(dy, z, activation.forward(z))
    assert_close(actual, expected, **FLOAT64_GRADIENT, what=f"{name} backward")


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_keeps_float32_and_handles_extreme_inputs(name):
    z = np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4]], dtype=np.float32)
    activation = activations.get(name)
    a = activation.forward(z)
    dz = activation.backward(np.ones_like(z), z, a)
    assert a.dtype == np.float32 and dz.dtype == np.float32
    with np.errstate(over="ignore"):
        assert np.all(np.isfinite(a)) or name == "linear"
    assert activation.name == name


def test_activation_get_resolves_names_none_and_instances():
    assert activations.get(None).name == "linear"
    assert activations.get("ReLU").name == "relu"
    instance = activations.Softmax()
    assert activations.get(instance) is instance
    with pytest.raises(ValueError, match=r"'swish'.*\['linear', 'relu', 'sigmoid', 'softmax', 'tanh'\]"):
        activations.get("swish")


def test_relu_gradient_at_zero_is_zero_as_tensorflow():
    relu = activations.get("relu")
    z = np.zeros((2, 2), np.float32)
    assert np.all(relu.backward(np.ones_like(z), z, relu.forward(z)) == 0)


@pytest.mark.keras
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_values_match_keras(name):
    keras = _keras()
    rng = np.random.default_rng(2)
    z = (rng.normal(size=(4, 7)) * 5).astype(np.float32)
    z[0, :3] = [-120.0, 0.0, 120.0]
    expected = keras.ops.convert_to_numpy(keras.activations.get(name)(z))
    assert_close(activations.get(name).forward(z), expected, **FLOAT32_ROUNDOFF,
                 what=f"{name} vs keras")


# ----------------------------------------------------------------------------------- losses

def _random_case(seed: int, batch: int, classes: int, extreme: bool):
    """One-hot labels, integer labels, row-normalised probabilities (some clipped), logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, classes)) * 3
    integer_labels = rng.integers(0, classes, size=batch)
    one_hot = np.eye(classes)[integer_labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    if extreme:
        # values the clip changes: exact zeros, values below epsilon, values above 1 - eps
        probabilities[0, 0] = 0.0
        if classes > 1:
            probabilities[-1, -1] = 1e-9
        probabilities[batch // 2] = 0.0
        probabilities[batch // 2, integer_labels[batch // 2]] = 1.0
    return one_hot, integer_labels, probabilities, logits


@pytest.mark.keras
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 8), classes=st.integers(2, 6),
       extreme=st.booleans(), from_logits=st.booleans(),
       label_smoothing=st.sampled_from([0.0, 0.1]))
def test_loss_values_match_keras(seed, batch, classes, extreme, from_logits, label_smoothing):
    keras = _keras()
    one_hot, integer_labels, probabilities, logits = _random_case(seed, batch, classes, extreme)
    predictions = (logits if from_logits else probabilities).astype(np.float32)
    binary_targets = (np.random.default_rng(seed + 1).random(predictions.shape) > 0.5).astype(np.float32)
    cases = [
        (losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing),
         keras.losses.CategoricalCrossentropy(from_logits=from_logits,
                                              label_smoothing=label_smoothing),
         one_hot.astype(np.float32)),
        (losses.SparseCategoricalCrossentropy(from_logits=from_logits),
         keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), integer_labels),
        (losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing),
         keras.losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing),
         binary_targets),
        (losses.MeanSquaredError(), keras.losses.MeanSquaredError(), one_hot.astype(np.float32)),
    ]
    for ours, theirs, labels in cases:
        expected = float(theirs(labels, predictions))
        assert_close(ours(labels, predictions), expected, **FLOAT32_ROUNDOFF,
                     what=f"{ours.name} (from_logits={from_logits}) vs keras")


def _loss_cases(from_logits: bool):
    rng = np.random.default_rng(7 if from_logits else 8)
    batch, classes = 4, 5
    integer_labels = rng.integers(0, classes, size=batch)
    one_hot = np.eye(classes)[integer_labels]
    soft_labels = rng.random((batch, classes))
    soft_labels /= soft_labels.sum(-1, keepdims=True)
    binary_targets = (rng.random((batch, classes)) > 0.5).astype(np.float64)
    if from_logits:
        predictions = rng.normal(size=(batch, classes)) * 2
    else:
        # inside (epsilon, 1 - epsilon), rows not summing to 1: exercises the renormalisation
        predictions = rng.uniform(0.05, 0.9, size=(batch, classes))
    cases = [
        (losses.CategoricalCrossentropy(from_logits=from_logits), one_hot),
        (losses.CategoricalCrossentropy(from_logits=from_logits), soft_labels),
        (losses.SparseCategoricalCrossentropy(from_logits=from_logits), integer_labels),
        (losses.BinaryCrossentropy(from_logits=from_logits), binary_targets),
    ]
    if not from_logits:
        cases.append((losses.MeanSquaredError(), soft_labels))
    return cases, predictions


@pytest.mark.parametrize("from_logits", [False, True])
def test_loss_gradients_match_central_differences(from_logits):
    cases, predictions = _loss_cases(from_logits)
    for loss, labels in cases:
        predictions = predictions.copy()
        expected = numerical_gradient(lambda: loss(labels, predictions), predictions)
        value, gradient = loss.value_and_gradient(labels, predictions)
        assert gradient.shape == predictions.shape and gradient.dtype == np.float64
        assert value == pytest.approx(loss(labels, predictions))
        assert_close(gradient, expected, **FLOAT64_GRADIENT,
                     what=f"{loss.name} (from_logits={from_logits}) gradient")


@pytest.mark.keras
@pytest.mark.parametrize("from_logits", [False, True])
def test_loss_gradients_match_gradient_tape_including_clipped_values(from_logits):
    keras = _keras()
    tf = _tensorflow()
    rng = np.random.default_rng(11)
    batch, classes = 6, 4
    integer_labels = rng.integers(0, classes, size=batch)
    one_hot = np.eye(classes, dtype=np.float32)[integer_labels]
    unnormalised_labels = rng.random((batch, classes)).astype(np.float32)  # TF's kernel gradient
    binary_targets = (rng.random((batch, classes)) > 0.5).astype(np.float32)
    if from_logits:
        predictions = (rng.normal(size=(batch, classes)) * 4).astype(np.float32)
        predictions[0, 0] = 0.0  # sigmoid cross-entropy at z = 0 exactly
    else:
        predictions = rng.uniform(0.05, 0.9, size=(batch, classes)).astype(np.float32)
        predictions[0] = [0.0, 1e-9, 0.5, 0.5]          # clipped below
        predictions[1] = [1.0, 0.0, 0.0, 0.0]           # clipped above and below
        predictions[2, integer_labels[2]] = 1e-8        # the label's own probability clipped
    cases = [
        (losses.CategoricalCrossentropy(from_logits=from_logits),
         keras.losses.CategoricalCrossentropy(from_logits=from_logits), one_hot),
        (losses.CategoricalCrossentropy(from_logits=from_logits),
         keras.losses.CategoricalCrossentropy(from_logits=from_logits), unnormalised_labels),
        (losses.SparseCategoricalCrossentropy(from_logits=from_logits),
         keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), integer_labels),
        (losses.BinaryCrossentropy(from_logits=from_logits),
         keras.losses.BinaryCrossentropy(from_logits=from_logits), binary_targets),
        (losses.MeanSquaredError(), keras.losses.MeanSquaredError(), one_hot),
    ]
    for ours, theirs, labels in cases:
        variable = tf.Variable(predictions)
        with tf.GradientTape() as tape:
            keras_value = theirs(labels, variable)
        expected = tape.gradient(keras_value, variable).numpy()
        value, gradient = ours.value_and_gradient(labels, predictions)
        assert gradient.dtype == np.float32
        assert_close(value, float(keras_value), **FLOAT32_ROUNDOFF, what=f"{ours.name} value")
        assert_close(gradient, expected, **FLOAT32_ROUNDOFF,
                     what=f"{ours.name} (from_logits={from_logits}) gradient vs GradientTape")


# Keras uses the logits cached by softmax/sigmoid, whichever the loss (see losses.py).
LOGITS_CASES = [
    ("softmax", "categorical_crossentropy"),
    ("softmax", "sparse_categorical_crossentropy"),
    ("sigmoid", "binary_crossentropy"),
    ("softmax", "binary_crossentropy"),
    ("sigmoid", "categorical_crossentropy"),
]


@pytest.mark.keras
@pytest.mark.parametrize("activation_name, loss_name", LOGITS_CASES)
def test_from_logits_path_equals_keras_model_loss(activation_name, loss_name):
    keras = _keras()
    tf = _tensorflow()
    rng = np.random.default_rng(5)
    batch, features, classes = 6, 3, 4
    x = rng.normal(size=(batch, features)).astype(np.float32)
    # Large weights: logits of size ~100, where the probability clip would change the loss.
    kernel = (rng.normal(size=(features, classes)) * 60).astype(np.float32)
    bias = rng.normal(size=classes).astype(np.float32)
    integer_labels = rng.integers(0, classes, size=batch)
    if loss_name == "sparse_categorical_crossentropy":
        labels = integer_labels
    elif loss_name == "binary_crossentropy":
        labels = (rng.random((batch, classes)) > 0.5).astype(np.float32)
    else:
        labels = np.eye(classes, dtype=np.float32)[integer_labels]

    model = keras.Sequential([keras.Input((features,)),
                              keras.layers.Dense(classes, activation=activation_name)])
    model.set_weights([kernel, bias])
    model.compile(optimizer="sgd", loss=loss_name)
    keras_loss = model.evaluate(x, labels, batch_size=batch, verbose=0)
    with tf.GradientTape() as tape:
        keras_value = keras.losses.get(type(losses.get(loss_name)).__name__)(labels, model(x))
    keras_kernel_gradient = tape.gradient(keras_value, model.trainable_variables[0]).numpy()

    loss = losses.get(loss_name)
    assert loss.uses_cached_logits(activation_name)
    logits = x @ kernel + bias
    value, logits_gradient = loss.value_and_gradient_from_logits(labels, logits, activation_name)
    assert_close(value, keras_loss, **FLOAT32_ROUNDOFF, what="model loss vs keras evaluate")
    assert_close(value, float(keras_value), **FLOAT32_ROUNDOFF, what="loss vs keras eager")
    assert_close(x.T @ logits_gradient, keras_kernel_gradient, **FLOAT32_ROUNDOFF,
                 what="kernel gradient vs keras")
    # With logits this large, the probability path (what keras.losses gives on a plain
    # array) is a different number: the cache is what makes Keras's value.
    probabilities = activations.get(activation_name).forward(logits)
    assert abs(loss(labels, probabilities) - value) > 1e-3


def test_logits_path_is_refused_where_keras_has_none():
    assert not losses.get("mse").uses_cached_logits("softmax")
    assert not losses.get("categorical_crossentropy").uses_cached_logits("relu")
    with pytest.raises(ValueError, match="mean_squared_error"):
        losses.get("mse").value_and_gradient_from_logits(np.zeros((2, 3)), np.zeros((2, 3)),
                                                         "softmax")


def test_losses_validate_labels_with_clear_messages():
    predictions = np.full((4, 10), 0.1, np.float32)
    with pytest.raises(ValueError, match=r"categorical_crossentropy expects one-hot labels of shape "
                                         r"\(4, 10\), received \(4,\); use sparse_categorical_crossentropy"):
        losses.get("categorical_crossentropy")(np.arange(4), predictions)
    sparse = losses.get("sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"labels in \[0, 10\).*received 10 at index \(2,\)"):
        sparse(np.array([0, 1, 10, 3]), predictions)
    with pytest.raises(ValueError, match=r"received -1 at index \(0,\)"):
        sparse(np.array([-1, 1, 2, 3]), predictions)
    with pytest.raises(ValueError, match=r"integer labels, received 2.5"):
        sparse(np.array([0.0, 1.0, 2.5, 3.0]), predictions)
    with pytest.raises(ValueError, match="use categorical_crossentropy for one-hot"):
        sparse(np.eye(10)[:4], predictions)
    with pytest.raises(ValueError, match=r"binary_crossentropy expects .* of shape \(4, 10\), received \(4, 3\)"):
        losses.get("binary_crossentropy")(np.zeros((4, 3)), predictions)
    # Accepted as in Keras: sparse labels (N, 1) and float-valued integers;
    # binary labels (N,) for predictions (N, 1).
    value = sparse(np.array([[0], [1], [2], [3]]), predictions)
    assert value == pytest.approx(sparse(np.array([0.0, 1.0, 2.0, 3.0]), predictions))
    binary = losses.get("binary_crossentropy")
    column = np.array([[0.2], [0.7], [0.9]], np.float32)
    assert binary(np.array([0, 1, 1]), column) == pytest.approx(binary(np.array([[0], [1], [1]]), column))
    assert binary.gradient(np.array([0, 1, 1]), column).shape == (3, 1)


def test_loss_get_names_and_errors():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert losses.get("mse").name == "mse"
    assert losses.get("CategoricalCrossentropy").name == "categorical_crossentropy"
    assert losses.get("Binary_Crossentropy").name == "binary_crossentropy"
    instance = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(instance) is instance
    with pytest.raises(ValueError, match=r"'hinge'.*categorical_crossentropy"):
        losses.get("hinge")
    assert losses.CategoricalCrossentropy.from_config(
        losses.CategoricalCrossentropy(from_logits=True).get_config()).from_logits
    with pytest.raises(ValueError, match="axis=1 is not supported"):
        losses.CategoricalCrossentropy(axis=1)


def test_loss_configs_round_trip_through_module_from_config():
    for loss in [losses.CategoricalCrossentropy(label_smoothing=0.1),
                 losses.SparseCategoricalCrossentropy(from_logits=True),
                 losses.BinaryCrossentropy(from_logits=True), losses.get("mse"),
                 losses.BinaryCrossentropy(name="custom")]:
        rebuilt = losses.from_config(losses.serialize(loss))
        assert type(rebuilt) is type(loss) and rebuilt.get_config() == loss.get_config()
        if loss.name != "custom":  # a plain config is told apart by its keys and name
            assert type(losses.get(loss.get_config())) is type(loss)
    with pytest.raises(ValueError, match="losses.serialize"):
        losses.from_config(losses.BinaryCrossentropy(name="custom").get_config())
    stand_in = np.broadcast_to(np.zeros((), np.float32), (3, 10))
    losses.get("sparse_categorical_crossentropy").check_labels(np.array([1, 2, 9]), stand_in)
    with pytest.raises(ValueError, match="received 10"):
        losses.get("sparse_categorical_crossentropy").check_labels(np.array([1, 2, 10]), stand_in)


@pytest.mark.keras
def test_loss_configs_have_keras_keys():
    keras = _keras()
    for name in ["CategoricalCrossentropy", "SparseCategoricalCrossentropy",
                 "BinaryCrossentropy", "MeanSquaredError"]:
        assert getattr(losses, name)().get_config() == getattr(keras.losses, name)().get_config()


# ---------------------------------------------------------------------------------- metrics

@pytest.mark.keras
def test_metrics_match_keras():
    keras = _keras()
    rng = np.random.default_rng(3)
    probabilities = rng.random((50, 6)).astype(np.float32)
    probabilities[0] = probabilities[0, 0]  # a tie: both take the first maximum
    integer_labels = rng.integers(0, 6, size=50)
    one_hot = np.eye(6, dtype=np.float32)[integer_labels]
    binary_predictions = rng.random((50, 1)).astype(np.float32)
    binary_predictions[:3, 0] = 0.5  # threshold is strict: 0.5 counts as 0
    binary_labels = (rng.random(50) > 0.5).astype(np.float32)
    cases = [
        ("categorical_accuracy", keras.metrics.CategoricalAccuracy(), one_hot, probabilities),
        ("sparse_categorical_accuracy", keras.metrics.SparseCategoricalAccuracy(),
         integer_labels, probabilities),
        ("sparse_categorical_accuracy", keras.metrics.SparseCategoricalAccuracy(),
         integer_labels[:, None], probabilities),
        ("binary_accuracy", keras.metrics.BinaryAccuracy(), binary_labels, binary_predictions),
        ("binary_accuracy", keras.metrics.BinaryAccuracy(), binary_labels[:, None],
         binary_predictions),
    ]
    for name, keras_metric, labels, predictions in cases:
        keras_metric.update_state(labels, predictions)
        assert_close(metrics.get(name)(labels, predictions), float(keras_metric.result()),
                     rtol=0, atol=1e-7, what=name)


@pytest.mark.keras
def test_accuracy_resolution_matches_keras_compile_utils():
    pytest.importorskip("keras")
    from keras.src.trainers.compile_utils import get_metric
    shapes = [((8,), (8, 10)), ((8, 1), (8, 10)), ((8, 10), (8, 10)), ((8,), (8, 1)),
              ((8, 1), (8, 1))]
    keras_names = {"CategoricalAccuracy": "categorical_accuracy",
                   "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
                   "BinaryAccuracy": "binary_accuracy"}
    for identifier in ["accuracy", "acc", "Accuracy"]:
        for true_shape, predicted_shape in shapes:
            y_true = np.zeros(true_shape, np.float32)
            y_pred = np.full(predicted_shape, 0.1, np.float32)
            keras_metric = get_metric(identifier, y_true, y_pred)
            ours = metrics.get(identifier, losses.get("mse"))
            ours(y_true, y_pred)
            assert ours.resolved == keras_names[type(keras_metric).__name__]
            assert ours.name == keras_metric.name == identifier


def test_metric_get_errors_and_mean_helper():
    with pytest.raises(ValueError, match=r"'auc'.*accuracy"):
        metrics.get("auc")
    assert metrics.get("acc").identifier == "acc"
    assert metrics.get(metrics.get("acc").identifier).name == "acc"
    assert metrics.get("SparseCategoricalAccuracy").resolved == "sparse_categorical_accuracy"
    mean = metrics.Mean("loss")
    assert mean.result() == 0.0
    mean.update(1.0, 64)
    mean.update(4.0, 16)  # a short last batch weighs less
    assert mean.result() == pytest.approx((64 + 64) / 80)
    mean.reset()
    assert mean.result() == 0.0 and mean.count == 0


# ------------------------------------------------------------------------------- optimizers

OPTIMIZER_CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "rho": 0.8, "learning_rate": 0.01}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-5}),
]
SHAPES = [(3, 3, 2, 4), (4,), (5, 3)]


@pytest.mark.keras
@pytest.mark.parametrize("class_name, options", OPTIMIZER_CASES)
def test_optimizer_steps_match_keras(class_name, options):
    keras = _keras()
    rng = np.random.default_rng(17)
    initial = [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
    # Gradient scale changes per step so AMSGrad's running maximum matters.
    steps = [[(rng.normal(size=shape) * scale).astype(np.float32) for shape in SHAPES]
             for scale in (3.0, 0.1, 1.0, 0.01, 2.0)]

    ours = getattr(optimizers, class_name)(**options)
    variables = [Variable(value.copy(), f"v{i}") for i, value in enumerate(initial)]
    arrays_before = [variable.value for variable in variables]
    theirs = getattr(keras.optimizers, class_name)(**options)
    keras_variables = [keras.Variable(value.copy()) for value in initial]
    for gradients in steps:
        for variable, gradient in zip(variables, gradients):
            variable.grad[...] = gradient
        ours.apply_gradients(variables)
        theirs.apply_gradients(zip(gradients, keras_variables))

    assert ours.iterations == int(theirs.iterations.numpy()) == 5
    for variable, keras_variable, array in zip(variables, keras_variables, arrays_before):
        assert variable.value is array  # updated in place
        assert variable.value.dtype == np.float32
        assert_close(variable.value, keras_variable.numpy(), **OPTIMIZER_TOLERANCE,
                     what=f"{class_name}{options} {variable.name}")
    # The state lists the slots in Keras's order: optimizer.variables[2:].
    keras_slots = [v.numpy() for v in theirs.variables[2:]]
    our_slots = ours.get_state()["slots"]
    assert [s.shape for s in our_slots] == [s.shape for s in keras_slots]
    for ours_slot, keras_slot in zip(our_slots, keras_slots):
        assert_close(ours_slot, keras_slot, **OPTIMIZER_TOLERANCE, what=f"{class_name} slot")


@pytest.mark.keras
@pytest.mark.parametrize("class_name", ["SGD", "RMSprop", "Adam"])
def test_optimizer_defaults_and_config_match_keras(class_name):
    keras = _keras()
    theirs = getattr(keras.optimizers, class_name)().get_config()
    ours = getattr(optimizers, class_name)().get_config()
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if key == "name":
            continue
        if isinstance(value, float):
            assert ours[key] == pytest.approx(value, rel=1e-6), key  # Keras stores lr as float32
        else:
            assert ours[key] == value, key
    # use_ema off, no weight decay, no clipping, by default in both.
    assert theirs["use_ema"] is False and theirs["weight_decay"] is None
    assert theirs["clipnorm"] is None and theirs["global_clipnorm"] is None
    # Our config builds the same Keras optimizer, and back.
    rebuilt = getattr(keras.optimizers, class_name).from_config(ours)
    assert type(getattr(optimizers, class_name).from_config(ours)) is getattr(optimizers, class_name)
    assert rebuilt.get_config()["learning_rate"] == pytest.approx(ours["learning_rate"])


def test_optimizer_state_round_trip_resumes_exactly():
    rng = np.random.default_rng(4)
    for optimizer_class, options in [(optimizers.Adam, {"amsgrad": True}),
                                     (optimizers.RMSprop, {"centered": True, "momentum": 0.3}),
                                     (optimizers.SGD, {"momentum": 0.9})]:
        values = [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
        gradients = [[rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
                     for _ in range(5)]

        def run(optimizer, variables, steps):
            for step in steps:
                for variable, gradient in zip(variables, step):
                    variable.grad[...] = gradient
                optimizer.apply_gradients(variables)

        straight = [Variable(v.copy(), "v") for v in values]
        straight_optimizer = optimizer_class(**options)
        run(straight_optimizer, straight, gradients)

        first = [Variable(v.copy(), "v") for v in values]
        first_optimizer = optimizer_class(**options)
        run(first_optimizer, first, gradients[:3])
        state = first_optimizer.get_state()
        resumed = [Variable(v.value.copy(), "v") for v in first]
        resumed_optimizer = optimizer_class.from_config(first_optimizer.get_config())
        resumed_optimizer.set_state(state, resumed)
        assert resumed_optimizer.iterations == 3
        run(resumed_optimizer, resumed, gradients[3:])
        for a, b in zip(straight, resumed):
            np.testing.assert_array_equal(a.value, b.value)
        with pytest.raises(ValueError, match="slot arrays"):
            optimizer_class(**options).set_state(state, resumed[:2])
        # Listing the slots for given variables: the same arrays, or zeros before any step.
        listed = first_optimizer.get_state(first)["slots"]
        assert all(np.array_equal(a, b) for a, b in zip(listed, state["slots"]))
        fresh = optimizer_class(**options).get_state(first)
        assert fresh["iterations"] == 0 and len(fresh["slots"]) == len(state["slots"])
        assert all(not slot.any() for slot in fresh["slots"])


def test_optimizer_module_from_config_and_serialize():
    for optimizer in [optimizers.SGD(momentum=0.5, nesterov=True), optimizers.RMSprop(centered=True),
                      optimizers.Adam(learning_rate=0.01, amsgrad=True, name="mine")]:
        for form in (optimizer.get_config(), optimizers.serialize(optimizer)):
            rebuilt = optimizers.from_config(form)
            assert type(rebuilt) is type(optimizer) and rebuilt.get_config() == optimizer.get_config()
        assert type(optimizers.get(optimizers.serialize(optimizer))) is type(optimizer)
    with pytest.raises(ValueError, match="optimizers.serialize"):
        optimizers.from_config({"learning_rate": 0.1})


def test_optimizer_get_and_argument_errors():
    assert isinstance(optimizers.get("RMSprop"), optimizers.RMSprop)
    assert isinstance(optimizers.get("adam"), optimizers.Adam)
    assert optimizers.get("sgd").learning_rate == 0.01
    instance = optimizers.SGD()
    assert optimizers.get(instance) is instance
    with pytest.raises(ValueError, match=r"'adagrad'.*\['adam', 'rmsprop', 'sgd'\]"):
        optimizers.get("adagrad")
    with pytest.raises(ValueError, match="clipnorm=1.0 is not supported"):
        optimizers.Adam(clipnorm=1.0)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(beta1=0.9)
    with pytest.raises(ValueError, match="momentum must be in"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        optimizers.SGD(learning_rate="fast")
    # Assigning the learning rate (as a callback would) takes effect on the next step.
    variable = Variable(np.ones(3, np.float32), "w")
    variable.grad[...] = 1.0
    sgd = optimizers.SGD(learning_rate=0.5)
    sgd.learning_rate = 0.25
    sgd.apply_gradients([variable])
    assert_close(variable.value, np.full(3, 0.75), rtol=0, atol=1e-7)
    sgd.apply_gradients([])  # nothing to update: the iteration is not counted, as in Keras
    assert sgd.iterations == 1


# ----------------------------------------------------------------------------- initializers

@pytest.mark.parametrize("shape, fans", [((784, 512), (784, 512)),
                                         ((3, 3, 1, 32), (9, 288)),
                                         ((3, 3, 32, 64), (288, 576)),
                                         ((10,), (10, 10)),
                                         ((), (1, 1))])
def test_compute_fans_follows_keras(shape, fans):
    assert initializers.compute_fans(shape) == fans


@pytest.mark.keras
def test_compute_fans_equals_keras_function():
    pytest.importorskip("keras")
    from keras.src.initializers.random_initializers import compute_fans
    for shape in [(784, 512), (3, 3, 1, 32), (5, 5, 3, 16), (7,), (2, 3, 4, 5, 6)]:
        assert initializers.compute_fans(shape) == compute_fans(shape)


def test_glorot_uniform_bound_and_variance():
    shape = (3, 3, 32, 64)
    fan_in, fan_out = initializers.compute_fans(shape)
    limit = np.sqrt(6 / (fan_in + fan_out))
    values = initializers.get("glorot_uniform")(shape, rng=np.random.default_rng(0))
    assert values.shape == shape and values.dtype == np.float32
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.99 * limit
    assert values.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert abs(values.mean()) < 0.01 * limit


def test_he_normal_is_truncated_with_keras_stddev():
    shape = (3, 3, 64, 128)
    fan_in, _ = initializers.compute_fans(shape)
    target_std = np.sqrt(2 / fan_in)
    sigma = target_std / 0.87962566103423978
    values = initializers.get("he_normal")(shape, dtype="float64", rng=np.random.default_rng(1))
    assert values.dtype == np.float64 and values.shape == shape
    assert np.abs(values).max() <= 2 * sigma          # truncated at two sigma
    assert np.abs(values).max() > 1.95 * sigma
    assert values.std() == pytest.approx(target_std, rel=0.02)


@pytest.mark.keras
def test_he_normal_statistics_match_keras():
    keras = _keras()
    shape = (3, 3, 32, 64)
    theirs = keras.ops.convert_to_numpy(keras.initializers.HeNormal(seed=3)(shape))
    ours = initializers.HeNormal(seed=3)(shape)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)
    assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.03)


def test_initializer_seeds_constants_and_errors():
    seeded = initializers.GlorotUniform(seed=42)
    np.testing.assert_array_equal(seeded((4, 5)), seeded((4, 5)))
    assert not np.array_equal(seeded((4, 5)), initializers.GlorotUniform(seed=43)((4, 5)))
    np.testing.assert_array_equal(initializers.HeNormal(seed=1)((6,)), initializers.HeNormal(seed=1)((6,)))
    unseeded = initializers.get("he_normal")
    assert not np.array_equal(unseeded((4, 5), rng=np.random.default_rng(0)),
                              unseeded((4, 5), rng=np.random.default_rng(1)))
    assert initializers.get("zeros")((2, 3)).sum() == 0
    ones = initializers.get("ones")((2, 3), dtype="float64")
    assert ones.dtype == np.float64 and ones.sum() == 6
    for initializer in [seeded, initializers.get("he_normal"), initializers.get("zeros")]:
        rebuilt = initializers.get(initializers.serialize(initializer))
        assert type(rebuilt) is type(initializer) and rebuilt.get_config() == initializer.get_config()
    assert initializers.get("HeNormal").name == "he_normal"
    assert initializers.get(None) is None
    with pytest.raises(ValueError, match=r"'xavier'.*glorot_uniform"):
        initializers.get("xavier")
    with pytest.raises(ValueError, match="seed must be"):
        initializers.GlorotUniform(seed=-1)

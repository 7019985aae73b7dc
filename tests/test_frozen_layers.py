"""Frozen layers (``trainable = False``) compute no weight gradient, and backward stops
below the first trainable layer: VGG16 fine-tuned with blocks 1-4 frozen (*Deep Learning
with Python*, section 5.3.3) gets the same gradients for its trainable layers as with
nothing frozen, and its frozen layers' gradients stay as they were."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import layers
from minicnn.applications import VGG16
from minicnn.backend import available_backends, using_backend
from minicnn.models import Sequential
from tests.helpers import assert_close

BACKENDS = [name for name in ("numpy", "numba") if name in available_backends()]


def _fine_tuning_model(seed: int) -> Sequential:
    """VGG16's base on 32x32 images, then Flatten, Dense 8 (relu), Dense 1 (sigmoid)."""
    minicnn.set_random_seed(seed)
    base = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = Sequential(list(base.layers) + [layers.Flatten(), layers.Dense(8, activation="relu"),
                                            layers.Dense(1, activation="sigmoid")])
    model.build((None, 32, 32, 3))
    return model


def _freeze_blocks_1_to_4(model: Sequential) -> None:
    frozen = True
    for layer in model.layers:
        if layer.name == "block5_conv1":
            frozen = False
        layer.trainable = not frozen


def _gradients(model: Sequential, x: np.ndarray) -> list[np.ndarray | None]:
    """Each weight's gradient (``model.weights`` order) after one forward and backward
    of ``sum(y)``."""
    for variable in model.weights:
        variable.grad = None
    y = model.forward(x, training=True)
    model.backward(np.ones_like(y))
    return [variable.grad for variable in model.weights]


@pytest.mark.parametrize("backend", BACKENDS)
def test_frozen_blocks_leave_trainable_gradients_unchanged(backend):
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    with using_backend(backend):
        whole = _fine_tuning_model(seed=1)
        frozen = _fine_tuning_model(seed=1)
        _freeze_blocks_1_to_4(frozen)
        for a, b in zip(whole.get_weights(), frozen.get_weights(), strict=True):
            assert np.array_equal(a, b)
        expected = _gradients(whole, x)
        actual = _gradients(frozen, x)
    trainable = {id(variable) for variable in frozen.trainable_weights}
    assert len(trainable) == 3 * 2 + 2 * 2      # block 5's three convolutions, two Dense
    for variable, gradient, wanted in zip(frozen.weights, actual, expected, strict=True):
        assert wanted is not None
        if id(variable) in trainable:
            assert_close(gradient, wanted, rtol=1e-6, atol=1e-7, what=variable.name)
        else:
            assert gradient is None, f"{variable.name} is frozen but got a gradient"


def test_frozen_layer_keeps_its_old_gradient():
    """A frozen layer above a trainable one passes dx down but keeps its gradient."""
    rng = np.random.default_rng(2)
    x = rng.random((2, 8, 8, 3), dtype=np.float32)
    minicnn.set_random_seed(3)
    model = Sequential([layers.Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 3)),
                        layers.Conv2D(4, (3, 3), activation="relu"), layers.Flatten(),
                        layers.Dense(3)])
    middle, head = model.layers[1], model.layers[3]
    middle.trainable = False
    head.trainable = False
    marker = np.full(middle.kernel.value.shape, 7.0, dtype=np.float32)
    middle.kernel.grad = marker
    head.kernel.grad = None
    y = model.forward(x, training=True)
    model.backward(np.ones_like(y))
    assert middle.kernel.grad is marker and head.kernel.grad is None
    assert model.layers[0].kernel.grad is not None   # gradient still flows through both


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_step_keeps_no_state_below_the_first_trainable_layer(backend):
    """A training step's backward never reaches the frozen blocks, so their forward keeps
    nothing for it (no activations, no padded copies), and training still matches a
    model that keeps everything."""
    rng = np.random.default_rng(4)
    x = rng.random((2, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 2, (2, 1)).astype(np.float32)
    with using_backend(backend):
        models = []
        for _ in range(2):
            model = _fine_tuning_model(seed=5)
            _freeze_blocks_1_to_4(model)
            model.compile(optimizer=minicnn.optimizers.RMSprop(1e-3), loss="binary_crossentropy")
            models.append(model)
        stateless, keeping = models
        stateless.train_on_batch(x, y)
        # The other model runs its forward keeping every layer's state, then the same
        # backward and update.
        y_pred = keeping.forward(x, training=True)
        _, gradient, from_logits = keeping.loss.value_and_output_gradient(
            y, y_pred, keeping.leaf_layers()[-1])
        keeping.backward(gradient, from_logits=from_logits)
        keeping.optimizer.apply_gradients(keeping.trainable_weights)

    def states(model):
        """What each step below block5_conv1 kept: a fused step's cache or its layer's."""
        steps = model._steps
        first = model.first_trainable_step(steps)
        assert steps[first].layers[0].name == "block5_conv1"
        return [getattr(step, "_cache", None) if len(step.layers) > 1
                else getattr(step.layers[0], "_cache", None) for step in steps[:first]]

    assert all(state is None for state in states(stateless))
    assert all(layer.keep_for_backward for layer in stateless.layers), "flags restored"
    assert all(state is not None for state in states(keeping))
    assert stateless.get_layer("block5_conv1")._cache is not None
    for a, b in zip(stateless.get_weights(), keeping.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

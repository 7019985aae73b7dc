"""minicnn's .h5 and .keras files open in Keras 3 with the same weights and predictions,
and Keras's open in minicnn (the book's model: VGG16 base used as a layer, fine-tuned
from block5_conv1; small inputs, weights=None)."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import models
from tests.helpers import assert_close, assert_weights_equal
from tests.test_book_code import book_model, fine_tune_block5

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def keras():
    from minicnn.interop.keras import import_keras

    try:
        return import_keras()
    except ImportError as error:
        pytest.skip(f"Keras is not installed: {error}")


def _inputs() -> np.ndarray:
    return np.random.default_rng(3).random((3, 32, 32, 3), dtype=np.float32)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_minicnn_file_loads_in_keras_with_equal_weights_and_predictions(keras, tmp_path, suffix):
    model, conv_base = book_model()
    fine_tune_block5(conv_base)
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    x = _inputs()
    model.train_on_batch(x, np.array([1, 0, 1], dtype=np.float32))
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert type(loaded.layers[0]).__name__ == "Functional"
    assert len(loaded.trainable_weights) == 10
    assert_weights_equal([np.asarray(w) for w in loaded.get_weights()], model.get_weights())
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5,
                 atol=1e-6, what="predictions")
    assert type(loaded.optimizer).__name__ == "RMSprop"
    if suffix == ".keras":  # the optimizer state travels too: iterations and velocities
        assert int(loaded.optimizer.iterations.numpy()) == 1
        slots = [np.asarray(v) for v in loaded.optimizer.variables[2:]]
        assert_weights_equal(slots, model.optimizer.get_state(model.trainable_weights)["slots"])


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_keras_file_loads_in_minicnn_with_equal_weights_and_predictions(keras, tmp_path, suffix):
    conv_base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = keras.Sequential([conv_base, keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    conv_base.trainable = False
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                  loss="binary_crossentropy", metrics=["acc"])
    path = tmp_path / f"keras_model{suffix}"
    model.save(path)
    ours = models.load_model(path)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in model.layers]
    assert type(ours.layers[0]).__name__ == "Functional" and not ours.layers[0].trainable
    assert len(ours.trainable_weights) == 4
    assert_weights_equal(ours.get_weights(), [np.asarray(w) for w in model.get_weights()])
    x = _inputs()
    assert_close(ours.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6,
                 what="predictions")
    assert ours.metrics_names == ["loss", "acc"]
    assert ours.optimizer.learning_rate == pytest.approx(1e-4)


def test_keras_layers_minicnn_lacks_are_refused_by_name(keras, tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.BatchNormalization(),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    path = tmp_path / "bn.keras"
    model.save(path)
    from minicnn.io import ModelFileError

    with pytest.raises(ModelFileError, match="BatchNormalization"):
        models.load_model(path)

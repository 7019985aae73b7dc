"""Sequential's Keras surface: build, fit, evaluate, predict, weights, freezing, saving."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import layers, models
from minicnn.applications import mnist_convnet
from minicnn.utils import to_categorical
from tests.helpers import assert_close


def small_model(**compile_arguments) -> minicnn.Sequential:
    model = minicnn.Sequential([
        minicnn.Input((8, 8, 1)),
        layers.Conv2D(4, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(**{"optimizer": "adam", "loss": "categorical_crossentropy",
                     "metrics": ["accuracy"], **compile_arguments})
    return model


def blobs(count: int, seed: int = 0, size: int = 8):
    """Three classes: a bright 3x3 square in one of three places."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    x = rng.random((count, size, size, 1), dtype=np.float32) * 0.2
    for index, label in enumerate(labels):
        x[index, 1 + 2 * label:4 + 2 * label, 1 + 2 * label:4 + 2 * label, 0] += 1.0
    return x, labels


def test_keras_style_construction_paths_agree():
    minicnn.set_random_seed(0)
    added = models.Sequential()
    added.add(layers.Conv2D(2, 3, input_shape=(5, 5, 1)))
    added.add(layers.Flatten())
    assert added.built and added.input_shape == (None, 5, 5, 1)
    lazy = models.Sequential([layers.Dense(2)])
    assert not lazy.built
    lazy.predict(np.zeros((3, 4)), verbose=0)  # builds from the data, as Keras
    assert lazy.layers[0].get_weights()[0].shape == (4, 2)


def test_fit_history_keys_and_validation_split_from_the_end():
    minicnn.set_random_seed(1)
    x, labels = blobs(100)
    y = to_categorical(labels, 3)
    model = small_model()
    seen = []

    class Recorder(models.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.2, verbose=0,
                        callbacks=[Recorder()])
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 2
    assert seen == list(range(5)) * 2  # 80 training samples in batches of 16
    # Keras validates on the last 20 samples: evaluating them gives the same numbers.
    val_loss, val_accuracy = model.evaluate(x[80:], y[80:], verbose=0)
    assert val_loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert val_accuracy == pytest.approx(history.history["val_accuracy"][-1])


def test_evaluate_and_train_on_batch_return_forms_match_keras():
    x, labels = blobs(20)
    y = to_categorical(labels, 3)
    with_metrics = small_model()
    assert len(with_metrics.evaluate(x, y, verbose=0)) == 2
    assert set(with_metrics.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}
    assert len(with_metrics.train_on_batch(x, y)) == 2
    without = small_model(metrics=None)
    assert isinstance(without.evaluate(x, y, verbose=0), float)
    assert isinstance(without.train_on_batch(x, y), float)


def test_sparse_labels_and_predict_batches():
    x, labels = blobs(50)
    model = small_model(loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=1, batch_size=7, verbose=0)
    assert_close(model.predict(x, batch_size=7, verbose=0), model.predict(x, batch_size=50, verbose=0),
                 rtol=1e-5, atol=1e-6, what="predict does not depend on the batch size")


def test_frozen_layers_get_no_updates():
    x, labels = blobs(30)
    model = small_model()
    model.layers[0].trainable = False
    frozen_before = model.layers[0].get_weights()
    head_before = model.layers[-1].get_weights()
    model.fit(x, to_categorical(labels, 3), epochs=1, batch_size=10, verbose=0)
    for before, after in zip(frozen_before, model.layers[0].get_weights()):
        assert np.array_equal(before, after)
    assert not np.array_equal(head_before[0], model.layers[-1].get_weights()[0])
    assert model.count_params() == sum(w.size for w in model.get_weights())
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2


def test_get_layer_and_weights_round_trip():
    model = small_model()
    assert model.get_layer(model.layers[0].name) is model.layers[0]
    assert model.get_layer(index=-1) is model.layers[-1]
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 1, 4), (4,), (36, 3), (3,)]
    other = small_model()
    other.set_weights(weights)
    x, _ = blobs(5)
    assert_close(other.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=0,
                 what="same weights, same outputs")


def test_save_and_load_round_trip_with_optimizer_state(tmp_path):
    x, labels = blobs(40)
    y = to_categorical(labels, 3)
    model = small_model()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = minicnn.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=0,
                 what="loaded model predictions")
    assert loaded.optimizer.iterations == model.optimizer.iterations
    # Training both one more step from the same state gives the same weights.
    model.train_on_batch(x[:8], y[:8])
    loaded.train_on_batch(x[:8], y[:8])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert_close(a, b, rtol=0, atol=0, what="weights after one more step")
    assert not list(tmp_path.glob(".*tmp")), "no temporary file is left behind"


@pytest.mark.parametrize("backend", minicnn.available_backends())
def test_mnist_convnet_converges_on_2000_synthetic_images(backend):
    """Section 5.1's architecture on MNIST-sized synthetic digits: the loss falls."""
    if backend == "reference":
        pytest.skip("the loop kernels are for reading; too slow for 2,000 images")
    previous = minicnn.get_backend_name()
    minicnn.set_backend(backend)
    try:
        minicnn.set_random_seed(0)
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, 2000)
        x = rng.random((2000, 28, 28, 1), dtype=np.float32) * 0.3
        for index, label in enumerate(labels):  # each class: a bar at its own place
            row, column = 3 + (label // 5) * 12, 2 + (label % 5) * 5
            x[index, row:row + 10, column:column + 3, 0] += 0.8
        model = mnist_convnet()
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, to_categorical(labels, 10), epochs=2, batch_size=64, verbose=0)
        losses = history.history["loss"]
        assert losses[1] < losses[0] < 2.4
        assert history.history["accuracy"][-1] > 0.9
    finally:
        minicnn.set_backend(previous)


class BlobSequence:
    """A keras.utils.Sequence-like object: __len__, __getitem__, on_epoch_end."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size, self.epochs_ended = x, y, batch_size, 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_fit_evaluate_predict_accept_sequences_and_generators():
    x, labels = blobs(48)
    y = to_categorical(labels, 3)
    minicnn.set_random_seed(3)
    from_arrays = small_model()
    from_arrays.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    minicnn.set_random_seed(3)
    from_sequence = small_model()
    sequence = BlobSequence(x, y, 16)
    history = from_sequence.fit(sequence, epochs=2, validation_data=BlobSequence(x, y, 24),
                                verbose=0)
    assert sequence.epochs_ended == 2
    assert "val_loss" in history.history
    for a, b in zip(from_arrays.get_weights(), from_sequence.get_weights()):
        assert_close(a, b, rtol=0, atol=0, what="same batches, same weights")
    assert_close(from_sequence.evaluate(sequence, verbose=0), from_sequence.evaluate(x, y, verbose=0),
                 rtol=1e-6, atol=0, what="evaluate on a sequence")
    assert from_sequence.predict(sequence, verbose=0).shape == (48, 3)

    def endless():
        while True:
            yield x[:16], y[:16]

    from_sequence.fit(endless(), steps_per_epoch=3, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch is required"):
        from_sequence.fit(endless(), epochs=1, verbose=0)


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "model.npz"
    small_model().save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif("numba" not in minicnn.available_backends(), reason="needs numba")
def test_fused_first_layer_trains_like_the_separate_layers(monkeypatch):
    """Sequential runs Conv2D(relu)+MaxPooling2D as one kernel under numba; same results."""
    from minicnn.models import steps

    rng = np.random.default_rng(4)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, 64), 10)

    def train(fused: bool):
        monkeypatch.setattr(steps, "FUSION_ENABLED", fused)
        minicnn.set_backend("numba")
        minicnn.set_random_seed(3)
        model = mnist_convnet()
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        first_output = model.predict(x[:8], verbose=0)
        for _ in range(3):
            model.train_on_batch(x, y)
        return model, first_output

    fused_model, fused_output = train(True)
    fused_steps = [step.layers for step in fused_model.plan_steps(x.shape, training=True)]
    assert fused_steps[:2] == [tuple(fused_model.layers[0:2]), tuple(fused_model.layers[2:4])]
    plain_model, plain_output = train(False)
    plain_steps = [step.name for step in plain_model.plan_steps(x.shape, training=True)]
    assert len(plain_steps) == len(plain_model.layers)
    np.testing.assert_array_equal(fused_output, plain_output)
    for fused_weight, plain_weight in zip(fused_model.get_weights(), plain_model.get_weights()):
        assert_close(fused_weight, plain_weight, rtol=1e-4, atol=1e-5, what="weights")

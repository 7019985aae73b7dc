"""The book's code for sections 5.2 and 5.3, imports swapped to minicnn, runs unchanged.

Each first-edition spelling the chapter uses: a model used as a layer (VGG16's base,
frozen, then fine-tuned from block5_conv1), ``RMSprop(lr=...)``, ``fit_generator`` /
``evaluate_generator`` / ``predict_generator``, ``metrics=['acc']``, ``Dense(...,
input_dim=N)``, ``model.save('....h5')`` and ``image.load_img`` / ``img_to_array`` /
``array_to_img``.  No network, small shapes, no TensorFlow (the Keras side is
tests/test_keras_files.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from minicnn import layers, models, optimizers
from minicnn.applications import VGG16
from minicnn.preprocessing import image
from minicnn.preprocessing.image import ImageDataGenerator
from tests.helpers import assert_weights_equal


def book_model(size: int = 32):
    """Listing 5.20's model: the VGG16 base, Flatten, Dense 256 relu, Dense 1 sigmoid."""
    conv_base = VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    model = models.Sequential()
    model.add(conv_base)
    model.add(layers.Flatten())
    model.add(layers.Dense(256, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    return model, conv_base


def fine_tune_block5(conv_base) -> None:
    """Listing 5.22, as the book writes it."""
    conv_base.trainable = True
    set_trainable = False
    for layer in conv_base.layers:
        if layer.name == "block5_conv1":
            set_trainable = True
        if set_trainable:
            layer.trainable = True
        else:
            layer.trainable = False


def test_trainable_weights_30_then_4_then_10_as_the_book_prints():
    model, conv_base = book_model()
    assert len(model.trainable_weights) == 30
    conv_base.trainable = False
    assert len(model.trainable_weights) == 4
    assert all(not layer.trainable for layer in conv_base.layers)
    fine_tune_block5(conv_base)
    assert len(model.trainable_weights) == 10
    assert [v.name for v in model.trainable_weights[:6]] == [
        f"block5_conv{i}/{w}" for i in (1, 2, 3) for w in ("kernel", "bias")]
    assert len(model.weights) == 30 and len(model.non_trainable_weights) == 20


def test_a_model_is_one_layer_of_the_outer_model_and_one_summary_row():
    model, conv_base = book_model()
    assert model.layers[0] is conv_base and len(model.layers) == 4
    assert model.get_layer("vgg16") is conv_base
    assert model.input_shape == (None, 32, 32, 3) and conv_base.output_shape == (None, 1, 1, 512)
    assert model.count_params() == 14_714_688 + 512 * 256 + 256 + 257
    lines = []
    model.summary(print_fn=lines.append)
    text = "".join(lines)
    assert "vgg16 (Functional)" in text and "block1_conv1" not in text
    assert "Total params: 14,846,273" in text
    conv_base.trainable = False
    lines.clear()
    model.summary(print_fn=lines.append)
    assert "Trainable params: 131,585" in "".join(lines)
    # get_weights / set_weights: the base's arrays first, in its layer order (Keras's).
    weights = model.get_weights()
    assert len(weights) == 30
    assert_weights_equal(weights[:26], conv_base.get_weights())
    model.set_weights([w + 1 for w in weights])
    assert np.array_equal(conv_base.layers[0].kernel.value, weights[0] + 1)


def test_the_outer_plan_runs_the_base_layers_as_steps_with_fusion_inside():
    model, conv_base = book_model()
    steps = model.plan_steps((2, 32, 32, 3), training=True)
    leaf_names = [layer.name for step in steps for layer in step.layers]
    head = [layer.name for layer in model.layers[1:]]
    assert leaf_names == [layer.name for layer in conv_base.layers] + head
    # The base's own plan (fused conv + pool pairs where the backend fuses them), then the head.
    assert [s.name for s in steps] == [s.name for s in conv_base.plan_steps(
        (2, 32, 32, 3), training=True)] + head


def _small_nested(frozen: tuple[str, ...] = ()):
    base = models.Sequential([
        layers.Input((12, 12, 3)),
        layers.Conv2D(4, (3, 3), activation="relu", padding="same", name="c1"),
        layers.MaxPooling2D((2, 2), name="p1"),
        layers.Conv2D(6, (3, 3), activation="relu", name="c2"),
        layers.MaxPooling2D((2, 2), name="p2"),
    ], name="base")
    model = models.Sequential([base, layers.Flatten(name="f"),
                               layers.Dense(1, activation="sigmoid", name="out")])
    for name in frozen:
        base.get_layer(name).trainable = False
    return model, base


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_frozen_prefix_gets_no_gradient_and_the_rest_the_same_gradients(backend):
    from minicnn.backend import using_backend

    with using_backend(backend):
        full, _ = _small_nested()
        frozen, base = _small_nested(frozen=("c1", "p1"))
        frozen.set_weights(full.get_weights())
        x = np.random.default_rng(0).random((5, 12, 12, 3), dtype=np.float32)
        y = np.array([0, 1, 1, 0, 1], dtype=np.float32)
        for model in (full, frozen):
            model.compile(optimizer="sgd", loss="binary_crossentropy")
            for variable in model.weights:
                variable.grad = None
            y_pred = model.forward(x, training=True)
            _, gradient, from_logits = model.loss.value_and_output_gradient(
                y, y_pred, model.leaf_layers()[-1])
            model.backward(gradient, from_logits=from_logits)
        assert [v.name for v in frozen.trainable_weights] == ["c2/kernel", "c2/bias",
                                                              "out/kernel", "out/bias"]
        # Backward stopped at c2: the frozen c1 was never given a gradient.
        assert base.get_layer("c1").kernel.grad is None and base.get_layer("c1").bias.grad is None
        expected = {v.name: v.grad for v in full.weights}
        for variable in frozen.trainable_weights:
            np.testing.assert_allclose(variable.grad, expected[variable.name], rtol=1e-6,
                                       atol=1e-7)
        # A frozen base as a whole: only the head learns, nothing inside the base runs backward.
        frozen_base, base = _small_nested()
        base.trainable = False
        frozen_base.compile(optimizer="sgd", loss="binary_crossentropy")
        before = base.get_weights()
        frozen_base.fit(x, y, epochs=1, batch_size=5, verbose=0)
        assert_weights_equal(base.get_weights(), before)


def test_lr_is_the_old_name_of_learning_rate_with_a_deprecation_warning():
    for cls in (optimizers.RMSprop, optimizers.SGD, optimizers.Adam):
        with pytest.warns(DeprecationWarning, match="`lr` argument is deprecated") as record:
            optimizer = cls(lr=1e-4)
        assert record[0].filename == __file__  # points at the caller
        assert optimizer.learning_rate == pytest.approx(1e-4)
        assert type(optimizer.get_config()["learning_rate"]) is float
        with pytest.raises(ValueError, match="both learning_rate=0.01 and lr=0.0001"):
            cls(learning_rate=1e-2, lr=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert optimizers.RMSprop().learning_rate == 0.001  # no lr, no warning
        assert optimizers.RMSprop(0.001).learning_rate == 0.001


def test_dense_input_dim_is_input_shape():
    model = models.Sequential()
    model.add(layers.Dense(256, activation="relu", input_dim=4 * 4 * 512))
    model.add(layers.Dense(1, activation="sigmoid"))
    assert model.input_shape == (None, 8192) and model.count_params() == 8192 * 256 + 256 + 257
    with pytest.raises(ValueError, match="not both"):
        layers.Dense(3, input_dim=4, input_shape=(4,))
    with pytest.raises(ValueError, match="input_dim must be a positive integer"):
        layers.Dense(3, input_dim="4")


def _write_images(root, count: int = 6, size: int = 20) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "validation"):
        for label in ("cats", "dogs"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{label}.{index}.png")


def test_generators_and_acc_as_listing_5_8_and_5_18(tmp_path):
    _write_images(tmp_path)
    datagen = ImageDataGenerator(rescale=1.0 / 255)
    train = datagen.flow_from_directory(tmp_path / "train", target_size=(16, 16), batch_size=4,
                                        class_mode="binary")
    validation = datagen.flow_from_directory(tmp_path / "validation", target_size=(16, 16),
                                             batch_size=4, class_mode="binary")
    model = models.Sequential()
    model.add(layers.Conv2D(4, (3, 3), activation="relu", input_shape=(16, 16, 3)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dense(1, activation="sigmoid"))
    with pytest.warns(DeprecationWarning, match="lr"):
        optimizer = optimizers.RMSprop(lr=1e-4)
    model.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["acc"])
    with pytest.warns(DeprecationWarning, match="`Model.fit_generator` is deprecated") as record:
        history = model.fit_generator(train, steps_per_epoch=3, epochs=2,
                                      validation_data=validation, validation_steps=2, verbose=0)
    assert record[0].filename == __file__
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert len(history.history["acc"]) == 2
    with pytest.warns(DeprecationWarning, match="evaluate_generator"):
        test_loss, test_acc = model.evaluate_generator(validation, steps=3)
    assert 0 <= test_acc <= 1 and test_loss > 0
    with pytest.warns(DeprecationWarning, match="predict_generator"):
        predictions = model.predict_generator(validation, steps=2)
    assert predictions.shape == (8, 1)
    with pytest.raises(ValueError, match="class_weight"), pytest.warns(DeprecationWarning):
        model.fit_generator(train, steps_per_epoch=1, class_weight={0: 1.0, 1: 2.0})


def test_image_load_img_img_to_array_array_to_img(tmp_path):
    _write_images(tmp_path, count=1)
    path = tmp_path / "train" / "cats" / "cats.0.png"
    img = image.load_img(path, target_size=(10, 12))
    assert img.size == (12, 10) and img.mode == "RGB"
    x = image.img_to_array(img)
    assert x.dtype == np.float32 and x.shape == (10, 12, 3)
    assert image.img_to_array(img, data_format="channels_first").shape == (3, 10, 12)
    assert image.load_img(path, grayscale=True).mode == "L"
    assert image.img_to_array(image.load_img(path, color_mode="grayscale")).shape == (20, 20, 1)
    x = x.reshape((1,) + x.shape)
    back = image.array_to_img(x[0])
    assert back.size == (12, 10) and back.mode == "RGB"
    # scale=True maps min..max to 0..255, as Keras; scale=False keeps the values.
    scaled = np.asarray(image.array_to_img(x[0] / 255.0))
    assert scaled.min() == 0 and scaled.max() == 255
    assert np.array_equal(np.asarray(image.array_to_img(x[0], scale=False)), x[0].astype(np.uint8))
    assert image.array_to_img(np.zeros((4, 4, 1))).mode == "L"
    with pytest.raises(ValueError, match="rank 3"):
        image.array_to_img(x)


@pytest.mark.parametrize("suffix", [".h5", ".keras", ".npz"])
def test_save_and_load_model_round_trip_without_tensorflow(tmp_path, suffix):
    pytest.importorskip("h5py")
    model, conv_base = book_model()
    fine_tune_block5(conv_base)
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-4), loss="binary_crossentropy",
                  metrics=["acc"])
    x = np.random.default_rng(2).random((3, 32, 32, 3), dtype=np.float32)
    model.train_on_batch(x, np.array([0, 1, 0], dtype=np.float32))
    path = tmp_path / f"cats_and_dogs_small{suffix}"
    model.save(path)
    loaded = models.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Functional", "Flatten", "Dense", "Dense"]
    assert loaded.layers[0].name == "vgg16" and len(loaded.trainable_weights) == 10
    assert [layer.trainable for layer in loaded.layers[0].layers] == [
        layer.trainable for layer in conv_base.layers]
    assert_weights_equal(loaded.get_weights(), model.get_weights())
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.metrics_names == ["loss", "acc"]
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert loaded.optimizer.learning_rate == pytest.approx(1e-4)
    state, loaded_state = (m.optimizer.get_state(m.trainable_weights) for m in (model, loaded))
    assert loaded_state["iterations"] == 1
    assert_weights_equal(loaded_state["slots"], state["slots"])


def test_keras_files_need_no_tensorflow(tmp_path):
    """Writing and reading .h5 / .keras imports h5py, never keras or tensorflow."""
    import subprocess
    import sys

    pytest.importorskip("h5py")
    script = (
        "import sys, numpy as np\n"
        "from minicnn import layers, models\n"
        "m = models.Sequential([layers.Input((4,)), layers.Dense(3, activation='relu'),"
        " layers.Dense(1)])\n"
        f"for p in [{str(tmp_path / 'a.h5')!r}, {str(tmp_path / 'a.keras')!r}]:\n"
        "    m.save(p); l = models.load_model(p)\n"
        "    assert np.array_equal(l.predict(np.ones((2, 4)), verbose=0),"
        " m.predict(np.ones((2, 4)), verbose=0))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_unknown_extension_and_missing_h5py_are_explained(tmp_path, monkeypatch):
    model = models.Sequential([layers.Input((4,)), layers.Dense(1)])
    with pytest.raises(ValueError, match=r"\.npz \(minicnn's\), \.keras or \.h5"):
        model.save(tmp_path / "model.pt")
    import builtins

    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("No module named 'h5py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(ImportError, match=r"pip install minicnn\[h5\]"):
        model.save(tmp_path / "model.h5")
    # Reading a Keras file without h5py is the reader's one documented error, naming
    # the file and the extra (a damaged or foreign file that looks like HDF5 gets it too).
    (tmp_path / "keras_file.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    from minicnn.io import ModelFileError

    with pytest.raises(ModelFileError, match=r"keras_file\.h5.*pip install minicnn\[h5\]"):
        models.load_model(tmp_path / "keras_file.h5")

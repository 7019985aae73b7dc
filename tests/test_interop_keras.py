"""The Keras bridge: from_keras / to_keras for every layer type, random architectures
round-tripping Keras -> minicnn -> Keras, the unsupported-layer error, Keras weights
files read with h5py, and ``minicnn summary NAME --keras``.

Weights must come through a transfer *identical* (bit for bit); outputs of the two
engines on those weights agree to float32 round-off (``FLOAT32_ROUNDOFF``: rtol 1e-4,
atol 1e-5); a Keras model round-tripped through minicnn computes exactly what the
original computes.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import layers
from tests.helpers import FLOAT32_ROUNDOFF, assert_close
from tests.test_keras_parity import architectures, build_keras, random_weights

pytestmark = [pytest.mark.keras,
              # Keras 3 converting its variables with NumPy 2 (not ours to fix).
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def keras():
    """Keras through the one quiet import; the test is skipped where Keras is missing."""
    from minicnn.interop.keras import import_keras

    try:
        return import_keras()
    except RuntimeError as error:
        pytest.skip(str(error))


def bridge():
    keras()
    from minicnn.interop import keras as bridge_module

    return bridge_module


def keras_output(keras_model, x) -> np.ndarray:
    return keras().ops.convert_to_numpy(keras_model(x, training=False))


def assert_same_weights(actual: list, expected: list, what: str) -> None:
    assert len(actual) == len(expected), what
    for index, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: weight {index}"
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: weight {index}")


# One Keras layer of each class, with non-default options wherever minicnn has them.
def _every_layer_type():
    k = keras()
    return {
        "Conv2D": ((9, 8, 3), k.layers.Conv2D(
            4, (3, 2), strides=(2, 1), padding="same", activation="tanh", use_bias=False,
            kernel_initializer=k.initializers.HeNormal(seed=3), name="my_conv")),
        "Conv2D-default": ((9, 8, 3), k.layers.Conv2D(2, 3, name="plain_conv")),
        "MaxPooling2D": ((9, 8, 3), k.layers.MaxPooling2D((3, 2), strides=(2, 2), padding="same",
                                                          name="my_max")),
        "AveragePooling2D": ((9, 8, 3), k.layers.AveragePooling2D((2, 3), strides=(1, 2),
                                                                  name="my_average")),
        "Dense": ((6,), k.layers.Dense(5, activation="sigmoid", bias_initializer="ones",
                                       name="my_dense")),
        "Dense-on-images": ((4, 4, 3), k.layers.Dense(2, activation="relu", name="pixel_dense")),
        "Flatten": ((4, 3, 2), k.layers.Flatten(name="my_flatten")),
        "Dropout": ((7,), k.layers.Dropout(0.3, seed=7, name="my_dropout")),
        "Activation": ((7,), k.layers.Activation("softmax", name="my_softmax")),
    }


@pytest.mark.parametrize("case", ["Conv2D", "Conv2D-default", "MaxPooling2D", "AveragePooling2D",
                                  "Dense", "Dense-on-images", "Flatten", "Dropout", "Activation"])
def test_every_layer_type_round_trips_both_ways(case):
    k = keras()
    input_shape, keras_layer = _every_layer_type()[case]
    original = k.Sequential([k.Input(input_shape), keras_layer], name=f"model_{case.lower()}")
    if keras_layer.weights:
        rng = np.random.default_rng(1)
        original.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                              for w in keras_layer.weights])
        keras_layer.trainable = False  # the flag must travel too
    model = bridge().from_keras(original)

    (layer,) = model.layers
    assert type(layer).__name__ == type(keras_layer).__name__
    assert layer.name == keras_layer.name and model.name == original.name
    assert layer.trainable == keras_layer.trainable
    assert model.input_shape == tuple(original.inputs[0].shape)
    assert_same_weights(layer.get_weights(), [np.asarray(w) for w in keras_layer.get_weights()],
                        f"{case} from_keras")
    x = np.random.default_rng(2).standard_normal((3, *input_shape)).astype(np.float32)
    assert_close(model.predict(x, verbose=0), keras_output(original, x), **FLOAT32_ROUNDOFF,
                 what=f"{case} outputs")

    back = bridge().to_keras(model)
    (back_layer,) = back.layers
    assert type(back_layer) is type(keras_layer)
    # Keras's own config, option by option (initializers, seeds, dtype policy included).
    assert back_layer.get_config() == keras_layer.get_config()
    assert back.name == original.name
    assert_same_weights([np.asarray(w) for w in back_layer.get_weights()],
                        [np.asarray(w) for w in keras_layer.get_weights()], f"{case} to_keras")
    np.testing.assert_array_equal(keras_output(back, x), keras_output(original, x))

    # And minicnn -> Keras -> minicnn gives minicnn's config back.
    assert bridge().from_keras(back).layers[0].get_config() == layer.get_config()


def test_minicnn_model_round_trips_through_keras():
    """A model built in minicnn (the book's convnet) keeps names, configs and weights."""
    from minicnn.applications import mnist_convnet

    minicnn.utils.clear_session()
    model = mnist_convnet()
    model.layers[0].trainable = False
    keras_model = bridge().to_keras(model)
    assert [layer.name for layer in keras_model.layers] == [layer.name for layer in model.layers]
    assert keras_model.count_params() == model.count_params() == 93_322
    assert not keras_model.layers[0].trainable and keras_model.layers[2].trainable
    again = bridge().from_keras(keras_model)
    assert [layer.get_config() for layer in again.layers] == \
        [layer.get_config() for layer in model.layers]
    assert_same_weights(again.get_weights(), model.get_weights(), "convnet round trip")
    x = np.random.default_rng(0).uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)
    assert_close(model.predict(x, verbose=0), keras_output(keras_model, x), **FLOAT32_ROUNDOFF,
                 what="convnet outputs")


def test_a_model_used_as_a_layer_becomes_a_nested_keras_model():
    """The book's fine-tuning model (section 5.3.2): the VGG16 base added as a layer, block 5
    unfrozen; Keras gets the same nesting, trainable weights and predictions."""
    from minicnn.applications import VGG16

    base = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = minicnn.Sequential([base, layers.Flatten(), layers.Dense(8, activation="relu"),
                                layers.Dense(1, activation="sigmoid")])
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5")
    keras_model = bridge().to_keras(model)
    assert [layer.name for layer in keras_model.layers] == [layer.name for layer in model.layers]
    assert len(keras_model.trainable_weights) == len(model.trainable_weights) == 10
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    assert_close(model.predict(x, verbose=0), keras_output(keras_model, x), **FLOAT32_ROUNDOFF,
                 what="nested model outputs")
    base.trainable = False
    assert len(bridge().to_keras(model).trainable_weights) == len(model.trainable_weights) == 4


def test_transfer_copies_instead_of_sharing_memory():
    k = keras()
    original = k.Sequential([k.Input((3,)), k.layers.Dense(2)])
    model = bridge().from_keras(original)
    before = np.asarray(original.layers[0].kernel).copy()
    model.layers[0].kernel.value += 1
    np.testing.assert_array_equal(np.asarray(original.layers[0].kernel), before)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(architecture=architectures(), seed=st.integers(0, 2**16), frozen=st.integers(0, 5))
def test_random_architectures_round_trip_keras_minicnn_keras(architecture, seed, frozen):
    """Keras -> minicnn -> Keras: identical weights, names, flags, configs; equal outputs."""
    input_shape, spec = architecture
    original = build_keras(input_shape, spec)
    rng = np.random.default_rng(seed)
    original.set_weights(random_weights(bridge().from_keras(original), rng))
    if frozen < len(original.layers):
        original.layers[frozen].trainable = False
    model = bridge().from_keras(original)
    back = bridge().to_keras(model)

    assert_same_weights(model.get_weights(), [np.asarray(w) for w in original.get_weights()],
                        "Keras -> minicnn")
    assert_same_weights([np.asarray(w) for w in back.get_weights()],
                        [np.asarray(w) for w in original.get_weights()], "minicnn -> Keras")
    for ours, theirs, again in zip(model.layers, original.layers, back.layers):
        assert ours.name == theirs.name == again.name
        assert ours.trainable == theirs.trainable == again.trainable
        assert again.get_config() == theirs.get_config()
    x = rng.standard_normal((4, *input_shape)).astype(np.float32)
    expected = keras_output(original, x)
    np.testing.assert_array_equal(keras_output(back, x), expected)
    assert_close(model.predict(x, verbose=0), expected, **FLOAT32_ROUNDOFF,
                 what=f"minicnn outputs of {spec}")


# ------------------------------------------------------------------------------ errors
def test_unsupported_keras_layer_gives_one_clear_error():
    k = keras()
    model = k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(2, 3),
                          k.layers.BatchNormalization(name="bn")])
    with pytest.raises(bridge().UnsupportedKerasLayerError) as caught:
        bridge().from_keras(model)
    message = str(caught.value)
    assert "'bn'" in message and "BatchNormalization" in message
    for name in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "Dense", "Flatten", "Dropout",
                 "Activation"):
        assert name in message
    assert isinstance(caught.value, ValueError)  # the CLI reports ValueErrors in one line


@pytest.mark.parametrize("make_layer, words", [
    (lambda k: k.layers.Conv2D(2, 3, dilation_rate=2, name="dilated"), ["'dilated'", "dilation_rate"]),
    (lambda k: k.layers.Dense(2, activation="gelu", name="gelu_dense"), ["'gelu_dense'", "gelu"]),
    (lambda k: k.layers.Dense(2, kernel_regularizer="l2", name="regularized"),
     ["'regularized'", "kernel_regularizer"]),
    (lambda k: k.layers.Dropout(0.5, noise_shape=(None, 1), name="shaped"), ["noise_shape"]),
])
def test_unsupported_options_are_refused_by_name(make_layer, words):
    k = keras()
    model = k.Sequential([k.Input((6, 6, 2)), k.layers.Dense(3), make_layer(k)])
    with pytest.raises(bridge().UnsupportedKerasLayerError) as caught:
        bridge().from_keras(model)
    for word in words:
        assert word in str(caught.value)


def test_subclassed_keras_layer_is_not_taken_for_its_parent():
    k = keras()

    class Doubling(k.layers.Dense):
        def call(self, inputs):
            return 2 * super().call(inputs)

    model = k.Sequential([k.Input((4,)), Doubling(2, name="doubling")])
    with pytest.raises(bridge().UnsupportedKerasLayerError, match="'doubling' \\(Doubling\\)"):
        bridge().from_keras(model)


def test_non_chain_functional_model_is_refused():
    k = keras()
    inputs = k.Input((4,))
    hidden = k.layers.Dense(4, name="hidden")(inputs)
    outputs = k.layers.Dense(4, name="skip")(inputs + hidden)
    with pytest.raises(ValueError, match="chain"):
        bridge().from_keras(k.Model(inputs, outputs))


def test_keras_model_without_fixed_input_shape_is_refused():
    k = keras()
    model = k.Sequential([k.Input((None, None, 3)), k.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="fixed"):
        bridge().from_keras(model)


def test_unbuilt_minicnn_model_cannot_go_to_keras():
    with pytest.raises(ValueError, match="not built"):
        bridge().to_keras(minicnn.Sequential([layers.Dense(2)]))


# ------------------------------------------------------------------------- weight files
def _keras_convnet(k):
    return k.Sequential([k.Input((12, 12, 2)), k.layers.Conv2D(3, 3, activation="relu"),
                         k.layers.MaxPooling2D(), k.layers.Conv2D(4, 2, padding="same"),
                         k.layers.Flatten(), k.layers.Dense(3, activation="softmax")])


def _minicnn_convnet():
    return minicnn.Sequential([minicnn.Input((12, 12, 2)), layers.Conv2D(3, 3, activation="relu"),
                               layers.MaxPooling2D(), layers.Conv2D(4, 2, padding="same"),
                               layers.Flatten(), layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("file_name", ["model.weights.h5", "whole_model.h5", "legacy.weights.h5"])
def test_weights_file_written_by_keras_loads_into_minicnn(tmp_path, file_name):
    """Keras 3 ``save_weights`` (.weights.h5), Keras's legacy whole-model ``.h5``
    (``save("x.h5")``) and a legacy weights-only file (the ImageNet files' format)."""
    k = keras()
    keras_model = _keras_convnet(k)
    path = tmp_path / file_name
    if file_name == "model.weights.h5":
        keras_model.save_weights(path)
    elif file_name == "whole_model.h5":
        keras_model.save(path)
    else:
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        path = tmp_path / "legacy.h5"
        with h5py.File(path, "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, keras_model)
    model = _minicnn_convnet()
    bridge().load_weights(model, path)
    assert_same_weights(model.get_weights(), [np.asarray(w) for w in keras_model.get_weights()],
                        file_name)


def test_weights_files_match_by_name_first_then_by_position_as_keras(tmp_path):
    """Layers whose names are all in the file load by name, whatever the order of the
    model; otherwise by position, which is what Keras's ``load_weights`` does."""
    k = keras()
    keras_model = k.Sequential([k.Input((4,)), k.layers.Dense(4, name="first"),
                                k.layers.Dense(4, name="second")])
    keras_model.save_weights(tmp_path / "m.weights.h5")
    keras_model.save(tmp_path / "m.h5")
    first, second = [np.asarray(w) for w in keras_model.get_weights()[:2]], \
        [np.asarray(w) for w in keras_model.get_weights()[2:]]
    for path in (tmp_path / "m.weights.h5", tmp_path / "m.h5"):
        # Same names, swapped order: by name.
        model = minicnn.Sequential([minicnn.Input((4,)), layers.Dense(4, name="second"),
                                    layers.Dense(4, name="first")])
        bridge().load_weights(model, path)
        assert_same_weights(model.layers[0].get_weights(), second, f"{path.name} by name")
        assert_same_weights(model.layers[1].get_weights(), first, f"{path.name} by name")
        # Other names: by position.
        model = minicnn.Sequential([minicnn.Input((4,)), layers.Dense(4, name="a"),
                                    layers.Dense(4, name="b")])
        bridge().load_weights(model, path)
        assert_same_weights(model.get_weights(), first + second, f"{path.name} by position")


def test_weights_file_that_does_not_fit_changes_nothing(tmp_path):
    k = keras()
    keras_model = k.Sequential([k.Input((12, 12, 2)), k.layers.Conv2D(5, 3, name="conv2d")])
    keras_model.save(tmp_path / "other.h5")
    model = minicnn.Sequential([minicnn.Input((12, 12, 2)), layers.Conv2D(3, 3, name="conv2d")])
    before = model.get_weights()
    with pytest.raises(ValueError, match="conv2d"):
        bridge().load_weights(model, tmp_path / "other.h5")
    assert_same_weights(model.get_weights(), before, "after a failed load")


def test_missing_or_foreign_weights_file(tmp_path):
    model = _minicnn_convnet()
    with pytest.raises(FileNotFoundError):
        bridge().load_weights(model, tmp_path / "absent.h5")
    import h5py

    with h5py.File(tmp_path / "foreign.h5", "w") as handle:
        handle["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a Keras weights file"):
        bridge().load_weights(model, tmp_path / "foreign.h5")


# --------------------------------------------------------------------------------- CLI
def test_cli_summary_keras_verdict_all_equal(capsys):
    """As in a fresh ``minicnn`` process, both engines start their automatic names at 0."""
    from minicnn.cli import main

    minicnn.utils.clear_session()
    keras().backend.clear_session()

    assert main(["summary", "mnist-convnet", "--keras"]) == 0
    output = capsys.readouterr().out
    assert "verdict: all 11 rows equal (93,322 parameters)" in output
    assert "DIFFERS" not in output


def test_cli_summary_keras_exits_non_zero_on_a_mismatch(capsys, monkeypatch):
    from minicnn import cli
    from minicnn.interop import keras as keras_bridge

    k = keras()
    wrong = k.Sequential([k.Input((28, 28, 1)), k.layers.Conv2D(16, (3, 3)),
                          k.layers.Conv2D(64, (3, 3)), k.layers.Conv2D(64, (3, 3))])
    monkeypatch.setattr(keras_bridge, "keras_reference_model", lambda name: wrong)
    assert cli.main(["summary", "no-max-pool", "--keras"]) == 1
    output = capsys.readouterr().out
    assert "DIFFERS" in output and "rows differ" in output


def test_interop_module_does_not_import_keras_until_called():
    import subprocess

    code = ("import sys, minicnn, minicnn.interop.keras, minicnn.applications; "
            "print('keras' in sys.modules or 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"

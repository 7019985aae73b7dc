"""VGG16: Keras's layer names and parameter counts (no TensorFlow needed), argument
checks, weights files, and outputs equal to Keras's on the same weights.

Outputs are compared on a 32x32 input (the smallest VGG16 accepts: five pools take it
to 1x1) preprocessed as Keras does, with rtol 1e-4 and atol 1e-5 x the largest output
magnitude: thirteen float32 convolutions accumulate round-off relative to the
activations' scale, which depends on the random weights, not on any fixed unit.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.applications import VGG16
from minicnn.applications.vgg16 import preprocess_input
from tests.helpers import assert_close, assert_weights_equal

# Keras 3 converting its variables with NumPy 2 (not ours to fix).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CONV_BASE_NAMES = [
    "block1_conv1", "block1_conv2", "block1_pool",
    "block2_conv1", "block2_conv2", "block2_pool",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_pool",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool",
]


def test_conv_base_names_shapes_and_14714688_parameters():
    model = VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
    assert model.name == "vgg16"
    assert [layer.name for layer in model.layers] == CONV_BASE_NAMES
    assert model.count_params() == 14_714_688
    assert model.output_shape == (None, 4, 4, 512)  # 150 -> 75 -> 37 -> 18 -> 9 -> 4
    conv = model.get_layer("block3_conv2")
    assert (conv.filters, conv.kernel_size, conv.padding, conv.activation.name) == \
        (256, (3, 3), "same", "relu")
    assert conv.count_params() == 3 * 3 * 256 * 256 + 256


def test_with_top_138357544_parameters_and_keras_names():
    model = VGG16(weights=None, include_top=True)
    assert [layer.name for layer in model.layers] == \
        CONV_BASE_NAMES + ["flatten", "fc1", "fc2", "predictions"]
    assert model.count_params() == 138_357_544
    assert model.output_shape == (None, 1000)
    assert model.get_layer("predictions").activation.name == "softmax"


@pytest.mark.parametrize("arguments, message", [
    (dict(weights=None, include_top=False, input_shape=(31, 64, 3)), "at least 32x32"),
    (dict(weights=None, include_top=False, input_shape=(64, 64)), "three integers"),
    (dict(weights="imagenet", include_top=True, input_shape=(150, 150, 3)), "(224, 224, 3)"),
    (dict(weights="imagenet", include_top=True, classes=10), "classes"),
    (dict(weights="no/such/file.h5"), "weights"),
    (dict(weights=None, include_top=False, pooling="avg"), "pooling"),
])
def test_bad_arguments_are_refused_as_keras_does(arguments, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        VGG16(**arguments)


def test_preprocess_input_is_keras_caffe_mode():
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(1, 2, 2, 3)
    result = preprocess_input(image)
    assert result.dtype == np.float32
    # BGR order, ImageNet mean subtracted per channel.
    np.testing.assert_allclose(result[0, 0, 0], [2 - 103.939, 1 - 116.779, 0 - 123.68], rtol=1e-6)


@pytest.mark.keras
def test_preprocess_input_equals_keras():
    keras = pytest.importorskip("keras")
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_array_equal(preprocess_input(images), expected)


@pytest.mark.keras
def test_outputs_equal_keras_on_the_same_weights_and_preprocessed_input(tmp_path):
    """Keras's own VGG16 (random weights) -> a weights file -> minicnn's VGG16: the
    file loads into layers of the same names, and the outputs agree."""
    keras = pytest.importorskip("keras")
    keras_model = keras.applications.VGG16(weights=None, include_top=False,
                                           input_shape=(32, 32, 3))
    keras_model.save_weights(tmp_path / "vgg16.weights.h5")
    model = VGG16(weights=str(tmp_path / "vgg16.weights.h5"), include_top=False,
                  input_shape=(32, 32, 3))
    assert_weights_equal(model.get_weights(), keras_model.get_weights(),
                         what="VGG16 loaded from Keras's file")

    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    x = preprocess_input(images)
    expected = keras.ops.convert_to_numpy(keras_model(x, training=False))
    actual = model.predict(x, verbose=0)
    scale = float(np.abs(expected).max())
    assert scale > 0
    assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale, what="VGG16 block5_pool output")


@pytest.mark.keras
def test_legacy_h5_file_loads_as_the_imagenet_files_do(tmp_path):
    """The downloadable ImageNet files are Keras 2 style .h5; Keras writes that format
    for ``model.save("x.h5")``, which loads by layer name here."""
    keras = pytest.importorskip("keras")
    keras_model = keras.applications.VGG16(weights=None, include_top=False,
                                           input_shape=(32, 32, 3))
    keras_model.save(tmp_path / "vgg16.h5")
    model = VGG16(weights=tmp_path / "vgg16.h5", include_top=False, input_shape=(32, 32, 3))
    assert_weights_equal(model.get_weights(), keras_model.get_weights(),
                         what="VGG16 loaded from Keras's file")


@pytest.mark.keras
def test_imagenet_through_keras_and_from_keras(monkeypatch):
    """weights="imagenet" asks Keras for its VGG16 and converts it with from_keras (the
    download itself is replaced here: tests never use the network)."""
    keras = pytest.importorskip("keras")
    calls = []

    def fake_vgg16(**arguments):
        calls.append(arguments)
        return keras.applications.vgg16.VGG16(
            **{**arguments, "weights": None})

    monkeypatch.setattr(keras.applications, "VGG16", fake_vgg16)
    model = VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    assert calls and calls[0]["weights"] == "imagenet" and calls[0]["include_top"] is False
    assert [layer.name for layer in model.layers] == CONV_BASE_NAMES
    assert model.count_params() == 14_714_688


@pytest.mark.keras
def test_imagenet_offline_says_so_and_how_to_pass_a_local_file(monkeypatch):
    keras = pytest.importorskip("keras")

    def offline(**arguments):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -2] Name or service not known")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(RuntimeError) as caught:
        VGG16(weights="imagenet", include_top=False, input_shape=(150, 150, 3))
    message = str(caught.value)
    assert "offline" in message and "URL fetch failure" in message
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "weights='/path/to/" in message

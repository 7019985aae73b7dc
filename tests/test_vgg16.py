"""VGG16: Keras's layer names and parameter counts (no TensorFlow needed), argument
checks, weights files, and outputs equal to Keras's on the same weights.

Outputs, gradients and one RMSprop step are compared on a 32x32 input (the smallest
VGG16 accepts: five pools take it to 1x1) preprocessed as Keras does, against Keras's
own ``keras.applications.VGG16`` (an independent reference: minicnn receives its
weights).  Differences are measured as ``compare.parity`` and the README measure them:
the largest difference relative to the largest Keras value (thirteen float32
convolutions accumulate round-off relative to the activations' scale, which depends on
the random weights, not on any fixed unit), and weights after a step relative to the
largest update.  Each bar is a named constant with the measured figure; the README
reports 2.9e-6 (activations and gradients) and 2.4e-4 (weights after one step) for the
VGG16 base at 150x150, and each bar fails if that figure gets ten times worse.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.applications import VGG16
from minicnn.applications.vgg16 import preprocess_input
from tests.helpers import assert_close, assert_weights_equal

# block5_pool output at 32x32, relative to its largest value: measured 1.8e-6; bar 1e-5.
FORWARD_RELATIVE = 1e-5
# d loss / d input and d loss / d every kernel and bias, relative to the largest Keras
# value of each: measured 1.8e-6 (input) and 1.3e-6 (weights); bar 1e-5 (README: 2.9e-6).
GRADIENT_RELATIVE = 1e-5
# Weights after one RMSprop step (lr 1e-5), relative to the largest update Keras made:
# measured 2.4e-4 (one or two float32 spacings of the weight); bar 1e-3 (README: 2.4e-4).
STEP_RELATIVE_TO_UPDATE = 1e-3

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
    assert_close(actual, expected, rtol=0.0, atol=FORWARD_RELATIVE * scale,
                 what="VGG16 block5_pool output")


@pytest.mark.keras
def test_gradients_and_one_rmsprop_step_equal_keras():
    """VGG16's backward pass and one optimizer step against Keras's: batch 2 at 32x32,
    mean squared error against random targets, RMSprop at the chapter's fine-tuning rate."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    keras.utils.set_random_seed(0)
    keras_model = keras.applications.VGG16(weights=None, include_top=False,
                                           input_shape=(32, 32, 3))
    model = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model.set_weights(keras_model.get_weights())
    rng = np.random.default_rng(1)
    x = preprocess_input(rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    y = rng.uniform(0, 1, (2, 1, 1, 512)).astype(np.float32)

    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = tf.reduce_mean(tf.square(keras_model(inputs, training=True) - y))
    gradients = tape.gradient(loss, [inputs] + keras_model.trainable_variables)
    expected_dx = gradients[0].numpy()
    expected_dw = [gradient.numpy() for gradient in gradients[1:]]

    output = model.forward(x, training=True)
    dx = model.backward((2.0 * (output - y) / output.size).astype(np.float32),
                        need_input_grad=True)
    dw = [variable.grad for variable in model.trainable_weights]
    assert np.float32(np.mean((output - y) ** 2)) == pytest.approx(float(loss), rel=1e-6)
    assert_close(dx, expected_dx, rtol=0.0,
                 atol=GRADIENT_RELATIVE * float(np.abs(expected_dx).max()), what="d loss / d x")
    assert len(dw) == len(expected_dw) == 26
    for variable, ours, theirs in zip(model.trainable_weights, dw, expected_dw):
        scale = float(np.abs(theirs).max())
        assert scale > 0, f"{variable.name}: Keras's gradient is all zero (a dead layer)"
        assert_close(ours, theirs, rtol=0.0, atol=GRADIENT_RELATIVE * scale,
                     what=f"d loss / d {variable.name}")

    from minicnn import optimizers

    initial = keras_model.get_weights()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-5), loss="mse")
    keras_model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-5), loss="mse",
                        run_eagerly=True)
    our_loss, their_loss = model.train_on_batch(x, y), keras_model.train_on_batch(x, y)
    assert our_loss == pytest.approx(float(their_loss), rel=1e-6)
    after, expected_after = model.get_weights(), keras_model.get_weights()
    assert len(after) == len(expected_after) == len(initial) == 26
    for index, (ours, theirs, start) in enumerate(zip(after, expected_after, initial)):
        update = float(np.abs(theirs - start).max())
        assert update > 0, f"weight {index}: Keras did not move it"
        assert_close(ours, theirs, rtol=0.0, atol=STEP_RELATIVE_TO_UPDATE * update,
                     what=f"weight {index} after one RMSprop step")


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

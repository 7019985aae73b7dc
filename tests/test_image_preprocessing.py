"""ImageDataGenerator: the warp against tf-keras (Keras 2) and against the definitions.

Tiers: Keras parity (``apply_transform`` on hypothesis-drawn parameters in every fill
mode, seeded parameter draws, seeded ``flow`` batches); definitions checked without
Keras (identity, flips, shifts of a marked pixel, each fill mode at the borders);
seeding; the NumPy and Numba warps against each other; errors; the figure; ``fit``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import layers
from minicnn.preprocessing import ImageDataGenerator, plot_augmented_images
from minicnn.preprocessing.affine import FILL_MODES, warp_affine
from tests.helpers import assert_close

# tf-keras calls scipy.ndimage.interpolation.affine_transform, a deprecated path (theirs).
KERAS_WARNINGS = pytest.mark.filterwarnings(
    "ignore:Please import `affine_transform`:DeprecationWarning")

# Bilinear interpolation in float64, stored as float32: values up to 255 agree to a few
# float32 ulps (one ulp at 255 is 1.5e-5). In practice the two agree bit for bit.
INTERPOLATION_ROUNDOFF = dict(rtol=0.0, atol=1e-3)

SEED_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                         shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                         fill_mode="nearest")


def keras_image_module():
    pytest.importorskip("tf_keras")
    pytest.importorskip("scipy")
    from tf_keras.preprocessing import image

    return image


def random_image(seed: int, height: int, width: int, channels: int) -> np.ndarray:
    return np.random.RandomState(seed).uniform(0, 255, (height, width, channels)).astype(np.float32)


def neutral_or(strategy):
    """Mostly ``strategy``, sometimes the neutral value 0 (Keras skips work on zeros)."""
    return st.one_of(st.just(0), strategy)


transform_parameters = st.fixed_dictionaries({
    "theta": neutral_or(st.floats(-180, 180)),
    "tx": neutral_or(st.one_of(st.integers(-14, 14), st.floats(-14, 14))),
    "ty": neutral_or(st.one_of(st.integers(-14, 14), st.floats(-14, 14))),
    "shear": neutral_or(st.floats(-45, 45)),
    "zx": st.one_of(st.just(1), st.floats(0.4, 1.8)),
    "zy": st.one_of(st.just(1), st.floats(0.4, 1.8)),
    "flip_horizontal": st.booleans(),
    "flip_vertical": st.booleans(),
})


# -- Keras parity --------------------------------------------------------------------------

@pytest.mark.keras
@KERAS_WARNINGS
@pytest.mark.parametrize("fill_mode", FILL_MODES)
@settings(max_examples=60, deadline=None)
@given(parameters=transform_parameters, height=st.integers(1, 12), width=st.integers(1, 12),
       channels=st.sampled_from([1, 3]), image_seed=st.integers(0, 2 ** 31 - 1),
       cval=st.sampled_from([0.0, 127.5, -3.0]))
def test_apply_transform_matches_tf_keras(fill_mode, parameters, height, width, channels,
                                          image_seed, cval):
    image = keras_image_module()
    x = random_image(image_seed, height, width, channels)
    expected = image.ImageDataGenerator(fill_mode=fill_mode, cval=cval).apply_transform(
        x, parameters)
    actual = ImageDataGenerator(fill_mode=fill_mode, cval=cval).apply_transform(x, parameters)
    assert actual.dtype == expected.dtype
    assert_close(actual, expected, **INTERPOLATION_ROUNDOFF,
                 what=f"apply_transform({parameters}) with fill_mode={fill_mode}")


@pytest.mark.keras
@KERAS_WARNINGS
def test_channel_shift_and_brightness_match_tf_keras():
    image = keras_image_module()
    x = random_image(3, 9, 11, 3)
    for parameters in ({"channel_shift_intensity": 30.0},
                       {"theta": 20.0, "channel_shift_intensity": -40.0, "flip_horizontal": True},
                       {"brightness": 0.6}, {"brightness": 1.4, "tx": 2.5}):
        expected = image.ImageDataGenerator().apply_transform(x, parameters)
        actual = ImageDataGenerator().apply_transform(x, parameters)
        assert_close(actual, expected, **INTERPOLATION_ROUNDOFF, what=str(parameters))
    # Brightness on values outside 0-255 goes through Keras's stretch and back.
    wide = (x - 100.0) * 2
    expected = image.ImageDataGenerator().apply_transform(wide, {"brightness": 0.8})
    assert_close(ImageDataGenerator().apply_transform(wide, {"brightness": 0.8}), expected,
                 rtol=1e-5, atol=1e-3, what="brightness on a wide range")


@pytest.mark.keras
@KERAS_WARNINGS
@pytest.mark.parametrize("arguments", [
    SEED_AUGMENTATION,
    dict(rotation_range=10, width_shift_range=3, height_shift_range=[1, 2, 4], zoom_range=[0.8, 1.1],
         vertical_flip=True, channel_shift_range=10.0, brightness_range=(0.5, 1.5)),
    dict(width_shift_range=2.5, height_shift_range=0.0),
], ids=["seed", "int-and-list-ranges", "pixel-float-range"])
def test_seeded_random_parameters_match_tf_keras(arguments):
    image = keras_image_module()
    for seed in range(8):
        expected = image.ImageDataGenerator(**arguments).get_random_transform((10, 14, 3), seed=seed)
        actual = ImageDataGenerator(**arguments).get_random_transform((10, 14, 3), seed=seed)
        assert actual == expected


@pytest.mark.keras
@KERAS_WARNINGS
def test_seeded_flow_yields_the_same_batches_as_tf_keras():
    """Same seed: same shuffles and transforms, by index, across epochs, and by next()."""
    image = keras_image_module()
    arguments = dict(SEED_AUGMENTATION, fill_mode="reflect", vertical_flip=True, rescale=1 / 255)
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 255, (10, 12, 12, 3)).astype(np.float32)
    y = np.arange(10)
    keras_batches = image.ImageDataGenerator(**arguments).flow(x, y, batch_size=4, seed=11)
    our_batches = ImageDataGenerator(**arguments).flow(x, y, batch_size=4, seed=11)
    assert len(our_batches) == len(keras_batches) == 3
    for epoch in range(2):
        for index in range(len(our_batches)):
            (x_keras, y_keras), (x_ours, y_ours) = keras_batches[index], our_batches[index]
            np.testing.assert_array_equal(y_ours, y_keras)
            assert_close(x_ours, x_keras, rtol=0, atol=1e-5, what=f"epoch {epoch} batch {index}")
        keras_batches.on_epoch_end()
        our_batches.on_epoch_end()
    for step in range(4):
        (x_keras, y_keras), (x_ours, y_ours) = next(keras_batches), next(our_batches)
        np.testing.assert_array_equal(y_ours, y_keras)
        assert_close(x_ours, x_keras, rtol=0, atol=1e-5, what=f"next() step {step}")


# -- definitions, no Keras needed ---------------------------------------------------------

def test_zero_ranges_give_back_the_input_exactly():
    x = random_image(1, 12, 12, 3)
    generator = ImageDataGenerator()
    np.testing.assert_array_equal(generator.random_transform(x), x)
    np.testing.assert_array_equal(generator.apply_transform(x, generator.get_random_transform(x.shape)), x)
    neutral = {"theta": 0, "tx": 0, "ty": 0, "shear": 0, "zx": 1, "zy": 1,
               "flip_horizontal": False, "flip_vertical": False,
               "channel_shift_intensity": None, "brightness": None}
    assert generator.get_random_transform(x.shape) == neutral
    np.testing.assert_array_equal(generator.apply_transform(x, neutral), x)
    batch, labels = next(generator.flow(x[None], np.array([7]), batch_size=1, shuffle=False))
    np.testing.assert_array_equal(batch[0], x)
    assert labels.tolist() == [7]


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_flips_are_exact_mirrors(fill_mode):
    x = random_image(2, 12, 9, 3)
    generator = ImageDataGenerator(fill_mode=fill_mode)
    np.testing.assert_array_equal(generator.apply_transform(x, {"flip_horizontal": True}), x[:, ::-1])
    np.testing.assert_array_equal(generator.apply_transform(x, {"flip_vertical": True}), x[::-1])
    flipping = ImageDataGenerator(horizontal_flip=True)
    outcomes = {flipping.random_transform(x, seed=seed)[0, 0, 0] for seed in range(20)}
    assert outcomes == {x[0, 0, 0], x[0, -1, 0]}  # both happen, nothing else does


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("height, width", [(12, 12), (7, 12)])
def test_shifts_move_a_marked_pixel_by_the_expected_amount(fill_mode, height, width):
    """An output pixel (r, c) reads the input at (r + ty, c + tx): content moves by -t.

    As in Keras, ``tx`` acts on columns and ``ty`` on rows (of a channels-last image).
    """
    x = np.zeros((height, width, 1), np.float32)
    x[3, 5, 0] = 1.0
    generator = ImageDataGenerator(fill_mode=fill_mode, cval=0.0)
    for tx, ty in [(2, 0), (-3, 0), (0, 2), (0, -1), (2, -2), (1, 3)]:
        moved = generator.apply_transform(x, {"tx": tx, "ty": ty})
        assert moved[3 - ty, 5 - tx, 0] == 1.0
        if fill_mode in ("constant", "nearest"):  # reflect and wrap may repeat the mark
            assert moved.sum() == 1.0
    # A half-pixel shift splits the mark between two neighbours, bilinearly.
    half = generator.apply_transform(x, {"tx": 0.5})
    assert half[3, 4, 0] == pytest.approx(0.5) and half[3, 5, 0] == pytest.approx(0.5)
    # Through the random draw: height_shift_range draws tx, scaled by the image height.
    drawn = ImageDataGenerator(height_shift_range=0.25).get_random_transform((height, width, 1), seed=0)
    assert abs(drawn["tx"]) <= 0.25 * height and drawn["ty"] == 0


def extended_index(index: int, length: int, fill_mode: str) -> int | None:
    """Where SciPy's (and so Keras's) fill mode reads input sample ``index`` (None = cval).

    Written from the definitions, on a row ``a b c d``: nearest ``aaaa|abcd|dddd``;
    reflect ``dcba|abcd|dcba`` (period 2n); wrap: period n - 1, the first and last
    samples being the same point (SciPy's "wrap", not "grid-wrap"); constant: cval.
    """
    if 0 <= index < length:
        return index
    if fill_mode == "constant":
        return None
    if fill_mode == "nearest" or length == 1:
        return 0 if index < 0 else length - 1
    if fill_mode == "reflect":
        position = index % (2 * length)
        return position if position < length else 2 * length - 1 - position
    if fill_mode == "wrap":
        period = length - 1
        position = index % period
        if index < 0:  # coming from the left, the shared point reads as the last sample
            return length - 1 if position == 0 else position
        return position
    raise AssertionError(fill_mode)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("length", [1, 2, 5, 12])
def test_every_fill_mode_matches_its_definition_at_the_borders(fill_mode, length):
    cval = -7.0
    rng = np.random.RandomState(length)
    x = rng.uniform(0, 255, (length, length, 2)).astype(np.float32)
    generator = ImageDataGenerator(fill_mode=fill_mode, cval=cval)
    for shift in range(-3 * length - 2, 3 * length + 3):
        along_columns = generator.apply_transform(x, {"tx": shift})
        along_rows = generator.apply_transform(x, {"ty": shift})
        for j in range(length):
            source = extended_index(j + shift, length, fill_mode)
            expected_column = np.full((length, 2), cval) if source is None else x[:, source]
            expected_row = np.full((length, 2), cval) if source is None else x[source]
            np.testing.assert_array_equal(along_columns[:, j], expected_column,
                                          err_msg=f"{fill_mode}: tx={shift}, column {j}")
            np.testing.assert_array_equal(along_rows[j], expected_row,
                                          err_msg=f"{fill_mode}: ty={shift}, row {j}")


def test_wrap_is_not_the_period_n_wrap_the_keras_docstring_draws():
    x = np.arange(4, dtype=np.float32).reshape(1, 4, 1) + 1  # a b c d = 1 2 3 4
    shifted = ImageDataGenerator(fill_mode="wrap").apply_transform(np.repeat(x, 4, 0), {"tx": -1})
    # Column 0 reads sample -1: "c" (period 3), not "d" as abcd|abcd would give.
    assert shifted[0, :, 0].tolist() == [3.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@settings(max_examples=25, deadline=None)
@given(matrix=st.lists(st.floats(-2, 2), min_size=4, max_size=4),
       offset=st.lists(st.floats(-20, 20), min_size=2, max_size=2),
       shape=st.tuples(st.integers(1, 9), st.integers(1, 9)), order=st.sampled_from([0, 1]))
def test_numpy_and_numba_warps_agree_bit_for_bit(fill_mode, matrix, offset, shape, order):
    image = random_image(sum(shape), *shape, 2)
    matrix = np.array(matrix).reshape(2, 2)
    by_numpy = warp_affine(image, matrix, offset, fill_mode, 5.0, order, implementation="numpy")
    by_numba = warp_affine(image, matrix, offset, fill_mode, 5.0, order, implementation="numba")
    np.testing.assert_array_equal(by_numba, by_numpy)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_warp_keeps_the_dtype_and_rounds_integers_like_scipy(dtype):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = random_image(4, 8, 8, 1)[:, :, 0].astype(dtype)
    matrix, offset = np.array([[0.9, 0.3], [-0.2, 1.1]]), np.array([0.37, -1.61])
    for mode in FILL_MODES:
        expected = ndimage.affine_transform(x, matrix, offset, order=1, mode=mode, cval=3.0)
        actual = warp_affine(x, matrix, offset, mode, 3.0)
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)


def test_rescale_and_samplewise_standardization():
    x = random_image(5, 6, 6, 3)
    batch = next(ImageDataGenerator(rescale=1 / 255).flow(x[None], batch_size=1))
    assert_close(batch[0], x / 255, rtol=1e-6, atol=1e-7, what="rescale")
    centred = next(ImageDataGenerator(samplewise_std_normalization=True).flow(x[None], batch_size=1))[0]
    assert abs(centred.mean()) < 1e-5 and abs(centred.std() - 1) < 1e-4


# -- seeding -------------------------------------------------------------------------------

def test_same_seed_same_batches_and_different_seed_different_batches():
    rng = np.random.RandomState(1)
    x = rng.uniform(0, 255, (9, 12, 12, 3)).astype(np.float32)
    y = np.arange(9)

    def epochs(seed):
        batches = ImageDataGenerator(**SEED_AUGMENTATION).flow(x, y, batch_size=4, seed=seed)
        out = []
        for _ in range(2):
            out += [batches[i] for i in range(len(batches))]
            batches.on_epoch_end()
        return out

    first, again, other = epochs(5), epochs(5), epochs(6)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    # Epoch orders are permutations of every sample, reshuffled between epochs.
    order_1 = np.concatenate([labels for _, labels in first[:3]])
    order_2 = np.concatenate([labels for _, labels in first[3:]])
    assert sorted(order_1) == sorted(order_2) == list(range(9))
    assert not np.array_equal(order_1, order_2)
    # random_transform with a seed, and unseeded streams under minicnn.set_random_seed.
    generator = ImageDataGenerator(**SEED_AUGMENTATION)
    np.testing.assert_array_equal(generator.random_transform(x[0], seed=3),
                                  generator.random_transform(x[0], seed=3))
    runs = []
    for _ in range(2):
        minicnn.set_random_seed(123)
        runs.append(next(ImageDataGenerator(**SEED_AUGMENTATION).flow(x, y, batch_size=9))[0])
    np.testing.assert_array_equal(runs[0], runs[1])


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments, message", [
    (dict(featurewise_center=True), "featurewise_center"),
    (dict(featurewise_std_normalization=True), "featurewise_std_normalization"),
    (dict(zca_whitening=True), "zca_whitening"),
    (dict(fill_mode="mirror"), "fill_mode"),
    (dict(interpolation_order=3), "interpolation_order"),
    (dict(zoom_range=[0.5]), "zoom_range"),
    (dict(rotation_range="40"), "rotation_range"),
    (dict(width_shift_range=[]), "width_shift_range"),
    (dict(data_format="channels_first"), "channels_last"),
    (dict(validation_split=1.5), "validation_split"),
])
def test_unsupported_or_bad_arguments_raise_clearly(arguments, message):
    with pytest.raises(ValueError, match=message):
        ImageDataGenerator(**arguments)


def test_flow_and_apply_transform_errors():
    generator = ImageDataGenerator()
    with pytest.raises(ValueError, match="rank 4"):
        generator.flow(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match="same length"):
        generator.flow(np.zeros((4, 8, 8, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        generator.flow(np.zeros((4, 8, 8, 1)), batch_size=0)
    with pytest.raises(ValueError, match="unknown transform parameters.*rotation"):
        generator.apply_transform(np.zeros((8, 8, 1)), {"rotation": 10})
    with pytest.raises(ValueError, match="one image"):
        generator.apply_transform(np.zeros((2, 8, 8, 1)), {})
    with pytest.raises(NotImplementedError, match="featurewise"):
        generator.fit(np.zeros((4, 8, 8, 1)))


# -- the figure and training ---------------------------------------------------------------

def test_plot_of_one_image_and_its_augmented_versions(tmp_path):
    x = random_image(6, 12, 12, 3)
    path = tmp_path / "aug.png"
    figure = plot_augmented_images(x, ImageDataGenerator(**SEED_AUGMENTATION), path,
                                   count=4, seed=0, title="augmentation")
    assert len(figure.axes) == 5
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "aug.png"]  # no temporary left


def test_sequential_fit_accepts_flow_iterators():
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 255, (12, 12, 12, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype(np.float32)
    model = minicnn.Sequential([layers.Input((12, 12, 1)), layers.Flatten(),
                                layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    generator = ImageDataGenerator(rescale=1 / 255, **SEED_AUGMENTATION)
    history = model.fit(generator.flow(x, y, batch_size=4, seed=0), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    history = model.fit(generator.flow(x, y, batch_size=4), steps_per_epoch=2, epochs=1,
                        validation_data=ImageDataGenerator(rescale=1 / 255).flow(x, y, batch_size=6),
                        verbose=0)
    assert "val_loss" in history.history
    assert model.predict(ImageDataGenerator(rescale=1 / 255).flow(x, batch_size=5, shuffle=False),
                         verbose=0).shape == (12, 1)

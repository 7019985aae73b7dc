"""Image folders: Keras's class discovery and labels, Pillow loading, and clear errors.

Every folder is generated in ``tmp_path`` (small PNG and JPEG files); the Keras tier runs
tf-keras's ``flow_from_directory`` on the same folder and compares listings and batches.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from minicnn.datasets import image_folder
from minicnn.datasets.image_folder import ImageFolderError, list_image_folder, load_data
from minicnn.preprocessing import ImageDataGenerator
from tests.helpers import assert_close

SEED_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                         shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                         fill_mode="nearest")


def keras_image_module():
    pytest.importorskip("tf_keras")
    pytest.importorskip("scipy")
    from tf_keras.preprocessing import image

    return image


def write_image(path, seed: int, size=(14, 10), mode="RGB", format=None):
    """A random picture of ``size`` (width, height) saved to ``path``."""
    rng = np.random.RandomState(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = rng.randint(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=format)


@pytest.fixture
def animals(tmp_path):
    """dogs/, cats/, birds/ (created in that unsorted order) with mixed formats, a nested
    folder, an upper-case extension, a grayscale file, and files Keras skips."""
    root = tmp_path / "animals"
    seed = 0
    for name, count in (("dogs", 4), ("cats", 3), ("birds", 2)):
        for index in range(count):
            seed += 1
            suffix = (".png", ".jpg", ".jpeg", ".PNG")[index % 4]
            write_image(root / name / f"{name}.{index}{suffix}", seed, size=(14 + index, 10))
    write_image(root / "cats" / "nested" / "kitten.0.png", 99, size=(9, 12))
    write_image(root / "dogs" / "gray.bmp", 98, size=(12, 12), mode="L")
    (root / "dogs" / "notes.txt").write_text("not an image, and not named like one")
    (root / "cats" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "README.md").write_text("files at the top level are not classes")
    return root


def test_classes_are_sorted_folder_names_and_labels_follow(animals):
    folder = list_image_folder(animals)
    assert folder.class_names == ["birds", "cats", "dogs"]
    assert folder.class_indices == {"birds": 0, "cats": 1, "dogs": 2}
    assert folder.filenames == [
        "birds/birds.0.png", "birds/birds.1.jpg",
        "cats/cats.0.png", "cats/cats.1.jpg", "cats/cats.2.jpeg",
        os.path.join("cats", "nested", "kitten.0.png"),
        "dogs/dogs.0.png", "dogs/dogs.1.jpg", "dogs/dogs.2.jpeg", "dogs/dogs.3.PNG",
        "dogs/gray.bmp"]
    assert folder.classes.tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert folder.classes.dtype == np.int32 and folder.samples == 11
    # An explicit class list fixes the order (and leaves other folders out).
    chosen = list_image_folder(animals, classes=["dogs", "cats"])
    assert chosen.class_indices == {"dogs": 0, "cats": 1}
    assert chosen.classes.tolist() == [0] * 5 + [1] * 4


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("class_mode", ["categorical", "binary", "sparse", None, "input"])
def test_flow_from_directory_matches_tf_keras(animals, class_mode, capsys):
    image = keras_image_module()
    arguments = dict(target_size=(12, 12), batch_size=4, shuffle=False, class_mode=class_mode)
    keras_batches = image.ImageDataGenerator(rescale=1 / 255).flow_from_directory(str(animals), **arguments)
    ours = ImageDataGenerator(rescale=1 / 255).flow_from_directory(animals, **arguments)
    assert ours.class_indices == keras_batches.class_indices
    assert ours.filenames == keras_batches.filenames
    np.testing.assert_array_equal(ours.classes, keras_batches.classes)
    assert ours.samples == keras_batches.samples and len(ours) == len(keras_batches)
    assert capsys.readouterr().out.count("Found 11 images belonging to 3 classes.") == 2
    for index in range(len(ours)):
        expected, actual = keras_batches[index], ours[index]
        if class_mode is None:
            expected, actual = (expected,), (actual,)
        assert len(actual) == len(expected)
        for ours_part, keras_part in zip(actual, expected):
            assert ours_part.dtype == keras_part.dtype
            np.testing.assert_array_equal(ours_part, keras_part)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("color_mode, interpolation, keep_aspect_ratio", [
    ("rgb", "bilinear", False), ("grayscale", "nearest", True), ("rgba", "bicubic", False)])
def test_seeded_augmented_directory_batches_match_tf_keras(animals, color_mode, interpolation,
                                                           keep_aspect_ratio):
    image = keras_image_module()
    arguments = dict(target_size=(11, 13), color_mode=color_mode, batch_size=5, seed=7,
                     interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio,
                     class_mode="binary", classes=["cats", "dogs"])
    keras_batches = image.ImageDataGenerator(**SEED_AUGMENTATION).flow_from_directory(
        str(animals), **arguments)
    ours = ImageDataGenerator(**SEED_AUGMENTATION).flow_from_directory(animals, **arguments)
    for epoch in range(2):
        for index in range(len(ours)):
            (x_keras, y_keras), (x_ours, y_ours) = keras_batches[index], ours[index]
            np.testing.assert_array_equal(y_ours, y_keras)
            assert_close(x_ours, x_keras, rtol=0, atol=1e-3, what=f"epoch {epoch} batch {index}")
        keras_batches.on_epoch_end()
        ours.on_epoch_end()


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_validation_subsets_match_tf_keras(animals):
    image = keras_image_module()
    for subset in ("training", "validation"):
        keras_batches = image.ImageDataGenerator(validation_split=0.4).flow_from_directory(
            str(animals), target_size=(8, 8), subset=subset)
        ours = ImageDataGenerator(validation_split=0.4).flow_from_directory(
            animals, target_size=(8, 8), subset=subset)
        assert ours.filenames == keras_batches.filenames
        np.testing.assert_array_equal(ours.classes, keras_batches.classes)


def test_same_seed_same_directory_batches(animals):
    def first_epoch(seed):
        batches = ImageDataGenerator(**SEED_AUGMENTATION).flow_from_directory(
            animals, target_size=(12, 12), batch_size=4, seed=seed, class_mode="sparse")
        return [batches[i] for i in range(len(batches))]

    for (x1, y1), (x2, y2) in zip(first_epoch(3), first_epoch(3)):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first_epoch(3), first_epoch(4)))


def test_a_corrupt_image_file_is_named_when_the_folder_is_listed(animals):
    broken = animals / "cats" / "broken.jpg"
    broken.write_text("this is text, not a JPEG")
    with pytest.raises(ImageFolderError, match="broken.jpg"):
        ImageDataGenerator().flow_from_directory(animals, target_size=(8, 8))
    with pytest.raises(ImageFolderError, match="broken.jpg"):
        load_data(animals, target_size=(8, 8))


def test_truncated_pixel_data_is_named_when_the_image_is_loaded(animals):
    good = animals / "birds" / "birds.0.png"
    data = good.read_bytes()
    truncated = animals / "birds" / "birds.9.png"
    truncated.write_bytes(data[: len(data) // 2])  # a valid header, half the pixels
    batches = ImageDataGenerator().flow_from_directory(animals, target_size=(8, 8),
                                                       batch_size=3, shuffle=False)
    with pytest.raises(ImageFolderError, match="birds.9.png"):
        batches[0]


def test_missing_or_empty_folders_and_bad_arguments_raise_clearly(tmp_path, animals):
    with pytest.raises(ImageFolderError, match="does not exist"):
        list_image_folder(tmp_path / "nowhere")
    with pytest.raises(ImageFolderError, match="'fish' not found"):
        list_image_folder(animals, classes=["cats", "fish"])
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("no images")
    with pytest.raises(ImageFolderError, match="no images found"):
        ImageDataGenerator().flow_from_directory(tmp_path / "empty")
    generator = ImageDataGenerator()
    with pytest.raises(ValueError, match="class_mode"):
        generator.flow_from_directory(animals, class_mode="onehot")
    with pytest.raises(ValueError, match="color_mode"):
        generator.flow_from_directory(animals, color_mode="cmyk")
    with pytest.raises(ValueError, match="target_size"):
        generator.flow_from_directory(animals, target_size=(0, 8))
    with pytest.raises(ValueError, match="interpolation"):
        generator.flow_from_directory(animals, interpolation="cubic")


def test_load_data_and_load_image(animals):
    x, labels, class_names = load_data(animals, target_size=(6, 5), color_mode="grayscale")
    assert x.shape == (11, 6, 5, 1) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255
    assert labels.tolist() == list_image_folder(animals).classes.tolist()
    assert class_names == ["birds", "cats", "dogs"]
    one = image_folder.load_image(animals / "dogs" / "gray.bmp")  # grayscale file, read as RGB
    assert one.shape == (12, 12, 3)
    np.testing.assert_array_equal(one[:, :, 0], one[:, :, 2])
    with pytest.raises(ImageFolderError, match="missing.png"):
        image_folder.load_image(animals / "missing.png")


def test_fit_from_a_directory_iterator(animals):
    import minicnn
    from minicnn import layers

    model = minicnn.Sequential([layers.Input((8, 8, 3)), layers.Flatten(),
                                layers.Dense(3, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    train = ImageDataGenerator(rescale=1 / 255, **SEED_AUGMENTATION).flow_from_directory(
        animals, target_size=(8, 8), batch_size=4, seed=0)
    history = model.fit(train, steps_per_epoch=2, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2

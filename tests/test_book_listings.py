"""Sections 5.2 and 5.3 of *Deep Learning with Python* (first edition), listing by listing,
with the imports swapped from ``keras`` to ``minicnn`` and only the counts reduced.

The book trains on 2,000 photos of cats and dogs for 30 to 100 epochs of 100 steps; here
a folder of 24 generated 150x150 pictures in the same layout, one or two steps, and
VGG16 with ``weights=None`` (ImageNet's weights cannot be downloaded in a test).  Every
spelling is the book's: ``lr=``, ``metrics=['acc']``, ``fit_generator``,
``evaluate_generator``, ``input_dim``, ``model.add(conv_base)``, ``conv_base.trainable``,
the ``set_trainable`` loop, and ``model.save('....h5')``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np
import pytest
from PIL import Image

# The book's imports, with keras -> minicnn.
from minicnn import layers, models, optimizers
from minicnn.applications import VGG16
from minicnn.preprocessing.image import ImageDataGenerator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # lr=, *_generator

PER_CLASS = {"train": 4, "validation": 2, "test": 2}
BATCH_SIZE = 2


def book_file(name: str) -> str:
    """The book's ``.h5`` file name, or the ``.npz`` one where h5py (the ``h5`` extra) is
    not installed: the rest of the listing still runs."""
    return name if importlib.util.find_spec("h5py") else name[:-len(".h5")] + ".npz"


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> str:
    """``cats_and_dogs_small``: train/validation/test, each with cats/ and dogs/ (JPEG)."""
    root = tmp_path_factory.mktemp("cats_and_dogs_small")
    rng = np.random.default_rng(5)
    for subset, count in PER_CLASS.items():
        for label, name in enumerate(("cats", "dogs")):
            folder = root / subset / name
            folder.mkdir(parents=True)
            for index in range(count):
                picture = rng.integers(0, 80, (150, 150, 3), dtype=np.uint8)
                # A bright block on the left for cats, on the right for dogs.
                picture[40:110, 10 + 80 * label:60 + 80 * label] = 230
                Image.fromarray(picture).save(folder / f"{name[:-1]}.{index}.jpg")
    return str(root)


def small_convnet(dropout: bool):
    """Listings 5.5 and 5.13: the chapter's convnet for 150x150 pictures."""
    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(150, 150, 3)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(128, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(128, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    if dropout:
        model.add(layers.Dropout(0.5))
    model.add(layers.Dense(512, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    return model


def test_listings_5_5_to_5_9_train_from_scratch_and_save_h5(base_dir, tmp_path):
    train_dir = os.path.join(base_dir, "train")
    validation_dir = os.path.join(base_dir, "validation")
    model = small_convnet(dropout=False)
    assert model.count_params() == 3_453_121
    model.compile(loss="binary_crossentropy", optimizer=optimizers.RMSprop(lr=1e-4),
                  metrics=["acc"])
    train_datagen = ImageDataGenerator(rescale=1. / 255)
    test_datagen = ImageDataGenerator(rescale=1. / 255)
    train_generator = train_datagen.flow_from_directory(
        train_dir, target_size=(150, 150), batch_size=BATCH_SIZE, class_mode="binary")
    validation_generator = test_datagen.flow_from_directory(
        validation_dir, target_size=(150, 150), batch_size=BATCH_SIZE, class_mode="binary")
    data_batch, labels_batch = next(iter(train_generator))
    assert data_batch.shape == (BATCH_SIZE, 150, 150, 3) and labels_batch.shape == (BATCH_SIZE,)
    history = model.fit_generator(train_generator, steps_per_epoch=2, epochs=2,
                                  validation_data=validation_generator, validation_steps=1)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert len(history.history["acc"]) == len(history.history["val_acc"]) == 2
    model.save(str(tmp_path / book_file("cats_and_dogs_small_1.h5")))
    again = models.load_model(str(tmp_path / book_file("cats_and_dogs_small_1.h5")))
    batch = validation_generator[0][0]
    np.testing.assert_allclose(again.predict(batch, verbose=0), model.predict(batch, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_listings_5_11_to_5_16_augmentation_and_dropout(base_dir, tmp_path):
    train_dir = os.path.join(base_dir, "train")
    validation_dir = os.path.join(base_dir, "validation")
    model = small_convnet(dropout=True)
    model.compile(loss="binary_crossentropy", optimizer=optimizers.RMSprop(lr=1e-4),
                  metrics=["acc"])
    train_datagen = ImageDataGenerator(rescale=1. / 255, rotation_range=40,
                                       width_shift_range=0.2, height_shift_range=0.2,
                                       shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    test_datagen = ImageDataGenerator(rescale=1. / 255)
    train_generator = train_datagen.flow_from_directory(
        train_dir, target_size=(150, 150), batch_size=BATCH_SIZE, class_mode="binary")
    validation_generator = test_datagen.flow_from_directory(
        validation_dir, target_size=(150, 150), batch_size=BATCH_SIZE, class_mode="binary")
    history = model.fit_generator(train_generator, steps_per_epoch=1, epochs=1,
                                  validation_data=validation_generator, validation_steps=1)
    assert np.isfinite(history.history["loss"][0])
    model.save(str(tmp_path / book_file("cats_and_dogs_small_2.h5")))
    assert models.load_model(str(tmp_path / book_file("cats_and_dogs_small_2.h5"))).count_params() == \
        model.count_params()


def test_listings_5_16_to_5_22_vgg16_extract_freeze_and_fine_tune(base_dir, tmp_path):
    conv_base = VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
    assert conv_base.count_params() == 14_714_688
    datagen = ImageDataGenerator(rescale=1. / 255)

    def extract_features(directory, sample_count):  # listing 5.17
        features = np.zeros(shape=(sample_count, 4, 4, 512))
        labels = np.zeros(shape=(sample_count))
        generator = datagen.flow_from_directory(directory, target_size=(150, 150),
                                                batch_size=BATCH_SIZE, class_mode="binary")
        i = 0
        for inputs_batch, labels_batch in generator:
            features_batch = conv_base.predict(inputs_batch)
            features[i * BATCH_SIZE: (i + 1) * BATCH_SIZE] = features_batch
            labels[i * BATCH_SIZE: (i + 1) * BATCH_SIZE] = labels_batch
            i += 1
            if i * BATCH_SIZE >= sample_count:
                break
        return features, labels

    train_features, train_labels = extract_features(os.path.join(base_dir, "train"), 8)
    validation_features, validation_labels = extract_features(
        os.path.join(base_dir, "validation"), 4)
    assert train_features.shape == (8, 4, 4, 512)
    train_features = np.reshape(train_features, (8, 4 * 4 * 512))
    validation_features = np.reshape(validation_features, (4, 4 * 4 * 512))

    classifier = models.Sequential()  # listing 5.18
    classifier.add(layers.Dense(256, activation="relu", input_dim=4 * 4 * 512))
    classifier.add(layers.Dropout(0.5))
    classifier.add(layers.Dense(1, activation="sigmoid"))
    classifier.compile(optimizer=optimizers.RMSprop(lr=2e-5), loss="binary_crossentropy",
                       metrics=["acc"])
    history = classifier.fit(train_features, train_labels, epochs=2, batch_size=BATCH_SIZE,
                             validation_data=(validation_features, validation_labels))
    assert len(history.history["val_acc"]) == 2

    model = models.Sequential()  # listing 5.20
    model.add(conv_base)
    model.add(layers.Flatten())
    model.add(layers.Dense(256, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    assert len(model.trainable_weights) == 30
    conv_base.trainable = False
    assert len(model.trainable_weights) == 4

    train_datagen = ImageDataGenerator(rescale=1. / 255, rotation_range=40,  # listing 5.21
                                       width_shift_range=0.2, height_shift_range=0.2,
                                       shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                                       fill_mode="nearest")
    train_generator = train_datagen.flow_from_directory(
        os.path.join(base_dir, "train"), target_size=(150, 150), batch_size=BATCH_SIZE,
        class_mode="binary")
    validation_generator = datagen.flow_from_directory(
        os.path.join(base_dir, "validation"), target_size=(150, 150), batch_size=BATCH_SIZE,
        class_mode="binary")
    model.compile(loss="binary_crossentropy", optimizer=optimizers.RMSprop(lr=2e-5),
                  metrics=["acc"])
    frozen = [w.copy() for w in conv_base.get_weights()]
    model.fit_generator(train_generator, steps_per_epoch=1, epochs=1,
                        validation_data=validation_generator, validation_steps=1)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, conv_base.get_weights()))

    conv_base.trainable = True  # listing 5.22
    set_trainable = False
    for layer in conv_base.layers:
        if layer.name == "block5_conv1":
            set_trainable = True
        if set_trainable:
            layer.trainable = True
        else:
            layer.trainable = False
    assert len(model.trainable_weights) == 10
    model.compile(loss="binary_crossentropy", optimizer=optimizers.RMSprop(lr=1e-5),
                  metrics=["acc"])
    before = conv_base.get_weights()
    model.fit_generator(train_generator, steps_per_epoch=1, epochs=1,
                        validation_data=validation_generator, validation_steps=1)
    after = conv_base.get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert changed == [False] * 20 + [True] * 6  # only block 5's kernels and biases

    test_generator = datagen.flow_from_directory(
        os.path.join(base_dir, "test"), target_size=(150, 150), batch_size=BATCH_SIZE,
        class_mode="binary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        test_loss, test_acc = model.evaluate_generator(test_generator, steps=2)
    assert np.isfinite(test_loss) and 0.0 <= test_acc <= 1.0
    model.save(str(tmp_path / book_file("cats_and_dogs_small_4.h5")))
    again = models.load_model(str(tmp_path / book_file("cats_and_dogs_small_4.h5")))
    assert len(again.trainable_weights) == 10

"""The training steps: data from the split folders, fit, evaluate, metrics.json, curves.png."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.interop.keras import import_keras
from compare.cats_vs_dogs import models
from compare.cats_vs_dogs.split import SUBSETS

CLASS_NAMES = ["cats", "dogs"]  # Keras's sorted folder order: cats = 0, dogs = 1
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
FEATURES_FILE = "features.npz"
HEAD_WEIGHTS_FILE = "model.weights.h5"


def check_folders(data: Path) -> dict[str, int]:
    """Images per subset, listed with minicnn's Keras-rule folder reader (which names a
    missing folder or a file that is not an image) before TensorFlow reads anything."""
    from minicnn.datasets.image_folder import list_image_folder

    counts = {}
    for subset in SUBSETS:
        folder = list_image_folder(data / subset, classes=CLASS_NAMES)
        if folder.samples == 0:
            raise ValueError(f"{str(data / subset)!r} holds no images; run "
                             f"'python -m compare.cats_vs_dogs split SRC {data}' first")
        counts[subset] = folder.samples
    return counts


def dataset(data: Path, subset: str, image_size: int, batch_size: int, shuffle: bool,
            seed: int):
    """``keras.utils.image_dataset_from_directory``: (0-255 float images, 0/1 labels)."""
    keras = import_keras(require_tensorflow=True)
    return keras.utils.image_dataset_from_directory(
        data / subset, labels="inferred", label_mode="binary", class_names=CLASS_NAMES,
        image_size=(image_size, image_size), batch_size=batch_size, shuffle=shuffle,
        seed=seed, verbose=False)


def fit_and_test(model, train, validation, test, epochs: int, verbose: int) -> dict[str, Any]:
    started = time.perf_counter()
    # The dataset reshuffles itself every epoch (image_dataset_from_directory, seeded).
    history = model.fit(train, epochs=epochs, validation_data=validation, verbose=verbose,
                        shuffle=False)
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(test, verbose=0)
    return {"history": {key: [float(v) for v in values]
                        for key, values in history.history.items()},
            "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
            "train_seconds": seconds}


def _compile(model, learning_rate: float) -> None:
    keras = import_keras(require_tensorflow=True)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
                  loss="binary_crossentropy", metrics=["accuracy"])


def _parameters(model) -> dict[str, int]:
    count = lambda weights: int(sum(np.prod(w.shape) for w in weights))  # noqa: E731
    return {"total": count(model.weights), "trainable": count(model.trainable_weights)}


def extract_features(conv_base, data: Path, subset: str, image_size: int,
                     batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the conv base once over a subset (in file order): (features, labels)."""
    keras = import_keras(require_tensorflow=True)
    features, labels = [], []
    for images, batch_labels in dataset(data, subset, image_size, batch_size, False, 0):
        inputs = keras.applications.vgg16.preprocess_input(images)
        features.append(np.asarray(conv_base.predict_on_batch(inputs)))
        labels.append(np.asarray(batch_labels).reshape(-1))
    return np.concatenate(features), np.concatenate(labels).astype(np.float32)


def _listing_digest(data: Path) -> str:
    """Names and sizes of every image of the split: cached features match this data."""
    digest = hashlib.sha256()
    for path in sorted(p for subset in SUBSETS for p in (data / subset).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(data)}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def cached_features(conv_base, data: Path, out: Path, options: dict[str, Any],
                    verbose: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], bool]:
    """The conv base's features of every subset, computed once and saved in
    ``OUT/features.npz``; reused while the weights, image size and images are the same."""
    key = json.dumps({"weights": options["weights"], "image_size": options["image_size"],
                      "listing": _listing_digest(data)}, sort_keys=True)
    path = out / FEATURES_FILE
    if path.is_file():
        with np.load(path) as saved:
            if str(saved["key"]) == key:
                return {s: (saved[f"{s}_features"], saved[f"{s}_labels"]) for s in SUBSETS}, True
    if verbose:
        print(f"extracting VGG16 features of {', '.join(SUBSETS)} once ...", flush=True)
    result = {subset: extract_features(conv_base, data, subset, options["image_size"],
                                       options["batch_size"]) for subset in SUBSETS}
    arrays = {f"{s}_{kind}": result[s][i] for s in SUBSETS for i, kind in
              enumerate(("features", "labels"))}
    temporary = out / (FEATURES_FILE + ".partial.npz")
    np.savez(temporary, key=np.asarray(key), **arrays)
    temporary.replace(path)
    return result, False


def step_scratch(options, data, out, verbose, augment: bool = False) -> dict[str, Any]:
    seed, size, batch = options["seed"], options["image_size"], options["batch_size"]
    model = models.small_convnet(size, augment=augment, seed=seed)
    _compile(model, 1e-4)
    result = fit_and_test(model, dataset(data, "train", size, batch, True, seed),
                          dataset(data, "validation", size, batch, False, seed),
                          dataset(data, "test", size, batch, False, seed),
                          options["epochs"], verbose)
    extra = {"model": "Conv 32-64-128-128 + max pools, Flatten, "
                      + ("Dropout 0.5, " if augment else "") + "Dense 512, Dense 1",
             "optimizer": "RMSprop 1e-4", "parameters": _parameters(model),
             "preprocessing": "Rescaling(1/255) in the model",
             "weights_used": False}
    if augment:
        extra.update(augmentation=models.AUGMENTATION, augmentation_note=models.SHEAR_NOTE)
    return {**result, **extra}


def step_augment(options, data, out, verbose) -> dict[str, Any]:
    return step_scratch(options, data, out, verbose, augment=True)


def step_extract(options, data, out, verbose) -> dict[str, Any]:
    keras = import_keras(require_tensorflow=True)
    conv_base = models.vgg16_base(options["weights"], options["image_size"])
    features, reused = cached_features(conv_base, data, out, options, verbose)
    feature_shape = tuple(int(d) for d in features["train"][0].shape[1:])
    flat = {s: (x.reshape(len(x), -1), y) for s, (x, y) in features.items()}
    model = models.feature_classifier(feature_shape, options["seed"])
    _compile(model, 2e-5)
    started = time.perf_counter()
    history = model.fit(*flat["train"], epochs=options["epochs"],
                        batch_size=options["batch_size"], validation_data=flat["validation"],
                        verbose=verbose)
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(*flat["test"], verbose=0)
    return {"history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
            "train_seconds": seconds, "feature_shape": list(feature_shape),
            "features_per_subset": {s: int(len(x)) for s, (x, _) in features.items()},
            "features_file": str(out / FEATURES_FILE), "features_reused": reused,
            "model": f"features {feature_shape} flattened to {int(np.prod(feature_shape)):,}, "
                     "Dense 256, Dropout 0.5, Dense 1",
            "optimizer": "RMSprop 2e-5", "parameters": _parameters(model),
            "conv_base_parameters": conv_base.count_params(),
            "preprocessing": models.VGG16_PREPROCESSING, "keras_version": keras.__version__}


def _base_with_head(options):
    conv_base = models.vgg16_base(options["weights"], options["image_size"])
    return conv_base, models.base_with_head(conv_base, options["image_size"], options["seed"])


def step_extract_augment(options, data, out, verbose) -> dict[str, Any]:
    seed, size, batch = options["seed"], options["image_size"], options["batch_size"]
    conv_base, model = _base_with_head(options)
    _compile(model, 2e-5)
    result = fit_and_test(model, dataset(data, "train", size, batch, True, seed),
                          dataset(data, "validation", size, batch, False, seed),
                          dataset(data, "test", size, batch, False, seed),
                          options["epochs"], verbose)
    model.save_weights(out / HEAD_WEIGHTS_FILE)
    return {**result, "model": "augmentation, VGG16 preprocessing, frozen VGG16 base, "
                               "Flatten, Dense 256, Dropout 0.5, Dense 1",
            "optimizer": "RMSprop 2e-5", "parameters": _parameters(model),
            "augmentation": models.AUGMENTATION, "augmentation_note": models.SHEAR_NOTE,
            "preprocessing": models.VGG16_PREPROCESSING,
            "saved_weights": str(out / HEAD_WEIGHTS_FILE)}


def step_finetune(options, data, out, verbose) -> dict[str, Any]:
    """Head first (frozen base), then block5 unfrozen with RMSprop 1e-5.

    The head comes from ``--head-from DIR`` (an extract-augment output folder) when
    given; otherwise it is trained here for ``--head-epochs`` epochs.
    """
    seed, size, batch = options["seed"], options["image_size"], options["batch_size"]
    conv_base, model = _base_with_head(options)
    splits = [dataset(data, "train", size, batch, True, seed),
              dataset(data, "validation", size, batch, False, seed),
              dataset(data, "test", size, batch, False, seed)]
    head: dict[str, Any]
    if options.get("head_from"):
        weights = Path(options["head_from"]) / HEAD_WEIGHTS_FILE
        if not weights.is_file():
            raise ValueError(f"--head-from {options['head_from']!r}: no {HEAD_WEIGHTS_FILE} "
                             f"there (run the extract-augment step with --out that folder, "
                             f"with the same --image-size)")
        model.load_weights(weights)
        head = {"from": str(weights), "history": {}}
    else:
        _compile(model, 2e-5)
        head = fit_and_test(model, *splits, options["head_epochs"], verbose)
    unfrozen = models.unfreeze_block5(conv_base)
    _compile(model, 1e-5)  # recompile: trainability is read when compiling
    result = fit_and_test(model, *splits, options["epochs"], verbose)
    combined = {key: head["history"].get(key, []) + values
                for key, values in result["history"].items()}
    return {**result, "history": combined, "head_phase": head,
            "head_epochs": len(head["history"].get("loss", [])),
            "unfrozen": unfrozen, "optimizer": "RMSprop 2e-5 (head), then RMSprop 1e-5",
            "parameters": _parameters(model), "augmentation": models.AUGMENTATION,
            "preprocessing": models.VGG16_PREPROCESSING}


STEPS = {"scratch": step_scratch, "augment": step_augment, "extract": step_extract,
         "extract-augment": step_extract_augment, "finetune": step_finetune}
TITLES = {"scratch": "small convnet from scratch", "augment": "small convnet + augmentation",
          "extract": "VGG16 features + dense head", "extract-augment":
          "frozen VGG16 base + head, augmented", "finetune": "VGG16 block5 fine-tuned"}


def run_step(step: str, options: dict[str, Any], verbose: int = 2) -> dict[str, Any]:
    """Run one training step; writes OUT/metrics.json and OUT/curves.png."""
    keras = import_keras(require_tensorflow=True)
    from minicnn.plots import plot_training_curves
    from minicnn.files import write_json

    for name in ("epochs", "image_size", "batch_size"):
        if options[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, "
                             f"received {options[name]}")
    data, out = Path(options["data"]), Path(options["out"])
    images = check_folders(data)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options["seed"])
    started = time.perf_counter()
    result = STEPS[step](options, data, out, verbose)
    metrics = {"step": step, "test_accuracy": result.pop("test_accuracy"),
               "test_loss": result.pop("test_loss"), "history": result.pop("history"),
               "options": options, "images": images, "seconds": time.perf_counter() - started,
               "keras_version": keras.__version__, "backend": keras.backend.backend(), **result}
    write_json(out / METRICS_FILE, metrics)
    plot_training_curves(metrics["history"], out / CURVES_FILE,
                         test={"loss": metrics["test_loss"],
                               "accuracy": metrics["test_accuracy"]},
                         title=f"cats vs dogs, {TITLES[step]} (Keras {keras.__version__}, "
                               f"weights {options['weights']})")
    print(f"{step}: test accuracy {metrics['test_accuracy']:.4f}, test loss "
          f"{metrics['test_loss']:.4f}; wrote {out / METRICS_FILE} and {out / CURVES_FILE}")
    return metrics

"""The training steps of the book's sections 5.2-5.3, in minicnn, in Keras, or in both
side by side: the same folder, the same starting weights, the same batches."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compare.cats_vs_dogs import models, report
from compare.cats_vs_dogs.data import (FeatureStream, TrainingStream, class_names,
                                       load_subset)
from compare.cats_vs_dogs.engines import Engine, engine_versions, make_engines
from compare.cats_vs_dogs.split import SUBSETS

METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
FEATURES_FILE = "features_{engine}.npz"
WEIGHTS_FILE = "weights_{engine}.npz"
Batch = tuple[np.ndarray, np.ndarray]


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from minicnn.files import atomic_write

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    atomic_write(path, lambda handle: handle.write(data))


def train_epochs(engines: list[Engine], epochs: int, next_batches: Callable[[], dict[str, list]],
                 validation: dict[str, Batch], histories: dict[str, dict[str, list]],
                 verbose: int, first_epoch: int = 1) -> None:
    """``epochs`` epochs: each draws its batches once (``next_batches() -> {engine:
    batches}``) and trains every engine on them; appends to ``histories``."""
    for epoch in range(first_epoch, first_epoch + epochs):
        batches = next_batches()
        parts = []
        for engine in engines:
            logs = engine.fit_epoch(batches[engine.name], validation[engine.name])
            for key, value in logs.items():
                histories[engine.name].setdefault(key, []).append(value)
            parts.append(f"{engine.name}: loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} "
                         f"val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}")
        if verbose:
            print(f"epoch {epoch}: " + " | ".join(parts), flush=True)


def _shared(stream: TrainingStream, engines: list[Engine]) -> Callable[[], dict[str, list]]:
    def next_batches() -> dict[str, list]:
        batches = stream.next_epoch()
        return {engine.name: batches for engine in engines}
    return next_batches


def _test(engines: list[Engine], test: dict[str, Batch], batch_size: int) -> dict[str, Any]:
    return {engine.name: dict(zip(("loss", "accuracy"),
                                  engine.evaluate(*test[engine.name], batch_size)))
            for engine in engines}


def _images(options: dict[str, Any], data: Path, names: list[str], preprocessing: str,
            augment: bool, engines: list[Engine]):
    size, batch, seed = options["image_size"], options["batch_size"], options["seed"]
    stream = TrainingStream(data, names, size, preprocessing, augment, batch, seed,
                            options.get("steps_per_epoch"))
    validation = load_subset(data, "validation", names, size, preprocessing, batch)
    test = load_subset(data, "test", names, size, preprocessing, batch)
    return (stream, {engine.name: validation for engine in engines},
            {engine.name: test for engine in engines})


def step_scratch(options, data, out, names, verbose, augment: bool = False) -> dict[str, Any]:
    """Section 5.2.3 (scratch) and 5.2.5 (augment: the book's augmentation + Dropout 0.5)."""
    model = models.small_convnet(options["image_size"], dropout=augment)
    engines = make_engines(options["engines"], model, options["seed"])
    for engine in engines:
        engine.compile(1e-4)
    stream, validation, test = _images(options, data, names, "rescale", augment, engines)
    histories: dict[str, dict[str, list]] = {engine.name: {} for engine in engines}
    train_epochs(engines, options["epochs"], _shared(stream, engines), validation, histories,
                 verbose)
    extra = {"model": "Conv 32-64-128-128 + max pools, Flatten, "
                      + ("Dropout 0.5, " if augment else "") + "Dense 512, Dense 1",
             "optimizer": "RMSprop 1e-4", "preprocessing": models.RESCALING,
             "weights_used": False}
    if augment:
        extra.update(augmentation=models.AUGMENTATION, augmentation_note=models.SHEAR_NOTE)
    return {"engines": engines, "histories": histories,
            "tests": _test(engines, test, options["batch_size"]), **extra}


def step_augment(options, data, out, names, verbose) -> dict[str, Any]:
    return step_scratch(options, data, out, names, verbose, augment=True)


def step_extract(options, data, out, names, verbose) -> dict[str, Any]:
    """Section 5.3.1, fast feature extraction: each engine runs the same VGG16 base once
    over every image, then trains the head on its own features, in the same order."""
    size, batch, seed = options["image_size"], options["batch_size"], options["seed"]
    base = models.vgg16_base(options["weights"], size)
    base_engines = make_engines(options["engines"], base, seed)
    subsets = {s: load_subset(data, s, names, size, "vgg16", batch) for s in SUBSETS}
    if verbose:
        print(f"extracting VGG16 features of {', '.join(SUBSETS)} once per engine ...",
              flush=True)
    features = {engine.name: {s: engine.predict(subsets[s][0], batch) for s in SUBSETS}
                for engine in base_engines}
    for engine in base_engines:
        _save_arrays(out / FEATURES_FILE.format(engine=engine.name),
                     {**{f"{s}_features": features[engine.name][s] for s in SUBSETS},
                      **{f"{s}_labels": subsets[s][1] for s in SUBSETS}})
    feature_shape = tuple(int(d) for d in features[base_engines[0].name]["train"].shape[1:])
    head = models.feature_classifier(feature_shape)
    engines = make_engines(options["engines"], head, seed)
    for engine in engines:
        engine.compile(2e-5)
    flat = {name: {s: features[name][s].reshape(len(features[name][s]), -1) for s in SUBSETS}
            for name in features}
    stream = FeatureStream(len(subsets["train"][1]), batch, seed)

    def next_batches() -> dict[str, list]:
        order = stream.next_order()
        return {name: stream.batches(features[name]["train"], subsets["train"][1], order)
                for name in features}

    histories: dict[str, dict[str, list]] = {engine.name: {} for engine in engines}
    train_epochs(engines, options["epochs"], next_batches,
                 {n: (flat[n]["validation"], subsets["validation"][1]) for n in flat},
                 histories, verbose)
    extra: dict[str, Any] = {}
    if len(features) == 2:
        extra["feature_max_abs_gap"] = float(max(
            np.max(np.abs(features["minicnn"][s] - features["keras"][s])) for s in SUBSETS))
    return {"engines": engines, "histories": histories,
            "tests": _test(engines, {n: (flat[n]["test"], subsets["test"][1]) for n in flat},
                           batch),
            "feature_shape": list(feature_shape),
            "features_per_subset": {s: int(len(subsets[s][1])) for s in SUBSETS},
            "features_files": [str(out / FEATURES_FILE.format(engine=n)) for n in features],
            "extraction_seconds": {engine.name: engine.seconds for engine in base_engines},
            "model": f"features {feature_shape} flattened to {int(np.prod(feature_shape)):,}, "
                     "Dense 256, Dropout 0.5, Dense 1",
            "optimizer": "RMSprop 2e-5", "conv_base_parameters": base.count_params(),
            "preprocessing": models.VGG16_PREPROCESSING, **extra}


def _base_with_head(options: dict[str, Any]):
    base = models.vgg16_base(options["weights"], options["image_size"])
    model = models.base_with_head(base)
    return base, model, make_engines(options["engines"], model, options["seed"])


def step_extract_augment(options, data, out, names, verbose) -> dict[str, Any]:
    """Section 5.3.1, feature extraction with data augmentation: the frozen base inside
    the model, trained end to end (only the head learns)."""
    base, model, engines = _base_with_head(options)
    for engine in engines:
        engine.compile(2e-5)
    stream, validation, test = _images(options, data, names, "vgg16", True, engines)
    histories: dict[str, dict[str, list]] = {engine.name: {} for engine in engines}
    train_epochs(engines, options["epochs"], _shared(stream, engines), validation, histories,
                 verbose)
    saved = []
    for engine in engines:
        path = out / WEIGHTS_FILE.format(engine=engine.name)
        weights = [np.asarray(w) for w in engine.model.get_weights()]
        _save_arrays(path, {f"w{i:03d}": w for i, w in enumerate(weights)})
        saved.append(str(path))
    return {"engines": engines, "histories": histories,
            "tests": _test(engines, test, options["batch_size"]),
            "model": "frozen VGG16 base, Flatten, Dense 256, Dropout 0.5, Dense 1",
            "optimizer": "RMSprop 2e-5", "augmentation": models.AUGMENTATION,
            "augmentation_note": models.SHEAR_NOTE,
            "preprocessing": models.VGG16_PREPROCESSING, "saved_weights": saved}


def _load_head(engines: list[Engine], head_from: str) -> list[str]:
    """Each engine starts from ``DIR/weights_<engine>.npz`` (or the other engine's file)."""
    folder, loaded = Path(head_from), []
    for engine in engines:
        candidates = [folder / WEIGHTS_FILE.format(engine=name)
                      for name in (engine.name, "minicnn", "keras")]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise ValueError(f"--head-from {head_from!r}: no weights_minicnn.npz or "
                             f"weights_keras.npz there (run the extract-augment step with "
                             f"--out that folder and the same --image-size)")
        with np.load(path) as arrays:
            engine.model.set_weights([arrays[key] for key in sorted(arrays.files)])
        loaded.append(str(path))
    return loaded


def step_finetune(options, data, out, names, verbose) -> dict[str, Any]:
    """Section 5.3.2: the head first (frozen base, RMSprop 2e-5; or loaded with
    ``--head-from``), then block5 unfrozen and trained with it at RMSprop 1e-5."""
    base, model, engines = _base_with_head(options)
    stream, validation, test = _images(options, data, names, "vgg16", True, engines)
    histories: dict[str, dict[str, list]] = {engine.name: {} for engine in engines}
    head: dict[str, Any] = {"epochs": 0}
    if options.get("head_from"):
        head["from"] = _load_head(engines, options["head_from"])
    else:
        for engine in engines:
            engine.compile(2e-5)
        train_epochs(engines, options["head_epochs"], _shared(stream, engines), validation,
                     histories, verbose)
        head["epochs"] = options["head_epochs"]
    head["parameters"] = {engine.name: engine.parameters() for engine in engines}
    unfrozen = []
    for engine in engines:
        unfrozen = models.unfreeze_block5(engine.model)
        engine.compile(1e-5)  # compile again: trainability is read when compiling
    train_epochs(engines, options["epochs"], _shared(stream, engines), validation, histories,
                 verbose, first_epoch=head["epochs"] + 1)
    return {"engines": engines, "histories": histories,
            "tests": _test(engines, test, options["batch_size"]), "head_phase": head,
            "head_epochs": head["epochs"], "unfrozen": unfrozen,
            "optimizer": "RMSprop 2e-5 (head), then RMSprop 1e-5",
            "augmentation": models.AUGMENTATION, "preprocessing": models.VGG16_PREPROCESSING}


STEPS = {"scratch": step_scratch, "augment": step_augment, "extract": step_extract,
         "extract-augment": step_extract_augment, "finetune": step_finetune}
TITLES = {"scratch": "small convnet from scratch", "augment": "small convnet + augmentation",
          "extract": "VGG16 features + dense head", "extract-augment":
          "frozen VGG16 base + head, augmented", "finetune": "VGG16 block5 fine-tuned"}


def _image_counts(data: Path, names: list[str]) -> dict[str, int]:
    from minicnn.datasets.image_folder import list_image_folder

    return {s: list_image_folder(data / s, classes=names).samples for s in SUBSETS}


def run_step(step: str, options: dict[str, Any], verbose: int = 2) -> dict[str, Any]:
    """Run one training step in the engines of ``options["engine"]`` ("minicnn", "keras"
    or "both"); writes OUT/metrics.json and OUT/curves.png (both engines overlaid when
    both ran) and prints the per-epoch gaps."""
    import minicnn
    from minicnn.files import write_json
    from minicnn.plots import plot_training_curves

    for name in ("epochs", "image_size", "batch_size"):
        if options[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, "
                             f"received {options[name]}")
    engine = options.get("engine", "minicnn")
    options = {**options, "engine": engine,
               "engines": ["minicnn", "keras"] if engine == "both" else [engine]}
    data, out = Path(options["data"]), Path(options["out"])
    names = class_names(data)
    out.mkdir(parents=True, exist_ok=True)
    minicnn.set_random_seed(options["seed"])
    started = time.perf_counter()
    result = STEPS[step](options, data, out, names, verbose)
    engines, histories, tests = result.pop("engines"), result.pop("histories"), result.pop("tests")
    per_engine = {e.name: {"history": histories[e.name], "test_loss": tests[e.name]["loss"],
                           "test_accuracy": tests[e.name]["accuracy"], "seconds": e.seconds,
                           "parameters": e.parameters()} for e in engines}
    metrics: dict[str, Any] = {"step": step, "options": options, "classes": names,
                               "images": _image_counts(data, names),
                               "seconds": time.perf_counter() - started,
                               "versions": engine_versions(options["engines"]),
                               "engines": per_engine, **result}
    title = (f"{TITLES[step]} ({' vs '.join(options['engines'])}, {options['image_size']}px, "
             f"VGG16 weights {options['weights']})" if step not in ("scratch", "augment")
             else f"{TITLES[step]} ({' vs '.join(options['engines'])}, {options['image_size']}px)")
    boundary = result.get("head_epochs") or None
    if len(engines) == 1:
        only = per_engine[engines[0].name]
        metrics.update(history=only["history"], test_loss=only["test_loss"],
                       test_accuracy=only["test_accuracy"])
        plot_training_curves(only["history"], out / CURVES_FILE, title=title,
                             test={"loss": only["test_loss"], "accuracy": only["test_accuracy"]})
    else:
        gaps = report.epoch_gaps(histories)
        metrics.update(gaps=gaps, largest_gaps=report.largest_gaps(gaps))
        report.plot_overlay(histories, tests, out / CURVES_FILE, title, boundary)
        print(report.format_gaps(gaps))
    write_json(out / METRICS_FILE, metrics)
    for name, values in per_engine.items():
        print(f"{step} [{name}]: test accuracy {values['test_accuracy']:.4f}, test loss "
              f"{values['test_loss']:.4f}, {values['seconds']:.0f} s")
    print(f"wrote {out / METRICS_FILE} and {out / CURVES_FILE}")
    return metrics

"""What runs inside a worker for the chapter's workloads past MNIST: one framework, one workload.

The workloads (*Deep Learning with Python*, sections 5.2 and 5.3), on random 150x150x3
images (the timings do not depend on the pixels; the chapter's cats and dogs are not
needed), batch 20:

``cats-dogs-epoch``
    the small convnet trained from scratch (``cats-dogs-convnet``: Conv 32/64/128/128
    with 2x2 pools, Flatten, Dropout(0.5), Dense 512, Dense 1 sigmoid): one training
    epoch, RMSprop(1e-4), binary crossentropy, accuracy.
``vgg16-extract``
    the VGG16 convolutional base (``vgg16-base``, ``include_top=False``, random weights:
    the time does not depend on them) predicting features, as the fast feature
    extraction of section 5.3.1 does.
``vgg16-finetune``
    fine-tuning (section 5.3.3): the VGG16 base, Flatten, Dense 256 relu, Dense 1
    sigmoid, with blocks 1 to 4 frozen, one training epoch, RMSprop(1e-5).

Each session answers ``setup``, ``run`` (one timed epoch or prediction) and
``finish`` (peak memory); :mod:`benchmarks.workers` drives them.  Each framework builds
its own network with its own random weights.  PyTorch is imported only inside its
session.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from benchmarks.sessions import peak_rss_mib

__all__ = ["WORKLOADS", "CHAPTER_SESSIONS", "chapter_model"]

WORKLOADS = {
    "cats-dogs-epoch": {"model": "cats-dogs-convnet", "train": True, "learning_rate": 1e-4},
    "vgg16-extract": {"model": "vgg16-base", "train": False},
    "vgg16-finetune": {"model": "vgg16-base", "train": True, "learning_rate": 1e-5},
}
"""Workload name -> the registry model it starts from, whether it trains, its RMSprop rate."""

FIRST_TRAINABLE = "block5_conv1"
"""Fine-tuning trains from this layer on (blocks 1 to 4 frozen)."""


def _images(spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(spec["seed"])
    x = rng.random((spec["images"], 150, 150, 3), dtype=np.float32)
    y = rng.integers(0, 2, size=(spec["images"], 1)).astype(np.float32)
    return x, y


def chapter_model(workload: str):
    """minicnn's network for ``workload`` (fine-tuning: base + head, blocks 1-4 frozen)."""
    from minicnn import layers
    from minicnn.applications.registry import build_model
    from minicnn.models import Sequential

    model = build_model(WORKLOADS[workload]["model"])
    if workload == "vgg16-finetune":
        model = Sequential(list(model.layers) + [
            layers.Flatten(), layers.Dense(256, activation="relu"),
            layers.Dense(1, activation="sigmoid")])
        model.build((None, 150, 150, 3))
        _freeze_below(model.layers, lambda layer: layer.name)
    return model


def _freeze_below(model_layers, name_of) -> None:
    """``trainable = False`` for every layer before :data:`FIRST_TRAINABLE`."""
    frozen = True
    for layer in model_layers:
        if name_of(layer) == FIRST_TRAINABLE:
            frozen = False
        layer.trainable = not frozen


class ChapterSession:
    """One framework's network and data for one workload; subclasses build and run."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.workload = spec["workload"]
        self.settings = WORKLOADS[self.workload]
        self.batch_size = spec["batch_size"]

    def setup(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.x, self.y = _images(self.spec)
        self.build()
        return {"setup_seconds": time.perf_counter() - started, "threads": self.threads()}

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        if self.settings["train"]:
            self.train_epoch()
        else:
            features = self.predict()
            if len(features) != len(self.x):
                raise RuntimeError(f"predicted {len(features)} of {len(self.x)} images")
        return {"seconds": time.perf_counter() - started}

    def finish(self) -> dict[str, Any]:
        return {"peak_rss_mib": peak_rss_mib()}


class MinicnnChapterSession(ChapterSession):
    def build(self) -> None:
        import minicnn
        from minicnn import optimizers

        minicnn.set_backend(self.spec["backend"])
        minicnn.set_random_seed(self.spec["seed"])
        self.model = chapter_model(self.workload)
        if self.settings["train"]:
            self.model.compile(optimizer=optimizers.RMSprop(
                learning_rate=self.settings["learning_rate"]),
                loss="binary_crossentropy", metrics=["accuracy"])

    def threads(self) -> str:
        import numba

        return f"numba {numba.get_num_threads()} threads"

    def train_epoch(self) -> None:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                       shuffle=True)

    def predict(self) -> np.ndarray:
        return self.model.predict(self.x, batch_size=self.batch_size, verbose=0)


class KerasChapterSession(ChapterSession):
    def build(self) -> None:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        from minicnn.interop.keras import import_keras, keras_reference_model

        keras = import_keras()
        keras.utils.set_random_seed(self.spec["seed"])
        model = keras_reference_model(self.settings["model"])
        if self.workload == "vgg16-finetune":
            base_layers = [layer for layer in model.layers
                           if not isinstance(layer, keras.layers.InputLayer)]
            model = keras.Sequential([*base_layers, keras.layers.Flatten(),
                                      keras.layers.Dense(256, activation="relu"),
                                      keras.layers.Dense(1, activation="sigmoid")])
            model.build((None, 150, 150, 3))
            _freeze_below(model.layers, lambda layer: layer.name)
        if self.settings["train"]:
            model.compile(optimizer=keras.optimizers.RMSprop(
                learning_rate=self.settings["learning_rate"]),
                loss="binary_crossentropy", metrics=["accuracy"])
        self.model = model

    def threads(self) -> str:
        return "TensorFlow defaults"

    def train_epoch(self) -> None:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                       shuffle=True)

    def predict(self) -> np.ndarray:
        return np.asarray(self.model.predict(self.x, batch_size=self.batch_size, verbose=0))


class TorchChapterSession(ChapterSession):
    """The same layers in PyTorch (NCHW), built from minicnn's model's configuration."""

    def build(self) -> None:
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(self.spec["threads"])
        torch.manual_seed(self.spec["seed"])
        modules, frozen, channels = [], [], 3
        for layer in chapter_model(self.workload).layers:
            kind = type(layer).__name__
            if kind == "Conv2D":
                padding = 1 if layer.padding == "same" else 0
                modules += [nn.Conv2d(channels, layer.filters, 3, padding=padding), nn.ReLU()]
                channels = layer.filters
            elif kind == "MaxPooling2D":
                modules.append(nn.MaxPool2d(2))
            elif kind == "Flatten":
                modules.append(nn.Flatten())
            elif kind == "Dropout":
                modules.append(nn.Dropout(layer.rate))
            elif kind == "Dense":
                modules.append(nn.LazyLinear(layer.units))
                modules.append(nn.ReLU() if layer.activation.name == "relu" else nn.Sigmoid())
            else:
                raise RuntimeError(f"no PyTorch twin for {kind}")
            if not layer.trainable:
                frozen.append(modules[-2] if kind == "Conv2D" else modules[-1])
        self.model = nn.Sequential(*modules)
        self.x_nchw = torch.from_numpy(np.ascontiguousarray(self.x.transpose(0, 3, 1, 2)))
        self.y_tensor = torch.from_numpy(self.y)
        with torch.no_grad():
            self.model(self.x_nchw[:1])       # materialize the lazy Linear layers
        for module in frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        if self.settings["train"]:
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            self.optimizer = torch.optim.RMSprop(trainable, lr=self.settings["learning_rate"],
                                                 alpha=0.9, eps=1e-7)
        self.generator = torch.Generator().manual_seed(self.spec["seed"])

    def threads(self) -> str:
        return f"torch.set_num_threads({self.torch.get_num_threads()})"

    def train_epoch(self) -> None:
        torch = self.torch
        self.model.train()
        order = torch.randperm(len(self.x_nchw), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            images, labels = self.x_nchw[batch], self.y_tensor[batch]
            self.optimizer.zero_grad(set_to_none=True)
            probabilities = self.model(images)
            loss = torch.nn.functional.binary_cross_entropy(probabilities, labels)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():  # what Keras's fit reports per batch
                float(loss)
                float(((probabilities > 0.5).float() == labels).float().mean())

    def predict(self) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(self.x_nchw), self.batch_size):
                parts.append(self.model(self.x_nchw[start:start + self.batch_size]).numpy())
        return np.concatenate(parts)


CHAPTER_SESSIONS = {"minicnn": MinicnnChapterSession, "keras": KerasChapterSession,
                    "torch": TorchChapterSession}

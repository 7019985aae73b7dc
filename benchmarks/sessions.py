"""What runs inside a worker: one framework's model and data, one method per request.

Every session trains the same network, the MNIST convnet of the book's section 5.1
(``mnist-convnet`` in :mod:`minicnn.applications.registry`), from the same starting
weights (minicnn's for the run's random seed), on the same images, with RMSprop and
categorical crossentropy, batch 64.  :mod:`benchmarks.workers` runs each session in a
subprocess of its own and sends it the requests ``setup``, ``train_epoch``,
``predict``, ``evaluate`` and ``finish``; each returns a JSON-ready dict.

The PyTorch session is in :mod:`benchmarks.torch_session`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

MODEL_NAME = "mnist-convnet"


def peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``), MiB."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_mnist(images: int, test_images: int, data_file: str | None = None):
    """The chapter's preprocessing: ``(N, 28, 28, 1)`` float32 in [0, 1] and one-hot
    labels; returns ``(x, y, labels, x_test, y_test, test_labels)`` (labels as int64).

    ``data_file``: another Keras-layout ``.npz`` (``x_train`` uint8 (N, 28, 28), ``y_train``,
    ``x_test``, ``y_test``) to benchmark on, read as it is (the tests use a small
    synthetic one); default: MNIST, fetched and verified.
    """
    from minicnn.datasets import mnist
    from minicnn.utils import to_categorical

    if data_file is None:
        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    else:
        with np.load(data_file, allow_pickle=False) as arrays:
            x_train, y_train = arrays["x_train"], arrays["y_train"]
            x_test, y_test = arrays["x_test"], arrays["y_test"]
    x_train, y_train = x_train[:images], y_train[:images]
    x_test, y_test = x_test[:test_images], y_test[:test_images]

    def prepare(x):
        return x.reshape(len(x), 28, 28, 1).astype("float32") / 255

    return (prepare(x_train), to_categorical(y_train, 10), y_train.astype(np.int64),
            prepare(x_test), to_categorical(y_test, 10), y_test.astype(np.int64))


def seeded_minicnn_model(seed: int):
    """minicnn's MNIST convnet with the starting weights every framework copies."""
    import minicnn
    from minicnn.applications.registry import build_model
    from minicnn.naming import clear_session

    clear_session()  # the same layer names in every process
    minicnn.set_random_seed(seed)
    return build_model(MODEL_NAME)


class Session:
    """One framework's model and data inside a worker; each public method is a request.

    Subclasses provide :meth:`build`, :meth:`threads`, :meth:`fit_one_epoch` and
    :meth:`predict_test`.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.batch_size = spec["batch_size"]

    def setup(self) -> dict[str, Any]:
        started = time.perf_counter()
        (self.x, self.y, self.labels, self.x_test, self.y_test,
         self.test_labels) = load_mnist(self.spec["images"], self.spec["test_images"],
                                        self.spec.get("data_file"))
        self.build()
        return {"setup_seconds": time.perf_counter() - started, "threads": self.threads()}

    def train_epoch(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.fit_one_epoch()
        return {"seconds": time.perf_counter() - started}

    def predict(self) -> dict[str, Any]:
        started = time.perf_counter()
        probabilities = self.predict_test()
        seconds = time.perf_counter() - started
        if probabilities.shape != (len(self.x_test), 10):
            raise RuntimeError(f"predictions have shape {probabilities.shape}")
        return {"seconds": seconds}

    def evaluate(self) -> dict[str, Any]:
        probabilities = self.predict_test()
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == self.test_labels))
        return {"test_accuracy": accuracy}

    def finish(self) -> dict[str, Any]:
        return {"peak_rss_mib": peak_rss_mib()}

    # Framework-specific parts.
    def build(self) -> None:
        raise NotImplementedError

    def threads(self) -> str:
        raise NotImplementedError

    def fit_one_epoch(self) -> None:
        raise NotImplementedError

    def predict_test(self) -> np.ndarray:
        raise NotImplementedError


class MinicnnSession(Session):
    """minicnn on one backend (``spec["backend"]``), for the whole worker process."""

    def build(self) -> None:
        import minicnn

        # The worker process runs this backend only: set once, never restored.
        minicnn.set_backend(self.spec["backend"])
        self.model = seeded_minicnn_model(self.spec["seed"])
        self.model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                           metrics=["accuracy"])

    def threads(self) -> str:
        if self.spec["backend"] == "numba":
            import numba

            return f"numba {numba.get_num_threads()} threads, BLAS default"
        return "BLAS default"

    def fit_one_epoch(self) -> None:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                       shuffle=True)

    def predict_test(self) -> np.ndarray:
        return self.model.predict(self.x_test, batch_size=self.batch_size, verbose=0)


class KerasSession(Session):
    """Keras (TensorFlow backend), its model built by Keras itself
    (:func:`minicnn.interop.keras.keras_reference_model`), minicnn's starting weights."""

    def build(self) -> None:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from minicnn.interop.keras import keras_reference_model

        self.model = keras_reference_model(MODEL_NAME)
        # Keras's get_weights order and shapes are minicnn's: no transposes.
        self.model.set_weights(seeded_minicnn_model(self.spec["seed"]).get_weights())
        self.model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                           metrics=["accuracy"])

    def threads(self) -> str:
        return "TensorFlow defaults"

    def fit_one_epoch(self) -> None:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                       shuffle=True)

    def predict_test(self) -> np.ndarray:
        return np.asarray(self.model.predict(self.x_test, batch_size=self.batch_size,
                                             verbose=0))

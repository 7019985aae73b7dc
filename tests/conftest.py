"""Fixtures shared by several test modules, and the rules that make every run repeatable.

* Hypothesis profiles: ``ci`` (derandomized: the same examples on every run, no
  per-example deadline, which a busy shared machine misses, and the reproduction blob
  printed on failure) is loaded when the environment variable ``CI`` is set to a true
  value; ``dev`` (the default) draws new examples each run, also without deadlines.
  ``HYPOTHESIS_PROFILE=ci`` selects a profile by name.  The profile is loaded here,
  before any test module builds its own ``settings(...)`` on top of it.
* Every test starts with minicnn's global generator and NumPy's legacy global generator
  seeded from the test's own name, so the weights a test initializes never depend on
  which tests ran before it (or on ``-k`` / ``-x``).
"""

from __future__ import annotations

import os
import random
import sys
import zlib
from typing import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import backend_set_to, write_synthetic_mnist

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, print_blob=True)


def _profile_name() -> str:
    named = os.environ.get("HYPOTHESIS_PROFILE")
    if named:
        return named
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return "ci" if in_ci else "dev"


settings.load_profile(_profile_name())


def seed_for(nodeid: str) -> int:
    """The seed of one test: a stable function of its id (the same on every run)."""
    return zlib.crc32(nodeid.encode())


@pytest.fixture(autouse=True)
def _seeded_generators(request: pytest.FixtureRequest) -> Iterator[None]:
    """Seed minicnn's global generator, NumPy's legacy one and Python's ``random``
    (and Keras's, when a test module has imported it) before each test."""
    import minicnn

    seed = seed_for(request.node.nodeid)
    minicnn.set_random_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)
    yield


@pytest.fixture
def numpy_backend() -> Iterator[None]:
    """The numpy backend for one test (modules that want it for all use ``pytestmark``)."""
    with backend_set_to("numpy"):
        yield


@pytest.fixture
def synthetic_mnist(tmp_path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """A small synthetic ``mnist.npz`` (tests/helpers.py) in a temporary cache folder
    (``MINICNN_DATA_DIR``), its checksum accepted in place of the real file's, and both
    network sources made to fail loudly: no test downloads anything.  Returns the arrays."""
    from minicnn.datasets import mnist

    cache = tmp_path / "cache"
    arrays = write_synthetic_mnist(cache / "mnist.npz")
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(cache))
    monkeypatch.delenv(mnist.SUBSET_ENV, raising=False)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(cache / "mnist.npz"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access in a test")

    monkeypatch.setattr(mnist, "_download_url", refuse)
    monkeypatch.setattr(mnist, "_pip_download_wheel", refuse)
    return arrays

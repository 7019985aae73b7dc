"""Fixtures shared by several test modules."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.helpers import backend_set_to


@pytest.fixture
def numpy_backend() -> Iterator[None]:
    """The numpy backend for one test (modules that want it for all use ``pytestmark``)."""
    with backend_set_to("numpy"):
        yield

"""Keras's automatic names: ``conv2d``, ``conv2d_1``, ... unique per session.

Same rule as ``keras.src.utils.naming``: the class name in snake case, then a counter
per prefix shared by every object made since the last :func:`clear_session`.
"""

from __future__ import annotations

import collections
import re
from contextlib import contextmanager
from typing import Iterator

_uids: collections.defaultdict[str, int] = collections.defaultdict(int)


def to_snake_case(name: str) -> str:
    """``"MaxPooling2D"`` -> ``"max_pooling2d"``, exactly as Keras converts names."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def auto_name(class_name: str) -> str:
    """The next unused automatic name for an object of class ``class_name``."""
    prefix = to_snake_case(class_name)
    count = _uids[prefix]
    _uids[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Restart automatic names from zero, as ``keras.backend.clear_session()``."""
    _uids.clear()


@contextmanager
def names_unchanged() -> Iterator[None]:
    """Forget, after the block, the automatic names given inside it: the next layer
    made is named as if the block had not run (a throwaway warm-up model uses it)."""
    saved = dict(_uids)
    try:
        yield
    finally:
        _uids.clear()
        _uids.update(saved)

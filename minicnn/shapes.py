"""The one shape formatter: how minicnn writes an array or layer shape in text."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_shape"]


def format_shape(shape: Sequence[int | None] | None, style: str = "keras") -> str:
    """A shape as text.

    Args:
        shape: sizes, ``None`` for an unknown one (the batch axis); ``None`` itself
            for a shape not known yet.
        style: ``"keras"``: ``(None, 26, 26, 32)``, as Keras's ``summary()`` prints
            it; ``"x"``: ``26x26x32``, compact, for tables and prose (pass the shape
            without its batch axis).
    Returns:
        the text; ``"?"`` when ``shape`` is None.
    """
    if shape is None:
        return "?"
    sizes = [str(size) for size in shape]
    if style == "keras":
        return "(" + ", ".join(sizes) + ")"
    if style == "x":
        return "x".join(sizes)
    raise ValueError(f"format_shape: style must be 'keras' or 'x', received {style!r}")

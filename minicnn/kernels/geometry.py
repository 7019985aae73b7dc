"""Window geometry shared by convolution and pooling: output sizes and Keras's padding.

For one spatial axis with input length ``L``, window ``K`` and stride ``S``:

* ``"valid"``: no padding, ``out = (L - K) // S + 1`` (needs ``L >= K``).
* ``"same"``:  ``out = ceil(L / S)``; the padding needed is
  ``total = max((out - 1) * S + K - L, 0)``, split as ``before = total // 2`` and
  ``after = total - before`` -- the odd cell goes to the bottom/right, as in
  TensorFlow and Keras.
"""

from __future__ import annotations

PADDING_MODES = ("valid", "same")

Pads = tuple[tuple[int, int], tuple[int, int]]


def axis_padding(length: int, window: int, stride: int, padding: str) -> tuple[int, int]:
    """Return ``(before, after)`` zero padding of one axis for ``padding`` "valid" or "same"."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        out = -(-length // stride)  # ceil(length / stride)
        total = max((out - 1) * stride + window - length, 0)
        return (total // 2, total - total // 2)
    raise ValueError(f"padding must be one of {PADDING_MODES}, received {padding!r}")


def padded_length(length: int, window: int, stride: int, before: int, after: int) -> int:
    """Output length of one axis with explicit padding: ``(L + before + after - K) // S + 1``."""
    return (length + before + after - window) // stride + 1


def axis_output_length(length: int, window: int, stride: int, padding: str) -> int:
    """Output length of one axis for ``padding`` "valid" or "same"."""
    return padded_length(length, window, stride, *axis_padding(length, window, stride, padding))


def resolve_pads(height: int, width: int, window: tuple[int, int],
                 strides: tuple[int, int], padding: str) -> Pads:
    """``((top, bottom), (left, right))`` for an ``height x width`` input."""
    return (axis_padding(height, window[0], strides[0], padding),
            axis_padding(width, window[1], strides[1], padding))


def output_hw(height: int, width: int, window: tuple[int, int],
              strides: tuple[int, int], padding: str) -> tuple[int, int]:
    """``(OH, OW)`` for an ``height x width`` input."""
    return (axis_output_length(height, window[0], strides[0], padding),
            axis_output_length(width, window[1], strides[1], padding))


def padded_output_hw(height: int, width: int, window: tuple[int, int],
                     strides: tuple[int, int], pads: Pads) -> tuple[int, int]:
    """``(OH, OW)`` for resolved pads ``((top, bottom), (left, right))``."""
    (top, bottom), (left, right) = pads
    return (padded_length(height, window[0], strides[0], top, bottom),
            padded_length(width, window[1], strides[1], left, right))

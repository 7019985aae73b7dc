"""What every public kernel does first: its arrays made contiguous, in one float dtype.

The compiled loops are built for float32 and float64 arrays in C order; anything else
(a strided view, integers) is copied once here.  Integer inputs compute in float32,
Keras's default.
"""

from __future__ import annotations

import numpy as np


def float_dtype(x: np.ndarray) -> np.dtype:
    """``x``'s dtype when it is float32/float64, else float32 (Keras's default)."""
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def conv_operands(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(x, kernel, bias_vector, has_bias)``: contiguous, in x's float dtype.

    ``bias_vector`` is ``(F,)``, zeros when ``bias`` is None (the loops always add it;
    ``has_bias`` says whether a bias gradient is wanted).

    Raises:
        ValueError: when the kernel's input channels are not ``x``'s channels.
    """
    dtype = float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    kernel = np.ascontiguousarray(kernel, dtype=dtype)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel expects {kernel.shape[2]} input channels, x has {x.shape[3]}")
    has_bias = bias is not None
    bias_vector = (np.ascontiguousarray(bias, dtype=dtype) if has_bias
                   else np.zeros(kernel.shape[3], dtype=dtype))
    return x, kernel, bias_vector, has_bias

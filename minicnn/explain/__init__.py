"""``minicnn explain``: convolution, pooling and one training step worked by hand.

* :mod:`~minicnn.explain.model`: the arithmetic of a convnet, layer by layer (output
  sizes, receptive fields, multiply-adds, im2col matrices);
* :mod:`~minicnn.explain.conv`: one tiny convolution, position by position and as one
  im2col product (``minicnn explain conv``);
* :mod:`~minicnn.explain.conv_backward`: its backward pass: the kernel gradient as a
  correlation, the input gradient as scattered stamps and as the full convolution with
  the flipped kernel, the bias gradient, strides and padding
  (``minicnn explain conv --backward``);
* :mod:`~minicnn.explain.pool`: max and average pooling, forward and backward, with
  the tie rule (``minicnn explain pool``);
* :mod:`~minicnn.explain.step`: one SGD step of a tiny convnet, every number shown and
  the loss lower afterwards (``minicnn explain step [--keras]``).

Every walk-through checks its numbers against minicnn's kernels (and, for gradients,
against central differences in float64, :mod:`~minicnn.explain.gradient_check`).
"""

from minicnn.applications.registry import resolve_model
from minicnn.explain.conv import explain_conv, tiny_problem
from minicnn.explain.conv_backward import explain_conv_backward
from minicnn.explain.model import (LayerArithmetic, explain_model, model_arithmetic,
                                   training_step_flops)
from minicnn.explain.pool import explain_pool
from minicnn.explain.step import explain_step

__all__ = ["LayerArithmetic", "explain_conv", "explain_conv_backward", "explain_model",
           "explain_pool", "explain_step", "model_arithmetic", "resolve_model",
           "tiny_problem", "training_step_flops"]

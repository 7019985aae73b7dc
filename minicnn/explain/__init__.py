"""``minicnn explain``: the arithmetic of a convnet, layer by layer
(:mod:`~minicnn.explain.model`), and one tiny convolution walked through by hand
(:mod:`~minicnn.explain.conv`).
"""

from minicnn.explain.conv import explain_conv, tiny_problem
from minicnn.explain.model import (LayerArithmetic, explain_model, model_arithmetic,
                                   resolve_model, training_step_flops)

__all__ = ["LayerArithmetic", "explain_conv", "explain_model", "model_arithmetic",
           "resolve_model", "tiny_problem", "training_step_flops"]

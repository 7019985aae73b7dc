"""``from minicnn import models; models.Sequential()`` as in Keras."""

from minicnn.models.functional import Functional
from minicnn.models.loading import load_model
from minicnn.models.sequential import Sequential
from minicnn.models.training import Callback, History, NonFiniteLossError

__all__ = ["Sequential", "Functional", "load_model", "Callback", "History", "NonFiniteLossError"]

"""PyTorch modules of the heterogeneous VAEs."""

from .heads import ColumnHeads, column_gradients
from .model import HeterogeneousVAE, gaussian_kl
from .registry import MODELS, build_model

__all__ = ["ColumnHeads", "column_gradients", "HeterogeneousVAE", "gaussian_kl", "MODELS", "build_model"]

"""PyTorch modules of the heterogeneous VAEs."""

from .dreg import DReG
from .heads import ColumnHeads, column_gradients
from .hivae import HIVAE
from .iwae import IWAE
from .model import HeterogeneousVAE, MixedTableModel, gaussian_kl
from .registry import MODELS, build_model

__all__ = ["ColumnHeads", "column_gradients", "HeterogeneousVAE", "MixedTableModel", "IWAE", "DReG", "HIVAE",
           "gaussian_kl", "MODELS", "build_model"]

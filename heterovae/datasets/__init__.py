"""Dataset loaders."""

from .multimnist import load_multimnist

__all__ = ["load_multimnist"]

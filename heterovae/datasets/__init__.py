"""Dataset readers: the HI-VAE benchmark folders, bundled R datasets, masks, Multi-MNIST."""

from .hivae import HIVAEDataset, dataset_root, list_masks, load_hivae, read_data_types
from .missing import make_missing
from .multimnist import load_multimnist
from .rdata import load_rdataset

__all__ = [
    "HIVAEDataset",
    "dataset_root",
    "list_masks",
    "load_hivae",
    "load_multimnist",
    "load_rdataset",
    "make_missing",
    "read_data_types",
]

"""heterovae: heterogeneous VAEs and MT-SGD ensembles as scikit-learn estimators."""

__version__ = "0.1.0"

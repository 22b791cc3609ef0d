"""Model registry: the estimator's ``model=`` name -> module class."""

from .dreg import DReG
from .hivae import HIVAE
from .iwae import IWAE
from .model import HeterogeneousVAE

#: name -> torch module class with the HeterogeneousVAE interface
#: (``forward`` -> dict with ``loss``/``column_nll``, ``impute``, ``sample``,
#: ``log_marginal_bound``, ``fit_scaling``, ``set_epoch`` and the
#: ``default_sizes(n_columns)`` static method).
MODELS = {"vae": HeterogeneousVAE, "iwae": IWAE, "dreg": DReG, "hivae": HIVAE}


def build_model(name: str, **kwargs):
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models are {', '.join(MODELS)}") from None
    return cls(**kwargs)

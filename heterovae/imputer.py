"""HeterogeneousVAEImputer: the scikit-learn estimator."""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral, Real
from typing import Optional

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names, _check_n_features, check_is_fitted

from . import moo as moo_methods
from .detection import LikelihoodDetector
from .preprocessing import TableCodec
from .training import ColumnLossHistory, TensorBatches, VAENet, _TensorDataset
from .vae import MODELS, build_model

__all__ = ["HeterogeneousVAEImputer"]


@contextmanager
def torch_threads(n: Optional[int]):
    """Run with ``n`` torch intra-op threads, restoring the caller's setting after."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _check_2d(X):
    ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X, dtype=object).ndim
    if ndim != 2:
        raise ValueError(f"Expected a 2D table, got {ndim}D input instead. Reshape your data either using "
                         "X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it is a single sample.")


class _FractionSplit:
    """skorch ``train_split``: hold out a seeded random fraction of rows."""

    def __init__(self, fraction: float, seed: int):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset, y=None, **_):
        n = len(dataset)
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=g)
        n_valid = max(2, int(round(self.fraction * n)))
        valid, train = order[:n_valid], order[n_valid:]
        pick = lambda idx: _TensorDataset({k: v[idx.to(v.device)] for k, v in dataset.X.items()})
        return pick(train), pick(valid)


class HeterogeneousVAEImputer(TransformerMixin, BaseEstimator):
    """Impute missing cells of a mixed-type table with a heterogeneous VAE.

    Each column gets a likelihood chosen from its type (real -> Normal,
    positive -> shifted LogNormal, count -> Poisson, binary -> Bernoulli,
    categorical -> Categorical, ordinal -> cumulative link), detected from the
    data by :class:`~heterovae.detection.LikelihoodDetector` or given in
    ``likelihoods``. The VAE is trained on every row, including rows with
    missing cells (their terms are masked out of the likelihood and the
    encoder is given the mask); it then fills each missing cell with the
    point estimate of that cell's likelihood given the row's observed cells.

    Training may use a multi-objective gradient method at the decoder's last
    shared feature (``moo``), which counters *feature overlooking*: columns
    whose gradients conflict with the others' and would otherwise be fitted
    poorly (Javaloy, Meghdadi and Valera, "Mitigating modality collapse in
    multimodal VAEs via impartial optimization" / "Boosting heterogeneous
    VAEs via multi-objective optimization").

    Parameters
    ----------
    model : {"vae"}, default="vae"
        The model variant (see :data:`heterovae.vae.MODELS`).
    moo : None, str or tuple of two str, default=None
        Multi-objective method(s) applied to the per-column gradients at the
        last shared feature: a magnitude method (``"gradnorm"``,
        ``"mgda-ub"``, ``"imtlg"``, ...), a direction method (``"pcgrad"``,
        ``"graddrop"``, ...), or a pair ``(magnitude, direction)``.
        :func:`heterovae.moo.cocktail` lists all combinations for a grid
        search. ``None`` trains with the plain gradient.
    moo_params : dict of dict, default=None
        Hyperparameters of the methods, keyed by method name, e.g.
        ``{"gradnorm": {"alpha": 1.5}, "graddrop": {"leakage": 0.2}}``.
    moo_rescale : bool, default=True
        Rescale the aggregated gradient to the norm of the plain sum, so a
        method changes the direction and the balance between columns but
        not the step size.
    likelihoods : None, dict, list or path, default=None
        Overrides of the detected column types: ``{"age": "count", 3: "cat"}``
        (by name or position), a list with one kind per column, or the path
        of a HI-VAE ``data_types.csv``.
    latent_dim : int or None, default=None
        Size of z; ``None`` uses half the number of columns (at least 2).
    hidden_dim : int, default=50
        Width of the hidden layers of encoder and decoder.
    n_layers : int, default=3
        Hidden layers in the encoder and in the decoder.
    cell_dropout : float, default=0.1
        Probability of hiding an observed cell from the encoder during
        training (it is still reconstructed).
    kl_weight : float, default=1.0
        Weight of the KL term of the training objective: 1 trains on the
        ELBO; smaller values (a beta-VAE) keep more of each row in the
        latent code.
    nll_beta : float in [0, 1], default=0.0
        beta-NLL weighting (Seitzer et al., 2022) of the real and positive
        columns' training loss: each cell's NLL is multiplied by the
        predicted ``sigma^(2 beta)`` (held constant), so a hard cell's mean
        is not starved of gradient by a large predicted variance. 0 trains
        on the plain likelihood.
    max_epochs : int, default=100
        Passes over the training rows.
    batch_size : int, default=128
    lr : float, default=1e-3
        Adam learning rate.
    impute_with : {"auto", "mean", "mode", "sample"}, default="auto"
        Point estimate used by :meth:`transform`. ``"auto"`` takes, per
        column, the one that minimises the usual error metric: the mean for
        real, positive and count columns (squared error), the mode for
        binary, categorical and ordinal ones (error rate). ``"mean"`` of a
        categorical column is its mode, of an ordinal column the rounded
        expected code. ``"sample"`` draws one completion (see also
        :meth:`sample` for several).
    validation_fraction : float, default=0.0
        Fraction of rows held out to record ``valid_loss`` in ``history_``
        (and to drive an ``EarlyStopping`` callback); 0 trains on all rows.
    callbacks : list or None, default=None
        skorch callbacks, e.g. ``[skorch.callbacks.ProgressBar()]`` or
        ``[EarlyStopping(monitor="valid_loss")]``.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Torch device for training and imputation; ``"auto"`` picks CUDA when
        available.
    n_threads : int or None, default=1
        Torch intra-op threads used by this estimator's calls on the CPU
        (restored afterwards). Networks of tabular size run fastest on one
        thread: splitting a 128x50 matrix product across cores costs more in
        synchronisation than it saves, and on a busy machine far more.
        ``None`` keeps torch's own setting.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, batches, cell dropout and sampling. The same value
        gives the same output. The caller's global torch RNG is left as it
        was.
    verbose : int, default=0
        ``>0`` prints skorch's per-epoch table.

    Attributes
    ----------
    specs_ : list of ColumnSpec
        The column kinds used.
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the torch model.
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_column_nll`` (one value per column)
        and, with validation, ``valid_loss``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from heterovae import HeterogeneousVAEImputer
    >>> X = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0] * 10,
    ...                   "c": pd.Categorical(["a", "b", "a", None] * 10)})
    >>> imp = HeterogeneousVAEImputer(max_epochs=5, random_state=0)
    >>> imp.fit_transform(X).isna().sum().sum()
    0
    """

    _parameter_constraints = {
        "model": [StrOptions(set(MODELS))],
        "moo": [None, str, tuple, list],
        "moo_params": [None, dict],
        "moo_rescale": ["boolean"],
        "likelihoods": [None, dict, list, tuple, str],
        "latent_dim": [None, Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "cell_dropout": [Interval(Real, 0, 1, closed="left")],
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "nll_beta": [Interval(Real, 0, 1, closed="both")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "impute_with": [StrOptions({"auto", "mean", "mode", "sample"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "callbacks": [None, list],
        "device": [str],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, model="vae", moo=None, moo_params=None, moo_rescale=True, likelihoods=None,
                 latent_dim=None, hidden_dim=50, n_layers=3, cell_dropout=0.1, kl_weight=1.0, nll_beta=0.0, max_epochs=100,
                 batch_size=128, lr=1e-3, impute_with="auto", validation_fraction=0.0, callbacks=None,
                 device="cpu", n_threads=1, random_state=None, verbose=0):
        self.model = model
        self.moo = moo
        self.moo_params = moo_params
        self.moo_rescale = moo_rescale
        self.likelihoods = likelihoods
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.cell_dropout = cell_dropout
        self.kl_weight = kl_weight
        self.nll_beta = nll_beta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.impute_with = impute_with
        self.validation_fraction = validation_fraction
        self.callbacks = callbacks
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- fitting
    def _module_kwargs(self):
        """Constructor arguments of the torch model; subclasses of the model read what they need."""
        n = len(self.specs_)
        return dict(
            kinds=[s.kind for s in self.specs_],
            n_classes=[s.n_classes for s in self.specs_],
            latent_dim=self.latent_dim or max(2, round(0.5 * n)),
            hidden_dim=self.hidden_dim,
            n_layers=self.n_layers,
            cell_dropout=self.cell_dropout,
            kl_weight=self.kl_weight,
            nll_beta=self.nll_beta,
            aggregator=moo_methods.build(self.moo, n_tasks=n, method_params=self.moo_params,
                                         rescale=self.moo_rescale),
        )

    def _tensors(self, X, *, fitting=False):
        if fitting:
            values = self._values_at_fit
            del self._values_at_fit
        else:
            _check_2d(X)
            _check_feature_names(self, X, reset=False)
            _check_n_features(self, X, reset=False)
            values = self._codec.encode(X)
        observed = ~np.isnan(values)
        device = self._device
        x = torch.as_tensor(np.nan_to_num(values), dtype=torch.float32, device=device)
        return x, torch.as_tensor(observed, device=device)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Detect column types, fit the scaling and train the VAE on ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Table with missing cells (NaN, None, pd.NA). Never modified.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        _check_2d(X)
        self._check_n_rows(X)
        moo_methods.validate_spec(self.moo)
        detector = LikelihoodDetector(likelihoods=self.likelihoods).fit(X)
        self.specs_ = detector.specs_
        _check_feature_names(self, X, reset=True)
        _check_n_features(self, X, reset=True)
        self._codec = TableCodec(self.specs_).fit(X)
        self._device = resolve_device(self.device)
        values = self._codec.encode(X, fitting=True)
        self._values_at_fit = values

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self._seed = seed
        devices = [torch.device(self._device).index or 0] if self._device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.n_threads):
            torch.manual_seed(seed)
            module = build_model(self.model, **self._module_kwargs()).fit_scaling(values)
            x, observed = self._tensors(X, fitting=True)
            batches = torch.Generator().manual_seed(seed + 1)
            train_split = None if self.validation_fraction == 0 else _FractionSplit(self.validation_fraction, seed + 2)
            self.net_ = VAENet(
                module,
                optimizer=torch.optim.Adam,
                # the multi-tensor Adam halves a CPU step on tabular-size nets
                optimizer__foreach=True,
                lr=self.lr,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                iterator_train=TensorBatches,
                iterator_train__shuffle=True,
                iterator_train__generator=batches,
                iterator_valid=TensorBatches,
                train_split=train_split,
                callbacks=[("column_nll", ColumnLossHistory())] + list(self.callbacks or []),
                device=self._device,
                verbose=self.verbose,
            )
            self.net_.fit({"x": x, "observed": observed}, None)
        return self

    @staticmethod
    def _check_n_rows(X):
        n = len(X) if hasattr(X, "__len__") else np.asarray(X).shape[0]
        if n < 2:
            raise ValueError(f"HeterogeneousVAEImputer needs at least 2 samples to fit; got {n} sample "
                             "(n_samples = 1)" if n == 1 else "X has 0 samples")

    @property
    def history_(self):
        check_is_fitted(self, "net_")
        return self.net_.history

    @property
    def module_(self):
        """The trained torch model."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    # -------------------------------------------------------------- imputing
    def _predict_codes(self, x, observed, how, generator=None, n_draws=None):
        module = self.module_
        module.eval()
        out = []
        step = max(self.batch_size, 4096)
        for start in range(0, len(x), step):
            xb, ob = x[start:start + step], observed[start:start + step]
            if n_draws is not None:
                out.append(module.sample(xb, ob, n_draws=n_draws, generator=generator))
            else:
                out.append(module.impute(xb, ob, how=how))
        return torch.cat(out, dim=-2).cpu().numpy().astype(np.float64)

    def _generator(self, offset=0):
        device = self._device if self._device.startswith("cuda") else "cpu"
        return torch.Generator(device=device).manual_seed(self._seed + 1000 + offset)

    def transform(self, X):
        """Fill the missing cells of ``X``.

        Observed cells are returned unchanged. The output has ``X``'s
        container (DataFrame or array), column names, category labels and,
        for columns that were integer or boolean at fit, that dtype.
        """
        check_is_fitted(self, "net_")
        x, observed = self._tensors(X)
        missing = ~observed.cpu().numpy()
        with torch_threads(self.n_threads):
            if self.impute_with == "sample":
                codes = self._predict_codes(x, observed, None, generator=self._generator(), n_draws=1)[0]
            else:
                codes = self._predict_codes(x, observed, self.impute_with)
        return self._codec.decode(X, codes, missing)

    def sample(self, X, n_draws=5, random_state=None):
        """Draw ``n_draws`` plausible completions of ``X`` (multiple imputation).

        Each draw samples the latent code from the encoder's posterior and
        every missing cell from its likelihood; observed cells stay as they
        are.

        Returns
        -------
        list of length ``n_draws`` of completed tables, each like :meth:`transform`'s output.
        """
        check_is_fitted(self, "net_")
        x, observed = self._tensors(X)
        if random_state is None:
            generator = self._generator(1)
        else:
            generator = torch.Generator(device=x.device).manual_seed(int(random_state))
        with torch_threads(self.n_threads):
            draws = self._predict_codes(x, observed, None, generator=generator, n_draws=int(n_draws))
        missing = ~observed.cpu().numpy()
        return [self._codec.decode(X, d, missing) for d in draws]

    def score(self, X, y=None):
        """Average log-likelihood of the observed cells per row (higher is better).

        An importance-weighted lower bound on ``log p(x_obs)`` with 10 samples
        (Burda et al.), averaged over rows, in the data's original units
        (nats; densities of continuous columns, masses of discrete ones). It
        is a model-selection criterion comparable across ``model``/``moo``
        settings on the same data, and what ``GridSearchCV`` maximises by
        default.
        """
        check_is_fitted(self, "net_")
        x, observed = self._tensors(X)
        module = self.module_
        module.eval()
        g = self._generator(2)
        with torch_threads(self.n_threads):
            bounds = [module.log_marginal_bound(x[s:s + 4096], observed[s:s + 4096], n_samples=10, generator=g)
                      for s in range(0, len(x), 4096)]
        return float(torch.cat(bounds).mean())

    def get_feature_names_out(self, input_features=None):
        """Column names of the output: the input's."""
        from sklearn.utils.validation import _check_feature_names_in

        check_is_fitted(self, "net_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags

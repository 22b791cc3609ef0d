"""HeterogeneousVAEImputer: the scikit-learn estimator."""

from __future__ import annotations

import functools
import inspect
import numbers
import os
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Optional

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import _check_feature_names, _check_n_features, check_is_fitted

from . import moo as moo_methods
from ._device import resolve_device
from ._table_estimator import MixedTableTransformerMixin
from ._warnings import warn
from .columns import DISCRETE_KINDS, column_position
from .detection import LikelihoodDetector
from .likelihoods import LIKELIHOODS
from .metrics.imputation import ERROR_OF_KIND, error_rate, normalized_rmse
from .preprocessing import TableCodec
from .value_codes import auto_values, distinct_values
from .training import (ColumnLossHistory, EpochSchedule, TensorBatches, VAENet, WeightAverage, _TensorDataset,
                       epochs_for_steps)
from .vae import MODELS, build_model

__all__ = ["HeterogeneousVAEImputer"]


#: ``visible_weight`` when left at ``None``, with and without the decoder
#: skip: a skip decoder sees the cells the encoder sees, so reconstructing
#: them teaches it little and the hidden cells must carry the signal.
_VISIBLE_WEIGHT = {True: 0.1, False: 1.0}
#: training length of ``max_epochs="auto"`` for models whose defaults give no number of epochs
_DEFAULT_EPOCHS = 100
#: the most memory the encoder inputs of the training rows may take to be computed once per fit
#: (beyond it every batch encodes its rows again, as at imputation)
_ENCODINGS_MAX_BYTES = 1 << 30


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


def _check_2d(X):
    ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X, dtype=object).ndim
    if ndim != 2:
        raise ValueError(f"Expected a 2D table, got {ndim}D input instead. Reshape your data either using "
                         "X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it is a single sample.")


def _float32_offsets(values: np.ndarray, specs) -> np.ndarray:
    """Per-column offsets subtracted in float64 before the model's float32.

    A column whose magnitude dwarfs its spread (``1e9 + 20 z``) would lose its
    detail in float32: a real column is centred on its training mean (the
    Normal likelihood does not care where it is centred); a positive or count
    column cannot be (its likelihood does), so it gets a warning. Other
    columns get 0, and are modelled exactly as given.
    """
    offsets = np.zeros(values.shape[1])
    for j, spec in enumerate(specs):
        if spec.categories is not None:
            continue
        column = values[:, j]
        with np.errstate(over="ignore"):  # too large for float32 anyway: see _check_float32_range
            spread, magnitude = np.nanstd(column), np.nanmax(np.abs(column))
        # float32 keeps 24 bits: its rounding error is about |v| * 2**-24
        if not spread > 0 or magnitude * 2.0**-24 <= 1e-4 * spread:
            continue
        if spec.kind == "real":
            offsets[j] = np.nanmean(column)
        else:
            warn(f"column {spec.name!r} ({spec.kind}) varies by {spread:.3g} around values as large as "
                 f"{magnitude:.3g}, finer than the model's float32 resolves; declare "
                 f"it 'real' (likelihoods={{{spec.name!r}: 'real'}}) to have it centred", UserWarning)
    return offsets


def _setting(callback, name):
    """A callback's setting ``name``; skorch also takes callback classes, built with their defaults."""
    if isinstance(callback, type):
        default = inspect.signature(callback).parameters.get(name)
        return None if default is None or default.default is inspect.Parameter.empty else default.default
    return getattr(callback, name, None)


def _is_epoch_scoring(callback) -> bool:
    from skorch.callbacks import EpochScoring

    return (issubclass(callback, EpochScoring) if isinstance(callback, type)
            else isinstance(callback, EpochScoring))


def _check_float32_range(values: np.ndarray, specs) -> None:
    """Refuse values the model's float32 would turn into infinity (and the training into NaN)."""
    limit = float(np.finfo(np.float32).max)
    for j, spec in enumerate(specs):
        magnitude = np.nanmax(np.abs(values[:, j]), initial=0.0)
        if magnitude > limit:
            raise ValueError(f"column {spec.name!r} ({spec.kind}) holds values as large as {magnitude:.3g}, beyond "
                             f"float32's {limit:.3g} that the model computes in; rescale the column (e.g. "
                             "divide it by a power of ten) before imputing")


def _check_training_finished(history, specs, module=None, callbacks=None) -> None:
    """A loss that became NaN or infinite leaves a model whose imputations are NaN.

    The last epoch's loss is what counts, unless a callback loaded another
    epoch's parameters (``load_best``): then the parameters themselves must
    be finite.
    """
    if not len(history):  # max_epochs=0: an untrained model, as asked
        return
    last = history[-1]
    finite_parameters = module is None or all(bool(torch.isfinite(p).all()) for p in module.parameters())
    loads_other = any(getattr(cb[1] if isinstance(cb, tuple) else cb, "load_best", False) for cb in callbacks or ())
    if finite_parameters and (np.isfinite(last["train_loss"]) or loads_other):
        return
    nll = np.asarray(last.get("train_column_nll", [np.nan] * len(specs)), dtype=float)
    bad = [specs[j].name for j in np.flatnonzero(~np.isfinite(nll))]
    where = f" (not finite for column(s) {', '.join(map(repr, bad))})" if bad else ""
    raise FloatingPointError(f"training diverged: the loss after epoch {len(history)} is "
                             f"{last['train_loss']}{where}; lower lr or check those columns' scale")


#: seed of the cells :meth:`HeterogeneousVAEImputer.score` hides (independent of ``random_state``)
_SCORE_MASK_SEED = 20_221_122

#: rows on which ``impute_with="auto"`` chooses between the mean and the default estimate
_POINT_CHOICE_ROWS = 10_000


class _FractionSplit:
    """skorch ``train_split``: hold out a seeded random fraction of rows.

    The held-out rows also get a fixed, seeded ``seen`` mask that hides a
    ``hide`` share of their observed cells from the encoder, as
    ``cell_dropout`` does to training rows at random: their loss then
    measures the prediction of cells the model did not see, which is what
    an imputer is for (with all cells visible, a model with the decoder
    skip would only be copying its input).
    """

    def __init__(self, fraction: float, seed: int, hide: float = 0.0):
        self.fraction = fraction
        self.seed = seed
        self.hide = hide

    @staticmethod
    def n_valid(fraction: float, n: int) -> int:
        return max(2, int(round(fraction * n))) if fraction > 0 else 0

    def __call__(self, dataset, y=None, **_):
        n = len(dataset)
        if n - self.n_valid(self.fraction, n) < 2:
            raise ValueError(f"validation_fraction={self.fraction} leaves {n - self.n_valid(self.fraction, n)} of "
                             f"{n} rows to train on; training needs at least 2 (use validation_fraction=0)")
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=g)
        n_valid = self.n_valid(self.fraction, n)
        valid, train = order[:n_valid], order[n_valid:]
        pick = lambda idx: {k: v[idx.to(v.device)] for k, v in dataset.X.items()}
        held_out = pick(valid)
        observed = held_out["observed"]
        keep = torch.rand(observed.shape, generator=g) >= self.hide
        held_out["seen"] = observed & keep.to(observed.device)
        return _TensorDataset(pick(train)), _TensorDataset(held_out)


class HeterogeneousVAEImputer(MixedTableTransformerMixin, TransformerMixin, BaseEstimator):
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
    model : {"vae", "iwae", "dreg", "hivae"}, default="vae"
        The model variant (see :data:`heterovae.vae.MODELS` and
        docs/models.rst): ``"vae"`` the heterogeneous VAE (ELBO);
        ``"iwae"`` the importance-weighted bound with importance-sampled
        imputation; ``"dreg"`` the same bound trained with doubly
        reparameterised gradients; ``"hivae"`` HI-VAE (Nazabal et al.),
        with a mixture latent and per-column decoders.
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
        Size of z; ``None`` is the model's default: the number of columns
        (at least 2) for vae/iwae/dreg, 10 for hivae.
    hidden_dim : int or None, default=None
        Width of the decoder's hidden layers, and of the encoder's unless
        ``encoder_dim`` says otherwise; for hivae the width of ``y`` (split
        evenly between the columns). ``None`` is the model's default: 200
        for vae, 100 for iwae and dreg, ``5 * n_features`` for hivae.
    n_layers : int, default=3
        Hidden layers in the decoder, and in the encoder unless
        ``encoder_layers`` says otherwise (hivae's networks are single
        linear maps, as in the paper; it ignores this).
    encoder_dim, encoder_layers : int or None, default=None
        Width and number of hidden layers of vae's encoder; ``None`` takes
        the decoder's (``hidden_dim``, ``n_layers``). With ``decoder_skip``
        the decoder reads the seen cells itself and the encoder only
        summarises what they leave uncertain, so a smaller encoder is a
        way to train faster: ``encoder_dim=100, encoder_layers=2`` made a
        step 6-19 % shorter and was as accurate on the 8,000-row
        benchmark tables, but worse on the whole diamonds table
        (docs/imputer.rst). Only ``"vae"`` has them.
    n_importance_samples : int, default=20
        Latent samples per row in the importance-weighted bound of
        ``"iwae"`` and ``"dreg"`` (ignored by the other models).
    decoder_skip : bool or None, default=None
        Feed the cells the encoder sees (and the mask) to the decoder too,
        past the latent bottleneck, so the decoder models
        ``p(x | z, x_seen)``: a conditional model of the missing cells, as
        in VAEAC (Ivanov, Figurnov and Vetrov, 2019), with ``z`` carrying
        what the seen cells leave open. ``None`` is the model's default:
        on for ``"vae"``, the only model that has it. On the benchmark
        (docs/imputer.rst), with the default ``cell_dropout``, it lowered
        the error on all five tables (diamonds 0.207 to 0.194).
        Such a model defines no likelihood of the observed cells, so
        :meth:`log_likelihood` needs ``decoder_skip=False``.
    numeric_bins : int >= 0 or None, default=None
        ``model="vae"`` only. Besides its normal score, each real and
        positive column reaches the networks as a piecewise-linear encoding
        of its rank in this many equal steps
        (:class:`heterovae.likelihoods.Normal`), which lets them express a
        sharp function of one column, such as a category or a few-valued
        number that follows from exact values of another. 0 turns it off;
        ``None`` is the model's default, 16 for ``"vae"``. See
        docs/imputer.rst, "Rank encodings of numeric columns", for what it
        did on the benchmark.
    value_codes : "auto", int >= 0, list of column labels or positions, or None, default="auto"
        ``model="vae"`` with ``decoder_skip`` only. Exact-value codes
        (:mod:`heterovae.value_codes`): each chosen numeric column's
        distinct training values get a learned vector each, added to the
        decoder's first layer where the cell is seen, so the decoder can
        look other columns up from a value's identity, as a forest splits on
        it (a rate that names the day, and with it the weekday). An int
        ``K`` codes every real, positive and count column with at most ``K``
        distinct training values that repeat at least
        :data:`heterovae.value_codes.MIN_REPEATS` times on average; a list
        codes the columns it names, whatever their number of values.
        ``"auto"`` codes the columns among those of at most 512 values whose
        exact values predict some discrete column clearly better than their
        rank does (:func:`heterovae.value_codes.auto_values`), and nothing
        for models that cannot take codes. A value not seen at fit gets no
        code. ``None`` or 0: no codes. ``"auto"`` is the default because it
        codes only where codes help: on the benchmark, codes for every column
        of at most 512 values lowered bank's error from 0.180 to 0.165 and
        raised it on the tables whose numbers are measurements, while
        ``"auto"`` picks bank's five economic indicators and no column of
        the other tables (docs/imputer.rst, "Exact-value codes").
    cell_dropout : float, default=0.3
        Probability of hiding an observed cell from the encoder (and, with
        ``decoder_skip``, from the decoder) during training while still
        reconstructing it, which trains the model on the task it is used
        for: predicting cells it cannot see.
    kl_weight : float, default=0.05
        Weight of the KL term of the ``"vae"`` objective. 1 is the ELBO of
        the paper; smaller values (a beta-VAE) keep more of each row in the
        latent code, which is what imputation needs. On wine, 0.05 lowered
        the mean error from 0.106 (ELBO) to 0.096, with cell_dropout 0.3.
        :meth:`log_likelihood` stays a bound on the model's log-likelihood.
    nll_beta : float in [0, 1], default=0.5
        beta-NLL weighting (Seitzer et al., 2022) of the real and positive
        columns' training loss in ``"vae"``: each cell's NLL is multiplied by
        the predicted ``sigma^(2 beta)`` (held constant), so a hard cell's
        mean is not starved of gradient by a large predicted variance.
        0 trains on the plain likelihood.
    visible_weight : float in (0, 1] or None, default=None
        Weight, in ``"vae"``'s training loss, of the observed cells the
        encoder saw, relative to those ``cell_dropout`` hid from it (which
        the model has to predict, as in imputation). 1 is the ELBO. Lower
        values move the objective from reconstruction towards prediction.
        ``None`` is 0.1 with ``decoder_skip`` (the decoder sees those cells,
        so reconstructing them teaches it little) and 1 without; without
        the skip, whether a lower value helps depends on the table
        (docs/imputer.rst), so tune it with :meth:`score`, e.g. in
        ``GridSearchCV``. Ignored by the other models, whose bounds need
        the plain likelihood.
    max_epochs : int or "auto", default="auto"
        Passes over the training rows. ``"auto"`` is the model's default
        training length: for vae as many epochs as make about 4,000 steps,
        at least 48 and at most 200 (wine's 5,200 rows in batches of 256:
        191 epochs; 8,000 rows: 125; 2,000 rows: 200; 43,000 rows: 48, which
        are 8,100 steps), because on tables of thousands of rows the error
        follows the number of steps rather than of epochs, while small
        tables overfit with many epochs and tables of tens of thousands of
        rows want more than 24 passes (docs/imputer.rst); 100 epochs for the
        other models. The number
        used is ``n_epochs_``. Some tables want another length (diamonds
        twice as many steps); a ``GridSearchCV`` over ``max_epochs`` on
        :meth:`score` finds it (docs/imputer.rst, "Against MissForest as
        published").
    batch_size : int or None, default=None
        Rows per training step; ``None`` is the model's default: 256 for
        vae, 128 for iwae, dreg and hivae (whose paper used 1000, which
        left it undertrained: docs/models.rst).
    lr : float or None, default=None
        Adam learning rate; ``None`` is the model's default: 2e-3 for vae,
        3e-3 for hivae, 1e-3 for iwae and dreg.
    ema_decay : float in [0, 1), default=0.995
        Training ends with an exponential moving average of the weights
        over the training steps, spanning about ``1 / (1 - ema_decay)``
        steps (:class:`heterovae.training.WeightAverage`); imputation uses
        these averaged weights. It costs next to nothing and lowered the
        error on every benchmark table (docs/imputer.rst). 0 keeps the
        last step's weights. The losses in ``history_`` are those of the
        current weights; with a callback that has ``load_best=True``
        (``EarlyStopping``) the weights are those of its best epoch, not
        the average, whether or not that epoch was the last. Callback
        names ``column_nll``, ``epoch_schedule`` and ``weight_average``
        are the imputer's own.
    impute_with : {"auto", "mean", "mode", "sample"}, default="auto"
        Point estimate used by :meth:`transform`. ``"auto"`` takes, per
        column, the one that suits the usual error metric: the mean for
        real and count columns (squared error), the mode for binary,
        categorical and ordinal ones (error rate), and for positive columns
        the median or the mean, whichever imputed a seeded fifth of the
        column's observed training cells, hidden from the model at the end
        of fit, with the lower squared error (``auto_takes_mean_``): the
        LogNormal mean minimises the squared error when the variance is
        right, but amplifies an overestimated one exponentially, as on
        zero-inflated columns such as capital gains. A count's mean is not rounded (rounding adds to the
        squared error) unless the column has an integer dtype, such as
        pandas' ``Int64``, whose dtype the output keeps; ``"mode"`` gives
        whole counts in any column. Numeric point estimates are clipped to
        the range of the column's training values. ``"mean"`` of a
        categorical column is its mode, of an ordinal column the rounded
        expected code. ``"sample"`` draws one completion (see also
        :meth:`sample` for several).
    validation_fraction : float, default=0.0
        Fraction of rows held out to record ``valid_loss`` in ``history_``
        (and to drive an ``EarlyStopping`` callback); 0 trains on all rows.
        A fixed, seeded ``cell_dropout`` share of the held-out rows'
        observed cells is hidden from the encoder, so ``valid_loss`` is
        the loss of predicting cells the model did not see, the held-out
        counterpart of ``train_loss``.
    callbacks : list or None, default=None
        skorch callbacks, e.g. ``[skorch.callbacks.ProgressBar()]`` or
        ``[EarlyStopping(monitor="valid_loss")]``.
    device : {"cpu", "cuda", "auto"}, str or torch.device, default="cpu"
        Torch device for training and imputation; ``"auto"`` picks CUDA when
        available. Read by :meth:`fit`: the fitted model imputes where it was
        trained (on the CPU once unpickled on a machine without CUDA), and a
        new ``device`` takes effect at the next fit.
    n_threads : int >= 1 or None, default=1
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
    n_epochs_ : int
        Epochs trained: ``max_epochs`` (resolved when it is ``"auto"``), or
        fewer when a callback such as ``EarlyStopping`` stopped training.
    auto_takes_mean_ : ndarray of bool, shape (n_features,)
        The numeric columns that ``impute_with="auto"`` imputes with the
        mean rather than the model's default estimate, chosen at fit on
        held-in training cells (see ``impute_with``).
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_column_nll`` (each column's term of
        the training loss, see :class:`heterovae.training.ColumnLossHistory`)
        and, with validation, ``valid_loss`` and ``valid_column_nll``; plot
        them with :func:`heterovae.plotting.plot_column_history`.
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
    >>> int(imp.fit_transform(X).isna().sum().sum())
    0
    """

    _parameter_constraints = {
        "model": [StrOptions(set(MODELS))],
        "moo": [None, str, tuple, list],
        "moo_params": [None, dict],
        "moo_rescale": ["boolean"],
        "likelihoods": [None, dict, list, tuple, str, os.PathLike],
        "latent_dim": [None, Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [None, Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "encoder_dim": [None, Interval(Integral, 1, None, closed="left")],
        "encoder_layers": [None, Interval(Integral, 0, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "decoder_skip": [None, "boolean"],
        "numeric_bins": [None, Interval(Integral, 0, None, closed="left")],
        "value_codes": [None, Interval(Integral, 0, None, closed="left"), list, tuple, StrOptions({"auto"})],
        "cell_dropout": [Interval(Real, 0, 1, closed="left")],
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "visible_weight": [None, Interval(Real, 0, 1, closed="right")],
        "nll_beta": [Interval(Real, 0, 1, closed="both")],
        "max_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [None, Interval(Integral, 2, None, closed="left")],
        "lr": [None, Interval(Real, 0, None, closed="neither")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "impute_with": [StrOptions({"auto", "mean", "mode", "sample"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "callbacks": [None, list],
        "device": [str, torch.device],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, model="vae", moo=None, moo_params=None, moo_rescale=True, likelihoods=None,
                 latent_dim=None, hidden_dim=None, n_layers=3, encoder_dim=None, encoder_layers=None,
                 n_importance_samples=20, decoder_skip=None, numeric_bins=None, value_codes="auto",
                 cell_dropout=0.3, kl_weight=0.05, nll_beta=0.5, visible_weight=None, max_epochs="auto", batch_size=None, lr=None,
                 ema_decay=0.995, impute_with="auto", validation_fraction=0.0, callbacks=None,
                 device="cpu", n_threads=1, random_state=None, verbose=0):
        self.model = model
        self.moo = moo
        self.moo_params = moo_params
        self.moo_rescale = moo_rescale
        self.likelihoods = likelihoods
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.encoder_dim = encoder_dim
        self.encoder_layers = encoder_layers
        self.n_importance_samples = n_importance_samples
        self.decoder_skip = decoder_skip
        self.numeric_bins = numeric_bins
        self.value_codes = value_codes
        self.cell_dropout = cell_dropout
        self.kl_weight = kl_weight
        self.visible_weight = visible_weight
        self.nll_beta = nll_beta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.ema_decay = ema_decay
        self.impute_with = impute_with
        self.validation_fraction = validation_fraction
        self.callbacks = callbacks
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- fitting
    def _code_values(self, values: np.ndarray):
        """``value_codes`` resolved on the training values (``values - offset``): the model's
        ``code_values``, or ``None`` when no column gets codes."""
        if not self.value_codes:  # None, 0 or an empty list: no codes
            return None
        takes_codes = "code_values" in inspect.signature(MODELS[self.model]).parameters
        skip = self._model_default("decoder_skip")
        if self.value_codes == "auto" and not (takes_codes and skip):
            return None  # "auto": codes where the model can use them
        if not takes_codes:
            raise ValueError(f"value_codes needs model='vae'; model={self.model!r} does not take it")
        if not skip:
            raise ValueError("value_codes reach the decoder through its skip connection: they need decoder_skip=True")
        numeric = [s.kind not in DISCRETE_KINDS for s in self.specs_]
        if self.value_codes == "auto":
            codes = auto_values(values, numeric, [s.n_classes for s in self.specs_])
        elif isinstance(self.value_codes, (list, tuple)):
            names = [s.name for s in self.specs_]
            chosen = set()
            for key in self.value_codes:
                j = column_position(key, names, "value_codes")
                if not numeric[j]:
                    raise ValueError(f"value_codes names column {names[j]!r}, a {self.specs_[j].kind!r} column: "
                                     "codes are for numeric columns (real, pos, count); discrete ones are "
                                     "already coded by category")
                chosen.add(j)
            codes = distinct_values(values, max_values=len(values), min_repeats=0)
            codes = [v if j in chosen else None for j, v in enumerate(codes)]
        else:
            codes = distinct_values(values, max_values=self.value_codes)
            codes = [v if numeric[j] else None for j, v in enumerate(codes)]
        return None if all(v is None for v in codes) else codes

    def _module_kwargs(self):
        """Constructor arguments of the torch model: those its class accepts.

        ``aggregator_factory`` builds a fresh multi-objective aggregator per
        call (a ``functools.partial`` of :func:`heterovae.moo.build`, so the
        model stays picklable); models with several shared features (DReG,
        HI-VAE) call it once per feature.
        """
        n = len(self.specs_)
        cls = MODELS[self.model]
        accepted = inspect.signature(cls).parameters
        skip = self._model_default("decoder_skip")
        if skip and "decoder_skip" not in accepted:
            raise ValueError(f"decoder_skip=True needs model='vae'; model={self.model!r} has no decoder skip connection")
        for name in ("encoder_dim", "encoder_layers"):
            if getattr(self, name) is not None and name not in accepted:
                raise ValueError(f"{name} needs model='vae'; model={self.model!r} has no encoder size of its own")
        bins = self._model_default("numeric_bins") or 0
        if bins and "numeric_bins" not in accepted:
            raise ValueError(f"numeric_bins needs model='vae'; model={self.model!r} does not take it")
        kwargs = dict(
            kinds=[s.kind for s in self.specs_],
            n_classes=[s.n_classes for s in self.specs_],
            latent_dim=self._model_default("latent_dim"),
            hidden_dim=self._model_default("hidden_dim"),
            n_layers=self.n_layers,
            encoder_dim=self.encoder_dim,
            encoder_layers=self.encoder_layers,
            decoder_skip=skip,
            numeric_bins=bins,
            cell_dropout=self.cell_dropout,
            kl_weight=self.kl_weight,
            nll_beta=self.nll_beta,
            visible_weight=_VISIBLE_WEIGHT[skip] if self.visible_weight is None else self.visible_weight,
            n_importance_samples=self.n_importance_samples,
            aggregator_factory=functools.partial(moo_methods.build, self.moo, n_tasks=n,
                                                 method_params=self.moo_params, rescale=self.moo_rescale),
        )
        return {k: v for k, v in kwargs.items() if k in accepted}

    def _model_default(self, name):
        """The parameter ``name``, or the model's default for this table when it is ``None``
        (:meth:`default_sizes` of the model class; ``decoder_skip`` defaults to off
        for models that do not list it)."""
        value = getattr(self, name)
        if value is not None:
            return value
        return MODELS[self.model].default_sizes(len(self.specs_)).get(name, False if name == "decoder_skip" else None)

    def _check_callbacks(self):
        """Say before training what would fail during it: a reserved callback name, or a callback
        that monitors a ``valid_*`` score without held-out rows."""
        reserved = [name for name, _ in self._default_callbacks()]
        for entry in self.callbacks or []:
            name, callback = entry if isinstance(entry, tuple) else (None, entry)
            if name in reserved:
                raise ValueError(f"callback name {name!r} is taken by the imputer's own callbacks "
                                 f"({', '.join(reserved)}); choose another name")
            if self.validation_fraction > 0:
                continue
            what = callback.__name__ if isinstance(callback, type) else type(callback).__name__
            if _is_epoch_scoring(callback) and not _setting(callback, "on_train"):
                raise ValueError(f"callback {what} scores held-out rows (on_train=False): set "
                                 "validation_fraction > 0 (e.g. 0.1), or score the training rows (on_train=True)")
            monitor = _setting(callback, "monitor")
            if isinstance(monitor, str) and monitor.startswith("valid"):
                raise ValueError(
                    f"callback {what} monitors {monitor!r}, which needs held-out rows: "
                    "set validation_fraction > 0 (e.g. 0.1), or monitor a train_* score"
                )

    def __setstate__(self, state):
        super().__setstate__(state)
        net = state.get("net_")
        if net is not None:
            # skorch loads a net trained on CUDA onto the CPU where there is none
            self._device = str(net.device)

    def _forget_fit(self):
        """Remove the fitted attributes, so that a fit that fails leaves the estimator unfitted
        rather than half-fitted (new column kinds next to the previous fit's net)."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)

    def _default_callbacks(self):
        callbacks = [("column_nll", ColumnLossHistory()), ("epoch_schedule", EpochSchedule())]
        if self.ema_decay > 0:
            callbacks.append(("weight_average", WeightAverage(self.ema_decay)))
        return callbacks

    def _batch_size(self):
        return self._model_default("batch_size")

    def _n_epochs(self, n_rows):
        """``max_epochs``; for ``"auto"`` the epochs that make the model's default number of steps on
        ``n_rows`` rows, within its default least and most epochs."""
        if self.max_epochs != "auto":
            return self.max_epochs
        defaults = MODELS[self.model].default_sizes(len(self.specs_))
        epochs = defaults.get("epochs", _DEFAULT_EPOCHS)
        if "steps" not in defaults:
            return epochs
        n_train = n_rows - _FractionSplit.n_valid(self.validation_fraction, n_rows)
        by_steps = epochs_for_steps(defaults["steps"], n_train, self._batch_size())
        return min(epochs, max(defaults.get("min_epochs", 1), by_steps))

    def _to_tensors(self, values):
        """Encoded values ([N, D], NaN = missing) as (x, observed) tensors on the device,
        less the float32 offsets (:func:`_float32_offsets`)."""
        observed = ~np.isnan(values)
        x = torch.as_tensor(np.nan_to_num(values - self._offset), dtype=torch.float32, device=self._device)
        return x, torch.as_tensor(observed, device=self._device)

    def _tensors(self, X):
        """Validate ``X`` against what was seen at fit, encode it, move it to the device."""
        _check_2d(X)
        _check_feature_names(self, X, reset=False)
        _check_n_features(self, X, reset=False)
        return self._to_tensors(self._codec.encode(X))

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
        self._check_callbacks()
        self._forget_fit()
        try:
            return self._fit(X)
        except BaseException:
            self._forget_fit()
            raise

    def _fit(self, X):
        detector = LikelihoodDetector(likelihoods=self.likelihoods).fit(X)
        self.specs_ = detector.specs_
        _check_feature_names(self, X, reset=True)
        _check_n_features(self, X, reset=True)
        self._codec = TableCodec(self.specs_).fit(X)
        device = resolve_device(self.device)
        if device.type == "cuda" and device.index is None:  # the GPU current now, also for later imputation
            device = torch.device("cuda", torch.cuda.current_device())
        self._device = str(device)
        values = self._codec.encode(X, fitting=True)
        continuous = np.array([s.categories is None for s in self.specs_])
        # point estimates never leave the range seen in training (a safety net
        # for heavy-tailed columns whose likelihood fits poorly)
        self._low = np.where(continuous, np.nanmin(values, axis=0), -np.inf)
        self._high = np.where(continuous, np.nanmax(values, axis=0), np.inf)
        self._offset = _float32_offsets(values, self.specs_)
        _check_float32_range(values - self._offset, self.specs_)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self._seed = seed
        devices = [torch.device(self._device).index] if self._device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.n_threads):
            torch.manual_seed(seed)
            code_values = self._code_values(values - self._offset)
            codes = {} if code_values is None else {"code_values": code_values}
            module = build_model(self.model, **self._module_kwargs(), **codes).fit_scaling(values - self._offset)
            module = module.to(self._device)
            self.n_epochs_ = self._n_epochs(len(values))
            x, observed = self._to_tensors(values)
            batches = torch.Generator().manual_seed(seed + 1)
            train_split = None if self.validation_fraction == 0 else _FractionSplit(self.validation_fraction, seed + 2,
                                                                             hide=module.cell_dropout)
            self.net_ = VAENet(
                module,
                optimizer=torch.optim.Adam,
                # fused Adam (one kernel per parameter) takes ~15 % off a CPU
                # step of a tabular-size net against the multi-tensor form
                optimizer__fused=True,
                lr=self._model_default("lr"),
                max_epochs=self.n_epochs_,
                batch_size=self._batch_size(),
                iterator_train=TensorBatches,
                iterator_train__shuffle=True,
                iterator_train__generator=batches,
                iterator_valid=TensorBatches,
                train_split=train_split,
                callbacks=self._default_callbacks() + list(self.callbacks or []),
                device=self._device,
                verbose=self.verbose,
                # one line per epoch: the per-column lists are in history_
                callbacks__print_log__keys_ignored=["train_column_nll", "valid_column_nll"],
            )
            self.net_.fit(self._training_data(module, x, observed), None)
            self.n_epochs_ = self.net_.epochs_trained_  # fewer than planned if a callback stopped training
            _check_training_finished(self.net_.history, self.specs_, module, self.callbacks)
            self.auto_takes_mean_ = self._choose_auto_points(values)
        return self

    def _choose_auto_points(self, values):
        """Which numeric columns ``impute_with="auto"`` imputes with the mean rather than the
        model's default estimate (the LogNormal median for positive columns).

        The mean minimises the squared error when the model's spread is right;
        the median does not depend on it, which is safer where the spread is
        overestimated (zero-inflated, heavy-tailed columns). Each column takes
        the one that imputes a seeded fifth of its observed training cells
        (at most 10,000 rows), hidden from the model, with the lower squared
        error; ties keep the default.
        """
        numeric = np.array([ERROR_OF_KIND[s.kind] != "error_rate" for s in self.specs_])
        # only where "auto" is not already the mean (positive columns) can the two
        # passes differ; without such a column they are skipped (for IWAE each
        # costs 100 decodings a row)
        choosable = numeric & np.array([LIKELIHOODS[s.kind].default_point != "mean" for s in self.specs_])
        takes_mean = np.zeros(len(self.specs_), dtype=bool)
        if not choosable.any():
            return takes_mean
        rng = np.random.default_rng(self._seed + 4)
        rows = np.sort(rng.permutation(len(values))[:_POINT_CHOICE_ROWS])
        truth = values[rows]
        observed = ~np.isnan(truth)
        # every numeric column loses a fifth of its cells, as at imputation time,
        # so a positive column is judged with its row's other cells missing as often
        hide = observed & numeric & (rng.random(truth.shape) < 0.2)
        x, _ = self._to_tensors(truth)
        seen = torch.as_tensor(observed & ~hide, device=x.device)
        default, mean = (self._clipped_codes(x, seen, how) for how in ("auto", "mean"))
        for j in np.flatnonzero(choosable & hide.any(axis=0)):
            cells = hide[:, j]
            errors = [np.sum((self._codec.as_returned(j, c[cells, j]) - truth[cells, j]) ** 2) for c in (default, mean)]
            takes_mean[j] = errors[1] < errors[0]
        return takes_mean

    def _clipped_codes(self, x, observed, how):
        """The model's ``how`` point estimates, clipped to the columns' training ranges."""
        return np.clip(self._predict_codes(x, observed, how), self._low, self._high)

    def _point_codes(self, x, observed, how):
        """:meth:`_clipped_codes`, except that ``"auto"`` takes the mean in the columns of
        :attr:`auto_takes_mean_`."""
        codes = self._clipped_codes(x, observed, how)
        if how == "auto" and self.auto_takes_mean_.any():
            codes[:, self.auto_takes_mean_] = self._clipped_codes(x, observed, "mean")[:, self.auto_takes_mean_]
        return codes

    @staticmethod
    def _training_data(module, x, observed):
        """What the training loop batches: the rows, their mask and, when they fit in
        :data:`_ENCODINGS_MAX_BYTES`, their encoder inputs, computed once for the whole fit."""
        data = {"x": x, "observed": observed}
        width = int(module.encoding_owner.numel())
        if x.shape[0] * width * x.element_size() <= _ENCODINGS_MAX_BYTES:
            data["encoded"] = module.encodings(x, observed)
        return data

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
        if len(x) == 0:
            shape = (0, x.shape[1]) if n_draws is None else (n_draws, 0, x.shape[1])
            return np.empty(shape, dtype=np.float64)
        out = []
        # models that decode many latent draws per row (IWAE) bound the chunk
        step = min(max(self.net_.batch_size, 4096), getattr(module, "impute_rows", 4096))
        for start in range(0, len(x), step):
            xb, ob = x[start:start + step], observed[start:start + step]
            if n_draws is not None:
                out.append(module.sample(xb, ob, n_draws=n_draws, generator=generator))
            else:
                out.append(module.impute(xb, ob, how=how))
        return torch.cat(out, dim=-2).cpu().numpy().astype(np.float64) + self._offset

    def _generator(self, offset=0):
        device = self._device if self._device.startswith("cuda") else "cpu"
        return torch.Generator(device=device).manual_seed(self._seed + 1000 + offset)

    def transform(self, X):
        """Fill the missing cells of ``X``.

        Observed cells are returned unchanged. The output has ``X``'s
        container (DataFrame or array), column names, category labels and,
        for columns that were integer or boolean at fit, that dtype.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Table with missing cells (NaN, None, pd.NA), with the columns
            seen at fit. Never modified.

        Returns
        -------
        X_imputed : DataFrame or ndarray of shape (n_samples, n_features)
            ``X`` with every missing cell filled with the point estimate
            chosen by ``impute_with`` (or one draw, for ``"sample"``).
        """
        check_is_fitted(self, "net_")
        x, observed = self._tensors(X)
        missing = ~observed.cpu().numpy()
        with torch_threads(self.n_threads):
            if self.impute_with == "sample":
                codes = self._predict_codes(x, observed, None, generator=self._generator(), n_draws=1)[0]
            else:
                codes = self._point_codes(x, observed, self.impute_with)
        return self._codec.decode(X, codes, missing)

    def sample(self, X, n_draws=5, random_state=None):
        """Draw ``n_draws`` plausible completions of ``X`` (multiple imputation).

        Each draw samples the latent code from the encoder's posterior and
        every missing cell from its likelihood; observed cells stay as they
        are.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        n_draws : int, default=5
            Number of completions (0 gives an empty list).
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; ``None`` uses a seed derived from the fit's
            ``random_state``, so repeated calls give the same draws.

        Returns
        -------
        list of length ``n_draws`` of completed tables, each like
        :meth:`transform`'s output (container, dtypes, ``set_output``).
        """
        check_is_fitted(self, "net_")
        if isinstance(n_draws, bool) or not isinstance(n_draws, Integral) or n_draws < 0:
            raise ValueError(f"n_draws must be a non-negative int, got {n_draws!r}")
        if n_draws == 0:
            return []
        x, observed = self._tensors(X)
        if random_state is None:
            generator = self._generator(1)
        else:
            seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
            generator = torch.Generator(device=x.device).manual_seed(seed)
        with torch_threads(self.n_threads):
            draws = self._predict_codes(x, observed, None, generator=generator, n_draws=int(n_draws))
        missing = ~observed.cpu().numpy()
        return [_wrap_data_with_container("transform", self._codec.decode(X, d, missing), X, self) for d in draws]

    def score(self, X, y=None, hidden_fraction=0.2):
        """Imputation accuracy on cells of ``X`` that are hidden for the test (higher is better).

        A seeded random ``hidden_fraction`` of the observed cells of ``X`` is
        hidden (the same cells whatever the imputer's ``random_state``, so
        that the candidates of a search are scored on the same cells),
        imputed from the rest of each row, and compared with the true
        values; the score is minus the mean over columns of the error used
        throughout the package (:func:`heterovae.metrics.imputation_error`):
        RMSE divided by the column's range of observed values for real,
        positive and count columns (a column without a range is left out,
        as :func:`~heterovae.metrics.imputation_error` does), error rate for
        discrete ones. This is
        what ``GridSearchCV`` maximises by default, so a search picks the
        setting that imputes best. For the model's likelihood see
        :meth:`log_likelihood`.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Table to score, with the columns seen at fit; it needs observed
            cells to hide.
        y : None
            Ignored.
        hidden_fraction : float in (0, 1], default=0.2
            Probability with which each observed cell is hidden (and then
            imputed and compared with its true value). With
            ``impute_with="sample"`` the hidden cells get one draw, as
            :meth:`transform` imputes them, so a search weighs drawing
            against the point estimates.

        Returns
        -------
        score : float
            Minus the mean over the scored columns of their imputation
            error (at most 0; higher is better).
        """
        check_is_fitted(self, "net_")
        if not (isinstance(hidden_fraction, numbers.Real) and not isinstance(hidden_fraction, bool)
                and 0 < hidden_fraction <= 1):
            raise ValueError(f"hidden_fraction must be a number in (0, 1], got {hidden_fraction!r}")
        x, observed = self._tensors(X)
        obs = observed.cpu().numpy()
        # the same cells for every fit, whatever its random_state: the
        # candidates of a search are then compared on the same cells
        hide = obs & (np.random.default_rng(_SCORE_MASK_SEED).random(obs.shape) < hidden_fraction)
        if not hide.any():
            raise ValueError("X has no observed cell to hide and score; score needs observed values")
        seen = observed & torch.as_tensor(~hide, device=x.device)
        with torch_threads(self.n_threads):
            if self.impute_with == "sample":
                # scored as transform imputes: one draw, so that a search weighs
                # drawing against the point estimates
                codes = self._predict_codes(x, seen, None, generator=self._generator(), n_draws=1)[0]
            else:
                codes = self._point_codes(x, seen, self.impute_with)
        truth = x.cpu().numpy().astype(np.float64) + self._offset
        errors = []
        for j, spec in enumerate(self.specs_):
            cells = hide[:, j]
            if not cells.any():
                continue
            predicted = self._codec.as_returned(j, codes[cells, j])
            if ERROR_OF_KIND[spec.kind] == "error_rate":
                errors.append(error_rate(truth[cells, j], predicted))
            else:
                values = truth[obs[:, j], j]
                spread = values.max() - values.min()
                if spread == 0:
                    # no range to normalise by: left out, as imputation_error does
                    continue
                errors.append(normalized_rmse(truth[cells, j], predicted, spread))
        if not errors:
            raise ValueError("no column of X has hidden cells to score (numeric columns need two distinct values)")
        return -float(np.mean(errors))

    def log_likelihood(self, X):
        """Average log-likelihood of the observed cells per row.

        An importance-weighted lower bound on ``log p(x_obs)`` with 10 samples
        (Burda et al.), averaged over rows, in the data's original units
        (nats; densities of continuous columns, masses of discrete ones).
        Comparable across settings that train on the likelihood itself
        (``kl_weight=1``, ``nll_beta=0``); other settings trade likelihood
        for imputation accuracy.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Table with missing cells, with the columns seen at fit; at least
            one row. The model must have been fitted without the decoder
            skip (``decoder_skip=False`` for ``"vae"``).

        Returns
        -------
        float
            The bound averaged over the rows of ``X``, in nats per row.
        """
        check_is_fitted(self, "net_")
        x, observed = self._tensors(X)
        if len(x) == 0:
            raise ValueError("X has no rows; the log-likelihood per row is their mean")
        module = self.module_
        module.eval()
        g = self._generator(2)
        with torch_threads(self.n_threads):
            bounds = [module.log_marginal_bound(x[s:s + 4096], observed[s:s + 4096], n_samples=10, generator=g)
                      for s in range(0, len(x), 4096)]
        return float(torch.cat(bounds).mean())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

"""The heterogeneous VAE: column likelihoods + encoder + decoder + fused heads."""

from __future__ import annotations

import math
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..likelihoods import LIKELIHOODS, make_likelihood
from ..value_codes import ValueCodes
from .heads import ColumnHeads
from .networks import Decoder, GaussianEncoder


def point_estimate(lik, raw: torch.Tensor, how: str = "auto", auto=None) -> torch.Tensor:
    """A likelihood group's point estimate: ``lik.point(raw, how)``, except that a
    model's ``auto`` dict (kind -> function of ``(lik, raw)``) overrides ``"auto"``
    for the kinds it lists (HI-VAE's LogNormal mode)."""
    if how == "auto" and auto and lik.kind in auto:
        return auto[lik.kind](lik, raw)
    return lik.point(raw, how)


def gradnorm_losses(column_nll: torch.Tensor) -> torch.Tensor:
    """Positive per-column losses for loss-ratio methods (GradNorm): ``exp(NLL)``.

    A column's NLL can be negative (densities); ``exp(L_t - L_0)`` is the
    inverse likelihood ratio of the column since the start of training.
    """
    return torch.exp(column_nll.detach().clamp(max=80.0))


def gaussian_kl(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """KL(N(loc, scale^2) || N(0, I)) summed over the last dimension."""
    return 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * torch.log(scale)).sum(-1)


class SkipContext(NamedTuple):
    """What a ``decoder_skip`` model's decoder reads besides ``z``."""

    #: the normalised encoder input, ``[N, E]``
    inputs: torch.Tensor
    #: the summed code vectors of the seen cells, ``[N, hidden]``; ``None`` without value codes
    shift: Optional[torch.Tensor]


class MixedTableModel(nn.Module):
    """Plumbing shared by every model of a mixed-type table.

    Groups the columns by kind into one vectorised likelihood per kind,
    fits their scaling on training data, and moves tensors between the
    column order and the per-kind groups. Subclasses add the networks.

    Parameters
    ----------
    kinds : sequence of str
        Likelihood kind of each column (``heterovae.columns.KINDS``).
    n_classes : sequence of int or None
        Number of categories of each column (``None`` for numeric kinds).
    numeric_bins : int, default=0
        Steps of the piecewise-linear rank encoding that real and positive
        columns add to their encoder input (:func:`heterovae.likelihoods.make_likelihood`).
    """

    def __init__(self, kinds: Sequence[str], n_classes: Sequence[Optional[int]], numeric_bins: int = 0):
        super().__init__()
        self.n_columns = len(kinds)
        groups, columns = [], []
        for kind, cls in LIKELIHOODS.items():
            cols = [d for d, k in enumerate(kinds) if k == kind]
            if cols:
                classes = [n_classes[d] for d in cols] if cls.discrete else None
                groups.append(make_likelihood(kind, len(cols), classes, numeric_bins))
                columns.append(cols)
        self.likelihoods = nn.ModuleList(groups)
        self.group_columns: List[List[int]] = columns
        #: Column index of each likelihood-group position, in group order.
        self.group_order = [d for cols in columns for d in cols]
        self.register_buffer("inverse_order", torch.as_tensor(np.argsort(self.group_order)), persistent=False)
        self.register_buffer("fill", torch.zeros(self.n_columns))
        widths = [w for lik in groups for w in lik.encoding_widths]
        #: the column of every entry of :meth:`column_encodings`
        self.register_buffer("encoding_owner", torch.repeat_interleave(torch.as_tensor(self.group_order),
                                                                       torch.as_tensor(widths)), persistent=False)

    @staticmethod
    def default_sizes(n_columns: int) -> Dict[str, float]:
        """The model's defaults of ``latent_dim``, ``hidden_dim``, ``batch_size`` and Adam's ``lr`` for ``n_columns`` columns.

        Optional keys: ``decoder_skip``; ``epochs``, the training length of
        the imputer's ``max_epochs="auto"`` (100 when absent); ``steps``, a
        number of steps that ``"auto"`` turns into epochs on the table at
        hand, at least ``min_epochs`` (1 when absent) and at most ``epochs``.
        """
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop at the start of every epoch (0-based); for schedules."""

    def fit_scaling(self, x: np.ndarray) -> "MixedTableModel":
        """Fit every likelihood's scaling on training data ``x`` ([N, D], NaN = missing)."""
        for lik, cols in zip(self.likelihoods, self.group_columns):
            lik.fit(x[:, cols])
            self.fill[cols] = float(lik.fill_value)
        return self

    def _by_group(self, t: torch.Tensor):
        return [t[..., cols] for cols in self.group_columns]

    def _to_columns(self, parts: List[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts, dim=-1)[..., self.inverse_order]

    def column_encodings(self, x: torch.Tensor, observed: torch.Tensor,
                         encoded: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Every column's encoder input, concatenated: scaled values, one-hot codes; zero where missing.

        ``encoded``, when given, is :meth:`encodings` of the same rows under a
        mask that includes ``observed``: it is masked down to ``observed``
        instead of encoding ``x`` again (the same numbers, see
        :meth:`heterovae.likelihoods.Likelihood.encode`).
        """
        if encoded is not None:
            return torch.where(observed[..., self.encoding_owner], encoded, encoded.new_zeros(()))
        parts = [lik.encode(xg, og) for lik, xg, og in zip(self.likelihoods, self._by_group(x), self._by_group(observed))]
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def encodings(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """:meth:`column_encodings` of raw rows ``x`` (missing cells any value), for the ``encoded``
        argument of the training objective: the training loop encodes the table once rather than
        every batch (about a tenth of a CPU step), masking the result to each step's cells."""
        return self.column_encodings(self.prepare(x, observed), observed)

    def prepare(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Missing cells replaced by a valid per-column value (no NaN reaches autograd)."""
        return torch.where(observed, x, self.fill.to(x.dtype))

    def _encoder_mask(self, observed: torch.Tensor, seen: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The observed cells the encoder may see: ``seen`` when given (a fixed mask, for
        validation), else a random ``1 - cell_dropout`` of them in training, else all."""
        if seen is not None:
            return observed & seen
        if self.training and self.cell_dropout > 0:
            keep = torch.rand(observed.shape, device=observed.device) >= self.cell_dropout
            return observed & keep
        return observed


class HeterogeneousVAE(MixedTableModel):
    """VAE over a mixed-type table with a likelihood per column.

    Columns of the same kind share one vectorised likelihood module; the
    decoder's last hidden layer ``y`` (the *last shared feature*) feeds one
    fused linear head per column (:class:`ColumnHeads`), where a
    multi-objective aggregator may replace the gradient that flows back into
    the shared layers.

    Parameters
    ----------
    kinds : sequence of str
        Likelihood kind of each column (``heterovae.columns.KINDS``).
    n_classes : sequence of int or None
        Number of categories of each column (``None`` for numeric kinds).
    latent_dim, hidden_dim, n_layers : int
        Sizes of the networks: latent dimensions, width and number of
        hidden layers of the decoder (and of the encoder unless given
        below).
    cell_dropout : float
        During training each observed cell is hidden from the encoder with
        this probability while still being reconstructed, which teaches the
        model to predict cells it cannot see (the paper's input dropout,
        applied to whole cells together with the mask).
    aggregator : nn.Module or None
        Multi-objective method applied at ``y`` (see :mod:`heterovae.moo`).
    aggregator_factory : callable or None
        Alternative to ``aggregator``: a picklable callable returning a new
        aggregator (or ``None``), e.g. ``functools.partial(moo.build, spec,
        n_tasks=D)``. Models with several last shared features build one
        independent instance per feature from it; this one builds one.
    kl_weight : float
        Weight of the KL term in the training loss (1 is the ELBO; below 1
        a beta-VAE that keeps more information in z).
    nll_beta : float
        beta of the beta-NLL weighting of Gaussian-type columns
        (:meth:`heterovae.likelihoods.Likelihood.loss_weight`); 0 is the
        plain likelihood.
    visible_weight : float
        Weight of the training loss of cells the encoder saw, relative to
        observed cells hidden from it by ``cell_dropout`` (weight 1). 1 is
        the ELBO; below 1 the objective leans from reconstructing what the
        encoder saw towards predicting what it did not.
    decoder_skip : bool
        Also feed the encoder's input (the cells the encoder sees and the
        mask) to the decoder, past the latent bottleneck: the decoder then
        models ``p(x | z, x_seen)``, a conditional model of the hidden cells
        as in VAEAC (Ivanov, Figurnov and Vetrov, 2019), with ``z`` carrying
        what the seen cells leave uncertain. Cells the encoder saw are
        trivial to reconstruct then, so this wants a small
        ``visible_weight`` (the imputer's default with the skip is 0.1). It defines no likelihood of the
        observed cells, so :meth:`log_marginal_bound` refuses it.
    encoder_dim, encoder_layers : int or None
        Width and number of hidden layers of the encoder; ``None`` takes
        ``hidden_dim`` and ``n_layers``. With ``decoder_skip`` the decoder
        reads the seen cells directly and the encoder only has to say what
        they leave uncertain, so it can be smaller than the decoder.
    numeric_bins : int, default=0
        Steps of the piecewise-linear rank encoding that real and positive
        columns add to the encoder input (and so to the decoder skip's).
    code_values : sequence of (array or None), optional
        Exact-value codes (:mod:`heterovae.value_codes`): one entry per
        column, the column's distinct training values in ascending order
        (as the model sees them: the imputer's ``values - offset``) or
        ``None`` for a column without codes. Each seen cell whose value is
        among them adds a learned vector of its value to the decoder's first
        layer, through the skip (``decoder_skip`` is required); the encoder
        never sees the codes. Unseen values and hidden cells add nothing.
    """

    def __init__(self, kinds: Sequence[str], n_classes: Sequence[Optional[int]], latent_dim: int,
                 hidden_dim: int = 50, n_layers: int = 3, cell_dropout: float = 0.1,
                 aggregator: Optional[nn.Module] = None, aggregator_factory: Optional[Callable] = None,
                 kl_weight: float = 1.0, nll_beta: float = 0.0, visible_weight: float = 1.0,
                 decoder_skip: bool = False, encoder_dim: Optional[int] = None,
                 encoder_layers: Optional[int] = None, numeric_bins: int = 0,
                 code_values: Optional[Sequence[Optional[np.ndarray]]] = None):
        super().__init__(kinds, n_classes, numeric_bins)
        if aggregator is not None and aggregator_factory is not None:
            raise ValueError("pass either aggregator or aggregator_factory, not both")
        if aggregator_factory is not None:
            aggregator = aggregator_factory()
        self.cell_dropout = float(cell_dropout)
        self.kl_weight = float(kl_weight)
        self.nll_beta = float(nll_beta)
        self.visible_weight = float(visible_weight)
        self.decoder_skip = bool(decoder_skip)
        groups = list(self.likelihoods)
        enc_in = sum(lik.encoding_dim for lik in groups) + self.n_columns
        self.encoder = GaussianEncoder(enc_in, latent_dim, hidden_dim if encoder_dim is None else encoder_dim,
                                       n_layers if encoder_layers is None else encoder_layers)
        # The skip path gets its own normalisation: the encoder's BatchNorm
        # would update its running statistics twice per step.
        self.context_norm = nn.BatchNorm1d(enc_in) if self.decoder_skip else None
        self.decoder = Decoder(latent_dim + (enc_in if self.decoder_skip else 0), hidden_dim, n_layers)
        self.heads = ColumnHeads(
            self.decoder.out_features,
            [lik.n_params for lik, cols in zip(groups, self.group_columns) for _ in cols],
            self.group_order,
            self.n_columns,
            aggregator,
        )
        self._splits = [lik.n_columns * lik.n_params for lik in groups]
        self.value_codes, self.code_embedding = self._build_codes(code_values, latent_dim + enc_in, n_layers)

    def _build_codes(self, code_values, decoder_in: int, n_layers: int):
        """``(ValueCodes, embedding [n_codes, hidden])``, or ``(None, None)`` without coded columns.

        Built last, so a model without codes draws the same initial weights
        as before codes existed.
        """
        if code_values is None or all(v is None for v in code_values):
            return None, None
        if len(code_values) != self.n_columns:
            raise ValueError(f"code_values has {len(code_values)} entries for {self.n_columns} columns")
        if not self.decoder_skip:
            raise ValueError("value codes reach the decoder through its skip connection: they need decoder_skip=True")
        if n_layers < 1:
            raise ValueError("value codes are added to the decoder's first layer: they need n_layers >= 1")
        codes = ValueCodes(code_values)
        # the bound of nn.Linear's default initialisation, as if the one-hot
        # codes were among the first layer's inputs
        bound = 1.0 / math.sqrt(decoder_in + codes.n_codes)
        weight = torch.empty(codes.n_codes, self.decoder.out_features).uniform_(-bound, bound)
        return codes, nn.Parameter(weight)

    def _code_shift(self, x: torch.Tensor, seen: torch.Tensor) -> Optional[torch.Tensor]:
        """Sum of the code vectors of the seen cells, ``[N, hidden]`` (``None`` without codes)."""
        if self.value_codes is None:
            return None
        index, hit = self.value_codes(x, seen)
        vectors = F.embedding(index, self.code_embedding)  # [N, C, hidden]
        return (vectors * hit[..., None].to(vectors.dtype)).sum(-2)

    @staticmethod
    def default_sizes(n_columns: int) -> Dict[str, float]:
        """As many latent dimensions as columns (at least 2), hidden width 200, batches of 256, lr 2e-3,
        4,000 steps but at least 48 and at most 200 epochs.

        The paper used half as many latent dimensions, width 50, batches of
        128 and lr 1e-3. On the imputation benchmark (docs/imputer.rst)
        latent D / width 100 cut wine's mean error from 0.0956 to 0.0905;
        width 200 with batches of 256 at lr 2e-3 (half the steps, each
        larger) then lowered it on four of the five tables (wine 0.0912 to
        0.0882, diamonds 0.2155 to 0.2074) in about the same time. The
        decoder skip (``decoder_skip``) then lowered the error on adult,
        bank and diamonds (diamonds to 0.192). With the weights averaged
        over the last steps (the imputer's ``ema_decay``), 4,000 steps
        instead of 100 epochs (2,100 steps on wine, 3,200 on 8,000 rows)
        lowered wine's error from 0.0860 to 0.0832 and diamonds' from
        0.1846 to 0.1835. On 1,600-row tables, where 4,000 steps are 572
        epochs, long training overfits (adult 0.2453 at 100 epochs, 0.2534
        at 200, 0.2682 at 572), hence the cap of 200 epochs. The imputer's
        ``max_epochs="auto"`` turns ``"steps"`` into epochs, at most
        ``"epochs"``. Above about 21,000 training rows 4,000 steps are fewer
        than 48 epochs, too few: on the whole tables 48 epochs lowered the
        error of diamonds (0.1884 to 0.1820; 0.2041 to 0.1942 with seed 1),
        bank (0.1805 to 0.1771) and credit (0.1129 to 0.1124), hence
        ``"min_epochs"``. An encoder of two layers of 100 behind the skip was
        as accurate on 8,000-row tables and 7-19 % faster a step, but
        worse on the whole diamonds table (0.2002 against 0.1884), so the
        encoder keeps the decoder's sizes (docs/imputer.rst). A rank
        encoding of real and positive columns in 16 steps (``numeric_bins``)
        lowered the error on all fifteen 8,000-row splits (seed 0: bank
        0.1859 to 0.1797, diamonds 0.1796 to 0.1735, credit 0.1214 to
        0.1180) in 1.05-1.21 times the time.
        """
        return {"latent_dim": max(2, n_columns), "hidden_dim": 200, "batch_size": 256, "lr": 2e-3,
                "decoder_skip": True, "numeric_bins": 16, "steps": 4000, "min_epochs": 48, "epochs": 200}

    @property
    def aggregator(self):
        return self.heads.aggregator

    def _split_raw(self, raw: torch.Tensor):
        chunks = torch.split(raw, self._splits, dim=-1)
        return [c.reshape(*c.shape[:-1], lik.n_columns, lik.n_params) for c, lik in zip(chunks, self.likelihoods)]

    def encoder_input(self, x: torch.Tensor, observed: torch.Tensor,
                      encoded: Optional[torch.Tensor] = None) -> torch.Tensor:
        return torch.cat([self.column_encodings(x, observed, encoded), observed.to(x.dtype)], dim=-1)

    def encode(self, x: torch.Tensor, observed: torch.Tensor, encoded: Optional[torch.Tensor] = None):
        """``(loc, scale)`` of ``q(z | x_seen)``."""
        return self._encode_with_context(x, observed, encoded)[:2]

    def _encode_with_context(self, x: torch.Tensor, observed: torch.Tensor, encoded: Optional[torch.Tensor] = None):
        """``(loc, scale, context)``: the posterior and what the decoder conditions on (``None`` without skip)."""
        inputs = self.encoder_input(x, observed, encoded)
        loc, scale = self.encoder(inputs)
        if not self.decoder_skip:
            return loc, scale, None
        return loc, scale, SkipContext(self.context_norm(inputs), self._code_shift(x, observed))

    def decode(self, z: torch.Tensor, context: Optional[SkipContext] = None) -> torch.Tensor:
        """Raw head outputs ``[..., N, P]`` for latent codes ``z``.

        With ``decoder_skip``, ``context`` is the :class:`SkipContext` of the
        same rows (from the encoding step): its normalised encoder input
        ``[N, E]`` is appended to every draw of ``z``, and its code vectors
        are added to the decoder's first layer.
        """
        if not self.decoder_skip:
            return self.heads(self.decoder(z))
        if context is None:
            raise ValueError("a decoder_skip model decodes z together with the encoder's input (context)")
        inputs, shift = context
        z = torch.cat([z, inputs.expand(*z.shape[:-1], inputs.shape[-1])], dim=-1)
        return self.heads(self.decoder(z, shift))

    def log_likelihood(self, raw: torch.Tensor, x: torch.Tensor, nll_beta: float = 0.0) -> torch.Tensor:
        """Per-cell log-likelihood ``[..., N, D]`` in original units (unmasked).

        With ``nll_beta > 0`` each cell is multiplied by its likelihood's
        constant beta-NLL weight (:meth:`heterovae.likelihoods.Likelihood.loss_weight`),
        the training objective's weighting.
        """
        parts = []
        for lik, r, xg in zip(self.likelihoods, self._split_raw(raw), self._by_group(x)):
            lp = lik.log_prob(r, xg)
            weight = lik.loss_weight(r, nll_beta) if nll_beta else None
            parts.append(lp if weight is None else lp * weight)
        return self._to_columns(parts)

    # ------------------------------------------------------------ objectives
    def forward(self, x: torch.Tensor, observed: torch.Tensor, seen: Optional[torch.Tensor] = None,
                encoded: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training objective: masked negative ELBO per row, averaged over the batch.

        ``seen`` (optional, ``[N, D]`` bool) fixes which observed cells the
        encoder sees instead of hiding a random ``cell_dropout`` of them:
        the validation rows' loss is then the held-out counterpart of the
        training loss. ``encoded`` (optional) is :meth:`encodings` of these
        rows, computed once per fit; the objective is the same without it.

        Returns a dict with ``loss`` (scalar to minimise), ``column_nll``
        (per-column term of the loss per row, the NLL as weighted by ``visible_weight``
        and ``nll_beta``, detached) and ``kl``.
        """
        x = self.prepare(x, observed)
        seen = self._encoder_mask(observed, seen)
        loc, scale, context = self._encode_with_context(x, seen, encoded)
        z = loc + scale * torch.randn_like(loc)
        log_lik = self.log_likelihood(self.decode(z, context), x, self.nll_beta) * observed
        if self.visible_weight != 1.0:
            log_lik = log_lik * torch.where(seen, self.visible_weight, 1.0)
        n_rows = x.shape[0]
        column_nll = -log_lik.sum(0) / n_rows
        kl = gaussian_kl(loc, scale).mean()
        self.heads.state.losses = gradnorm_losses(column_nll)
        return {"loss": column_nll.sum() + self.kl_weight * kl, "column_nll": column_nll.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def log_marginal_bound(self, x: torch.Tensor, observed: torch.Tensor, n_samples: int = 10,
                           generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Importance-weighted lower bound on ``log p(x_obs)`` per row, ``[N]``.

        With ``n_samples=1`` this is the ELBO; it tightens as ``n_samples``
        grows (Burda et al.).
        """
        if self.decoder_skip:
            raise NotImplementedError(
                "a decoder_skip model conditions its decoder on the observed cells, so it defines no "
                "likelihood of them: use decoder_skip=False for a likelihood bound, or compare models "
                "by imputation error (the imputer's score)")
        x = self.prepare(x, observed)
        loc, scale = self.encode(x, observed)
        eps = torch.randn((n_samples, *loc.shape), generator=generator, device=loc.device, dtype=loc.dtype)
        z = loc + scale * eps
        log_px = (self.log_likelihood(self.decode(z), x) * observed).sum(-1)
        log_pz = -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
        log_qz = (-0.5 * eps**2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(n_samples)

    # ------------------------------------------------------------ imputation
    @torch.no_grad()
    def impute(self, x: torch.Tensor, observed: torch.Tensor, how: str = "auto") -> torch.Tensor:
        """Point estimate of every cell ``[N, D]`` given the observed ones.

        Decodes the posterior mean of ``z`` and takes each column's ``how``
        (``"mean"``, ``"mode"`` or ``"auto"``: the one that minimises the
        column's error metric).
        """
        x = self.prepare(x, observed)
        loc, _, context = self._encode_with_context(x, observed)
        raw = self.decode(loc, context)
        return self._to_columns([lik.point(r, how) for lik, r in zip(self.likelihoods, self._split_raw(raw))])

    @torch.no_grad()
    def sample(self, x: torch.Tensor, observed: torch.Tensor, n_draws: int = 1,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draws from the model's conditional for every cell, ``[n_draws, N, D]``."""
        x = self.prepare(x, observed)
        loc, scale, context = self._encode_with_context(x, observed)
        eps = torch.randn((n_draws, *loc.shape), generator=generator, device=loc.device, dtype=loc.dtype)
        raw = self.decode(loc + scale * eps, context)
        return self._to_columns([lik.sample(r, generator) for lik, r in zip(self.likelihoods, self._split_raw(raw))])

"""HeterogeneousVAE objectives against independent computations."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from heterovae.vae import HeterogeneousVAE, gaussian_kl

KINDS = ["real", "cat", "count", "pos", "binary", "ordinal"]
N_CLASSES = [None, 3, None, None, 2, 4]


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(size=n), rng.integers(0, 3, n), rng.poisson(3, n), rng.lognormal(size=n),
                  rng.integers(0, 2, n), rng.integers(0, 4, n)], 1).astype(float)
    x[rng.random(x.shape) < 0.25] = np.nan
    return x


#: every property below must hold with and without the decoder's skip path
SKIP = pytest.mark.parametrize("decoder_skip", [False, True], ids=["latent-only", "skip"])


def _model(latent_dim=3, **kw):
    torch.manual_seed(0)
    m = HeterogeneousVAE(KINDS, N_CLASSES, latent_dim=latent_dim, hidden_dim=8, **kw).double()
    x = _data()
    m.fit_scaling(x)
    xt = torch.as_tensor(np.nan_to_num(x))
    return m, xt, torch.as_tensor(~np.isnan(x))


def test_gaussian_kl_matches_torch_distributions():
    loc, scale = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, 3, dtype=torch.float64) + 0.1
    ref = kl_divergence(Normal(loc, scale), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(loc, scale), ref)


@SKIP
def test_missing_cells_do_not_influence_loss_or_gradients(decoder_skip):
    m, x, observed = _model(decoder_skip=decoder_skip)
    m.train()
    garbage = torch.where(observed, x, torch.full_like(x, 1e6))
    results = []
    for data in (x, garbage):
        m.zero_grad()
        torch.manual_seed(1)
        out = m(data, observed)
        out["loss"].backward()
        results.append((out["loss"].detach(), [p.grad.clone() for p in m.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)


@SKIP
def test_loss_is_finite_with_nan_in_missing_cells(decoder_skip):
    m, x, observed = _model(decoder_skip=decoder_skip)
    with_nan = torch.where(observed, x, torch.full_like(x, float("nan")))
    out = m(with_nan, observed)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(torch.all(torch.isfinite(p.grad)) for p in m.parameters())


@SKIP
def test_column_losses_sum_to_the_reconstruction_term(decoder_skip):
    m, x, observed = _model(cell_dropout=0.0, decoder_skip=decoder_skip)
    m.eval()
    torch.manual_seed(3)
    out = m(x, observed)
    assert out["loss"].item() == pytest.approx(out["column_nll"].sum().item() + out["kl"].item())
    assert out["column_nll"].shape == (len(KINDS),)


def test_importance_weighted_bound_approaches_log_marginal_from_below():
    """1-D latent: log p(x_obs) by quadrature is the independent reference."""
    m, x, observed = _model(latent_dim=1, cell_dropout=0.0)
    m.eval()
    x, observed = x[:5], observed[:5]
    xp = m.prepare(x, observed)
    grid = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    with torch.no_grad():
        raw = m.decode(grid[:, None, None].expand(-1, len(x), 1))
        log_px_z = (m.log_likelihood(raw, xp) * observed).sum(-1)  # [G, N]
    log_prior = Normal(0.0, 1.0).log_prob(grid)[:, None]
    dz = grid[1] - grid[0]
    log_marginal = torch.logsumexp(log_px_z + log_prior, dim=0) + math.log(dz)
    g = torch.Generator().manual_seed(0)
    elbo_like = torch.stack([m.log_marginal_bound(x, observed, 1, g) for _ in range(200)]).mean(0)
    # exp of the K-sample bound is an unbiased estimate of p(x_obs)
    tight = torch.logsumexp(torch.stack([m.log_marginal_bound(x, observed, 5000, g) for _ in range(8)]), 0) - math.log(8)
    assert torch.all(elbo_like < log_marginal)
    torch.testing.assert_close(tight, log_marginal, atol=5e-2, rtol=0)
    assert torch.all(tight > elbo_like)


@SKIP
def test_impute_and_sample_shapes_and_valid_codes(decoder_skip):
    m, x, observed = _model(decoder_skip=decoder_skip)
    m.eval()
    est = m.impute(x, observed)
    draws = m.sample(x, observed, n_draws=4, generator=torch.Generator().manual_seed(0))
    assert est.shape == x.shape and draws.shape == (4, *x.shape)
    for j, c in enumerate(N_CLASSES):
        if c is not None:
            for arr in (est[:, j], draws[..., j]):
                assert torch.all((arr >= 0) & (arr < c) & (arr == arr.round()))


@SKIP
def test_impute_is_deterministic_and_uses_running_batchnorm_statistics(decoder_skip):
    m, x, observed = _model(decoder_skip=decoder_skip)
    m.eval()
    whole = m.impute(x, observed)
    halves = torch.cat([m.impute(x[:7], observed[:7]), m.impute(x[7:], observed[7:])])
    torch.testing.assert_close(whole, halves)


def test_a_decoder_skip_model_refuses_a_likelihood_bound():
    m, x, observed = _model(decoder_skip=True)
    with pytest.raises(NotImplementedError, match="decoder_skip=False"):
        m.log_marginal_bound(x, observed)

"""Likelihoods against scipy.stats and against their own samplers."""

import numpy as np
import pytest
import torch
from scipy import special, stats

from heterovae.likelihoods import LIKELIHOODS, make_likelihood

N, n = 7, 3
N_CLASSES = [2, 4, 3]


def _setup(kind, seed=0):
    rng = np.random.default_rng(seed)
    classes = [2] * n if kind == "binary" else N_CLASSES
    lik = make_likelihood(kind, n, classes).double()
    data = {
        "real": rng.normal(3.0, 2.0, (50, n)),
        "pos": rng.lognormal(1.0, 0.7, (50, n)),
        "count": rng.poisson(6.0, (50, n)).astype(float),
        "binary": rng.integers(0, 2, (50, n)).astype(float),
        "cat": np.stack([rng.integers(0, c, 50) for c in classes], 1).astype(float),
        "ordinal": np.stack([rng.integers(0, c, 50) for c in classes], 1).astype(float),
    }[kind]
    data_nan = data.copy()
    data_nan[rng.random(data.shape) < 0.2] = np.nan
    lik.fit(data_nan)
    raw = torch.as_tensor(rng.normal(0, 1.5, (N, n, lik.n_params)))
    x = torch.as_tensor(data[:N])
    return lik, raw, x, classes


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_log_prob_matches_scipy(kind):
    lik, raw, x, classes = _setup(kind)
    got = lik.log_prob(raw, x).numpy()
    p = {k: v.detach().numpy() for k, v in lik.params(raw).items()}
    xn = x.numpy()
    if kind == "real":
        ref = stats.norm(p["loc"], p["scale"]).logpdf(xn)
    elif kind == "pos":
        ref = stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"]), loc=-1.0).logpdf(xn)
    elif kind == "count":
        ref = stats.poisson(p["rate"]).logpmf(xn)
    elif kind == "binary":
        ref = stats.bernoulli(special.expit(raw[..., 0].numpy())).logpmf(xn)
    elif kind == "cat":
        ref = np.empty_like(xn)
        for j, c in enumerate(classes):
            logits = raw[:, j, :c].numpy()
            ref[:, j] = special.log_softmax(logits, axis=-1)[np.arange(N), xn[:, j].astype(int)]
    else:  # ordinal: the cumulative-link definition, written out independently
        ref = np.empty_like(xn)
        r = raw.numpy()
        for i in range(N):
            for j, c in enumerate(classes):
                h, t = r[i, j, 0], [r[i, j, 1]]
                for g in r[i, j, 2:c]:
                    t.append(t[-1] + np.log1p(np.exp(g)) + 1e-4)
                cdf = np.concatenate([[0.0], special.expit(np.array(t) - h), [1.0]])
                k = int(xn[i, j])
                ref[i, j] = np.log(cdf[k + 1] - cdf[k])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["cat", "ordinal", "binary"])
def test_discrete_probs_are_distributions(kind):
    lik, raw, _, classes = _setup(kind)
    probs = lik.params(raw)["probs"].numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-10)
    for j, c in enumerate(classes):
        assert np.all(probs[:, j, c:] == 0), "padding categories must have zero probability"


@pytest.mark.parametrize("kind", ["real", "pos", "count"])
def test_mean_and_mode_match_scipy(kind):
    lik, raw, _, _ = _setup(kind)
    p = {k: v.numpy() for k, v in lik.params(raw).items()}
    if kind == "real":
        dist = stats.norm(p["loc"], p["scale"])
        ref_mode = p["loc"]
    elif kind == "pos":
        dist = stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"]), loc=-1.0)
        ref_mode = np.maximum(np.exp(p["mu"] - p["sigma"] ** 2) - 1, 0)
        # the closed-form mode is the argmax of the density on a fine grid
        grid = np.linspace(0, 5 * dist.mean().max(), 200001)[:, None, None]
        inner = ref_mode > 0
        argmax = grid[np.argmax(dist.pdf(grid), axis=0), 0, 0]
        np.testing.assert_allclose(argmax[inner], ref_mode[inner], rtol=1e-2, atol=1e-3)
    else:
        dist = stats.poisson(p["rate"])
        ref_mode = np.floor(p["rate"])
    np.testing.assert_allclose(lik.mean(raw).numpy(), dist.mean(), rtol=1e-6)
    np.testing.assert_allclose(lik.mode(raw).numpy(), ref_mode, rtol=1e-6)


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_samples_agree_with_log_prob(kind):
    """Monte Carlo moments/frequencies of `sample` match what `log_prob` implies."""
    lik, raw, _, classes = _setup(kind)
    g = torch.Generator().manual_seed(0)
    S = 40000
    samples = lik.sample(raw.expand(S, *raw.shape), generator=g)
    assert samples.shape == (S, N, n)
    if lik.discrete:
        probs = lik.params(raw)["probs"]
        freq = torch.stack([(samples == k).double().mean(0) for k in range(probs.shape[-1])], -1)
        np.testing.assert_allclose(freq.numpy(), probs.numpy(), atol=0.015)
    else:
        if kind == "count":
            # moments of the pmf summed over its support (independent of the sampler)
            support = torch.arange(0, 400.0, dtype=torch.float64)[:, None, None]
            pmf = lik.log_prob(raw, support.expand(-1, N, n)).exp()
            ref = (pmf * support).sum(0)
        elif kind == "pos":
            # draws are max(exp(Y) - 1, 0) with Y ~ Normal(mu, sigma) (see the test below):
            # E = exp(mu + sigma^2 / 2) Phi((mu + sigma^2) / sigma) - Phi(mu / sigma)
            p = {k: v.numpy() for k, v in lik.params(raw).items()}
            mu, sigma = p["mu"], p["sigma"]
            ref = torch.as_tensor(np.exp(mu + sigma**2 / 2) * stats.norm.cdf((mu + sigma**2) / sigma)
                                  - stats.norm.cdf(mu / sigma))
        else:
            ref = lik.mean(raw)
        sem = samples.std(0) / np.sqrt(S)
        assert torch.all((samples.mean(0) - ref).abs() < 6 * sem + 1e-9)


def test_positive_draws_are_zero_where_the_shifted_lognormal_goes_below_zero():
    """log(1 + x) ~ Normal puts mass on (-1, 0); a positive column's draws must not go there.

    Those draws become exact zeros, so the share of zeros is P(log(1 + x) < 0) = Phi(-mu / sigma).
    """
    rng = np.random.default_rng(1)
    lik = make_likelihood("pos", 1, None).double()
    lik.fit(np.where(rng.random((200, 1)) < 0.5, 0.0, rng.lognormal(1.0, 1.0, (200, 1))))
    raw = torch.as_tensor(rng.normal(0, 1.5, (N, 1, lik.n_params)))
    S = 40000
    draws = lik.sample(raw.expand(S, *raw.shape), generator=torch.Generator().manual_seed(0))
    assert (draws >= 0).all()
    p = lik.params(raw)
    below = stats.norm.cdf(-p["mu"].numpy() / p["sigma"].numpy())
    assert below.max() > 0.05  # the test exercises the clamp
    np.testing.assert_allclose((draws == 0).double().mean(0).numpy(), below, atol=0.01)


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_point_estimates_are_valid_values(kind):
    lik, raw, _, classes = _setup(kind)
    for how in ("mean", "mode", "auto"):
        est = lik.point(raw, how).numpy()
        assert est.shape == (N, n) and np.all(np.isfinite(est))
        if lik.discrete:
            assert np.all(est == np.round(est))
            assert np.all((est >= 0) & (est < np.array(classes)))
        if kind in ("pos", "count") and how == "mode":
            assert np.all(est >= 0)


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_encode_zeroes_missing_cells_and_has_declared_width(kind):
    lik, _, x, classes = _setup(kind)
    observed = torch.ones_like(x, dtype=torch.bool)
    observed[0] = False
    enc = lik.encode(x, observed)
    assert enc.shape == (N, lik.encoding_dim)
    assert torch.all(enc[0] == 0)
    assert torch.all(torch.isfinite(enc))


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_encoding_under_a_mask_is_the_full_encoding_with_the_hidden_columns_blocks_zeroed(kind):
    # the contract that lets a model encode the training table once per fit
    lik, _, x, _ = _setup(kind)
    widths = lik.encoding_widths
    assert len(widths) == n and sum(widths) == lik.encoding_dim
    observed = torch.as_tensor(np.random.default_rng(1).random((N, n)) < 0.6)
    full = lik.encode(x, torch.ones_like(observed))
    blocks = torch.split(lik.encode(x, observed), widths, dim=1)
    for j, (block, full_block) in enumerate(zip(blocks, torch.split(full, widths, dim=1))):
        expected = torch.where(observed[:, j:j + 1], full_block, torch.zeros_like(full_block))
        torch.testing.assert_close(block, expected, rtol=0, atol=0)
        # each block reads its own column only
        other = x.clone()
        other[:, [k for k in range(n) if k != j]] = x[torch.arange(N - 1, -1, -1)][:, [k for k in range(n) if k != j]]
        torch.testing.assert_close(torch.split(lik.encode(other, observed), widths, dim=1)[j], block, rtol=0, atol=0)


def test_scaling_statistics_come_from_observed_cells_only():
    x = np.array([[1.0], [3.0], [np.nan], [1000.0]])
    lik = make_likelihood("real", 1).double().fit(x[:2])
    assert lik.loc.item() == pytest.approx(2.0) and lik.scale.item() == pytest.approx(1.0)
    lik = make_likelihood("real", 1).fit(x)
    assert lik.loc.item() == pytest.approx(np.nanmean(x))


def test_gradients_are_finite_at_extreme_raw_outputs():
    for kind in LIKELIHOODS:
        lik, raw, x, _ = _setup(kind)
        raw = (raw * 1e3).requires_grad_()
        lik.log_prob(raw, x).sum().backward()
        assert torch.all(torch.isfinite(raw.grad)), kind


def test_unknown_kind_lists_valid_ones():
    with pytest.raises(ValueError, match="valid kinds are real, pos"):
        make_likelihood("gamma", 1)


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_log_prob_broadcasts_over_leading_sample_dimensions(kind):
    lik, raw, x, _ = _setup(kind)
    stacked = lik.log_prob(raw.expand(4, *raw.shape), x)
    assert stacked.shape == (4, N, n)
    torch.testing.assert_close(stacked[2], lik.log_prob(raw, x))


@pytest.mark.parametrize("kind", ["real", "pos"])
def test_beta_nll_with_beta_one_gives_the_mean_a_squared_error_gradient(kind):
    lik, raw, x, _ = _setup(kind)
    raw = raw.clone().requires_grad_()
    weight = lik.loss_weight(raw, 1.0)
    assert not weight.requires_grad
    (-(lik.log_prob(raw, x) * weight)).sum().backward()
    z = lik._standardise(x)
    # d/d mu_z of sigma^2 * (z - mu)^2 / (2 sigma^2) = mu - z, whatever sigma is
    torch.testing.assert_close(raw.grad[..., 0], raw[..., 0].detach() - z)


def test_beta_nll_weights_only_location_scale_kinds():
    for kind in LIKELIHOODS:
        lik, raw, _, _ = _setup(kind)
        assert lik.loss_weight(raw, 0.0) is None
        if kind not in ("real", "pos"):
            assert lik.loss_weight(raw, 0.5) is None


def test_lognormal_median_matches_scipy_and_is_the_auto_point():
    lik, raw, _, _ = _setup("pos")
    p = {k: v.numpy() for k, v in lik.params(raw).items()}
    ref = stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"]), loc=-1.0).median()
    np.testing.assert_allclose(lik.median(raw).numpy(), np.maximum(ref, 0.0), rtol=1e-6)
    torch.testing.assert_close(lik.point(raw, "auto"), lik.median(raw))


@pytest.mark.parametrize("kind,transform", [("real", lambda v: v), ("pos", np.log1p)])
def test_numeric_columns_reach_the_encoder_as_normal_scores_of_their_training_cells(kind, transform):
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    draw = {"real": lambda size: rng.normal(3.0, 2.0, size), "pos": lambda size: rng.lognormal(1.0, 0.7, size)}[kind]
    training, x = draw((300, n)), draw((40, n))
    training[rng.random(training.shape) < 0.2] = np.nan
    lik = make_likelihood(kind, n).double().fit(training)
    reference = QuantileTransformer(n_quantiles=65, output_distribution="normal").fit(transform(training))
    encoded = lik.encode(torch.as_tensor(x), torch.ones(x.shape, dtype=torch.bool)).numpy()
    values = transform(x)
    inside = (values > np.nanmin(transform(training), 0)) & (values < np.nanmax(transform(training), 0))
    assert inside.sum() > 100
    edge = stats.norm.ppf(0.5 / 64)  # scores stop at the middle of the outermost quantile bins
    np.testing.assert_allclose(encoded[inside], np.clip(reference.transform(values), edge, -edge)[inside], atol=1e-5)


@pytest.mark.parametrize("kind,transform", [("real", lambda v: v), ("pos", np.log1p)])
def test_rank_encoding_is_piecewise_linear_in_the_training_quantile(kind, transform):
    from sklearn.preprocessing import QuantileTransformer

    bins = 5
    rng = np.random.default_rng(1)
    draw = {"real": lambda size: rng.normal(3.0, 2.0, size), "pos": lambda size: rng.lognormal(1.0, 0.7, size)}[kind]
    training, x = draw((300, n)), draw((40, n))
    training[rng.random(training.shape) < 0.2] = np.nan
    lik = make_likelihood(kind, n, numeric_bins=bins).double().fit(training)
    assert lik.encoding_widths == [1 + bins] * n
    observed = torch.as_tensor(rng.random(x.shape) < 0.7)
    blocks = lik.encode(torch.as_tensor(x), observed).numpy().reshape(len(x), n, 1 + bins)
    plain = make_likelihood(kind, n).double().fit(training).encode(torch.as_tensor(x), observed).numpy()
    np.testing.assert_array_equal(blocks[..., 0], plain)  # the normal score comes first, as without bins
    assert np.all(blocks[~observed.numpy()] == 0)
    # the rest: clip(bins * u - b, 0, 1) of the training quantile u of the value
    values = transform(x)
    u = QuantileTransformer(n_quantiles=65, output_distribution="uniform").fit(transform(training)).transform(values)
    u = np.clip(u, 0.5 / 64, 1 - 0.5 / 64)  # as the scores stop at the outermost bins' middles
    expected = np.clip(bins * u[..., None] - np.arange(bins), 0, 1)
    inside = observed.numpy() & (values > np.nanmin(transform(training), 0)) & (values < np.nanmax(transform(training), 0))
    assert inside.sum() > 60
    np.testing.assert_allclose(blocks[..., 1:][inside], expected[inside], atol=1e-5)


@pytest.mark.parametrize("bins", [-1, 2.5, True])
def test_rank_bins_must_be_a_count(bins):
    with pytest.raises(ValueError, match="bins must be an integer >= 0"):
        make_likelihood("real", 2, numeric_bins=bins)


def test_normal_draws_have_the_distributions_variance():
    # L06: Normal.sample with a wrong spread (the existing test checks only the draws' mean)
    lik, raw, _, _ = _setup("real")
    S = 40000
    draws = lik.sample(raw.expand(S, *raw.shape), generator=torch.Generator().manual_seed(0))
    p = {k: v.numpy() for k, v in lik.params(raw).items()}
    # relative standard error of a sample variance: sqrt(2 / S) = 0.7 %
    np.testing.assert_allclose(draws.var(0).numpy(), stats.norm(p["loc"], p["scale"]).var(), rtol=0.05)


def test_binary_cells_reach_the_encoder_as_plus_or_minus_one():
    # L11: Bernoulli.encode giving x instead of 2x - 1 (an observed 0 then encodes as a missing cell)
    lik = make_likelihood("binary", 2)
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    observed = torch.tensor([[True, True], [True, False], [False, True]])
    torch.testing.assert_close(lik.encode(x, observed), torch.tensor([[-1.0, 1.0], [1.0, 0.0], [0.0, -1.0]]))


def test_ordinal_cells_reach_the_encoder_as_their_thermometer_code():
    # L14: thermometer with > instead of >= (codes 0 and 1 encode alike)
    classes = [4, 3]
    lik = make_likelihood("ordinal", 2, classes)
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 1.0]])
    observed = torch.tensor([[True, True], [True, True], [True, False], [True, True]])
    expected = [[float(observed[i, j] and x[i, j] >= k) for j, c in enumerate(classes) for k in range(1, c)]
                for i in range(len(x))]
    torch.testing.assert_close(lik.encode(x, observed), torch.tensor(expected))


def test_ordinal_mean_is_the_expected_code_rounded():
    # L15: Ordinal.mean with floor instead of round
    lik, raw, _, classes = _setup("ordinal")
    r = raw.numpy()
    expected_code = np.empty((N, n))
    for i in range(N):
        for j, c in enumerate(classes):  # the cumulative link written out, as in test_log_prob_matches_scipy
            h, t = r[i, j, 0], [r[i, j, 1]]
            for g in r[i, j, 2:c]:
                t.append(t[-1] + np.log1p(np.exp(g)) + 1e-4)
            probs = np.diff(np.concatenate([[0.0], special.expit(np.array(t) - h), [1.0]]))
            expected_code[i, j] = (probs * np.arange(c)).sum()
    assert np.any(np.floor(expected_code) != np.round(expected_code))  # the data tell round from floor
    np.testing.assert_array_equal(lik.mean(raw).numpy(), np.round(expected_code))


def test_count_cells_reach_the_encoder_as_standardised_log1p():
    # L09 (killed only incidentally, by a divergence on 2**53-sized integers): Poisson.encode on raw counts
    rng = np.random.default_rng(0)
    training = rng.poisson(6.0, (200, 2)).astype(float)
    training[rng.random(training.shape) < 0.2] = np.nan
    lik = make_likelihood("count", 2).double().fit(training)
    x = rng.poisson(6.0, (20, 2)).astype(float)
    t = np.log1p(training)
    expected = (np.log1p(x) - np.nanmean(t, 0)) / np.nanstd(t, 0)
    got = lik.encode(torch.as_tensor(x), torch.ones(x.shape, dtype=torch.bool)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("kind,t", [("real", lambda v: v), ("pos", np.log1p)])
def test_location_scale_statistics_are_the_mean_and_std_of_the_transformed_observed_cells(kind, t):
    # L18 (killed only incidentally, by a divergence on 1e38-sized values): variance used as the scale.
    # The existing test's cells [1, 3] have std = variance = 1, so it cannot tell them apart.
    x = np.array([[1.0], [5.0], [np.nan], [2.0]])
    lik = make_likelihood(kind, 1).double().fit(x)
    assert lik.loc.item() == pytest.approx(np.nanmean(t(x)))
    assert lik.scale.item() == pytest.approx(np.nanstd(t(x)))

"""IWAE, DReG and HI-VAE objectives against independent computations."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal, kl_divergence

from heterovae.moo import build
from heterovae.vae import DReG, HIVAE, IWAE, MODELS, HeterogeneousVAE
from heterovae.vae.hivae import categorical_kl_uniform, gaussian_kl_unit_scale_prior, gumbel_softmax_temperature
from heterovae.vae.iwae import snis_point

KINDS = ["real", "cat", "count", "pos", "binary", "ordinal"]
N_CLASSES = [None, 3, None, None, 2, 4]


def _data(n=40, seed=0, missing=0.25):
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(size=n), rng.integers(0, 3, n), rng.poisson(3, n), rng.lognormal(size=n),
                  rng.integers(0, 2, n), rng.integers(0, 4, n)], 1).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    return x


def _tensors(x):
    return torch.as_tensor(np.nan_to_num(x)), torch.as_tensor(~np.isnan(x))


def _model(cls, seed=0, x=None, **kw):
    torch.manual_seed(seed)
    kw = {"latent_dim": 3, "hidden_dim": 8, "cell_dropout": 0.0, **kw}
    m = cls(KINDS, N_CLASSES, **kw).double()
    m.fit_scaling(_data() if x is None else x)
    return m.eval()


def _same_weights(src, cls, **kw):
    dst = _model(cls, **kw)
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    assert not unexpected and not [k for k in missing if "aggregator" not in k]
    return dst.eval()


def _grads(module, loss):
    module.zero_grad()
    loss.backward()
    return {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


# ------------------------------------------------------------------ IWAE
def test_iwae_with_one_sample_is_the_single_sample_elbo():
    x, observed = _tensors(_data())
    iwae = _model(IWAE, n_importance_samples=1)
    torch.manual_seed(5)
    out = iwae(x, observed)
    # independent: the same draw, densities from torch.distributions
    torch.manual_seed(5)
    xp = iwae.prepare(x, observed)
    loc, scale = iwae.encode(xp, observed)
    z = loc + scale * torch.randn((1, *loc.shape), dtype=loc.dtype)
    recon = (iwae.log_likelihood(iwae.decode(z), xp) * observed).sum(-1)
    elbo = recon + Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(loc, scale).log_prob(z).sum(-1)
    torch.testing.assert_close(out["loss"], -elbo.mean())
    torch.testing.assert_close(out["loss"], out["column_nll"].sum() + out["kl"])
    # and it is the VAE's loss with the analytic KL swapped for the sampled one (same weights, same draw)
    vae = _same_weights(iwae, HeterogeneousVAE)
    torch.manual_seed(5)
    vae_out = vae(x, observed)
    torch.testing.assert_close(vae_out["loss"] - vae_out["kl"], out["column_nll"].sum())


def test_iwae_bound_is_not_below_the_elbo_on_average():
    x, observed = _tensors(_data())
    iwae = _model(IWAE)
    torch.manual_seed(0)
    bounds = {}
    with torch.no_grad():
        for k in (1, 20):
            iwae.n_importance_samples = k
            bounds[k] = torch.stack([-iwae(x, observed)["loss"] for _ in range(10)])
    assert bounds[20].mean() > bounds[1].mean()
    # the K-sample estimate also varies less than the single-sample one
    assert bounds[20].std() < bounds[1].std()


def test_iwae_gradient_is_the_autograd_gradient_of_the_bound():
    x, observed = _tensors(_data())
    iwae = _model(IWAE, n_importance_samples=7)
    torch.manual_seed(2)
    grads = _grads(iwae, iwae(x, observed)["loss"])
    torch.manual_seed(2)
    xp = iwae.prepare(x, observed)
    loc, scale = iwae.encode(xp, observed)
    z = loc + scale * torch.randn((7, *loc.shape), dtype=loc.dtype)
    log_w = ((iwae.log_likelihood(iwae.decode(z), xp) * observed).sum(-1) + Normal(0.0, 1.0).log_prob(z).sum(-1)
             - Normal(loc, scale).log_prob(z).sum(-1))
    reference = _grads(iwae, -(torch.logsumexp(log_w, 0) - math.log(7)).mean())
    for k in reference:
        torch.testing.assert_close(grads[k], reference[k])


def test_snis_imputation_matches_a_brute_force_mixture():
    iwae = _model(IWAE, n_impute_samples=6)
    x, observed = _tensors(_data(n=10))
    xp = iwae.prepare(x, observed)
    g = torch.Generator().manual_seed(0)
    raw, w = iwae.importance_weights(xp, observed, 6, g)
    for lik, r, cols in zip(iwae.likelihoods, iwae._split_raw(raw), iwae.group_columns):
        got, auto = snis_point(lik, r, w, how="mean"), snis_point(lik, r, w)
        for n in range(3):
            for j in range(lik.n_columns):
                if lik.discrete:
                    probs = sum(w[k, n] * lik.log_probs(r[k])[n, j].exp() for k in range(6))
                    assert auto[n, j] == probs.argmax()
                    expected = (probs * torch.arange(len(probs))).sum().round() if lik.kind == "ordinal" else probs.argmax()
                    assert got[n, j] == expected
                else:
                    mean = sum(w[k, n] * lik.mean(r[k])[n, j] for k in range(6))
                    torch.testing.assert_close(got[n, j], mean)
                    if lik.kind == "pos":  # robust centre: median at the averaged log-location
                        log_loc = sum(w[k, n] * lik.params(r[k])["mu"][n, j] for k in range(6))
                        torch.testing.assert_close(auto[n, j], torch.expm1(log_loc).clamp_min(0))
                    else:
                        torch.testing.assert_close(auto[n, j], mean)
    torch.testing.assert_close(w.sum(0), torch.ones(10, dtype=w.dtype))


def test_iwae_imputation_is_deterministic_and_keeps_codes_valid():
    iwae = _model(IWAE, n_impute_samples=8)
    x, observed = _tensors(_data())
    a, b = iwae.impute(x, observed), iwae.impute(x, observed)
    torch.testing.assert_close(a, b)
    draws = iwae.sample(x, observed, n_draws=3, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (3, *x.shape)
    for j, c in enumerate(N_CLASSES):
        if c is not None:
            assert torch.all((a[:, j] >= 0) & (a[:, j] < c)) and torch.all(draws[..., j] < c)


# ------------------------------------------------------------------ DReG
def test_dreg_loss_value_and_decoder_gradient_equal_iwae_for_the_same_draws():
    """Decoder: sum_k w_k grad log p(x, z_k) is IWAE's exact gradient for fixed z; no expectation needed."""
    x, observed = _tensors(_data())
    iwae = _model(IWAE, n_importance_samples=6)
    dreg = _same_weights(iwae, DReG, n_importance_samples=6)
    torch.manual_seed(3)
    out_i = iwae(x, observed)
    g_i = _grads(iwae, out_i["loss"])
    torch.manual_seed(3)
    out_d = dreg(x, observed)
    g_d = _grads(dreg, out_d["loss"])
    torch.testing.assert_close(out_d["loss"], out_i["loss"])
    torch.testing.assert_close(out_d["column_nll"], out_i["column_nll"])
    decoder = [k for k in g_i if k.startswith(("decoder.", "heads."))]
    assert decoder
    for k in decoder:
        torch.testing.assert_close(g_d[k], g_i[k])
    encoder = [k for k in g_i if k.startswith("encoder.")]
    assert any(not torch.allclose(g_d[k], g_i[k]) for k in encoder)


def test_dreg_encoder_gradient_is_the_doubly_reparameterised_formula():
    """sum_k w_k^2 (d log w_k / d z_k) dz_k/dphi with q's parameters held constant, by explicit autograd."""
    x, observed = _tensors(_data())
    dreg = _model(DReG, n_importance_samples=5)
    torch.manual_seed(4)
    g_d = _grads(dreg, dreg(x, observed)["loss"])
    torch.manual_seed(4)
    xp = dreg.prepare(x, observed)
    loc, scale = dreg.encode(xp, observed)
    z = loc + scale * torch.randn((5, *loc.shape), dtype=loc.dtype)
    z_leaf = z.detach().requires_grad_()
    log_w = ((dreg.log_likelihood(dreg.decode(z_leaf), xp) * observed).sum(-1)
             + Normal(0.0, 1.0).log_prob(z_leaf).sum(-1)
             - Normal(loc.detach(), scale.detach()).log_prob(z_leaf).sum(-1))
    (dlogw_dz,) = torch.autograd.grad(log_w.sum(), z_leaf)
    w = torch.softmax(log_w.detach(), 0)
    params = [p for name, p in dreg.named_parameters() if name.startswith("encoder.")]
    names = [name for name, _ in dreg.named_parameters() if name.startswith("encoder.")]
    reference = torch.autograd.grad(z, params, grad_outputs=-(w**2)[..., None] * dlogw_dz / x.shape[0])
    for name, ref in zip(names, reference):
        torch.testing.assert_close(g_d[name], ref)


def test_dreg_encoder_gradient_equals_iwae_encoder_gradient_in_expectation():
    """Monte Carlo: one row repeated, chunks of rows as independent gradient estimates, a t-test per coordinate."""
    row = _data(n=3, missing=0.0)
    row[1, 3] = np.nan
    x, observed = _tensors(np.repeat(row, 150, axis=0))
    iwae = _model(IWAE, x=_data(), n_importance_samples=4, latent_dim=2)
    dreg = _same_weights(iwae, DReG, n_importance_samples=4, latent_dim=2)
    key = "encoder.out.bias"
    torch.manual_seed(0)
    diffs, values = [], []
    for _ in range(30):
        gi = _grads(iwae, iwae(x, observed)["loss"])[key]
        gd = _grads(dreg, dreg(x, observed)["loss"])[key]
        diffs.append(gi - gd)
        values.append(gi)
    diffs, values = torch.stack(diffs), torch.stack(values)
    se = diffs.std(0) / math.sqrt(len(diffs))
    t = diffs.mean(0) / se
    assert torch.all(t.abs() < 4.5), t
    # the gradient being compared is itself clearly non-zero, so agreement says something
    t_signal = values.mean(0) / (values.std(0) / math.sqrt(len(values)))
    assert t_signal.abs().max() > 10


def test_dreg_builds_two_independent_aggregators_and_a_plain_sum_changes_nothing():
    class Sum(nn.Module):
        calls = 0

        def forward(self, G, losses=None):
            Sum.calls += 1
            assert losses is not None and losses.shape == (len(KINDS),)
            return G.sum(0)

    x, observed = _tensors(_data())
    plain = _model(DReG)
    hooked = _same_weights(plain, DReG, aggregator_factory=Sum)
    assert hooked.aggregator is not hooked.encoder_aggregator
    torch.manual_seed(1)
    g_p = _grads(plain, plain(x, observed)["loss"])
    torch.manual_seed(1)
    g_h = _grads(hooked, hooked(x, observed)["loss"])
    assert Sum.calls == 2
    for k in g_p:
        torch.testing.assert_close(g_h[k], g_p[k])


# ------------------------------------------------------------------ HI-VAE
def test_hivae_kl_terms_match_torch_distributions():
    logits = torch.randn(7, 5, dtype=torch.float64)
    uniform = Categorical(probs=torch.full((5,), 0.2, dtype=torch.float64))
    torch.testing.assert_close(categorical_kl_uniform(logits), kl_divergence(Categorical(logits=logits), uniform))
    loc, scale, prior = (torch.randn(7, 3, dtype=torch.float64), torch.rand(7, 3, dtype=torch.float64) + 0.1,
                         torch.randn(7, 3, dtype=torch.float64))
    torch.testing.assert_close(gaussian_kl_unit_scale_prior(loc, scale, prior),
                               kl_divergence(Normal(loc, scale), Normal(prior, 1.0)).sum(-1))


def test_hivae_evaluation_objective_against_an_independent_elbo():
    x, observed = _tensors(_data())
    m = _model(HIVAE)
    torch.manual_seed(0)
    out = m(x, observed)
    torch.manual_seed(0)
    xp = m.prepare(x, observed)
    inputs, logits = m.encode_s(xp, observed)
    s = torch.nn.functional.one_hot(logits.argmax(-1), m.s_dim).double()
    loc, scale = m.encode_z(inputs, s)
    z = loc + scale * torch.randn_like(loc)
    recon = (m.log_likelihood(m.decode(z, s), xp) * observed).sum(-1)
    kl_z = kl_divergence(Normal(loc, scale), Normal(m.prior_z_loc(s), 1.0)).sum(-1)
    kl_s = kl_divergence(Categorical(logits=logits), Categorical(logits=torch.zeros(m.s_dim, dtype=torch.float64)))
    torch.testing.assert_close(out["loss"], -(recon - kl_z - kl_s).mean())
    torch.testing.assert_close(out["kl_z"], kl_z.mean())
    torch.testing.assert_close(out["kl_s"], kl_s.mean())


def test_hivae_shapes_and_defaults():
    m = HIVAE(KINDS, N_CLASSES)
    assert m.latent_dim == 10 and m.s_dim == 10 and m.y_dim == 5
    assert HIVAE.default_sizes(6) == {"latent_dim": 10, "hidden_dim": 30, "batch_size": 128, "lr": 3e-3}
    x, observed = _tensors(_data())
    m.fit_scaling(_data())
    x, observed = x.float(), observed
    raw = m.decode(torch.randn(4, 40, 10), torch.softmax(torch.randn(4, 40, 10), -1))
    assert raw.shape == (len(KINDS), 4, 40, m.max_params)
    assert m.log_likelihood(raw, x).shape == (4, 40, len(KINDS))
    out = m.train()(x, observed)
    assert out["column_nll"].shape == (len(KINDS),) and torch.isfinite(out["loss"])
    m.eval()
    assert m.impute(x, observed).shape == x.shape
    assert m.sample(x, observed, 3).shape == (3, *x.shape)
    assert m.log_marginal_bound(x, observed, 4).shape == (40,)


def test_hivae_scale_and_thresholds_depend_on_s_alone_and_locations_on_y():
    m = _model(HIVAE)
    s = torch.nn.functional.one_hot(torch.arange(5) % m.s_dim, m.s_dim).double()
    a, b = m.decode(torch.zeros(5, 3, dtype=torch.float64), s), m.decode(torch.ones(5, 3, dtype=torch.float64), s)
    for lik, cols, ra, rb in zip(m.likelihoods, m.group_columns, m._split_raw(a), m._split_raw(b)):
        from_y = lik.n_params if lik.kind == "cat" else 1
        assert not torch.allclose(ra[..., :from_y], rb[..., :from_y]), lik.kind
        torch.testing.assert_close(ra[..., from_y:], rb[..., from_y:])


def test_hivae_gumbel_temperature_schedule():
    assert gumbel_softmax_temperature(0) == 1.0
    assert gumbel_softmax_temperature(30) == pytest.approx(0.7)
    assert gumbel_softmax_temperature(100) == 1e-3 and gumbel_softmax_temperature(500) == 1e-3
    m = HIVAE(KINDS, N_CLASSES)
    m.set_epoch(50)
    assert m.temperature == pytest.approx(0.5)


def test_hivae_imputation_does_not_depend_on_the_batch():
    """Fixed normalisation statistics: a batch imputed whole or in pieces, or reordered, gives the same rows."""
    m = _model(HIVAE)
    x, observed = _tensors(_data())
    whole = m.impute(x, observed)
    pieces = torch.cat([m.impute(x[:1], observed[:1]), m.impute(x[1:13], observed[1:13]), m.impute(x[13:], observed[13:])])
    torch.testing.assert_close(whole, pieces)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m.impute(x[perm], observed[perm]), whole[perm])


def test_hivae_first_row_of_a_batch_keeps_its_logits():
    """The reference code zeroed the Bernoulli logit of each batch's first row; ours must not."""
    m = _model(HIVAE)
    x, observed = _tensors(_data())
    s = torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), m.s_dim).double()
    z = torch.randn(len(x), 3, dtype=torch.float64)
    for lik, r in zip(m.likelihoods, m._split_raw(m.decode(z, s))):
        if lik.discrete and lik.kind != "ordinal":
            assert torch.all(r != 0), lik.kind
    # each row's likelihood is the same wherever it sits in the batch
    ll = m.log_likelihood(m.decode(z, s), x)
    ll_rev = m.log_likelihood(m.decode(z.flip(0), s), x.flip(0))
    torch.testing.assert_close(ll_rev.flip(0), ll)


def test_hivae_aggregators_see_the_per_column_gradients_at_z_and_s():
    seen = []

    class Spy(nn.Module):
        def forward(self, G, losses=None):
            seen.append(G.clone())
            return G.sum(0)

    x, observed = _tensors(_data())
    plain = _model(HIVAE)
    hooked = _same_weights(plain, HIVAE, aggregator_factory=Spy)
    assert hooked.aggregator_z is not hooked.aggregator_s
    torch.manual_seed(1)
    g_p = _grads(plain, plain(x, observed)["loss"])
    torch.manual_seed(1)
    g_h = _grads(hooked, hooked(x, observed)["loss"])
    for k in g_p:
        torch.testing.assert_close(g_h[k], g_p[k])
    # reference: one autograd call per column at z and at s
    xp = plain.prepare(x, observed)
    inputs, logits = plain.encode_s(xp, observed)
    s = torch.nn.functional.one_hot(logits.argmax(-1), plain.s_dim).double().requires_grad_()
    z = torch.randn(len(x), 3, dtype=torch.float64, requires_grad=True)
    nll = -(plain.log_likelihood(plain.decode(z, s), xp) * observed).sum(0) / len(x)
    ref_z = torch.stack([torch.autograd.grad(nll[d], z, retain_graph=True)[0] for d in range(len(KINDS))])
    ref_s = torch.stack([torch.autograd.grad(nll[d], s, retain_graph=True)[0] for d in range(len(KINDS))])
    seen.clear()
    losses = torch.zeros(len(KINDS), dtype=torch.float64)
    hooked.train()
    raw = hooked.decode(z, s, losses)
    (-(hooked.log_likelihood(raw, xp) * observed).sum() / len(x)).backward()
    got = {tuple(G.shape): G for G in seen}
    torch.testing.assert_close(got[(len(KINDS), z.numel())], ref_z.reshape(len(KINDS), -1))
    torch.testing.assert_close(got[(len(KINDS), s.numel())], ref_s.reshape(len(KINDS), -1))


# ------------------------------------------------------------------ all models
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("spec", [None, "pcgrad", ("imtlg", "pcgrad"), ("gradnorm", "graddrop")])
def test_every_model_trains_a_step_with_every_moo_setting(name, spec):
    factory = lambda: build(spec, n_tasks=len(KINDS))  # noqa: E731
    m = _model(MODELS[name], aggregator_factory=factory).train()
    x, observed = _tensors(_data())
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        out = m(x, observed)
        out["loss"].backward()
        assert all(torch.all(torch.isfinite(p.grad)) for p in m.parameters() if p.grad is not None)
        opt.step()
    m.eval()
    assert not torch.isnan(m.impute(x, observed)).any()


def test_auto_point_of_positive_columns_median_for_vae_and_mode_for_hivae():
    from scipy import stats

    from heterovae.likelihoods import LogNormal
    from heterovae.vae.hivae import HIVAE_AUTO_POINT
    from heterovae.vae.model import point_estimate

    lik = LogNormal(2).double()
    lik.fit(np.array([[1.0, 10.0], [3.0, 200.0], [0.0, 50.0]]))
    raw = torch.randn(5, 2, 2, dtype=torch.float64)
    p = lik.params(raw)
    dist = stats.lognorm(s=p["sigma"].numpy(), scale=np.exp(p["mu"].numpy()))
    np.testing.assert_allclose(point_estimate(lik, raw).numpy(), np.maximum(dist.median() - 1.0, 0.0), rtol=1e-10)
    mode = np.exp(p["mu"].numpy() - p["sigma"].numpy() ** 2)  # argmax of the LogNormal density
    np.testing.assert_allclose(point_estimate(lik, raw, "auto", HIVAE_AUTO_POINT).numpy(), np.maximum(mode - 1.0, 0.0),
                               rtol=1e-10)
    torch.testing.assert_close(point_estimate(lik, raw, "mean", HIVAE_AUTO_POINT), lik.mean(raw))


# ------------------------------------------------------------- visible_weight
def _column_nll(model, x, observed, seed=7):
    torch.manual_seed(seed)  # the same cell-dropout mask and latent draw for every call
    return model(x, observed)["column_nll"]


def test_visible_weight_scales_the_loss_of_every_cell_the_encoder_saw():
    x, observed = _tensors(_data())
    plain = _model(HeterogeneousVAE).train()
    half = _same_weights(plain, HeterogeneousVAE, visible_weight=0.5).train()
    # no cell dropout: the encoder sees every observed cell
    torch.testing.assert_close(_column_nll(half, x, observed), 0.5 * _column_nll(plain, x, observed))


def test_visible_weight_leaves_the_loss_of_dropped_cells_unweighted():
    x, observed = _tensors(_data(n=200))
    models = {w: _same_weights(_model(HeterogeneousVAE), HeterogeneousVAE, cell_dropout=0.4,
                               visible_weight=w).train() for w in (1.0, 0.5, 0.25)}
    nll = {w: _column_nll(m, x, observed) for w, m in models.items()}
    # nll(w) = w * seen + dropped per column: linear in w with slope `seen`
    seen = (nll[1.0] - nll[0.5]) / 0.5
    torch.testing.assert_close(nll[1.0] - nll[0.25], 0.75 * seen)
    dropped = nll[1.0] - seen
    assert torch.all(dropped.abs() > 0) and not torch.allclose(dropped, torch.zeros_like(dropped))


# -------------------------------------------------------------- decoder_skip
def _decoded(model, x, observed):
    """Raw head outputs at a fixed latent code, from the model's own context."""
    _, _, context = model._encode_with_context(model.prepare(x, observed), observed)
    z = torch.zeros(x.shape[0], model.encoder.out.out_features // 2, dtype=x.dtype)
    return model.decode(z, context)


@pytest.mark.parametrize("decoder_skip", [True, False])
def test_only_a_decoder_skip_model_decodes_a_fixed_z_differently_when_a_seen_cell_changes(decoder_skip):
    x, observed = _tensors(_data(n=40))
    observed[:, 0] = True
    model = _model(HeterogeneousVAE, decoder_skip=decoder_skip)
    shifted = x.clone()
    shifted[:, 0] += 3.0
    changed = ~torch.isclose(_decoded(model, x, observed), _decoded(model, shifted, observed))
    assert changed.any() == decoder_skip


def test_a_decoder_skip_model_does_not_decode_without_its_context():
    model = _model(HeterogeneousVAE, decoder_skip=True)
    with pytest.raises(ValueError, match="context"):
        model.decode(torch.zeros(2, 3, dtype=torch.float64))


def test_a_decoder_skip_model_reconstructs_a_column_it_sees_but_must_predict_one_it_does_not():
    # column 0 copied into column 1 up to noise: given column 0, column 1 is known
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    x = np.stack([a, a + 0.01 * rng.normal(size=2000)], axis=1)
    xt = torch.as_tensor(x)
    all_seen = torch.ones_like(xt, dtype=torch.bool)
    torch.manual_seed(0)
    model = HeterogeneousVAE(["real", "real"], [None, None], latent_dim=1, hidden_dim=32, decoder_skip=True,
                             cell_dropout=0.5, visible_weight=0.1, kl_weight=0.05).double()
    model.fit_scaling(x)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(600):
        rows = torch.as_tensor(rng.integers(0, 2000, size=128))
        optimiser.zero_grad()
        model.train()(xt[rows], all_seen[rows])["loss"].backward()
        optimiser.step()
    model.eval()
    hide_second = all_seen.clone()
    hide_second[:, 1] = False
    imputed = model.impute(xt, hide_second)[:, 1].numpy()
    # independent reference: the noise level of the copy, against the column's spread
    assert np.sqrt(np.mean((imputed - x[:, 1]) ** 2)) < 0.1 * x[:, 1].std()


# ------------------------------------------------------ fixed mask (validation)
def _other_columns_nll(model, x, observed, seen, column=0, seed=11):
    torch.manual_seed(seed)  # the same latent draws for every call
    nll = model(x, observed, seen=seen)["column_nll"]
    return torch.cat([nll[:column], nll[column + 1:]])


#: one importance sample: IWAE's per-column terms are then plain log-likelihoods, not weighted
#: by the whole row's likelihood (which would carry a changed cell into every column's term)
_ONE_DRAW = {"vae": {"decoder_skip": True}, "iwae": {"n_importance_samples": 1}, "dreg": {"n_importance_samples": 1},
             "hivae": {}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_cell_hidden_by_a_fixed_mask_does_not_reach_the_other_cells_losses(name):
    # row 0's real value (column 0) changes; hidden from the encoder by `seen`, it can change
    # only its own loss term, while seen (all cells visible) it reaches the others
    model = _model(MODELS[name], **_ONE_DRAW[name])
    x, observed = _tensors(_data())
    observed[0, 0] = True
    changed = x.clone()
    changed[0, 0] += 5.0
    hidden = observed.clone()
    hidden[0, 0] = False

    torch.testing.assert_close(_other_columns_nll(model, x, observed, hidden),
                               _other_columns_nll(model, changed, observed, hidden))
    assert not torch.allclose(_other_columns_nll(model, x, observed, observed),
                              _other_columns_nll(model, changed, observed, observed))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_fixed_mask_replaces_cell_dropout_in_training_mode(name):
    x, observed = _tensors(_data())
    dropping = _model(MODELS[name], cell_dropout=0.5).train()
    keeping = _same_weights(dropping, MODELS[name], cell_dropout=0.0).train()
    torch.manual_seed(5)
    with_mask = dropping(x, observed, seen=observed)["column_nll"]
    torch.manual_seed(5)
    without_dropout = keeping(x, observed)["column_nll"]
    torch.manual_seed(5)
    with_dropout = dropping(x, observed)["column_nll"]
    torch.testing.assert_close(with_mask, without_dropout)
    assert not torch.allclose(with_mask, with_dropout)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_encodings_computed_once_give_the_same_loss_and_gradients_as_encoding_every_batch(name):
    # the imputer passes `encoded` (the training table encoded once, with every observed cell);
    # each step's cell dropout must then mask it exactly as encoding the step's rows would
    x, observed = _tensors(_data())
    model = _model(MODELS[name], cell_dropout=0.4).train()
    encoded = model.encodings(x, observed)
    assert encoded.shape == (len(x), model.encoding_owner.numel()) and not encoded.requires_grad
    torch.manual_seed(5)
    per_batch = model(x, observed)
    grads_per_batch = _grads(model, per_batch["loss"])
    torch.manual_seed(5)
    once = model(x, observed, encoded=encoded)
    grads_once = _grads(model, once["loss"])
    torch.testing.assert_close(once["loss"], per_batch["loss"], rtol=0, atol=0)
    torch.testing.assert_close(once["column_nll"], per_batch["column_nll"], rtol=0, atol=0)
    assert grads_once.keys() == grads_per_batch.keys()
    for key in grads_once:
        torch.testing.assert_close(grads_once[key], grads_per_batch[key], rtol=0, atol=0)
    # a row subset (a batch) of the encodings serves that subset of rows
    rows = torch.arange(5, 25)
    torch.testing.assert_close(model.column_encodings(model.prepare(x[rows], observed[rows]), observed[rows]),
                               model.column_encodings(None, observed[rows], encoded[rows]), rtol=0, atol=0)


@pytest.mark.parametrize("kl_weight", [0.0, 0.3, 1.0])
def test_vae_loss_is_the_column_nlls_plus_the_weighted_kl(kl_weight):
    # V03: kl_weight ignored in the loss
    x, observed = _tensors(_data())
    m = _model(HeterogeneousVAE, kl_weight=kl_weight, decoder_skip=False)
    torch.manual_seed(0)
    out = m(x, observed)
    loc, scale = m.encode(m.prepare(x, observed), observed)
    kl = kl_divergence(Normal(loc, scale), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["loss"], out["column_nll"].sum() + kl_weight * kl)


def test_vae_training_loss_weights_gaussian_type_cells_by_beta_nll():
    # V04: nll_beta ignored by the training loss
    beta = 0.5
    x, observed = _tensors(_data())
    m = _model(HeterogeneousVAE, nll_beta=beta, decoder_skip=False)
    torch.manual_seed(3)
    out = m(x, observed)
    torch.manual_seed(3)  # the same draw of z, by hand
    xp = m.prepare(x, observed)
    loc, scale = m.encode(xp, observed)
    raw = m.decode(loc + scale * torch.randn_like(loc))
    weighted = torch.zeros_like(xp)
    for lik, r, cols in zip(m.likelihoods, m._split_raw(raw), m.group_columns):
        lp = lik.log_prob(r, xp[:, cols])
        if lik.kind in ("real", "pos"):  # sigma^(2 beta) in standardised units, from the params in original units
            p = lik.params(r)
            sigma_z = (p["scale"] if lik.kind == "real" else p["sigma"]) / lik.scale
            lp = lp * sigma_z.detach() ** (2 * beta)
        weighted[:, cols] = lp
    expected = -(weighted * observed).sum(0) / len(x)
    torch.testing.assert_close(out["column_nll"], expected)


def test_iwae_importance_weights_ignore_the_values_of_missing_cells():
    # V09: the imputation weights included log p(x_mis = fill value | z)
    iwae = _model(IWAE, n_impute_samples=6)
    x, observed = _tensors(_data(n=10))
    xp = iwae.prepare(x, observed)
    other = torch.where(observed, xp, torch.ones_like(xp))  # 1 is a valid value of every kind
    _, w = iwae.importance_weights(xp, observed, 6, torch.Generator().manual_seed(0))
    _, w_other = iwae.importance_weights(other, observed, 6, torch.Generator().manual_seed(0))
    torch.testing.assert_close(w, w_other)
    # and they are p(x_obs, z) / q(z | x_obs) normalised, written with torch.distributions
    g = torch.Generator().manual_seed(0)
    loc, scale = iwae.encode(xp, observed)
    z = loc + scale * torch.randn((6, *loc.shape), generator=g, dtype=loc.dtype)
    log_w = ((iwae.log_likelihood(iwae.decode(z), xp) * observed).sum(-1) + Normal(0.0, 1.0).log_prob(z).sum(-1)
             - Normal(loc, scale).log_prob(z).sum(-1))
    torch.testing.assert_close(w, torch.softmax(log_w, 0))


def test_snis_mode_of_a_numeric_column_is_the_mode_of_its_heaviest_component():
    # V10: the mode taken from the lightest proposal
    iwae = _model(IWAE, n_impute_samples=6)
    x, observed = _tensors(_data(n=10))
    raw, w = iwae.importance_weights(iwae.prepare(x, observed), observed, 6, torch.Generator().manual_seed(0))
    for lik, r in zip(iwae.likelihoods, iwae._split_raw(raw)):
        if lik.discrete:
            continue
        got = snis_point(lik, r, w, how="mode")
        for row in range(10):
            heaviest = int(w[:, row].argmax())
            torch.testing.assert_close(got[row], lik.mode(r[heaviest])[row])


def test_iwae_draws_follow_the_importance_weighted_mixture():
    # V12: sampling-importance-resampling that ignores the weights
    iwae = _model(IWAE, n_impute_samples=6)
    with torch.no_grad():  # an untrained decoder barely depends on z: sharpen it so that the weights matter
        for p in [*iwae.decoder.parameters(), iwae.heads.linear.weight]:
            p.mul_(4.0)
    x, observed = _tensors(_data(n=10))
    S = 20000
    draws = iwae.sample(x, observed, n_draws=S, generator=torch.Generator().manual_seed(0))
    # sample() draws its proposals first from the generator it is given: replay them
    with torch.no_grad():
        raw, w = iwae.importance_weights(iwae.prepare(x, observed), observed, 6, torch.Generator().manual_seed(0))
    exercised = 0.0
    for lik, r, cols in zip(iwae.likelihoods, iwae._split_raw(raw), iwae.group_columns):
        if not lik.discrete:
            continue
        probs = lik.log_probs(r).exp()  # [K, N, n, C]
        mixture = (w[..., None, None] * probs).sum(0)
        exercised = max(exercised, float((mixture - probs.mean(0)).abs().max()))
        for j, col in enumerate(cols):
            freq = torch.stack([(draws[:, :, col] == c).double().mean(0) for c in range(probs.shape[-1])], -1)
            np.testing.assert_allclose(freq.numpy(), mixture[:, j].numpy(), atol=0.02)
    assert exercised > 0.1  # uniform resampling would give visibly different frequencies


def test_hivae_bound_approaches_the_log_marginal_from_below():
    # V16, V17: log p(z | s) without the prior mean, log p(s) dropped
    torch.manual_seed(0)
    m = HIVAE(KINDS, N_CLASSES, latent_dim=1, s_dim=3).double()
    m.fit_scaling(_data())
    m.eval()
    x, observed = _tensors(_data())
    x, observed = x[:5], observed[:5]
    xp = m.prepare(x, observed)
    # independent reference: sum over s, quadrature over the 1-D z
    grid = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    dz = float(grid[1] - grid[0])
    per_s = []
    with torch.no_grad():
        for k in range(m.s_dim):
            s = torch.nn.functional.one_hot(torch.tensor(k), m.s_dim).double().expand(len(grid), len(x), m.s_dim)
            raw = m.decode(grid[:, None, None].expand(-1, len(x), 1), s)
            log_px_z = (m.log_likelihood(raw, xp) * observed).sum(-1)  # [G, N]
            prior_loc = m.prior_z_loc(s[:1, :1])[0, 0, 0]
            log_prior = Normal(prior_loc, 1.0).log_prob(grid)[:, None]
            per_s.append(torch.logsumexp(log_px_z + log_prior, 0) + math.log(dz) - math.log(m.s_dim))
    log_marginal = torch.logsumexp(torch.stack(per_s), 0)
    g = torch.Generator().manual_seed(0)
    elbo_like = torch.stack([m.log_marginal_bound(x, observed, 1, g) for _ in range(200)]).mean(0)
    tight = torch.logsumexp(torch.stack([m.log_marginal_bound(x, observed, 5000, g) for _ in range(8)]), 0) - math.log(8)
    assert torch.all(elbo_like < log_marginal)
    torch.testing.assert_close(tight, log_marginal, atol=5e-2, rtol=0)

"""Exact-value codes: the lookup against a brute-force dictionary, the model's code vectors
against a dense one-hot layer, and the imputer's use of them."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from heterovae import HeterogeneousVAEImputer
from heterovae.vae.model import HeterogeneousVAE
from heterovae.value_codes import MIN_REPEATS, ValueCodes, auto_values, distinct_values, lookup_gain


# ------------------------------------------------------------ distinct_values
def test_distinct_values_are_the_sorted_float32_values_of_the_observed_cells():
    x = np.array([[0.1, 1.0], [0.3, np.nan], [0.1, 2.0], [np.nan, 1.0], [0.3, 2.0]] * 5)
    out = distinct_values(x, max_values=10)
    np.testing.assert_array_equal(out[0], np.array([0.1, 0.3], dtype=np.float32))
    np.testing.assert_array_equal(out[1], np.array([1.0, 2.0], dtype=np.float32))
    assert out[0].dtype == np.float32


@pytest.mark.parametrize("column, max_values, expected", [
    (np.repeat(np.arange(4.0), 10), 4, True),       # at the cap
    (np.repeat(np.arange(4.0), 10), 3, False),      # over it
    (np.full(40, 7.0), 10, False),                  # one value: nothing to tell apart
    (np.repeat(np.arange(8.0), MIN_REPEATS), 10, True),
    (np.r_[np.repeat(np.arange(8.0), MIN_REPEATS)[:-1], np.nan], 10, False),  # just under the repeats
    (np.repeat(np.arange(4.0), 10), 0, False),      # 0 turns codes off
])
def test_distinct_values_codes_only_repeating_columns_within_the_cap(column, max_values, expected):
    assert (distinct_values(column[:, None], max_values)[0] is not None) is expected


@pytest.mark.parametrize("bad", [-1, 2.5, True, None])
def test_distinct_values_refuses_a_bad_cap(bad):
    with pytest.raises(ValueError, match="max_values"):
        distinct_values(np.zeros((3, 1)), bad)


# ------------------------------------------------------------- the auto rule
def _loo_brute_force(keys, target, n_classes):
    """Leave-one-out log loss by refitting the smoothed frequencies without each row."""
    total = 0.0
    for i in range(len(keys)):
        others = [t for k, (key, t) in enumerate(zip(keys, target)) if k != i and key == keys[i]]
        total -= np.log((others.count(target[i]) + 1.0) / (len(others) + n_classes))
    return total / len(keys)


def test_lookup_gain_is_the_leave_one_out_loss_of_rank_bins_minus_that_of_exact_values():
    rng = np.random.default_rng(1)
    values = rng.choice(np.arange(12.0), 90)
    target = (values % 3 + (rng.random(90) < 0.2)) % 3  # mostly a function of the exact value
    values[[3, 40]] = np.nan
    target[[7]] = np.nan
    both = ~np.isnan(values) & ~np.isnan(target)
    v, y = values[both], target[both].astype(int)
    # 4 equal-frequency bins of the mid-rank, computed the slow way
    order = np.sort(v)
    mid = np.array([(np.sum(order < a) + np.sum(order <= a)) / (2 * len(v)) for a in v])
    bins = np.minimum((mid * 4).astype(int), 3)
    want = _loo_brute_force(list(bins), list(y), 3) - _loo_brute_force(list(v), list(y), 3)
    assert lookup_gain(values, target, 3, bins=4) == pytest.approx(want, rel=1e-12)
    assert want > 0.3  # the exact value does tell the class here


def test_auto_codes_a_column_whose_exact_values_name_a_category_and_no_other():
    full, _, _ = _lookup_table()
    x = np.column_stack([full["rate"], full["dow"].cat.codes, full["noise"].round(1)])
    out = auto_values(x, numeric=[True, False, True], n_classes=[None, 5, None])
    assert out[0] is not None and out[1] is None and out[2] is None
    # no discrete column: nothing to look up
    assert all(v is None for v in auto_values(x[:, [0, 2]], [True, True], [None, None]))



def _brute_force(values, x, seen):
    """Global index and hit of every (row, coded column) by dictionary lookup."""
    coded = [d for d, v in enumerate(values) if v is not None]
    lookup, start = {}, 0
    for d in coded:
        for i, v in enumerate(values[d]):
            lookup[(d, float(np.float32(v)))] = start + i
        start += len(values[d])
    hit = np.zeros((len(x), len(coded)), dtype=bool)
    index = np.full((len(x), len(coded)), -1)
    for r in range(len(x)):
        for c, d in enumerate(coded):
            key = (d, float(np.float32(x[r, d])))
            if seen[r, d] and key in lookup:
                hit[r, c], index[r, c] = True, lookup[key]
    return index, hit


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_value_codes_match_a_dictionary_lookup(dtype):
    rng = np.random.default_rng(0)
    values = [np.array([-1.5, 0.1, 0.2, 3.0], dtype=np.float32), None,
              np.array([10.0, 20.0], dtype=np.float32), np.array([0.7], dtype=np.float32)]
    pool = np.array([-1.5, 0.1, 0.2, 3.0, 10.0, 20.0, 0.7, 0.15, 99.0, -7.0, 0.0])  # hits and misses
    x = rng.choice(pool, size=(200, 4))
    seen = rng.random((200, 4)) > 0.25
    codes = ValueCodes(values)
    assert codes.n_codes == 7
    index, hit = codes(torch.as_tensor(x, dtype=dtype), torch.as_tensor(seen))
    want_index, want_hit = _brute_force(values, x, seen)
    np.testing.assert_array_equal(hit.numpy(), want_hit)
    np.testing.assert_array_equal(index.numpy()[want_hit], want_index[want_hit])
    assert index.min() >= 0 and index.max() < codes.n_codes  # misses still index a valid row


def test_value_codes_refuse_values_that_are_not_strictly_ascending():
    with pytest.raises(ValueError, match="column 1"):
        ValueCodes([None, np.array([2.0, 1.0])])
    with pytest.raises(ValueError, match="column 0"):
        ValueCodes([np.array([1.0, 1.0, 2.0])])


# ----------------------------------------------------------------------- model
KINDS, CLASSES = ["real", "pos", "cat", "real"], [None, None, 3, None]
CODES = [np.array([0.0, 1.0, 2.5], dtype=np.float32), None, None, np.array([-1.0, 4.0], dtype=np.float32)]


def _table(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = np.stack([rng.choice([0.0, 1.0, 2.5, 0.5], n), rng.lognormal(size=n), rng.integers(0, 3, n),
                  rng.choice([-1.0, 4.0, 3.0], n)], axis=1)
    observed = rng.random(x.shape) > 0.2
    return x, observed


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs = {"decoder_skip": True, "hidden_dim": 16, "code_values": CODES, **kwargs}
    model = HeterogeneousVAE(KINDS, CLASSES, latent_dim=3, **kwargs).double()
    x, _ = _table()
    return model.fit_scaling(np.where(_table()[1], x, np.nan)).eval()


def test_code_vectors_equal_a_dense_one_hot_input_to_the_first_decoder_layer():
    model = _model()
    x, observed = _table()
    xt, obs = torch.as_tensor(x), torch.as_tensor(observed)
    xp = model.prepare(xt, obs)
    _, _, (inputs, shift) = model._encode_with_context(xp, obs)
    z = torch.randn(5, len(x), 3, dtype=torch.float64)
    # one-hot of the seen, known values, built by hand
    one_hot = torch.zeros(len(x), 5, dtype=torch.float64)
    starts = {0: 0, 3: 3}
    for r in range(len(x)):
        for d, values in ((0, CODES[0]), (3, CODES[3])):
            hits = np.flatnonzero(values == np.float32(x[r, d]))
            if observed[r, d] and len(hits):
                one_hot[r, starts[d] + hits[0]] = 1.0
    first = model.decoder.body[0]
    dense = torch.nn.Linear(first.in_features + 5, first.out_features).double()
    with torch.no_grad():
        dense.weight.copy_(torch.cat([first.weight, model.code_embedding.T], dim=1))
        dense.bias.copy_(first.bias)
    wide = torch.cat([z, inputs.expand(5, *inputs.shape), one_hot.expand(5, *one_hot.shape)], dim=-1)
    want = model.heads(model.decoder.body[1:](dense(wide)))
    torch.testing.assert_close(model.decode(z, (inputs, shift)), want)
    assert one_hot.sum() > 0 and (one_hot.sum(0) > 0).sum() >= 4  # several codes in play


def test_hidden_cells_add_no_code():
    model = _model()
    x, _ = _table()
    shift = model._code_shift(torch.as_tensor(x), torch.zeros(x.shape, dtype=torch.bool))
    assert torch.equal(shift, torch.zeros_like(shift))


def test_codes_leave_the_encoder_alone_and_change_the_decoder():
    x, observed = _table()
    xt, obs = torch.as_tensor(x), torch.as_tensor(observed)
    plain, coded = _model(code_values=None), _model()
    loc_plain, _ = plain.encode(plain.prepare(xt, obs), obs)
    loc_coded, _ = coded.encode(coded.prepare(xt, obs), obs)
    torch.testing.assert_close(loc_plain, loc_coded)  # same seed, same encoder weights
    assert not torch.allclose(plain.impute(xt, obs), coded.impute(xt, obs))


def test_a_model_without_coded_columns_draws_the_weights_it_drew_before_codes_existed():
    a = _model(code_values=None)
    b = _model(code_values=[None] * 4)
    assert b.value_codes is None and b.code_embedding is None
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("kwargs, match", [
    ({"decoder_skip": False}, "decoder_skip=True"),
    ({"n_layers": 0}, "n_layers >= 1"),
    ({"code_values": CODES[:3]}, "3 entries for 4 columns"),
])
def test_the_model_refuses_codes_it_cannot_use(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


def test_training_moves_the_code_vectors_of_seen_values_only():
    model = _model().train()
    x, observed = _table()
    observed[:, 3] = False  # column 3's codes never seen
    xt, obs = torch.as_tensor(x), torch.as_tensor(observed)
    model(xt, obs)["loss"].backward()
    grad = model.code_embedding.grad
    assert grad[:3].abs().sum() > 0
    assert torch.equal(grad[3:], torch.zeros_like(grad[3:]))


# --------------------------------------------------------------------- imputer
def _lookup_table(n=1500, seed=0):
    """``dow`` follows from the exact value of ``rate`` (a day), not from its size."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, 60, n)
    full = pd.DataFrame({"rate": np.round(np.sin(day * 0.37) + day * 0.01, 3),
                         "dow": pd.Categorical(day % 5), "noise": rng.normal(size=n)})
    hidden = rng.random(full.shape) < 0.2
    return full, full.mask(hidden), hidden


def _dow_error(value_codes):
    full, X, hidden = _lookup_table()
    out = HeterogeneousVAEImputer(value_codes=value_codes, max_epochs=60, random_state=0).fit_transform(X)
    cells = hidden[:, 1] & ~hidden[:, 0]
    return np.mean(out["dow"].to_numpy()[cells] != full["dow"].to_numpy()[cells])


def test_codes_let_the_imputer_look_a_category_up_from_an_exact_value():
    with_codes, without = _dow_error(["rate"]), _dow_error(None)
    assert with_codes < 0.05
    assert without > 0.2


def test_a_cap_codes_the_columns_with_few_values_and_skips_the_others():
    _, X, _ = _lookup_table()
    imp = HeterogeneousVAEImputer(value_codes=60, max_epochs=1, random_state=0).fit(X)
    assert imp.net_.module_.value_codes.columns.tolist() == [0]  # rate: 60 values; noise: continuous
    imp = HeterogeneousVAEImputer(value_codes=59, max_epochs=1, random_state=0).fit(X)
    assert imp.net_.module_.value_codes is None


def test_codes_are_reproducible_survive_pickling_and_take_unseen_values():
    full, X, _ = _lookup_table(600)
    imp = HeterogeneousVAEImputer(value_codes=["rate"], max_epochs=3, random_state=0).fit(X)
    again = HeterogeneousVAEImputer(value_codes=["rate"], max_epochs=3, random_state=0).fit(X)
    pd.testing.assert_frame_equal(imp.transform(X), again.transform(X))
    restored = pickle.loads(pickle.dumps(imp))
    pd.testing.assert_frame_equal(imp.transform(X), restored.transform(X))
    new = X.copy()
    new.loc[new.index[:10], "rate"] = 123.456  # never seen at fit: no code, still imputed
    assert imp.transform(new).notna().all().all()


def test_auto_codes_the_lookup_column_and_only_where_the_model_can_use_codes():
    _, X, _ = _lookup_table()
    assert HeterogeneousVAEImputer().value_codes == "auto"
    imp = HeterogeneousVAEImputer(max_epochs=1, random_state=0).fit(X)  # the default
    assert imp.net_.module_.value_codes.columns.tolist() == [0]
    # a table whose numbers name nothing: "auto" codes nothing, the model is the one without codes
    rng = np.random.default_rng(1)
    plain = X.assign(rate=rng.normal(size=len(X)).round(3))
    imp = HeterogeneousVAEImputer(max_epochs=1, random_state=0).fit(plain)
    assert imp.net_.module_.value_codes is None
    for params in ({"model": "iwae"}, {"decoder_skip": False}):
        imp = HeterogeneousVAEImputer(value_codes="auto", max_epochs=1, random_state=0, **params).fit(X)
        assert getattr(imp.net_.module_, "value_codes", None) is None


@pytest.mark.parametrize("params, match", [
    ({"value_codes": ["dow"]}, "value_codes names column 'dow', a 'cat' column"),
    ({"value_codes": ["day"]}, "value_codes names the column 'day'"),
    ({"value_codes": 10, "model": "iwae"}, "value_codes needs model='vae'"),
    ({"value_codes": ["rate"], "decoder_skip": False}, "need decoder_skip=True"),
])
def test_the_imputer_says_why_it_cannot_code(params, match):
    _, X, _ = _lookup_table(200)
    with pytest.raises(ValueError, match=match):
        HeterogeneousVAEImputer(max_epochs=1, **params).fit(X)


def test_codes_by_position_on_an_array():
    _, X, _ = _lookup_table(300)
    imp = HeterogeneousVAEImputer(value_codes=[0], likelihoods={1: "cat"}, max_epochs=1, random_state=0)
    imp.fit(X.assign(dow=X["dow"].astype(float)).to_numpy())
    assert imp.net_.module_.value_codes.columns.tolist() == [0]

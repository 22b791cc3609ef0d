"""HeterogeneousVAEImputer: scikit-learn conventions, dtypes, errors, quality."""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from heterovae import HeterogeneousVAEImputer

FAST = dict(max_epochs=3, hidden_dim=8, batch_size=32, random_state=0)


def _checks_instances():
    yield HeterogeneousVAEImputer(**FAST)


@parametrize_with_checks(list(_checks_instances()))
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _table(n=300, seed=0, missing=0.2):
    """Mixed table with strong dependence between columns, and its masked copy."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    full = pd.DataFrame({
        "real": 2 * z + 0.2 * rng.normal(size=n),
        "pos": np.exp(0.5 * z + 0.1 * rng.normal(size=n)),
        "count": rng.poisson(np.exp(1 + 0.5 * z)).astype("int64"),
        "flag": z > 0,
        "colour": pd.Categorical(np.where(z > 0.5, "red", np.where(z < -0.5, "blue", "green"))),
        "size": pd.Categorical(np.digitize(z, [-1, 0, 1]), categories=[0, 1, 2, 3], ordered=True),
    })
    mask = rng.random(full.shape) < missing
    masked = full.astype({"count": "Int64", "flag": "boolean"}).mask(mask)
    return full, masked, mask


@pytest.fixture(scope="module")
def fitted():
    full, masked, mask = _table()
    # 300 rows are two steps an epoch; the decoder skip needs ~150 steps here
    imp = HeterogeneousVAEImputer(max_epochs=80, random_state=0).fit(masked)
    return imp, full, masked, mask


def test_detects_the_kinds_of_a_mixed_frame(fitted):
    imp, *_ = fitted
    assert [s.kind for s in imp.specs_] == ["real", "pos", "count", "binary", "cat", "ordinal"]


def test_fills_only_missing_cells_and_keeps_dtypes_and_labels(fitted):
    imp, full, masked, mask = fitted
    before = masked.copy()
    out = imp.transform(masked)
    pd.testing.assert_frame_equal(masked, before)  # input not mutated
    assert list(out.columns) == list(masked.columns)
    assert out.notna().all().all()
    assert out.dtypes.equals(masked.dtypes)
    assert set(out["colour"].cat.categories) == {"blue", "green", "red"}
    assert out["size"].cat.ordered
    assert np.all(out["count"] == np.round(out["count"])) and (out["count"] >= 0).all()
    for c in ("real", "pos", "count"):  # point estimates stay within the training range
        assert masked[c].min() <= out[c].min() and out[c].max() <= masked[c].max()
    observed = ~mask
    for j, c in enumerate(masked.columns):
        pd.testing.assert_series_equal(out[c][observed[:, j]], masked[c][observed[:, j]])


def test_a_count_is_imputed_with_its_mean_rounded_only_in_an_integer_column():
    _, masked, mask = _table()
    as_float = masked.astype({"count": "float64"})
    missing = mask[:, list(masked.columns).index("count")]
    filled = HeterogeneousVAEImputer(**FAST).fit(as_float).transform(as_float)["count"][missing]
    # the mean minimises the squared error; rounding it would add to it
    assert not np.allclose(filled, np.round(filled))
    # the same model on the Int64 column: the same means, rounded, in the caller's dtype
    whole = HeterogeneousVAEImputer(**FAST).fit(masked).transform(masked)["count"]
    assert whole.dtype == "Int64"
    np.testing.assert_array_equal(whole[missing].to_numpy(dtype=float), np.round(filled.to_numpy()))
    # "mode" gives whole counts in a float column too
    modes = HeterogeneousVAEImputer(impute_with="mode", **FAST).fit(as_float).transform(as_float)["count"][missing]
    np.testing.assert_array_equal(modes, np.round(modes))


def test_beats_mean_and_mode_imputation_on_dependent_columns(fitted):
    imp, full, masked, mask = fitted
    out = imp.transform(masked)
    simple = masked.copy()
    for c in ["real", "pos", "colour", "flag"]:
        simple[c] = simple[c].fillna(masked[c].mode()[0] if masked[c].dtype.name in ("category", "boolean")
                                     else masked[c].mean())
    for c in ["real", "pos", "colour", "flag"]:
        m = mask[:, list(masked.columns).index(c)]
        if c in ("colour", "flag"):
            ours = (out[c][m].astype(str) != full[c][m].astype(str)).mean()
            base = (simple[c][m].astype(str) != full[c][m].astype(str)).mean()
        else:
            ours = np.sqrt(((out[c][m] - full[c][m]) ** 2).mean())
            base = np.sqrt(((simple[c][m] - full[c][m]) ** 2).mean())
        assert ours < 0.7 * base, c


def test_numpy_in_numpy_out_and_set_output_pandas():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    X[:, 2] = X[:, 0] - X[:, 1]
    X[rng.random(X.shape) < 0.1] = np.nan
    imp = HeterogeneousVAEImputer(**FAST).fit(X)
    out = imp.transform(X)
    assert isinstance(out, np.ndarray) and out.dtype == X.dtype and not np.isnan(out).any()
    np.testing.assert_array_equal(out[~np.isnan(X)], X[~np.isnan(X)])
    frame = clone(imp).set_output(transform="pandas").fit_transform(X)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(imp.get_feature_names_out())


def test_same_random_state_same_output_and_different_state_differs():
    _, masked, _ = _table(n=120)
    a = HeterogeneousVAEImputer(**FAST).fit_transform(masked)
    b = HeterogeneousVAEImputer(**FAST).fit_transform(masked)
    c = HeterogeneousVAEImputer(**{**FAST, "random_state": 1}).fit_transform(masked)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_global_torch_rng_is_left_alone():
    _, masked, _ = _table(n=60)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    HeterogeneousVAEImputer(**FAST).fit(masked)
    torch.testing.assert_close(torch.rand(3), expected)


def test_pickle_round_trip_and_clone(fitted):
    imp, _, masked, _ = fitted
    restored = pickle.loads(pickle.dumps(imp))
    pd.testing.assert_frame_equal(restored.transform(masked), imp.transform(masked))
    assert clone(imp).get_params() == imp.get_params()


def test_pipeline_and_grid_search_over_moo():
    _, masked, _ = _table(n=120)
    numeric = masked[["real", "pos"]].to_numpy()
    pipe = make_pipeline(HeterogeneousVAEImputer(**FAST), StandardScaler())
    assert not np.isnan(pipe.fit_transform(numeric)).any()
    search = GridSearchCV(HeterogeneousVAEImputer(**FAST), {"moo": [None, ("imtlg", "pcgrad")]}, cv=2)
    search.fit(masked)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_multiple_imputation_draws_differ_and_keep_observed(fitted):
    imp, _, masked, mask = fitted
    draws = imp.sample(masked, n_draws=3)
    assert len(draws) == 3
    assert not draws[0]["real"].equals(draws[1]["real"])
    for d in draws:
        pd.testing.assert_series_equal(d["real"][~mask[:, 0]], masked["real"][~mask[:, 0]])
        assert d.notna().all().all()


def test_score_prefers_the_trained_model(fitted):
    imp, _, masked, _ = fitted
    untrained = HeterogeneousVAEImputer(max_epochs=0, random_state=0).fit(masked)
    assert imp.score(masked) > untrained.score(masked)
    assert -1 < imp.score(masked) < 0


def test_score_is_minus_the_imputation_error_of_cells_it_hides(fitted):
    """Recompute the score independently: hide the same cells, impute, use the metrics module."""
    from heterovae.metrics import imputation_error

    imp, full, masked, _ = fitted
    obs = masked.notna().to_numpy()
    for model in (imp, clone(imp).set_params(random_state=None, max_epochs=2).fit(masked)):
        # the hidden cells do not depend on the fit's random_state
        hide = obs & (np.random.default_rng(20_221_122).random(obs.shape) < 0.2)
        completed = model.transform(masked.mask(hide))
        errors = imputation_error(masked.astype({"flag": object}), completed, hide, model.specs_)
        assert model.score(masked) == pytest.approx(-errors.mean(), rel=1e-6)


def test_log_likelihood_prefers_the_trained_model_under_the_elbo():
    _, masked, _ = _table()
    kw = dict(kl_weight=1.0, nll_beta=0.0, decoder_skip=False, random_state=0)
    trained = HeterogeneousVAEImputer(max_epochs=30, **kw).fit(masked)
    untrained = HeterogeneousVAEImputer(max_epochs=0, **kw).fit(masked)
    assert trained.log_likelihood(masked) > untrained.log_likelihood(masked)


def test_log_likelihood_of_a_decoder_skip_model_is_refused_with_the_way_out():
    _, masked, _ = _table()
    imp = HeterogeneousVAEImputer(max_epochs=1, random_state=0).fit(masked)
    with pytest.raises(NotImplementedError, match="decoder_skip=False"):
        imp.log_likelihood(masked)


@pytest.mark.parametrize("model", ["iwae", "dreg", "hivae"])
def test_decoder_skip_on_a_model_without_it_is_refused_by_name(model):
    _, masked, _ = _table()
    with pytest.raises(ValueError, match=f"decoder_skip=True needs model='vae'; model='{model}'"):
        HeterogeneousVAEImputer(model=model, decoder_skip=True, max_epochs=1).fit(masked)


@pytest.mark.parametrize("decoder_skip, visible_weight", [(True, 0.1), (False, 1.0)])
def test_the_default_visible_weight_follows_the_decoder_skip(decoder_skip, visible_weight):
    _, masked, _ = _table()
    module = HeterogeneousVAEImputer(decoder_skip=decoder_skip, max_epochs=0).fit(masked).module_
    assert (module.decoder_skip, module.visible_weight) == (decoder_skip, visible_weight)
    explicit = HeterogeneousVAEImputer(decoder_skip=decoder_skip, visible_weight=0.7, max_epochs=0).fit(masked)
    assert explicit.module_.visible_weight == 0.7


def _layer_widths(mlp):
    return [layer.out_features for layer in mlp if isinstance(layer, torch.nn.Linear)]


@pytest.mark.parametrize("decoder_skip", [True, False])
def test_the_default_encoder_has_the_decoder_sizes(decoder_skip):
    _, masked, _ = _table()
    module = HeterogeneousVAEImputer(decoder_skip=decoder_skip, hidden_dim=16, n_layers=2, max_epochs=0).fit(masked).module_
    assert _layer_widths(module.encoder.body) == _layer_widths(module.decoder.body) == [16, 16]


@pytest.mark.parametrize("decoder_skip", [True, False])
def test_encoder_sizes_set_the_encoder_alone(decoder_skip):
    _, masked, _ = _table()
    imp = HeterogeneousVAEImputer(decoder_skip=decoder_skip, hidden_dim=16, n_layers=2, encoder_dim=8,
                                  encoder_layers=1, max_epochs=1, random_state=0).fit(masked)
    assert _layer_widths(imp.module_.encoder.body) == [8]
    assert _layer_widths(imp.module_.decoder.body) == [16, 16]
    assert imp.transform(masked).notna().all().all()


@pytest.mark.parametrize("name", ["encoder_dim", "encoder_layers"])
@pytest.mark.parametrize("model", ["iwae", "dreg", "hivae"])
def test_encoder_sizes_on_a_model_without_them_are_refused_by_name(model, name):
    _, masked, _ = _table()
    with pytest.raises(ValueError, match=f"{name} needs model='vae'; model='{model}'"):
        HeterogeneousVAEImputer(model=model, max_epochs=1, **{name: 2}).fit(masked)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.2])
def test_training_encodes_the_table_once_and_imputes_as_when_every_batch_encodes_its_rows(
        monkeypatch, validation_fraction):
    from heterovae import imputer as imputer_module
    from heterovae.vae import HeterogeneousVAE

    _, masked, _ = _table()
    calls = []
    encodings = HeterogeneousVAE.encodings
    monkeypatch.setattr(HeterogeneousVAE, "encodings", lambda self, *a: calls.append(1) or encodings(self, *a))
    params = dict(max_epochs=3, validation_fraction=validation_fraction, random_state=0)
    once = HeterogeneousVAEImputer(**params).fit(masked)
    assert len(calls) == 1
    # over the memory budget, every batch encodes its rows: the same training
    monkeypatch.setattr(imputer_module, "_ENCODINGS_MAX_BYTES", 0)
    per_batch = HeterogeneousVAEImputer(**params).fit(masked)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(once.transform(masked), per_batch.transform(masked))
    assert once.history_[-1, "train_loss"] == per_batch.history_[-1, "train_loss"]


def test_the_default_vae_has_the_skip_and_the_other_models_do_not():
    _, masked, _ = _table()
    assert HeterogeneousVAEImputer(max_epochs=0).fit(masked).module_.decoder_skip
    assert not HeterogeneousVAEImputer(model="iwae", max_epochs=0).fit(masked).module_.decoder_skip


def test_history_records_one_loss_per_column(fitted):
    imp, *_ = fitted
    assert len(imp.history_) == 80
    assert len(imp.history_[-1, "train_column_nll"]) == 6
    first, last = np.array(imp.history_[0, "train_column_nll"]), np.array(imp.history_[-1, "train_column_nll"])
    assert last.sum() < first.sum()


@pytest.mark.parametrize("moo", ["pcgrad", ("imtlg", "pcgrad"), ("gradnorm", "graddrop"), "mgda-ub"])
def test_trains_with_moo_methods(moo):
    _, masked, _ = _table(n=120)
    imp = HeterogeneousVAEImputer(moo=moo, **FAST).fit(masked)
    assert imp.transform(masked).notna().all().all()


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_visible_weight_outside_the_unit_interval_is_refused_by_name(value):
    _, masked, _ = _table(n=30)
    with pytest.raises(ValueError, match="visible_weight"):
        HeterogeneousVAEImputer(visible_weight=value, **FAST).fit(masked)


def test_visible_weight_reaches_the_model_and_changes_the_fit():
    _, masked, _ = _table(n=120)
    plain = HeterogeneousVAEImputer(**FAST).fit(masked)
    leaning = HeterogeneousVAEImputer(visible_weight=0.3, **FAST).fit(masked)
    assert leaning.module_.visible_weight == 0.3
    assert not plain.transform(masked).equals(leaning.transform(masked))


def test_unknown_moo_name_lists_valid_ones():
    _, masked, _ = _table(n=30)
    with pytest.raises(ValueError, match="pcgrad"):
        HeterogeneousVAEImputer(moo="pcgard", **FAST).fit(masked)


# ----------------------------------------------------------------- bad input
def test_infinity_is_rejected_naming_the_column():
    _, masked, _ = _table(n=30)
    masked.loc[3, "pos"] = np.inf
    with pytest.raises(ValueError, match="pos"):
        HeterogeneousVAEImputer(**FAST).fit(masked)


def test_text_in_a_numeric_column_is_rejected_naming_the_column():
    _, masked, _ = _table(n=30)
    imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    bad = masked.astype({"real": object})
    bad.loc[2, "real"] = "oops"
    with pytest.raises(ValueError, match="real"):
        imp.transform(bad)


def test_entirely_missing_column_is_rejected_naming_it():
    _, masked, _ = _table(n=30)
    masked["real"] = np.nan
    with pytest.raises(ValueError, match="real"):
        HeterogeneousVAEImputer(**FAST).fit(masked)


def test_wrong_number_of_columns_at_transform():
    _, masked, _ = _table(n=30)
    imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    with pytest.raises(ValueError, match="features|feature names|columns"):
        imp.transform(masked.iloc[:, :4])


def test_unseen_category_is_treated_as_missing_with_a_warning():
    _, masked, _ = _table(n=60)
    imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    new = masked.copy()
    new["colour"] = new["colour"].cat.add_categories("purple")
    new.loc[0, "colour"] = "purple"
    with pytest.warns(UserWarning, match="colour.*purple"):
        out = imp.transform(new)
    assert out.loc[0, "colour"] in {"red", "green", "blue"}


def test_negative_value_in_a_positive_column_warns_and_is_returned_unchanged():
    _, masked, _ = _table(n=60)
    imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    new = masked.copy()
    new.loc[0, "pos"] = -1.5
    with pytest.warns(UserWarning, match="pos.*negative"):
        out = imp.transform(new)
    assert out.loc[0, "pos"] == -1.5


def test_type_overrides_are_used():
    _, masked, _ = _table(n=60)
    imp = HeterogeneousVAEImputer(likelihoods={"count": "real", 1: "real"}, **FAST).fit(masked)
    assert imp.specs_[2].kind == "real" and imp.specs_[1].kind == "real"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_shapes_and_fills_everything():
    _, masked, _ = _table(n=200)
    out = HeterogeneousVAEImputer(device="cuda", **FAST).fit_transform(masked)
    assert out.notna().all().all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("params", [dict(model="vae"), dict(model="vae", moo=("imtlg", "pcgrad")),
                                    dict(model="vae", moo="graddrop", validation_fraction=0.2),
                                    dict(model="iwae"), dict(model="dreg"), dict(model="hivae")],
                         ids=["vae", "imtlg+pcgrad", "graddrop-validation", "iwae", "dreg", "hivae"])
def test_every_method_runs_on_cuda_reproducibly_and_survives_pickling(params):
    _, masked, _ = _table(n=200)
    imp = HeterogeneousVAEImputer(device="cuda", **{**FAST, **params}).fit(masked)
    assert next(imp.module_.parameters()).device.type == "cuda"
    out = imp.transform(masked)
    assert out.notna().all().all()
    again = HeterogeneousVAEImputer(device="cuda", **{**FAST, **params}).fit(masked)
    # GPU kernels may sum in another order from run to run: equal to float32 rounding
    pd.testing.assert_frame_equal(again.transform(masked), out, check_exact=False, rtol=1e-4)
    draws = imp.sample(masked, 2, random_state=0)
    assert len(draws) == 2 and all(d.notna().all().all() for d in draws)
    assert np.isfinite(imp.score(masked))
    restored = pickle.loads(pickle.dumps(imp))
    pd.testing.assert_frame_equal(restored.transform(masked), out)


def test_validation_split_and_skorch_early_stopping():
    from skorch.callbacks import EarlyStopping

    _, masked, _ = _table(n=200)
    imp = HeterogeneousVAEImputer(validation_fraction=0.2, max_epochs=200, hidden_dim=8, random_state=0,
                                  callbacks=[EarlyStopping(monitor="valid_loss", patience=2, threshold=0.05)])
    imp.fit(masked)
    assert "valid_loss" in imp.history_[-1]
    assert len(imp.history_) < 200
    assert imp.transform(masked).notna().all().all()


@pytest.mark.parametrize("model, lr", [("vae", 2e-3), ("iwae", 1e-3)])
def test_lr_none_is_the_models_default_and_a_value_overrides_it(model, lr):
    _, masked, _ = _table(n=30)
    fast = {**FAST, "max_epochs": 1}
    assert HeterogeneousVAEImputer(model=model, **fast).fit(masked).net_.lr == lr
    assert HeterogeneousVAEImputer(model=model, lr=5e-4, **fast).fit(masked).net_.lr == 5e-4


def test_observed_integers_beyond_float_precision_come_back_exactly():
    rng = np.random.default_rng(0)
    big = pd.array(1_700_000_000_123_456_789 + 1000 * np.arange(40), dtype="Int64")
    X = pd.DataFrame({"x": rng.normal(size=40), "ts": big})
    X.loc[5, "ts"] = pd.NA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offset warning of a huge count column
        out = HeterogeneousVAEImputer(**FAST).fit_transform(X)
    assert out["ts"].dtype == "Int64" and not out["ts"].isna().any()
    kept = X["ts"].notna()
    assert out["ts"][kept].tolist() == X["ts"][kept].tolist()  # as Python ints, no float round trip


def test_non_integer_observed_values_in_an_integer_column_are_kept():
    rng = np.random.default_rng(0)
    imp = HeterogeneousVAEImputer(**FAST).fit(pd.DataFrame({"x": rng.normal(size=60), "k": rng.integers(0, 30, 60)}))
    with pytest.warns(UserWarning, match="column 'k' was integer at fit but has non-integer values"):
        out = imp.transform(pd.DataFrame({"x": [0.0, 1.0, 2.0], "k": [np.nan, 2.5, 21.0]}))
    assert out["k"].tolist()[1:] == [2.5, 21.0] and out["k"].notna().all()


def test_draws_saturate_instead_of_wrapping_in_small_integer_dtypes():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=60), "k": rng.integers(-100, 100, 60).astype(np.int8)})
    imp = HeterogeneousVAEImputer(**FAST).fit(train)
    test = pd.DataFrame({"x": rng.normal(size=300) * 50, "k": [np.nan] * 300})
    for draw in imp.sample(test, n_draws=3):
        assert draw["k"].dtype == np.int8
    # the unclipped draws, as floats: those beyond int8 must have saturated, not wrapped
    x, observed = imp._tensors(test)
    raw = imp._predict_codes(x, observed, None, generator=imp._generator(1), n_draws=3)[..., 1]
    saturated = np.clip(np.round(raw), -128, 127)
    np.testing.assert_array_equal(np.stack([d["k"].to_numpy() for d in imp.sample(test, n_draws=3)]), saturated)


def test_categories_missing_from_the_callers_dtype_are_added():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100, p=[0.1, 0.9])})
    imp = HeterogeneousVAEImputer(**FAST).fit(train.astype({"c": "category"}))
    test = pd.DataFrame({"x": [0.1, 0.2, 0.3], "c": ["a", None, "a"]}).astype({"c": "category"})
    out = imp.transform(test)
    assert out["c"].notna().all() and out["c"][1] in {"a", "b"}
    assert set(out["c"].cat.categories) <= {"a", "b"}


def test_an_ordered_column_keeps_the_fitted_order_when_a_level_is_added():
    rng = np.random.default_rng(0)
    levels = pd.CategoricalDtype(["lo", "mid", "hi"], ordered=True)
    train = pd.DataFrame({"x": rng.normal(size=90), "o": pd.Series(rng.choice(["lo", "mid", "hi"], 90)).astype(levels)})
    imp = HeterogeneousVAEImputer(**FAST).fit(train)
    test = pd.DataFrame({"x": np.zeros(40), "o": pd.Categorical(["lo", None] * 20, categories=["lo", "hi"],
                                                                ordered=True)})
    out = imp.transform(test)
    assert out["o"].cat.ordered and out["o"].notna().all()
    kept = [c for c in ["lo", "mid", "hi"] if c in set(out["o"].cat.categories)]
    assert list(out["o"].cat.categories) == kept  # a subsequence of the fitted order
    assert test["o"].cat.categories.tolist() == ["lo", "hi"]  # the caller's column untouched


def test_fit_on_an_array_then_transform_a_frame_returns_a_frame():
    full, masked, _ = _table(n=60)
    numeric = masked.select_dtypes("number")
    imp = HeterogeneousVAEImputer(**FAST).fit(numeric.to_numpy())
    frame = numeric.set_axis(pd.RangeIndex(100, 160, name="row"), axis=0)
    with pytest.warns(UserWarning, match="fitted without feature names"):
        out = imp.transform(frame)
    assert isinstance(out, pd.DataFrame) and out.index.equals(frame.index)
    assert list(out.columns) == list(frame.columns)


def test_values_float32_cannot_hold_are_named():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"big": rng.normal(size=40) * 1e39, "x": rng.normal(size=40)})
    X.iloc[::5, 0] = np.nan
    with pytest.raises(ValueError, match="column 'big' .*beyond float32"):
        HeterogeneousVAEImputer(**FAST).fit(X)
    # a column that is large but within float32 trains and imputes
    out = HeterogeneousVAEImputer(**FAST).fit_transform(X.assign(big=X["big"] / 1e4))
    assert out.notna().all().all()


def test_a_diverged_training_is_an_error_not_nan_imputations():
    from heterovae.imputer import _check_training_finished
    from heterovae.columns import ColumnSpec

    specs = [ColumnSpec("a", "real"), ColumnSpec("b", "real")]
    history = [{"train_loss": 1.0, "train_column_nll": [0.5, 0.5]},
               {"train_loss": float("nan"), "train_column_nll": [0.5, float("inf")]}]
    with pytest.raises(FloatingPointError, match=r"after epoch 2 is nan \(not finite for column\(s\) 'b'\)"):
        _check_training_finished(history, specs)
    _check_training_finished(history[:1], specs)
    _check_training_finished([], specs)  # max_epochs=0 trains nothing, and is no error
    # through fit: a learning rate that overflows the weights
    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    X.iloc[::4, 0] = np.nan
    with pytest.raises(FloatingPointError, match="training diverged"):
        HeterogeneousVAEImputer(max_epochs=3, lr=1e30, random_state=0).fit(X)


def test_decimal_columns_get_decimals():
    import decimal

    rng = np.random.default_rng(0)
    d = [decimal.Decimal(str(round(v, 2))) for v in rng.uniform(1, 5, 60)]
    d[3] = None
    X = pd.DataFrame({"d": pd.Series(d, dtype=object), "x": rng.normal(size=60)})
    out = HeterogeneousVAEImputer(**FAST).fit_transform(X)
    assert all(isinstance(v, decimal.Decimal) for v in out["d"])
    assert out["d"][0] == X["d"][0]


def test_a_category_column_modelled_as_numbers_comes_back_as_numbers():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60), "ci": pd.Categorical(rng.choice([10, 20, 30], 60))})
    X.loc[::7, "ci"] = np.nan
    out = HeterogeneousVAEImputer(likelihoods={"ci": "real"}, **FAST).fit_transform(X)
    assert out["ci"].dtype == np.float64 and out["ci"].notna().all()
    kept = X["ci"].notna()
    np.testing.assert_array_equal(out["ci"][kept], X["ci"][kept].astype(float))


def test_zero_rows_at_transform_give_an_empty_table():
    full, masked, _ = _table(n=60)
    imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    empty = masked.iloc[:0]
    out = imp.transform(empty)
    assert out.shape == (0, masked.shape[1]) and list(out.columns) == list(masked.columns)
    assert [d.shape for d in imp.sample(empty, n_draws=2)] == [(0, masked.shape[1])] * 2
    with pytest.raises(ValueError, match="no rows"):
        imp.log_likelihood(empty)


def test_a_real_column_with_a_large_offset_keeps_its_detail():
    """float32 holds 1e9 to about 64: the column is centred in float64 first, so
    an exact linear relation is still learnt (imputed to within a few units)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    X = pd.DataFrame({"a": z, "b": 1e9 + 20 * z})
    X.loc[::5, "b"] = np.nan
    with pytest.warns(UserWarning, match=r"column 'b' \(pos\) varies by .* declare it 'real'"):
        HeterogeneousVAEImputer(max_epochs=1, random_state=0).fit(X)
    imp = HeterogeneousVAEImputer(likelihoods={"b": "real"}, max_epochs=60, random_state=0).fit(X)
    error = imp.transform(X)["b"][::5] - (1e9 + 20 * z[::5])
    assert np.sqrt(np.mean(error**2)) < 4.0  # the spread is 20; without the offset 15.7


def test_validation_fraction_that_leaves_too_few_rows_is_named():
    X = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [1.0, np.nan, 3.0]})
    with pytest.raises(ValueError, match="validation_fraction=0.1 leaves 1 of 3 rows"):
        HeterogeneousVAEImputer(validation_fraction=0.1, max_epochs=1).fit(X)


def test_likelihoods_from_a_pathlike(tmp_path):
    import pathlib

    path = pathlib.Path(tmp_path) / "data_types.csv"
    path.write_text("type,dim,nclass\nreal,1,\ncount,1,\n")
    X = pd.DataFrame({"a": [0.5, 1.5, np.nan, 2.0], "b": [1.0, np.nan, 3.0, 2.0]})
    imp = HeterogeneousVAEImputer(likelihoods=path, max_epochs=1).fit(X)
    assert [s.kind for s in imp.specs_] == ["real", "count"]


def _positive_table(seed, n=1000):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    full = pd.DataFrame({"z": z, "smooth": np.exp(1 + 0.8 * z + 0.5 * rng.normal(size=n)),
                         "gains": np.where(rng.random(n) < 0.9, 0.0, np.exp(8 + 2 * rng.normal(size=n)))})
    return full, full.mask(rng.random(full.shape) < 0.2)


def test_auto_takes_the_point_estimate_that_imputes_fresh_rows_better():
    """The choice made on held-in training cells agrees with held-out rows of the
    same distribution, and transform applies it column by column."""
    _, train = _positive_table(0)
    # without the rank encoding: with it (numeric_bins=16) the held-in cells pick the median
    # for "gains", which loses on these fresh rows (RMSE 5.19 against 4.58), a wrong call
    # between two close estimates that this test would rightly flag
    imp = HeterogeneousVAEImputer(max_epochs=40, numeric_bins=0, random_state=0).fit(train)
    assert imp.auto_takes_mean_.tolist() == [False, True, True]  # a real column's mean is its default
    full, test = _positive_table(1)
    hidden = test.isna().to_numpy()
    auto = imp.transform(test)
    default = copy.copy(imp)  # the same fit, with every column on its default estimate
    default.auto_takes_mean_ = np.zeros(3, dtype=bool)
    by_default = default.transform(test)
    by_mean = imp.set_params(impute_with="mean").transform(test)
    for j, column in enumerate(full.columns):
        expected = by_mean if imp.auto_takes_mean_[j] else by_default
        np.testing.assert_array_equal(auto[column], expected[column])
        cells = hidden[:, j]
        rmse = {name: np.sqrt(np.mean((table[column][cells] - full[column][cells]) ** 2))
                for name, table in (("mean", by_mean), ("default", by_default))}
        assert rmse["mean" if imp.auto_takes_mean_[j] else "default"] <= rmse["default" if imp.auto_takes_mean_[j] else "mean"]


def test_score_leaves_out_a_column_without_a_range_as_the_metric_does():
    from heterovae.metrics import imputation_error

    full, masked, _ = _table(n=120)
    masked = masked.assign(constant=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the constant column's warning
        imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    obs = masked.notna().to_numpy()
    hide = obs & (np.random.default_rng(20_221_122).random(obs.shape) < 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imputation_error's warning about the constant column
        errors = imputation_error(masked.astype({"flag": object}), imp.transform(masked.mask(hide)), hide, imp.specs_)
    assert np.isnan(errors["constant"])
    assert imp.score(masked) == pytest.approx(-errors.mean(skipna=True), rel=1e-6)


def test_score_scores_what_transform_imputes_with_sample():
    full, masked, _ = _table(n=120)
    auto = HeterogeneousVAEImputer(**FAST).fit(masked)
    drawn = clone(auto).set_params(impute_with="sample").fit(masked)
    # the same fit (same random_state), so only the imputation differs
    assert drawn.score(full) != auto.score(full)
    assert drawn.score(full) == drawn.score(full)  # the draw is seeded by random_state
    for bad in (0, -0.1, 1.5, True, "0.2"):
        with pytest.raises(ValueError, match="hidden_fraction must be a number in \\(0, 1\\]"):
            auto.score(full, hidden_fraction=bad)


def test_a_checkpoint_loading_the_best_epoch_keeps_the_whole_history(tmp_path):
    from skorch.callbacks import Checkpoint

    full, masked, _ = _table(n=120)
    imp = HeterogeneousVAEImputer(**{**FAST, "max_epochs": 5}, validation_fraction=0.2,
                                  callbacks=[Checkpoint(load_best=True, dirname=str(tmp_path))]).fit(masked)
    assert imp.n_epochs_ == 5 and len(imp.history_) == 5


def test_held_out_scorings_without_held_out_rows_are_refused():
    from skorch.callbacks import EarlyStopping, EpochScoring

    _, masked, _ = _table(n=60)

    def loss(net, X, y=None):
        return float(np.mean([d["loss"].item() for d in net.forward_iter(X)]))

    with pytest.raises(ValueError, match="EpochScoring scores held-out rows"):
        HeterogeneousVAEImputer(**FAST, callbacks=[EpochScoring(loss, name="mine")]).fit(masked)
    scoring = EpochScoring(loss, name="mine", on_train=True)
    HeterogeneousVAEImputer(**FAST, callbacks=[scoring]).fit(masked)  # training rows: fine
    with pytest.raises(ValueError, match="EarlyStopping monitors 'valid_loss', which needs held-out rows"):
        HeterogeneousVAEImputer(**FAST, callbacks=[scoring, EarlyStopping()]).fit(masked)
    # with held-out rows, a scorer gets the held-out split and can run the net over it
    imp = HeterogeneousVAEImputer(**FAST, validation_fraction=0.2,
                                  callbacks=[EpochScoring(loss, name="mine", use_caching=False)]).fit(masked)
    assert np.isfinite(imp.history_[-1]["mine"])


def test_the_net_says_it_has_no_predictions():
    _, masked, _ = _table(n=60)
    imp = HeterogeneousVAEImputer(**FAST).fit(masked)
    x, observed = imp._tensors(masked)
    for call in (imp.net_.forward, imp.net_.predict, imp.net_.predict_proba):
        with pytest.raises(TypeError, match="not predictions: use the imputer's transform"):
            call({"x": x, "observed": observed})


def test_a_boolean_column_comes_back_boolean_when_only_the_new_rows_have_gaps():
    # P04: the bool dtype seen at fit is not restored (the transformed column is object: True/False/None)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"flag": rng.random(60) < 0.5, "x": rng.normal(size=60)})
    imp = HeterogeneousVAEImputer(**FAST).fit(X)
    new = X.astype({"flag": object})
    new.loc[::4, "flag"] = None
    out = imp.transform(new)
    assert out["flag"].dtype == bool
    pd.testing.assert_series_equal(out["flag"][new["flag"].notna()], X["flag"][new["flag"].notna()])


def test_point_estimates_never_leave_the_training_range(monkeypatch):
    # I01: the clip of numeric estimates to the training range removed
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"r": rng.normal(size=60), "p": rng.lognormal(size=60),
                      "c": rng.integers(0, 3, 60).astype(str)})
    imp = HeterogeneousVAEImputer(**FAST).fit(X)
    original = HeterogeneousVAEImputer._predict_codes

    def wild(self, x, observed, how, generator=None, n_draws=None):
        codes = original(self, x, observed, how, generator, n_draws)
        codes[:, :2] = np.where(np.arange(len(codes))[:, None] % 2 == 0, 1e6, -1e6)  # far outside, both ways
        return codes

    monkeypatch.setattr(HeterogeneousVAEImputer, "_predict_codes", wild)
    masked = X.copy()
    masked.loc[:, ["r", "p"]] = X[["r", "p"]].mask(rng.random((60, 2)) < 0.3)
    out = imp.transform(masked)
    for column in ("r", "p"):
        hidden = masked[column].isna()
        assert out[column][hidden].isin([X[column].min(), X[column].max()]).all()


def test_a_tie_between_mean_and_default_keeps_the_default(monkeypatch):
    # I02: ties take the mean
    original = HeterogeneousVAEImputer._clipped_codes
    # the mean imputes exactly as the default does
    monkeypatch.setattr(HeterogeneousVAEImputer, "_clipped_codes",
                        lambda self, x, observed, how: original(self, x, observed, "auto"))
    _, train = _positive_table(0, n=200)
    imp = HeterogeneousVAEImputer(**FAST).fit(train)
    assert not imp.auto_takes_mean_.any()


@pytest.mark.parametrize("how", ["mean", "mode"])
def test_only_auto_follows_the_fitted_point_choice(how):
    # I06: the per-column choice of "auto" applied to impute_with="mode" too
    _, train = _positive_table(0, n=200)
    imp = HeterogeneousVAEImputer(**FAST, impute_with=how).fit(train)
    default, mean = copy.copy(imp), copy.copy(imp)
    default.auto_takes_mean_ = np.zeros(3, dtype=bool)
    mean.auto_takes_mean_ = np.ones(3, dtype=bool)
    pd.testing.assert_frame_equal(default.transform(train), mean.transform(train))


def test_numeric_bins_widen_the_networks_input_by_a_rank_encoding_per_numeric_column():
    _, masked, _ = _table(n=120)
    plain = HeterogeneousVAEImputer(numeric_bins=0, **FAST).fit(masked)
    binned = HeterogeneousVAEImputer(numeric_bins=6, **FAST).fit(masked)
    # two numeric columns of a kind that has one (real, pos): 6 more inputs each
    width = lambda imp: imp.module_.encoder.body[0].in_features  # noqa: E731
    assert width(binned) == width(plain) + 2 * 6
    out = binned.transform(masked)
    assert out.notna().all().all()
    pd.testing.assert_frame_equal(out, HeterogeneousVAEImputer(numeric_bins=6, **FAST).fit(masked).transform(masked))


def test_numeric_bins_need_the_vae():
    _, masked, _ = _table(n=60)
    with pytest.raises(ValueError, match="numeric_bins needs model='vae'"):
        HeterogeneousVAEImputer(model="iwae", numeric_bins=4, **FAST).fit(masked)
    with pytest.raises(InvalidParameterError, match="numeric_bins"):
        HeterogeneousVAEImputer(numeric_bins=-1, **FAST).fit(masked)

"""Every model variant of HeterogeneousVAEImputer, with and without multi-objective training."""

import pickle

import numpy as np
import pandas as pd
import pytest
from skorch.callbacks import Callback

from heterovae import HeterogeneousVAEImputer
from heterovae.vae import MODELS

from .test_imputer import _table

TINY = dict(max_epochs=2, hidden_dim=12, batch_size=32, n_importance_samples=3, random_state=0)


@pytest.fixture(scope="module")
def table():
    return _table(n=80)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("moo", [None, "pcgrad", ("imtlg", "pcgrad"), ("gradnorm", "graddrop")])
def test_every_model_with_every_moo_setting_fits_imputes_and_pickles(table, model, moo):
    _, masked, _ = table
    imp = HeterogeneousVAEImputer(model=model, moo=moo, **TINY).fit(masked)
    out = imp.transform(masked)
    assert out.notna().all().all()
    assert np.isfinite(imp.score(masked))
    restored = pickle.loads(pickle.dumps(imp))
    pd.testing.assert_frame_equal(restored.transform(masked), out)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_same_random_state_same_output(table, model):
    _, masked, _ = table
    a = HeterogeneousVAEImputer(model=model, **TINY).fit_transform(masked)
    b = HeterogeneousVAEImputer(model=model, **TINY).fit_transform(masked)
    pd.testing.assert_frame_equal(a, b)


def test_model_defaults_apply_when_sizes_are_none(table):
    _, masked, _ = table
    hivae = HeterogeneousVAEImputer(model="hivae", max_epochs=1, random_state=0).fit(masked)
    assert hivae.net_.batch_size == 128 and hivae.net_.lr == 3e-3
    assert hivae.module_.latent_dim == 10 and hivae.module_.y_dim == 5
    vae = HeterogeneousVAEImputer(max_epochs=1, random_state=0).fit(masked)
    n_columns = masked.shape[1]
    assert vae.net_.batch_size == 256 and vae.module_.decoder.out_features == 200 and vae.net_.lr == 2e-3
    assert vae.module_.encoder.out.out_features == 2 * n_columns  # latent_dim = D


def test_importance_samples_reach_the_model(table):
    _, masked, _ = table
    imp = HeterogeneousVAEImputer(model="dreg", **{**TINY, "n_importance_samples": 7}).fit(masked)
    assert imp.module_.n_importance_samples == 7


def test_hivae_temperature_anneals_with_the_epochs(table):
    _, masked, _ = table
    imp = HeterogeneousVAEImputer(model="hivae", **{**TINY, "max_epochs": 4}).fit(masked)
    assert imp.module_.temperature == pytest.approx(1.0 - 0.01 * 3)


def test_unknown_model_lists_the_valid_ones(table):
    _, masked, _ = table
    with pytest.raises(ValueError, match="hivae"):
        HeterogeneousVAEImputer(model="miwae", **TINY).fit(masked)


def _zero_inflated(n=200, seed=0):
    rng = np.random.default_rng(seed)
    income = np.where(rng.random(n) < 0.5, 0.0, np.round(np.exp(rng.normal(8, 1, n))))
    X = pd.DataFrame({"age": rng.normal(40, 10, n).round(), "income": income})
    X.loc[rng.random(n) < 0.3, "income"] = np.nan
    return X


@pytest.mark.parametrize("model", sorted(MODELS))
def test_positive_column_draws_are_never_negative(model):
    """log(1 + x) ~ Normal puts mass below 0: 9-16 % of draws were negative, for every model."""
    X = _zero_inflated()
    imp = HeterogeneousVAEImputer(model=model, likelihoods={"income": "pos"}, **TINY).fit(X)
    missing = X["income"].isna()
    draws = np.concatenate([d.loc[missing, "income"].to_numpy() for d in imp.sample(X, 10)])
    assert (draws >= 0).all() and (draws == 0).any()
    sampled = imp.set_params(impute_with="sample").transform(X)
    assert (sampled.loc[missing, "income"] >= 0).all()


@pytest.mark.parametrize("model", ["iwae", "dreg"])
def test_importance_sampled_imputation_of_a_row_does_not_depend_on_the_other_rows(table, model):
    """Each chunk drew [K, N, d] noise from one seed, so a row's estimate moved with its
    position and with the number of rows transformed together."""
    _, masked, _ = table
    imp = HeterogeneousVAEImputer(model=model, **TINY).fit(masked)
    whole = imp.transform(masked)
    reversed_ = imp.transform(masked.iloc[::-1]).iloc[::-1]
    alone = pd.concat([imp.transform(masked.iloc[[i]]) for i in range(0, len(masked), 7)])
    numeric = ["real", "pos", "count"]
    np.testing.assert_allclose(reversed_[numeric].to_numpy(float), whole[numeric].to_numpy(float), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone[numeric].to_numpy(float), whole.loc[alone.index, numeric].to_numpy(float),
                               rtol=1e-5, atol=1e-5)
    pd.testing.assert_frame_equal(alone[["flag", "colour", "size"]], whole.loc[alone.index, ["flag", "colour", "size"]])


def test_importance_sampled_imputation_chunks_bound_memory_without_changing_results(table, monkeypatch):
    from heterovae.vae import iwae

    _, masked, _ = table
    imp = HeterogeneousVAEImputer(model="iwae", **TINY).fit(masked)
    module = imp.module_
    assert module.impute_rows * module.n_impute_samples * module.heads.linear.out_features <= iwae._IMPUTE_ELEMENTS
    whole = imp.transform(masked)
    monkeypatch.setattr(iwae, "_IMPUTE_ELEMENTS", 7 * module.n_impute_samples * module.heads.linear.out_features)
    assert module.impute_rows == 7
    pd.testing.assert_frame_equal(imp.transform(masked), whole, check_exact=False, rtol=1e-5)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_point_choice_runs_only_where_auto_is_not_the_mean(table, model, monkeypatch):
    """It costs two imputation passes (100 decodings a row for IWAE) and can only change
    positive columns, whose "auto" estimate is not their mean."""
    _, masked, _ = table
    calls = []
    original = HeterogeneousVAEImputer._clipped_codes
    monkeypatch.setattr(HeterogeneousVAEImputer, "_clipped_codes",
                        lambda self, *args: calls.append(args[-1]) or original(self, *args))
    HeterogeneousVAEImputer(model=model, **TINY).fit(masked.drop(columns="pos"))
    assert calls == []
    HeterogeneousVAEImputer(model=model, **TINY).fit(masked)
    assert sorted(calls) == ["auto", "mean"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_sample_takes_zero_draws_a_random_state_instance_and_set_output(table, model):
    _, masked, _ = table
    imp = HeterogeneousVAEImputer(model=model, **TINY).fit(masked)
    assert imp.sample(masked, 0) == []
    with pytest.raises(ValueError, match="n_draws must be a non-negative int"):
        imp.sample(masked, -1)
    a = imp.sample(masked, 2, random_state=np.random.RandomState(3))
    b = imp.sample(masked, 2, random_state=np.random.RandomState(3))
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    # like transform, sample follows set_output: an array in, a DataFrame out
    numbers = masked[["real", "count"]].astype(float).to_numpy()
    imp = HeterogeneousVAEImputer(model=model, **TINY).set_output(transform="pandas").fit(numbers)
    draws = imp.sample(numbers, 1)
    assert isinstance(draws[0], pd.DataFrame) and list(draws[0].columns) == list(imp.get_feature_names_out())


def test_early_stopping_needs_validation_and_n_epochs_counts_what_was_trained(table):
    from skorch.callbacks import EarlyStopping

    _, masked, _ = table
    with pytest.raises(ValueError, match="monitors 'valid_loss'.*validation_fraction"):
        HeterogeneousVAEImputer(callbacks=[EarlyStopping()], **TINY).fit(masked)
    imp = HeterogeneousVAEImputer(validation_fraction=0.25, callbacks=[EarlyStopping(patience=1, threshold=10.0)],
                                  **{**TINY, "max_epochs": 30}).fit(masked)
    assert imp.n_epochs_ == len(imp.history_) < 30


class _RecordWeights(Callback):
    """Records the module's parameters at the end of every epoch."""

    def initialize(self):
        self.epochs_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_.append([p.detach().clone() for p in net.module_.parameters()])


@pytest.mark.parametrize("patience", [1, 50])
def test_early_stopping_load_best_gives_the_best_epoch_weights_even_when_it_is_the_last(table, patience):
    """skorch restores only when the best epoch is not the last; the weight average must not
    stand in for the best epoch's weights in the other case."""
    from skorch.callbacks import EarlyStopping

    _, masked, _ = table
    record = _RecordWeights()
    imp = HeterogeneousVAEImputer(validation_fraction=0.25, lr=1e-3,
                                  callbacks=[("record", record), EarlyStopping(patience=patience, load_best=True)],
                                  **{**TINY, "max_epochs": 6}).fit(masked)
    losses = [row["valid_loss"] for row in imp.history_]
    best = int(np.argmin(losses))
    for got, want in zip(imp.module_.parameters(), record.epochs_[best]):
        np.testing.assert_array_equal(got.detach().numpy(), want.numpy())


def test_a_fit_that_fails_leaves_the_estimator_unfitted(table):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    class Boom(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise RuntimeError("boom")

    _, masked, _ = table
    imp = HeterogeneousVAEImputer(**TINY).fit(masked)
    with pytest.raises(RuntimeError, match="boom"):
        imp.set_params(callbacks=[Boom()], max_epochs=5).fit(masked.drop(columns="real"))
    with pytest.raises(NotFittedError):
        check_is_fitted(imp)
    with pytest.raises(NotFittedError):
        imp.transform(masked)


def test_verbose_prints_one_readable_line_per_epoch(capsys):
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 20)))
    HeterogeneousVAEImputer(verbose=1, **{**TINY, "max_epochs": 2}).fit(X)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 4  # header, rule, two epochs
    assert max(map(len, lines)) < 120, lines  # the per-column lists are in history_, not printed


def test_reserved_callback_names_and_callback_classes_are_checked_before_training(table):
    from skorch.callbacks import EarlyStopping, ProgressBar

    _, masked, _ = table
    with pytest.raises(ValueError, match="'column_nll' is taken by the imputer's own callbacks"):
        HeterogeneousVAEImputer(callbacks=[("column_nll", ProgressBar())], **TINY).fit(masked)
    with pytest.raises(ValueError, match="EarlyStopping monitors 'valid_loss'"):
        HeterogeneousVAEImputer(callbacks=[EarlyStopping], **TINY).fit(masked)

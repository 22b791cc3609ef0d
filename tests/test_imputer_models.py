"""Every model variant of HeterogeneousVAEImputer, with and without multi-objective training."""

import pickle

import numpy as np
import pandas as pd
import pytest

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
    assert hivae.net_.batch_size == 1000 and hivae.net_.lr == 1e-3
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

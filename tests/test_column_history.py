"""Per-column loss histories recorded by ColumnLossHistory."""

import numpy as np
import pandas as pd
import pytest

from heterovae import HeterogeneousVAEImputer


def _table(n=150, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    X = pd.DataFrame({
        "a": z + 0.1 * rng.normal(size=n),
        "b": np.exp(0.3 * z + 0.1 * rng.normal(size=n)),
        "c": pd.Categorical(np.where(z > 0, "hi", "lo")),
    })
    return X.mask(rng.random(X.shape) < 0.2)


@pytest.fixture(scope="module")
def fitted_with_validation():
    # kl_weight=0 makes the loss exactly the sum of the column NLLs, which
    # skorch averages on its own (from each batch's scalar loss).
    imp = HeterogeneousVAEImputer(max_epochs=4, hidden_dim=8, batch_size=16, kl_weight=0.0,
                                  validation_fraction=0.3, random_state=0)
    return imp.fit(_table())


def test_validation_column_nll_is_recorded_per_epoch_and_column(fitted_with_validation):
    history = fitted_with_validation.history_
    valid = np.array(history[:, "valid_column_nll"])
    assert valid.shape == (4, 3)
    assert np.isfinite(valid).all()
    assert history[-1, "valid_batch_count"] > 1  # several batches are weighted together


@pytest.mark.parametrize("split", ["train", "valid"])
def test_column_nlls_sum_to_skorchs_own_epoch_loss(fitted_with_validation, split):
    history = fitted_with_validation.history_
    per_column = np.array(history[:, f"{split}_column_nll"]).sum(axis=1)
    np.testing.assert_allclose(per_column, history[:, f"{split}_loss"], rtol=1e-5, atol=1e-5)


def test_validation_differs_from_training(fitted_with_validation):
    history = fitted_with_validation.history_
    assert not np.allclose(history[:, "train_column_nll"], history[:, "valid_column_nll"])


def test_no_validation_key_without_a_validation_split():
    imp = HeterogeneousVAEImputer(max_epochs=2, hidden_dim=8, random_state=0).fit(_table(60))
    assert "valid_column_nll" not in imp.history_[-1]
    assert len(imp.history_[-1, "train_column_nll"]) == 3

"""Per-column loss histories recorded by ColumnLossHistory."""

import numpy as np
import pandas as pd
import pytest
import torch

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


def test_validation_rows_hide_a_fixed_share_of_their_observed_cells():
    from heterovae.imputer import _FractionSplit
    from heterovae.training import _TensorDataset

    g = torch.Generator().manual_seed(0)
    data = _TensorDataset({"x": torch.zeros(4000, 5), "observed": torch.rand(4000, 5, generator=g) < 0.8})
    split = _FractionSplit(0.5, seed=3, hide=0.3)
    (train, valid), (_, again) = split(data), split(data)
    assert "seen" not in train.X
    seen, observed = valid.X["seen"], valid.X["observed"]
    assert torch.equal(seen, again.X["seen"])  # the same cells every epoch
    assert not (seen & ~observed).any()
    assert 1 - seen.sum() / observed.sum() == pytest.approx(0.3, abs=0.02)


def test_validation_loss_is_the_loss_of_predicting_hidden_cells():
    # with the decoder skip, reconstructing cells the model sees is nearly free; the
    # validation loss must be that of the cells hidden from it, far larger
    from heterovae.imputer import _FractionSplit
    from heterovae.training import _TensorDataset

    X = _table(300)
    imp = HeterogeneousVAEImputer(max_epochs=30, hidden_dim=16, batch_size=32, kl_weight=0.0,
                                  validation_fraction=0.3, random_state=0).fit(X)
    x, observed = imp._tensors(X)
    _, valid = _FractionSplit(0.3, imp._seed + 2, hide=imp.module_.cell_dropout)(
        _TensorDataset({"x": x, "observed": observed}))
    module = imp.module_.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        hidden = module(**valid.X)["column_nll"].sum().item()
        torch.manual_seed(0)
        all_seen = module(valid.X["x"], valid.X["observed"])["column_nll"].sum().item()
    recorded = imp.history_[-1, "valid_loss"]
    assert hidden > all_seen
    # the recorded loss was computed before the weights were averaged, so it is near, not equal
    assert abs(recorded - hidden) < abs(recorded - all_seen)

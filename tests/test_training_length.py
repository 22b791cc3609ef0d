"""max_epochs="auto": a number of steps turned into whole epochs."""

import numpy as np
import pandas as pd
import pytest
import torch

from heterovae import HeterogeneousVAEImputer
from heterovae.training import TensorBatches, _TensorDataset, epochs_for_steps, n_batches
from heterovae.vae.model import HeterogeneousVAE


def _batches_by_iterating(n_rows, batch_size):
    data = _TensorDataset({"x": torch.zeros(n_rows, 1)})
    batches = list(TensorBatches(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert sum(len(b["x"]) for b, _ in batches) == n_rows
    return len(batches)


@pytest.mark.parametrize("n_rows", [1, 2, 255, 256, 257, 258, 5198, 8000])
@pytest.mark.parametrize("batch_size", [2, 100, 256])
def test_n_batches_counts_what_iterating_yields(n_rows, batch_size):
    assert n_batches(n_rows, batch_size) == _batches_by_iterating(n_rows, batch_size)


@pytest.mark.parametrize("steps", [1, 7, 4000])
@pytest.mark.parametrize("n_rows,batch_size", [(5198, 256), (8000, 256), (257, 256), (10, 256)])
def test_epochs_for_steps_is_the_fewest_epochs_reaching_the_steps(steps, n_rows, batch_size):
    per_epoch = _batches_by_iterating(n_rows, batch_size)
    epochs = epochs_for_steps(steps, n_rows, batch_size)
    assert epochs * per_epoch >= steps
    assert epochs == 1 or (epochs - 1) * per_epoch < steps


def _table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    X = pd.DataFrame({"a": z + 0.1 * rng.normal(size=n), "c": pd.Categorical(np.where(z > 0, "hi", "lo"))})
    return X.mask(rng.random(X.shape) < 0.2)


def _with_defaults(monkeypatch, **training):
    original = HeterogeneousVAE.default_sizes
    monkeypatch.setattr(HeterogeneousVAE, "default_sizes", staticmethod(lambda n: {**original(n), **training}))


@pytest.fixture
def six_steps(monkeypatch):
    _with_defaults(monkeypatch, steps=6, min_epochs=1, epochs=50)


@pytest.mark.parametrize("validation_fraction,expected", [(0.0, 2), (0.5, 3)])
def test_auto_turns_the_models_steps_into_epochs_of_the_training_rows(six_steps, validation_fraction, expected):
    # 120 rows in batches of 40: 3 batches an epoch, 2 epochs make 6 steps; with half
    # the rows held out for validation, 60 rows make 2 batches and 3 epochs
    imp = HeterogeneousVAEImputer(hidden_dim=8, batch_size=40, validation_fraction=validation_fraction,
                                  random_state=0).fit(_table())
    assert imp.n_epochs_ == expected == len(imp.history_)
    train_steps = sum(1 for epoch in imp.history_ for batch in epoch["batches"] if "train_loss" in batch)
    assert train_steps == 6


def test_auto_stops_at_the_models_epochs_when_the_steps_would_need_more(monkeypatch):
    # 120 rows in batches of 40 make 3 steps an epoch: 30 steps would need 10 epochs
    _with_defaults(monkeypatch, steps=30, epochs=4)
    imp = HeterogeneousVAEImputer(hidden_dim=8, batch_size=40, random_state=0).fit(_table())
    assert imp.n_epochs_ == 4 == len(imp.history_)


def test_auto_trains_at_least_the_models_least_epochs_when_the_steps_take_fewer(monkeypatch):
    # 120 rows in batches of 40 make 3 steps an epoch: 6 steps are 2 epochs, raised to 5
    _with_defaults(monkeypatch, steps=6, min_epochs=5, epochs=50)
    imp = HeterogeneousVAEImputer(hidden_dim=8, batch_size=40, random_state=0).fit(_table())
    assert imp.n_epochs_ == 5 == len(imp.history_)
    # the most epochs win over the least
    _with_defaults(monkeypatch, steps=6, min_epochs=5, epochs=4)
    assert HeterogeneousVAEImputer(hidden_dim=8, batch_size=40, random_state=0).fit(_table()).n_epochs_ == 4


def test_auto_is_the_default_and_vae_defaults_to_4000_steps_within_48_to_200_epochs():
    imp = HeterogeneousVAEImputer()
    assert imp.max_epochs == "auto"
    defaults = HeterogeneousVAE.default_sizes(5)
    assert (defaults["steps"], defaults["min_epochs"], defaults["epochs"]) == (4000, 48, 200)
    # where the rule switches: 4,000 steps are 48 epochs of 84 batches of 256 rows
    assert epochs_for_steps(4000, 84 * 256, 256) == 48


def test_auto_is_100_epochs_for_models_without_a_default_number_of_steps():
    imp = HeterogeneousVAEImputer(model="iwae", hidden_dim=4, latent_dim=2, batch_size=120, n_importance_samples=2,
                                  random_state=0).fit(_table())
    assert imp.n_epochs_ == 100 == len(imp.history_)


def test_an_integer_max_epochs_is_used_as_it_is():
    imp = HeterogeneousVAEImputer(max_epochs=3, hidden_dim=8, batch_size=40, random_state=0).fit(_table())
    assert imp.n_epochs_ == 3 == len(imp.history_)

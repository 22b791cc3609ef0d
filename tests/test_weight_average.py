"""WeightAverage: the moving average of the weights, against a brute-force recursion."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback

from heterovae import HeterogeneousVAEImputer
from heterovae.training import WeightAverage


class _Snapshots(Callback):
    """Every parameter and buffer after every training step, in float64."""

    def on_train_begin(self, net, **kwargs):
        self.params, self.buffers = [], []

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            self.params.append([p.detach().double().clone() for p in net.module_.parameters()])
            self.buffers.append([b.detach().clone() for b in net.module_.buffers()])


def _reference_average(steps, decay):
    """a_1 = w_1; a_n = d_n a_{n-1} + (1 - d_n) w_n with d_n = min(decay, (1 + n) / (10 + n))."""
    average = [w.clone() for w in steps[0]]
    for n, weights in enumerate(steps[1:], start=2):
        d = min(decay, (1 + n) / (10 + n))
        average = [d * a + (1 - d) * w for a, w in zip(average, weights)]
    return average


def _fit(decay, n_rows=200, max_epochs=6):
    torch.manual_seed(0)
    X = torch.randn(n_rows, 5)
    y = X @ torch.arange(1.0, 6.0).unsqueeze(1) + 0.1 * torch.randn(n_rows, 1)
    module = torch.nn.Sequential(torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    snapshots = _Snapshots()
    net = NeuralNetRegressor(module, max_epochs=max_epochs, batch_size=32, lr=0.05, train_split=None,
                             optimizer=torch.optim.SGD, callbacks=[WeightAverage(decay), snapshots], verbose=0)
    net.fit(X, y)
    return net, snapshots


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.995])
def test_parameters_end_as_the_moving_average_of_every_step(decay):
    net, snapshots = _fit(decay)
    assert len(snapshots.params) == 6 * 7  # 200 rows in batches of 32: 7 steps an epoch
    expected = _reference_average(snapshots.params, decay)
    for param, reference in zip(net.module_.parameters(), expected):
        np.testing.assert_allclose(param.detach().double().numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    # the average is not simply the last step's weights
    last = snapshots.params[-1]
    assert any(not torch.allclose(p.detach().double(), w, atol=1e-4) for p, w in zip(net.module_.parameters(), last))


def test_zero_decay_keeps_the_last_weights():
    net, snapshots = _fit(0.0)
    for param, last in zip(net.module_.parameters(), snapshots.params[-1]):
        np.testing.assert_allclose(param.detach().double().numpy(), last.numpy(), rtol=0, atol=1e-7)


def test_buffers_are_the_trained_modules():
    net, snapshots = _fit(0.9)
    for buffer, last in zip(net.module_.buffers(), snapshots.buffers[-1]):
        assert torch.equal(buffer, last)


def test_the_averaged_copy_is_not_kept_after_training():
    net, _ = _fit(0.9)
    callback = dict(net.callbacks_)["WeightAverage"]
    assert not hasattr(callback, "average_")
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(restored.predict(np.ones((2, 5), dtype=np.float32)),
                               net.predict(np.ones((2, 5), dtype=np.float32)))


def _table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    X = pd.DataFrame({"a": z + 0.1 * rng.normal(size=n), "b": np.exp(0.3 * z),
                      "c": pd.Categorical(np.where(z > 0, "hi", "lo"))})
    return X.mask(rng.random(X.shape) < 0.2)


def test_imputer_averages_by_default_and_not_with_zero_decay():
    fast = dict(max_epochs=3, hidden_dim=8, batch_size=32, random_state=0)
    averaged = HeterogeneousVAEImputer(**fast).fit(_table())
    last = HeterogeneousVAEImputer(ema_decay=0.0, **fast).fit(_table())
    assert dict(averaged.net_.callbacks_)["weight_average"].decay == 0.995
    assert "weight_average" not in dict(last.net_.callbacks_)
    # same seed, same steps: only the averaging differs
    differs = [not torch.allclose(p, q) for p, q in zip(averaged.module_.parameters(), last.module_.parameters())]
    assert any(differs)


@pytest.mark.parametrize("bad", [1.0, -0.1, 2])
def test_imputer_rejects_decay_outside_zero_one(bad):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="ema_decay"):
        HeterogeneousVAEImputer(ema_decay=bad, max_epochs=1).fit(_table())

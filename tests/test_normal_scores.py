"""NormalScores against scikit-learn's QuantileTransformer and closed-form properties."""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.preprocessing import QuantileTransformer

from heterovae.normal_scores import NormalScores

EDGE = norm.ppf(0.5 / 64)


def _columns(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = np.stack([
        rng.lognormal(size=n),                                               # skewed
        np.where(rng.random(n) < 0.4, 0.0, rng.exponential(size=n)),         # zero-inflated
        rng.integers(0, 5, n).astype(float),                                 # few distinct values
        rng.normal(size=n),
    ], 1)
    x[rng.random(x.shape) < 0.15] = np.nan
    return x


def test_scores_inside_the_training_range_equal_quantile_transformers():
    x = _columns()
    ours = NormalScores(4).fit(x)(torch.as_tensor(np.nan_to_num(x, nan=1.0))).numpy()
    reference = QuantileTransformer(n_quantiles=65, output_distribution="normal", subsample=None).fit(x)
    expected = np.clip(reference.transform(np.nan_to_num(x, nan=1.0)), EDGE, -EDGE)
    # scikit-learn sends the training minimum and maximum to +-5.2; we do not (next test)
    inside = (np.nan_to_num(x, nan=1.0) > np.nanmin(x, 0)) & (np.nan_to_num(x, nan=1.0) < np.nanmax(x, 0))
    assert inside.sum() > 1500
    np.testing.assert_allclose(ours[inside], expected[inside], atol=1e-5)


def test_a_value_repeated_over_many_quantiles_sits_in_the_middle_of_its_mass():
    x = _columns()[:, [1]]
    zeros_share = np.mean(x[~np.isnan(x)] == 0.0)
    score = NormalScores(1).fit(x)(torch.zeros(1, 1, dtype=torch.float64)).item()
    assert score == pytest.approx(norm.ppf(zeros_share / 2), abs=0.05)


def test_values_beyond_the_training_range_are_clipped_not_extrapolated():
    x = _columns()
    scores = NormalScores(4).fit(x)(torch.as_tensor([[-1e9] * 4, [1e9] * 4], dtype=torch.float64))
    torch.testing.assert_close(scores, torch.tensor([[EDGE] * 4, [-EDGE] * 4], dtype=torch.float64))


def test_scores_barely_move_under_a_monotone_transform_of_the_column():
    # exact at the quantiles; between them the interpolation is linear in the values
    x = _columns()[:, [0, 3]]
    transformed = np.stack([np.log(x[:, 0]), np.exp(x[:, 1])], 1)
    observed = torch.as_tensor(~np.isnan(x))
    plain = NormalScores(2).fit(x)(torch.as_tensor(np.nan_to_num(x)))[observed]
    again = NormalScores(2).fit(transformed)(torch.as_tensor(np.nan_to_num(transformed, nan=1.0)))[observed]
    assert (plain - again).abs().max() < 0.1
    assert (plain - again).abs().mean() < 0.01


def test_scores_are_non_decreasing_and_missing_cells_do_not_enter_the_fit():
    x = _columns()
    grid = torch.linspace(-3, 8, 500, dtype=torch.float64).unsqueeze(1).repeat(1, 4)
    scores = NormalScores(4).fit(x)(grid)
    assert torch.all(scores[1:] >= scores[:-1])
    with_more_missing = x.copy()
    with_more_missing[::2] = np.nan
    refit = NormalScores(4).fit(np.concatenate([x, np.full((300, 4), np.nan)]))
    torch.testing.assert_close(refit.knots, NormalScores(4).fit(x).knots)


def test_quantiles_are_buffers_that_follow_the_module():
    scores = NormalScores(4).fit(_columns())
    state = scores.state_dict()
    assert set(state) == {"levels", "knots"}
    copy = NormalScores(4)
    copy.load_state_dict(state)
    values = torch.randn(7, 4)
    torch.testing.assert_close(copy(values), scores(values))
    assert copy(values).dtype == torch.float32

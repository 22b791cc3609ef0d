"""Aggregator composition and rescaling; registry specs, errors and the cocktail grid."""

import itertools
import pickle

import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid

from heterovae.moo import (
    IMTLG,
    MGDAUB,
    Aggregator,
    DIRECTION_METHODS,
    MAGNITUDE_METHODS,
    PCGrad,
    build,
    cocktail,
    method_hyperparameters,
    validate_method_params,
    validate_spec,
)

from ._inputs import conflicting_matrix, make_method


def test_rescales_to_the_plain_sum_norm_keeping_the_direction():
    G = conflicting_matrix()
    raw = Aggregator(magnitude=MGDAUB(), rescale=False)(G)
    out = Aggregator(magnitude=MGDAUB())(G)
    torch.testing.assert_close(raw, MGDAUB().weights(G) @ G)
    torch.testing.assert_close(out.norm(), G.sum(0).norm())
    torch.testing.assert_close(out / out.norm(), raw / raw.norm())


@pytest.mark.parametrize("direction", sorted(DIRECTION_METHODS))
@pytest.mark.parametrize("magnitude", ["imtlg", "mgda-ub"])
def test_composition_applies_weights_then_direction(magnitude, direction):
    """The aggregator shares one Gram matrix between the two methods; same result as doing it by hand."""
    G = conflicting_matrix()
    w = make_method(magnitude, 6).weights(G)
    expected = make_method(direction, 6).combine(w[:, None] * G)
    out = Aggregator(make_method(magnitude, 6), make_method(direction, 6), rescale=False)(G)
    torch.testing.assert_close(out, expected)


def test_no_methods_is_the_plain_sum():
    G = conflicting_matrix()
    torch.testing.assert_close(Aggregator()(G), G.sum(0))


def test_zero_outputs_are_guarded():
    G = torch.zeros(3, 5)
    assert torch.equal(Aggregator(direction=PCGrad())(G), torch.zeros(5))
    # exactly cancelling gradients: the plain step is zero, so is ours
    g = torch.randn(5)
    out = Aggregator(magnitude=IMTLG())(torch.stack([g, -g]))
    assert torch.isfinite(out).all() and out.norm() == 0


def test_does_not_modify_its_input_and_has_no_graph():
    G = conflicting_matrix().requires_grad_()
    before = G.detach().clone()
    out = build(("imtlg", "pcgrad"), G.shape[0])(G)
    assert not out.requires_grad
    assert torch.equal(G.detach(), before)


@pytest.mark.parametrize("spec", [s for s in cocktail(include_newer=True) if s is not None])
def test_non_finite_input_names_the_tasks(spec):
    G = conflicting_matrix()
    G[2, 3] = float("nan")
    G[4, 0] = float("inf")
    with pytest.raises(ValueError, match=r"task\(s\) \[2, 4\] contain NaN or inf"):
        build(spec, 6)(G, torch.ones(6, dtype=G.dtype))
    losses = torch.ones(6, dtype=G.dtype)
    losses[1] = float("nan")
    if "gradnorm" in spec:  # the only method that reads the losses
        with pytest.raises(ValueError, match=r"task\(s\) \[1\]"):
            build(spec, 6)(conflicting_matrix(), losses)
    else:
        assert torch.isfinite(build(spec, 6)(conflicting_matrix(), losses)).all()


def test_type_checks():
    with pytest.raises(TypeError, match="magnitude must be a MagnitudeMethod"):
        Aggregator(magnitude=PCGrad())
    with pytest.raises(TypeError, match="direction must be a DirectionMethod"):
        Aggregator(direction=IMTLG())


def test_aggregator_pickles_with_seeded_generators():
    agg = build(("gradnorm", "pcgrad"), 6, {"pcgrad": {"seed": 1}})
    G = conflicting_matrix()
    agg(G, torch.ones(6))  # creates the generator
    restored = pickle.loads(pickle.dumps(agg))
    assert restored.spec == ("gradnorm", "pcgrad")


# --------------------------------------------------------------------- registry

@pytest.mark.parametrize("spec, expected", [
    (None, ("none", "none")),
    ("none", ("none", "none")),
    ("pcgrad", ("none", "pcgrad")),
    ("IMTLG", ("imtlg", "none")),
    (("imtlg", "pcgrad"), ("imtlg", "pcgrad")),
    (("pcgrad", "imtlg"), ("imtlg", "pcgrad")),
    (["none", "graddrop"], ("none", "graddrop")),
    (("mgda-ub",), ("mgda-ub", "none")),
    (("none", "none"), ("none", "none")),
])
def test_validate_spec(spec, expected):
    assert validate_spec(spec) == expected


@pytest.mark.parametrize("spec", ["pcgard", ("imtlg", "nope"), 3, ("imtlg", "pcgrad", "none"), ()])
def test_bad_specs_list_the_valid_names(spec):
    with pytest.raises(ValueError) as info:
        validate_spec(spec)
    for name in list(MAGNITUDE_METHODS) + list(DIRECTION_METHODS):
        assert name in str(info.value)


def test_two_methods_of_one_family_are_rejected():
    with pytest.raises(ValueError, match="two methods of the same family"):
        validate_spec(("imtlg", "gradnorm"))
    with pytest.raises(ValueError, match="two methods of the same family"):
        validate_spec(("pcgrad", "graddrop"))


def test_build_returns_none_for_plain_training():
    for spec in (None, "none", ("none", "none")):
        assert build(spec, 4) is None


def test_build_passes_method_params():
    agg = build(("graddrop", "gradnorm"), 4, {"gradnorm": {"alpha": 0.3}, "graddrop": {"leakage": 0.2},
                                              "pcgrad": {"seed": 1}})  # unused entries are fine
    assert agg.spec == ("gradnorm", "graddrop")
    assert agg.magnitude.alpha == 0.3 and agg.magnitude.n_tasks == 4
    assert agg.direction.leakage == 0.2
    assert build("imtlg", 4, rescale=False).rescale is False


def test_unknown_params_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'leak'; valid parameters of graddrop are leakage, seed"):
        build("graddrop", 3, {"graddrop": {"leak": 0.1}})
    with pytest.raises(ValueError, match="unknown method 'gradnrom'"):
        validate_method_params({"gradnrom": {"alpha": 1.0}})
    with pytest.raises(ValueError, match="must be a dict of parameters"):
        validate_method_params({"gradnorm": 1.0})
    with pytest.raises(ValueError, match="n_tasks must be a positive int"):
        build("imtlg", 0)


def test_bad_param_values_name_the_parameter():
    with pytest.raises(ValueError, match="gradnorm: alpha must be >= 0"):
        build("gradnorm", 3, {"gradnorm": {"alpha": -2}})
    with pytest.raises(ValueError, match="mgda-ub: solver must be one of"):
        build("mgda-ub", 3, {"mgda-ub": {"solver": "cvx"}})


def test_method_hyperparameters():
    assert method_hyperparameters("gradnorm") == {"alpha": 1.5, "min_weight": 1e-3}
    assert method_hyperparameters("graddrop") == {"leakage": 0.0, "seed": None}
    assert method_hyperparameters("upgrad") == {}
    assert method_hyperparameters("None") == {}  # no method, no hyperparameters
    with pytest.raises(ValueError, match="unknown method .bogus."):
        method_hyperparameters("bogus")


def test_cocktail_has_the_twelve_paper_combinations():
    specs = cocktail()
    assert len(specs) == 12 and specs[0] is None
    canonical = {validate_spec(s) for s in specs}
    assert canonical == set(itertools.product(("none", "gradnorm", "mgda-ub", "imtlg"),
                                              ("none", "graddrop", "pcgrad")))


def test_cocktail_with_newer_methods():
    specs = cocktail(include_newer=True)
    canonical = {validate_spec(s) for s in specs}
    assert len(specs) == len(canonical) == (len(MAGNITUDE_METHODS) + 1) * (len(DIRECTION_METHODS) + 1) == 30
    assert {m for m, _ in canonical} == {"none", *MAGNITUDE_METHODS}
    assert {d for _, d in canonical} == {"none", *DIRECTION_METHODS}


class _Estimator(BaseEstimator):
    def __init__(self, moo=None):
        self.moo = moo


def test_cocktail_is_a_grid_search_value():
    grid = list(ParameterGrid({"moo": cocktail()}))
    assert len(grid) == 12
    for params in grid:
        est = clone(_Estimator().set_params(**params))
        assert est.moo == params["moo"]
        build(est.moo, 5)


# methods that read no Gram matrix (GradDrop works per coordinate, GradNorm on row norms)
_GRAM_FREE = [("none", "graddrop"), ("gradnorm", "none"), ("gradnorm", "graddrop")]


@pytest.mark.parametrize("spec", [s for s in cocktail(include_newer=True) if s not in [None, *_GRAM_FREE]])
def test_overflowing_finite_gradients_raise_instead_of_nan(spec):
    # finite entries whose squares overflow float32: the Gram matrix is not finite
    G = torch.full((3, 10), 3e37)
    G[1] *= -1
    with pytest.raises(ValueError, match="overflow"):
        build(spec, 3)(G, torch.ones(3))


@pytest.mark.parametrize("spec", _GRAM_FREE)
@pytest.mark.parametrize("value", [3e37, 1e19])
def test_rescaling_survives_a_norm_that_overflows(spec, value):
    """A finite float32 step whose norm overflows was rescaled to zero; the rescaled norm must be exact."""
    G = torch.full((3, 10), value)
    G[1] *= -1
    d = build(spec, 3)(G, torch.ones(3))
    assert torch.isfinite(d).all()
    plain = torch.linalg.vector_norm(G.double().sum(0))
    assert float(torch.linalg.vector_norm(d.double())) == pytest.approx(float(plain), rel=1e-6)


def test_numpy_integers_are_accepted():
    """Grid searches often produce numpy scalars."""
    import numpy as np

    agg = build(("gradnorm", "pcgrad"), np.int64(4), {"pcgrad": {"seed": np.int64(3)}})
    assert agg.magnitude.n_tasks == 4 and agg.direction.seed == 3
    assert build("mgda-ub", 4, {"mgda-ub": {"max_iter": np.int32(7)}}).magnitude.max_iter == 7
    with pytest.raises(ValueError, match="max_iter must be an integer, got 2.5"):
        build("mgda-ub", 4, {"mgda-ub": {"max_iter": 2.5}})


def test_weights_at_rounding_level_are_zeroed_but_nan_is_kept():
    from heterovae.moo.aggregator import _drop_rounding_noise

    w = torch.tensor([0.75, 0.25, 0.0, 3.8e-19], dtype=torch.float64)
    ones = torch.ones(4, dtype=torch.float64)
    torch.testing.assert_close(_drop_rounding_noise(w, ones), torch.tensor([0.75, 0.25, 0.0, 0.0], dtype=torch.float64))
    kept = _drop_rounding_noise(torch.tensor([1.0, float("nan"), 1e-30]), torch.ones(3))
    assert kept[0] == 1.0 and torch.isnan(kept[1])


def test_rounding_level_is_judged_by_each_task_share_not_its_weight():
    """IMTL-G weights go as 1 / ||g_k||: a tiny weight on a huge gradient is a full share."""
    from heterovae.moo.aggregator import _drop_rounding_noise

    w = torch.tensor([1e4, 1.0, 1e-9])
    norms = torch.tensor([1e-4, 1.0, 1e9])
    torch.testing.assert_close(_drop_rounding_noise(w, norms), w)


@pytest.mark.parametrize("method", ["imtlg", "nash-mtl"])
def test_gradients_spanning_many_orders_all_descend(method):
    torch.manual_seed(0)
    G = torch.randn(3, 50) * torch.tensor([1e-4, 1.0, 1e4])[:, None]
    units = G / G.norm(dim=1, keepdim=True)
    projections = units @ build(method, 3, rescale=False)(G)
    assert (projections > 0).all(), projections
    if method == "imtlg":  # impartial: equal projections on every unit gradient
        torch.testing.assert_close(projections, projections.mean().expand(3), rtol=1e-3, atol=0)


@pytest.mark.parametrize("params", [
    {"gradnorm": {"alpha": float("nan")}},
    {"gradnorm": {"alpha": float("inf")}},
    {"gradnorm": {"min_weight": float("nan")}},
    {"imtlg": {"rtol": float("nan")}},
    {"aligned-mtl": {"rtol": float("nan")}},
    {"nash-mtl": {"ridge": float("inf")}},
])
def test_non_finite_hyperparameters_are_rejected(params):
    (name, values), = params.items()
    (param, _), = values.items()
    with pytest.raises(ValueError, match=f"{name}: {param} must be finite"):
        build(name, 3, params)


@pytest.mark.parametrize("name", ["imtlg", "aligned-mtl"])
@pytest.mark.parametrize("rtol", [1.0, 5.0])
def test_rtol_of_one_or_more_is_rejected(name, rtol):
    """It would cut every eigenvalue: plain training (IMTL-G) or no step at all (Aligned-MTL), silently."""
    with pytest.raises(ValueError, match="rtol must be < 1"):
        build(name, 3, {name: {"rtol": rtol}})


def test_params_of_methods_outside_the_spec_are_checked_too():
    """One dict serves a whole cocktail grid: a bad value must fail every candidate, not some."""
    with pytest.raises(ValueError, match="pcgrad: seed must be >= 0"):
        build("imtlg", 3, {"pcgrad": {"seed": -1}})
    with pytest.raises(ValueError, match="seed must be <= "):
        build("pcgrad", 3, {"pcgrad": {"seed": 2**70}})


def test_a_method_named_twice_is_rejected():
    with pytest.raises(ValueError, match="names imtlg twice"):
        build("imtlg", 3, {"IMTLG": {"rtol": 1e-5}, "imtlg": {"rtol": 1e-4}})


def test_graddrop_leakage_length_is_checked_at_build():
    with pytest.raises(ValueError, match="leakage has 2 values but there are 4 tasks"):
        build("graddrop", 4, {"graddrop": {"leakage": [0.1, 0.2]}})


@pytest.mark.parametrize("seed", [5, 49, 68, 71, 94, 106])
def test_tasks_excluded_by_mgda_do_not_change_the_upgrad_step(seed):
    """The min-norm point, hence MGDA's weights on the others, is the same without the excluded rows;
    UPGrad projects onto the cone of every row with a non-zero norm, so a 1e-18 weight counts as a task."""
    direction = "upgrad"
    g = torch.Generator().manual_seed(seed)
    K = int(torch.randint(3, 7, (1,), generator=g))
    G = torch.randn(K, 8, generator=g, dtype=torch.float64) + 0.5 * torch.randn(1, 8, generator=g, dtype=torch.float64)
    w = MGDAUB().weights(G)
    keep = w > 1e-12  # the QP leaves ~1e-18 on the excluded tasks
    assert not keep.all()
    full = build(("mgda-ub", direction), K, rescale=False)(G)
    reduced = build(("mgda-ub", direction), int(keep.sum()), rescale=False)(G[keep])
    torch.testing.assert_close(full, reduced, rtol=1e-9, atol=1e-12)

"""Properties every method of the registries must have (torchjd-style shared tests)."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from heterovae.moo import DIRECTION_METHODS, MAGNITUDE_METHODS, build, cocktail

from ._inputs import ALL_METHODS, MATRICES, apply, make_method, random_matrix

DTYPES = [torch.float32, torch.float64]

#: magnitude methods whose weights do not change when G is multiplied by c > 0
SCALE_INVARIANT_WEIGHTS = {"mgda-ub", "imtlg"}
#: methods that must never synchronise with the host (they run on every step).
#: IMTL-G and Aligned-MTL are free of Python-level syncs too (this test passes for
#: them), but torch.linalg.eigh synchronises inside on CUDA, so they are not listed.
SYNC_FREE = {"gradnorm", "pcgrad", "graddrop"}
NO_PYTHON_SYNC = SYNC_FREE | {"imtlg", "aligned-mtl"}


def test_registries_cover_every_method():
    assert {"gradnorm", "mgda-ub", "imtlg"} <= set(MAGNITUDE_METHODS)
    assert {"pcgrad", "graddrop"} <= set(DIRECTION_METHODS)
    assert len(DIRECTION_METHODS) >= 4  # at least two newer methods
    for name, cls in ALL_METHODS.items():
        assert cls.name == name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("matrix", sorted(MATRICES))
@pytest.mark.parametrize("name", sorted(ALL_METHODS))
def test_expected_structure(name, matrix, dtype):
    G = MATRICES[matrix](dtype)
    before = G.clone()
    method = make_method(name, G.shape[0])
    out = apply(method, G)
    expected = (G.shape[0],) if name in MAGNITUDE_METHODS else (G.shape[1],)
    assert out.shape == expected
    assert out.dtype == G.dtype and out.device == G.device
    assert torch.isfinite(out).all(), out
    assert not out.requires_grad
    torch.testing.assert_close(G, before, rtol=0, atol=0)  # input untouched


@pytest.mark.parametrize("name", sorted(MAGNITUDE_METHODS))
def test_magnitude_weights_are_nonnegative_except_imtlg(name):
    for matrix in sorted(MATRICES):
        G = MATRICES[matrix](torch.float64)
        w = apply(make_method(name, G.shape[0]), G)
        if name != "imtlg":  # IMTL-G's closed form does not constrain signs (documented)
            assert (w >= 0).all(), (matrix, w)


@pytest.mark.parametrize("name", sorted(ALL_METHODS))
def test_zero_matrix_gives_zero_direction(name):
    G = torch.zeros(4, 10, dtype=torch.float64)
    agg = build(name, 4)
    losses = torch.ones(4, dtype=torch.float64)
    torch.testing.assert_close(agg(G, losses), torch.zeros(10, dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ALL_METHODS))
def test_single_task_reduces_to_its_gradient(name, dtype):
    G = MATRICES["single_task"](dtype)
    out = apply(make_method(name, 1), G)
    if name in MAGNITUDE_METHODS:
        assert out.shape == (1,) and out.item() > 0
    else:
        # a positive multiple of the gradient
        cos = torch.dot(out, G[0]) / (out.norm() * G[0].norm())
        assert cos.item() == pytest.approx(1.0, abs=1e-5)
    agg = build(name, 1)
    torch.testing.assert_close(agg(G, torch.ones(1, dtype=dtype)), G[0])


@pytest.mark.parametrize("name", sorted({**MAGNITUDE_METHODS, **DIRECTION_METHODS}))
def test_single_task_draws_no_random_numbers(name):
    """With one column, a method must leave training exactly as without it: same RNG stream."""
    G = MATRICES["single_task"](torch.float32)
    before = torch.get_rng_state()
    build(name, 1)(G, torch.ones(1))
    assert torch.equal(torch.get_rng_state(), before)


def _permutation_inputs():
    return [MATRICES[m](torch.float64) for m in ("random", "conflicting", "zero_rows", "extreme_scales")]


@pytest.mark.parametrize("name", sorted(MAGNITUDE_METHODS))
def test_magnitude_weights_permute_with_rows(name):
    for G in _permutation_inputs():
        perm = torch.randperm(G.shape[0], generator=torch.Generator().manual_seed(0))
        losses = torch.linspace(1.0, 2.0, G.shape[0], dtype=G.dtype)
        w = make_method(name, G.shape[0]).weights(G, losses)
        w_perm = make_method(name, G.shape[0]).weights(G[perm], losses[perm])
        torch.testing.assert_close(w_perm, w[perm], rtol=1e-6, atol=1e-9)


# GradDrop draws one number per coordinate, shared by the tasks: with the same
# seed it is invariant too. PCGrad draws per-task orders (see test_pcgrad.py).
@pytest.mark.parametrize("name", sorted(set(DIRECTION_METHODS) - {"pcgrad"}))
def test_direction_invariant_to_row_order(name):
    for G in _permutation_inputs():
        perm = torch.randperm(G.shape[0], generator=torch.Generator().manual_seed(0))
        d = make_method(name, G.shape[0]).combine(G)
        d_perm = make_method(name, G.shape[0]).combine(G[perm])
        scale = G.abs().max()
        torch.testing.assert_close(d_perm / scale, d / scale, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("c", [1e-3, 7.0])
@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT_WEIGHTS))
def test_weights_invariant_to_positive_scaling(name, c):
    G = MATRICES["conflicting"](torch.float64)
    w = make_method(name, G.shape[0]).weights(G)
    torch.testing.assert_close(make_method(name, G.shape[0]).weights(c * G), w, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("c", [1e-3, 7.0])
@pytest.mark.parametrize("name", sorted(DIRECTION_METHODS))
def test_direction_is_positively_homogeneous(name, c):
    G = MATRICES["conflicting"](torch.float64)
    d = make_method(name, G.shape[0]).combine(G)
    torch.testing.assert_close(make_method(name, G.shape[0]).combine(c * G), c * d, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(ALL_METHODS))
def test_bad_input_raises_clear_errors(name):
    method = make_method(name, 3)
    call = (lambda g: method.weights(g, torch.ones(3))) if name in MAGNITUDE_METHODS else method.combine
    with pytest.raises(ValueError, match="G must have shape"):
        call(torch.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        call(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        call([[1.0, 2.0]])


class _NoHostSync(TorchFunctionMode):
    """Fails on any tensor operation that copies data to the host."""

    FORBIDDEN = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.FORBIDDEN:
            raise AssertionError(f"host synchronisation through Tensor.{func.__name__}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", sorted(NO_PYTHON_SYNC))
def test_no_host_synchronisation(name, monkeypatch):
    # PCGrad's and IMTL-G's CPU paths use numpy views of CPU memory (no sync there); check the device path
    monkeypatch.setattr("heterovae.moo.pcgrad.NUMPY_ON_CPU", False)
    monkeypatch.setattr("heterovae.moo.imtlg.NUMPY_ON_CPU", False)
    G = MATRICES["conflicting"](torch.float32)
    agg = build(name, G.shape[0], check_finite=False)
    losses = torch.linspace(1.0, 2.0, G.shape[0])
    with _NoHostSync():
        agg(G, losses)
        agg(G, losses)  # GradNorm: second call takes the other branch of its state


def test_no_host_sync_detector_catches_a_sync():
    with pytest.raises(AssertionError, match="host synchronisation"):
        with _NoHostSync():
            build("upgrad", 3, check_finite=False)(random_matrix(3, 5))  # quadprog needs the Gram on the host


def test_finiteness_check_is_a_host_sync_that_can_be_turned_off():
    with pytest.raises(AssertionError, match="host synchronisation"):
        with _NoHostSync():
            build("pcgrad", 3)(random_matrix(3, 5))


def test_frank_wolfe_mgda_is_sync_free():
    G = MATRICES["conflicting"](torch.float32)
    agg = build("mgda-ub", G.shape[0], {"mgda-ub": {"solver": "frank-wolfe", "max_iter": 5}}, check_finite=False)
    with _NoHostSync():
        agg(G)


@pytest.mark.parametrize("spec", cocktail(include_newer=True))
def test_every_cocktail_spec_aggregates(spec):
    G = MATRICES["conflicting"](torch.float32)
    agg = build(spec, G.shape[0])
    if spec is None:
        assert agg is None
        return
    d = agg(G, torch.linspace(1.0, 2.0, G.shape[0]))
    assert d.shape == (G.shape[1],) and torch.isfinite(d).all()
    assert d.norm().item() == pytest.approx(G.sum(0).norm().item(), rel=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", cocktail(include_newer=True)[1:])
def test_cuda_matches_cpu(spec):
    G = MATRICES["conflicting"](torch.float64)
    losses = torch.linspace(1.0, 2.0, G.shape[0], dtype=torch.float64)
    cpu = build(spec, G.shape[0])
    gpu = build(spec, G.shape[0]).cuda()
    d_gpu = gpu(G.cuda(), losses.cuda())
    assert d_gpu.device.type == "cuda" and torch.isfinite(d_gpu).all()
    if all(ALL_METHODS[m].deterministic for m in cpu.spec if m != "none"):
        torch.testing.assert_close(d_gpu.cpu(), cpu(G, losses), rtol=1e-6, atol=1e-9)

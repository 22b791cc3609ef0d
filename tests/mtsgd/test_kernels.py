
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from heterovae.mtsgd import KERNELS, RBFKernel, get_kernel, median_bandwidth
from heterovae.mtsgd.kernels import pairwise_sq_distances

from ._references import KERNEL_REFERENCES, float64, kernel_pair  # noqa: F401

pytestmark = pytest.mark.usefixtures("float64")


def test_every_registered_kernel_has_an_independent_reference():
    assert set(KERNELS) == set(KERNEL_REFERENCES)
    for name, cls in KERNELS.items():
        assert KERNEL_REFERENCES[name][0] is cls


@pytest.mark.parametrize("m", [2, 3, 7, 10])
def test_median_bandwidth_matches_numpy(m):
    rng = np.random.default_rng(m)
    x = rng.normal(size=(m, 4)) * 3.0
    expected = np.median(pdist(x)) ** 2 / np.log(m + 1)
    got = median_bandwidth(torch.tensor(x))
    np.testing.assert_allclose(got.item(), expected, rtol=1e-10)


def test_median_bandwidth_degenerate_cases_fall_back_to_one():
    assert median_bandwidth(torch.randn(1, 3)).item() == 1.0
    assert median_bandwidth(torch.ones(5, 3)).item() == 1.0


def test_gram_matches_scipy_distances(kernel_pair):
    cls, scalar = kernel_pair
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    h = 1.7
    got = cls(bandwidth=h).gram(torch.tensor(x)).numpy()
    expected = np.array(
        [[scalar(torch.tensor(a), torch.tensor(b), h).item() for b in x] for a in x]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    # and the RBF against scipy's distances directly
    if cls is RBFKernel:
        np.testing.assert_allclose(got, np.exp(-cdist(x, x, "sqeuclidean") / h))


@pytest.mark.parametrize("bandwidth", ["median", 0.8])
def test_repulsion_and_trace_match_autograd(kernel_pair, bandwidth):
    cls, scalar = kernel_pair
    torch.manual_seed(1)
    x = torch.randn(4, 3)
    kern = cls(bandwidth=bandwidth)
    terms = kern(x)
    h = terms.bandwidth.item()
    m, p = x.shape
    rep = torch.zeros(m, p)
    trace = 0.0
    for i in range(m):
        for j in range(m):
            xj = x[j].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(scalar(xj, x[i], h), xj)
            rep[i] += g / m  # grad_{x_j} k(x_j, x_i)
            hess = torch.autograd.functional.hessian(
                lambda a, b: scalar(a, b, h), (x[i], x[j])
            )
            trace += torch.trace(hess[0][1]).item() / m**2  # tr grad_a grad_b k
    torch.testing.assert_close(terms.repulsion, rep)
    assert terms.trace.item() == pytest.approx(trace, rel=1e-10)


@pytest.mark.parametrize("offset", [0.0, 100.0, -1e3])
def test_float32_terms_do_not_depend_on_where_the_particles_sit(kernel_pair, offset):
    """Far from the origin relative to their spread, the |a|^2 + |b|^2 - 2ab expansion
    cancelled in float32: most distances came out 0 and the bandwidth fell back to 1."""
    cls, _ = kernel_pair
    rng = np.random.default_rng(0)
    spread = 0.01 * rng.normal(size=(30, 10))
    exact = cls()(torch.tensor(spread))  # float64 at the origin: the reference
    terms = cls()(torch.tensor(offset + spread, dtype=torch.float32))
    np.testing.assert_allclose(terms.bandwidth.item(), exact.bandwidth.item(), rtol=1e-2)
    np.testing.assert_allclose(terms.gram.numpy(), exact.gram.numpy(), atol=1e-2)
    scale = exact.repulsion.abs().max().item()
    np.testing.assert_allclose(terms.repulsion.numpy(), exact.repulsion.numpy(), atol=3e-2 * scale)


def test_kernel_does_not_track_gradients_nor_mutate_input():
    x = torch.randn(4, 2, requires_grad=True)
    before = x.detach().clone()
    terms = RBFKernel()(x)
    assert not terms.gram.requires_grad and not terms.repulsion.requires_grad
    torch.testing.assert_close(x.detach(), before)


@pytest.mark.parametrize("bad", ["mean", -1.0, 0.0, float("nan"), True, None])
def test_bad_bandwidth_is_rejected(bad):
    with pytest.raises((ValueError, TypeError), match="bandwidth"):
        RBFKernel(bandwidth=bad)


def test_get_kernel():
    assert isinstance(get_kernel("rbf"), RBFKernel)
    k = RBFKernel(2.0)
    assert get_kernel(k) is k
    with pytest.raises(ValueError, match="unknown kernel 'gauss'"):
        get_kernel("gauss")
    with pytest.raises(TypeError, match="kernel must be"):
        get_kernel(3)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.randn(3), "shape"),
        (torch.ones(3, 2, dtype=torch.int64), "floating"),
        (torch.tensor([[0.0, float("nan")]]), "NaN"),
    ],
)
def test_bad_particles_are_rejected(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RBFKernel()(x)


@pytest.mark.parametrize("offset", [100.0, -1e3])
def test_float32_distances_gram_and_bandwidth_far_from_the_origin(offset):
    rng = np.random.default_rng(0)
    x64 = offset + 0.01 * rng.normal(size=(30, 10))
    x32 = torch.tensor(x64, dtype=torch.float32)
    exact = cdist(x64, x64, "sqeuclidean")
    np.testing.assert_allclose(pairwise_sq_distances(x32).double().numpy(), exact, rtol=1e-2, atol=1e-2 * exact.max())
    h = np.median(pdist(x64)) ** 2 / np.log(31)
    np.testing.assert_allclose(median_bandwidth(x32).item(), h, rtol=1e-2)
    np.testing.assert_allclose(RBFKernel().gram(x32).double().numpy(), np.exp(-exact / h), atol=1e-2)


@pytest.mark.parametrize("m", [4, 5, 8])  # 6, 10, 28 pairs: numpy's even-count median
def test_median_bandwidth_matches_numpy_even_pair_counts(m):
    rng = np.random.default_rng(m)
    x = rng.normal(size=(m, 4)) * 3.0
    expected = np.median(pdist(x)) ** 2 / np.log(m + 1)
    np.testing.assert_allclose(median_bandwidth(torch.tensor(x)).item(), expected, rtol=1e-10)

import math
import warnings

import numpy as np
import pytest
import torch

from heterovae.mtsgd import (
    MultiTargetSampler,
    moo_svgd_direction,
    mtsgd_direction,
    simplex_min_norm,
    stein_gram,
)

from ._references import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian_mixture(means, weights=(0.7, 0.3), var=0.5):
    """Unnormalised log-density of a 2-D Gaussian mixture with covariance var * I."""
    mu = torch.tensor(means, dtype=torch.float32)
    logw = torch.log(torch.tensor(weights, dtype=torch.float32))

    def log_prob(x):
        d2 = ((x[:, None, :] - mu.to(x)) ** 2).sum(-1)
        return torch.logsumexp(logw.to(x) - d2 / (2 * var), dim=1)

    return log_prob


#: The toy problem of Phan et al. (2022): three mixtures whose only common
#: high-density region is around the origin.
TOY_TARGETS = [
    gaussian_mixture([(4.0, -4.0), (0.0, 0.5)]),
    gaussian_mixture([(-4.0, 4.0), (0.5, 0.0)]),
    gaussian_mixture([(-3.0, -3.0), (0.0, 0.0)]),
]
FAR_MODES = torch.tensor([[4.0, -4.0], [-4.0, 4.0], [-3.0, -3.0]])


def quadratic(center):
    c = torch.tensor(center)
    return lambda x: -0.5 * ((x - c.to(x)) ** 2).sum(1)


def test_grad_is_minus_the_direction_so_sgd_moves_along_it():
    torch.manual_seed(0)
    x0 = torch.randn(6, 2, dtype=torch.float64)
    sampler = MultiTargetSampler(TOY_TARGETS, x0, optimizer=torch.optim.SGD, lr=0.1)
    scores = sampler.scores()
    direction, w = mtsgd_direction(x0, scores)
    sampler.step()
    torch.testing.assert_close(sampler.particles.grad, -direction)
    torch.testing.assert_close(sampler.particles.detach(), x0 + 0.1 * direction)
    torch.testing.assert_close(sampler.weights_history[0], w)


def test_scores_match_autograd_of_each_target():
    torch.manual_seed(1)
    x0 = torch.randn(4, 2, dtype=torch.float64)
    sampler = MultiTargetSampler(TOY_TARGETS, x0)
    for k, f in enumerate(TOY_TARGETS):
        x = x0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(x).sum(), x)
        torch.testing.assert_close(sampler.scores()[k], g)


def test_own_optimizer_via_set_grad():
    torch.manual_seed(2)
    x0 = torch.randn(5, 2)
    sampler = MultiTargetSampler(TOY_TARGETS, x0, method="moo-svgd", optimizer=None)
    with pytest.raises(RuntimeError, match="optimizer=None"):
        sampler.step()
    opt = torch.optim.SGD(sampler.parameters(), lr=0.05)
    expected = moo_svgd_direction(x0, sampler.scores())
    w = sampler.set_grad()
    opt.step()
    torch.testing.assert_close(sampler.particles.detach(), x0 + 0.05 * expected)
    assert w.shape == (5, 3)


def test_caller_input_is_not_mutated_and_runs_are_reproducible():
    x0 = np.random.default_rng(0).normal(size=(8, 2))
    before = x0.copy()
    a = MultiTargetSampler(TOY_TARGETS, x0).run(5)
    b = MultiTargetSampler(TOY_TARGETS, x0).run(5)
    np.testing.assert_array_equal(x0, before)
    torch.testing.assert_close(a.particles, b.particles, rtol=0, atol=0)
    t0 = torch.tensor(x0)
    MultiTargetSampler(TOY_TARGETS, t0).run(3)
    np.testing.assert_array_equal(t0.numpy(), before)
    assert a.particles.dtype == torch.float64  # numpy float64 keeps its dtype
    ints = MultiTargetSampler(TOY_TARGETS, np.zeros((3, 2), dtype=int))
    assert ints.particles.dtype == torch.get_default_dtype()


@pytest.mark.parametrize("method, shape", [("mt-sgd", (3,)), ("svgd", (3,)), ("moo-svgd", (7, 3))])
def test_weights_history(method, shape):
    sampler = MultiTargetSampler(TOY_TARGETS, torch.randn(7, 2), method=method)
    calls = []
    sampler.run(4, callback=lambda s, i: calls.append(i))
    assert calls == [0, 1, 2, 3] and sampler.n_steps_ == 4
    assert len(sampler.weights_history) == 4
    assert all(w.shape == shape for w in sampler.weights_history)


def test_single_target_mtsgd_is_svgd():
    torch.manual_seed(3)
    x0 = torch.randn(10, 2, dtype=torch.float64)
    target = [quadratic([1.0, -1.0])]
    a = MultiTargetSampler(target, x0, method="mt-sgd").run(20)
    b = MultiTargetSampler(target, x0, method="svgd").run(20)
    torch.testing.assert_close(a.particles, b.particles)


def test_symmetric_start_settles_at_the_joint_mode_with_equal_weights():
    # N(+1, I) and N(-1, I) in 2-D; the start is symmetric under the reflection
    # (a, b) -> (-b, -a), which swaps the targets, so the Pareto-stationary
    # point MT-SGD reaches is the joint mode 0 with weights 1/2.
    torch.manual_seed(4)
    y = torch.randn(10, 2) * 0.5 + torch.tensor([-3.0, 3.0])
    targets = [quadratic([1.0, 1.0]), quadratic([-1.0, -1.0])]
    sampler = MultiTargetSampler(targets, torch.cat([y, -y.flip(1)]), lr=0.05)

    def min_norm():  # min over the simplex of ||sum_k w_k phi_k||^2_H
        u = stein_gram(sampler.particles.detach(), sampler.scores())
        w = simplex_min_norm(u)
        return (w @ u @ w).item()

    start = min_norm()
    sampler.run(400)
    mean = sampler.particles.detach().mean(0)
    assert torch.allclose(mean, torch.zeros(2), atol=0.05), mean
    assert torch.allclose(sampler.weights_history[-1], torch.full((2,), 0.5), atol=0.05)
    # a fixed point of MT-SGD: the min-norm Stein direction has (nearly) vanished
    assert min_norm() < 0.02 * start


def test_mtsgd_stops_at_a_pareto_stationary_point_not_necessarily_the_joint_mode():
    # Started beyond N(+1, I)'s mode, MGDA-type weights pick target 1 alone
    # (its score is the min-norm point of the hull) and the particles settle
    # as a sample of N(+1, I): the end of the Pareto set, a fixed point.
    torch.manual_seed(5)
    targets = [quadratic([1.0, 1.0]), quadratic([-1.0, -1.0])]
    sampler = MultiTargetSampler(targets, torch.randn(20, 2) + 3.0, lr=0.05).run(400)
    mean = sampler.particles.detach().mean(0)
    assert torch.allclose(mean, torch.ones(2), atol=0.15), mean
    assert sampler.weights_history[-1][0] > 0.9


def _toy_run(method, n_steps=300, seed=0):
    torch.manual_seed(seed)
    x0 = torch.randn(50, 2) * math.sqrt(5.0)
    sampler = MultiTargetSampler(TOY_TARGETS, x0, method=method, lr=3e-2)
    before = sampler.log_prob().mean(1)
    sampler.run(n_steps)
    return sampler, before, sampler.log_prob().mean(1)


def test_toy_mtsgd_finds_the_joint_region_and_moo_svgd_does_not():
    mt, mt_before, mt_after = _toy_run("mt-sgd")
    moo, moo_before, moo_after = _toy_run("moo-svgd")
    # both raise the mean log-density under every target
    assert torch.all(mt_after > mt_before + 3.0), (mt_before, mt_after)
    assert torch.all(moo_after > moo_before + 2.0), (moo_before, moo_after)
    x_mt, x_moo = mt.particles.detach(), moo.particles.detach()
    r_mt, r_moo = x_mt.norm(dim=1), x_moo.norm(dim=1)
    # measured (seed 0, 300 steps): 98% vs 76% of particles within radius 2,
    # mean radius 0.92 vs 1.67, 0 vs 4 particles at a single target's far mode
    assert (r_mt < 2.0).float().mean() >= 0.9
    assert (r_moo < 2.0).float().mean() <= 0.8
    assert r_mt.mean() < r_moo.mean() - 0.4
    near_far_mode = lambda x: (torch.cdist(x, FAR_MODES).min(1).values < 1.0).sum()
    assert near_far_mode(x_mt) == 0
    assert near_far_mode(x_moo) >= 2
    # and MT-SGD ends with higher density under every target
    assert torch.all(mt_after > moo_after)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(log_probs=TOY_TARGETS[0]), TypeError, "sequence of callables"),
        (dict(log_probs=[]), ValueError, "at least one target"),
        (dict(log_probs=[TOY_TARGETS[0], 3]), TypeError, r"log_probs\[1\]"),
        (dict(particles=torch.zeros(3)), ValueError, "shape"),
        (dict(particles=torch.tensor([[float("nan"), 0.0]])), ValueError, "NaN"),
        (dict(method="mgda"), ValueError, "unknown method"),
        (dict(kernel="gauss"), ValueError, "unknown kernel"),
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(method="svgd", method_options={"alpha": 2.0}), ValueError, "method_options"),
        (dict(optimizer=torch.optim.LBFGS), TypeError, "'LBFGS' needs a closure"),
        pytest.param(dict(device="cuda"), ValueError, "CUDA is not available",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")),
    ],
)
def test_bad_construction(kwargs, err, match):
    args = dict(log_probs=TOY_TARGETS, particles=torch.zeros(3, 2))
    args.update(kwargs)
    with pytest.raises(err, match=match):
        MultiTargetSampler(args.pop("log_probs"), args.pop("particles"), **args)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda x: x.sum(), r"log_probs\[1\] must return a tensor of shape \(M,\)"),
        (lambda x: torch.zeros(x.shape[0]), r"log_probs\[1\] is not differentiable"),
        (lambda x: x.sum(1).sqrt() * 0 + (x * float("inf")).sum(1), r"log_probs\[1\]"),
        # finite gradients, undefined density: caught by the values
        (lambda x: -(x**2).sum(1) + float("nan"), r"log_probs\[1\] returned NaN"),
    ],
)
def test_bad_target_is_named(bad, match):
    sampler = MultiTargetSampler([TOY_TARGETS[0], bad], -torch.ones(4, 2))
    with pytest.raises(ValueError, match=match):
        sampler.step()


def test_a_target_that_ignores_the_particles_is_named():
    other = torch.nn.Parameter(torch.ones(()))
    sampler = MultiTargetSampler([TOY_TARGETS[0], lambda x: other.expand(x.shape[0]) * 2.0], torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"log_probs\[1\] does not depend on the particles"):
        sampler.step()


def test_inference_mode_is_named_not_blamed_on_the_target():
    sampler = MultiTargetSampler(TOY_TARGETS, torch.zeros(3, 2))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        sampler.step()


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam, torch.optim.RMSprop, torch.optim.AdamW])
def test_first_order_optimizers_step(optimizer):
    sampler = MultiTargetSampler(TOY_TARGETS, torch.zeros(3, 2) + 1.0, optimizer=optimizer, lr=0.01)
    before = sampler.particles.detach().clone()
    sampler.run(2)
    assert not torch.equal(sampler.particles.detach(), before)


def test_read_only_array_particles_are_copied_without_a_warning():
    values = np.random.default_rng(0).normal(size=(4, 2))
    values.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = MultiTargetSampler(TOY_TARGETS, values)
    np.testing.assert_array_equal(sampler.particles.detach().numpy(), values)


def test_method_options_reach_the_rule():
    torch.manual_seed(7)
    x0 = torch.randn(5, 2, dtype=torch.float64)
    sampler = MultiTargetSampler(
        TOY_TARGETS, x0, method="moo-svgd", method_options={"alpha": 0.0}
    )
    expected = moo_svgd_direction(x0, sampler.scores(), alpha=0.0)
    torch.testing.assert_close(sampler.direction()[0], expected)


def test_bad_n_steps():
    sampler = MultiTargetSampler(TOY_TARGETS, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="n_steps"):
        sampler.run(-1)
    with pytest.raises(ValueError, match="n_steps"):
        sampler.run(2.0)


def test_numpy_scalars_are_numbers():
    x0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    plain = MultiTargetSampler(TOY_TARGETS, x0, lr=0.1).run(3)
    numpy = MultiTargetSampler(TOY_TARGETS, x0, lr=np.float32(0.1)).run(np.int64(3))
    torch.testing.assert_close(numpy.particles, plain.particles)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["mt-sgd", "svgd", "moo-svgd"])
def test_cuda_matches_cpu(method):
    torch.manual_seed(6)
    x0 = torch.randn(12, 2, dtype=torch.float64)
    cpu = MultiTargetSampler(TOY_TARGETS, x0, method=method).run(5)
    gpu = MultiTargetSampler(TOY_TARGETS, x0, method=method, device="cuda").run(5)
    assert gpu.particles.device.type == "cuda"
    torch.testing.assert_close(gpu.particles.detach().cpu(), cpu.particles.detach())

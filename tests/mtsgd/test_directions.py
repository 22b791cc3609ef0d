import numpy as np
import pytest
import torch

from heterovae.mtsgd import (
    DIRECTIONS,
    RBFKernel,
    get_direction,
    mgda_weights,
    moo_svgd_direction,
    moo_svgd_direction_from_terms,
    mtsgd_direction,
    mtsgd_direction_from_terms,
    simplex_min_norm,
    stein_gram,
    stein_gram_from_terms,
    svgd_direction,
    svgd_direction_from_terms,
)

from ._references import float64, kernel_pair  # noqa: F401

pytestmark = pytest.mark.usefixtures("float64")


def brute_force_rkhs_gram(x, scores, scalar, h):
    """<phi_i, phi_j> in H^P from the definition, one particle pair at a time.

    phi_i = (1/M) sum_a [k(x_a, .) s_i(x_a) + grad_{x_a} k(x_a, .)] is a sum of
    elements k(x_a, .) e_p and d/dx_a^p k(x_a, .) e_p of H^P. By the
    reproducing property and its derivative form,
        <k(a, .) e_p, k(b, .) e_q>           = delta_pq k(a, b)
        <k(a, .) e_p, d_{b_q} k(b, .) e_q>   = delta_pq d k(a, b) / d b_p
        <d_{a_p} k(a, .) e_p, k(b, .) e_q>   = delta_pq d k(a, b) / d a_p
        <d_{a_p} k(a, .) e_p, d_{b_q} k(b, .) e_q> = delta_pq d^2 k / da_p db_p
    with every derivative of k taken by autograd.
    """
    k_tasks, m, p = scores.shape
    u = torch.zeros(k_tasks, k_tasks)
    for a in range(m):
        for b in range(m):
            xa, xb = x[a].clone().requires_grad_(True), x[b].clone().requires_grad_(True)
            kab = scalar(xa, xb, h)
            da, db = torch.autograd.grad(kab, (xa, xb))
            hess = torch.autograd.functional.hessian(
                lambda s, t: scalar(s, t, h), (x[a], x[b])
            )[0][1]
            for i in range(k_tasks):
                for j in range(k_tasks):
                    u[i, j] += (
                        kab.detach() * scores[i, a] @ scores[j, b]
                        + scores[i, a] @ db
                        + scores[j, b] @ da
                        + torch.trace(hess)
                    )
    return u / m**2


def brute_force_svgd(x, score, scalar, h):
    m = x.shape[0]
    out = torch.zeros_like(x)
    for i in range(m):
        for j in range(m):
            xj = x[j].clone().requires_grad_(True)
            kji = scalar(xj, x[i], h)
            (g,) = torch.autograd.grad(kji, xj)
            out[i] += (kji.detach() * score[j] + g) / m
    return out


@pytest.mark.parametrize("m, p, k", [(3, 2, 2), (4, 3, 3), (1, 2, 2)])
def test_stein_gram_equals_rkhs_inner_products(kernel_pair, m, p, k):
    cls, scalar = kernel_pair
    torch.manual_seed(m + p + k)
    x, scores = torch.randn(m, p), torch.randn(k, m, p)
    kern = cls()
    h = kern(x).bandwidth.item()
    expected = brute_force_rkhs_gram(x, scores, scalar, h)
    torch.testing.assert_close(stein_gram(x, scores, kern), expected)
    assert torch.linalg.eigvalsh(expected).min() > -1e-10  # a Gram matrix


def test_stein_gram_trace_only_shifts_all_entries():
    torch.manual_seed(0)
    x, scores = torch.randn(5, 2), torch.randn(3, 5, 2)
    terms = RBFKernel()(x)
    full = stein_gram_from_terms(terms.gram, terms.repulsion, scores, terms.trace)
    bare = stein_gram_from_terms(terms.gram, terms.repulsion, scores)
    torch.testing.assert_close(full - bare, torch.full((3, 3), terms.trace.item()))
    w_full = mtsgd_direction_from_terms(terms.gram, terms.repulsion, scores, terms.trace)[1]
    w_bare = mtsgd_direction_from_terms(terms.gram, terms.repulsion, scores)[1]
    torch.testing.assert_close(w_full, w_bare, atol=1e-7, rtol=0)


def test_svgd_direction_matches_pair_loop(kernel_pair):
    cls, scalar = kernel_pair
    torch.manual_seed(3)
    x, score = torch.randn(6, 3), torch.randn(6, 3)
    kern = cls()
    h = kern(x).bandwidth.item()
    torch.testing.assert_close(
        svgd_direction(x, score, kern), brute_force_svgd(x, score, scalar, h)
    )


def test_mtsgd_direction_is_weighted_sum_of_svgd_directions():
    torch.manual_seed(4)
    x, scores = torch.randn(7, 2), torch.randn(3, 7, 2)
    direction, w = mtsgd_direction(x, scores)
    assert w.shape == (3,) and torch.all(w >= 0) and w.sum().item() == pytest.approx(1)
    phis = torch.stack([svgd_direction(x, s) for s in scores])
    torch.testing.assert_close(direction, torch.einsum("k,kmp->mp", w, phis))
    # w minimises the RKHS norm of the combination: check against the QP on U
    u = stein_gram(x, scores)
    torch.testing.assert_close(w, simplex_min_norm(u))


def test_one_particle_mtsgd_is_mgda_on_the_scores():
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = torch.tensor(rng.normal(size=(1, 3)))
        s = torch.tensor(rng.normal(size=(2, 1, 3)))
        a, b = s[0, 0], s[1, 0]
        wa = torch.clamp((b - a) @ b / ((a - b) @ (a - b)), 0.0, 1.0)
        mgda = wa * a + (1 - wa) * b  # min-norm point of the segment [a, b]
        direction, w = mtsgd_direction(x, s)
        torch.testing.assert_close(direction[0], mgda, atol=1e-8, rtol=1e-7)
        torch.testing.assert_close(w, torch.stack([wa, 1 - wa]), atol=1e-8, rtol=0)


def test_moo_svgd_matches_per_particle_mgda_then_smoothing():
    torch.manual_seed(5)
    x, scores = torch.randn(5, 3), torch.randn(2, 5, 3)
    kern = RBFKernel()
    terms = kern(x)
    # per particle, the closed-form two-task MGDA
    d = torch.zeros(5, 3)
    for j in range(5):
        a, b = scores[0, j], scores[1, j]
        wa = torch.clamp((b - a) @ b / ((a - b) @ (a - b)), 0.0, 1.0)
        d[j] = wa * a + (1 - wa) * b
    expected = svgd_direction(x, d, kern)  # smooth d by the kernel, add repulsion
    torch.testing.assert_close(moo_svgd_direction(x, scores, kern), expected)
    direction, w = moo_svgd_direction_from_terms(
        terms.gram, terms.repulsion, scores, alpha=0.0
    )
    torch.testing.assert_close(direction, terms.gram.T @ d / 5)
    assert w.shape == (5, 2)
    torch.testing.assert_close(w, mgda_weights(scores))


# ---------------------------------------------------- properties of every rule
@pytest.fixture(params=sorted(DIRECTIONS))
def rule(request):
    return get_direction(request.param)


def test_rule_shapes_and_finiteness(rule):
    torch.manual_seed(6)
    x, scores = torch.randn(8, 4), torch.randn(3, 8, 4)
    direction, w = rule(RBFKernel()(x), scores)
    assert direction.shape == (8, 4) and torch.isfinite(direction).all()
    assert w.shape[-1] == 3
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_rule_is_equivariant_to_particle_permutation(rule):
    torch.manual_seed(7)
    x, scores = torch.randn(6, 2), torch.randn(3, 6, 2)
    perm = torch.randperm(6)
    d = rule(RBFKernel()(x), scores)[0]
    d_perm = rule(RBFKernel()(x[perm]), scores[:, perm])[0]
    torch.testing.assert_close(d_perm, d[perm], atol=1e-7, rtol=1e-6)


def test_rule_is_invariant_to_target_order(rule):
    torch.manual_seed(8)
    x, scores = torch.randn(6, 2), torch.randn(3, 6, 2)
    terms = RBFKernel()(x)
    d = rule(terms, scores)[0]
    d_perm = rule(terms, scores[[2, 0, 1]])[0]
    torch.testing.assert_close(d_perm, d, atol=1e-7, rtol=1e-6)


def test_rule_reduces_to_svgd_for_identical_targets(rule):
    torch.manual_seed(9)
    x, score = torch.randn(6, 2), torch.randn(6, 2)
    scores = score.expand(3, 6, 2)
    torch.testing.assert_close(
        rule(RBFKernel()(x), scores)[0], svgd_direction(x, score), atol=1e-7, rtol=1e-6
    )


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'mgda'"):
        get_direction("mgda")


@pytest.mark.parametrize(
    "gram, repulsion, scores, match",
    [
        (torch.eye(3), torch.zeros(3, 2), torch.zeros(2, 4, 2), "scores must have shape"),
        (torch.eye(4), torch.zeros(3, 2), torch.zeros(2, 3, 2), "gram must have shape"),
        (torch.eye(3), torch.zeros(3), torch.zeros(2, 3, 2), "repulsion must have shape"),
        (torch.eye(3), torch.zeros(3, 2), torch.full((2, 3, 2), float("nan")), "NaN"),
    ],
)
def test_bad_terms_are_rejected(gram, repulsion, scores, match):
    with pytest.raises(ValueError, match=match):
        stein_gram_from_terms(gram, repulsion, scores)


def test_mixed_dtypes_are_named():
    particles = torch.randn(4, 3, dtype=torch.float64)
    scores = torch.randn(2, 4, 3, dtype=torch.float32)
    with pytest.raises(TypeError, match="share one dtype"):
        mtsgd_direction(particles, scores)

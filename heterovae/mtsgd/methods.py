"""Update rules for a particle ensemble of multi-head networks.

A rule turns one mini-batch evaluation of the :class:`ParticleEnsemble`
into a gradient on every stacked parameter, so that the ``step()`` of an
ordinary torch optimizer moves the particles. Rules are looked up by name
in :data:`METHODS`; all of them see the same :class:`StepContext`.

Sign and scale conventions
--------------------------
The target of task ``k`` for one particle ``theta = (alpha, beta_k)`` is the
tempered posterior

    log p_k(theta) = -(N / T) * [ L_k(theta) + (weight_decay / 2) ||theta||^2 ]

with ``L_k`` the mean loss of task ``k`` on the mini-batch (an unbiased
estimate of the mean over the ``N`` training rows), ``T`` the
``temperature`` and ``weight_decay`` a Gaussian prior of precision
``N * weight_decay / T``. Scores ``s_k = grad log p_k`` are ascent
directions; a rule computes an ascent direction ``phi`` and stores
``grad = -phi * T / N``. Dividing by ``N / T`` brings the step back to the
scale of an ordinary mean-loss gradient, so learning rates mean the same
thing for every method and data size; the direction itself, and hence the
balance between the driving and the repulsive terms, is unchanged.

Rules
-----
``"mt-sgd"``
    Phan et al. (2022), Algorithm 2: the shared part moves along
    ``sum_k w_k phi_k`` (``phi_k`` the SVGD direction of task ``k``, ``w``
    the min-norm point of the Stein Gram matrix on the simplex); each head
    ``beta_k`` moves by SVGD on its own task's posterior.
``"mt-sgd-features"``
    MT-SGD with the weights ``w`` chosen from the scores of the shared
    *features* instead of the backbone parameters (the MGDA-UB idea of
    Sener & Koltun, 2018, applied to the Stein Gram matrix), so that a step
    needs one backward pass through the backbone instead of ``K``. Given
    ``w`` the shared update ``sum_k w_k phi_k`` and the head updates are
    those of ``"mt-sgd"`` exactly; see :func:`_rule_mtsgd_features` for
    what is approximated.
``"moo-svgd"``
    Liu, Tong & Liu (2021): per-particle MGDA combination of the task
    scores, smoothed by the kernel, plus the repulsion. Heads: SVGD (with a
    single objective MGDA is the identity).
``"mgda"``
    Sener & Koltun (2018) on each particle separately: the min-norm
    combination of its task gradients, no interaction between particles.
``"pareto-mtl"``
    Lin et al. (2019): particle ``m`` carries a preference vector ``u_m``;
    its direction is the min-norm combination of the task gradients and of
    the gradients of the active preference constraints
    ``(u_j - u_m)^T L / ||L|| > 0``. During the first ``init_fraction`` of
    the training steps a particle that violates a constraint follows only
    the constraint gradients (the paper's search for a feasible start).
``"linear"``
    An ordinary deep ensemble: every particle descends the summed task
    loss, no interaction.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .directions import (
    mgda_weights,
    moo_svgd_direction_from_terms,
    mtsgd_direction_from_terms,
    stein_gram_from_terms,
    svgd_direction_from_terms,
)
from .kernels import pairwise_sq_distances
from .qp import simplex_min_norm

__all__ = ["METHODS", "KERNEL_SPACES", "StepContext", "get_method", "preference_vectors"]

KERNEL_SPACES = ("params", "outputs")


@dataclass
class StepContext:
    """Everything an update rule may need for one mini-batch.

    Attributes
    ----------
    ensemble : ParticleEnsemble
    features : Tensor [M, B, F]
        Flattened backbone outputs (with graph).
    outputs : list of K Tensors [M, B, C_k]
        Head outputs (with graph).
    losses : Tensor [K, M]
        Mean loss of each task for each particle (with graph).
    scale : float
        ``N / temperature``.
    weight_decay : float
    kernel : RadialKernel
    kernel_space : {"params", "outputs"}
    progress : float
        Fraction of the training steps already taken, in [0, 1).
    state : dict
        Per-fit state of the rule (e.g. preference vectors).
    """

    ensemble: object
    features: torch.Tensor
    outputs: list
    losses: torch.Tensor
    scale: float
    weight_decay: float
    kernel: object
    kernel_space: str
    progress: float = 0.0
    state: dict = field(default_factory=dict)


# ------------------------------------------------------------------ gradients
def _task_gradients(ctx, shared_tensors=None):
    """Per-task gradients of the mean losses.

    Parameters
    ----------
    shared_tensors : list of Tensor or None
        What the shared part is differentiated against: the backbone
        parameters (``None``, one backward pass through the backbone per
        task) or ``[ctx.features]`` (the heads only; no backward pass
        reaches the backbone).

    Returns
    -------
    shared : Tensor [K, M, P]
        ``P`` the number of backbone parameters, or ``B * F`` for the
        flattened features.
    heads : list of K Tensors [M, P_k]
    """
    ens = ctx.ensemble
    m, n_tasks = ens.n_particles, ens.n_tasks
    if shared_tensors is None:
        shared_tensors = ens.tensors("shared")
    shared, heads = [], []
    for k in range(n_tasks):
        head_tensors = ens.tensors(k)
        grads = torch.autograd.grad(
            ctx.losses[k].sum(), shared_tensors + head_tensors, retain_graph=True
        )
        shared.append(ens.flatten(grads[: len(shared_tensors)], m))
        heads.append(ens.flatten(grads[len(shared_tensors) :], m))
    return torch.stack(shared), heads


def _feature_gradients(ctx):
    """:func:`_task_gradients` w.r.t. the backbone's output ``[K, M, B * F]``: heads only.

    A function of its own so that benchmarks can time it as a phase.
    """
    return _task_gradients(ctx, [ctx.features])


def _scores(ctx, shared_grads, head_grads):
    """Turn mean-loss gradients into tempered-posterior scores."""
    ens = ctx.ensemble
    wd = ctx.weight_decay
    alpha = ens.flat("shared")
    shared = -ctx.scale * (shared_grads + wd * alpha)
    heads = [-ctx.scale * (g + wd * ens.flat(k)) for k, g in enumerate(head_grads)]
    return shared, heads


def _store(ctx, shared_direction, head_directions):
    """Store ``-direction / scale`` as the gradient of every parameter."""
    ens = ctx.ensemble
    ens.set_grad("shared", -shared_direction / ctx.scale)
    for k, d in enumerate(head_directions):
        ens.set_grad(k, -d / ctx.scale)


# -------------------------------------------------------------- kernel terms
def _output_space_terms(kernel, values, tensors, m):
    """Gram matrix and repulsion for a kernel on per-particle outputs.

    ``values`` [M, D] are functions of the parameters ``tensors``. The Gram
    matrix is the kernel on the (detached) values; the repulsion at
    particle ``i`` is ``-(1/M) grad_{theta_i} sum_j k(f_i, f_j)`` with
    ``f_j`` held fixed: the function-space repulsion ``sum_j
    grad_{f_j} k(f_j, f_i)`` pulled back to the parameters through the
    Jacobian of particle ``i`` (the map the authors' code uses).
    """
    # centred by a constant (the detached mean), as in pairwise_sq_distances,
    # so the expansion below does not cancel in float32
    f = values.reshape(m, -1)
    f = f - f.detach().mean(dim=0, keepdim=True)
    fixed = f.detach()
    d2 = pairwise_sq_distances(fixed)
    h = kernel.resolve_bandwidth(fixed, d2)
    gram = kernel.profile(d2 / h)[0]
    sq = (f * f).sum(1, keepdim=True) + (fixed * fixed).sum(1)[None, :] - 2.0 * f @ fixed.T
    total = kernel.profile(sq / h)[0].sum()
    grads = torch.autograd.grad(total, tensors, retain_graph=True)
    repulsion = -torch.cat([g.reshape(m, -1) for g in grads], dim=1) / m
    trace = torch.zeros((), dtype=f.dtype, device=f.device)
    return gram, repulsion, trace


def _kernel_terms(ctx):
    """(gram, repulsion, trace) for the shared part and for each head."""
    ens, kernel = ctx.ensemble, ctx.kernel
    m = ens.n_particles
    if ctx.kernel_space == "params":
        shared = kernel(ens.flat("shared"))
        shared = (shared.gram, shared.repulsion, shared.trace)
        heads = []
        for k in range(ens.n_tasks):
            t = kernel(ens.flat(k))
            heads.append((t.gram, t.repulsion, t.trace))
        return shared, heads
    shared = _output_space_terms(kernel, ctx.features, ens.tensors("shared"), m)
    heads = [
        _output_space_terms(kernel, ctx.outputs[k], ens.tensors(k), m)
        for k in range(ens.n_tasks)
    ]
    return shared, heads


def _svgd_heads(head_terms, head_scores):
    return [
        svgd_direction_from_terms(gram, rep, s)
        for (gram, rep, _), s in zip(head_terms, head_scores)
    ]


# --------------------------------------------------------------------- rules
def _rule_mtsgd(ctx):
    # Kernel terms first: in "outputs" space they need the forward graph.
    shared_terms, head_terms = _kernel_terms(ctx)
    shared_scores, head_scores = _scores(ctx, *_task_gradients(ctx))
    gram, rep, trace = shared_terms
    direction, w = mtsgd_direction_from_terms(gram, rep, shared_scores, trace)
    _store(ctx, direction, _svgd_heads(head_terms, head_scores))
    return w


def _feature_space_weights(gram, feature_grads):
    """``w`` minimising ``w^T A_z w`` on the simplex (see :func:`_rule_mtsgd_features`).

    ``A_z[k, l] = sum_ab gram[a, b] g_k(a)^T g_l(b)`` is the data part of the
    Stein Gram matrix with the feature gradients ``feature_grads`` [K, M, D]
    in place of the parameter scores: :func:`stein_gram_from_terms` with a
    zero repulsion and trace.
    """
    zeros = feature_grads.new_zeros(feature_grads.shape[1:])
    return simplex_min_norm(stein_gram_from_terms(gram, zeros, feature_grads))


def _rule_mtsgd_features(ctx):
    """MT-SGD whose simplex weights come from feature-space scores.

    Write the score of task ``k`` at particle ``a`` as ``s_k(a) = d_k(a) +
    c(a)``, with ``d_k(a) = -(N/T) J_a^T g_k(a)`` its data part (``J_a`` the
    Jacobian of particle ``a``'s features on the batch w.r.t. its backbone
    parameters, ``g_k(a) = dL_k / dz_a``) and ``c(a) = -(N/T) weight_decay
    alpha_a`` the prior, the same for every task. Then ``phi_k = S d_k + rho``
    with ``S`` the kernel smoothing and ``rho = S c + r`` a task-independent
    field (prior and repulsion ``r``), and the exact Stein Gram matrix is

        U_kl = <S d_k, S d_l> + <S d_k, rho> + <rho, S d_l> + ||rho||^2.

    Two approximations give ``w``:

    1. the task-independent part ``rho`` is left out of the choice of ``w``
       (the constant ``||rho||^2`` never mattered; the cross terms are the
       ``v`` term of :mod:`~heterovae.mtsgd.directions` and the prior's
       share of ``A``). Computing them needs ``J_a rho(a)``, a
       forward-mode product through the backbone, i.e. the cost this rule
       exists to avoid; with ``weight_decay = 0`` they are the repulsion's,
       of relative size ``|r| / |S d_k|``, which shrinks as ``N / T`` grows;
    2. ``<S d_k, S d_l> = (N/T)^2 sum_ab K_ab g_k(a)^T J_a J_b^T g_l(b)`` is
       replaced by ``(N/T)^2 sum_ab K_ab g_k(a)^T g_l(b)``, i.e. ``J_a
       J_b^T`` by the identity (MGDA-UB's approximation, here also between
       particles). The positive factor ``(N/T)^2`` is dropped: it does not
       move the minimiser.

    So ``w`` minimises ``w^T A_z w`` on the simplex with
    ``A_z[k, l] = sum_ab K_ab g_k(a)^T g_l(b)``, ``K`` the same kernel Gram
    matrix as the shared update's. The second approximation is exact when
    every ``J_a J_b^T`` is the same multiple of the identity (e.g. a batch
    of one row whose features are the backbone parameters); the first when
    ``rho = 0`` (one particle, no prior), or nearly so when the data term
    dominates.

    Given ``w`` nothing is approximated: ``sum_k w_k s_k(a) = -(N/T) (J_a^T
    sum_k w_k g_k(a) + weight_decay alpha_a)`` since the weights sum to one,
    which is one backward pass through the backbone with the cotangent
    ``sum_k w_k g_k``; the shared update ``sum_k w_k phi_k = S (sum_k w_k
    s_k) + r`` and the SVGD heads are those of ``"mt-sgd"``.
    """
    shared_terms, head_terms = _kernel_terms(ctx)
    feature_grads, head_grads = _feature_gradients(ctx)
    gram, rep, _ = shared_terms
    m = ctx.ensemble.n_particles
    w = _feature_space_weights(gram, feature_grads)
    cotangent = torch.einsum("k,kmf->mf", w, feature_grads).reshape(ctx.features.shape)
    shared_tensors = ctx.ensemble.tensors("shared")
    mixed = torch.autograd.grad(ctx.features, shared_tensors, grad_outputs=cotangent)
    shared_score, head_scores = _scores(ctx, ctx.ensemble.flatten(mixed, m), head_grads)
    direction = svgd_direction_from_terms(gram, rep, shared_score)
    _store(ctx, direction, _svgd_heads(head_terms, head_scores))
    return w


def _rule_moo_svgd(ctx):
    shared_terms, head_terms = _kernel_terms(ctx)
    shared_scores, head_scores = _scores(ctx, *_task_gradients(ctx))
    gram, rep, _ = shared_terms
    direction, w = moo_svgd_direction_from_terms(gram, rep, shared_scores)
    _store(ctx, direction, _svgd_heads(head_terms, head_scores))
    return w.mean(0)


def _rule_mgda(ctx):
    shared_scores, head_scores = _scores(ctx, *_task_gradients(ctx))
    w = mgda_weights(shared_scores)  # [M, K]
    direction = torch.einsum("mk,kmp->mp", w, shared_scores)
    _store(ctx, direction, head_scores)
    return w.mean(0)


def _rule_linear(ctx):
    ens = ctx.ensemble
    tensors = ens.all_parameters()
    total = ctx.losses.sum()
    wd = ctx.weight_decay
    grads = torch.autograd.grad(total, tensors)
    for t, g in zip(tensors, grads):
        # the prior is counted once, not once per task
        t.grad = (g + wd * t.detach()).detach()
    k = ctx.losses.shape[0]
    return torch.full((k,), 1.0 / k)


def preference_vectors(n_particles, n_tasks, random_state=0):
    """Unit preference vectors of Pareto MTL, one per particle.

    For two tasks they are evenly spread on the quarter circle (angles
    ``0 .. pi/2``, as in Lin et al. 2019; the single-particle case takes
    the diagonal); for more tasks they are normalised absolute Gaussian
    draws from ``random_state`` (fixed by default, so that a fit is
    reproducible).

    Parameters
    ----------
    n_particles : int
        Number of vectors ``M``, one per particle.
    n_tasks : int
        Number of tasks ``K``, the length of each vector (with one task
        every vector is ``[1]``).
    random_state : int or None, default=0
        Seed of :class:`numpy.random.RandomState` for the Gaussian draws
        (more than two tasks only).

    Returns
    -------
    ndarray of shape (n_particles, n_tasks)
        Non-negative rows of unit Euclidean norm.
    """
    if n_tasks == 1:
        return np.ones((n_particles, 1))
    if n_tasks == 2:
        if n_particles == 1:
            angles = np.array([math.pi / 4])
        else:
            angles = np.linspace(0.0, math.pi / 2, n_particles)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rng = np.random.RandomState(random_state)
    u = np.abs(rng.normal(size=(n_particles, n_tasks))) + 1e-3
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _rule_pareto_mtl(ctx, init_fraction=0.1):
    ens = ctx.ensemble
    m, n_tasks = ens.n_particles, ens.n_tasks
    shared_scores, head_scores = _scores(ctx, *_task_gradients(ctx))
    prefs = ctx.state.get("preferences")
    if prefs is None:
        prefs = torch.as_tensor(preference_vectors(m, n_tasks), dtype=shared_scores.dtype)
        ctx.state["preferences"] = prefs
    prefs = prefs.to(shared_scores.device)
    losses = ctx.losses.detach().T  # [M, K]
    task_grams = torch.einsum("kmp,lmp->mkl", shared_scores, shared_scores)
    weights = torch.zeros(m, n_tasks, dtype=shared_scores.dtype, device=shared_scores.device)
    eye = torch.eye(n_tasks, dtype=shared_scores.dtype, device=shared_scores.device)
    for i in range(m):
        others = torch.cat([prefs[:i], prefs[i + 1 :]]) - prefs[i]  # [M-1, K]
        norm = losses[i].norm().clamp_min(1e-12)
        active = others[(others @ losses[i]) / norm > 0]
        if ctx.progress < init_fraction and len(active) > 0:
            rows = active  # feasibility phase: constraint gradients only
        else:
            rows = torch.cat([eye, active])
        lam = simplex_min_norm(rows @ task_grams[i] @ rows.T)
        w = lam @ rows
        weights[i] = w / w.abs().sum().clamp_min(1e-12)
    direction = torch.einsum("mk,kmp->mp", weights, shared_scores)
    _store(ctx, direction, head_scores)
    return weights.mean(0)


#: Update rules by name: ``rule(ctx: StepContext) -> weights[K]`` (the task
#: weights of the shared update, averaged over particles), setting ``.grad``
#: on every stacked parameter of ``ctx.ensemble``.
METHODS = {
    "mt-sgd": _rule_mtsgd,
    "mt-sgd-features": _rule_mtsgd_features,
    "moo-svgd": _rule_moo_svgd,
    "mgda": _rule_mgda,
    "pareto-mtl": _rule_pareto_mtl,
    "linear": _rule_linear,
}

#: Rules whose particles interact through a kernel.
KERNEL_METHODS = frozenset({"mt-sgd", "mt-sgd-features", "moo-svgd"})


def get_method(name):
    """Look up an update rule of :data:`METHODS` by name.

    Parameters
    ----------
    name : {"mt-sgd", "mt-sgd-features", "moo-svgd", "mgda", "pareto-mtl", "linear"}
        A key of :data:`METHODS`; any other value is a ValueError.

    Returns
    -------
    callable
        ``rule(ctx: StepContext) -> weights[K]``, as described at
        :data:`METHODS`.
    """
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown method {name!r}; valid methods are {', '.join(METHODS)}"
        ) from None

"""Minimum of a quadratic form over the probability simplex.

``simplex_min_norm(U)`` solves

    min_w  w^T U w   subject to  w >= 0,  sum(w) = 1,

the weight problem of MGDA and of MT-SGD (with ``U`` the Gram matrix of the
task gradients, or of the Stein directions in the RKHS).

How it is solved, and why
-------------------------
The equality constraint is eliminated first: ``w = E z + e_K`` with
``E = [I_{K-1}; -1^T]`` and ``z = w[:-1]``, which leaves ``K - 1`` variables,
the constraints ``z >= 0`` and ``sum(z) <= 1``, and the reduced Hessian
``E^T U E``. That Hessian only sees ``U`` on the simplex's tangent space, so
the solution is unchanged by adding a constant to every entry of ``U``
(``w^T 1 1^T w = 1`` on the simplex): the Stein Gram matrix's trace term,
for instance, has no effect on the weights.

The reduced problem goes to ``quadprog`` (Goldfarb-Idnani, exact for small
dense problems; for K = 2 the 1-D problem is solved in closed form), which needs a positive-definite Hessian. Gram matrices are
only semi-definite (two equal task gradients make them singular) and carry
round-off, so the reduced Hessian is shifted by ``max(0, -lambda_min) +
ridge * scale`` times the identity, ``scale`` being its largest diagonal
entry (or of the linear term, for a problem that is linear on the simplex).
A clearly indefinite matrix (``lambda_min < -psd_tol * max(scale, max|U|)``)
is an error rather than something to paper over. The result is clipped at zero and
renormalised, so it lies exactly on the simplex.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import quadprog
import torch

from ._errors import NonFiniteError

__all__ = ["simplex_min_norm"]


def _reduced_problems(u: np.ndarray):
    """Hessians (B, K-1, K-1) and linear terms (B, K-1) of the problems in z = w[:-1]."""
    k = u.shape[-1]
    e = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])  # [K, K-1]
    g = e.T @ u @ e  # half the reduced Hessian
    lin = (e.T @ u[..., :, -1:])[..., 0]  # from the cross term 2 z^T E^T U e_K
    return g, lin


def _solve_reduced(g, lin, u_abs, ridge, psd_tol):
    """Weights (B, K) for a batch of reduced problems; u_abs = max |U| per matrix."""
    n, k1 = lin.shape
    lam_min = np.linalg.eigvalsh(g)[:, 0]
    diag = np.abs(np.diagonal(g, axis1=1, axis2=2)).max(1)
    scale = np.maximum(diag, np.abs(lin).max(1))
    out = np.full((n, k1 + 1), 1.0 / (k1 + 1))
    # scale == 0: w^T U w is constant on the simplex, every point is optimal.
    live = np.flatnonzero(scale > 0)
    # Round-off in U (often computed in float32) is relative to U's entries,
    # which can be far larger than the reduced matrix when U carries a big
    # constant (the Stein trace term), so the tolerance scales with both.
    tol = psd_tol * np.maximum(scale, u_abs)
    bad = live[lam_min[live] < -tol[live]]
    if bad.size:
        i = bad[0]
        where = f" (matrix {i} of the batch)" if n > 1 else ""
        raise ValueError(
            f"U is not positive semi-definite on the simplex{where}: smallest "
            f"eigenvalue of the reduced matrix {lam_min[i]:.3g}, scale "
            f"{scale[i]:.3g}; it must be a Gram matrix of task gradients or "
            "Stein directions"
        )
    shift = np.maximum(0.0, -lam_min) + ridge * scale
    if k1 == 1:
        # Two tasks: a 1-D problem on [0, 1], solved in closed form (what
        # quadprog would return), vectorised over the batch.
        z = -lin[live, 0] / (g[live, 0, 0] + shift[live])
        out[live, 0] = np.clip(z, 0.0, 1.0)
        out[live, 1] = 1.0 - out[live, 0]
        return out
    eye = np.eye(k1)
    # z >= 0 and -sum(z) >= -1; quadprog wants C^T z >= b.
    c = np.hstack([eye, -np.ones((k1, 1))])
    b = np.concatenate([np.zeros(k1), [-1.0]])
    for i in live:
        hess = (g[i] + shift[i] * eye) / scale[i]
        z = quadprog.solve_qp(hess, -lin[i] / scale[i], c, b, 0)[0]
        out[i, :k1] = z
        out[i, k1] = 1.0 - z.sum()
    out = np.clip(out, 0.0, None)
    return out / out.sum(1, keepdims=True)


def simplex_min_norm(U, *, ridge: float = 1e-10, psd_tol: float = 1e-5):
    """Minimise ``w^T U w`` over the probability simplex.

    Parameters
    ----------
    U : Tensor or ndarray of shape (K, K) or (B, K, K)
        Symmetric positive semi-definite matrix, or a batch of them. Only the
        symmetric part ``(U + U^T) / 2`` is used.
    ridge : float, default=1e-10
        Relative ridge added to the reduced Hessian so that quadprog sees a
        strictly positive-definite matrix (see the module docstring). It
        perturbs the minimum by at most ``ridge * scale``.
    psd_tol : float, default=1e-5
        Negative eigenvalues of the reduced Hessian down to ``-psd_tol *
        max(scale, max|U|)`` are treated as round-off (float32 input
        included); below that a ValueError is raised.

    Returns
    -------
    w : same type as ``U``, shape (K,) or (B, K)
        Weights on the simplex (non-negative, summing to one). A tensor input
        gives a tensor with ``U``'s dtype and device.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([[1.0, 0.0], [0.0, 1.0]])  # two orthogonal gradients
    >>> simplex_min_norm(g @ g.T)
    array([0.5, 0.5])
    """
    if isinstance(ridge, bool) or not (isinstance(ridge, numbers.Real) and math.isfinite(ridge) and ridge > 0):
        raise ValueError(f"ridge must be a positive finite float, got {ridge!r}")
    if isinstance(psd_tol, bool) or not (isinstance(psd_tol, numbers.Real) and math.isfinite(psd_tol) and psd_tol >= 0):
        raise ValueError(f"psd_tol must be a non-negative finite float, got {psd_tol!r}")
    is_tensor = isinstance(U, torch.Tensor)
    u = U.detach().cpu().double().numpy() if is_tensor else np.asarray(U, dtype=float)
    if u.ndim not in (2, 3) or u.shape[-1] != u.shape[-2] or u.shape[-1] < 1:
        raise ValueError(
            f"U must be a square matrix (K, K) or a batch (B, K, K) with K >= 1, "
            f"got shape {u.shape}"
        )
    if not np.isfinite(u).all():
        raise NonFiniteError("U contains NaN or infinite values")
    batch = u.reshape(-1, u.shape[-1], u.shape[-1])
    k = batch.shape[-1]
    if k == 1:
        out = np.ones((batch.shape[0], 1))
    else:
        batch = 0.5 * (batch + np.swapaxes(batch, -1, -2))
        g, lin = _reduced_problems(batch)
        out = _solve_reduced(g, lin, np.abs(batch).max((1, 2)), ridge, psd_tol)
    out = out.reshape(u.shape[:-1])
    if is_tensor:
        return torch.as_tensor(out, dtype=U.dtype, device=U.device)
    return out

"""IMTL-G: impartial gradient weights with equal projections on every task.

Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021. The combined
gradient ``g = w^T G`` has the same projection on every unit task gradient
``u_k = g_k / ||g_k||``, and the weights sum to one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import MagnitudeMethod, check_hyperparameter, tiny

__all__ = ["IMTLG"]


class IMTLG(MagnitudeMethod):
    """IMTL-G closed-form weights (magnitude method).

    The paper anchors the closed form on task 1 and inverts a (K-1) x (K-1)
    matrix. We solve the equivalent symmetric system: with unit rows
    ``U = D^-1 G`` (``D`` = diag of row norms) the conditions ``U g = c 1`` for
    ``g = G^T w`` read ``(U U^T) beta = c 1`` with ``w = D^-1 beta``. ``U U^T``
    is a correlation matrix (unit diagonal), so it is well conditioned however
    different the gradient scales are, and its pseudo-inverse gives the
    minimum-norm solution when gradients are linearly dependent (duplicated
    or opposite rows), where the paper's inverse does not exist. Zero rows
    get weight zero (their unit direction is undefined).

    The weights are normalised to sum to one, as in the paper. The closed
    form does not constrain their signs: individual weights can be negative,
    and in rare configurations the sum is negative, in which case the paper's
    normalisation would flip the combined gradient into an ascent direction
    for every task; we divide by the absolute value of the sum instead, so the
    common projection ``c`` is always positive (then the weights sum to -1).

    Parameters
    ----------
    rtol : float, default=1e-6
        Relative cut-off of the pseudo-inverse: eigenvalues of ``U U^T`` below
        ``rtol * K`` count as zero (linearly dependent gradients).
    """

    name = "imtlg"

    def __init__(self, rtol: float = 1e-6):
        super().__init__()
        check_hyperparameter("rtol", rtol, low=0, method=self.name)
        self.rtol = rtol

    def _weights(self, T, losses) -> Tensor:
        K, dtype = T.K, T.dtype
        M = T.gram
        norms = M.diagonal().clamp_min(0).sqrt()
        nonzero = norms > tiny(dtype)
        inv_norms = torch.where(nonzero, 1 / torch.where(nonzero, norms, torch.ones_like(norms)), 0)
        A = M * inv_norms[:, None] * inv_norms[None, :]  # U U^T, the correlation matrix
        # Eigen-decomposition based pseudo-inverse (A is symmetric PSD).
        evals, evecs = torch.linalg.eigh(A)
        keep = evals > self.rtol * K
        inv = torch.where(keep, 1 / torch.where(keep, evals, torch.ones_like(evals)), 0)
        beta = evecs @ (inv * (evecs.T @ nonzero.to(dtype)))
        w = beta * inv_norms
        total = w.sum()
        ok = total.abs() > tiny(dtype)
        # all-zero G: any weights do; return the uniform ones so sum(w) == 1 still holds
        uniform = torch.full_like(w, 1.0 / K)
        return torch.where(ok, w / torch.where(ok, total.abs(), torch.ones_like(total)), uniform)

"""IMTL-G: impartial gradient weights with equal projections on every task.

Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021. The combined
gradient ``g = w^T G`` has the same projection on every unit task gradient
``u_k = g_k / ||g_k||``, and the weights sum to one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import MagnitudeMethod, check_hyperparameter, tiny

__all__ = ["IMTLG", "impartial_weights"]

#: Run the K x K algebra in numpy for CPU tensors (zero-copy views).
#: The torch path, used on other devices, is tested on the CPU by turning this off.
NUMPY_ON_CPU = True


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
    rtol : float in [0, 1), default=1e-6
        Relative cut-off of the pseudo-inverse: eigenvalues of ``U U^T`` below
        ``rtol * K`` count as zero (linearly dependent gradients).
    """

    name = "imtlg"

    def __init__(self, rtol: float = 1e-6):
        super().__init__()
        check_hyperparameter("rtol", rtol, low=0, high=1, high_open=True, method=self.name)
        self.rtol = rtol

    def _weights(self, T, losses) -> Tensor:
        M = T.gram
        if NUMPY_ON_CPU and M.device.type == "cpu":
            with np.errstate(all="ignore"):  # like torch: non-finite input gives non-finite output
                return torch.from_numpy(impartial_weights(M.numpy(), self.rtol, tiny(M.dtype), np))
        return impartial_weights(M, self.rtol, tiny(M.dtype), torch)


def impartial_weights(M, rtol: float, tiny: float, xp):
    """IMTL-G's normalised weights from the Gram matrix ``M`` (see :class:`IMTLG`).

    Written once for numpy arrays (``xp=numpy``) and torch tensors
    (``xp=torch``): on the CPU the dozen K x K operations cost a few
    microseconds each in numpy against tens in torch, which matters on
    every training step of a small network.
    """
    K = M.shape[0]
    norms = xp.sqrt(xp.clip(M.diagonal(), 0, None))
    nonzero = norms > tiny
    safe_norms = xp.where(nonzero, norms, 1.0)
    inv_norms = xp.where(nonzero, 1 / safe_norms, 0.0)
    A = M * inv_norms[:, None] * inv_norms[None, :]  # U U^T, the correlation matrix
    # Eigen-decomposition based pseudo-inverse (A is symmetric PSD).
    evals, evecs = xp.linalg.eigh(A)
    keep = evals > rtol * K
    inv = xp.where(keep, 1 / xp.where(keep, evals, 1.0), 0.0)
    ones = xp.where(nonzero, norms / safe_norms, 0.0)  # exactly 1 on non-zero rows, in M's dtype
    w = (evecs @ (inv * (evecs.T @ ones))) * inv_norms
    total = abs(w.sum())
    ok = total > tiny
    # all-zero G: any weights do; return the uniform ones so sum(w) == 1 still holds
    return xp.where(ok, w / xp.where(ok, total, 1.0), xp.ones_like(w) / K)

"""Normal scores: a numeric column seen through its training distribution.

``NormalScores`` maps each value to ``Phi^-1(F(x))``, with ``F`` the
column's empirical distribution function on the observed training cells,
interpolated linearly between ``n_quantiles + 1`` quantiles (the transform
of scikit-learn's ``QuantileTransformer(output_distribution="normal")``,
as a torch module whose quantiles are buffers, so it runs on the model's
device inside the forward pass).

Why the encoder wants it: a network reading a standardised value has to
learn the shape of a skewed column (prices, amounts) before it can use it;
the scores barely change under a monotone transform of the column (they
differ only by the linear interpolation between quantiles), the invariance
that makes tree ensembles strong on such columns.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: quantiles stored per column
N_QUANTILES = 64


class NormalScores(nn.Module):
    """Per-column normal scores of a group of numeric columns.

    Parameters
    ----------
    n_columns : int
        Number of columns.
    n_quantiles : int, default=64
        ``F`` is interpolated between this many + 1 evenly spaced quantiles.
        Scores are clipped to ``Phi^-1(1 / (2 n_quantiles))`` and its
        negative (about +-2.4 for 64), so values beyond the training range
        do not become outliers.
    """

    def __init__(self, n_columns: int, n_quantiles: int = N_QUANTILES):
        super().__init__()
        self.n_quantiles = int(n_quantiles)
        levels = torch.linspace(0.0, 1.0, self.n_quantiles + 1, dtype=torch.float64)
        self.register_buffer("levels", levels.float())
        self.register_buffer("knots", levels.float().repeat(n_columns, 1))

    def fit(self, x: np.ndarray) -> "NormalScores":
        """Quantiles of each column's observed cells (``x`` is ``[N, n]``, NaN = missing)."""
        x = np.asarray(x, dtype=np.float64)
        levels = self.levels.double().cpu().numpy()
        knots = [np.nanquantile(col, levels) if np.isfinite(col).any() else levels for col in x.T]
        self.knots.copy_(torch.as_tensor(np.stack(knots)))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of ``x`` ``[N, n]`` (any finite values; missing cells are the caller's to mask)."""
        t = x.detach().transpose(0, 1).contiguous()  # [n, N]: searchsorted wants a row of values per column
        knots = self.knots.to(t.dtype)
        # interpolate from the left and from the right in one pass over [2, n, N] (this runs
        # in every training step); their average puts a value repeated over several quantiles
        # (the zeros of a zero-inflated column) in the middle of its probability mass rather
        # than at one end of it
        i = torch.stack([torch.searchsorted(knots, t), torch.searchsorted(knots, t, right=True)])
        i = i.clamp(1, self.n_quantiles)
        both = knots.expand(2, -1, -1)
        lo, hi = both.gather(2, i - 1), both.gather(2, i)
        width = hi - lo
        w = torch.where(width > 0, (t - lo) / torch.where(width > 0, width, 1.0), torch.zeros_like(lo))
        sides = (i - 1 + w.clamp(0.0, 1.0)) / self.n_quantiles
        u = 0.5 * (sides[0] + sides[1])
        u = torch.where(t > knots[:, -1:], 1.0, torch.where(t < knots[:, :1], 0.0, u))
        edge = 0.5 / self.n_quantiles
        return torch.special.ndtri(u.clamp(edge, 1.0 - edge)).transpose(0, 1).to(x.dtype)

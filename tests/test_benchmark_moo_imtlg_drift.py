"""benchmarks/moo_imtlg_drift.py: the one-batch IMTL-G diagnostics."""

import numpy as np
import pandas as pd

from benchmarks import moo_imtlg_drift as bench
from heterovae import HeterogeneousVAEImputer


def test_imtlg_step_descends_the_summed_loss_and_shares_are_reported_per_column():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.integers(0, 3, 200)})
    X["c"] = X["c"].astype("category")
    X = X.mask(rng.random(X.shape) < 0.2)
    imp = HeterogeneousVAEImputer(moo="imtlg", max_epochs=2, hidden_dim=8, random_state=0).fit(X)
    norms, shares, mean_cos, relative = bench.imtlg_batch_diagnostics(imp, X, batch=64)
    assert norms.shape == shares.shape == (3,) and bool((norms > 0).all())
    # IMTL-G gives g . g_k = c ||g_k|| with c > 0 for every column, so the summed loss decreases
    assert relative > 0 and 0 <= mean_cos <= 1
    assert "_weights" not in vars(imp.module_.heads.aggregator.magnitude)  # the recording hook is removed

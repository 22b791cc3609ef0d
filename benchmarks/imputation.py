"""Imputation benchmark: mean per-column error and time per dataset x imputer.

Protocol (one run, every imputer on the same data):

1. Read the dataset with :func:`heterovae.datasets.load_hivae`. adult,
   credit and wine use their fixed mask ``Missing20_<--mask>.csv``; bank and
   diamonds have no mask files and get a 20 % MCAR mask from
   :func:`heterovae.datasets.make_missing` with ``random_state=--seed``
   (drawn on the full table, before any subsampling).
2. If the table has more than ``--max-rows`` rows, keep a random subset of
   that many rows (seeded). Split the rows 80/20 into train and test (seeded).
3. Fit each imputer on the train rows with the masked cells set missing;
   impute the test rows (also masked); time fit + transform together.
4. Score the masked test cells with :func:`heterovae.metrics.imputation_error`
   (NRMSE for real/pos/count, error rate for binary/cat/ordinal) and report
   the mean over columns. Cells that are missing in the data file itself
   (adult) are inputs, never scored.

Imputers are pluggable: a name maps to a factory ``(specs, random_state) ->``
object with ``fit(X)`` / ``transform(X)`` on DataFrames with the dtypes of
``load_hivae`` (categoricals for discrete columns, NaN = missing). The
baselines wrap scikit-learn imputers (see ``heterovae/baselines.py``);
``heterovae`` is the package's ``HeterogeneousVAEImputer``, imported lazily,
with its defaults; the names of :data:`MODEL_VARIANTS` (``vae``, ``iwae``,
``dreg``, ``hivae``, each also with ``-moo`` = ``moo=("imtlg", "pcgrad")``, and
``vae-codes`` = ``value_codes=512``, ``vae-no-codes`` = ``value_codes=None``;
the default is ``"auto"``)
pick a model variant (``--vae-params`` applies to every variant).

Example::

    python benchmarks/imputation.py --out docs/benchmarks/imputation_baselines.md
    python benchmarks/imputation.py --datasets wine --imputers mean,heterovae
    python benchmarks/imputation.py --imputers iterative,vae,vae-moo,iwae,hivae-moo
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heterovae.baselines import BASELINES  # noqa: E402
from heterovae.datasets import load_hivae, make_missing  # noqa: E402
from heterovae.metrics import imputation_error  # noqa: E402

DATASETS = ("adult", "credit", "wine", "bank", "diamonds")
DEFAULT_IMPUTERS = ("mean", "knn", "knn-codes", "iterative", "iterative-codes", "missforest")
#: benchmark name -> HeterogeneousVAEImputer parameters of a model variant
MODEL_VARIANTS = {
    f"{model}{suffix}": {"model": model, **extra}
    for model in ("vae", "iwae", "dreg", "hivae")
    for suffix, extra in (("", {}), ("-moo", {"moo": ("imtlg", "pcgrad")}))
}
#: the vae with exact-value codes of every numeric column of at most 512 values (docs/imputer.rst)
MODEL_VARIANTS["vae-codes"] = {"model": "vae", "value_codes": 512}
MODEL_VARIANTS["vae-no-codes"] = {"model": "vae", "value_codes": None}
MISSING_FRACTION = 0.2
TEST_FRACTION = 0.2


def heterovae_factory(extra_params: Optional[dict] = None, threads: Optional[int] = None) -> Callable:
    """Factory for ``heterovae.imputer.HeterogeneousVAEImputer``.

    Passes the dataset's kinds as ``likelihoods``, the seed as
    ``random_state`` and ``threads`` as ``n_threads`` (the estimator sets
    torch's threads itself, so the run's limit must reach it), unless
    ``extra_params`` gives them. Raises ImportError when the estimator is
    not available.
    """
    from heterovae.imputer import HeterogeneousVAEImputer

    accepted = inspect.signature(HeterogeneousVAEImputer).parameters

    def make(specs, random_state):
        params = dict(extra_params or {})
        if "likelihoods" in accepted and "likelihoods" not in params:
            params["likelihoods"] = {s.name: s.kind for s in specs}
        if "random_state" in accepted and "random_state" not in params:
            params["random_state"] = random_state
        if threads is not None and "n_threads" in accepted and "n_threads" not in params:
            params["n_threads"] = threads
        return HeterogeneousVAEImputer(**params)

    return make


def load_benchmark_data(name: str, seed: int, mask_number: int = 1, root=None):
    """Complete data, boolean mask (True = hidden), specs, and how the mask was made."""
    try:
        ds = load_hivae(name, mask=mask_number, root=root)
        how = f"Missing20_{mask_number}.csv"
    except FileNotFoundError as exc:
        if "no mask files at all" not in str(exc):
            raise
        ds = load_hivae(name, mask=None, root=root)
        ds.mask = make_missing(ds.data, MISSING_FRACTION, random_state=seed)
        how = f"make_missing({MISSING_FRACTION}, random_state={seed})"
    return ds, how


def split_rows(n_rows: int, seed: int, max_rows: int = 0):
    """Seeded subsample (if ``max_rows``) and 80/20 split of row positions."""
    rng = np.random.RandomState(seed)
    rows = rng.permutation(n_rows)
    if max_rows and n_rows > max_rows:
        rows = rows[:max_rows]
    n_test = int(round(TEST_FRACTION * len(rows)))
    return np.sort(rows[n_test:]), np.sort(rows[:n_test])


def run_one(factory: Callable, ds, train, test, seed: int):
    """Fit on masked train rows, impute masked test rows; errors and seconds."""
    masked = ds.masked()
    X_train = masked.iloc[train].reset_index(drop=True)
    X_test = masked.iloc[test].reset_index(drop=True)
    truth = ds.data.iloc[test].reset_index(drop=True)
    mask = ds.mask.iloc[test].reset_index(drop=True)
    start = time.perf_counter()
    imputer = factory(ds.specs, seed)
    imputer.fit(X_train)
    imputed = imputer.transform(X_test)
    seconds = time.perf_counter() - start
    if not isinstance(imputed, pd.DataFrame):
        imputed = pd.DataFrame(np.asarray(imputed), columns=truth.columns)
    errors = imputation_error(truth, imputed, mask, ds.specs)
    return errors, seconds


def _kind_means(errors: pd.Series, specs) -> tuple:
    numeric = [s.name for s in specs if s.kind in ("real", "pos", "count")]
    discrete = [s.name for s in specs if s.name not in numeric]
    num = errors[numeric].mean() if numeric else np.nan
    dis = errors[discrete].mean() if discrete else np.nan
    return num, dis


def _fmt(x, digits=4):
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help="comma-separated dataset folders (default: %(default)s)")
    p.add_argument("--imputers", default=",".join(DEFAULT_IMPUTERS),
                   help="comma-separated imputers: " + ", ".join(
                       list(BASELINES) + ["heterovae"] + list(MODEL_VARIANTS)) + " (default: %(default)s)")
    p.add_argument("--max-rows", type=int, default=10000,
                   help="subsample each dataset to this many rows before the "
                   "80/20 split; 0 = all rows (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsample, split, "
                   "generated masks and imputers (default: %(default)s)")
    p.add_argument("--mask", type=int, default=1,
                   help="which Missing20_K.csv to use (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads (default: %(default)s)")
    p.add_argument("--root", default=None, help="datasets folder (default: "
                   "$HETEROVAE_DATASETS or ../shared/datasets next to the repository)")
    p.add_argument("--vae-params", default="{}",
                   help="JSON dict of extra HeterogeneousVAEImputer parameters")
    p.add_argument("--per-column", action="store_true",
                   help="also write the per-column errors")
    p.add_argument("--out", default=None, help="write the markdown report here")
    return p.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    command = "python benchmarks/imputation.py" + (
        " " + shlex.join(sys.argv[1:] if argv is None else argv)
        if (sys.argv[1:] if argv is None else argv) else "")
    print(command, flush=True)

    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass

    imputers: Dict[str, Callable] = {}
    notes: List[str] = []
    for name in [s.strip() for s in args.imputers.split(",") if s.strip()]:
        if name in BASELINES:
            imputers[name] = BASELINES[name]
        elif name == "heterovae" or name in MODEL_VARIANTS:
            try:
                imputers[name] = heterovae_factory({**MODEL_VARIANTS.get(name, {}), **json.loads(args.vae_params)},
                                                    threads=args.threads)
            except ImportError as exc:
                msg = f"skipped heterovae: HeterogeneousVAEImputer not available ({exc})"
                print(msg, flush=True)
                notes.append(msg)
        else:
            raise SystemExit(f"unknown imputer {name!r}; choose from "
                             f"{', '.join(list(BASELINES) + ['heterovae'] + list(MODEL_VARIANTS))}")

    started = time.perf_counter()
    rows, per_column, masks = [], {}, {}
    for dname in [s.strip() for s in args.datasets.split(",") if s.strip()]:
        ds, how = load_benchmark_data(dname, args.seed, args.mask, args.root)
        train, test = split_rows(len(ds.data), args.seed, args.max_rows)
        masks[dname] = how
        for iname, factory in imputers.items():
            with warnings.catch_warnings():
                # IterativeImputer warns when max_iter stops it early: expected.
                warnings.filterwarnings("ignore", message=".*Early stopping criterion")
                errors, seconds = run_one(factory, ds, train, test, args.seed)
            num, dis = _kind_means(errors, ds.specs)
            row = dict(dataset=dname, imputer=iname, n_train=len(train),
                       n_test=len(test), error=errors.mean(), numeric=num,
                       discrete=dis, seconds=seconds)
            rows.append(row)
            per_column[(dname, iname)] = errors
            print(f"{dname:9s} {iname:11s} error {row['error']:.4f} "
                  f"(numeric {_fmt(num)}, discrete {_fmt(dis)}) {seconds:7.1f} s",
                  flush=True)

    total = time.perf_counter() - started
    report = format_report(command, args, rows, per_column, masks, notes, total)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
        print(f"wrote {args.out}")
    else:
        print(report)
    return report


def _baseline_settings() -> str:
    from heterovae import baselines as b

    return (
        f"Baselines: knn = KNNImputer({b.KNN_NEIGHBOURS} neighbours) on "
        "standardised columns, categories one-hot (knn-codes: as codes); "
        f"iterative = IterativeImputer(BayesianRidge, max_iter={b.ITERATIVE_MAX_ITER}) "
        "on standardised columns, unordered categories one-hot, binary and ordinal ones as codes "
        "(iterative-codes: every category as codes); missforest = "
        f"IterativeImputer(ExtraTreesRegressor(n_estimators={b.FOREST_TREES}, "
        f"min_samples_leaf={b.FOREST_MIN_LEAF}), max_iter={b.ITERATIVE_MAX_ITER}), "
        "categories as codes; missforest-rf = MissForest as published (random forests of "
        f"{b.MISSFOREST_TREES} trees, classifiers for discrete columns, at most "
        f"{b.MISSFOREST_MAX_ITER} passes, stopped when the change grows), fitted on the train rows, "
        "its kept forests run over the test rows; imputed codes rounded and clipped to valid ones, numbers clipped to "
        "the column's training range."
    )


def format_report(command, args, rows, per_column, masks, notes, total=None) -> str:
    import os

    import sklearn

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    lines = [
        "# Imputation benchmark",
        "",
        "```",
        command,
        "```",
        "",
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"pandas {pd.__version__}, numpy {np.__version__}; {args.threads} thread(s); "
        f"seed {args.seed}; {f'at most {args.max_rows}' if args.max_rows else 'all'} rows per dataset, "
        f"split {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} train/test. "
        f"Machine: {os.cpu_count()} CPU cores (load average {load:.1f} at the "
        f"end); whole run {_fmt(total, 0)} s wall time.",
        "",
        "Masks: " + "; ".join(f"{d}: {m}" for d, m in masks.items()) + ".",
        "",
        _baseline_settings(),
        "",
        "error = mean over columns of the per-column error on the masked test "
        "cells (NRMSE for real/pos/count, error rate for binary/cat/ordinal); "
        "numeric / discrete = the mean over those columns only; seconds = fit on "
        "the train rows + transform of the test rows, wall time.",
        "",
        "| dataset | imputer | train rows | test rows | error | numeric | discrete | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['imputer']} | {r['n_train']} | {r['n_test']} | "
            f"{_fmt(r['error'])} | {_fmt(r['numeric'])} | {_fmt(r['discrete'])} | "
            f"{r['seconds']:.1f} |")
    for note in notes:
        lines += ["", note]
    if args.per_column:
        lines += ["", "## Per-column errors", ""]
        for dname in dict.fromkeys(r["dataset"] for r in rows):
            table = pd.DataFrame({i: e for (d, i), e in per_column.items() if d == dname})
            lines += [f"### {dname}", "", "| column | " + " | ".join(table.columns) + " |",
                      "| --- |" + " ---: |" * table.shape[1]]
            for col, vals in table.iterrows():
                lines.append(f"| {col} | " + " | ".join(_fmt(v) for v in vals) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""MOO cocktail benchmark: plain training vs the paper's 12 method combinations.

Protocol, per dataset (adult, credit and wine with their fixed mask
``Missing20_<--mask>.csv``) and per seed ``0 .. --seeds - 1``:

1. the seed draws a random subset of ``--max-rows`` rows and splits it 80/20
   into train and test rows (:func:`benchmarks.imputation.split_rows`);
2. every spec of :func:`heterovae.moo.cocktail` (``None`` = plain training
   and the 11 combinations of {none, gradnorm, mgda-ub, imtlg} x {none,
   graddrop, pcgrad}) trains ``HeterogeneousVAEImputer(moo=spec,
   random_state=seed, **vae_params)`` on the masked train rows and imputes
   the masked test rows (:func:`benchmarks.imputation.run_one`);
3. the score is the mean over columns of the per-column error on the masked
   test cells (NRMSE for numeric columns, error rate for discrete ones).

The report ranks the combinations by their mean score over seeds, and
compares plain training with (a) the best combination of each dataset and
(b) the pre-registered ``("imtlg", "pcgrad")`` by the corrected resampled
paired t-test of Nadeau and Bengio (:func:`heterovae.metrics.corrected_paired_ttest`).
Estimator settings are the estimator's defaults, read from it at run time,
updated by ``--vae-params``.

Every fit is appended to a JSON-lines file (``--results``) as soon as it
ends; a run that is stopped resumes from it, and ``--report-only`` writes
the tables from whatever it holds.

    python benchmarks/moo_cocktail.py --out docs/benchmarks/moo_cocktail.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.imputation import heterovae_factory, load_benchmark_data, run_one, split_rows  # noqa: E402
from benchmarks.provenance import code_version  # noqa: E402
from heterovae.metrics import corrected_paired_ttest, imputation_error  # noqa: E402
from heterovae.moo import cocktail  # noqa: E402

PRE_REGISTERED = ("imtlg", "pcgrad")
VANILLA = "vanilla"


def spec_label(spec) -> str:
    """``None`` -> ``"vanilla"``, ``("imtlg", "none")`` -> ``"imtlg"``, pairs joined by ``+``."""
    if spec is None:
        return VANILLA
    parts = [p for p in spec if p != "none"]
    return "+".join(parts) if parts else VANILLA


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="wine,credit,adult", help="(default: %(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: %(default)s)")
    p.add_argument("--max-rows", type=int, default=1000,
                   help="rows drawn per dataset and seed before the 80/20 split (default: %(default)s)")
    p.add_argument("--mask", type=int, default=1, help="which Missing20_K.csv (default: %(default)s)")
    p.add_argument("--vae-params", default="{}",
                   help="JSON dict of HeterogeneousVAEImputer parameters over its defaults")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per process (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes, each fitting one (seed, dataset) at a time (default: %(default)s)")
    p.add_argument("--root", default=None,
                   help="datasets folder (default: $HETEROVAE_DATASETS or ../shared/datasets next to the repository)")
    p.add_argument("--results", default=None,
                   help="JSON lines of every fit, appended as they end and resumed from; only lines "
                   "with this run's settings count (default: --out with suffix .jsonl, else "
                   "moo_cocktail_results.jsonl)")
    p.add_argument("--also-impute-with", default="mode",
                   help="comma-separated impute_with values also scored from the same fits (transform only); "
                   "'' for none (default: %(default)s)")
    p.add_argument("--report-only", action="store_true", help="write the report from --results without fitting")
    p.add_argument("--out", default=None, help="write the markdown report here")
    return p.parse_args(argv)


def _config(args, vae_params) -> dict:
    """What makes two fits comparable: lines of other settings are neither resumed nor reported."""
    also = [h.strip() for h in args.also_impute_with.split(",") if h.strip()]
    return dict(vae_params=vae_params, max_rows=args.max_rows, mask=args.mask, also_impute_with=also)


def _read_results(path, config):
    rows = []
    if path and Path(path).exists():
        with open(path) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if r.get("config") == config]


def _limit_threads(threads):
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    torch.set_num_threads(threads)


def _run_task(task, config, results_path, root, threads, done=frozenset(), code=None):
    """Fit every combination on one (seed, dataset); append each result as it ends."""
    seed, dname = task
    _limit_threads(threads)
    ds, how = load_benchmark_data(dname, seed, config["mask"], root)
    train, test = split_rows(len(ds.data), seed, config["max_rows"])
    for spec in cocktail():
        label = spec_label(spec)
        if (dname, seed, label) in done:
            continue
        make = heterovae_factory({**config["vae_params"], "moo": spec}, threads=threads)
        made = []

        def factory(specs, random_state):
            made.append(make(specs, random_state))  # kept to score other point estimates of the same fit
            return made[-1]

        cpu = time.process_time()
        errors, seconds = run_one(factory, ds, train, test, seed)
        cpu = time.process_time() - cpu
        row = dict(config=config, dataset=dname, seed=seed, moo=label, mask=how, n_train=len(train),
                   n_test=len(test), error=float(errors.mean()), seconds=seconds, cpu_seconds=cpu,
                   columns={str(k): float(v) for k, v in errors.items()}, alt={}, code=code)
        for point in config["also_impute_with"] if made else ():
            alt_errors = _rescore(made[-1], point, ds, test)
            row["alt"][point] = dict(error=float(alt_errors.mean()),
                                     columns={str(k): float(v) for k, v in alt_errors.items()})
        with open(results_path, "a") as fh:  # one short appended line per fit: safe across workers
            fh.write(json.dumps(row) + "\n")
        print(f"{dname:7s} seed {seed} {label:18s} error {row['error']:.4f} "
              f"{seconds:6.1f} s ({cpu:.1f} CPU s)", flush=True)


def _rescore(imputer, impute_with, ds, test):
    """Per-column errors of the fitted ``imputer`` when it imputes with ``impute_with`` instead."""
    imputer.set_params(impute_with=impute_with)
    X_test = ds.masked().iloc[test].reset_index(drop=True)
    truth = ds.data.iloc[test].reset_index(drop=True)
    mask = ds.mask.iloc[test].reset_index(drop=True)
    return imputation_error(truth, imputer.transform(X_test), mask, ds.specs)


def _check_same_code(rows, code):
    """Fits of other code are not resumed silently (a default or a fix may have changed since)."""
    other = sorted({r.get("code", "unknown (not recorded)") for r in rows} - {code})
    if other:
        raise SystemExit(f"the results file holds fits of these settings made by other code ({', '.join(other)}; "
                         f"this is {code}): give a new --results file, or rebuild their report with --report-only")


def run(args, vae_params, results_path):
    config = _config(args, vae_params)
    code = code_version()
    _limit_threads(args.threads)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    previous = _read_results(results_path, config)
    _check_same_code(previous, code)
    done = frozenset((r["dataset"], r["seed"], r["moo"]) for r in previous)
    # Seeds outermost: a run cut short still has complete seeds on every dataset.
    tasks = [(seed, dname) for seed in range(args.seeds) for dname in datasets
             if any((dname, seed, spec_label(s)) not in done for s in cocktail())]
    if args.jobs == 1:
        for task in tasks:
            _run_task(task, config, results_path, args.root, args.threads, done, code)
        return
    # Every fit is seeded on its own, so the results do not depend on --jobs.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_task, task, config, results_path, args.root, args.threads, done, code)
                   for task in tasks]
        for future in futures:
            future.result()


def _fmt(x, digits=4):
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _p(x):
    return "–" if not np.isfinite(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def _provenance(rows) -> str:
    """Which code made the fits, against the code writing the report (whose defaults are stated)."""
    here = code_version()
    made = sorted({r.get("code") or "not recorded" for r in rows})
    if not rows or made == [here]:
        return f"Fits and report by the same code ({here})."
    return (f"Fits made by code {', '.join(made)}; report written by {here}: where they differ, the fits' "
            "settings may differ from those stated.")


def format_report(command, args, settings, rows, wall=None) -> str:
    frame = pd.DataFrame(rows)
    labels = [spec_label(s) for s in cocktail()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# MOO cocktail benchmark: plain training vs multi-objective methods",
        "",
        "```",
        command,
        "```",
        "",
        f"Python {platform.python_version()}, torch {__import__('torch').__version__}; "
        f"{args.jobs} process(es) of {args.threads} thread(s); {os.cpu_count()} CPU cores shared with other jobs (load average "
        f"{load:.1f} at the end)" + (f"; {wall:.0f} s wall time for the fits of this invocation" if wall else "")
        + ".",
        "",
        "Estimator settings (the defaults of `HeterogeneousVAEImputer` in the code that wrote this "
        "report, updated by `--vae-params`): " + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + ". "
        + _provenance(rows),
        "",
        "Per dataset and seed: a random subset of rows (seeded) split 80/20 into train/test; the "
        "fixed mask file hides 20 % of the cells; each imputer is fitted on the masked train rows "
        "and scored on the masked test cells. error = mean over columns of the per-column error "
        "(NRMSE for real/pos/count, error rate for binary/cat/ordinal); lower is better. The seed "
        "also seeds the model (`random_state`).",
        "",
    ]
    if frame.empty:
        return "\n".join(lines + ["No results yet."]) + "\n"

    summary, overlooked, details = _sections(frame, labels)
    n_seeds = int(frame["seed"].nunique())
    ratio = float((frame["n_test"] / frame["n_train"]).iloc[0])
    notes = [
        "Notes:",
        "",
        "* *best MOO* is chosen per dataset as the combination with the lowest mean error over the "
        "same seeds that the test then uses: picking the best of 11 on the test data is optimistic "
        "(selection bias), so its p-value is not a valid test of that combination; read it as an upper "
        "bound on the evidence. The `imtlg+pcgrad` columns are the pre-registered comparison (the "
        "combination chosen before the run), for which the p-value is valid.",
        f"* With J = {n_seeds} seeds the corrected t-test has {n_seeds - 1} degrees of freedom and, for "
        "this 80/20 split, multiplies the variance of the mean difference by (1/J + n_test/n_train) / (1/J) "
        f"= {1 + n_seeds * ratio:.2f} compared with the ordinary paired t-test; only large and consistent "
        "differences reach p < 0.05.",
        "* CPU s per fit: process CPU time of fit + transform, averaged over seeds; the first fit of "
        "an invocation also pays one-off warm-up.",
        "* The p-values of the per-dataset detail tables are uncorrected for the 11 comparisons.",
        "* The mean over columns is not robust: one column with an absurd imputation dominates it (the "
        "log-normal *mean* of a positive column explodes when the model predicts a large sigma, which is "
        "why `impute_with='auto'` takes a positive column's mean only where it imputed held-out training cells better than the median); the largest single per-column "
        "error of this view is " + _worst(frame) + ". The views below score the same fits with other "
        "point estimates.",
    ]
    overlooked_section = []
    if overlooked:
        overlooked_section = [
            "## Columns plain training overlooks most", "",
            "Per dataset, the three columns with the largest ratio of vanilla's mean error to the best "
            "combination's (over the same seeds), and the three with the smallest: where the method helps "
            "and where it costs.", "",
            "| dataset | best MOO | largest vanilla / MOO error ratios | smallest |",
            "| --- | --- | --- | --- |"] + overlooked + [""]
    out = lines + summary + [""] + notes + [""] + overlooked_section + ["## All combinations", ""] + details
    for point in (frame["alt"].iloc[0] if "alt" in frame else {}):
        view = frame.copy()
        view["error"] = [r[point]["error"] for r in frame["alt"]]
        view["columns"] = [r[point]["columns"] for r in frame["alt"]]
        alt_summary, alt_overlooked, alt_details = _sections(view, labels)
        out += [f"## The same fits, imputing with impute_with={point!r}", "",
                "Each fitted imputer above also imputed the test rows with "
                f"`set_params(impute_with={point!r})` (no refit); everything else as above. The largest "
                f"single per-column error of this view is {_worst(view)}.", ""]
        out += alt_summary[2:] + [""]
        out += ["| dataset | best MOO | largest vanilla / MOO error ratios | smallest |",
                "| --- | --- | --- | --- |"] + alt_overlooked + [""] + alt_details
    return "\n".join(out) + "\n"


def _sections(frame, labels):
    """Summary rows, overlooked-columns rows and detail tables of one view of the results."""
    summary = ["## Plain training vs MOO", "",
               "mean ± sd over seeds; diff = MOO − vanilla (negative: MOO better); p = two-sided corrected "
               "paired t-test (Nadeau & Bengio) over the seeds.", "",
               "| dataset | rows (train/test) | seeds | vanilla | best MOO | its error | diff | p | "
               "imtlg+pcgrad | diff | p |",
               "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    details, overlooked = [], []
    for dname in dict.fromkeys(frame["dataset"]):
        sub = frame[frame["dataset"] == dname]
        table = sub.pivot_table(index="seed", columns="moo", values="error")
        # only seeds on which every combination ran, so all means are over the same runs
        table = table.dropna(axis=0, how="any")
        present = [label for label in labels if label in table.columns]
        n_train, n_test = int(sub["n_train"].iloc[0]), int(sub["n_test"].iloc[0])
        seeds = len(table)
        means = table[present].mean()
        sds = table[present].std(ddof=1) if seeds > 1 else means * np.nan
        cpu = sub.groupby("moo")["cpu_seconds"].mean()

        def compare(label):
            if VANILLA not in table or label not in table or seeds < 2:
                return np.nan, np.nan
            test = corrected_paired_ttest(table[label], table[VANILLA], n_train, n_test)
            return test.mean_difference, test.pvalue

        moo_labels = [label for label in present if label != VANILLA]
        best = min(moo_labels, key=lambda label: means[label]) if moo_labels else None
        best_diff, best_p = compare(best) if best else (np.nan, np.nan)
        pre = "+".join(PRE_REGISTERED)
        pre_diff, pre_p = compare(pre)
        summary.append(
            f"| {dname} | {n_train}/{n_test} | {seeds} | "
            f"{_fmt(means.get(VANILLA, np.nan))} ± {_fmt(sds.get(VANILLA, np.nan))} | {best or '–'} | "
            f"{_fmt(means.get(best, np.nan))} ± {_fmt(sds.get(best, np.nan))} | {_fmt(best_diff)} | {_p(best_p)} | "
            f"{_fmt(means.get(pre, np.nan))} ± {_fmt(sds.get(pre, np.nan))} | {_fmt(pre_diff)} | {_p(pre_p)} |")

        details += [f"### {dname} ({sub['mask'].iloc[0]}; {n_train} train / {n_test} test rows; "
                    f"{seeds} seeds)", "",
                    "| moo | error (mean ± sd) | diff to vanilla | p | wins over vanilla | CPU s per fit |",
                    "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for label in sorted(present, key=lambda label: means[label]):
            diff, p = compare(label) if label != VANILLA else (np.nan, np.nan)
            wins = "–" if label == VANILLA else f"{int((table[label] < table[VANILLA]).sum())}/{seeds}"
            details.append(f"| {label} | {_fmt(means[label])} ± {_fmt(sds[label])} | {_fmt(diff)} | {_p(p)} | "
                           f"{wins} | {cpu.get(label, np.nan):.1f} |")
        details.append("")
        if best and "columns" in sub:
            overlooked.append(_overlooked_columns(sub, table.index, best))

    return summary, overlooked, details


def _worst(frame) -> str:
    """The largest per-column error of any fit, and where it happened."""
    worst = max(((v, r["dataset"], r["moo"], r["seed"], c) for _, r in frame.iterrows()
                 for c, v in r["columns"].items() if np.isfinite(v)), default=None)
    if worst is None:
        return "–"
    v, dname, label, seed, column = worst
    return f"{v:.4g} ({dname}, {label}, seed {seed}, column {column})"


def _overlooked_columns(sub, seeds, best) -> str:
    """One table row: the columns whose error ratio vanilla / best is largest and smallest."""
    def mean_columns(label):
        rows = sub[(sub["moo"] == label) & sub["seed"].isin(seeds)]
        return pd.DataFrame(list(rows["columns"])).mean()

    vanilla, moo = mean_columns(VANILLA), mean_columns(best)
    ratio = (vanilla / moo).replace([np.inf, -np.inf], np.nan).dropna().sort_values(ascending=False)

    def show(items):
        return ", ".join(f"{c} {vanilla[c]:.3f}/{moo[c]:.3f} ({r:.2f}x)" for c, r in items.items())

    return f"| {sub['dataset'].iloc[0]} | {best} | {show(ratio.head(3))} | {show(ratio.tail(3)[::-1])} |"


def main(argv=None):
    args = parse_args(argv)
    argv_list = sys.argv[1:] if argv is None else list(argv)
    # --report-only only re-reads the fits; the table names the command that made them
    shown = [a for a in argv_list if a != "--report-only"]
    command = "python benchmarks/moo_cocktail.py" + (" " + shlex.join(shown) if shown else "")
    print(command, flush=True)
    from heterovae.imputer import HeterogeneousVAEImputer

    vae_params = json.loads(args.vae_params)
    if not isinstance(vae_params, dict):
        raise SystemExit(f"--vae-params must be a JSON object, got {args.vae_params!r}")
    unknown = set(vae_params) - set(HeterogeneousVAEImputer().get_params())
    if unknown or "moo" in vae_params:
        raise SystemExit(f"--vae-params: {sorted(unknown | ({'moo'} & set(vae_params)))} are not parameters "
                         "this benchmark can set")
    defaults = HeterogeneousVAEImputer().get_params()
    shown = ("model", "max_epochs", "batch_size", "lr", "hidden_dim", "n_layers", "latent_dim", "cell_dropout",
             "kl_weight", "nll_beta", "impute_with", "moo_rescale", "moo_params")
    settings = {k: {**defaults, **vae_params}[k] for k in shown if k in defaults}
    settings.update({k: v for k, v in vae_params.items() if k not in settings})

    results = args.results or (str(Path(args.out).with_suffix(".jsonl")) if args.out else "moo_cocktail_results.jsonl")
    wall = None
    if not args.report_only:
        started = time.perf_counter()
        run(args, vae_params, results)
        wall = time.perf_counter() - started
    datasets = [d.strip() for d in args.datasets.split(",")]
    rows = [r for r in _read_results(results, _config(args, vae_params))
            if r["dataset"] in datasets and r["seed"] < args.seeds]
    report = format_report(command, args, settings, rows, wall)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
        print(f"wrote {args.out}")
    print(report)
    return report


if __name__ == "__main__":
    main()

"""Does a search with ``score()`` pick each table's training length?

The default ``max_epochs="auto"`` trains about 4,000 steps on any table of
5,000 to 21,000 rows. Some tables want more (diamonds) and some fewer
(adult). The documented way to choose per table is a search that maximises
:meth:`~heterovae.HeterogeneousVAEImputer.score`. For each dataset and each
candidate ``max_epochs`` this script reports

- the search's validation score: fitted on 80 % of the training rows of the
  imputation benchmark's split, scored on the other 20 % (``score()`` hides
  a fifth of their observed cells and imputes them), as ``GridSearchCV``
  with one shuffle split computes it;
- the test error: fitted on all training rows, scored on the masked cells
  of the test rows, exactly as ``benchmarks/imputation.py`` does;

so one can read whether the candidate the search picks is the one with the
lowest test error. Not a timed test; one run per setting.

Example::

    python benchmarks/training_length.py --datasets diamonds,adult --epochs 125,250,375
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.model_selection import GridSearchCV, ShuffleSplit  # noqa: E402

from benchmarks.imputation import heterovae_factory, load_benchmark_data, run_one, split_rows  # noqa: E402
from benchmarks.provenance import code_version  # noqa: E402
from heterovae.training import n_batches  # noqa: E402
from heterovae.vae.registry import MODELS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="diamonds,adult", help="comma-separated dataset names")
    p.add_argument("--epochs", default="125,250,375", help="comma-separated max_epochs candidates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-rows", type=int, default=10000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vae-params", default="{}", help="JSON of further HeterogeneousVAEImputer parameters")
    p.add_argument("--root", default=None, help="datasets folder")
    p.add_argument("--out", default=None, help="write the Markdown report here")
    return p.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    candidates = [int(e) for e in args.epochs.split(",")]
    params = json.loads(args.vae_params)
    lines = []
    start_all = time.perf_counter()
    for name in args.datasets.split(","):
        ds, how = load_benchmark_data(name, args.seed, root=args.root)
        train, test = split_rows(len(ds.data), args.seed, args.max_rows)
        X_train = ds.masked().iloc[train].reset_index(drop=True)
        make = heterovae_factory(params, threads=args.threads)
        search = GridSearchCV(make(ds.specs, args.seed), {"max_epochs": candidates},
                              cv=ShuffleSplit(n_splits=1, test_size=0.2, random_state=args.seed), refit=False)
        t0 = time.perf_counter()
        search.fit(X_train)
        search_seconds = time.perf_counter() - t0
        valid = search.cv_results_["mean_test_score"]
        chosen = candidates[int(np.argmax(valid))]
        model = params.get("model", "vae")
        batch = params.get("batch_size") or MODELS[model].default_sizes(len(ds.specs))["batch_size"]
        for epochs, score in zip(candidates, valid):
            fixed = dict(params, max_epochs=epochs)
            errors, seconds = run_one(heterovae_factory(fixed, threads=args.threads), ds, train, test, args.seed)
            steps = epochs * n_batches(len(train), batch)
            mark = " (chosen)" if epochs == chosen else ""
            lines.append(f"| {name} | {epochs}{mark} | {steps} | {-score:.4f} | {errors.mean():.4f} | {seconds:.1f} |")
            print(lines[-1], flush=True)
        lines.append(f"| {name} | search: {search_seconds:.0f} s for {len(candidates)} fits | | | | |")
    total = time.perf_counter() - start_all
    command = "python benchmarks/training_length.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    report = "\n".join([
        "# Training length chosen by a search on score()",
        "",
        f"```\n{command}\n```",
        "",
        f"Python {platform.python_version()}, torch {torch.__version__}; {args.threads} thread(s); seed {args.seed}; "
        f"the imputation benchmark's split (at most {args.max_rows} rows, 80/20); whole run {total:.0f} s wall time. "
        f"Other parameters: {params or 'the defaults'}; code {code_version()}.",
        "",
        "validation error = minus `score()` of a fit on 80 % of the training rows, on the other 20 % "
        "(`GridSearchCV` with one `ShuffleSplit`); test error = the imputation benchmark's error of a fit on all "
        "training rows; seconds = that fit and the test transform. (chosen) = the search's pick.",
        "",
        "| dataset | max_epochs | steps | validation error | test error | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *lines,
        "",
    ])
    if args.out:
        Path(args.out).write_text(report)
    return report


if __name__ == "__main__":
    print(main())

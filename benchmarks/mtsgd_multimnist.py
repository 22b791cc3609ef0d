"""Multi-MNIST: MT-SGD against its baselines on accuracy, calibration and time.

Every method trains M particle LeNets (the multi-task LeNet of Sener &
Koltun 2018 used by Phan et al. 2022: conv-pool-conv-pool-fc shared, one
linear head per digit) on the same subset with the same seed, optimiser and
epochs, in one run, and the script prints a Markdown table of the ensemble's
per-task accuracy, Brier score, ECE and NLL on the test pairs and the
seconds per training epoch (with the ratio to the "linear" ensemble, the
only comparison that means something on a shared machine).

Size: 2000 training and 1000 test pairs, 6 epochs of batch 64, M = 5:
a quarter of an hour on one loaded CPU core. One torch thread by default:
on the shared 2-core machine two threads were measured 2-3x slower per
step than one (contention with the other jobs).

With ``--seeds 0 1 2`` every seed draws its own training/test pairs
(``load_multimnist(random_state=seed)``), network initialisation and batch
order; the report then gives mean +- std over seeds and, for every method
against "linear", the paired difference per seed with a paired t-test
(``scipy.stats.ttest_rel``; df = seeds - 1). ``--results FILE`` appends
one JSON line per (seed, method) as it finishes, and ``--from-results FILE``
rebuilds the report from such a file without training (so a run cut short
still yields a table of what finished). One seed gives the single-seed
table as before.

Reproduce the committed table (docs/benchmarks/mtsgd_multimnist.md) with::

    python benchmarks/mtsgd_multimnist.py --seeds 0 1 2 \\
        --results mtsgd_multimnist_runs.jsonl --out docs/benchmarks/mtsgd_multimnist.md
"""

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heterovae.datasets import load_multimnist  # noqa: E402
from heterovae.metrics import multitask_scores  # noqa: E402
from heterovae.mtsgd.estimators import MTSGDClassifier  # noqa: E402

#: (label, estimator parameters) compared in one run.
CONFIGS = [
    ("linear", dict(method="linear")),
    ("mgda", dict(method="mgda")),
    ("pareto-mtl", dict(method="pareto-mtl")),
    ("moo-svgd (params)", dict(method="moo-svgd", kernel_space="params")),
    ("mt-sgd (params)", dict(method="mt-sgd", kernel_space="params")),
    ("mt-sgd (outputs)", dict(method="mt-sgd", kernel_space="outputs")),
    ("mt-sgd-features (params)", dict(method="mt-sgd-features", kernel_space="params")),
]


class LeNetBackbone(nn.Module):
    """Shared part of the multi-task LeNet for 1x36x36 inputs (50 features)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=9)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc = nn.Linear(20 * 5 * 5, 50)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = torch.relu(self.pool(self.conv1(x)))
        x = torch.relu(self.pool(self.conv2(x)))
        return torch.relu(self.fc(x.flatten(1)))


METRICS = ("accuracy", "brier", "ece", "nll")
LABELS = {"accuracy": "acc", "brier": "Brier", "ece": "ECE", "nll": "NLL"}


def run_one(args, seed, label, params, data):
    """Train one method on one seed; return a JSON-able record."""
    X_tr, X_te, Y_tr, Y_te = data
    clf = MTSGDClassifier(
        LeNetBackbone,
        n_particles=args.particles,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        temperature=args.temperature,
        random_state=seed,
        **params,
    )
    start = time.perf_counter()
    clf.fit(X_tr, Y_tr)
    per_epoch = (time.perf_counter() - start) / args.epochs
    scores = multitask_scores(Y_te, clf.predict_proba(X_te), classes=clf.classes_)
    record = {"seed": seed, "method": label, "sec_per_epoch": per_epoch,
              "settings": run_settings(args, len(X_tr), len(X_te))}
    for m in METRICS:
        record[m] = [float(v) for v in scores[m]]
    return record


def run_settings(args, n_train, n_test):
    """What a record was trained with, so that a rebuilt report states it rather than assumes it."""
    return {"n_train": n_train, "n_test": n_test, "particles": args.particles, "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "temperature": args.temperature,
            "threads": torch.get_num_threads()}


def check_record_settings(records, expected):
    """Refuse to report records trained otherwise than the report says; a note for records that
    predate recorded settings (their settings are then the command's, unchecked)."""
    differ = {}
    for r in records:
        for key, value in r.get("settings", {}).items():
            if key in expected and expected[key] != value:
                differ.setdefault(key, set()).add(value)
    if differ:
        raise SystemExit("the records were trained with other settings than this command's: " + "; ".join(
            f"{k}: {sorted(v)} (command: {expected[k]})" for k, v in sorted(differ.items())))
    unrecorded = sum("settings" not in r for r in records)
    if unrecorded:
        return (f" {unrecorded} of the {len(records)} records predate recorded settings; for those, the "
                "settings stated here are the command's, not checked against the records.")
    return ""


def single_seed_table(records):
    """The original one-seed table (values, seconds per epoch, ratio to linear)."""
    base = next((r["sec_per_epoch"] for r in records if r["method"] == "linear"), None)
    lines = [
        "| method | acc 1 | acc 2 | Brier 1 | Brier 2 | ECE 1 | ECE 2 | NLL 1 | NLL 2 "
        "| s / epoch | x linear |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in records:
        sec = r["sec_per_epoch"]
        ratio = f"{sec / base:.2f}" if base else "-"
        cells = [f"{r[m][t]:.4f}" for m in METRICS for t in (0, 1)]
        lines.append(f"| {r['method']} | " + " | ".join(cells) + f" | {sec:.2f} | {ratio} |")
    return lines


def _by_method(records):
    """{method: {seed: record}} in the order of CONFIGS."""
    order = {label: i for i, (label, _) in enumerate(CONFIGS)}
    out = {}
    for r in sorted(records, key=lambda r: order.get(r["method"], len(order))):
        out.setdefault(r["method"], {})[r["seed"]] = r
    return out


def multi_seed_tables(records, paired_against=("linear",)):
    """Mean +- std over seeds, then paired differences against each baseline."""
    by_method = _by_method(records)
    base = by_method.get("linear", {})
    lines = [
        "Mean +- standard deviation (ddof=1) over the seeds each method finished "
        "(n). \"x linear\" is the mean over seeds of the per-seed ratio of seconds per "
        "epoch to the linear ensemble of the same seed (same process, same load period).",
        "",
        "| method | n | acc 1 | acc 2 | Brier 1 | Brier 2 | ECE 1 | ECE 2 | NLL 1 | NLL 2 "
        "| s / epoch | x linear |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, runs in by_method.items():
        seeds = sorted(runs)
        cells = []
        for m in METRICS:
            for t in (0, 1):
                v = np.array([runs[s][m][t] for s in seeds])
                sd = v.std(ddof=1) if len(v) > 1 else float("nan")
                cells.append(f"{v.mean():.4f} ± {sd:.4f}")
        sec = np.array([runs[s]["sec_per_epoch"] for s in seeds])
        ratios = [runs[s]["sec_per_epoch"] / base[s]["sec_per_epoch"] for s in seeds if s in base]
        ratio = f"{np.mean(ratios):.2f}" if ratios else "-"
        lines.append(
            f"| {label} | {len(seeds)} | " + " | ".join(cells) + f" | {sec.mean():.2f} | {ratio} |"
        )
    for reference in paired_against:
        lines += paired_table(by_method, reference)
    return lines


def paired_table(by_method, reference):
    """Paired differences (method minus ``reference``) over the shared seeds."""
    base = by_method.get(reference, {})
    lines = [
        "",
        f"Paired differences against \"{reference}\" on the same seed (method minus "
        f"{reference}; negative ECE and positive accuracy favour the method): mean over the shared "
        "seeds, and the two-sided p-value of the paired t-test across seeds "
        "(`scipy.stats.ttest_rel`, df = n - 1). \"mean\" averages the two tasks per "
        "seed before testing.",
        "",
        "| method | n | ΔECE 1 (p) | ΔECE 2 (p) | ΔECE mean (p) | Δacc 1 (p) | Δacc 2 (p) "
        "| Δacc mean (p) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, runs in by_method.items():
        if label == reference:
            continue
        shared = sorted(set(runs) & set(base))
        cells = []
        for m in ("ece", "accuracy"):
            for t in (0, 1, "mean"):
                a = np.array([np.mean(runs[s][m]) if t == "mean" else runs[s][m][t] for s in shared])
                b = np.array([np.mean(base[s][m]) if t == "mean" else base[s][m][t] for s in shared])
                d = a - b
                if len(d) >= 2 and np.ptp(d) > 0:
                    p = f"{stats.ttest_rel(a, b).pvalue:.3f}"
                else:
                    p = "-"
                cells.append(f"{d.mean():+.4f} ({p})" if len(d) else "-")
        lines.append(f"| {label} | {len(shared)} | " + " | ".join(cells) + " |")
    return lines


def build_report(args, records, command):
    seeds = sorted({r["seed"] for r in records})
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    rs = f"random_state={seeds[0]}" if len(seeds) == 1 else "random_state=seed"
    lines = [
        "# MT-SGD on Multi-MNIST",
        "",
        f"Command: `{command.strip()}`"
        + (
            " (this table was rebuilt with `--from-results` from recorded runs; where "
            "they were made in several invocations, the timing ratios compare runs made "
            "minutes apart)"
            if args.from_results
            else ""
        ),
        "",
        f"Multi-MNIST built by `load_multimnist({args.n_train}, {args.n_test}, "
        f"{rs})`; LeNet backbone (conv-pool-conv-pool-fc, 50 "
        f"features), linear heads; M = {args.particles} particles, {args.epochs} epochs, "
        f"batch {args.batch_size}, Adam lr {args.lr}, temperature {args.temperature}, "
        f"{seed_text}; {args.threads} CPU threads "
        f"(torch {torch.__version__}, {platform.processor() or platform.machine()}). "
        "Metrics on the test pairs for the particle-averaged probabilities; ECE with "
        "10 equal-width bins on the top-label confidence; Brier = sum over classes, "
        "mean over samples. Task 1 = top-left digit, task 2 = bottom-right digit."
        + (check_record_settings(records, {"n_train": args.n_train, "n_test": args.n_test,
                                           "particles": args.particles, "epochs": args.epochs,
                                           "batch_size": args.batch_size, "lr": args.lr,
                                           "temperature": args.temperature, "threads": args.threads})
           if args.from_results else ""),
        "",
    ]
    if len(seeds) == 1:
        lines += single_seed_table(records)
    else:
        lines += multi_seed_tables(records, args.paired_against)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--particles", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="single seed (ignored if --seeds is given)")
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds: data pairs, init, batch order")
    parser.add_argument("--only", nargs="*", help="labels of CONFIGS to run (default all)")
    parser.add_argument("--results", type=Path, help="append one JSON line per (seed, method) here")
    parser.add_argument("--from-results", type=Path, help="rebuild the report from this JSON-lines file")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument(
        "--paired-against", nargs="+", default=["linear"], metavar="LABEL",
        help="labels of CONFIGS to give paired differences against (several seeds only)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = args.seeds if args.seeds else [args.seed]
    words = list(sys.argv[1:] if argv is None else argv)
    if args.from_results:
        # Report the command that trains everything in one go, not the rebuild.
        i = words.index("--from-results")
        del words[i : i + 2]
    command = "python benchmarks/mtsgd_multimnist.py " + shlex.join(words)

    if args.from_results:
        records = [json.loads(line) for line in args.from_results.read_text().splitlines() if line.strip()]
        records = [r for r in records if r["seed"] in seeds or not args.seeds]
    else:
        records = []
        warmed = False
        for seed in seeds:
            data = load_multimnist(args.n_train, args.n_test, random_state=seed)
            if not warmed:
                # Untimed warm-up: the first torch optimiser of a process pays one-off
                # imports that would otherwise be billed to whichever method runs first.
                MTSGDClassifier(LeNetBackbone, n_particles=2, max_epochs=1).fit(data[0][:32], data[2][:32])
                warmed = True
            for label, params in CONFIGS:
                if args.only and label not in args.only:
                    continue
                r = run_one(args, seed, label, params, data)
                records.append(r)
                print(
                    f"seed {seed} {label:20s} acc {r['accuracy']} ece {r['ece']} "
                    f"{r['sec_per_epoch']:.2f} s/epoch",
                    flush=True,
                )
                if args.results:
                    with args.results.open("a") as fh:
                        fh.write(json.dumps(r) + "\n")
                if args.out and len(seeds) > 1:
                    # A run cut short still leaves the table of what finished.
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(build_report(args, records, command))

    report = build_report(args, records, command)
    print()
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return records


if __name__ == "__main__":
    main()

"""Seconds per training epoch of HeterogeneousVAEImputer with each MOO method.

Every method is timed in the same run as plain training (moo=None) and
reported as a ratio to it. Methods are interleaved over repeats (round
robin), so drifts in machine load hit all of them alike; each measurement is
the median of skorch's per-epoch durations after the first epoch.

    python benchmarks/moo_epoch_timing.py --datasets credit,wine --out docs/benchmarks/moo_epoch_timing.md
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heterovae import HeterogeneousVAEImputer  # noqa: E402
from heterovae.datasets import load_hivae  # noqa: E402
from heterovae.moo import DIRECTION_METHODS, MAGNITUDE_METHODS  # noqa: E402


def methods():
    single = [None] + list(MAGNITUDE_METHODS) + list(DIRECTION_METHODS)
    return single + [("imtlg", "pcgrad"), ("mgda-ub", "pcgrad"), ("gradnorm", "graddrop")]


def label(spec):
    return "none (vanilla)" if spec is None else spec if isinstance(spec, str) else "+".join(spec)


def epoch_seconds(X, kinds, spec, epochs, device, seed):
    imp = HeterogeneousVAEImputer(moo=spec, likelihoods=kinds, max_epochs=epochs, device=device,
                                  random_state=seed).fit(X)
    return float(np.median(imp.history_[1:, "dur"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="credit,wine")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (the first is not timed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=10000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:]))
    lines = [f"Command: `{command}`", "",
             f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"device {args.device}, {args.threads} thread(s), {time.strftime('%Y-%m-%d')}", ""]
    for name in args.datasets.split(","):
        ds = load_hivae(name, mask=1)
        X = ds.masked()
        if len(X) > args.max_rows:
            X = X.sample(args.max_rows, random_state=0)
        kinds = [s.kind for s in ds.specs]
        specs = methods()
        times = {label(s): [] for s in specs}
        for rep in range(args.repeats):
            for spec in specs:
                times[label(spec)].append(epoch_seconds(X, kinds, spec, args.epochs, args.device, rep))
                print(f"{name} rep {rep} {label(spec):>22}: {times[label(spec)][-1]:.3f} s/epoch", flush=True)
        base = np.median(times["none (vanilla)"])
        lines += [f"### {name}: {len(X)} rows x {X.shape[1]} columns, batch 128", "",
                  "| moo | s/epoch (median) | ratio to vanilla |", "|---|---|---|"]
        for key, values in times.items():
            med = float(np.median(values))
            lines.append(f"| {key} | {med:.3f} | {med / base:.2f} |")
        lines.append("")
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()

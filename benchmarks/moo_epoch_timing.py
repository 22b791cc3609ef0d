"""Seconds per training epoch of HeterogeneousVAEImputer with each MOO method.

Every method is timed in the same run as plain training (moo=None) and
reported as a ratio to it. Methods are interleaved over repeats (round
robin), so drifts in machine load hit all of them alike; each measurement is
the median over the epochs after the first of one fit, and the table gives
the median over repeats. Two clocks: the process CPU time of each epoch
(recorded by a callback; robust on a shared, loaded machine, and the
ratio the targets are read on) and skorch's wall-clock ``dur``.

    python benchmarks/moo_epoch_timing.py --datasets credit,wine --out docs/benchmarks/moo_epoch_timing.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skorch.callbacks import Callback  # noqa: E402

from heterovae import HeterogeneousVAEImputer  # noqa: E402
from heterovae.datasets import load_hivae  # noqa: E402
from heterovae.moo import DIRECTION_METHODS, MAGNITUDE_METHODS  # noqa: E402


def methods():
    single = [None] + list(MAGNITUDE_METHODS) + list(DIRECTION_METHODS)
    return single + [("imtlg", "pcgrad"), ("mgda-ub", "pcgrad"), ("gradnorm", "graddrop")]


def label(spec):
    return "none (vanilla)" if spec is None else spec if isinstance(spec, str) else "+".join(spec)


#: The issue's targets: epoch time of a method at most this many vanilla epochs.
TARGETS = {"imtlg+pcgrad": 1.3, "mgda-ub": 1.5}


class EpochCPUTime(Callback):
    """Records the process CPU seconds of each epoch as ``cpu_dur`` in the history."""

    def on_epoch_begin(self, net, **kwargs):
        self._start = time.process_time()

    def on_epoch_end(self, net, **kwargs):
        net.history.record("cpu_dur", time.process_time() - self._start)


def epoch_seconds(X, kinds, spec, epochs, device, seed):
    """Median (CPU seconds, wall seconds) per epoch, the first epoch left out."""
    imp = HeterogeneousVAEImputer(moo=spec, likelihoods=kinds, max_epochs=epochs, device=device,
                                  callbacks=[EpochCPUTime()], random_state=seed).fit(X)
    return float(np.median(imp.history_[1:, "cpu_dur"])), float(np.median(imp.history_[1:, "dur"]))


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

    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    defaults = HeterogeneousVAEImputer().get_params()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:]))
    lines = [f"Command: `{command}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with "
             f"other jobs, torch {torch.__version__}, device {args.device}, {args.threads} thread(s), "
             f"{time.strftime('%Y-%m-%d')}; estimator defaults otherwise (batch {defaults['batch_size']}, "
             f"hidden {defaults['hidden_dim']}, {defaults['n_layers']} layers).", "",
             f"Each fit trains {args.epochs} epochs; the epochs after the first are timed and their median "
             f"taken; the table gives the median over {args.repeats} repeats (methods interleaved). "
             "CPU = process CPU time (the robust clock on a loaded machine; ratios and targets are read "
             "on it), wall = skorch's `dur`. Target: the issue's bound on the CPU ratio, where it set one.", ""]
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
                cpu, wall = times[label(spec)][-1]
                print(f"{name} rep {rep} {label(spec):>22}: {cpu:.3f} CPU s, {wall:.3f} s wall per epoch",
                      flush=True)
        base = np.median(np.array(times["none (vanilla)"]), axis=0)
        lines += [f"### {name}: {len(X)} rows x {X.shape[1]} columns", "",
                  "| moo | CPU s/epoch | CPU ratio | target | wall s/epoch | wall ratio |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key, values in times.items():
            cpu, wall = np.median(np.array(values), axis=0)
            target = TARGETS.get(key)
            verdict = "" if target is None else f"≤ {target} ({'met' if cpu / base[0] <= target else 'missed'})"
            lines.append(f"| {key} | {cpu:.3f} | {cpu / base[0]:.2f} | {verdict} | {wall:.3f} | {wall / base[1]:.2f} |")
        lines.append("")
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()

"""Cost per training step of each method on Multi-MNIST, interleaved.

On a shared machine the load drifts over minutes, so timing each method in
its own block (as the main benchmark's "s / epoch" column does) mixes
method cost with load changes. Here every round fits every method for one
short epoch, one after the other, and the table reports the median over
rounds of each method's time per step and of its ratio to the "linear"
ensemble *within the same round*.

    python benchmarks/mtsgd_multimnist_timing.py --split --out docs/benchmarks/mtsgd_multimnist_timing.md

``--split`` adds the time per step of each phase of a linear, an MT-SGD
and an "mt-sgd-features" step (kernel on the parameters): forward pass,
backward passes, kernel, weights.
"""

import argparse
import collections
import contextlib
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mtsgd_multimnist import CONFIGS, LeNetBackbone  # noqa: E402
from heterovae.datasets import load_multimnist  # noqa: E402
from heterovae.mtsgd import methods as mth  # noqa: E402
from heterovae.mtsgd.ensemble import ParticleEnsemble  # noqa: E402
from heterovae.mtsgd.estimators import MTSGDClassifier  # noqa: E402

#: Phases of a step timed by ``--split``: (owner, attribute, label).
PHASES = [
    (ParticleEnsemble, "forward", "forward (all particles)"),
    (mth, "_task_gradients", "per-task backward passes"),
    (mth, "_kernel_terms", "kernel terms"),
    (mth, "mtsgd_direction_from_terms", "U, simplex QP, direction"),
    (mth, "_feature_gradients", "per-task backward through the heads only"),
    (mth, "_feature_space_weights", "U from feature gradients, simplex QP"),
]

#: Methods whose steps ``--split`` breaks down.
SPLIT_METHODS = ("linear", "mt-sgd", "mt-sgd-features")


@contextlib.contextmanager
def phase_timer(totals):
    """Wrap the PHASES and the whole rule of each SPLIT_METHODS to accumulate seconds."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in PHASES]
    saved_rules = {m: mth.METHODS[m] for m in SPLIT_METHODS}

    def wrap(f, label):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = f(*args, **kwargs)
            totals[label] += time.perf_counter() - start
            return out
        return timed

    for (owner, name, label), (_, _, f) in zip(PHASES, saved):
        setattr(owner, name, wrap(f, label))
    for m, rule in saved_rules.items():
        mth.METHODS[m] = wrap(rule, "whole update rule")
    try:
        yield
    finally:
        for owner, name, f in saved:
            setattr(owner, name, f)
        mth.METHODS.update(saved_rules)


def split_table(X, Y, args, steps, rounds):
    """Milliseconds per step of each phase of SPLIT_METHODS (params kernel), over rounds."""
    out = {}
    for method in SPLIT_METHODS:
        totals = collections.defaultdict(float)
        with phase_timer(totals):
            for r in range(rounds):
                start = time.perf_counter()
                MTSGDClassifier(
                    LeNetBackbone, n_particles=args.particles, max_epochs=1,
                    batch_size=args.batch_size, random_state=r, method=method,
                ).fit(X, Y)
                totals["whole fit / steps"] += time.perf_counter() - start
        out[method] = {k: 1e3 * v / (steps * rounds) for k, v in totals.items()}
    labels = ["whole fit / steps", PHASES[0][2], "whole update rule"] + [p[2] for p in PHASES[1:]]
    lines = [
        "",
        f"Where the time goes (`--split`, {rounds} fits of each, not interleaved): "
        "milliseconds per step; the rest of a step is the optimiser, batching and "
        "bookkeeping. The phases below \"whole update rule\" are parts of it; the "
        "rest of a rule is its backward pass(es) not listed (linear: one over "
        "everything; mt-sgd-features: one through the backbone) and storing the grads.",
        "",
        "| phase | " + " | ".join(SPLIT_METHODS) + " |",
        "| --- |" + " ---: |" * len(SPLIT_METHODS),
    ]
    for label in labels:
        cells = [f"{out[m][label]:.1f}" if label in out[m] else "-" for m in SPLIT_METHODS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=640, help="rows per timed epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--particles", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", action="store_true",
                        help="also time the phases of a linear, an mt-sgd and an mt-sgd-features step")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, _, Y, _ = load_multimnist(args.n, 0, random_state=0)
    MTSGDClassifier(LeNetBackbone, n_particles=2, max_epochs=1).fit(X[:32], Y[:32])  # warm-up
    steps = -(-args.n // args.batch_size)
    times = {label: [] for label, _ in CONFIGS}
    for r in range(args.rounds):
        for label, params in CONFIGS:
            clf = MTSGDClassifier(
                LeNetBackbone, n_particles=args.particles, max_epochs=1,
                batch_size=args.batch_size, random_state=r, **params,
            )
            start = time.perf_counter()
            clf.fit(X, Y)
            times[label].append((time.perf_counter() - start) / steps)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()), flush=True)
    base = np.array(times["linear"])
    command = "python benchmarks/mtsgd_multimnist_timing.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    lines = [
        "# MT-SGD on Multi-MNIST: cost per step (interleaved)",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"LeNet backbone, M = {args.particles}, batch {args.batch_size}, {steps} steps per "
        f"round, {args.rounds} rounds, {args.threads} torch thread(s); every round runs "
        "every method once in turn. Ratio = median over rounds of (method / linear in "
        "the same round).",
        "",
        "| method | median s / step | min s / step | median ratio to linear |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, t in times.items():
        t = np.array(t)
        lines.append(
            f"| {label} | {np.median(t):.3f} | {t.min():.3f} | {np.median(t / base):.2f} |"
        )
    if args.split:
        lines += split_table(X, Y, args, steps, args.rounds)
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()

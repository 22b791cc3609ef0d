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

Reproduce the committed table (docs/benchmarks/mtsgd_multimnist.md) with::

    python benchmarks/mtsgd_multimnist.py --out docs/benchmarks/mtsgd_multimnist.md
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="labels of CONFIGS to run (default all)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X_tr, X_te, Y_tr, Y_te = load_multimnist(args.n_train, args.n_test, random_state=args.seed)
    # Untimed warm-up: the first torch optimiser of a process pays one-off
    # imports that would otherwise be billed to whichever method runs first.
    MTSGDClassifier(LeNetBackbone, n_particles=2, max_epochs=1).fit(X_tr[:32], Y_tr[:32])
    rows = []
    for label, params in CONFIGS:
        if args.only and label not in args.only:
            continue
        clf = MTSGDClassifier(
            LeNetBackbone,
            n_particles=args.particles,
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            temperature=args.temperature,
            random_state=args.seed,
            **params,
        )
        start = time.perf_counter()
        clf.fit(X_tr, Y_tr)
        per_epoch = (time.perf_counter() - start) / args.epochs
        scores = multitask_scores(Y_te, clf.predict_proba(X_te), classes=clf.classes_)
        rows.append((label, scores, per_epoch))
        print(f"{label:20s} acc {scores['accuracy']} ece {scores['ece']} {per_epoch:.2f} s/epoch", flush=True)

    base = next((r[2] for r in rows if r[0] == "linear"), None)
    command = "python benchmarks/mtsgd_multimnist.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    lines = [
        "# MT-SGD on Multi-MNIST",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Multi-MNIST built by `load_multimnist({args.n_train}, {args.n_test}, "
        f"random_state={args.seed})`; LeNet backbone (conv-pool-conv-pool-fc, 50 "
        f"features), linear heads; M = {args.particles} particles, {args.epochs} epochs, "
        f"batch {args.batch_size}, Adam lr {args.lr}, temperature {args.temperature}, "
        f"seed {args.seed}; {args.threads} CPU threads "
        f"(torch {torch.__version__}, {platform.processor() or platform.machine()}). "
        "Metrics on the test pairs for the particle-averaged probabilities; ECE with "
        "10 equal-width bins on the top-label confidence; Brier = sum over classes, "
        "mean over samples. Task 1 = top-left digit, task 2 = bottom-right digit.",
        "",
        "| method | acc 1 | acc 2 | Brier 1 | Brier 2 | ECE 1 | ECE 2 | NLL 1 | NLL 2 "
        "| s / epoch | x linear |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, s, sec in rows:
        ratio = f"{sec / base:.2f}" if base else "-"
        lines.append(
            f"| {label} | {s['accuracy'][0]:.4f} | {s['accuracy'][1]:.4f} | "
            f"{s['brier'][0]:.4f} | {s['brier'][1]:.4f} | {s['ece'][0]:.4f} | "
            f"{s['ece'][1]:.4f} | {s['nll'][0]:.4f} | {s['nll'][1]:.4f} | {sec:.2f} | {ratio} |"
        )
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return rows


if __name__ == "__main__":
    main()

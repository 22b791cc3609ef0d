"""How far the "mt-sgd-features" task weights are from exact MT-SGD's.

Trains exact MT-SGD (``method="mt-sgd"``) on Multi-MNIST and, at every
step, also computes on the same mini-batch and the same particles

* ``w exact``: the weights exact MT-SGD uses (full Stein Gram ``U``);
* ``w exact, no rho``: the min-norm point of the data part of ``U`` only,
  from the exact parameter scores (leaves out the task-independent
  repulsion/prior part: approximation 1 of
  :func:`heterovae.mtsgd.methods._rule_mtsgd_features`);
* ``w features``: the weights "mt-sgd-features" would use (data part from
  the feature gradients, ``J_a J_b^T`` replaced by the identity:
  approximation 2 on top of 1).

Only the exact weights move the particles, so all three are compared on
the same trajectory. The report gives, for the first task's weight ``w_1``
(two tasks: ``w_2 = 1 - w_1``), the mean of each and the mean and 90th
percentile of the absolute differences over the steps, and the
correlation over the steps of the exact and the feature-space ``w_1``.
For scale, the standard deviations of the exact and the feature-space
``w_1`` over the steps and the exact one's mean distance from equal weights
(1/2) are given as well.

    python benchmarks/mtsgd_multimnist_weights_gap.py --out docs/benchmarks/mtsgd_multimnist_weights_gap.md
"""

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mtsgd_multimnist import LeNetBackbone  # noqa: E402
from heterovae.datasets import load_multimnist  # noqa: E402
from heterovae.mtsgd import methods as mth  # noqa: E402
from heterovae.mtsgd.directions import stein_gram_from_terms  # noqa: E402
from heterovae.mtsgd.estimators import MTSGDClassifier  # noqa: E402
from heterovae.mtsgd.qp import simplex_min_norm  # noqa: E402


def recording_rule(exact_rule, rows):
    """The exact MT-SGD rule, recording the three weight vectors at every step."""

    def rule(ctx):
        gram = mth._kernel_terms(ctx)[0][0]
        feature_grads, _ = mth._feature_gradients(ctx)  # keeps the graph
        w_features = mth._feature_space_weights(gram, feature_grads)
        scores, _ = mth._scores(ctx, *mth._task_gradients(ctx))
        w_data = simplex_min_norm(stein_gram_from_terms(gram, torch.zeros_like(scores[0]), scores))
        w_exact = exact_rule(ctx)
        rows.append([float(w_exact[0]), float(w_data[0]), float(w_features[0])])
        return w_exact

    return rule


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--particles", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, _, Y, _ = load_multimnist(args.n_train, 0, random_state=args.seed)
    words = list(sys.argv[1:] if argv is None else argv)
    command = "python benchmarks/mtsgd_multimnist_weights_gap.py " + shlex.join(words)
    lines = [
        "# MT-SGD on Multi-MNIST: feature-space task weights against exact ones",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"`load_multimnist({args.n_train}, 0, random_state={args.seed})`, LeNet, M = "
        f"{args.particles}, {args.epochs} epochs of batch {args.batch_size}, Adam lr {args.lr}, "
        "kernel on the parameters (median bandwidth). The particles follow exact MT-SGD; "
        "at every step the three weights are computed on the same batch and particles. "
        "`w_1` is the first task's weight; Δ columns: mean (90th percentile) over steps "
        "of the absolute difference; corr: Pearson correlation over steps.",
        "",
        "| temperature | steps | mean w_1 exact | mean w_1 no rho | mean w_1 features "
        "| sd w_1 exact | sd w_1 features | Δ exact vs 1/2 | Δ exact vs no rho "
        "| Δ no rho vs features | Δ exact vs features | corr(exact, features) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    saved = mth.METHODS["mt-sgd"]
    for temperature in args.temperatures:
        rows = []
        mth.METHODS["mt-sgd"] = recording_rule(saved, rows)
        try:
            MTSGDClassifier(
                LeNetBackbone, n_particles=args.particles, max_epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, temperature=temperature,
                random_state=args.seed, method="mt-sgd",
            ).fit(X, Y)
        finally:
            mth.METHODS["mt-sgd"] = saved
        # Fourth column: equal weights, the scale of a gap that ignores U.
        w = np.column_stack([np.array(rows), np.full(len(rows), 0.5)])

        def gap(a, b):
            d = np.abs(w[:, a] - w[:, b])
            return f"{d.mean():.3f} ({np.quantile(d, 0.9):.3f})"

        lines.append(
            f"| {temperature:g} | {len(w)} | {w[:, 0].mean():.3f} | {w[:, 1].mean():.3f} | "
            f"{w[:, 2].mean():.3f} | {w[:, 0].std():.3f} | {w[:, 2].std():.3f} | {gap(0, 3)} | "
            f"{gap(0, 1)} | {gap(1, 2)} | {gap(0, 2)} | "
            f"{np.corrcoef(w[:, 0], w[:, 2])[0, 1]:.2f} |"
        )
        print(lines[-1], flush=True)
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()

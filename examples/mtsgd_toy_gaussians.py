"""MT-SGD vs MOO-SVGD on three 2-D Gaussian mixtures (toy of Phan et al., 2022).

Each target is a mixture of two Gaussians (weights 0.7 / 0.3, covariance
0.5 I): a heavy component far from the origin, each in a different place, and
a light one near the origin. The only region where *all three* densities are
high is around the origin. MT-SGD, which picks one set of weights for the
whole particle set, should gather its particles there; MOO-SVGD, which runs
MGDA at every particle, lets particles stop at any Pareto-stationary point,
including the far mode of a single target.

Run::

    python examples/mtsgd_toy_gaussians.py --out mtsgd_toy_gaussians.png
"""

import argparse
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from heterovae.mtsgd import MultiTargetSampler  # noqa: E402

MIXTURES = [
    [(4.0, -4.0), (0.0, 0.5)],
    [(-4.0, 4.0), (0.5, 0.0)],
    [(-3.0, -3.0), (0.0, 0.0)],
]
WEIGHTS = (0.7, 0.3)
VAR = 0.5


def mixture_log_prob(means):
    """Normalised log-density of a 2-D Gaussian mixture with covariance VAR * I."""
    mu = torch.tensor(means)
    logw = torch.log(torch.tensor(WEIGHTS))

    def log_prob(x):
        d2 = ((x[:, None, :] - mu) ** 2).sum(-1)
        return torch.logsumexp(logw - d2 / (2 * VAR), dim=1) - math.log(2 * math.pi * VAR)

    return log_prob


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--particles", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="mtsgd_toy_gaussians.png")
    args = parser.parse_args()
    torch.set_num_threads(1)

    targets = [mixture_log_prob(m) for m in MIXTURES]
    torch.manual_seed(args.seed)
    x0 = torch.randn(args.particles, 2) * math.sqrt(5.0)  # N(0, 5 I)

    methods = {"MT-SGD": "mt-sgd", "MOO-SVGD": "moo-svgd", "SVGD (mean score)": "svgd"}
    results = {}
    print(f"{'method':<18} {'mean log p_1':>12} {'mean log p_2':>12} {'mean log p_3':>12}"
          f" {'|x|<2':>6} {'at a far mode':>14}")
    far = torch.tensor([m[0] for m in MIXTURES])
    for label, method in methods.items():
        sampler = MultiTargetSampler(targets, x0, method=method, lr=args.lr)
        sampler.run(args.steps)
        x = sampler.particles.detach()
        lp = sampler.log_prob().mean(1)
        inside = (x.norm(dim=1) < 2).float().mean().item()
        at_far = int((torch.cdist(x, far).min(1).values < 1.0).sum())
        print(f"{label:<18} {lp[0]:12.2f} {lp[1]:12.2f} {lp[2]:12.2f} {inside:6.2f} {at_far:14d}")
        results[label] = x
    lp0 = torch.stack([t(x0) for t in targets]).mean(1)
    print(f"{'initial':<18} {lp0[0]:12.2f} {lp0[1]:12.2f} {lp0[2]:12.2f}"
          f" {(x0.norm(dim=1) < 2).float().mean().item():6.2f}")

    grid = torch.linspace(-7, 7, 300)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    colors = ["tab:red", "tab:green", "tab:blue"]
    fig, axes = plt.subplots(1, len(results) + 1, figsize=(4.2 * (len(results) + 1), 4.4))
    panels = {"initial, N(0, 5 I)": x0, **results}
    for ax, (label, x) in zip(axes, panels.items()):
        for t, c in zip(targets, colors):
            dens = t(pts).exp().reshape(gx.shape)
            # fixed levels so that the light component near 0 shows as well
            ax.contour(gx, gy, dens, levels=[0.01, 0.03, 0.06, 0.09], colors=c,
                       linewidths=0.8, alpha=0.7)
        ax.scatter(x[:, 0], x[:, 1], s=12, c="k", zorder=3)
        ax.set_title(f"{label}" + ("" if label.startswith("initial") else f", {args.steps} steps"))
        ax.set_xlim(-7, 7)
        ax.set_ylim(-7, 7)
        ax.set_aspect("equal")
    fig.suptitle("Three Gaussian mixtures (red, green, blue contours); joint high density near 0")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

"""Per-call cost of the MOO gradient aggregators on realistic task-gradient matrices.

Times every registered method (through :func:`heterovae.moo.build`, so with
the rescaling to the plain-sum norm), the paper's ("imtlg", "pcgrad")
cocktail, MGDA-UB with the Frank-Wolfe solver, and a per-pair PCGrad loop in
the style of the research code, on G of shape [K, B*h] with K = 13 and 24
columns, B = 128, h = 50, float32, on one CPU thread. Baselines timed in the
same run: the plain sum ``G.sum(0)`` (what training without MOO does) and one
vanilla training step (forward, backward, Adam) of a 3-layer MLP of the same
size (K -> h -> h -> K on a batch of B), so the ratios survive a loaded
machine.

Run: ``python benchmarks/moo_aggregators.py`` (add ``--repeats 11`` for more).
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
from heterovae.moo import build  # noqa: E402

B, H = 128, 50

#: CPU time of this process: on a machine shared with other jobs it excludes
#: the time spent waiting for a core, which wall-clock time does not.
_clock = time.process_time


def _time(fn, repeats: int, min_time: float = 0.05) -> float:
    """Median seconds per call over ``repeats`` batches of calls lasting >= min_time."""
    fn()  # warm-up
    number = 1
    while True:
        t0 = _clock()
        for _ in range(number):
            fn()
        if _clock() - t0 >= min_time:
            break
        number *= 2
    samples = []
    for _ in range(repeats):
        t0 = _clock()
        for _ in range(number):
            fn()
        samples.append((_clock() - t0) / number)
    return statistics.median(samples)


def _gradients(K: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # a shared component plus per-column noise and scales: conflicts as in training
    common = torch.randn(1, B * H, generator=g)
    G = 0.5 * common + torch.randn(K, B * H, generator=g)
    return G * torch.logspace(-1, 1, K)[torch.randperm(K, generator=g)][:, None]


def _mlp_step(K: int):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(K, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, K))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(B, K)

    def step():
        opt.zero_grad()
        loss = ((model(x) - x) ** 2).mean()
        loss.backward()
        opt.step()

    return step


def _pcgrad_pair_loop(G: torch.Tensor) -> torch.Tensor:
    """PCGrad as the research code wrote it: a Python double loop, one host sync per pair."""
    K = G.shape[0]
    projected = G.clone()
    for i in range(K):
        for j in torch.randperm(K).tolist():
            if j == i:
                continue
            dot = torch.dot(projected[i], G[j])
            if dot.item() < 0:
                projected[i] -= dot / G[j].pow(2).sum() * G[j]
    return projected.sum(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)

    cases = [
        ("gradnorm", None), ("mgda-ub", None),
        ("mgda-ub (frank-wolfe, 100 it.)", {"mgda-ub": {"solver": "frank-wolfe", "max_iter": 100}}),
        ("imtlg", None), ("nash-mtl", None), ("pcgrad", None), ("graddrop", None), ("upgrad", None), ("dualproj", None),
        ("aligned-mtl", None), (("imtlg", "pcgrad"), None), (("mgda-ub", "pcgrad"), None),
    ]
    rows = []
    for K in (13, 24):
        G = _gradients(K)
        losses = torch.rand(K) + 0.5
        base_sum = _time(lambda: G.sum(0), args.repeats)
        base_step = _time(_mlp_step(K), args.repeats)
        rows.append((K, "plain sum G.sum(0) (baseline)", base_sum, base_sum, base_step))
        rows.append((K, "vanilla MLP step (baseline)", base_step, base_sum, base_step))
        for label, params in cases:
            spec = label.split(" ")[0] if isinstance(label, str) else label
            agg = build(spec, K, params)
            rows.append((K, str(label), _time(lambda: agg(G, losses), args.repeats), base_sum, base_step))
        loop = _time(lambda: _pcgrad_pair_loop(G), args.repeats)
        rows.append((K, "pcgrad, research-style pair loop (reference)", loop, base_sum, base_step))

    print("Command: python benchmarks/moo_aggregators.py " + f"--repeats {args.repeats}")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, "
          f"G float32 [K, {B}*{H}={B * H}], process CPU time, median of {args.repeats}\n")
    print("| K | method | time per call (ms) | / plain sum | / vanilla MLP step |")
    print("|---|---|---:|---:|---:|")
    for K, label, t, s, m in rows:
        print(f"| {K} | {label} | {t * 1e3:.3f} | {t / s:.1f} | {t / m:.2f} |")


if __name__ == "__main__":
    main()

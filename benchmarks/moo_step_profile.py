"""Where a MOO training step spends its time: plumbing vs the method itself.

One training step (forward, backward, Adam) of HeterogeneousVAEImputer's
torch model on one batch, timed in process CPU time (median of repeated
blocks of steps), for

* plain training (``moo=None``);
* the MOO plumbing with a trivial aggregator that returns the plain sum
  ``G.sum(0)``: the decoder's custom backward computes the per-column
  gradient matrix ``G`` at the last shared feature and hands it to the
  aggregator, so this row is the cost of making ``G`` available at all;
* each method (the aggregator of :func:`heterovae.moo.build`);

and, separately, one call of each aggregator on a random ``G`` of the same
shape. The ratios are to plain training in the same run.

    python benchmarks/moo_step_profile.py --out docs/benchmarks/moo_step_profile.md
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
from heterovae.moo import build  # noqa: E402

SPECS = [("imtlg", "pcgrad"), "imtlg", "pcgrad", "mgda-ub", "gradnorm", "graddrop", ("mgda-ub", "pcgrad")]


class PlainSum(torch.nn.Module):
    """An aggregator that changes nothing: the plumbing's cost alone."""

    def forward(self, G, losses=None):
        return G.sum(0)


def label(spec):
    return spec if isinstance(spec, str) else "+".join(spec)


def _median_ms(fn, steps, blocks):
    for _ in range(max(5, steps // 5)):
        fn()
    times = []
    for _ in range(blocks):
        start = time.process_time()
        for _ in range(steps):
            fn()
        times.append((time.process_time() - start) / steps * 1e3)
    return float(np.median(times))


def step_ms(X, kinds, spec, batch, steps, blocks, swap=None):
    imp = HeterogeneousVAEImputer(moo=spec, likelihoods=kinds, max_epochs=1, random_state=0).fit(X)
    module = imp.net_.module_
    module.train()
    if swap is not None:
        module.heads.aggregator = swap
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, foreach=True)
    x, observed = imp._tensors(X)
    xb, ob = x[:batch], observed[:batch]
    shape = (len(kinds), batch * module.decoder.out_features)

    def step():
        optimizer.zero_grad()
        module(xb, ob)["loss"].backward()
        optimizer.step()

    return _median_ms(step, steps, blocks), shape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="wine,credit")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=7, help="timed blocks; the median is reported")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    argv_list = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/moo_step_profile.py" + (" " + shlex.join(argv_list) if argv_list else "")
    batch = HeterogeneousVAEImputer().get_params()["batch_size"]
    lines = [f"Command: `{command}`", "",
             f"torch {torch.__version__}, 1 thread, {platform.machine()}, shared machine; per-step process "
             f"CPU time, median of {args.blocks} blocks of {args.steps} steps, batch {batch}, estimator "
             "defaults otherwise. `plumbing (plain sum)`: the MOO backward path with an aggregator that "
             "returns `G.sum(0)`. `aggregator alone`: one call on a random `G` of the step's shape.", ""]
    for name in args.datasets.split(","):
        ds = load_hivae(name, mask=1)
        X = ds.masked().sample(min(args.rows, len(ds.data)), random_state=0)
        kinds = [s.kind for s in ds.specs]
        base, shape = step_ms(X, kinds, None, batch, args.steps, args.blocks)
        plumbing, _ = step_ms(X, kinds, "pcgrad", batch, args.steps, args.blocks, swap=PlainSum())
        G = torch.randn(*shape)
        losses = torch.rand(shape[0]) + 0.5
        lines += [f"### {name}: K = {shape[0]} columns, G of shape {list(shape)}", "",
                  "| step | ms/step | ratio to vanilla | aggregator alone, ms |", "|---|---:|---:|---:|",
                  f"| vanilla | {base:.2f} | 1.00 | – |",
                  f"| plumbing (plain sum) | {plumbing:.2f} | {plumbing / base:.2f} | "
                  f"{_median_ms(lambda: G.sum(0), args.steps, args.blocks):.3f} |"]
        for spec in SPECS:
            ms, _ = step_ms(X, kinds, spec, batch, args.steps, args.blocks)
            agg = build(spec, n_tasks=shape[0])
            alone = _median_ms(lambda: agg(G, losses), args.steps, args.blocks)
            lines.append(f"| {label(spec)} | {ms:.2f} | {ms / base:.2f} | {alone:.3f} |")
            print(lines[-1], flush=True)
        lines.append("")
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()

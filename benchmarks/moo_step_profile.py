"""Where a MOO training step spends its time: plumbing vs the method itself.

One training step (forward, backward, Adam) of HeterogeneousVAEImputer's
torch model on one batch, timed in process CPU time (median of repeated
blocks of steps, the variants' blocks interleaved), for

* plain training (``moo=None``);
* the MOO plumbing with aggregators that return the plain sum: ``factored``
  is an :class:`~heterovae.moo.Aggregator` without methods, which gets the
  heads' factored gradients (:class:`~heterovae.moo._gradients.HeadGradients`)
  as every built aggregator does; ``explicit G`` is a bare module, which gets
  the per-column gradient matrix ``G`` ``[K, n*h]`` formed by the custom
  backward (what every method received before the factored form);
* each method (the aggregator of :func:`heterovae.moo.build`);

and, separately, one call of each aggregator on random factored gradients
of the step's shape (a batch's head gradient and the head's weight). The
ratios are to plain training in the same run.

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
from heterovae.moo import Aggregator, build  # noqa: E402
from heterovae.moo._gradients import HeadGradients  # noqa: E402

SPECS = [("imtlg", "pcgrad"), "imtlg", "pcgrad", "mgda-ub", "gradnorm", "graddrop", ("mgda-ub", "pcgrad")]


class PlainSum(torch.nn.Module):
    """An aggregator that changes nothing, and is not an Aggregator: it gets the explicit ``G``."""

    def forward(self, G, losses=None):
        return G.sum(0)


def label(spec):
    return spec if isinstance(spec, str) else "+".join(spec)


def _median_ms(fn, steps, blocks):
    return _interleaved_ms({"f": fn}, steps, blocks)["f"]


def _interleaved_ms(fns, steps, blocks):
    """Median ms per call of each function; blocks of every function alternate (round robin)."""
    for fn in fns.values():
        for _ in range(max(5, steps // 5)):
            fn()
    times = {key: [] for key in fns}
    for _ in range(blocks):
        for key, fn in fns.items():
            start = time.process_time()
            for _ in range(steps):
                fn()
            times[key].append((time.process_time() - start) / steps * 1e3)
    return {key: float(np.median(v)) for key, v in times.items()}


def training_step(X, kinds, spec, batch, swap=None):
    """A closure running one training step of a freshly fitted (1 epoch) model, and G's shape."""
    imp = HeterogeneousVAEImputer(moo=spec, likelihoods=kinds, max_epochs=1, random_state=0).fit(X)
    module = imp.net_.module_
    module.train()
    if swap is not None:
        module.heads.aggregator = swap
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)  # as the estimator
    x, observed = imp._tensors(X)
    xb, ob = x[:batch], observed[:batch]

    def step():
        optimizer.zero_grad()
        module(xb, ob)["loss"].backward()
        optimizer.step()

    return step, module.heads


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
    from heterovae.vae import MODELS

    # None means the model's own default batch size
    batch = HeterogeneousVAEImputer().get_params()["batch_size"] or MODELS["vae"].default_sizes(1)["batch_size"]
    lines = [f"Command: `{command}`", "",
             f"torch {torch.__version__}, 1 thread, {platform.machine()}, shared machine; per-step process "
             f"CPU time, median of {args.blocks} interleaved blocks of {args.steps} steps, batch {batch}, estimator "
             "defaults otherwise. `plumbing`: the MOO backward path with an aggregator that returns the plain "
             "sum, from the factored gradients (as every built aggregator) or from the explicit `G` "
             "(`[K, n*h]`, formed only for GradDrop now). `aggregator alone`: one call on random factored "
             "gradients of the step's shape.", ""]
    for name in args.datasets.split(","):
        ds = load_hivae(name, mask=1)
        X = ds.masked().sample(min(args.rows, len(ds.data)), random_state=0)
        kinds = [s.kind for s in ds.specs]
        steps = {"vanilla": training_step(X, kinds, None, batch),
                 "plumbing, factored": training_step(X, kinds, "pcgrad", batch, swap=Aggregator(rescale=False)),
                 "plumbing, explicit G": training_step(X, kinds, "pcgrad", batch, swap=PlainSum())}
        steps.update({label(spec): training_step(X, kinds, spec, batch) for spec in SPECS})
        heads = steps["vanilla"][1]
        K, (P, h) = heads.units.shape[0], heads.linear.weight.shape
        shape = (K, batch * h)
        grad_out, weight = torch.randn(batch, P), heads.linear.weight.detach().clone()
        losses = torch.rand(K) + 0.5

        def factored():
            return HeadGradients(grad_out, weight, heads.owner, heads.units)

        aggregators = {"plumbing, factored": lambda: factored().total(),
                       "plumbing, explicit G": lambda: factored().base.sum(0)}
        for spec in SPECS:
            aggregators[label(spec)] = (lambda agg: lambda: agg(factored(), losses))(build(spec, n_tasks=K))
        step_times = _interleaved_ms({k: v[0] for k, v in steps.items()}, args.steps, args.blocks)
        alone = _interleaved_ms(aggregators, args.steps, args.blocks)
        base = step_times["vanilla"]
        lines += [f"### {name}: K = {shape[0]} columns, G of shape {list(shape)}", "",
                  "| step | ms/step | ratio to vanilla | aggregator alone, ms |", "|---|---:|---:|---:|"]
        for key, ms in step_times.items():
            extra = f"{alone[key]:.3f}" if key in alone else "–"
            lines.append(f"| {key} | {ms:.2f} | {ms / base:.2f} | {extra} |")
        lines.append("")
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()

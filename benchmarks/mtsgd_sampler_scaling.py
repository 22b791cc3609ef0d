"""Time one sampler step of MT-SGD, MOO-SVGD and SVGD against the particle count.

The shape of figure 6 of Phan et al. (2022): MOO-SVGD solves one min-norm QP
per particle, so its cost grows with M; MT-SGD solves a single K x K QP per
step on top of SVGD's work. Problem: the three 2-D Gaussian mixtures of
``examples/mtsgd_toy_gaussians.py`` (K = 3), Adam, one thread.

Each cell is the median CPU time (``time.process_time``: on a shared machine
it does not count the time the process waits for a core, which wall time
does) of ``--repeats``
``MultiTargetSampler.step()`` calls (the three methods take turns) (scores by autograd, kernel, direction,
QP(s), optimizer step) after ``--warmup`` untimed steps; the "x SVGD" columns
divide by the SVGD time of the same M measured in the same run, which is
the number to compare across machines.

Run::

    python benchmarks/mtsgd_sampler_scaling.py
"""

import argparse
import math
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from mtsgd_toy_gaussians import MIXTURES, mixture_log_prob  # noqa: E402

from heterovae.mtsgd import MultiTargetSampler  # noqa: E402

METHODS = ("svgd", "mt-sgd", "moo-svgd")


def time_steps(m, repeats, warmup, seed=0):
    """Median step time of every method; the methods take turns step by step
    so that a burst of load on the (shared) machine hits all of them alike."""
    targets = [mixture_log_prob(mu) for mu in MIXTURES]
    torch.manual_seed(seed)
    x0 = torch.randn(m, 2) * math.sqrt(5.0)
    samplers = {
        meth: MultiTargetSampler(targets, x0, method=meth, lr=3e-2).run(warmup)
        for meth in METHODS
    }
    times = {meth: [] for meth in METHODS}
    for _ in range(repeats):
        for meth, sampler in samplers.items():
            t0 = time.process_time()
            sampler.step()
            times[meth].append(time.process_time() - t0)
    return {meth: statistics.median(t) for meth, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print("Command: python benchmarks/mtsgd_sampler_scaling.py "
          + " ".join(f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in vars(args).items()))
    print(f"torch {torch.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, 1 thread, K = 3 targets, P = 2\n")
    print("| M | SVGD (ms) | MT-SGD (ms) | MOO-SVGD (ms) | MT-SGD x SVGD | MOO-SVGD x SVGD |")
    print("|---:|---:|---:|---:|---:|---:|")
    for m in args.particles:
        t = {meth: sec * 1e3 for meth, sec in time_steps(m, args.repeats, args.warmup).items()}
        print(f"| {m} | {t['svgd']:.2f} | {t['mt-sgd']:.2f} | {t['moo-svgd']:.2f} | "
              f"{t['mt-sgd'] / t['svgd']:.2f} | {t['moo-svgd'] / t['svgd']:.2f} |", flush=True)


if __name__ == "__main__":
    main()

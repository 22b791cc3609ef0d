"""Multi-MNIST with MTSGDClassifier: two digits, two tasks, one ensemble.

Trains five particle LeNets with MT-SGD and, for comparison, an ordinary
ensemble of five LeNets on the summed loss (``method="linear"``), then
prints accuracy, Brier score and expected calibration error per task and
saves reliability diagrams to ``mtsgd_multimnist_reliability.png``.

Small on purpose (2000 training pairs, 6 epochs: a few minutes on a
laptop CPU); raise ``--n-train`` and ``--epochs`` for real accuracy.
Needs the MNIST IDX files (see :func:`heterovae.datasets.load_multimnist`).
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from heterovae.datasets import load_multimnist  # noqa: E402
from heterovae.metrics import multitask_scores, reliability_diagram  # noqa: E402
from heterovae.mtsgd.estimators import MTSGDClassifier  # noqa: E402



class LeNet(nn.Module):
    """Shared part of the multi-task LeNet: 1x36x36 image -> 50 features."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 9), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(500, 50), nn.ReLU(),
        )

    def forward(self, x):
        return self.features(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description="MT-SGD vs a deep ensemble on Multi-MNIST")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default="mtsgd_multimnist_reliability.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    X_train, X_test, Y_train, Y_test = load_multimnist(args.n_train, args.n_test, random_state=0)
    fig, axes = plt.subplots(2, 2, figsize=(8, 8))
    for row, method in enumerate(["mt-sgd", "linear"]):
        clf = MTSGDClassifier(
            LeNet, method=method, n_particles=5, max_epochs=args.epochs, batch_size=64,
            lr=3e-3, random_state=0,
        ).fit(X_train, Y_train)
        probas = clf.predict_proba(X_test)
        scores = multitask_scores(Y_test, probas, classes=clf.classes_)
        print(f"{method:7s} accuracy {scores['accuracy'].round(3)} "
              f"Brier {scores['brier'].round(3)} ECE {scores['ece'].round(3)}")
        for task in range(2):
            reliability_diagram(
                Y_test[:, task], probas[task], classes=clf.classes_[task],
                ax=axes[row, task], label=f"{method}, task {task + 1}",
            )
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

"""Independent kernel formulas and fixtures for the mtsgd core tests.

Each reference is the kernel written as a plain scalar function of two points
(no shared code with heterovae.mtsgd.kernels), so that autograd derivatives of
it give an independent check of the closed forms.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from heterovae.mtsgd import IMQKernel, RBFKernel


def rbf_scalar(a, b, h):
    return torch.exp(-((a - b) ** 2).sum() / h)


def imq_scalar(a, b, h):
    return (1.0 + ((a - b) ** 2).sum() / h) ** -0.5


#: (kernel class, independent scalar formula) for every kernel in the registry.
KERNEL_REFERENCES = {"rbf": (RBFKernel, rbf_scalar), "imq": (IMQKernel, imq_scalar)}



def rbf_loop(x):
    """Kernel values ``k[j, i]`` and ``dk[j, i] = grad_{x_j} k(x_j, x_i)`` for particles ``x`` ([M, P])."""
    x = x.double()
    M = x.shape[0]
    dists = [torch.dist(x[i], x[j]).item() for i in range(M) for j in range(i + 1, M)]
    h = np.median(dists) ** 2 / math.log(M + 1)
    k = torch.zeros(M, M, dtype=torch.float64)
    dk = torch.zeros(M, M, x.shape[1], dtype=torch.float64)
    for i in range(M):
        for j in range(M):
            k[j, i] = torch.exp(-((x[j] - x[i]) ** 2).sum() / h)
            dk[j, i] = -2.0 * (x[j] - x[i]) / h * k[j, i]
    return k, dk


def svgd_loop(k, dk, s):
    """SVGD directions ``phi_i = mean_j [k(x_j, x_i) s_j + grad_{x_j} k(x_j, x_i)]`` for scores ``s`` ([M, P])."""
    M = k.shape[0]
    return torch.stack([sum(k[j, i] * s[j] + dk[j, i] for j in range(M)) / M for i in range(M)])


@pytest.fixture
def float64():
    """Run a test in double precision, restoring the default dtype afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(params=sorted(KERNEL_REFERENCES))
def kernel_pair(request):
    return KERNEL_REFERENCES[request.param]


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread (tiny tensors: threads only add overhead
    on the shared CI machine), restoring the setting afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def task_losses(outputs, y):
    """Mean cross-entropy of each task for each particle, ``[K, M]``, from
    stacked head outputs ``[M, B, C_k]`` and labels ``y [B, K]``."""
    return torch.stack(
        [
            F.cross_entropy(o.reshape(-1, o.shape[-1]), y[:, k].repeat(o.shape[0]), reduction="none")
            .view(o.shape[0], -1)
            .mean(1)
            for k, o in enumerate(outputs)
        ]
    )

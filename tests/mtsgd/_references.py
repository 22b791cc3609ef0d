"""Independent kernel formulas and fixtures for the mtsgd core tests.

Each reference is the kernel written as a plain scalar function of two points
(no shared code with heterovae.mtsgd.kernels), so that autograd derivatives of
it give an independent check of the closed forms.
"""

import pytest
import torch

from heterovae.mtsgd import IMQKernel, RBFKernel


def rbf_scalar(a, b, h):
    return torch.exp(-((a - b) ** 2).sum() / h)


def imq_scalar(a, b, h):
    return (1.0 + ((a - b) ** 2).sum() / h) ** -0.5


#: (kernel class, independent scalar formula) for every kernel in the registry.
KERNEL_REFERENCES = {"rbf": (RBFKernel, rbf_scalar), "imq": (IMQKernel, imq_scalar)}




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

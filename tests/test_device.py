"""The device= parameter every estimator and the sampler share."""

import pytest
import torch

from heterovae import HeterogeneousVAEImputer
from heterovae._device import resolve_device


def test_auto_picks_cuda_only_when_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("device", ["bogus", "gpu", 3.5])
def test_an_unknown_device_is_a_value_error(device):
    with pytest.raises(ValueError, match="not a device torch knows"):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_value_error_not_an_assertion(device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(device)


def test_the_imputer_names_a_bad_device_at_fit():
    import numpy as np

    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="'bogus' is not a device"):
        HeterogeneousVAEImputer(device="bogus", max_epochs=1).fit(X)


def test_meta_device_is_refused():
    # tensors on "meta" hold no data: nothing could be trained there
    with pytest.raises(ValueError, match="no usable 'meta' backend"):
        resolve_device("meta")


@pytest.mark.parametrize("kind", ["mps", "xpu"])
def test_an_unavailable_backend_is_a_value_error(kind):
    backend = getattr(torch.backends, kind, None) or getattr(torch, kind, None)
    if backend is not None and backend.is_available():
        pytest.skip(f"{kind} is available here")
    with pytest.raises(ValueError, match=f"no usable '{kind}' backend"):
        resolve_device(kind)

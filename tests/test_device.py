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


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates loading on a machine without CUDA")
def test_an_imputer_pickled_on_cuda_loads_and_imputes_on_a_machine_without_it(monkeypatch):
    import pickle

    import numpy as np
    import pandas as pd
    import torch.serialization
    from skorch.exceptions import DeviceWarning

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    X.iloc[::7, 0] = np.nan
    imp = HeterogeneousVAEImputer(max_epochs=2, hidden_dim=8, batch_size=16, random_state=0).fit(X)
    expected = imp.transform(X)
    # what a fit on CUDA pickles: the storages that live on the device (the module's,
    # the optimizer's state, the callbacks' tensors) tagged with a CUDA location, which
    # plain pickle cannot load here, and the device recorded as "cuda"
    net = imp.net_
    on_device = [*net.module_.state_dict().values(),
                 *[v for state in net.optimizer_.state.values() for v in state.values()]]
    for _, callback in net.callbacks_:
        for value in vars(callback).values():
            on_device += list(value.values()) if isinstance(value, dict) else [value]
    pointers = {t.untyped_storage().data_ptr() for t in on_device if torch.is_tensor(t)}
    location_tag = torch.serialization.location_tag
    net.device, imp._device = "cuda", "cuda"
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag",
                  lambda storage: "cuda:0" if storage.data_ptr() in pointers else location_tag(storage))
        blob = pickle.dumps(imp)
    # skorch says where the net went
    with pytest.warns(DeviceWarning, match="no CUDA devices|is not available"):
        restored = pickle.loads(blob)
    assert restored._device == "cpu" and restored.net_.module is restored.net_.module_
    pd.testing.assert_frame_equal(restored.transform(X), expected)
    assert len(restored.sample(X, 1)) == 1
    assert np.isfinite(restored.score(X))


def test_a_cuda_index_beyond_the_visible_gpus_is_a_value_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="'cuda:7' was requested but there are only 1 CUDA devices"):
        resolve_device("cuda:7")


def test_the_imputer_takes_a_torch_device():
    import numpy as np

    X = np.random.default_rng(0).normal(size=(20, 2))
    X[::4, 0] = np.nan
    imp = HeterogeneousVAEImputer(device=torch.device("cpu"), max_epochs=1, random_state=0).fit(X)
    assert imp._device == "cpu" and not np.isnan(imp.transform(X)).any()

"""Behaviour of MTSGDClassifier / MTSGDRegressor as scikit-learn estimators."""

import pickle

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from ._references import one_thread  # noqa: F401 (fixture)
from heterovae.mtsgd.estimators import MTSGDClassifier, MTSGDRegressor
from heterovae.mtsgd.methods import METHODS

pytestmark = pytest.mark.usefixtures("one_thread")


FAST = dict(n_particles=3, hidden_sizes=(16,), max_epochs=8, lr=1e-2, batch_size=32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y1 = np.where(X[:, 0] + X[:, 1] > 0, "pos", "neg")
    y2 = np.digitize(X[:, 2], [-0.5, 0.5]) * 10  # labels 0, 10, 20
    return X, np.stack([y1, y2.astype(str)], axis=1), y2


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_learns_both_tasks(data, method):
    X, Y, _ = data
    clf = MTSGDClassifier(method=method, random_state=0, **FAST).fit(X, Y)
    pred = clf.predict(X)
    assert pred.shape == Y.shape
    acc = [accuracy_score(Y[:, k], pred[:, k]) for k in range(2)]
    assert min(acc) > 0.7, acc
    assert clf.loss_curve_.shape == (FAST["max_epochs"], 2)
    assert clf.loss_curve_[-1].sum() < clf.loss_curve_[0].sum()
    if method == "pareto-mtl":
        # weights may be negative (constraint gradients), normalised in l1
        assert np.all(np.abs(clf.task_weights_).sum(1) <= 1 + 1e-5)
    else:
        np.testing.assert_allclose(clf.task_weights_.sum(1), 1.0, rtol=1e-5)


def test_multioutput_conventions(data):
    X, Y, _ = data
    clf = MTSGDClassifier(random_state=0, **FAST).fit(X, Y)
    assert isinstance(clf.classes_, list) and len(clf.classes_) == 2
    np.testing.assert_array_equal(clf.classes_[0], ["neg", "pos"])
    np.testing.assert_array_equal(clf.classes_[1], ["0", "10", "20"])
    proba = clf.predict_proba(X[:7])
    assert [p.shape for p in proba] == [(7, 2), (7, 3)]
    for p in proba:
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    pred = clf.predict(X[:7])
    for k in range(2):
        np.testing.assert_array_equal(pred[:, k], clf.classes_[k][proba[k].argmax(1)])
    # score: mean over outputs of accuracy
    full = clf.predict(X)
    expected = np.mean([accuracy_score(Y[:, k], full[:, k]) for k in range(2)])
    assert clf.score(X, Y) == pytest.approx(expected)
    assert clf.n_outputs_ == 2 and clf.n_features_in_ == 4


def test_integer_labels_keep_dtype(data):
    X, _, y2 = data
    Y = np.stack([(X[:, 0] > 0).astype(int) + 3, y2], axis=1)
    pred = MTSGDClassifier(random_state=0, **FAST).fit(X, Y).predict(X)
    assert pred.dtype.kind == "i"
    assert set(np.unique(pred[:, 0])) <= {3, 4}


def test_single_output_behaves_like_a_classifier(data):
    X, Y, _ = data
    clf = MTSGDClassifier(random_state=0, **FAST).fit(X, Y[:, 0])
    assert clf.predict(X).shape == (120,)
    assert clf.predict_proba(X).shape == (120, 2)
    np.testing.assert_array_equal(clf.classes_, ["neg", "pos"])
    assert clf.score(X, Y[:, 0]) == pytest.approx(accuracy_score(Y[:, 0], clf.predict(X)))


def test_particles_average_probabilities(data):
    X, Y, _ = data
    clf = MTSGDClassifier(random_state=0, **FAST).fit(X, Y)
    with torch.no_grad():
        _, outputs = clf.ensemble_.forward(torch.from_numpy(X[:5]), train=False)
    manual = torch.softmax(outputs[1], -1).mean(0).numpy()
    np.testing.assert_allclose(clf.predict_proba(X[:5])[1], manual, rtol=1e-5)
    # the particles differ: the average is not any single particle
    per = torch.softmax(outputs[1], -1).numpy()
    assert not np.allclose(per[0], per[1])


def test_same_random_state_same_predictions_and_global_rng_untouched(data):
    X, Y, _ = data
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = MTSGDClassifier(random_state=7, **FAST).fit(X, Y)
    after = torch.rand(1)
    assert torch.equal(before, after)  # fit did not consume the global RNG
    b = MTSGDClassifier(random_state=7, **FAST).fit(X, Y)
    np.testing.assert_array_equal(a.predict_proba(X)[1], b.predict_proba(X)[1])
    c = MTSGDClassifier(random_state=8, **FAST).fit(X, Y)
    assert not np.allclose(a.predict_proba(X)[1], c.predict_proba(X)[1])


def test_clone_and_pickle_roundtrip(data):
    X, Y, _ = data
    clf = MTSGDClassifier(random_state=0, method="mgda", **FAST)
    cl = clone(clf)
    assert cl.get_params() == clf.get_params() and not hasattr(cl, "ensemble_")
    clf.fit(X, Y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_allclose(restored.predict_proba(X)[0], clf.predict_proba(X)[0])


def test_grid_search_and_pipeline(data):
    X, Y, _ = data
    pipe = make_pipeline(StandardScaler(), MTSGDClassifier(random_state=0, **FAST))
    grid = GridSearchCV(
        pipe, {"mtsgdclassifier__method": ["mt-sgd", "mt-sgd-features", "linear"]}, cv=2,
        error_score="raise",
    ).fit(X, Y)
    assert grid.best_params_["mtsgdclassifier__method"] in {"mt-sgd", "mt-sgd-features", "linear"}
    assert grid.predict(X).shape == Y.shape
    assert 0.5 < grid.best_score_ <= 1


def test_custom_module_class_and_instance(data):
    X, Y, _ = data

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU())

        def forward(self, x):
            return self.net(x)

    by_class = MTSGDClassifier(Backbone, random_state=0, **FAST).fit(X, Y)
    assert by_class.ensemble_.params["heads.0.weight"].shape == (3, 2, 6)
    instance = Backbone()
    kept = {k: v.clone() for k, v in instance.state_dict().items()}
    by_inst = MTSGDClassifier(instance, random_state=0, **FAST).fit(X, Y)
    # the caller's module is not trained or modified
    for k, v in instance.state_dict().items():
        assert torch.equal(v, kept[k])
    # the particles were re-initialised independently
    w = by_inst.ensemble_.params["backbone.net.0.weight"]
    assert not torch.allclose(w[0], w[1])


def test_image_inputs_with_conv_backbone():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 1, 8, 8).astype(np.float32)
    Y = np.stack([X[:, 0, :4].mean((1, 2)) > 0.5, X[:, 0, 4:].mean((1, 2)) > 0.5], 1).astype(int)

    def lenet():
        return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())

    clf = MTSGDClassifier(lenet, n_particles=2, max_epochs=2, random_state=0).fit(X, Y)
    assert clf.input_shape_ == (1, 8, 8)
    assert clf.predict(X).shape == (40, 2)
    with pytest.raises(ValueError, match=r"per-sample shape \(1, 9, 9\)"):
        clf.predict(rng.rand(3, 1, 9, 9).astype(np.float32))
    with pytest.raises(ValueError, match="module=None builds an MLP"):
        MTSGDClassifier().fit(X, Y)


def test_bad_inputs_raise_clear_errors(data):
    X, Y, _ = data
    clf = MTSGDClassifier(**FAST)
    with pytest.raises(ValueError, match="Y must be 1-D .* or 2-D"):
        clf.fit(X, Y[:, :, None])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, Y[:-1])
    one_class = Y.copy()
    one_class[:, 1] = "a"
    with pytest.raises(ValueError, match="output 1 of Y has only one class"):
        clf.fit(X, one_class)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 2] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            clf.fit(Xb, Y)
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, X[:, :2])
    fitted = MTSGDClassifier(**FAST).fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="hidden_sizes"):
        MTSGDClassifier(hidden_sizes=()).fit(X, Y)
    with pytest.raises(InvalidParameterError, match="method"):
        MTSGDClassifier(method="sgd-on-steroids").fit(X, Y)
    with pytest.raises(InvalidParameterError, match="n_particles"):
        MTSGDClassifier(n_particles=0).fit(X, Y)
    with pytest.raises(ValueError, match="CUDA is not available"):
        if not torch.cuda.is_available():
            MTSGDClassifier(device="cuda", **FAST).fit(X, Y)
        else:
            raise ValueError("CUDA is not available (skipped: there is a GPU)")


def test_inputs_not_mutated(data):
    X, Y, _ = data
    X0, Y0 = X.copy(), Y.copy()
    MTSGDClassifier(**FAST).fit(X, Y).predict(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)


def test_regressor_multioutput_and_scale_equivariance():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] - 2 * X[:, 1], np.tanh(X[:, 2]) + 0.5 * X[:, 0]], 1)
    reg = MTSGDRegressor(random_state=0, n_particles=3, hidden_sizes=(32,), max_epochs=40, lr=1e-2)
    pred = reg.fit(X, Y).predict(X)
    assert pred.shape == (150, 2)
    assert r2_score(Y, pred) > 0.9
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, pred))
    # targets are standardised internally: an affine change of Y maps through
    shifted = clone(reg).fit(X, 1000 * Y + 5).predict(X)
    np.testing.assert_allclose(shifted, 1000 * pred + 5, rtol=1e-3, atol=1e-2)
    # single output
    single = clone(reg).set_params(max_epochs=2).fit(X, Y[:, 0])
    assert single.predict(X).shape == (150,)


def test_regressor_rejects_bad_targets():
    X = np.zeros((10, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="numeric"):
        MTSGDRegressor(max_epochs=1).fit(X, np.array(["a"] * 10))
    with pytest.raises(ValueError, match="NaN|infinity"):
        MTSGDRegressor(max_epochs=1).fit(X, np.full(10, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused, not cast with a ComplexWarning
        with pytest.raises(ValueError, match="Complex data not supported"):
            MTSGDRegressor(max_epochs=1).fit(X, np.arange(10) + 1j)


@pytest.mark.parametrize("space", ["params", "outputs"])
@pytest.mark.parametrize("method", ["mt-sgd", "moo-svgd"])
def test_kernel_spaces_run(data, space, method):
    X, Y, _ = data
    clf = MTSGDClassifier(method=method, kernel_space=space, random_state=0, **FAST).fit(X, Y)
    assert clf.score(X, Y) > 0.7


def test_device_auto_resolves():
    from heterovae._device import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_predict_and_pickle(data):
    X, Y, _ = data
    clf = MTSGDClassifier(device="cuda", random_state=0, **FAST).fit(X, Y)
    assert clf.device_.startswith("cuda")
    assert clf.ensemble_.params["heads.0.weight"].is_cuda
    pred = clf.predict(X)
    restored = pickle.loads(pickle.dumps(clf))
    assert not restored.ensemble_.params["heads.0.weight"].is_cuda  # pickled on the CPU
    np.testing.assert_array_equal(restored.predict(X), pred)
    cpu = MTSGDClassifier(device="cpu", random_state=0, **FAST).fit(X, Y)
    assert np.mean(cpu.predict(X) == pred) > 0.9


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_a_model_fitted_on_cuda_predicts_on_the_cpu_where_there_is_none(data):
    X, Y, _ = data
    clf = MTSGDClassifier(random_state=0, **FAST).fit(X, Y)
    expected = clf.predict_proba(X)
    clf.device_ = "cuda"  # as unpickled from a GPU fit (parameters pickled on the CPU)
    for got, want in zip(clf.predict_proba(X), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_regressor_and_probabilities(data):
    X, Y, _ = data
    clf = MTSGDClassifier(device="cuda", random_state=0, **FAST).fit(X, Y)
    for proba in clf.predict_proba(X):
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    targets = np.column_stack([X[:, 0] + X[:, 1], X[:, 0] - X[:, 1]])
    reg = MTSGDRegressor(device="cuda", random_state=0, **FAST).fit(X, targets)
    assert reg.ensemble_.params["heads.0.weight"].is_cuda
    restored = pickle.loads(pickle.dumps(reg))
    np.testing.assert_allclose(restored.predict(X), reg.predict(X), rtol=1e-5)


def test_three_tasks_every_method_reproducible():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0.5], axis=1).astype(int)
    for method in ("mt-sgd", "mt-sgd-features", "pareto-mtl"):
        a = MTSGDClassifier(method=method, random_state=0, **FAST).fit(X, Y)
        b = MTSGDClassifier(method=method, random_state=0, **FAST).fit(X, Y)
        assert a.task_weights_.shape == (FAST["max_epochs"], 3)
        np.testing.assert_array_equal(a.predict_proba(X)[2], b.predict_proba(X)[2])


def _spread(clf):
    flat = clf.ensemble_.flat("shared")
    return torch.pdist(flat).mean().item()


def test_temperature_controls_repulsion(data):
    # A hotter posterior weighs the kernel's repulsion more against the data:
    # the particles end up further apart in parameter space.
    X, Y, _ = data
    params = dict(FAST, method="mt-sgd", optimizer="sgd", lr=0.05, random_state=0)
    cold = MTSGDClassifier(temperature=1.0, **params).fit(X, Y)
    hot = MTSGDClassifier(temperature=1e4, **params).fit(X, Y)
    assert _spread(hot) > 1.05 * _spread(cold)
    # the non-interacting baseline does not depend on the temperature at all
    lin = dict(params, method="linear")
    np.testing.assert_allclose(
        MTSGDClassifier(temperature=1.0, **lin).fit(X, Y).predict_proba(X)[0],
        MTSGDClassifier(temperature=1e4, **lin).fit(X, Y).predict_proba(X)[0],
    )


def test_regressor_outputs_kernel_space():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    Y = np.stack([X[:, 0], X[:, 1] + X[:, 2]], 1)
    reg = MTSGDRegressor(kernel_space="outputs", random_state=0, **FAST).fit(X, Y)
    assert reg.score(X, Y) > 0.5


def test_pandas_inputs(data):
    pd = pytest.importorskip("pandas")
    X, Y, _ = data
    Xdf = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    Ydf = pd.DataFrame(Y, columns=["sign", "bucket"])
    clf = MTSGDClassifier(random_state=0, **FAST).fit(Xdf, Ydf)
    np.testing.assert_array_equal(clf.feature_names_in_, Xdf.columns)
    np.testing.assert_array_equal(
        clf.predict(Xdf), MTSGDClassifier(random_state=0, **FAST).fit(X, Y).predict(X)
    )


def test_dataframe_outputs_keep_their_own_label_types(data):
    """Each output is encoded on its own: a bool, an int, a str, a nullable and a
    categorical output fit together, and a frame fits as its numpy columns do."""
    pd = pytest.importorskip("pandas")
    X, Y, y2 = data
    sign = Y[:, 0] == "pos"
    frames = [
        pd.DataFrame({"sign": sign, "bucket": y2}),
        pd.DataFrame({"sign": sign, "bucket": Y[:, 1]}),
        pd.DataFrame({"sign": sign.astype(int), "bucket": y2}, dtype="Int64"),
        pd.DataFrame({"sign": pd.array(sign, dtype="boolean"), "bucket": pd.Categorical(Y[:, 1])}),
    ]
    for frame in frames:
        clf = MTSGDClassifier(random_state=0, **FAST).fit(X, frame)
        assert [list(c) for c in clf.classes_] == [sorted(set(frame.iloc[:, k])) for k in range(2)]
        assert clf.predict(X).shape == (len(X), 2)
    # the same codes as an int array: the same fit
    plain = MTSGDClassifier(random_state=0, **FAST).fit(X, np.stack([sign.astype(int), y2], axis=1))
    from_frame = MTSGDClassifier(random_state=0, **FAST).fit(X, frames[0])
    for a, b in zip(plain.predict_proba(X), from_frame.predict_proba(X)):
        np.testing.assert_array_equal(a, b)
    missing = pd.DataFrame({"sign": pd.array([1, None] * 60, dtype="Int64"), "bucket": y2})
    with pytest.raises(ValueError, match="output 0 of Y has missing labels"):
        MTSGDClassifier(**FAST).fit(X, missing)


def test_failed_refit_leaves_no_stale_model(data):
    X, Y, _ = data
    clf = MTSGDClassifier(**FAST).fit(X, Y)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(NotFittedError):
        clf.predict(X)
    reg = MTSGDRegressor(**FAST).fit(X, X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(X[:, :3], np.full(len(X), np.nan))
    with pytest.raises(NotFittedError):
        reg.predict(X)


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8, batch_first=True)

    def forward(self, x):
        return self.gru(x.unsqueeze(1))[0][:, -1]


class _BareParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))

    def forward(self, x):
        return x @ self.weight


def test_modules_the_ensemble_cannot_use_well_are_named(data):
    X, Y, _ = data
    with pytest.raises(ValueError, match=r"module \(_Recurrent\) cannot be evaluated .*vmap"):
        MTSGDClassifier(_Recurrent, **FAST).fit(X, Y)
    with pytest.warns(UserWarning, match="identical parameters"):
        MTSGDClassifier(_BareParameter(), **FAST).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MTSGDClassifier(_BareParameter, **FAST).fit(X, Y)


def test_batchnorm_keeps_running_statistics_per_particle():
    """Stacked buffers under vmap update as each particle's own BatchNorm would."""
    import copy

    from heterovae.mtsgd.ensemble import MultiHeadNetwork, ParticleEnsemble

    torch.manual_seed(0)
    nets = [MultiHeadNetwork(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)), 8, [2]) for _ in range(3)]
    loop = copy.deepcopy(nets)
    ensemble = ParticleEnsemble(nets, torch.device("cpu"))
    for _ in range(2):
        x = torch.randn(16, 4)
        features, _ = ensemble.forward(x, train=True)
        for m, net in enumerate(loop):
            torch.testing.assert_close(features[m], net.train()(x)[0])
    for m, net in enumerate(loop):
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(ensemble.buffers[f"backbone.1.{name}"][m], getattr(net.backbone[1], name))
    x = torch.randn(5, 4)
    features, _ = ensemble.forward(x, train=False)
    for m, net in enumerate(loop):
        torch.testing.assert_close(features[m], net.eval()(x)[0])


@pytest.mark.parametrize("estimator", [MTSGDClassifier, MTSGDRegressor])
def test_divergence_is_named_not_returned_as_a_fitted_model(estimator):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4))
    Y = np.stack([(X[:, 0] > 0).astype(int), (X[:, 1] > 0).astype(int) + (X[:, 2] > 0)], axis=1)
    kw = dict(n_particles=2, hidden_sizes=(8,), random_state=0, batch_size=64, optimizer="sgd")
    # 1e6: the last update overflows after the last loss was seen;
    # 1e8: a loss overflows mid-epoch, before a kernel or QP could see it
    for lr, epochs in ((1e6, 2), (1e8, 3)):
        for method in ("mt-sgd", "mgda", "linear"):
            with pytest.raises(FloatingPointError, match="training diverged.*lower lr"):
                estimator(lr=lr, max_epochs=epochs, method=method, **kw).fit(X, Y)


def test_predict_stacks_outputs_in_a_dtype_that_keeps_their_labels():
    import pandas as pd
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    Y = pd.DataFrame({"a": (X[:, 0] > 0).astype(np.int8), "b": np.digitize(X[:, 1], [0]).astype(np.int64) * 7})
    clf = MTSGDClassifier(n_particles=2, max_epochs=2, hidden_sizes=(8,), random_state=0).fit(X, Y)
    reference = MultiOutputClassifier(LogisticRegression()).fit(X, Y).predict(X)
    assert clf.predict(X).dtype == reference.dtype == np.int64
    # a metric accepts each predicted column as it is
    accuracy_score(Y["a"], clf.predict(X)[:, 0])
    words = pd.DataFrame({"a": np.where(X[:, 0] > 0, "up", "down"), "b": np.where(X[:, 1] > 0, "x", "yes")})
    pred = clf.fit(X, words).predict(X)
    assert pred.dtype.kind in "OU" and accuracy_score(words["b"], pred[:, 1]) > 0
    mixed = pd.DataFrame({"a": X[:, 0] > 0, "b": np.where(X[:, 1] > 0, "up", "down")})
    pred = clf.fit(X, mixed).predict(X)
    assert pred.dtype == object and isinstance(pred[0, 0], (bool, np.bool_))


def test_score_is_per_output_accuracy_score():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 1] > 0).astype(int)
    clf = MTSGDClassifier(n_particles=2, max_epochs=2, hidden_sizes=(8,), random_state=0).fit(X, y)
    assert clf.score(X, y[:, None]) == accuracy_score(y, clf.predict(X))  # a column vector, as accuracy_score
    with pytest.raises(ValueError, match="Mix of label input types"):
        clf.score(X, y.astype(str))
    with pytest.raises(ValueError, match="1 output"):
        clf.score(X, np.stack([y, y], axis=1))
    weights = rng.uniform(size=120)
    assert clf.score(X, y, sample_weight=weights) == pytest.approx(
        accuracy_score(y, clf.predict(X), sample_weight=weights))


def test_probabilities_sum_to_one_in_float64(data):
    X, Y, _ = data
    probas = MTSGDClassifier(**FAST, random_state=0).fit(X, Y).predict_proba(X)
    for p in probas:
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_rows", [65, 129])
def test_a_one_row_last_batch_joins_the_one_before(n_rows):
    """BatchNorm cannot train on one row; n % batch_size == 1 must still fit."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_rows, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)

    def module():
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())

    clf = MTSGDClassifier(module, n_particles=2, max_epochs=2, batch_size=64, random_state=0).fit(X, y)
    assert clf.predict(X).shape == (n_rows,)


def test_sparse_targets_and_overflowing_targets_are_named():
    import scipy.sparse as sparse

    X = np.random.RandomState(0).normal(size=(20, 2))
    Y = sparse.csr_matrix(np.eye(20, 2))
    for estimator in (MTSGDClassifier, MTSGDRegressor):
        with pytest.raises(ValueError, match="sparse matrix.*toarray"):
            estimator(max_epochs=1).fit(X, Y)
    huge = np.where(np.arange(20) % 2, 1e300, -1e300)
    with pytest.raises(ValueError, match=r"output\(s\) \[0\] .*overflows"):
        MTSGDRegressor(max_epochs=1).fit(X, huge)


def test_single_class_is_named_plainly(data):
    X, _, _ = data
    with pytest.raises(ValueError, match=r"only one class \(5\)"):
        MTSGDClassifier(max_epochs=1).fit(X, np.stack([np.full(len(X), 5), np.arange(len(X)) % 2], 1))


def test_regressor_prediction_is_the_mean_over_particles():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] + 1.0, 2.0 * X[:, 1]], axis=1)
    reg = MTSGDRegressor(hidden_sizes=(8,), n_particles=3, max_epochs=3, random_state=0).fit(X, Y)
    with torch.no_grad():
        _, outputs = reg.ensemble_.forward(torch.from_numpy(X[:10]), train=False)
    per = np.stack([o[..., 0].numpy() for o in outputs], axis=-1) * reg.y_scale_ + reg.y_mean_  # [M, n, K]
    assert not np.allclose(per[0], per[1])  # the particles differ
    np.testing.assert_allclose(reg.predict(X[:10]), per.mean(0), rtol=1e-5, atol=1e-6)


def test_dropout_masks_differ_between_particles():
    import copy

    from heterovae.mtsgd.ensemble import MultiHeadNetwork, ParticleEnsemble

    torch.manual_seed(0)
    base = MultiHeadNetwork(nn.Sequential(nn.Linear(3, 50), nn.Dropout(0.5)), 50, (2,))
    ens = ParticleEnsemble([copy.deepcopy(base) for _ in range(4)], torch.device("cpu"))  # identical particles
    x = torch.randn(8, 3)
    train_features, _ = ens.forward(x, train=True)
    assert not torch.equal(train_features[0], train_features[1])
    eval_features, _ = ens.forward(x, train=False)
    assert torch.equal(eval_features[0], eval_features[1])

"""scikit-learn estimators: multi-output classification and regression by MT-SGD.

:class:`MTSGDClassifier` and :class:`MTSGDRegressor` train ``n_particles``
networks that share nothing but the data: each is a backbone (the paper's
``alpha``) with one linear head per output (``beta_k``). The particles move
together by the update rule ``method`` (see :mod:`heterovae.mtsgd.methods`)
and predictions average the particles: the mean of the class probabilities
for the classifier, the mean of the predicted means for the regressor.
"""

import copy
import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._device import resolve_device
from .._warnings import warn
from ._errors import NonFiniteError
from .ensemble import MultiHeadNetwork, ParticleEnsemble, default_mlp, infer_feature_width
from .kernels import KERNELS, get_kernel
from .methods import KERNEL_SPACES, METHODS, StepContext, get_method

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


__all__ = ["MTSGDClassifier", "MTSGDRegressor"]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}




def _as_tensor(array):
    # torch.from_numpy shares memory and warns on read-only arrays (e.g.
    # pandas-backed or memory-mapped); those are copied instead.
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


def _target_columns(y):
    """``y`` as a list of 1-D arrays, one per output, each with its own dtype.

    A DataFrame's columns keep their own dtypes (``to_numpy()`` of a frame
    with a bool and a str column would make one object array, in which the
    outputs' labels are compared with each other); pandas' nullable dtypes
    become their numpy dtype when nothing is missing. Returns the columns
    and whether ``y`` was 2-D.
    """
    if sp.issparse(y):
        raise ValueError("Y is a sparse matrix; pass a dense array (Y.toarray()).")
    if hasattr(y, "iloc"):
        frame = y.to_frame() if y.ndim == 1 else y
        columns = []
        for k in range(frame.shape[1]):
            col = frame.iloc[:, k]
            numpy_dtype = getattr(col.dtype, "numpy_dtype", None)
            if numpy_dtype is not None and not col.isna().any():
                columns.append(col.to_numpy(dtype=numpy_dtype))
            else:
                columns.append(col.to_numpy())
        return columns, y.ndim == 2
    Y = np.asarray(y)
    if Y.ndim not in (1, 2):
        raise ValueError(f"Y must be 1-D (one output) or 2-D (n_samples, n_outputs); got shape {Y.shape}.")
    return ([Y] if Y.ndim == 1 else [Y[:, k] for k in range(Y.shape[1])]), Y.ndim == 2


def _common_label_dtype(labels):
    """The dtype that holds every output's labels unchanged.

    Numbers promote as numpy does (int8 and int64 outputs give int64, as
    ``MultiOutputClassifier``); strings of any widths give a string dtype;
    a mix of numbers and strings (or other objects) gives ``object``
    rather than turning numbers into strings.
    """
    kinds = {np.dtype(p.dtype).kind for p in labels}
    if kinds <= set("biuf") or kinds <= set("U") or kinds <= set("S"):
        return np.result_type(*[p.dtype for p in labels])
    return np.dtype(object)


def _check_finite_losses(losses, epoch):
    """Stop at the first step whose task losses are not finite, naming the outputs (by index)."""
    finite = torch.isfinite(losses).all(dim=1)
    if not bool(finite.all()):
        bad = [str(k) for k in torch.nonzero(~finite).flatten().tolist()]
        raise FloatingPointError(
            f"training diverged in epoch {epoch + 1}: the loss of output(s) {', '.join(bad)} is not "
            "finite; lower lr."
        )


def _check_finite_outputs(ensemble, X, n_epochs):
    """Parameters or outputs that overflowed would give NaN predictions."""
    with torch.no_grad():
        finite = all(bool(torch.isfinite(t).all()) for t in ensemble.all_parameters())
        finite = finite and all(bool(torch.isfinite(o).all()) for o in ensemble.forward(X, train=False)[1])
    if not finite:
        raise FloatingPointError(
            f"training diverged: after {n_epochs} epoch(s) the networks' weights or outputs are not finite; "
            "lower lr."
        )


def _warn_if_identical(networks):
    """Particles that start equal feel no repulsion and stay (almost) equal."""
    if len(networks) < 2:
        return
    first, second = (list(n.backbone.parameters()) for n in networks[:2])
    if all(torch.equal(a, b) for a, b in zip(first, second)):
        warn(
            "the particles' backbones start with identical parameters: the module's "
            "reset_parameters() does not re-initialise all of them (e.g. a bare nn.Parameter), "
            "so the ensemble has little diversity. Pass a module class or a factory that "
            "initialises each copy instead of an instance.",
            UserWarning,
        )


def _check_vectorisable(ensemble, example):
    """Run the particles once, vectorised, so that a module torch.func.vmap cannot batch fails
    here with a message rather than in the first training step with torch's."""
    try:
        with torch.no_grad():
            ensemble.forward(example, train=False)
    except (RuntimeError, NotImplementedError) as exc:
        raise ValueError(
            f"the module ({type(ensemble.template.backbone).__name__}) cannot be evaluated for all "
            "particles at once with torch.func.vmap, which the ensemble needs (recurrent layers "
            f"such as nn.GRU or nn.LSTM, for example, have no batching rule): {exc}"
        ) from exc


def _reset_parameters(module):
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()


class _BaseMTSGD(BaseEstimator):
    """Shared machinery of the classifier and the regressor."""

    _parameter_constraints: dict = {
        "module": [None, callable],
        "hidden_sizes": ["array-like"],
        "n_particles": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [StrOptions(set(METHODS))],
        "kernel": [StrOptions(set(KERNELS))],
        "bandwidth": [StrOptions({"median"}), Interval(numbers.Real, 0, None, closed="neither")],
        "kernel_space": [StrOptions(set(KERNEL_SPACES))],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), callable],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        module=None,
        *,
        hidden_sizes=(100,),
        n_particles=5,
        method="mt-sgd",
        kernel="rbf",
        bandwidth="median",
        kernel_space="params",
        temperature=1.0,
        max_epochs=20,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.module = module
        self.hidden_sizes = hidden_sizes
        self.n_particles = n_particles
        self.method = method
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.kernel_space = kernel_space
        self.temperature = temperature
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True, "requires_y": True}

    # ------------------------------------------------------ subclass API
    def _encode_targets(self, columns, multi_output):
        """Targets from the outputs' label columns (1-D arrays, one per output).

        Returns the torch-ready array ``[n, K]`` (codes or values), the head
        sizes and the fitted attributes it derives (e.g. ``classes_``), which
        are set only once training has succeeded.
        """
        raise NotImplementedError

    def _task_losses(self, outputs, targets):
        """[K, M] mean loss of each task for each particle."""
        raise NotImplementedError

    # ----------------------------------------------------------- building
    def _check_hidden_sizes(self):
        sizes = tuple(np.atleast_1d(np.asarray(self.hidden_sizes, dtype=object)))
        if len(sizes) == 0 or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
        ):
            raise ValueError(
                "hidden_sizes must be a non-empty sequence of positive ints (the default "
                f"MLP needs at least one shared layer), got {self.hidden_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _make_backbone(self, n_features):
        module = self.module
        if module is None:
            return default_mlp(n_features, self._check_hidden_sizes())
        if isinstance(module, torch.nn.Module):
            # Independent particles need independent initial weights.
            # built on the CPU (the feature width is read there); the ensemble moves it to device
            backbone = copy.deepcopy(module).cpu()
            _reset_parameters(backbone)
            return backbone
        backbone = module()
        if not isinstance(backbone, torch.nn.Module):
            raise TypeError(
                f"module must be None, an nn.Module or a callable returning one; "
                f"module() returned {type(backbone).__name__}."
            )
        return backbone.cpu()

    def _validate_X(self, X, reset):
        X = _validate_data(
            self, X, reset=reset, allow_nd=True, dtype=np.float32, ensure_min_samples=1
        )
        if reset:
            if self.module is None and X.ndim != 2:
                raise ValueError(
                    "module=None builds an MLP for 2-D tabular X; got X with shape "
                    f"{X.shape}. Pass a module (e.g. a CNN) for image-shaped inputs."
                )
            self.input_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has per-sample shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on shape {self.input_shape_}."
            )
        return X

    def _fit(self, X, Y):
        self._validate_params()
        if isinstance(self.optimizer, str):
            opt_class = OPTIMIZERS[self.optimizer]
        else:
            opt_class = self.optimizer
        if self.module is None:
            self._check_hidden_sizes()
        if Y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        # A failed refit must not leave the previous model half-updated
        # (predicting with the old ensemble under the new output layout).
        for name in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, name)
        X = self._validate_X(X, reset=True)
        # validate_data cannot check Y with allow_nd X, so Y is checked here.
        columns, multi_output = _target_columns(Y)
        if not columns:
            raise ValueError("Y has no output columns.")
        if len(columns[0]) != X.shape[0]:
            raise ValueError(
                f"X and Y have inconsistent numbers of samples: {X.shape[0]} and {len(columns[0])}."
            )
        targets, head_sizes, fitted = self._encode_targets(columns, multi_output)

        device = resolve_device(self.device)
        self.device_ = str(device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        kernel = get_kernel(self.kernel)
        if self.bandwidth != "median":
            kernel = type(kernel)(bandwidth=float(self.bandwidth))
        rule = get_method(self.method)

        # All randomness (initialisation, shuffling, dropout) comes from
        # ``seed`` inside a forked RNG, so the caller's global torch state
        # is left alone and the same random_state gives the same model.
        if device.type == "cuda":
            cuda_ids = [device.index if device.index is not None else torch.cuda.current_device()]
        else:
            cuda_ids = []
        with torch.random.fork_rng(devices=cuda_ids):
            torch.manual_seed(seed)
            X_t = _as_tensor(X).to(device)
            targets_t = _as_tensor(targets).to(device)
            networks = []
            width = None
            for _ in range(self.n_particles):
                backbone = self._make_backbone(X.shape[1] if X.ndim == 2 else None)
                if width is None:
                    width = infer_feature_width(backbone, X_t[:2].cpu())
                networks.append(MultiHeadNetwork(backbone, width, head_sizes))
            _warn_if_identical(networks)
            ensemble = ParticleEnsemble(networks, device)
            _check_vectorisable(ensemble, X_t[:2])
            optim = opt_class(ensemble.all_parameters(), lr=self.lr)

            n = X.shape[0]
            scale = n / float(self.temperature)
            batch = min(self.batch_size, n)
            n_batches = -(-n // batch)
            if n_batches > 1 and n % batch == 1:
                # a one-row batch breaks BatchNorm in training mode; that row
                # joins the batch before it
                n_batches -= 1
            total_steps = self.max_epochs * n_batches
            state = {}
            loss_curve, weight_curve = [], []
            generator = torch.Generator(device="cpu").manual_seed(seed)
            step = 0
            for epoch in range(self.max_epochs):
                order = torch.randperm(n, generator=generator).to(device)
                epoch_loss = torch.zeros(len(columns), device=device)
                epoch_w = torch.zeros(len(columns))
                for b in range(n_batches):
                    idx = order[b * batch : (b + 1) * batch if b + 1 < n_batches else n]
                    features, outputs = ensemble.forward(X_t[idx], train=True)
                    losses = self._task_losses(outputs, targets_t[idx])
                    # checked before the update rule: a non-finite loss
                    # would otherwise surface as a kernel or QP error
                    _check_finite_losses(losses, epoch)
                    ctx = StepContext(
                        ensemble=ensemble,
                        features=features,
                        outputs=outputs,
                        losses=losses,
                        scale=scale,
                        weight_decay=float(self.weight_decay),
                        kernel=kernel,
                        kernel_space=self.kernel_space,
                        progress=step / total_steps,
                        state=state,
                    )
                    optim.zero_grad(set_to_none=True)
                    try:
                        w = rule(ctx)
                    except NonFiniteError as error:
                        # finite losses can still have gradients, or products
                        # of them, that overflow
                        raise FloatingPointError(
                            f"training diverged in epoch {epoch + 1}: {error}; lower lr."
                        ) from error
                    optim.step()
                    step += 1
                    epoch_loss += losses.detach().mean(1) * len(idx)
                    epoch_w += w.detach().cpu().float()
                loss_curve.append((epoch_loss / n).cpu().numpy())
                weight_curve.append((epoch_w / n_batches).numpy())
                if self.verbose:
                    print(
                        f"[{type(self).__name__}] epoch {epoch + 1}/{self.max_epochs} "
                        f"task losses {np.round(loss_curve[-1], 4)}"
                    )
        for t in ensemble.all_parameters():
            t.grad = None
        # the last step's update is never seen by a loss: check what
        # predictions will use
        _check_finite_outputs(ensemble, X_t[:batch], self.max_epochs)
        self._multi_output = multi_output
        self.n_outputs_ = len(columns)
        for name, value in fitted.items():
            setattr(self, name, value)
        self.ensemble_ = ensemble
        self.loss_curve_ = np.asarray(loss_curve)
        self.task_weights_ = np.asarray(weight_curve)
        self.n_iter_ = self.max_epochs
        return self

    def _forward_all(self, X):
        """Per-task head outputs of every particle, shape [M, n, C_k], on the CPU."""
        check_is_fitted(self, "ensemble_")
        X = self._validate_X(X, reset=False)
        device = torch.device(self.device_)
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")  # unpickled on a machine without a GPU
        ens = self.ensemble_
        if ens.params[ens.shared_names[0]].device != device:
            ens.to(device)
        chunks = []
        with torch.no_grad():
            X_t = _as_tensor(X)
            for start in range(0, X.shape[0], max(self.batch_size, 256)):
                xb = X_t[start : start + max(self.batch_size, 256)].to(device)
                chunks.append([o.cpu() for o in ens.forward(xb, train=False)[1]])
        return [torch.cat([c[k] for c in chunks], dim=1) for k in range(self.n_outputs_)]

    def __getstate__(self):
        state = self.__dict__.copy()
        ens = state.get("ensemble_")
        if ens is not None and ens.params[ens.shared_names[0]].device.type != "cpu":
            ens = copy.copy(ens)
            ens.params = {k: v.detach().cpu().requires_grad_(True) for k, v in ens.params.items()}
            ens.buffers = {k: v.cpu() for k, v in ens.buffers.items()}
            state["ensemble_"] = ens
        return state


class MTSGDClassifier(ClassifierMixin, _BaseMTSGD):
    """Multi-output classifier: an ensemble of networks moved by MT-SGD.

    Each of ``n_particles`` networks is a shared backbone with one linear
    head per output column. With the default ``method="mt-sgd"`` the
    backbones move along the MT-SGD direction over the output columns'
    posteriors and each head by SVGD on its own posterior (Phan et al.,
    2022, Algorithm 2). Predicted probabilities average the particles.

    Parameters
    ----------
    module : None, nn.Module or callable returning an nn.Module, default=None
        The shared backbone. ``None``: an MLP (``Linear -> ReLU`` per entry
        of ``hidden_sizes``) for 2-D tabular ``X``. An ``nn.Module``
        instance is deep-copied for every particle and each copy
        re-initialised with its submodules' ``reset_parameters()``; a class
        or factory is called once per particle. The heads' input width is
        found by a dry forward pass on two rows of ``X`` (the output is
        flattened after the batch axis). The particles run together under
        :func:`torch.func.vmap`, so the module must be one vmap can batch
        (recurrent layers such as ``nn.GRU`` are not; the fit says so before
        training). BatchNorm keeps running statistics per particle.
    hidden_sizes : sequence of int, default=(100,)
        Hidden layer widths of the default MLP (ignored with ``module``).
    n_particles : int, default=5
        Number of networks ``M``.
    method : {"mt-sgd", "mt-sgd-features", "moo-svgd", "mgda", "pareto-mtl", "linear"}, default="mt-sgd"
        Update rule (see :mod:`heterovae.mtsgd.methods`). ``"linear"`` is
        an ordinary deep ensemble on the summed loss; ``"mgda"`` and
        ``"pareto-mtl"`` train each particle on its own with MGDA or Pareto
        MTL (one preference vector per particle); ``"moo-svgd"``,
        ``"mt-sgd"`` and ``"mt-sgd-features"`` make the particles interact
        through a kernel. ``"mt-sgd-features"`` is MT-SGD with the task
        weights chosen from the gradients w.r.t. the backbone's features
        rather than its parameters: one backward pass through the backbone
        per step instead of one per output, the update given the weights
        unchanged.
    kernel : {"rbf", "imq"}, default="rbf"
        Kernel of the Stein directions.
    bandwidth : "median" or float, default="median"
        Kernel bandwidth ``h``; ``"median"`` re-estimates it at every step
        (``med^2 / log(M + 1)``).
    kernel_space : {"params", "outputs"}, default="params"
        Where the kernel compares particles. ``"params"``: on the flattened
        parameter vectors (the paper's definition: backbone parameters for
        the shared update, head parameters for each head). ``"outputs"``: on
        what the networks compute for the mini-batch (backbone features for
        the shared update, a head's outputs for that head), the choice of
        the authors' code, with the repulsion pulled back to the
        parameters through each particle's Jacobian. See the benchmark in
        the documentation for how the default was chosen.
    temperature : float, default=1.0
        ``T`` in the tempered task posterior
        ``log p_k = -(N / T) [L_k + weight_decay ||theta||^2 / 2]`` with
        ``L_k`` the mean cross-entropy of output ``k`` and ``N`` the number
        of training rows: ``T = 1`` is the exact Bayesian posterior, ``T =
        N`` the per-sample-mean scaling of the authors' code. Larger ``T``
        strengthens the repulsion relative to the data; it does not change
        the ``"linear"``, ``"mgda"`` or ``"pareto-mtl"`` baselines.
    max_epochs : int, default=20
    batch_size : int, default=128
    lr : float, default=1e-3
        Learning rate of the optimizer; the update is scaled back to a
        mean-loss gradient (see :mod:`heterovae.mtsgd.methods`), so usual
        learning rates apply.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        Built as ``optimizer(params, lr=lr)`` over the stacked particles.
    weight_decay : float, default=0.0
        Gaussian prior on all weights, on the scale of torch's
        ``weight_decay`` for a mean loss (prior precision
        ``N * weight_decay / T``).
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
        ``"auto"`` takes CUDA when available. Read by ``fit``: the fitted
        ensemble predicts where it was trained (on the CPU once unpickled on
        a machine without CUDA), and a new ``device`` takes effect at the
        next fit.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and dropout (inside a forked torch
        RNG: the global torch state is not touched).
    verbose : int, default=0
        Print the task losses after every epoch when positive.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Labels of each output (a list of ``n_outputs_`` arrays when fitted
        on 2-D ``Y``, one array for 1-D ``y``), in the column order of
        :meth:`predict_proba`.
    n_outputs_ : int
        Number of output columns (tasks) ``K``.
    n_features_in_ : int
        ``X.shape[1]`` at fit (channels for image-shaped ``X``).
    input_shape_ : tuple
        Per-sample shape of ``X`` at fit, checked at predict.
    ensemble_ : ParticleEnsemble
        The fitted particles (stacked torch parameters).
    loss_curve_ : ndarray of shape (max_epochs, n_outputs)
        Training loss of each output per epoch (mean over particles).
    task_weights_ : ndarray of shape (max_epochs, n_outputs)
        Mean task weights of the shared update per epoch (the MT-SGD
        simplex weights; uniform for ``"linear"``).
    device_ : str
        The device used.

    Examples
    --------
    >>> import numpy as np
    >>> from heterovae.mtsgd.estimators import MTSGDClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 4)).astype("float32")
    >>> Y = np.stack([X[:, 0] > 0, np.where(X[:, 1] > 0, "up", "down")], axis=1)
    >>> clf = MTSGDClassifier(n_particles=3, max_epochs=5, random_state=0).fit(X, Y)
    >>> clf.predict(X[:2]).shape
    (2, 2)
    >>> [p.shape for p in clf.predict_proba(X[:2])]
    [(2, 2), (2, 2)]
    """

    def _encode_targets(self, columns, multi_output):
        classes, codes = [], []
        for k, labels in enumerate(columns):
            # each output on its own: a bool output and a str output are fine
            # together, but their labels cannot be sorted into one set
            if pd.isna(labels).any():
                raise ValueError(f"output {k} of Y has missing labels; a classifier needs a label for every row.")
            check_classification_targets(labels)
            values, inverse = np.unique(labels, return_inverse=True)
            if values.size < 2:
                only = values[0].item() if isinstance(values[0], np.generic) else values[0]  # 5, not np.int64(5)
                raise ValueError(
                    f"output {k} of Y has only one class ({only!r}); a classifier needs at least 2 classes per output."
                )
            classes.append(values)
            codes.append(inverse.reshape(-1))
        fitted = {"classes_": classes if multi_output else classes[0], "_classes_list": classes}
        return np.stack(codes, axis=1).astype(np.int64), [c.size for c in classes], fitted

    def _task_losses(self, outputs, targets):
        losses = []
        for k, logits in enumerate(outputs):
            m, b, c = logits.shape
            ce = F.cross_entropy(
                logits.reshape(m * b, c), targets[:, k].repeat(m), reduction="none"
            )
            losses.append(ce.view(m, b).mean(1))
        return torch.stack(losses)

    def fit(self, X, y):
        """Fit the particle ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Image-shaped inputs (e.g. ``(n, 1, 36, 36)``) need a ``module``.
        y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Labels of each output (any sortable labels: ints, strings).

        Returns
        -------
        self
        """
        return self._fit(X, y)

    def predict_proba(self, X):
        """Class probabilities of each output, averaged over the particles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs of the per-sample shape seen at fit.

        Returns
        -------
        list of n_outputs arrays of shape (n_samples, n_classes_k)
            (one array when fitted on 1-D ``y``), columns ordered as
            ``classes_``.
        """
        outputs = self._forward_all(X)
        probas = [torch.softmax(o.double(), dim=-1).mean(0).numpy() for o in outputs]  # rows sum to 1 in float64
        return probas if self._multi_output else probas[0]

    def _predict_columns(self, X):
        """The predicted labels of each output, each in its own classes' dtype."""
        probas = self.predict_proba(X)
        probas = probas if self._multi_output else [probas]
        return [c[np.argmax(p, axis=1)] for c, p in zip(self._classes_list, probas)]

    def predict(self, X):
        """Most probable label of each output under the averaged probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs of the per-sample shape seen at fit.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs) or (n_samples,)
            Original labels, in one dtype that holds every output's labels
            unchanged: numbers promote as numpy does, strings give a string
            dtype, and a mix of numbers and strings gives ``object``.
        """
        pred = self._predict_columns(X)
        if not self._multi_output:
            return pred[0]
        return np.stack(pred, axis=1).astype(_common_label_dtype(pred), copy=False)

    def score(self, X, y, sample_weight=None):
        """Mean over outputs of the (weighted) accuracy.

        Each output is scored by :func:`sklearn.metrics.accuracy_score` on
        its own labels, so labels of another type than the training ones
        (strings against integers) raise rather than score 0.
        scikit-learn's ``ClassifierMixin.score`` uses subset accuracy,
        which is undefined for multi-class multi-output targets; the mean
        per-output accuracy is defined for both 1-D and 2-D ``Y`` and
        equals ordinary accuracy for a single output (where ``y`` may also
        be a column vector, as for ``accuracy_score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs of the per-sample shape seen at fit.
        y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            True labels of each output, as many outputs as at fit.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in each output's accuracy.

        Returns
        -------
        float
            The mean over outputs of the accuracies, in [0, 1].
        """
        pred = self._predict_columns(X)
        columns, _ = _target_columns(y)
        if len(columns) != len(pred) or len(columns[0]) != len(pred[0]):
            raise ValueError(
                f"Y has {len(columns[0])} rows and {len(columns)} output(s); the model predicts "
                f"{len(pred)} output(s) for the {len(pred[0])} rows of X."
            )
        return float(np.mean([accuracy_score(t, p, sample_weight=sample_weight) for t, p in zip(columns, pred)]))


class MTSGDRegressor(RegressorMixin, _BaseMTSGD):
    """Multi-output regressor: an ensemble of networks moved by MT-SGD.

    The likelihood of output ``k`` is Gaussian with unit variance on the
    standardised target (the paper's SARCOS set-up), i.e. the loss is
    half the mean squared error of the standardised output; each output is
    standardised with its training mean and standard deviation and
    predictions are mapped back. Predictions average the particles' means.

    Parameters
    ----------
    module, hidden_sizes, n_particles, method, kernel, bandwidth, kernel_space, temperature, max_epochs, batch_size, lr, optimizer, weight_decay, device, random_state, verbose
        As in :class:`MTSGDClassifier` (``L_k`` is the Gaussian negative
        log-likelihood up to a constant).

    Attributes
    ----------
    n_outputs_ : int
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
        Standardisation of the targets.
    n_features_in_, input_shape_, ensemble_, loss_curve_, task_weights_, device_
        As in :class:`MTSGDClassifier`.
    """

    def _encode_targets(self, columns, multi_output):
        Y = np.stack(columns, axis=1).astype(np.float64)
        if not np.all(np.isfinite(Y)):
            raise ValueError("Y contains NaN or infinite values.")
        with np.errstate(over="ignore"):
            mean = Y.mean(axis=0)
            scale = Y.std(axis=0)
        if not np.all(np.isfinite(scale)):
            bad = np.flatnonzero(~np.isfinite(scale)).tolist()
            raise ValueError(f"output(s) {bad} of Y spread too widely for float64 (their standard deviation "
                             "overflows); rescale them first (e.g. TransformedTargetRegressor).")
        scale = np.where(scale > 0, scale, 1.0)
        Z = (Y - mean) / scale
        return Z.astype(np.float32), [1] * Y.shape[1], {"y_mean_": mean, "y_scale_": scale}

    def _task_losses(self, outputs, targets):
        return torch.stack(
            [0.5 * ((o[..., 0] - targets[:, k]) ** 2).mean(1) for k, o in enumerate(outputs)]
        )

    def fit(self, X, y):
        """Fit the particle ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        y : array-like of shape (n_samples, n_outputs) or (n_samples,)

        Returns
        -------
        self
        """
        if y is None:
            return self._fit(X, y)
        if sp.issparse(y):
            raise ValueError("Y is a sparse matrix; pass a dense array (Y.toarray()).")
        try:
            Y = np.asarray(y)
            if np.iscomplexobj(Y):
                # the cast below would drop the imaginary parts with only a warning
                raise ValueError("Complex data not supported")
            Y = Y.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Y must be numeric for a regressor: {exc}") from exc
        return self._fit(X, Y)

    def predict(self, X):
        """Mean prediction of each output, averaged over the particles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs of the per-sample shape seen at fit.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs) or (n_samples,)
        """
        outputs = self._forward_all(X)
        means = torch.stack([o[..., 0].mean(0) for o in outputs], dim=1).numpy()
        pred = means.astype(np.float64) * self.y_scale_ + self.y_mean_
        return pred if self._multi_output else pred[:, 0]

    def score(self, X, y, sample_weight=None):
        """:math:`R^2` of the predictions (:func:`sklearn.metrics.r2_score`), averaged over outputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs of the per-sample shape seen at fit.
        y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            True values of each output.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        float
            The uniform average over outputs of :math:`R^2` (at most 1).
        """
        return super().score(X, y, sample_weight=sample_weight)

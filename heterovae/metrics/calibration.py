"""Accuracy and calibration metrics for (multi-task) probabilistic classifiers.

Conventions
-----------
* ``proba`` is an array of shape (n_samples, n_classes) whose columns follow
  ``classes`` (the estimator's ``classes_``); without ``classes`` the columns
  are taken to be the integer labels ``0 .. n_classes - 1``.
* Brier score: the original multi-class definition of Brier (1950), the sum
  over classes of the squared difference between the predicted probability
  and the one-hot label, averaged over samples; it lies in [0, 2]. For two
  classes it is twice scikit-learn's binary ``brier_score_loss``, which only
  scores the positive class.
* Expected calibration error (ECE): top-label confidence (the largest
  probability of each row) split into ``n_bins`` equal-width bins on
  [0, 1] (first bin closed on the left, every bin closed on the right:
  (0.1, 0.2] etc.), then ``sum_b |B_b| / n * |acc(B_b) - conf(B_b)|``
  (Guo et al., 2017). Empty bins contribute nothing.
* Negative log-likelihood: mean of ``-log p(y_i)``, probabilities clipped
  at ``eps`` so that a confident mistake gives a large finite value.

The multi-task helpers take ``Y`` of shape (n_samples, n_tasks) and a list
of per-task probability arrays, the convention of
:class:`sklearn.multioutput.MultiOutputClassifier` and of
:class:`heterovae.mtsgd.MTSGDClassifier`.
"""

import numpy as np

__all__ = [
    "per_task_accuracy",
    "brier_score",
    "expected_calibration_error",
    "negative_log_likelihood",
    "calibration_curve_bins",
    "multitask_scores",
    "reliability_diagram",
]


def _check_proba(y_true, proba, classes):
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_samples, n_classes), got shape {proba.shape}.")
    if proba.shape[0] == 0:
        raise ValueError("proba has no rows: the scores need at least one sample.")
    if y_true.ndim != 1 or y_true.shape[0] != proba.shape[0]:
        raise ValueError(
            f"y_true must be 1-D with one label per row of proba ({proba.shape[0]}), "
            f"got shape {y_true.shape}."
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba contains NaN or infinite values.")
    if proba.min(initial=0.0) < 0 or proba.max(initial=0.0) > 1:
        raise ValueError("proba must lie in [0, 1].")
    if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of proba must sum to 1.")
    classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    if classes.shape != (proba.shape[1],):
        raise ValueError(
            f"classes has {classes.size} labels but proba has {proba.shape[1]} columns."
        )
    if np.unique(classes).size != classes.size:
        raise ValueError(f"classes must be unique, got {classes!r}.")
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], y_true)
    pos = np.clip(pos, 0, classes.size - 1)
    index = order[pos]
    unknown = classes[index] != y_true
    if np.any(unknown):
        raise ValueError(
            f"y_true holds labels not in classes: {np.unique(y_true[unknown])[:5]!r}."
        )
    return y_true, proba, index


def brier_score(y_true, proba, *, classes=None):
    """Multi-class Brier score: ``mean_i sum_c (p_ic - [y_i = c])^2``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, n_classes)
    classes : array-like of shape (n_classes,), default=None
        Label of each column of ``proba``; default ``0 .. n_classes - 1``.

    Returns
    -------
    float in [0, 2]; lower is better.
    """
    _, proba, index = _check_proba(y_true, proba, classes)
    onehot = np.zeros_like(proba)
    onehot[np.arange(proba.shape[0]), index] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def negative_log_likelihood(y_true, proba, *, classes=None, eps=1e-12):
    """Mean negative log-probability of the true label (natural log).

    Parameters
    ----------
    y_true, proba, classes : see :func:`brier_score`.
    eps : float, default=1e-12
        Probabilities are clipped to ``[eps, 1]`` before the log.
    """
    if not (isinstance(eps, (float, int, np.floating, np.integer)) and 0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}.")
    _, proba, index = _check_proba(y_true, proba, classes)
    p = np.clip(proba[np.arange(proba.shape[0]), index], eps, 1.0)
    return float(-np.mean(np.log(p)))


def calibration_curve_bins(y_true, proba, *, classes=None, n_bins=10):
    """Per-bin statistics of top-label confidence (equal-width bins).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, n_classes)
    classes : array-like of shape (n_classes,), default=None
        Label of each column of ``proba``; default ``0 .. n_classes - 1``.
    n_bins : int, default=10
        Number of equal-width bins on [0, 1] (see the module docstring for
        which edge each bin includes).

    Returns
    -------
    dict with arrays of length ``n_bins``: ``"count"``, ``"accuracy"`` and
    ``"confidence"`` (NaN for empty bins), and ``"edges"`` (``n_bins + 1``).
    """
    if isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}.")
    _, proba, index = _check_proba(y_true, proba, classes)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == index).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds (edges[b], edges[b+1]]; a confidence of exactly 0 cannot
    # happen for a top label, so the first bin's left edge is moot.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, weights=correct, minlength=n_bins) / count
        mean_conf = np.bincount(which, weights=confidence, minlength=n_bins) / count
    return {"count": count, "accuracy": accuracy, "confidence": mean_conf, "edges": edges}


def expected_calibration_error(y_true, proba, *, classes=None, n_bins=10):
    """Expected calibration error of the top-label confidence.

    ``ECE = sum_b (|B_b| / n) |accuracy(B_b) - mean confidence(B_b)|`` with
    ``n_bins`` equal-width bins on [0, 1] (default 10).

    Parameters
    ----------
    y_true, proba, classes : see :func:`brier_score`.
    n_bins : int, default=10

    Returns
    -------
    float in [0, 1]; lower is better.
    """
    bins = calibration_curve_bins(y_true, proba, classes=classes, n_bins=n_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float(np.sum(bins["count"][filled] * gaps) / np.sum(bins["count"]))


def per_task_accuracy(Y_true, Y_pred):
    """Accuracy of each column of a multi-output prediction.

    Parameters
    ----------
    Y_true, Y_pred : array-like of shape (n_samples, n_tasks) or (n_samples,)

    Returns
    -------
    ndarray of shape (n_tasks,)
    """
    if isinstance(Y_true, list) and Y_true and np.ndim(Y_true[0]) >= 1 or isinstance(Y_pred, list) and Y_pred and np.ndim(Y_pred[0]) >= 1:
        raise ValueError("Y_true and Y_pred must be arrays of shape (n_samples, n_tasks), not lists of "
                         "per-task arrays; stack them with np.column_stack.")
    Y_true = np.asarray(Y_true)
    Y_pred = np.asarray(Y_pred)
    if Y_true.shape != Y_pred.shape:
        raise ValueError(f"Y_true shape {Y_true.shape} != Y_pred shape {Y_pred.shape}.")
    if Y_true.ndim == 1:
        Y_true, Y_pred = Y_true[:, None], Y_pred[:, None]
    if Y_true.ndim != 2:
        raise ValueError(f"Y_true must be 1-D or 2-D, got shape {Y_true.shape}.")
    if Y_true.shape[0] == 0:
        raise ValueError("Y_true has no rows: accuracy needs at least one sample.")
    return np.mean(Y_true == Y_pred, axis=0)


def multitask_scores(Y_true, probas, *, classes=None, n_bins=10):
    """Accuracy, Brier score, ECE and NLL of each task.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_tasks)
    probas : list of n_tasks arrays of shape (n_samples, n_classes_k)
        As returned by ``MTSGDClassifier.predict_proba`` on 2-D targets.
    classes : list of n_tasks label arrays, default=None
        ``classes_`` of the estimator; default integer labels per task.
    n_bins : int, default=10
        ECE bins.

    Returns
    -------
    dict mapping ``"accuracy"``, ``"brier"``, ``"ece"``, ``"nll"`` to
    arrays of shape (n_tasks,).
    """
    Y_true = np.asarray(Y_true)
    if Y_true.ndim != 2 or len(probas) != Y_true.shape[1]:
        raise ValueError(
            f"Y_true must be (n_samples, n_tasks) with one proba array per task; got "
            f"Y_true shape {Y_true.shape} and {len(probas)} proba arrays."
        )
    classes = [None] * len(probas) if classes is None else list(classes)
    if len(classes) != len(probas):
        raise ValueError(f"classes has {len(classes)} label arrays but there are {len(probas)} tasks.")
    out = {"accuracy": [], "brier": [], "ece": [], "nll": []}
    for k, (p, c) in enumerate(zip(probas, classes)):
        y = Y_true[:, k]
        # the Brier score checks the task's shapes and labels first, so a wrong
        # one gets its message rather than a broadcasting error
        out["brier"].append(brier_score(y, p, classes=c))
        p = np.asarray(p)
        labels = np.arange(p.shape[1]) if c is None else np.asarray(c)
        out["accuracy"].append(np.mean(labels[np.argmax(p, axis=1)] == y))
        out["ece"].append(expected_calibration_error(y, p, classes=c, n_bins=n_bins))
        out["nll"].append(negative_log_likelihood(y, p, classes=c))
    return {key: np.asarray(val, dtype=np.float64) for key, val in out.items()}


def reliability_diagram(y_true, proba, *, classes=None, n_bins=10, ax=None, label=None):
    """Plot accuracy against confidence per bin, with the diagonal and the ECE.

    matplotlib is imported only when this function is called.

    Parameters
    ----------
    y_true, proba, classes, n_bins : see :func:`expected_calibration_error`.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    label : str, default=None
        Legend label; the ECE is appended.

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    bins = calibration_curve_bins(y_true, proba, classes=classes, n_bins=n_bins)
    ece = expected_calibration_error(y_true, proba, classes=classes, n_bins=n_bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    edges = bins["edges"]
    filled = bins["count"] > 0
    text = f"ECE = {ece:.3f}" if label is None else f"{label} (ECE = {ece:.3f})"
    ax.bar(
        edges[:-1][filled],
        bins["accuracy"][filled],
        width=np.diff(edges)[filled],
        align="edge",
        alpha=0.5,
        edgecolor="k",
        label=text,
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    return ax

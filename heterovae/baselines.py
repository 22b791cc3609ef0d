"""scikit-learn imputers made usable on mixed-type DataFrames, for comparisons.

The sklearn imputers work on float matrices. :class:`EncodedImputer` turns a
DataFrame with the dtypes of :func:`heterovae.datasets.load_hivae` (numbers,
categoricals) into such a matrix, runs the imputer, and turns the result back
into a DataFrame of the input's labels, with every imputed value a valid one:
numeric imputations clipped to the column's training range, as heterovae
clips its own (counts not rounded, as the scikit-learn imputers return them
and as heterovae returns a count's mean in a float column), category
codes rounded and clipped to the valid range (``encoding="codes"``) or the
largest of the one-hot scores (``encoding="onehot"``; ``encoding="mixed"``
one-hot encodes the unordered categorical columns and keeps binary and
ordinal ones as codes). Observed cells are returned unchanged.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge
from sklearn.utils import check_random_state

from heterovae.columns import DISCRETE_KINDS, ColumnSpec

__all__ = ["BASELINES", "EncodedImputer", "MeanModeImputer", "MissForestImputer"]


class MeanModeImputer:
    """Column mean for numeric columns, most frequent code for the others."""

    def __init__(self, discrete: Sequence[bool]):
        self.discrete = np.asarray(discrete, dtype=bool)

    def fit(self, Z):
        self.mean_ = SimpleImputer(strategy="mean", keep_empty_features=True)
        self.mode_ = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
        if (~self.discrete).any():
            self.mean_.fit(Z[:, ~self.discrete])
        if self.discrete.any():
            self.mode_.fit(Z[:, self.discrete])
        return self

    def transform(self, Z):
        out = np.array(Z, dtype=float, copy=True)
        if (~self.discrete).any():
            out[:, ~self.discrete] = self.mean_.transform(Z[:, ~self.discrete])
        if self.discrete.any():
            out[:, self.discrete] = self.mode_.transform(Z[:, self.discrete])
        return out


class MissForestImputer:
    """MissForest (Stekhoven & Buehlmann 2012) on numbers and category codes.

    Start from the mean (numeric) or most frequent code (discrete); then,
    column by column in order of increasing missingness, fit a random forest
    (a classifier for discrete columns, a regressor for numeric ones) on the
    rows where the column is observed, with the current imputation of every
    other column as predictors, and predict its missing cells. Repeat until
    the imputation's change grows for every column type (numeric: squared
    change over squared values; discrete: share of missing cells that
    changed) and keep the imputation before that pass, or the last one
    after ``max_iter`` passes. Forests of ``n_estimators`` trees grown to
    full depth, ``floor(sqrt(p))`` candidate columns per split: R's
    ``missForest`` defaults. scikit-learn's trees split category codes as
    numbers, where R's split factors by sets of levels.

    :meth:`fit_transform` is MissForest as published: it imputes the rows
    it is given. :meth:`transform` on new rows starts them from the
    training means and modes and runs the forests of the kept pass over
    them as many times as training ran passes (the fit-then-impute protocol
    of the benchmark). With ``transductive=True`` it instead runs the whole
    algorithm again on the new rows together with the training rows, so
    the forests learn from the new rows' observed cells too.

    Parameters
    ----------
    discrete : sequence of bool
        Which columns hold category codes.
    n_estimators : int
        Trees per forest.
    max_iter : int
        Most passes over the columns.
    transductive : bool
        Whether :meth:`transform` refits on the training and new rows together.
    random_state : int, RandomState or None
        Seeds every forest.
    n_jobs : int
        Processes per forest.
    """

    def __init__(self, discrete: Sequence[bool], n_estimators: int = 100, max_iter: int = 10,
                 transductive: bool = False, random_state=None, n_jobs: int = 1):
        self.discrete = np.asarray(discrete, dtype=bool)
        self.n_estimators = n_estimators
        self.max_iter = max_iter
        self.transductive = transductive
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, Z):
        """Run MissForest on the training rows and keep what :meth:`transform` needs.

        Parameters
        ----------
        Z : ndarray of shape (n_rows, n_columns)
            Numbers and category codes, NaN where missing.

        Returns
        -------
        self
        """
        self.fit_transform(Z)
        return self

    def fit_transform(self, Z):
        """Impute the training rows themselves, the usual use of MissForest.

        Parameters
        ----------
        Z : ndarray of shape (n_rows, n_columns)
            Numbers and category codes, NaN where missing.

        Returns
        -------
        ndarray of shape (n_rows, n_columns)
            ``Z`` with every missing cell filled.
        """
        return self._fit(Z, keep_forests=not self.transductive)

    def transform(self, Z):
        """Impute new rows (see the class description for how).

        Parameters
        ----------
        Z : ndarray of shape (n_rows, n_columns)
            Numbers and category codes, NaN where missing.

        Returns
        -------
        ndarray of shape (n_rows, n_columns)
            ``Z`` with every missing cell filled.
        """
        Z = np.asarray(Z, dtype=float)
        if self.transductive:
            return self._impute(np.vstack([self.train_, Z]))[0][len(self.train_):]
        missing = np.isnan(Z)
        current = self.start_.transform(Z)
        for _ in range(self.n_iter_):
            for j, forest in self.forests_.items():
                rows = missing[:, j]
                if rows.any():
                    current[rows, j] = forest.predict(np.delete(current, j, axis=1)[rows])
        return current

    def _fit(self, Z, keep_forests):
        self.train_ = np.array(Z, dtype=float, copy=True)
        self.start_ = MeanModeImputer(self.discrete).fit(self.train_)
        filled, self.n_iter_, self.forests_ = self._impute(self.train_, keep_forests)
        if not self.transductive:
            del self.train_
        return filled

    def _forest(self, discrete: bool, n_columns: int, seed: int):
        forest = RandomForestClassifier if discrete else RandomForestRegressor
        return forest(n_estimators=self.n_estimators, max_features=max(1, int(np.sqrt(n_columns))),
                      random_state=seed, n_jobs=self.n_jobs)

    def _change(self, new, old, missing):
        """The stopping rule's change per column type that has missing cells."""
        numeric = ~self.discrete & missing.any(axis=0)
        discrete = self.discrete & missing.any(axis=0)
        change = []
        if numeric.any():
            scale = np.sum(new[:, numeric] ** 2)
            change.append(np.sum((new[:, numeric] - old[:, numeric]) ** 2) / scale if scale > 0 else 0.0)
        if discrete.any():
            change.append(np.sum(new[:, discrete] != old[:, discrete]) / missing[:, discrete].sum())
        return np.asarray(change)

    def _impute(self, data, keep_forests=False):
        """``(imputation, passes, forests)``: with ``keep_forests``, column -> the kept pass's forest, else empty."""
        rng = check_random_state(self.random_state)
        missing = np.isnan(data)
        current = self.start_.transform(data)
        n_columns = data.shape[1]
        # columns with the fewest missing cells first; fully missing ones keep their start
        order = [j for j in np.argsort(missing.sum(axis=0), kind="stable")
                 if missing[:, j].any() and not missing[:, j].all()]
        kept, forests = {}, {}
        if n_columns < 2 or not order:
            return current, 0, kept
        last_change = np.full(len(self._change(current, current, missing)), np.inf)
        for iteration in range(1, self.max_iter + 1):
            previous = current.copy()
            for j in order:
                rows = ~missing[:, j]
                others = np.delete(current, j, axis=1)
                forest = self._forest(self.discrete[j], n_columns, rng.randint(np.iinfo(np.int32).max))
                forest.fit(others[rows], data[rows, j])
                current[~rows, j] = forest.predict(others[~rows])
                if keep_forests:
                    forests[j] = forest
            change = self._change(current, previous, missing)
            if not (change < last_change).any():
                return previous, iteration - 1, kept
            last_change, kept, forests = change, forests, {}
        return current, self.max_iter, kept


class EncodedImputer:
    """Run a float-matrix imputer on a mixed-type DataFrame.

    Parameters
    ----------
    specs : list of ColumnSpec
        One per column of the DataFrames given to fit/transform.
    make_imputer : callable
        ``make_imputer(discrete_mask) -> imputer`` with ``fit``/``transform``
        on float arrays with NaN; ``discrete_mask`` flags the encoded columns
        that stem from discrete columns.
    encoding : {"codes", "onehot", "mixed"}
        Discrete columns as one code column (0..C-1), as C indicator
        columns, or ``"mixed"``: indicators for categorical (``cat``)
        columns, whose codes have no order for a regression to use, and
        codes for binary and ordinal ones.
    scale : bool
        Standardise each encoded column with the training mean and standard
        deviation of its observed cells (matters for distance-based
        imputers such as KNN).
    """

    def __init__(self, specs: Sequence[ColumnSpec], make_imputer: Callable,
                 encoding: str = "codes", scale: bool = False):
        if encoding not in ("codes", "onehot", "mixed"):
            raise ValueError(f"encoding must be 'codes', 'onehot' or 'mixed', got {encoding!r}")
        self.specs = list(specs)
        self.make_imputer = make_imputer
        self.encoding = encoding
        self.scale = scale

    def _onehot(self, spec: ColumnSpec) -> bool:
        """Whether the discrete column of ``spec`` is encoded as indicators."""
        return self.encoding == "onehot" or (self.encoding == "mixed" and spec.kind == "cat")

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        if list(X.columns) != [s.name for s in self.specs]:
            raise ValueError("X does not have the columns of the specs, in order")
        blocks = []
        for spec in self.specs:
            col = X[spec.name]
            if spec.kind in DISCRETE_KINDS:
                codes = pd.Index(list(spec.categories)).get_indexer(
                    col.astype(object).to_numpy())
                bad = (codes < 0) & col.notna().to_numpy()
                if bad.any():
                    raise ValueError(
                        f"column {spec.name!r} has values outside its categories: "
                        f"{col[bad].unique()[:5].tolist()}"
                    )
                codes = codes.astype(float)
                codes[codes < 0] = np.nan
                if not self._onehot(spec):
                    blocks.append(codes[:, None])
                else:
                    onehot = np.zeros((len(codes), spec.n_classes))
                    observed = ~np.isnan(codes)
                    onehot[observed, codes[observed].astype(int)] = 1.0
                    onehot[~observed] = np.nan
                    blocks.append(onehot)
            else:
                blocks.append(col.to_numpy(dtype=float, na_value=np.nan)[:, None])
        return np.hstack(blocks)

    def _discrete_mask(self) -> np.ndarray:
        flags: List[bool] = []
        for spec in self.specs:
            width = spec.n_classes if (spec.kind in DISCRETE_KINDS and self._onehot(spec)) else 1
            flags += [spec.kind in DISCRETE_KINDS] * width
        return np.asarray(flags)

    def fit(self, X: pd.DataFrame):
        Z = self._encode(X)
        self.range_ = {}
        for spec in self.specs:
            if spec.kind not in DISCRETE_KINDS:
                values = X[spec.name].to_numpy(dtype=float, na_value=np.nan)
                self.range_[spec.name] = (np.nanmin(values), np.nanmax(values))
        if self.scale:
            self.center_ = np.nan_to_num(np.nanmean(Z, axis=0))
            std = np.nan_to_num(np.nanstd(Z, axis=0))
            self.width_ = np.where(std > 0, std, 1.0)
        else:
            self.center_, self.width_ = 0.0, 1.0
        self.imputer_ = self.make_imputer(self._discrete_mask())
        self.imputer_.fit((Z - self.center_) / self.width_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        Z = self._encode(X)
        filled = self.imputer_.transform((Z - self.center_) / self.width_)
        filled = filled * self.width_ + self.center_
        out = {}
        j = 0
        for spec in self.specs:
            col = X[spec.name]
            missing = col.isna().to_numpy()
            if spec.kind in DISCRETE_KINDS:
                C = spec.n_classes
                if not self._onehot(spec):
                    codes = np.clip(np.rint(filled[:, j]), 0, C - 1).astype(int)
                    j += 1
                else:
                    codes = np.argmax(filled[:, j:j + C], axis=1)
                    j += C
                labels = np.asarray(spec.categories, dtype=object)[codes]
                values = col.astype(object).to_numpy(copy=True)
                values[missing] = labels[missing]
                dtype = pd.CategoricalDtype(list(spec.categories),
                                            ordered=spec.kind == "ordinal")
                out[spec.name] = pd.Series(values, index=X.index).astype(dtype)
            else:
                v = filled[:, j]
                j += 1
                # heterovae clips to the training range too; for the mean,
                # KNN and trees, averages of training values, it changes nothing
                v = np.clip(v, *self.range_[spec.name])
                values = col.to_numpy(dtype=float, na_value=np.nan, copy=True)
                values[missing] = v[missing]
                out[spec.name] = pd.Series(values, index=X.index)
        return pd.DataFrame(out, index=X.index)


# --- the baselines: name -> factory(specs, random_state) --------------------

#: Settings chosen so that the whole baseline run stays under ~15 minutes on
#: two shared CPU cores (see docs/benchmarks/imputation_baselines.md).
ITERATIVE_MAX_ITER = 5
FOREST_TREES = 20
FOREST_MIN_LEAF = 5
KNN_NEIGHBOURS = 5
#: R missForest's defaults (ntree, maxiter)
MISSFOREST_TREES = 100
MISSFOREST_MAX_ITER = 10


def mean_mode(specs, random_state):
    """SimpleImputer: mean of numeric columns, most frequent category."""
    return EncodedImputer(specs, MeanModeImputer)


def knn(specs, random_state):
    """KNNImputer on standardised columns, categories one-hot encoded."""
    return EncodedImputer(
        specs, lambda discrete: KNNImputer(n_neighbors=KNN_NEIGHBOURS,
                                           keep_empty_features=True),
        encoding="onehot", scale=True)


def knn_codes(specs, random_state):
    """KNNImputer on standardised columns, categories as integer codes."""
    return EncodedImputer(
        specs, lambda discrete: KNNImputer(n_neighbors=KNN_NEIGHBOURS,
                                           keep_empty_features=True),
        encoding="codes", scale=True)


def iterative(specs, random_state):
    """IterativeImputer with BayesianRidge; categorical columns one-hot, binary and ordinal as codes.

    A linear regression on the codes of an unordered categorical column
    predicts a meaningless in-between code (adult: mean error 0.404 against
    0.325 one-hot); one-hot encoding every discrete column instead costs
    the binary ones (credit 0.216 against 0.163).
    """
    return EncodedImputer(
        specs, lambda discrete: IterativeImputer(
            BayesianRidge(), max_iter=ITERATIVE_MAX_ITER, random_state=random_state,
            keep_empty_features=True),
        encoding="mixed", scale=True)


def iterative_codes(specs, random_state):
    """IterativeImputer with BayesianRidge, every discrete column as integer codes."""
    return EncodedImputer(
        specs, lambda discrete: IterativeImputer(
            BayesianRidge(), max_iter=ITERATIVE_MAX_ITER, random_state=random_state,
            keep_empty_features=True),
        scale=True)


def missforest(specs, random_state):
    """MissForest-like: IterativeImputer with ExtraTreesRegressor on codes."""
    return EncodedImputer(
        specs, lambda discrete: IterativeImputer(
            ExtraTreesRegressor(n_estimators=FOREST_TREES,
                                min_samples_leaf=FOREST_MIN_LEAF,
                                random_state=random_state, n_jobs=1),
            max_iter=ITERATIVE_MAX_ITER, random_state=random_state,
            keep_empty_features=True),
        scale=False)


def missforest_rf(specs, random_state, transductive=False):
    """MissForest as published: random forests, classifiers for discrete columns (:class:`MissForestImputer`)."""
    return EncodedImputer(
        specs, lambda discrete: MissForestImputer(discrete, n_estimators=MISSFOREST_TREES,
                                                  max_iter=MISSFOREST_MAX_ITER, transductive=transductive,
                                                  random_state=random_state),
        scale=False)


def missforest_rf_transductive(specs, random_state):
    """:func:`missforest_rf` imputing new rows together with the training rows, as R's missForest is used."""
    return missforest_rf(specs, random_state, transductive=True)


BASELINES: Dict[str, Callable] = {
    "mean": mean_mode,
    "knn": knn,
    "knn-codes": knn_codes,
    "iterative": iterative,
    "iterative-codes": iterative_codes,
    "missforest": missforest,
    "missforest-rf": missforest_rf,
    "missforest-rf-transductive": missforest_rf_transductive,
}

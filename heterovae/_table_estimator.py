"""scikit-learn plumbing shared by the estimators that take a mixed-type table and return its columns."""

from __future__ import annotations

from sklearn.utils.validation import _check_feature_names_in, check_is_fitted


class MixedTableTransformerMixin:
    """Output columns = input columns; NaN, categorical and string input accepted.

    Mix in before ``BaseEstimator`` (``class X(MixedTableTransformerMixin,
    TransformerMixin, BaseEstimator)``); subclasses extend
    ``__sklearn_tags__`` with what is specific to them.
    """

    def get_feature_names_out(self, input_features=None):
        """Column names of the output: the input's."""
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

"""Metrics: imputation error per column."""

from .imputation import (
    ERROR_OF_KIND,
    error_rate,
    imputation_error,
    mean_imputation_error,
    normalized_rmse,
)

__all__ = [
    "ERROR_OF_KIND",
    "error_rate",
    "imputation_error",
    "mean_imputation_error",
    "normalized_rmse",
]

"""Metrics: imputation error per column, and comparing methods over repeated splits."""

from .comparison import CorrectedTTestResult, corrected_paired_ttest
from .imputation import (
    ERROR_OF_KIND,
    error_rate,
    imputation_error,
    mean_imputation_error,
    normalized_rmse,
)

__all__ = [
    "CorrectedTTestResult",
    "corrected_paired_ttest",
    "ERROR_OF_KIND",
    "error_rate",
    "imputation_error",
    "mean_imputation_error",
    "normalized_rmse",
]

"""Metrics: imputation error per column, calibration of multi-task classifiers,
and comparing methods over repeated splits."""

from .calibration import (
    brier_score,
    calibration_curve_bins,
    expected_calibration_error,
    multitask_scores,
    negative_log_likelihood,
    per_task_accuracy,
    reliability_diagram,
)
from .comparison import CorrectedTTestResult, corrected_paired_ttest
from .imputation import (
    ERROR_OF_KIND,
    error_rate,
    imputation_error,
    mean_imputation_error,
    normalized_rmse,
)

__all__ = [
    "ERROR_OF_KIND",
    "CorrectedTTestResult",
    "brier_score",
    "calibration_curve_bins",
    "corrected_paired_ttest",
    "error_rate",
    "expected_calibration_error",
    "imputation_error",
    "mean_imputation_error",
    "multitask_scores",
    "negative_log_likelihood",
    "normalized_rmse",
    "per_task_accuracy",
    "reliability_diagram",
]

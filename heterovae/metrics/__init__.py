"""Evaluation metrics."""

from .calibration import (
    brier_score,
    calibration_curve_bins,
    expected_calibration_error,
    multitask_scores,
    negative_log_likelihood,
    per_task_accuracy,
    reliability_diagram,
)

__all__ = [
    "brier_score",
    "calibration_curve_bins",
    "expected_calibration_error",
    "multitask_scores",
    "negative_log_likelihood",
    "per_task_accuracy",
    "reliability_diagram",
]

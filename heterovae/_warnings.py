"""Warnings that point at the caller's line, however deep in the package they are raised."""

from __future__ import annotations

import os
import sys
import warnings

import sklearn
import skorch

#: Code whose frames a warning skips: this package and the libraries that call back into
#: it (scikit-learn's fit wrappers, skorch's training loop).
_INTERNAL = tuple(os.path.dirname(module.__file__) + os.sep for module in (sys.modules[__package__], sklearn, skorch))


def warn(message: str, category: type = UserWarning) -> None:
    """``warnings.warn`` with the ``stacklevel`` of the first frame outside the package.

    A fixed ``stacklevel`` breaks whenever a call path gains a level (a
    decorator such as scikit-learn's ``_fit_context``, a helper), and the
    warning then points into ``sklearn/base.py``.
    """
    frame, level = sys._getframe(1), 2  # stacklevel 1 is this function
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)

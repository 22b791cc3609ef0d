"""The ``device=`` parameter shared by the estimators and the sampler."""

from __future__ import annotations

import torch


def resolve_device(device) -> torch.device:
    """``"auto"`` -> CUDA when a GPU is visible, else the CPU; any other value checked.

    Raises ``ValueError`` for a string torch does not know and for a CUDA
    device on a machine without CUDA, rather than torch's ``RuntimeError``
    or ``AssertionError`` at the first tensor moved there.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a device torch knows (use 'cpu', 'cuda', 'cuda:1' or 'auto')") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(resolved)!r} was requested but CUDA is not available")
    return resolved

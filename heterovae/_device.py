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
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(resolved)!r} was requested but there are only "
                         f"{torch.cuda.device_count()} CUDA devices")
    if resolved.type not in ("cpu", "cuda") and not _backend_available(resolved.type):
        raise ValueError(f"device={str(resolved)!r}: torch has no usable {resolved.type!r} backend here "
                         "(use 'cpu', 'cuda' or 'auto')")
    return resolved


def _backend_available(kind: str) -> bool:
    """Whether an accelerator backend other than CUDA (mps, xpu, ...) can hold tensors here."""
    if kind == "meta":  # tensors without data: nothing could be trained or predicted
        return False
    module = getattr(torch.backends, kind, None) or getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    try:
        return bool(is_available()) if callable(is_available) else False
    except Exception:  # a backend that fails to even answer is not usable
        return False

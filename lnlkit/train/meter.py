"""Averaging loss terms over an epoch's steps."""

from __future__ import annotations

import torch

__all__ = ["mean_per_step"]


def mean_per_step(total: torch.Tensor | float, steps: int) -> float:
    """``total / steps`` as a Python float, NaN for an epoch without steps (an empty selection).

    Parameters
    ----------
    total : Tensor (scalar) or float
        The sum of a loss term over the epoch's steps (a detached device tensor: read once, at the end of the epoch).
    steps : int
    """
    if not steps:
        return float("nan")
    return float((total.item() if isinstance(total, torch.Tensor) else total) / steps)

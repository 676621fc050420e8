"""Learning-rate schedules and loss-weight ramps, as plain functions of the epoch (stateless, so resume is exact)."""

from __future__ import annotations

import math
from typing import Sequence

__all__ = [
    "multistep_lr",
    "cosine_lr",
    "coteaching_lr",
    "coteaching_beta1",
    "linear_rampup",
    "sigmoid_rampup",
    "set_lr",
    "set_adam_beta1",
]


def multistep_lr(base_lr: float, epoch: int, milestones: Sequence[int] = (), gamma: float = 0.1) -> float:
    """``base_lr · gamma^k`` where k is the number of milestones ``<= epoch``."""
    return base_lr * gamma ** sum(epoch >= m for m in milestones)


def cosine_lr(base_lr: float, epoch: float, total_epochs: int, min_lr: float = 0.0) -> float:
    """Cosine annealing from ``base_lr`` at epoch 0 to ``min_lr`` at ``total_epochs``."""
    t = min(max(epoch / max(total_epochs, 1), 0.0), 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * t))


def coteaching_lr(base_lr: float, epoch: int, total_epochs: int, decay_start: int) -> float:
    """Co-teaching's Adam schedule: ``base_lr`` until ``decay_start``, then linear decay
    ``base_lr · (total − epoch) / (total − decay_start)`` (Co-teaching, JoCoR, Co-mining)."""
    if epoch < decay_start:
        return base_lr
    return base_lr * (total_epochs - epoch) / max(total_epochs - decay_start, 1)


def coteaching_beta1(epoch: int, decay_start: int, beta1: float = 0.9, beta1_decay: float = 0.1) -> float:
    """Adam's β1 in Co-teaching's schedule: ``beta1`` before ``decay_start``, ``beta1_decay`` from it on."""
    return beta1 if epoch < decay_start else beta1_decay


def linear_rampup(current: float, rampup_length: float) -> float:
    """Linear ramp from 0 to 1 over ``rampup_length``, clipped to [0, 1] (DivideMix's ``linear_rampup``)."""
    if rampup_length <= 0:
        return 1.0
    return float(min(max(current / rampup_length, 0.0), 1.0))


def sigmoid_rampup(current: float, rampup_length: float) -> float:
    """``exp(-5 (1 - t)^2)`` with ``t = current / rampup_length`` clipped to [0, 1] (Laine & Aila 2017)."""
    if rampup_length <= 0:
        return 1.0
    t = min(max(current / rampup_length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


def set_lr(optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def set_adam_beta1(optimizer, beta1: float) -> None:
    """Set Adam's β1 (keeping β2) in every parameter group."""
    for group in optimizer.param_groups:
        group["betas"] = (beta1, group["betas"][1])

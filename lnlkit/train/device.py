"""Device choice, numeric precision (autocast, gradient scaling), seeding and the random-state snapshots that make
``--resume`` exact."""

from __future__ import annotations

import contextlib
import random
import warnings
from typing import Any, Iterable

import numpy as np
import torch

__all__ = [
    "resolve_device",
    "seed_everything",
    "rng_state",
    "set_rng_state",
    "PRECISIONS",
    "check_precision",
    "autocast",
    "grad_scaler",
    "backward_step",
]

# "fp32": no autocast; "bf16": bfloat16 autocast (CUDA and CPU); "fp16": float16 autocast with loss scaling (CUDA)
PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA when present (else CPU) and validate explicit choices.

    Raises
    ------
    ValueError
        For an unknown device string, or ``"cuda"`` on a machine without CUDA.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Snapshot of every global random stream (stored in checkpoints)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_precision(precision: str | bool | None) -> str:
    """Validate a precision name; ``None`` is ``"fp32"``.

    A bool is the deprecated ``amp`` switch of lnlkit < 0.9 (``True`` meant bfloat16 autocast): it is mapped to
    ``"bf16"`` / ``"fp32"`` with a DeprecationWarning.

    Raises
    ------
    ValueError
        For anything but ``"fp32"``, ``"bf16"``, ``"fp16"`` (or a bool / None).
    """
    if precision is None:
        return "fp32"
    if isinstance(precision, bool):
        warnings.warn("amp=True/False is deprecated; use precision='bf16' or 'fp32'", DeprecationWarning, stacklevel=3)
        return "bf16" if precision else "fp32"
    name = str(precision).lower()
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return name


def autocast(device: torch.device, precision: str | bool | None = "fp32"):
    """The autocast context of ``precision`` on ``device``: every forward pass of the kit runs inside it.

    ``"fp32"`` is a no-op (plain float32); ``"bf16"`` autocasts matrix products and convolutions to bfloat16 on CUDA
    and on the CPU alike; ``"fp16"`` autocasts to float16 and needs CUDA (train with :func:`grad_scaler`).

    Raises
    ------
    ValueError
        An unknown precision, or ``"fp16"`` on a non-CUDA device.
    """
    name = check_precision(precision)
    if name == "fp32":
        return contextlib.nullcontext()
    if name == "fp16":
        if device.type != "cuda":
            raise ValueError(
                "precision 'fp16' needs a CUDA device (float16 autocast with loss scaling); "
                "use 'bf16' or 'fp32' on the CPU"
            )
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def grad_scaler(device: torch.device, precision: str | bool | None) -> torch.amp.GradScaler:
    """A loss scaler for training at ``precision``: active for ``"fp16"`` on CUDA, a pass-through otherwise
    (``scale(loss)`` returns ``loss``, ``step(opt)`` calls ``opt.step()``)."""
    active = check_precision(precision) == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler("cuda" if active else "cpu", enabled=active)


def backward_step(
    loss: torch.Tensor,
    optimizers: torch.optim.Optimizer | Iterable[torch.optim.Optimizer],
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """``loss.backward()`` then ``step()`` of each optimiser, through ``scaler`` when it is active (fp16: the loss is
    scaled, gradients unscaled before the step, a step with inf/NaN gradients skipped, the scale updated once)."""
    opts = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
    if scaler is None or not scaler.is_enabled():
        loss.backward()
        for opt in opts:
            opt.step()
        return
    scaler.scale(loss).backward()
    for opt in opts:
        scaler.step(opt)
    scaler.update()

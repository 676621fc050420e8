"""Presets of the CE baseline (:class:`lnlkit.methods.ce.CE`); each docstring gives the recipe's source."""

from __future__ import annotations

from typing import Callable

from lnlkit.methods.ce import CEConfig


def _digits() -> CEConfig:
    """Embedded digits: a small CNN, cosine LR and no weight decay, so memorisation shows within 100 epochs;
    reaches ≥ 98% test accuracy on clean digits."""
    return CEConfig(
        epochs=100,
        batch_size=32,
        model="small_cnn",
        lr=0.05,
        weight_decay=0.0,
        lr_schedule="cosine",
        lr_milestones=(),
        crop_padding=1,
        flip=False,
    )


def _cifar10() -> CEConfig:
    """CIFAR-10 "Standard CE" of DivideMix's tables: PreAct ResNet-18, SGD 0.02, ×0.1 at 150, 300 epochs."""
    return CEConfig(model="preact_resnet18")


def _cifar100() -> CEConfig:
    """CIFAR-100, same recipe as CIFAR-10 (DivideMix's CE baseline)."""
    return CEConfig(model="preact_resnet18")


def _cifar_promix() -> CEConfig:
    """The plain ResNet-18 of ProMix with a cosine schedule over 600 epochs (ProMix's backbone, length and CIFAR
    normalisation)."""
    return CEConfig(
        epochs=600,
        batch_size=256,
        model="resnet18",
        lr=0.05,
        lr_schedule="cosine",
        lr_milestones=(),
        normalization="promix",
    )


def _clothing1m() -> CEConfig:
    """Clothing1M: torchvision ResNet-50 (ImageNet weights from the local file ``--set weights_path=...``), SGD
    0.002, ×0.1 at 40, 80 epochs, batch 32, wd 1e-3 — the optimiser SMR/DivideMix train their networks with."""
    return CEConfig(
        epochs=80,
        batch_size=32,
        model="resnet50_tv",
        lr=0.002,
        weight_decay=1e-3,
        lr_milestones=(40,),
        crop_padding=0,
        flip=True,
    )


PRESETS: dict[str, Callable[[], CEConfig]] = {
    "digits": _digits,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "cifar-promix": _cifar_promix,
    "clothing1m": _clothing1m,
}

"""Presets of Me-Momentum (:mod:`lnlkit.methods.me_momentum`); each docstring gives its recipe and source.

MNIST and CIFAR follow the official ``main.py``, Clothing1M the official ``Clothing.py``; the ``digits`` presets
scale them.  See docs/methods/me_momentum.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from lnlkit.methods.me_momentum import MeMomentumConfig


def _mnist() -> MeMomentumConfig:
    """MNIST (``main.py --dataset mnist``): LeNet (conv 6@5×5 pad 2 → pool → conv 16@5×5 → pool → FC 400-120-84),
    no augmentation, SGD lr 0.01 / momentum 0.9 / wd 1e-4, batch 128; 10% noisy hold-out; 3 outer loops, phase A
    ≤ 100 epochs with the growing margin, ≤ 19 rounds of 100 epochs (lr ×0.1 at 40, 80).  lnlkit has no MNIST loader:
    pass the 28×28 images with ``Dataset.from_arrays(..., clean_labels=True)`` (normalisation 0.1307 / 0.3081, as
    the official code).  With no augmentation the extraction/validation transform switches have no effect."""
    return MeMomentumConfig(model="lenet", crop_padding=0, flip=False)


def _cifar10() -> MeMomentumConfig:
    """CIFAR-10 (``main.py --dataset cifar10``): post-activation CIFAR ResNet-18 with the padding-0 stem (P-M6),
    random crop 32 / pad 4 + flip, SGD lr 0.01 / momentum 0.9 / wd 1e-4, batch 128; 10% noisy hold-out (45k / 5k);
    3 outer loops, phase A ≤ 100 epochs, ≤ 19 rounds × 100 epochs (lr ×0.1 at 40, 80); extraction and validation on
    augmented images (P-M1, P-M2).  The paper's CIFAR numbers and noise grid could not be verified
    (docs/targets.md); the official normalisation (``mememomentum``) is the method's data pipeline, applied
    automatically."""
    return MeMomentumConfig(model="resnet18")


def _cifar100() -> MeMomentumConfig:
    """CIFAR-100 (``main.py --dataset cifar100``): as CIFAR-10 with the CIFAR ResNet-34 ([3, 4, 6, 3], padding-0
    stem).  Everything else inherited from the shared ``main.py`` settings (the code has no CIFAR-100-specific
    hyperparameters)."""
    return MeMomentumConfig(model="resnet34")


def _clothing1m() -> MeMomentumConfig:
    """Clothing1M (``Clothing.py``, use ``--noise none``): the per-class variant — torchvision ResNet-50 with
    ImageNet weights from a local file (``--set weights_path=...``; without it the run stops unless
    ``pretrained=false``; the official ``--pretrain`` flag is store_false, so pretraining is on), fc → 14; SGD
    lr 0.005 / momentum 0.9 / wd 1e-3, batch 32; 3 outer loops × 6 rounds × 5 epochs, lr ×0.1 at epochs 10 and 20
    of each outer loop; class-weighted CE; per-class score 0.45·recall + 0.55·precision on the clean validation
    set (14,313 images);
    extraction and validation with the evaluation transform (as ``Clothing.py``).  Deviations: the kit's image
    pipeline (its resize / crop, device-side flip) replaces Resize(256) → RandomCrop(256, pad 32); the per-class best
    models are kept as their predictions, not as 90 checkpoints (P-M5).  The published ≈ 73.13% is UNVERIFIED."""
    return MeMomentumConfig(
        model="resnet50_tv",
        variant="per_class",
        lr=0.005,
        weight_decay=1e-3,
        batch_size=32,
        outer_loops=3,
        max_inner_rounds=6,
        round_epochs=5,
        round_milestones=(10, 20),
        beta=0.45,
        class_weighted=True,
        crop_padding=0,
        flip=True,
        extract_transform="test",
        val_transform="test",
        record_train_loss=False,
        eval_batch_size=256,
    )


def _digits() -> MeMomentumConfig:
    """Embedded digits (1,347 training images, 8×8): scale only, the algorithm is unchanged.  ``small_cnn``,
    batch 32, SGD lr 0.01 / momentum 0.9 / wd 1e-4 as the paper; 10% noisy hold-out (≈ 135 images); 3 outer loops;
    crop padding 1, no flip (digits are not mirror-symmetric); extraction and validation on augmented images in eval
    mode, as the official code.

    The official schedule scaled by 1/10 for the rounds and 1/5 for phase A:

    * **Phase A** trains at constant lr on the whole 90% pool and keeps the model of its best noisy-validation epoch
      ("latest").  An epoch counts when its accuracy beats ``best + margin``; the margin returns to 0 when one does
      and grows by 0.1 per stale epoch.  Official: up to 100 epochs, stop once the margin exceeds 2, i.e. after 20
      stale epochs.  Here: up to 20 epochs, stop once it exceeds 0.35, i.e. after 4 stale epochs (the same 1/5; the
      limit sits half a step below 0.4 so that the float accumulation of 0.1 cannot shift the stop).  The step stays
      0.1, the official value; one hold-out sample is worth about 0.74 points here, so any gain of one sample counts.
    * **Rounds**: up to 19 per outer loop, 10 epochs each (official 100) with lr ×0.1 at epochs 4 and 8 (40, 80)."""
    return MeMomentumConfig(
        model="small_cnn",
        batch_size=32,
        max_phase_a_epochs=20,
        margin_limit=0.35,
        round_epochs=10,
        round_milestones=(4, 8),
        crop_padding=1,
        flip=False,
    )


def _digits_fixed() -> MeMomentumConfig:
    """The ``digits`` preset with both augmentation quirks fixed: the confident set and the noisy validation
    accuracy are predicted on clean (un-augmented) images (``extract_transform="test"``, ``val_transform="test"``).
    A preset of its own so that its runs are tabulated apart from the official behaviour."""
    return replace(_digits(), extract_transform="test", val_transform="test")


PRESETS: dict[str, Callable[[], MeMomentumConfig]] = {
    "mnist": _mnist,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "clothing1m": _clothing1m,
    "digits": _digits,
    "digits-fixed": _digits_fixed,
}

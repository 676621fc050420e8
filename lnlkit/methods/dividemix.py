"""DivideMix (Li, Socher & Hoi, ICLR 2020) and SMR (Mathematics 2024, 12(15), 2389): two networks that split the
noisy training set into a labelled (probably clean) and an unlabelled part and learn from it semi-supervised.

Docs: docs/methods/dividemix_smr.md.  One epoch ``e`` of the loop ``e = 0 … E`` (**inclusive**, as the official code:
``epochs = E`` gives ``E + 1`` passes, see :meth:`DivideMix.num_epochs`):

1. **Warm-up** (``e < warm_up``): each network learns from all samples with the given labels, batch 2B.
   DivideMix uses cross-entropy (plus the negative-entropy confidence penalty under asymmetric noise); SMR uses a
   **mixup CE** loss instead (``warmup_loss="mixup"``).
2. **Recalibration** (SMR only, ``recal_period=R``): when ``(e + 1) % R == 0`` and ``e > warm_up`` the epoch is one
   pass of plain CE over all samples for both networks (batch 2B) instead of an SSL epoch.
3. **SSL epoch** (every other epoch):

   a. *Co-divide.*  Each network computes the per-sample CE loss of every training sample (eval mode, no
      augmentation), min-max normalised (averaged over the last 5 epochs at 90% noise, ``loss_history=5``), and
      fits a two-component Gaussian mixture; ``w`` = posterior of the low-mean component.  Both partitions
      ``{w > p_threshold}`` are made before either network trains.
   b. net1 trains on **net2's** partition, then net2 on **net1's** (net1 already updated).  For each labelled batch
      (two weak views ``x1, x2``, one-hot label ``y``, clean probability ``w``) and an unlabelled batch (``u1, u2``):

      * *co-refinement*: ``p̄ = w·y + (1 − w)·mean(softmax f(x1), softmax f(x2))``, sharpened with ``T``;
      * *co-guessing*: ``p_u = mean of softmax over f(u1), f(u2), g(u1), g(u2)`` (``g`` the other network),
        sharpened with ``T``;
      * *MixMatch*: mix ``[x1, x2, u1, u2]`` and their targets with one ``λ ~ Beta(α, α)``, ``λ ← max(λ, 1 − λ)``,
        partners drawn from the whole concatenation; ``L_x`` = soft CE over the labelled rows, ``L_u`` = MSE over the
        unlabelled rows with the weight ``λu`` ramped linearly over 16 epochs from the end of the warm-up, plus the
        uniform-prior penalty on the mean prediction: ``loss = L_x + λu·L_u + penalty``.

4. Test: argmax of the sum of the two networks' logits (the base class's ensemble evaluation).

SMR is DivideMix with (1) and (2) switched on (:class:`SMR`); every other line is shared.  Where the official code
does something the docs list as a quirk, a named ``faithful_*`` switch keeps the official behaviour by default:

* ``faithful_train_mode_guess`` — the network being trained is in *train* mode during its no-grad co-guessing and
  co-refinement forwards, so its BatchNorm running statistics are updated by those passes (and each of the four
  forwards is normalised with its own batch statistics).  ``False``: those forwards run in eval mode.
* ``faithful_lambda_u0_mixing`` — in the labelled-only step of the λu = 0 scripts (``labelled_only=True``:
  Animal-10N, Clothing1M, WebVision) only the first 2B mixed rows are kept, but their mixup partners are drawn from
  all 4B rows, so unlabelled inputs and their guessed targets leak into ``L_x``.  ``False``: partners are drawn
  among the labelled rows only (and no unlabelled batch is drawn).

Kit choices (documented deviations): the GMM has a fixed ``random_state`` (``gmm_random_state``; the official one is
unseeded); all randomness (loader order, augmentation, λ draws, permutations) comes from per-(seed, epoch, stream)
generators, so runs are deterministic and resume exactly; the reported number is the last epoch's ensemble test
accuracy (``reported_as = "ensemble_acc_last"``; the best epoch is in ``test_acc_best``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.train.augment import Augment
from lnlkit.train.device import backward_step
from lnlkit.train.evaluate import autocast, predict_train_subset
from lnlkit.train.loader import Batch, class_balanced_subset, stream_numpy_generator
from lnlkit.train.meter import mean_per_step
from lnlkit.train.losses import (mixup, mixup_cross_entropy, mixup_lambda, negative_entropy, one_hot, sharpen,
                                 soft_cross_entropy, uniform_prior_penalty)
from lnlkit.train.schedules import linear_rampup, multistep_lr, set_lr
from lnlkit.train.selection import gmm_split, min_max_normalise

__all__ = ["DivideMixConfig", "SMRConfig", "DivideMix", "SMR"]


@dataclass
class DivideMixConfig(MethodConfig):
    """Hyperparameters of DivideMix (defaults: the official CIFAR-10 script, ``Train_cifar.py``).

    Attributes
    ----------
    epochs : int
        ``E``; the loop runs ``e = 0 … E`` inclusive (``E + 1`` epochs), as the official code.
    batch_size : int
        ``B``, the labelled and unlabelled batch of an SSL step; warm-up and recalibration use ``2B``.
    warm_up : int
        Warm-up epochs (10 on CIFAR-10, 30 on CIFAR-100); the λu ramp starts here.
    warmup_loss : {"ce", "mixup"}
        DivideMix: ``"ce"``; SMR: ``"mixup"`` (mixup CE with ``λ ~ Beta(α, α)``, ``λ ← max(λ, 1 − λ)``).
    asym_penalty : bool
        Add the negative-entropy confidence penalty to the CE warm-up (DivideMix under asymmetric noise and on
        Clothing1M).  Ignored by the mixup warm-up, which has no penalty.
    recal_period : int or None
        SMR's recalibration period ``R``: epoch ``e`` with ``(e + 1) % R == 0`` and ``e > warm_up`` is a plain-CE
        epoch.  ``None``: never (DivideMix).
    alpha : float
        Beta parameter of the mixup coefficient (4 on CIFAR, 0.5 on Clothing1M/WebVision).
    lambda_u : float
        Final weight of the unlabelled loss (the per-setting value matters, see the presets).
    rampup_length : float
        Epochs of the linear λu ramp that starts at ``warm_up`` (16 in the official code).
    p_threshold : float
        Clean-probability threshold of the labelled set.
    temperature : float
        Sharpening temperature ``T``.
    loss_history : int
        The GMM input is the mean of the last ``loss_history`` normalised loss vectors (5 at 90% noise, else 1).
    labelled_only : bool
        The λu = 0 step of the official Animal-10N/Clothing1M/WebVision scripts: only the first 2B mixed rows are
        kept (no ``L_u``; the penalty is taken over those rows).  Requires ``lambda_u == 0``.
    epoch_subset : int or None
        Clothing1M: each epoch, each network partitions its own class-balanced random sample of this many
        training samples (``num_batches · B = 32,000``) instead of the whole set; each warm-up epoch trains on a
        fresh class-balanced sample of twice that size (``num_batches`` steps of 2B), and a recalibration epoch runs
        over an epoch sample with the test transform, unshuffled (SMR's Clothing1M script).
    gmm_random_state : int
        Seed of scikit-learn's GMM initialisation (the official GMM is unseeded).
    faithful_train_mode_guess, faithful_lambda_u0_mixing : bool
        Official-code quirks, see the module docstring.
    record_train_loss : bool
        Also record the (normalised) per-sample losses of both networks in warm-up and recalibration epochs, for
        the loss-distribution plots (an extra evaluation pass; never used for training).
    weights_path : str or None
        Local ImageNet weights for pretrained backbones (Clothing1M; never downloaded).
    """

    epochs: int = 300
    batch_size: int = 64
    model: str = "auto"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[int, ...] = (150,)
    lr_gamma: float = 0.1
    warm_up: int = 10
    warmup_loss: str = "ce"
    asym_penalty: bool = False
    recal_period: int | None = None
    alpha: float = 4.0
    lambda_u: float = 25.0
    rampup_length: float = 16.0
    p_threshold: float = 0.5
    temperature: float = 0.5
    loss_history: int = 1
    labelled_only: bool = False
    epoch_subset: int | None = None
    gmm_random_state: int = 0
    crop_padding: int = 4
    flip: bool = True
    faithful_train_mode_guess: bool = True
    faithful_lambda_u0_mixing: bool = True
    record_train_loss: bool = True
    weights_path: str | None = None

    def validate(self) -> None:
        super().validate()
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.warmup_loss not in ("ce", "mixup"):
            raise ValueError(f"warmup_loss must be 'ce' (DivideMix) or 'mixup' (SMR), got {self.warmup_loss!r}")
        if self.recal_period is not None and (not isinstance(self.recal_period, int) or self.recal_period < 1):
            raise ValueError(f"recal_period must be a positive integer or None, got {self.recal_period!r}")
        if not isinstance(self.warm_up, int) or self.warm_up < 0:
            raise ValueError(f"warm_up must be a non-negative integer, got {self.warm_up!r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha (Beta parameter) must be positive, got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.p_threshold <= 1.0:
            raise ValueError(f"p_threshold must be in [0, 1], got {self.p_threshold}")
        if self.lambda_u < 0 or self.rampup_length < 0:
            raise ValueError(f"lambda_u and rampup_length must be >= 0, got {self.lambda_u}, {self.rampup_length}")
        if not isinstance(self.loss_history, int) or self.loss_history < 1:
            raise ValueError(f"loss_history must be a positive integer, got {self.loss_history!r}")
        if self.labelled_only and self.lambda_u != 0:
            raise ValueError(f"labelled_only drops the unlabelled loss; it needs lambda_u=0, got {self.lambda_u}")
        if self.epoch_subset is not None:
            if not isinstance(self.epoch_subset, int) or self.epoch_subset < 1:
                raise ValueError(f"epoch_subset must be a positive integer or None, got {self.epoch_subset!r}")
            if self.loss_history > 1:
                raise ValueError("loss_history > 1 averages per-sample losses over epochs and cannot be combined "
                                 "with epoch_subset (each epoch partitions a different sample)")


@dataclass
class SMRConfig(DivideMixConfig):
    """SMR's defaults (official ``Train_cifar.py`` of SMR): DivideMix with a mixup-CE warm-up, recalibration every
    30 epochs and batch 128.  See :class:`DivideMixConfig` for every field."""

    batch_size: int = 128
    warmup_loss: str = "mixup"
    recal_period: int | None = 30


# ---------------------------------------------------------------------------------------------------- presets
# λu / p_threshold per CIFAR setting (docs/methods/dividemix_smr.md#hyperparameters-per-cifar-setting).
# DivideMix's values are its paper's App. B Table 7; SMR's README gives C10 sym50, C10 asym40 and C100 sym20 and
# inherits the rest from DivideMix by assumption.
_CIFAR_SETTINGS: dict[str, dict] = {
    # name: (dataset, noise spec, overrides, where the values come from)
    "cifar10-sym20": dict(dataset="cifar10", noise="symmetric-inclusive:0.2", lambda_u=0.0, p_threshold=0.5,
                          source="DivideMix Table 7 (DivideMix issue #50); not in SMR's docs, inherited by assumption"),
    "cifar10-sym50": dict(dataset="cifar10", noise="symmetric-inclusive:0.5", lambda_u=25.0, p_threshold=0.5,
                          source="SMR README; DivideMix Table 7"),
    "cifar10-sym80": dict(dataset="cifar10", noise="symmetric-inclusive:0.8", lambda_u=25.0, p_threshold=0.5,
                          source="inherited from DivideMix Table 7, UNVERIFIED"),
    "cifar10-sym90": dict(dataset="cifar10", noise="symmetric-inclusive:0.9", lambda_u=50.0, p_threshold=0.6,
                          loss_history=5,
                          source="inherited from DivideMix Table 7, UNVERIFIED (p_threshold 0.6 stated by the "
                                 "DivideMix author, issue #10; λu 50 and 0.6 also in issue #46); the GMM input "
                                 "is the mean of the last 5 epochs' losses"),
    "cifar10-asym40": dict(dataset="cifar10", noise="asym-cifar10:0.4", lambda_u=0.0, p_threshold=0.5,
                           asym=True, source="SMR README; DivideMix issues #9/#26"),
    "cifar100-sym20": dict(dataset="cifar100", noise="symmetric-inclusive:0.2", lambda_u=25.0, p_threshold=0.5,
                           source="SMR README; DivideMix Table 7"),
    "cifar100-sym50": dict(dataset="cifar100", noise="symmetric-inclusive:0.5", lambda_u=150.0, p_threshold=0.5,
                           source="inherited from DivideMix Table 7, UNVERIFIED (λu 150 quoted in InstanceGM "
                                  "issue #1)"),
    "cifar100-sym80": dict(dataset="cifar100", noise="symmetric-inclusive:0.8", lambda_u=150.0, p_threshold=0.5,
                           source="inherited from DivideMix Table 7, UNVERIFIED"),
    "cifar100-sym90": dict(dataset="cifar100", noise="symmetric-inclusive:0.9", lambda_u=150.0, p_threshold=0.6,
                           loss_history=5,
                           source="inherited from DivideMix (author, issue #10), UNVERIFIED; the GMM input is "
                                  "the mean of the last 5 epochs' losses"),
}


def _cifar_preset(name: str, smr: bool) -> Callable[[], DivideMixConfig]:
    s = _CIFAR_SETTINGS[name]
    cifar100 = s["dataset"] == "cifar100"

    def build() -> DivideMixConfig:
        common = dict(model="preact_resnet18", epochs=300, lr=0.02, lr_milestones=(150,), weight_decay=5e-4,
                      warm_up=30 if cifar100 else 10, alpha=4.0, temperature=0.5, lambda_u=s["lambda_u"],
                      p_threshold=s["p_threshold"], loss_history=s.get("loss_history", 1))
        if smr:
            return SMRConfig(batch_size=128, warmup_loss="mixup", recal_period=30, **common)
        return DivideMixConfig(batch_size=64, warmup_loss="ce", asym_penalty=s.get("asym", False), **common)

    method = "SMR" if smr else "DivideMix"
    build.__doc__ = (
        f"{method}, {s['dataset'].upper().replace('CIFAR', 'CIFAR-')} with {s['noise']} noise (use this spec; "
        f"seed 123 gives the official labels). PreAct ResNet-18, 300 epochs (301 passes), SGD lr 0.02 ×0.1 at 150, "
        f"wd 5e-4, warm-up {30 if cifar100 else 10}, α = 4, T = 0.5, "
        + ("batch 128 (warm-up 256), mixup-CE warm-up, recalibration every 30 epochs. " if smr else
           f"batch 64 (warm-up 128), CE warm-up{' + confidence penalty (asym)' if s.get('asym') else ''}. ")
        + f"λu = {s['lambda_u']:g}, p_threshold = {s['p_threshold']:g} (source: {s['source']})."
    )
    return build


def _animal10n(smr: bool) -> Callable[[], DivideMixConfig]:
    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(model="preact_resnet18", epochs=200, batch_size=128, lr=0.01, lr_milestones=(140,), lr_gamma=0.01,
                   weight_decay=1e-3, warm_up=30, warmup_loss="mixup" if smr else "ce",
                   recal_period=15 if smr else None, alpha=4.0, lambda_u=0.0, labelled_only=True, p_threshold=0.5,
                   crop_padding=0, flip=True)

    build.__doc__ = (
        ("SMR" if smr else "DivideMix") + ", Animal-10N (real noise, use ``--noise none``): SMR's script as coded — "
        "200 epochs, warm-up 30, SGD lr 0.01 until epoch 139 then 1e-4 (the intended step at 80 is dead code in SMR's "
        "script), wd 1e-3, batch 128 (warm-up 256), α = 4, λu = 0 (labelled-only step), p_threshold 0.5, random flip "
        "only" + (", mixup warm-up, recalibration every 15 epochs (44, 59, …, 194). " if smr else
                  ". DivideMix has no official Animal-10N script: these are SMR's settings with DivideMix's CE warm-up "
                  "(kit choice, UNVERIFIED). ")
        + "Model deviation: the official backbone is torchvision VGG-19-BN (not pretrained), which lnlkit does not "
        "provide; this preset uses lnlkit's ``preact_resnet18`` (adaptive pooling, so 64×64 inputs work).")
    return build


def _clothing1m(smr: bool) -> Callable[[], DivideMixConfig]:
    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(model="resnet50_tv", epochs=80, batch_size=32, lr=0.002, lr_milestones=(40,), weight_decay=1e-3,
                   warm_up=1, warmup_loss="mixup" if smr else "ce", asym_penalty=not smr,
                   recal_period=10 if smr else None, alpha=0.5, lambda_u=0.0, labelled_only=True, p_threshold=0.5,
                   epoch_subset=32000, crop_padding=0, flip=True, record_train_loss=False, eval_batch_size=256)

    build.__doc__ = (
        ("SMR" if smr else "DivideMix") + ", Clothing1M (use ``--noise none``): torchvision ResNet-50 with ImageNet "
        "weights from a local file (``--set weights_path=...``; without it the network starts from scratch), fc → "
        "14; 80 epochs, warm-up 1, SGD lr 0.002 ×0.1 at 40, wd 1e-3, batch 32 (warm-up 64), α = 0.5, λu = 0 "
        "(labelled-only step), p_threshold 0.5; each epoch each network partitions its own class-balanced sample of "
        "32,000 images (1000 × 32) and a warm-up epoch trains on 64,000; "
        + ("mixup warm-up, recalibration every 10 epochs (9, 19, …, 79) over an epoch sample (test transform, "
           "unshuffled)." if smr else "CE warm-up + confidence penalty (DivideMix's Clothing1M script).")
        + " Deviations: the official number is the ensemble of each network's best-validation checkpoint; lnlkit "
        "reports the last epoch's ensemble test accuracy (no validation pass in the kit's driver).  The two "
        "training views are two independent random 224 crops, as the official loader's.")
    return build


def _webvision(smr: bool) -> Callable[[], DivideMixConfig]:
    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(model="resnet50_tv", epochs=120 if smr else 80, batch_size=32, lr=0.01,
                   lr_milestones=(40, 80) if smr else (40,), weight_decay=5e-4, warm_up=1,
                   warmup_loss="mixup" if smr else "ce", recal_period=15 if smr else None, alpha=0.5, lambda_u=0.0,
                   labelled_only=True, p_threshold=0.5, crop_padding=0, flip=True, precision="fp16" if smr else "fp32",
                   eval_precision="fp32" if smr else None, eval_batch_size=256)

    build.__doc__ = (
        ("SMR" if smr else "DivideMix") + ", mini-WebVision (50 classes, ``--noise none``): "
        + ("120 epochs, lr 0.01 ×0.1 at 40 and ×0.01 at 80, mixup warm-up (1 epoch), recalibration every 15 epochs "
           "(14, 29, …, 119), " if smr else "80 epochs, lr 0.01 ×0.1 at 40, CE warm-up (1 epoch, no penalty), ")
        + "SGD wd 5e-4, batch 32 (warm-up 64), α = 0.5, λu = 0 (labelled-only step), p_threshold 0.5, "
        + ("float16 autocast with loss scaling in the training steps, float32 evaluation (``precision='fp16'``, "
           "``eval_precision='fp32'``, as the official ``Train_webvision.py``; there the mixup warm-up and the "
           "co-guessing forwards stay float32, here they run in float16 too). " if smr else "float32. ")
        + "Model deviation: the official backbone is InceptionResNetV2 trained from scratch, which lnlkit does not "
        "provide; this preset uses torchvision ResNet-50 from scratch (``resnet50_tv`` without weights). Only "
        "WebVision-val top-1 of the ensemble is recorded (not top-5, not ILSVRC12-val). The two training views "
        "differ by device-side flips only (see the Clothing1M preset).")
    return build


def _digits(smr: bool, warmup_loss: str | None = None, recal: bool | None = None) -> Callable[[], DivideMixConfig]:
    warmup_loss = warmup_loss or ("mixup" if smr else "ce")
    recal = smr if recal is None else recal

    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(model="small_cnn", epochs=60, batch_size=64, lr=0.02, lr_milestones=(30,), weight_decay=5e-4,
                   warm_up=5, warmup_loss=warmup_loss, recal_period=6 if recal else None, alpha=4.0, lambda_u=25.0,
                   rampup_length=3.0, p_threshold=0.5, temperature=0.5, crop_padding=1, flip=False)

    parts = [("SMR" if smr else "DivideMix") + " on the embedded digits (1,347 training images)"]
    if not smr and (warmup_loss == "mixup" or recal):
        parts.append("ablation: DivideMix" + (" + mixup warm-up" if warmup_loss == "mixup" else "")
                     + (" + recalibration" if recal else ""))
    build.__doc__ = (
        "; ".join(parts) + ". Scale only, the algorithm is unchanged: ``small_cnn``, 60 epochs (61 passes), batch 64 "
        "(warm-up 128; the same for every digits preset so the ablation compares like with like), lr 0.02 ×0.1 "
        "at 30, warm-up 5, λu ramp 3 epochs, "
        + ("recalibration every 6 epochs, " if recal else "")
        + "crop padding 1, no flip (digits are not mirror-symmetric); α = 4, T = 0.5, λu = 25, p_threshold 0.5 as "
        "on CIFAR-10 sym 50%"
        + (", no confidence penalty (set ``asym_penalty=True`` for DivideMix's asymmetric-noise warm-up)."
           if warmup_loss == "ce" else ".")
        + (" The recalibration period is CIFAR's 30 scaled like the epochs (300 → 60): 9 recalibration epochs "
           "(11, 17, …, 59)." if recal else "")
        + " Tuned on symmetric:0.4 and pairflip:0.4 (seeds 0-2): batch 32 made SMR's recalibration epochs "
        "destructive under pair-flip noise (each one a larger share of the optimisation steps).")
    return build


def _presets(smr: bool) -> dict[str, Callable[[], DivideMixConfig]]:
    presets = {name: _cifar_preset(name, smr) for name in _CIFAR_SETTINGS}
    presets.update(animal10n=_animal10n(smr), clothing1m=_clothing1m(smr), webvision=_webvision(smr),
                   digits=_digits(smr))
    if not smr:  # SMR's ablation: DivideMix, + mixup warm-up, + recalibration, both (= smr's "digits")
        presets["digits-mixup-warmup"] = _digits(False, warmup_loss="mixup", recal=False)
        presets["digits-recal"] = _digits(False, warmup_loss="ce", recal=True)
    return presets


# ---------------------------------------------------------------------------------------------------- the method
class DivideMix(Method):
    """DivideMix: co-divide with per-network GMMs, co-refinement, co-guessing and MixMatch (module docstring)."""

    name = "dividemix"
    Config = DivideMixConfig
    PRESETS = _presets(smr=False)
    reported_as = "ensemble_acc_last"
    supports_fp16 = True
    data_pipeline = "dividemix"
    PRETRAINED_PRESETS = frozenset({"clothing1m"})  # official Train_clothing1M.py: resnet50(pretrained=True)
    REAL_NOISE_DATASETS: ClassVar[tuple[str, ...]] = ("animal10n", "clothing1m", "webvision")

    # ------------------------------------------------------------------ presets by setting
    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """The preset of a paper setting, e.g. ``("cifar10", "symmetric-inclusive:0.5") -> "cifar10-sym50"``.

        CIFAR settings match the official noise recipes exactly (``symmetric-inclusive:R``, ``asym-cifar10:0.4``);
        the real-noise data sets match with no injected noise (``None``, ``"none"`` or ``"clean"``); the embedded
        digits always get ``"digits"``.  Anything else gives ``None``.
        """
        dataset = str(dataset).lower()
        if dataset == "digits":
            return "digits" if "digits" in cls.PRESETS else None
        if dataset in cls.REAL_NOISE_DATASETS:
            return dataset if cls.no_injected_noise(noise) else None
        if noise is None or ":" not in str(noise):
            return None
        kind, _, arg = str(noise).lower().partition(":")
        try:
            rate = float(arg)
        except ValueError:
            return None
        for name, s in _CIFAR_SETTINGS.items():
            s_kind, _, s_rate = s["noise"].partition(":")
            if s["dataset"] == dataset and s_kind == kind and math.isclose(rate, float(s_rate), abs_tol=1e-9):
                return name if name in cls.PRESETS else None
        return None

    # ------------------------------------------------------------------ schedule
    def num_epochs(self) -> int:
        """``epochs + 1``: the official loop is ``for epoch in range(num_epochs + 1)``."""
        return self.config.epochs + 1

    def phase(self, epoch: int) -> str:
        """``"warmup"``, ``"recal"`` (SMR's recalibration epoch) or ``"ssl"``."""
        cfg = self.config
        if epoch < cfg.warm_up:
            return "warmup"
        if cfg.recal_period and (epoch + 1) % cfg.recal_period == 0 and epoch > cfg.warm_up:
            return "recal"
        return "ssl"

    def recalibration_epochs(self) -> list[int]:
        """Epochs that are recalibration epochs (CIFAR-10 SMR: 29, 59, …, 299)."""
        return [e for e in range(self.num_epochs()) if self.phase(e) == "recal"]

    def learning_rate(self, epoch: int) -> float:
        cfg = self.config
        return multistep_lr(cfg.lr, epoch, cfg.lr_milestones, cfg.lr_gamma)

    def unlabelled_weight(self, t: float) -> float:
        """λu at fractional epoch ``t``: ``λu_max · clip((t − warm_up) / rampup_length, 0, 1)``."""
        cfg = self.config
        return cfg.lambda_u * linear_rampup(t - cfg.warm_up, cfg.rampup_length)

    # ------------------------------------------------------------------ setup and state
    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.nets = [ctx.build_model(cfg.model, weights_path=cfg.weights_path) for _ in range(2)]
        self.optimizers = [torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                           weight_decay=cfg.weight_decay) for net in self.nets]
        self.augment = Augment(cfg.crop_padding, cfg.flip) if ctx.data.is_image else None
        # last `loss_history` normalised per-sample loss vectors of each network (CPU float32), SSL epochs only
        self.loss_buffers: list[list[torch.Tensor]] = [[], []]

    def networks(self):
        return list(self.nets)

    def state_dict(self) -> dict:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers],
                "loss_buffers": [[t.clone() for t in buf] for buf in self.loss_buffers]}

    def load_state_dict(self, state: dict) -> None:
        for opt, sd in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(sd)
        self.loss_buffers = [[t.clone() for t in buf] for buf in state["loss_buffers"]]

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        lr = self.learning_rate(epoch)
        for opt in self.optimizers:
            set_lr(opt, lr)
        phase = self.phase(epoch)
        if phase == "warmup":
            record, signals = self.warm_up(ctx, epoch)
        elif phase == "recal":
            record, signals = self.recalibrate(ctx, epoch)
        else:
            record, signals = self.ssl_epoch(ctx, epoch)
        return EpochOutput({"phase": phase, "lr": lr, **record}, signals)

    # ------------------------------------------------------------------ 1. warm-up
    def warm_up(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """Each network, in turn, one epoch on all samples with the given labels (batch 2B): CE (+ confidence
        penalty if ``asym_penalty``) for DivideMix, mixup CE for SMR."""
        cfg = self.config
        stats = []
        for k, (net, opt) in enumerate(zip(self.nets, self.optimizers)):
            pool = None
            if cfg.epoch_subset:  # Clothing1M: a fresh class-balanced sample of num_batches · 2B images
                pool = class_balanced_subset(ctx.data.labels, 2 * cfg.epoch_subset, ctx.num_classes,
                                             ctx.generator(epoch, f"warmup/subset/net{k + 1}")).cpu().numpy()
            loader = ctx.data.loader(2 * cfg.batch_size, indices=pool, augment=self.augment,
                                     stream=f"warmup/net{k + 1}")
            rng = stream_numpy_generator(ctx.seed, epoch, f"warmup/lambda/net{k + 1}")
            gen = ctx.generator(epoch, f"warmup/perm/net{k + 1}")
            stats.append(self._supervised_epoch(ctx, net, opt, loader.epoch(epoch), cfg.warmup_loss, rng, gen))
        return self._supervised_record(stats), self._loss_signals(ctx, epoch)

    # ------------------------------------------------------------------ 2. recalibration (SMR)
    def recalibrate(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """SMR's recalibration epoch: plain CE (no mixup, no penalty) over the whole noisy set for both networks,
        batch 2B (Clothing1M: B, the batch of the official evaluation loader it trains on); no per-sample
        evaluation or GMM this epoch."""
        cfg = self.config
        stats = []
        if cfg.epoch_subset:  # SMR's Clothing1M script: an epoch sample, test transform, unshuffled
            pool = class_balanced_subset(ctx.data.labels, cfg.epoch_subset, ctx.num_classes,
                                         ctx.generator(epoch, "recal/subset"))
            for net, opt in zip(self.nets, self.optimizers):
                batches = (Batch(idx, (x,), ctx.data.labels[idx])
                           for idx, x in ctx.data.iter_train_subset(pool, cfg.batch_size))
                stats.append(self._supervised_epoch(ctx, net, opt, batches, "plain", None, None))
        else:
            for k, (net, opt) in enumerate(zip(self.nets, self.optimizers)):
                loader = ctx.data.loader(2 * cfg.batch_size, augment=self.augment, stream=f"recal/net{k + 1}")
                stats.append(self._supervised_epoch(ctx, net, opt, loader.epoch(epoch), "plain", None, None))
        return self._supervised_record(stats), self._loss_signals(ctx, epoch)

    def _supervised_epoch(self, ctx: Context, net, opt, batches: Iterator[Batch], loss_kind: str,
                          rng: np.random.Generator | None, gen: torch.Generator | None) -> dict:
        """One pass of ``net`` over ``batches`` with CE (``"ce"``: + penalty if configured; ``"plain"``: never a
        penalty) or mixup CE (``"mixup"``)."""
        cfg = self.config
        net.train()
        loss_sum = torch.zeros((), device=ctx.device)
        pen_sum = torch.zeros((), device=ctx.device)
        steps = 0
        for batch in batches:
            terms = self.supervised_step(ctx, net, opt, batch.x, batch.y, loss_kind, rng, gen)
            loss_sum += terms["loss"]
            if "penalty" in terms:
                pen_sum += terms["penalty"]
            steps += 1
        out = {"loss": loss_sum, "steps": steps}
        if loss_kind == "ce" and cfg.asym_penalty:
            out["penalty"] = pen_sum
        return out

    def supervised_step(self, ctx: Context, net, opt, x: torch.Tensor, y: torch.Tensor, loss_kind: str,
                        rng: np.random.Generator | None, gen: torch.Generator | None) -> dict[str, torch.Tensor]:
        """One SGD step of ``net`` on a batch ``x`` (B, ...) with given labels ``y`` (B,).

        ``"ce"``: CE (+ the negative-entropy penalty if ``asym_penalty``); ``"plain"``: CE, never a penalty (SMR's
        recalibration); ``"mixup"``: SMR's warm-up, CE on ``λ x + (1 − λ) x[perm]`` against the two labels with
        weights ``λ, 1 − λ`` (``λ`` from ``rng``, folded to ``max(λ, 1 − λ)``; ``perm`` from ``gen``).

        Returns
        -------
        dict of detached scalars: ``loss`` (and ``penalty`` when one is added)
        """
        cfg = self.config
        terms = {}
        with autocast(ctx.device, cfg.precision):
            if loss_kind == "mixup":
                lam = mixup_lambda(rng, cfg.alpha)
                perm = torch.randperm(len(y), device=ctx.device, generator=gen)
                logits = net(lam * x + (1.0 - lam) * x[perm]).float()
                loss = mixup_cross_entropy(logits, y, y[perm], lam)
            else:
                logits = net(x).float()
                loss = F.cross_entropy(logits, y)
                if loss_kind == "ce" and cfg.asym_penalty:
                    penalty = negative_entropy(logits)
                    terms["penalty"] = penalty.detach()
                    loss = loss + penalty
        opt.zero_grad(set_to_none=True)
        backward_step(loss, opt, self.grad_scaler)
        terms["loss"] = loss.detach()
        return terms

    @staticmethod
    def _supervised_record(stats: list[dict]) -> dict:
        steps = sum(s["steps"] for s in stats)
        record = {"loss": mean_per_step(sum(s["loss"] for s in stats), steps)}
        if "penalty" in stats[0]:
            record["penalty"] = mean_per_step(sum(s["penalty"] for s in stats), steps)
        return record

    def _loss_signals(self, ctx: Context, epoch: int) -> dict:
        """Normalised per-sample losses of both networks for the plots of warm-up / recalibration epochs (only on
        epochs the driver records; evaluation only, never used for training)."""
        cfg = self.config
        if not (cfg.record_train_loss and ctx.records_signals(epoch)):
            return {}
        pool = torch.arange(ctx.n_train, device=ctx.device)
        return {"loss": self.normalised_losses(ctx, self.nets[0], pool),
                "loss_net2": self.normalised_losses(ctx, self.nets[1], pool)}

    # ------------------------------------------------------------------ 3. SSL epoch
    def ssl_epoch(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """Co-divide, then train net1 on net2's partition and net2 on net1's partition."""
        # (a) co-divide: both networks' clean probabilities, before either network trains this epoch
        pools = [self.partition_pool(ctx, epoch, k) for k in range(2)]
        divisions = [self.clean_probability(ctx, k, pools[k]) for k in range(2)]
        # (b) each network learns from the partition the *other* network made
        stats = [self.train_ssl(ctx, epoch, k=0, pool=pools[1], prob=divisions[1][0]),
                 self.train_ssl(ctx, epoch, k=1, pool=pools[0], prob=divisions[0][0])]

        record = self._ssl_record(stats)
        signals = {}
        for k, suffix in enumerate(("", "_net2")):
            prob, gmm_input = divisions[k]
            pool = pools[k].cpu().numpy()
            loss = np.full(ctx.n_train, np.nan, dtype=np.float32)
            clean = np.full(ctx.n_train, np.nan, dtype=np.float32)
            loss[pool], clean[pool] = gmm_input, prob.cpu().numpy()
            signals["loss" + suffix] = loss
            signals["clean_prob" + suffix] = clean
            signals["selected" + suffix] = clean > self.config.p_threshold  # NaN (not in the pool) -> False
            record["n_selected" + suffix] = int(signals["selected" + suffix].sum())
        return record, signals

    def partition_pool(self, ctx: Context, epoch: int, k: int) -> torch.Tensor:
        """Samples network ``k`` divides this epoch: all of them, or a fresh class-balanced sample
        (``epoch_subset``, Clothing1M)."""
        if self.config.epoch_subset is None:
            return torch.arange(ctx.n_train, device=ctx.device)
        return class_balanced_subset(ctx.data.labels, self.config.epoch_subset, ctx.num_classes,
                                     ctx.generator(epoch, f"ssl/subset/net{k + 1}"))

    def normalised_losses(self, ctx: Context, net, pool: torch.Tensor) -> np.ndarray:
        """Per-sample CE of the given labels (eval mode, no augmentation), min-max normalised over ``pool``."""
        logits = predict_train_subset(net, ctx.data, pool, self.config.eval_batch_size, self.config.evaluation_precision)
        loss = F.cross_entropy(logits, ctx.data.labels[pool], reduction="none")
        return min_max_normalise(loss.cpu().numpy()).astype(np.float32)

    def clean_probability(self, ctx: Context, k: int, pool: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """Network ``k``'s GMM posterior of being clean for each sample of ``pool``.

        Returns
        -------
        prob : Tensor float32 (len(pool),) on the device
        gmm_input : ndarray float32 (len(pool),)
            The normalised losses the GMM was fitted to (averaged over the last ``loss_history`` SSL epochs).
        """
        cfg = self.config
        losses = torch.from_numpy(self.normalised_losses(ctx, self.nets[k], pool))
        if cfg.loss_history > 1:
            self.loss_buffers[k] = (self.loss_buffers[k] + [losses])[-cfg.loss_history:]
            losses = torch.stack(self.loss_buffers[k]).mean(0)
        gmm_input = losses.numpy()
        with warnings.catch_warnings():  # max_iter=10 is DivideMix's choice; sklearn warns when EM has not converged
            warnings.simplefilter("ignore", ConvergenceWarning)
            split = gmm_split(gmm_input, random_state=cfg.gmm_random_state)
        return torch.as_tensor(split.clean_prob, dtype=torch.float32, device=ctx.device), gmm_input

    def train_ssl(self, ctx: Context, epoch: int, k: int, pool: torch.Tensor, prob: torch.Tensor) -> dict:
        """One SSL epoch of network ``k`` on the partition ``prob > p_threshold`` of ``pool`` (made by the other
        network), co-guessing with the other network."""
        cfg = self.config
        tag = f"net{k + 1}"
        labelled = prob > cfg.p_threshold
        labelled_idx, unlabelled_idx = pool[labelled], pool[~labelled]
        w_of = torch.zeros(ctx.n_train, device=ctx.device)  # clean probability by sample index
        w_of[pool] = prob

        views = [self.augment, self.augment]  # two weak augmentations of each sample
        labelled_loader = ctx.data.loader(cfg.batch_size, indices=labelled_idx.cpu().numpy(), augment=views,
                                          stream=f"ssl/labelled/{tag}")
        use_unlabelled = len(unlabelled_idx) > 0 and (not cfg.labelled_only or cfg.faithful_lambda_u0_mixing)
        unlabelled_batches = (self._cycle(ctx, unlabelled_idx, views, epoch, f"ssl/unlabelled/{tag}")
                              if use_unlabelled else None)
        num_iters = len(labelled_idx) // cfg.batch_size + 1
        rng = stream_numpy_generator(ctx.seed, epoch, f"ssl/lambda/{tag}")
        gen = ctx.generator(epoch, f"ssl/perm/{tag}")

        sums = {key: torch.zeros((), device=ctx.device) for key in ("loss", "loss_x", "loss_u", "penalty")}
        steps, lambda_u = 0, float("nan")
        for i, batch in enumerate(labelled_loader.epoch(epoch)):
            x1, x2 = batch.views
            u1, u2 = next(unlabelled_batches).views if unlabelled_batches is not None else (x1[:0], x2[:0])
            lambda_u = 0.0 if cfg.labelled_only else self.unlabelled_weight(epoch + i / num_iters)
            terms = self.ssl_step(ctx, k, x1, x2, batch.y, w_of[batch.index], u1, u2, lambda_u, rng, gen)
            for key in sums:
                sums[key] += terms[key]
            steps += 1
        return {"sums": sums, "steps": steps, "lambda_u": lambda_u}

    def ssl_step(self, ctx: Context, k: int, x1: torch.Tensor, x2: torch.Tensor, labels: torch.Tensor,
                 w: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor, lambda_u: float,
                 rng: np.random.Generator, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One MixMatch step of network ``k`` (co-guessing with the other network).

        Parameters
        ----------
        k : int
            The network trained (0 or 1); the other one only guesses.
        x1, x2 : Tensor (B, ...)
            Two augmented views of the labelled batch; ``labels`` (B,) int64 its given labels, ``w`` (B,) their
            clean probabilities (from the other network's GMM).
        u1, u2 : Tensor (U, ...)
            Two views of the unlabelled batch (``U = 0``: none).
        lambda_u : float
            Weight of ``L_u`` at this step (the ramp).
        rng, gen
            Source of the mixup coefficient (NumPy) and of the mixing partners (torch).

        Returns
        -------
        dict
            Detached scalars ``loss``, ``loss_x``, ``loss_u``, ``penalty``; ``targets_x`` (B, C) and ``targets_u``
            (U, C), the sharpened co-refined and co-guessed targets.
        """
        cfg = self.config
        net, partner, opt = self.nets[k], self.nets[1 - k], self.optimizers[k]
        C = ctx.num_classes
        y = one_hot(labels, C)
        w = w.unsqueeze(1)
        partner.eval()  # the partner only guesses
        net.train(cfg.faithful_train_mode_guess)  # official: train mode (BN batch statistics) in the no-grad passes
        with torch.no_grad(), autocast(ctx.device, cfg.precision):
            # co-refinement: blend the given label with the network's own prediction, by the clean probability
            p_x = (net(x1).float().softmax(1) + net(x2).float().softmax(1)) / 2
            targets_x = sharpen(w * y + (1 - w) * p_x, cfg.temperature)
            # co-guessing: average both networks' predictions on both views of the unlabelled batch
            if len(u1):
                p_u = (net(u1).float().softmax(1) + net(u2).float().softmax(1)
                       + partner(torch.cat([u1, u2])).float().softmax(1).view(2, len(u1), C).sum(0)) / 4
                targets_u = sharpen(p_u, cfg.temperature)
            else:
                targets_u = y[:0]
            net.train()

        # MixMatch: mix every row with a random partner of the whole [x1, x2, u1, u2] batch
        lam = mixup_lambda(rng, cfg.alpha)
        inputs = torch.cat([x1, x2, u1, u2])
        targets = torch.cat([targets_x, targets_x, targets_u, targets_u])
        n_x = 2 * len(x1)
        if cfg.labelled_only and not cfg.faithful_lambda_u0_mixing:
            perm = torch.randperm(n_x, device=ctx.device, generator=gen)  # partners among labelled rows only
        else:
            perm = torch.randperm(len(inputs), device=ctx.device, generator=gen)
        mixed_inputs, mixed_targets = mixup(inputs[:len(perm)], targets[:len(perm)], lam, perm)
        if cfg.labelled_only:  # λu = 0 scripts: keep the labelled rows (their partners may be unlabelled)
            mixed_inputs, mixed_targets = mixed_inputs[:n_x], mixed_targets[:n_x]

        with autocast(ctx.device, cfg.precision):
            logits = net(mixed_inputs).float()
        loss_x = soft_cross_entropy(logits[:n_x], mixed_targets[:n_x])
        if cfg.labelled_only or len(logits) == n_x:
            loss_u = torch.zeros((), device=ctx.device)
        else:
            loss_u = F.mse_loss(logits[n_x:].softmax(1), mixed_targets[n_x:])
        penalty = uniform_prior_penalty(logits)
        loss = loss_x + lambda_u * loss_u + penalty

        opt.zero_grad(set_to_none=True)
        backward_step(loss, opt, self.grad_scaler)
        return {"loss": loss.detach(), "loss_x": loss_x.detach(), "loss_u": loss_u.detach(),
                "penalty": penalty.detach(), "targets_x": targets_x, "targets_u": targets_u}

    def _cycle(self, ctx: Context, indices: torch.Tensor, views, epoch: int, stream: str) -> Iterator[Batch]:
        """Batches of ``indices`` forever, reshuffled at every restart (the official unlabelled loader restarts
        whenever it runs out)."""
        idx = indices.cpu().numpy()
        restart = 0
        while True:
            loader = ctx.data.loader(self.config.batch_size, indices=idx, augment=views, stream=f"{stream}/{restart}")
            yield from loader.epoch(epoch)
            restart += 1

    @staticmethod
    def _ssl_record(stats: list[dict]) -> dict:
        steps = sum(s["steps"] for s in stats)
        record = {}
        for key in ("loss", "loss_x", "loss_u", "penalty"):
            total = sum(s["sums"][key] for s in stats)
            record[key] = mean_per_step(total, steps)
        record["lambda_u"] = stats[-1]["lambda_u"] if stats[-1]["steps"] else stats[0]["lambda_u"]
        record["steps"] = steps
        return record


class SMR(DivideMix):
    """SMR: DivideMix with a mixup-CE warm-up and periodic plain-CE recalibration epochs (same code path)."""

    name = "smr"
    Config = SMRConfig
    PRESETS = _presets(smr=True)

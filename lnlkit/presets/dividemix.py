"""Presets of DivideMix and SMR (:mod:`lnlkit.methods.dividemix`): ``PRESETS`` (DivideMix) and ``SMR_PRESETS``.

Each preset's docstring gives its recipe and where every value comes from (docs/methods/dividemix_smr.md).
``CIFAR_SETTINGS`` also drives ``DivideMix.preset_for`` (which preset for which data set and noise).
"""

from __future__ import annotations

from typing import Callable

from lnlkit.methods.dividemix import DivideMixConfig, SMRConfig

# λu / p_threshold per CIFAR setting (docs/methods/dividemix_smr.md#hyperparameters-per-cifar-setting).
# DivideMix's values are its paper's App. B Table 7; SMR's README gives C10 sym50, C10 asym40 and C100 sym20 and
# inherits the rest from DivideMix by assumption.
CIFAR_SETTINGS: dict[str, dict] = {
    # name: (dataset, noise spec, overrides, where the values come from)
    "cifar10-sym20": dict(
        dataset="cifar10",
        noise="symmetric-inclusive:0.2",
        lambda_u=0.0,
        p_threshold=0.5,
        source="DivideMix Table 7 (DivideMix issue #50); not in SMR's docs, inherited by assumption",
    ),
    "cifar10-sym50": dict(
        dataset="cifar10",
        noise="symmetric-inclusive:0.5",
        lambda_u=25.0,
        p_threshold=0.5,
        source="SMR README; DivideMix Table 7",
    ),
    "cifar10-sym80": dict(
        dataset="cifar10",
        noise="symmetric-inclusive:0.8",
        lambda_u=25.0,
        p_threshold=0.5,
        source="inherited from DivideMix Table 7, UNVERIFIED",
    ),
    "cifar10-sym90": dict(
        dataset="cifar10",
        noise="symmetric-inclusive:0.9",
        lambda_u=50.0,
        p_threshold=0.6,
        loss_history=5,
        source="inherited from DivideMix Table 7, UNVERIFIED (p_threshold 0.6 stated by the "
        "DivideMix author, issue #10; λu 50 and 0.6 also in issue #46); the GMM input "
        "is the mean of the last 5 epochs' losses",
    ),
    "cifar10-asym40": dict(
        dataset="cifar10",
        noise="asym-cifar10:0.4",
        lambda_u=0.0,
        p_threshold=0.5,
        asym=True,
        source="SMR README; DivideMix issues #9/#26",
    ),
    "cifar100-sym20": dict(
        dataset="cifar100",
        noise="symmetric-inclusive:0.2",
        lambda_u=25.0,
        p_threshold=0.5,
        source="SMR README; DivideMix Table 7",
    ),
    "cifar100-sym50": dict(
        dataset="cifar100",
        noise="symmetric-inclusive:0.5",
        lambda_u=150.0,
        p_threshold=0.5,
        source="inherited from DivideMix Table 7, UNVERIFIED (λu 150 quoted in InstanceGM issue #1)",
    ),
    "cifar100-sym80": dict(
        dataset="cifar100",
        noise="symmetric-inclusive:0.8",
        lambda_u=150.0,
        p_threshold=0.5,
        source="inherited from DivideMix Table 7, UNVERIFIED",
    ),
    "cifar100-sym90": dict(
        dataset="cifar100",
        noise="symmetric-inclusive:0.9",
        lambda_u=150.0,
        p_threshold=0.6,
        loss_history=5,
        source="inherited from DivideMix (author, issue #10), UNVERIFIED; the GMM input is "
        "the mean of the last 5 epochs' losses",
    ),
}


def _cifar_preset(name: str, smr: bool) -> Callable[[], DivideMixConfig]:
    s = CIFAR_SETTINGS[name]
    cifar100 = s["dataset"] == "cifar100"

    def build() -> DivideMixConfig:
        common = dict(
            model="preact_resnet18",
            epochs=300,
            lr=0.02,
            lr_milestones=(150,),
            weight_decay=5e-4,
            warm_up=30 if cifar100 else 10,
            alpha=4.0,
            temperature=0.5,
            lambda_u=s["lambda_u"],
            p_threshold=s["p_threshold"],
            loss_history=s.get("loss_history", 1),
        )
        if smr:
            return SMRConfig(batch_size=128, warmup_loss="mixup", recal_period=30, **common)
        return DivideMixConfig(batch_size=64, warmup_loss="ce", asym_penalty=s.get("asym", False), **common)

    method = "SMR" if smr else "DivideMix"
    build.__doc__ = (
        f"{method}, {s['dataset'].upper().replace('CIFAR', 'CIFAR-')} with {s['noise']} noise (use this spec; "
        f"seed 123 gives the official labels). PreAct ResNet-18, 300 epochs (301 passes), SGD lr 0.02 ×0.1 at 150, "
        f"wd 5e-4, warm-up {30 if cifar100 else 10}, α = 4, T = 0.5, "
        + (
            "batch 128 (warm-up 256), mixup-CE warm-up, recalibration every 30 epochs. "
            if smr
            else f"batch 64 (warm-up 128), CE warm-up{' + confidence penalty (asym)' if s.get('asym') else ''}. "
        )
        + f"λu = {s['lambda_u']:g}, p_threshold = {s['p_threshold']:g} (source: {s['source']})."
    )
    return build


def _animal10n(smr: bool) -> Callable[[], DivideMixConfig]:
    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(
            model="preact_resnet18",
            epochs=200,
            batch_size=128,
            lr=0.01,
            lr_milestones=(140,),
            lr_gamma=0.01,
            weight_decay=1e-3,
            warm_up=30,
            warmup_loss="mixup" if smr else "ce",
            recal_period=15 if smr else None,
            alpha=4.0,
            lambda_u=0.0,
            labelled_only=True,
            p_threshold=0.5,
            crop_padding=0,
            flip=True,
        )

    build.__doc__ = (
        ("SMR" if smr else "DivideMix") + ", Animal-10N (real noise, use ``--noise none``): SMR's script as coded — "
        "200 epochs, warm-up 30, SGD lr 0.01 until epoch 139 then 1e-4 (the intended step at 80 is dead code in SMR's "
        "script), wd 1e-3, batch 128 (warm-up 256), α = 4, λu = 0 (labelled-only step), p_threshold 0.5, random flip "
        "only"
        + (
            ", mixup warm-up, recalibration every 15 epochs (44, 59, …, 194). "
            if smr
            else ". DivideMix has no official Animal-10N script: these are SMR's settings with DivideMix's CE warm-up "
            "(kit choice, UNVERIFIED). "
        )
        + "Model deviation: the official backbone is torchvision VGG-19-BN (not pretrained), which lnlkit does not "
        "provide; this preset uses lnlkit's ``preact_resnet18`` (adaptive pooling, so 64×64 inputs work)."
    )
    return build


def _clothing1m(smr: bool) -> Callable[[], DivideMixConfig]:
    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(
            model="resnet50_tv",
            epochs=80,
            batch_size=32,
            lr=0.002,
            lr_milestones=(40,),
            weight_decay=1e-3,
            warm_up=1,
            warmup_loss="mixup" if smr else "ce",
            asym_penalty=not smr,
            recal_period=10 if smr else None,
            alpha=0.5,
            lambda_u=0.0,
            labelled_only=True,
            p_threshold=0.5,
            epoch_subset=32000,
            crop_padding=0,
            flip=True,
            record_train_loss=False,
            eval_batch_size=256,
        )

    build.__doc__ = (
        ("SMR" if smr else "DivideMix") + ", Clothing1M (use ``--noise none``): torchvision ResNet-50 with ImageNet "
        "weights from a local file (``--set weights_path=...``; without it the run stops unless "
        "``pretrained=false``), fc → "
        "14; 80 epochs, warm-up 1, SGD lr 0.002 ×0.1 at 40, wd 1e-3, batch 32 (warm-up 64), α = 0.5, λu = 0 "
        "(labelled-only step), p_threshold 0.5; each epoch each network partitions its own class-balanced sample of "
        "32,000 images (1000 × 32) and a warm-up epoch trains on 64,000; "
        + (
            "mixup warm-up, recalibration every 10 epochs (9, 19, …, 79) over an epoch sample (test transform, "
            "unshuffled)."
            if smr
            else "CE warm-up + confidence penalty (DivideMix's Clothing1M script)."
        )
        + " Deviations: the official number is the ensemble of each network's best-validation checkpoint; lnlkit "
        "reports the last epoch's ensemble test accuracy (no validation pass in the kit's driver).  The two "
        "training views are two independent random 224 crops, as the official loader's."
    )
    return build


def _webvision(smr: bool) -> Callable[[], DivideMixConfig]:
    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(
            model="inception_resnet_v2",
            epochs=120 if smr else 80,
            batch_size=32,
            lr=0.01,
            lr_milestones=(40, 80) if smr else (40,),
            weight_decay=5e-4,
            warm_up=1,
            warmup_loss="mixup" if smr else "ce",
            recal_period=15 if smr else None,
            alpha=0.5,
            lambda_u=0.0,
            labelled_only=True,
            p_threshold=0.5,
            crop_padding=0,
            flip=True,
            precision="fp16" if smr else "fp32",
            eval_precision="fp32" if smr else None,
            eval_batch_size=256,
        )

    build.__doc__ = (
        ("SMR" if smr else "DivideMix")
        + ", mini-WebVision (50 classes, ``--noise none``): "
        + (
            "120 epochs, lr 0.01 ×0.1 at 40 and ×0.01 at 80, mixup warm-up (1 epoch), recalibration every 15 epochs "
            "(14, 29, …, 119), "
            if smr
            else "80 epochs, lr 0.01 ×0.1 at 40, CE warm-up (1 epoch, no penalty), "
        )
        + "SGD wd 5e-4, batch 32 (warm-up 64), α = 0.5, λu = 0 (labelled-only step), p_threshold 0.5, "
        + (
            "float16 autocast with loss scaling in the training steps, float32 evaluation (``precision='fp16'``, "
            "``eval_precision='fp32'``, as the official ``Train_webvision.py``; there the mixup warm-up and the "
            "co-guessing forwards stay float32, here they run in float16 too). "
            if smr
            else "float32. "
        )
        + "Backbone: Inception-ResNet-v2 from scratch (``inception_resnet_v2``, the official ``InceptionResNetV2.py`` "
        "layers; train on the loader's 299 crops as the official code). Only "
        "WebVision-val top-1 of the ensemble is recorded (not top-5, not ILSVRC12-val). The two training views "
        "differ by device-side flips only (see the Clothing1M preset)."
    )
    return build


def _digits(smr: bool, warmup_loss: str | None = None, recal: bool | None = None) -> Callable[[], DivideMixConfig]:
    warmup_loss = warmup_loss or ("mixup" if smr else "ce")
    recal = smr if recal is None else recal

    def build() -> DivideMixConfig:
        cls = SMRConfig if smr else DivideMixConfig
        return cls(
            model="small_cnn",
            epochs=60,
            batch_size=64,
            lr=0.02,
            lr_milestones=(30,),
            weight_decay=5e-4,
            warm_up=5,
            warmup_loss=warmup_loss,
            recal_period=6 if recal else None,
            alpha=4.0,
            lambda_u=25.0,
            rampup_length=3.0,
            p_threshold=0.5,
            temperature=0.5,
            crop_padding=1,
            flip=False,
        )

    parts = [("SMR" if smr else "DivideMix") + " on the embedded digits (1,347 training images)"]
    if not smr and (warmup_loss == "mixup" or recal):
        parts.append(
            "ablation: DivideMix"
            + (" + mixup warm-up" if warmup_loss == "mixup" else "")
            + (" + recalibration" if recal else "")
        )
    build.__doc__ = (
        "; ".join(parts) + ". Scale only, the algorithm is unchanged: ``small_cnn``, 60 epochs (61 passes), batch 64 "
        "(warm-up 128; the same for every digits preset so the ablation compares like with like), lr 0.02 ×0.1 "
        "at 30, warm-up 5, λu ramp 3 epochs, "
        + ("recalibration every 6 epochs, " if recal else "")
        + "crop padding 1, no flip (digits are not mirror-symmetric); α = 4, T = 0.5, λu = 25, p_threshold 0.5 as "
        "on CIFAR-10 sym 50%"
        + (
            ", no confidence penalty (set ``asym_penalty=True`` for DivideMix's asymmetric-noise warm-up)."
            if warmup_loss == "ce"
            else "."
        )
        + (
            " The recalibration period is CIFAR's 30 scaled like the epochs (300 → 60): 9 recalibration epochs "
            "(11, 17, …, 59)."
            if recal
            else ""
        )
        + " Tuned on symmetric:0.4 and pairflip:0.4 (seeds 0-2): batch 32 made SMR's recalibration epochs "
        "destructive under pair-flip noise (each one a larger share of the optimisation steps)."
    )
    return build


def _presets(smr: bool) -> dict[str, Callable[[], DivideMixConfig]]:
    presets = {name: _cifar_preset(name, smr) for name in CIFAR_SETTINGS}
    presets.update(
        animal10n=_animal10n(smr), clothing1m=_clothing1m(smr), webvision=_webvision(smr), digits=_digits(smr)
    )
    if not smr:  # SMR's ablation: DivideMix, + mixup warm-up, + recalibration, both (= smr's "digits")
        presets["digits-mixup-warmup"] = _digits(False, warmup_loss="mixup", recal=False)
        presets["digits-recal"] = _digits(False, warmup_loss="ce", recal=True)
    return presets


PRESETS: dict[str, Callable[[], DivideMixConfig]] = _presets(smr=False)
SMR_PRESETS: dict[str, Callable[[], DivideMixConfig]] = _presets(smr=True)

"""CE: the standard cross-entropy baseline — train one network on the given labels and nothing else.

Every epoch also runs an un-augmented per-sample pass over the training set so the run folder holds the
per-sample loss distribution (what the sample-selection papers fit their GMMs on) and shows memorisation:
the losses of noisy samples fall towards the clean ones as the network fits the wrong labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.train.augment import Augment
from lnlkit.train.device import backward_step
from lnlkit.train.evaluate import autocast, per_sample_pass
from lnlkit.train.schedules import cosine_lr, multistep_lr, set_lr


@dataclass
class CEConfig(MethodConfig):
    """Hyperparameters of the CE baseline (defaults: DivideMix's "Standard CE" recipe; ``model="auto"`` picks the
    data set's default network, PreAct ResNet-18 for CIFAR)."""

    epochs: int = 300
    batch_size: int = 128
    model: str = "auto"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = "multistep"  # "multistep" | "cosine" | "constant"
    lr_milestones: tuple[int, ...] = (150,)
    lr_gamma: float = 0.1
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0
    label_smoothing: float = 0.0
    record_train_loss: bool = True  # the per-sample pass behind the loss-distribution plots
    weights_path: str | None = None  # local ImageNet weights for pretrained backbones (never downloaded)

    def validate(self) -> None:
        super().validate()
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.lr_schedule not in ("multistep", "cosine", "constant"):
            raise ValueError(f"lr_schedule must be multistep, cosine or constant, got {self.lr_schedule!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def _digits() -> CEConfig:
    """Embedded digits: a small CNN, cosine LR and no weight decay, so memorisation shows within 100 epochs;
    reaches ≥ 98% test accuracy on clean digits."""
    return CEConfig(epochs=100, batch_size=32, model="small_cnn", lr=0.05, weight_decay=0.0, lr_schedule="cosine",
                    lr_milestones=(), crop_padding=1, flip=False)


def _cifar10() -> CEConfig:
    """CIFAR-10 "Standard CE" of DivideMix's tables: PreAct ResNet-18, SGD 0.02, ×0.1 at 150, 300 epochs."""
    return CEConfig(model="preact_resnet18")


def _cifar100() -> CEConfig:
    """CIFAR-100, same recipe as CIFAR-10 (DivideMix's CE baseline)."""
    return CEConfig(model="preact_resnet18")


def _cifar_promix() -> CEConfig:
    """The plain ResNet-18 of ProMix with a cosine schedule over 600 epochs (ProMix's backbone, length and CIFAR
    normalisation)."""
    return CEConfig(epochs=600, batch_size=256, model="resnet18", lr=0.05, lr_schedule="cosine", lr_milestones=(),
                    normalization="promix")


def _clothing1m() -> CEConfig:
    """Clothing1M: torchvision ResNet-50 (ImageNet weights from the local file ``--set weights_path=...``), SGD
    0.002, ×0.1 at 40, 80 epochs, batch 32, wd 1e-3 — the optimiser SMR/DivideMix train their networks with."""
    return CEConfig(epochs=80, batch_size=32, model="resnet50_tv", lr=0.002, weight_decay=1e-3,
                    lr_milestones=(40,), crop_padding=0, flip=True)


class CE(Method):
    """Cross-entropy on the given labels."""

    name = "ce"
    Config = CEConfig
    PRESETS = {"digits": _digits, "cifar10": _cifar10, "cifar100": _cifar100, "cifar-promix": _cifar_promix,
               "clothing1m": _clothing1m}
    reported_as = "test_acc_last"
    supports_fp16 = True
    PRETRAINED_PRESETS = frozenset({"clothing1m"})  # ImageNet-initialised ResNet-50, as SMR/DivideMix

    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.net = ctx.build_model(cfg.model, weights_path=cfg.weights_path)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        augment = Augment(cfg.crop_padding, cfg.flip, cfg.cutout) if ctx.data.is_image else None
        self.loader = ctx.data.loader(cfg.batch_size, augment=augment, shuffle=True, stream="train")

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    def learning_rate(self, epoch: int) -> float:
        cfg = self.config
        if cfg.lr_schedule == "cosine":
            return cosine_lr(cfg.lr, epoch, cfg.epochs)
        if cfg.lr_schedule == "multistep":
            return multistep_lr(cfg.lr, epoch, cfg.lr_milestones, cfg.lr_gamma)
        return cfg.lr

    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        cfg = self.config
        lr = self.learning_rate(epoch)
        set_lr(self.optimizer, lr)
        self.net.train()
        total = torch.zeros((), device=ctx.device)
        seen = 0
        for batch in self.loader.epoch(epoch):
            with autocast(ctx.device, cfg.precision):
                logits = self.net(batch.x)
                loss = F.cross_entropy(logits.float(), batch.y, label_smoothing=cfg.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            backward_step(loss, self.optimizer, self.grad_scaler)
            total += loss.detach() * len(batch.y)
            seen += len(batch.y)
        record = {"phase": "train", "lr": lr, "loss": float(total.item() / max(seen, 1))}
        signals = {}
        if cfg.record_train_loss:
            ps = per_sample_pass(self.net, ctx.data, batch_size=cfg.eval_batch_size, precision=cfg.evaluation_precision)
            record["train_acc_given"] = float((ps.pred == ctx.data.labels).float().mean().item() * 100)
            signals = {"loss": ps.loss.cpu().numpy(), "pred": ps.pred.cpu().numpy().astype("int16")}
        return EpochOutput(record, signals)

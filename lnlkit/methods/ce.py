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
from lnlkit.presets import PresetTable
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


class CE(Method):
    """Cross-entropy on the given labels."""

    name = "ce"
    Config = CEConfig
    PRESETS = PresetTable("lnlkit.presets.ce")
    reported_as = "test_acc_last"
    supports_fp16 = True
    PRETRAINED_PRESETS = frozenset({"clothing1m"})  # ImageNet-initialised ResNet-50, as SMR/DivideMix

    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.net = ctx.build_model(cfg.model, weights_path=cfg.weights_path)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
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

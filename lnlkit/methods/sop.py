"""SOP and SOP+ (Liu, Zhu, Qu & You, ICML 2022): robust training under label noise by over-parameterisation.

Docs: docs/methods/prune4rel_sop.md.  The label noise is modelled *explicitly* by two per-sample parameters that are
learnt alongside the network: a scalar ``u_i`` and a C-vector ``v_i`` (both initialised N(0, 1e-8), i.e. ≈ 0).  For
a batch with one-hot given labels ``y`` and weak-view logits ``z``:

1. ``U = clamp(u² · y, 0, 1)`` lives on the labelled class only, ``V = clamp(v² ⊙ (1 − y), 0, 1)`` on the others;
   ``y − U + V`` is the sample's estimated clean label.
2. Corrected prediction ``p̃ = normalise_L1(clamp(softmax(z) + U − stopgrad(V), min 1e-4))``, then clamped to
   ``[1e-4, 1]``; ``L_CE = mean −Σ_c y_c log p̃_c`` (gradient to θ and u, not to v).
3. ``L_MSE = (1/B) Σ_i ‖onehot(argmax z_i) + U_i − V_i − y_i‖²`` (gradient to u and v only: the network term is a
   one-hot of the argmax).  **SOP** = ``L_CE + L_MSE``.
4. **SOP+** adds ``rc · KL(stopgrad(p_weak) ‖ p_strong)`` (the batch is forwarded once as ``[weak; strong]`` so
   BatchNorm sees both halves) and ``rb · (−(1/C) Σ_c log clamp(mean_batch p̃_c, 1e-4, 1))`` (class balance).
5. Three optimisers step on every batch: the network's SGD (momentum, weight decay, Nesterov in Prune4ReL's copy,
   cosine schedule) and plain SGD for ``u`` (``lr_u``) and ``v`` (``lr_v``) with momentum 0, weight decay 0 and
   **no schedule**.

``SOP`` is also Prune4ReL's default re-labeller (``methods/prune4rel.py``): it can train on a subset of the training
set (``train_indices``) while its ``u``/``v`` tables stay indexed by the original dataset index.

SOP+'s strong view (``strong_view``) is the official one, run batched on the device: AutoAugment's CIFAR-10 policy
with the Fast-AutoAugment archive's magnitudes, then flip, crop and Cutout; ``"mild"`` keeps lnlkit's earlier
crop + flip + Cutout (the digits presets use it).

Kit choices (documented deviations): ``u``/``v`` are initialised from a seeded generator; randomness comes from
per-(seed, epoch, stream) generators so resume is exact; the reported number is the last epoch's test accuracy
(``reported_as = "test_acc_last"``; the best epoch is in ``test_acc_best``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.presets import PresetTable
from lnlkit.train.augment import SOP_STRONG_VIEWS, Augment, sop_strong_view
from lnlkit.train.evaluate import autocast, per_sample_pass
from lnlkit.train.losses import one_hot
from lnlkit.train.meter import mean_per_step
from lnlkit.train.schedules import cosine_lr, multistep_lr, set_lr
from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive

__all__ = ["SOPConfig", "SOP", "sop_losses", "consistency_loss", "class_balance_loss", "corrected_prediction"]


# ---------------------------------------------------------------------------------------------------- config
@dataclass
class SOPConfig(MethodConfig):
    """Hyperparameters of SOP / SOP+ (defaults: Prune4ReL's SOP+ on CIFAR-10N, ``sop_CF10.sh``).

    Each field's reading: docs/methods/prune4rel_sop.md#sop-configuration."""

    epochs: int = 300
    batch_size: int = 128
    model: str = "auto"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    lr_schedule: str = "cosine"
    lr_min: float = 1e-4
    lr_period: int | None = None
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    lr_u: float = 10.0
    lr_v: float = 100.0
    rc: float = 0.9
    rb: float = 0.1
    init_std: float = 1e-8
    crop_padding: int = 4
    flip: bool = True
    strong_cutout: int = 16
    strong_view: str = "autoaugment"
    record_train_loss: bool = True
    weights_path: str | None = None

    def validate(self) -> None:
        super().validate()
        check_positive(self, "lr")
        check_choice(self, "lr_schedule", ("cosine", "multistep"))
        check_non_negative(self, "lr_u", "lr_v", "rc", "rb", "init_std", "strong_cutout", "crop_padding")
        check_int(self, "lr_period", low=1, optional=True)
        check_choice(self, "strong_view", SOP_STRONG_VIEWS)

    @property
    def plus(self) -> bool:
        """SOP+ (consistency or class balance on)."""
        return self.rc > 0 or self.rb > 0


# ---------------------------------------------------------------------------------------------------- the method
class SOP(Method):
    """SOP / SOP+: per-sample over-parameterisation ``u``, ``v`` of the label noise (module docstring)."""

    name = "sop"
    Config = SOPConfig
    PRESETS = PresetTable("lnlkit.presets.sop")
    reported_as = "test_acc_last"

    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        cfg = self.config
        lr = self.learning_rate(epoch)
        set_lr(self.optimizer, lr)  # u and v keep their constant learning rates
        views = [self.weak, self.strong] if cfg.rc > 0 else [self.weak]
        loader = ctx.data.loader(cfg.batch_size, indices=self.train_indices, augment=views, stream="sop/train")
        C = ctx.num_classes
        self.net.train()
        sums = {k: torch.zeros((), device=ctx.device) for k in ("loss", "loss_ce", "loss_mse", "loss_cons", "loss_bal")}
        steps = 0
        for batch in loader.epoch(epoch):
            idx = batch.index
            with autocast(ctx.device, cfg.precision):
                if cfg.rc > 0:  # one forward of [weak; strong], so BatchNorm sees both halves
                    logits = self.net(torch.cat(batch.views[:2])).float()
                    logits_w, logits_s = logits[: len(idx)], logits[len(idx) :]
                else:
                    logits_w = self.net(batch.x).float()
            if self.batch_callback is not None:
                self.batch_callback(idx, logits_w.detach(), batch.y)
            loss_ce, loss_mse, p_tilde = sop_losses(logits_w, batch.y, self.u[idx], self.v[idx], C)
            loss = loss_ce + loss_mse
            loss_cons = consistency_loss(logits_w, logits_s) if cfg.rc > 0 else torch.zeros((), device=ctx.device)
            loss_bal = class_balance_loss(p_tilde) if cfg.rb > 0 else torch.zeros((), device=ctx.device)
            loss = loss + cfg.rc * loss_cons + cfg.rb * loss_bal
            for opt in (self.optimizer, self.opt_u, self.opt_v):
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in (self.optimizer, self.opt_u, self.opt_v):
                opt.step()
            for key, value in (
                ("loss", loss),
                ("loss_ce", loss_ce),
                ("loss_mse", loss_mse),
                ("loss_cons", loss_cons),
                ("loss_bal", loss_bal),
            ):
                sums[key] += value.detach()
            steps += 1
        record = {"phase": "train", "lr": lr, **{k: mean_per_step(v, steps) for k, v in sums.items()}, "steps": steps}
        # the per-sample pass only on epochs the driver records (every k-th and the last)
        return EpochOutput(record, self.signals(ctx) if cfg.record_train_loss and ctx.records_signals(epoch) else {})

    def __init__(self, config: SOPConfig | None = None, preset: str | None = None):
        super().__init__(config, preset)
        self.train_indices: np.ndarray | None = None  # None: the whole training set
        self.epoch_offset = 0  # Prune4ReL: the fresh learner's schedule restarts after the warm-up
        # called as (index, weak-view train-mode logits, labels) after every training forward (Prune4ReL's
        # Forgetting baseline counts its events per mini-batch, as the official after_loss hook)
        self.batch_callback: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None

    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.net = ctx.build_model(cfg.model, weights_path=cfg.weights_path)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov and cfg.momentum > 0,
        )
        gen = torch.Generator(device="cpu").manual_seed(ctx.seed + 7919)
        # u, v: one row per training sample, indexed by the original dataset index (also when training on a subset)
        self.u = nn.Parameter((torch.randn(ctx.n_train, 1, generator=gen) * cfg.init_std).to(ctx.device))
        self.v = nn.Parameter((torch.randn(ctx.n_train, ctx.num_classes, generator=gen) * cfg.init_std).to(ctx.device))
        self.opt_u = torch.optim.SGD([self.u], lr=cfg.lr_u, momentum=0, weight_decay=0)
        self.opt_v = torch.optim.SGD([self.v], lr=cfg.lr_v, momentum=0, weight_decay=0)
        image = ctx.data.is_image
        self.weak = Augment(cfg.crop_padding, cfg.flip) if image else None
        self.strong = (
            sop_strong_view(
                cfg.strong_view, ctx.data.mean.cpu(), ctx.data.std.cpu(), cfg.crop_padding, cfg.flip, cfg.strong_cutout
            )
            if image
            else None
        )

    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """``digits`` for the embedded digits, ``cifar10n`` / ``cifar100n`` for CIFAR-N noise, ``webvision`` for
        WebVision; otherwise ``None``."""
        dataset, noise = str(dataset).lower(), str(noise or "").lower()
        if dataset == "digits":
            return "digits"
        if dataset == "cifar10" and noise.startswith("cifar10n"):
            return "cifar10n"
        if dataset == "cifar100" and noise.startswith("cifar100n"):
            return "cifar100n"
        if dataset == "webvision":
            return "webvision"
        return None

    def learning_rate(self, epoch: int) -> float:
        cfg = self.config
        e = epoch - self.epoch_offset
        if cfg.lr_schedule == "cosine":
            return cosine_lr(cfg.lr, e, cfg.lr_period or cfg.epochs, cfg.lr_min)
        return multistep_lr(cfg.lr, e, cfg.lr_milestones, cfg.lr_gamma)

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "u": self.u.detach().clone(),
            "v": self.v.detach().clone(),
            "train_indices": self.train_indices,
            "epoch_offset": self.epoch_offset,
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        with torch.no_grad():
            self.u.copy_(state["u"])
            self.v.copy_(state["v"])
        self.train_indices = state.get("train_indices")
        self.epoch_offset = state.get("epoch_offset", 0)

    @torch.no_grad()
    def noise_estimate(self, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """What ``u``/``v`` have learnt, given the labels ``labels`` (N,) the tables were trained with.

        Returns
        -------
        u2 : ndarray float32 (N,)
            ``clamp(u², 0, 1)``: the mass SOP removes from the given label (large for samples it thinks noisy).
        relabel : ndarray int64 (N,)
            ``argmax(y − U + V)``: the class SOP's parameters point to.
        """
        y = one_hot(labels, self.v.shape[1])
        U = torch.clamp(self.u**2 * y, 0, 1)
        V = torch.clamp(self.v**2 * (1 - y), 0, 1)
        return U.sum(1).cpu().numpy().astype(np.float32), (y - U + V).argmax(1).cpu().numpy()

    def signals(self, ctx: Context) -> dict:
        """Per-sample signals: eval-pass CE of the given label, prediction, ``clean_prob = 1 − clamp(u², 0, 1)`` (SOP's
        clean score, higher = cleaner: the recorder's selection AUROC) and SOP's implied label."""
        ps = per_sample_pass(
            self.net, ctx.data, batch_size=self.config.eval_batch_size, precision=self.config.evaluation_precision
        )
        u2, relabel = self.noise_estimate(ctx.data.labels)
        return {
            "loss": ps.loss.cpu().numpy(),
            "pred": ps.pred.cpu().numpy().astype("int16"),
            "clean_prob": 1.0 - u2,
            "relabel": relabel.astype("int16"),
        }


# ---------------------------------------------------------------------------------------------------- the losses
def corrected_prediction(logits: torch.Tensor, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """SOP's corrected prediction ``p̃`` (B, C): ``softmax(z) + U − stopgrad(V)``, clamped at 1e-4, L1-normalised,
    clamped to [1e-4, 1].  ``V`` is detached here so the CE term never moves ``v``."""
    p = logits.softmax(1) + U - V.detach()
    p = F.normalize(p.clamp_min(1e-4), p=1, dim=1)
    return p.clamp(1e-4, 1.0)


def sop_losses(
    logits: torch.Tensor, labels: torch.Tensor, u: torch.Tensor, v: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SOP's two terms for one batch.

    Parameters
    ----------
    logits : Tensor (B, C)
        Weak-view logits ``z``.
    labels : Tensor int64 (B,)
        Given labels.
    u : Tensor (B, 1)
        The batch's rows of the ``u`` table.
    v : Tensor (B, C)
        The batch's rows of the ``v`` table.

    Returns
    -------
    loss_ce : Tensor ()
        ``mean −Σ y log p̃`` (reaches θ and u).
    loss_mse : Tensor ()
        ``(1/B) Σ ‖onehot(argmax z) + U − V − y‖²`` (reaches u and v only).
    p_tilde : Tensor (B, C)
        The corrected prediction (for the class-balance term).
    """
    y = one_hot(labels, num_classes)
    U = torch.clamp(u**2 * y, 0, 1)
    V = torch.clamp(v**2 * (1 - y), 0, 1)
    p_tilde = corrected_prediction(logits, U, V)
    loss_ce = -(y * torch.log(p_tilde)).sum(1).mean()
    pred = one_hot(logits.detach().argmax(1), num_classes)
    loss_mse = ((pred + U - V - y) ** 2).sum() / max(len(labels), 1)
    return loss_ce, loss_mse, p_tilde


def consistency_loss(logits_weak: torch.Tensor, logits_strong: torch.Tensor) -> torch.Tensor:
    """SOP+'s consistency ``mean_i Σ_c p_w (log p_w − log p_s)`` with ``p_w`` detached (B, C) -> ()."""
    log_pw = F.log_softmax(logits_weak.detach(), 1)
    log_ps = F.log_softmax(logits_strong, 1)
    return (log_pw.exp() * (log_pw - log_ps)).sum(1).mean() if len(logits_weak) else logits_strong.sum() * 0.0


def class_balance_loss(p_tilde: torch.Tensor) -> torch.Tensor:
    """SOP+'s class-balance term ``−(1/C) Σ_c log clamp(mean_batch p̃_c, 1e-4, 1)`` for ``p_tilde`` (B, C)."""
    if len(p_tilde) == 0:
        return p_tilde.sum() * 0.0
    return -torch.log(p_tilde.mean(0).clamp(1e-4, 1.0)).mean()

"""Co-mining ("Co-mining: Mining Informative Samples with Noisy Labels", NJUST): one network on a weak and a strong
view ranks each mini-batch by a two-view score, learns from the clean part, pulls the most confident part towards
its class in a feature memory bank, relabels the rest from its k-reciprocal neighbours in the bank, and discards what
it cannot relabel as out-of-distribution.

See docs/methods/comining.md.  One mini-batch of size ``N`` (weak view ``x¹``, strong view ``x²``, given labels ``ỹ``):

1. **Warm-up** (``epoch < warmup_epochs``): ``½·CE_ls(f(x¹), ỹ) + ½·CE_ls(f(x²), ỹ)``, where ``CE_ls`` is the
   cross-entropy against the smoothed label (``1 − ε`` on ``ỹ``, ``ε / (C − 1)`` elsewhere, ``ε = 0.5``).  Every
   sample's L2-normalised feature and label go into the bank of its view.
2. **Score**: ``s_i = ℓ_cls,i + w_pc·SKL(p¹_i, p²_i)``, with ``ℓ_cls`` the two-view ``CE_ls`` above and ``SKL`` the
   symmetric KL divergence in bits between the two views' predictions (:func:`symmetric_kl_bits`).
3. **Forget rate** ``r = o + (1 − o)·ρ_c`` from the closed-set rate ``ρ_c`` and the open-set ratio ``o``
   (:func:`forget_rate`; by default read from the nominal noise spec, as the official script takes them as
   arguments); the web script uses a fixed ``r = 0.25``.
4. **Partition** of the batch sorted by score (:func:`partition`): clean ``S_c`` = the first ``⌊N(1 − r)⌋``,
   high-confidence ``S_h`` = the first ``⌊|S_c|·er⌋``, relabel candidates ``S_d`` (see ``relabel_slice``).
5. **Triplet term** on the anchors ``S_h`` of each view against that view's bank (:func:`triplet_loss`): hardest
   positives / negatives by cosine similarity + 1, hinge with margin ``m`` (see ``triplet_mode``).
6. **Relabelling** of ``S_d`` (:func:`kreciprocal_soft_labels`, :func:`relabel_gate`): a soft label from the
   candidate's ``k1 = 15`` nearest bank entries, voting only with the *reciprocal* ones (plain kNN when none is);
   a candidate is in-distribution when both views' soft labels peak at ``≥ σ`` on the same class, and then learns
   the mean soft label (soft CE, both views); the others are **rejected as out-of-distribution** and get no loss.
7. ``L = mean_{S_c} ℓ_cls + w_pc·mean_{S_c} SKL + w_tri·L_tri + w_re·L_re``; one Adam (CIFAR) / SGD (web) step; then
   the ``S_h`` features and labels of each view go into its bank (:class:`FeatureBank`, FIFO of 4096).

Signals, the reported number, the official-code switches (P1–P3, P5, P7, P8), the banks and the strong view:
docs/methods/comining.md#implementation-notes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.noise import parse_noise_spec
from lnlkit.presets import PresetTable
from lnlkit.train.augment import COMINING_STRONG_VIEWS, Augment, comining_strong_view
from lnlkit.train.evaluate import autocast
from lnlkit.train.losses import smooth_one_hot_exclusive, soft_cross_entropy
from lnlkit.train.meter import mean_per_step
from lnlkit.train.schedules import coteaching_beta1, coteaching_lr, set_adam_beta1, set_lr
from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive, check_range

__all__ = [
    "CoMiningConfig",
    "CoMining",
    "FeatureBank",
    "load_trained",
    "forget_rate",
    "forget_rate_from_noise",
    "partition",
    "symmetric_kl_bits",
    "triplet_loss",
    "kreciprocal_soft_labels",
    "relabel_gate",
]

RELABEL_SLICES = ("faithful", "intended")
TRIPLET_MODES = ("faithful", "corrected")
WEB_BACKBONES = ("resnet18_halved_residual", "resnet50_torchvision")


# ---------------------------------------------------------------------------------------------------- config
@dataclass
class CoMiningConfig(MethodConfig):
    """Hyperparameters of Co-mining (defaults: the official CIFAR script ``cifarmain.py``, with the paper's intent
    for the two loss bugs; the paper presets use the official behaviour).  Each field's reading:
    docs/methods/comining.md#configuration."""

    epochs: int = 200
    batch_size: int = 128
    model: str = "cnn7"
    eval_batch_size: int = 1024
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    lr_schedule: str = "coteaching"
    decay_start: int = 80
    warmup_epochs: int = 10
    epsilon: float = 0.5
    w_pc: float = 1.0
    w_tri: float = 3.0
    w_re: float = 0.01
    margin: float = 0.0
    pos_window: tuple[int, int] = (0, 5)
    neg_window: tuple[int, int] = (0, 5)
    bank_size: int = 4096
    k1: int = 15
    sigma: float = 0.15
    er: float = 0.5
    forget_rate: float | None = None
    closeset_ratio: float | None = None
    open_ratio: float | None = None
    relabel_slice: str = "intended"
    triplet_mode: str = "corrected"
    web_backbone: str | None = None
    weights_path: str | None = None
    skl_clamp: float | None = 1e-8
    crop_padding: int = 4
    flip: bool = True
    strong_view: str = "autoaugment"
    strong_black_padding: bool = True
    strong_magnitude: float = 0.5
    strong_cutout: int = 0
    report_last: int = 10

    def validate(self) -> None:
        super().validate()
        check_choice(self, "optimizer", ("adam", "sgd"), "adam on CIFAR, sgd on the web sets")
        check_choice(self, "lr_schedule", ("coteaching", "cosine_after_warmup", "constant"))
        check_positive(self, "lr")
        check_int(self, "warmup_epochs", "decay_start", low=0)
        check_int(self, "bank_size", "k1", "report_last", low=1)
        check_non_negative(self, "w_pc", "w_tri", "w_re", "margin", "strong_magnitude", "strong_cutout")
        check_range(self, "epsilon", low=0.0, high=1.0, high_open=True)
        check_range(self, "sigma", "er", low=0.0, high=1.0)
        check_range(self, "forget_rate", "closeset_ratio", low=0.0, high=1.0, optional=True)
        check_range(self, "open_ratio", low=0.0, high=1.0, high_open=True, optional=True)
        check_range(self, "skl_clamp", low=0.0, high=1.0, low_open=True, high_open=True, optional=True)
        for name in ("pos_window", "neg_window"):
            window = tuple(getattr(self, name))
            if len(window) != 2 or not all(isinstance(v, int) for v in window) or not 0 <= window[0] < window[1]:
                raise ValueError(f"{name} must be two integers lo < hi with lo >= 0, got {window!r}")
        check_choice(self, "relabel_slice", RELABEL_SLICES, "P1 in docs/methods/comining.md")
        check_choice(self, "triplet_mode", TRIPLET_MODES, "P2 in docs/methods/comining.md")
        check_choice(self, "web_backbone", (None, *WEB_BACKBONES), "P3 in docs/methods/comining.md")
        check_choice(self, "strong_view", COMINING_STRONG_VIEWS)


# ---------------------------------------------------------------------------------------------------- the method
class CoMining(Method):
    """Co-mining: two-view ranking, bank triplet mining, k-reciprocal relabelling and OOD rejection (module
    docstring)."""

    name = "comining"
    Config = CoMiningConfig
    PRESETS = PresetTable("lnlkit.presets.comining")
    reported_as = "mean_last10"
    data_pipeline = "comining"  # ImageNet statistics (official builder.py)
    PRETRAINED_PRESETS = frozenset({"web-bird", "web-car", "web-aircraft"})  # official model/resnet.py loads them
    WEB_DATASETS: ClassVar[tuple[str, ...]] = ("web-bird", "web-car", "web-aircraft")

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        cfg = self.config
        lr = self.learning_rate(epoch)
        set_lr(self.optimizer, lr)
        record = {"lr": lr}
        if cfg.optimizer == "adam" and cfg.lr_schedule == "coteaching":
            beta1 = coteaching_beta1(epoch, cfg.decay_start)
            set_adam_beta1(self.optimizer, beta1)
            record["beta1"] = beta1
        warmup = epoch < cfg.warmup_epochs
        record["phase"] = "warmup" if warmup else "train"
        record["forget_rate"] = 0.0 if warmup else self.rate

        n = ctx.n_train
        dev = ctx.device
        sig = {
            "loss": torch.full((n,), float("nan"), device=dev),
            "pc": torch.full((n,), float("nan"), device=dev),
            "score": torch.full((n,), float("nan"), device=dev),
        }
        if not warmup:
            for key in ("selected", "high_conf", "candidate", "rejected"):
                sig[key] = torch.zeros(n, dtype=torch.bool, device=dev)
            sig["relabel"] = torch.full((n,), -1, dtype=torch.long, device=dev)
        sums = {k: torch.zeros((), device=dev) for k in ("loss", "loss_cls", "loss_pc", "loss_tri", "loss_re")}
        steps = 0
        self.net.train()
        for batch in self.loader.epoch(epoch):
            out = self.train_step(ctx, batch.views[0], batch.views[1], batch.y, warmup)
            idx = batch.index
            sig["loss"][idx], sig["pc"][idx], sig["score"][idx] = out["cls"], out["pc"], out["score"]
            if not warmup:
                for key in ("selected", "high_conf", "candidate"):
                    sig[key][idx[out[key]]] = True
                cand = idx[out["candidate"]]
                sig["rejected"][cand[~out["keep"]]] = True
                sig["relabel"][cand[out["keep"]]] = out["target"][out["keep"]].argmax(1)
            for key in sums:
                sums[key] += out["terms"][key]
            steps += 1
        for key, value in sums.items():
            record[key] = mean_per_step(value, steps)
        # the per-sample clean score: the negated ranking score (higher = cleaner), every epoch
        sig["clean_score"] = -sig["score"]
        signals = {k: v.cpu().numpy() for k, v in sig.items()}
        if not warmup:
            record.update(
                n_selected=int(signals["selected"].sum()),
                n_high_conf=int(signals["high_conf"].sum()),
                n_candidates=int(signals["candidate"].sum()),
            )
            record["n_relabelled_id"] = int((signals["relabel"] >= 0).sum())
        record["steps"] = steps
        return EpochOutput(record, signals)

    # ------------------------------------------------------------------ setup and state
    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.net = self._build_network(ctx)
        if cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                self.net.parameters(),
                lr=cfg.lr,
                momentum=cfg.momentum,
                nesterov=cfg.nesterov,
                weight_decay=cfg.weight_decay,
            )
        weak = Augment(cfg.crop_padding, cfg.flip) if ctx.data.is_image else None
        strong = (
            comining_strong_view(
                cfg.strong_view,
                ctx.data.mean.cpu(),
                ctx.data.std.cpu(),
                cfg.crop_padding,
                cfg.flip,
                cfg.strong_magnitude,
                cfg.strong_cutout,
                black_padding=cfg.strong_black_padding,
            )
            if ctx.data.is_image
            else None
        )
        self.loader = ctx.data.loader(cfg.batch_size, augment=[weak, strong], shuffle=True, stream="train")
        self.banks = [FeatureBank(cfg.bank_size), FeatureBank(cfg.bank_size)]  # weak view, strong view
        self.rate = self.forget_rate(ctx.noise_spec)
        self._total_epochs = self.num_epochs()

    def train_step(
        self, ctx: Context, x_weak: torch.Tensor, x_strong: torch.Tensor, y: torch.Tensor, warmup: bool
    ) -> dict:
        """One optimisation step of Co-mining on a batch (both views), then the bank update.

        Returns
        -------
        dict
            Per-sample ``cls``, ``pc``, ``score`` (N,); after the warm-up also the boolean masks ``selected``,
            ``high_conf``, ``candidate`` (N,), the candidates' ``keep`` mask and soft ``target`` (|S_d|, C), and the
            loss ``terms``.
        """
        cfg = self.config
        C = ctx.num_classes
        with autocast(ctx.device, cfg.precision):
            feat1, feat2 = self.net.embed(x_weak), self.net.embed(x_strong)  # separate passes: per-view BN stats
            logits1, logits2 = self.net.classify(feat1).float(), self.net.classify(feat2).float()
        h1, h2 = F.normalize(feat1.float(), dim=1), F.normalize(feat2.float(), dim=1)
        target_ls = smooth_one_hot_exclusive(y, C, cfg.epsilon)
        cls = 0.5 * (soft_cross_entropy(logits1, target_ls, "none") + soft_cross_entropy(logits2, target_ls, "none"))
        pc = symmetric_kl_bits(logits1.softmax(1), logits2.softmax(1), cfg.skl_clamp)
        score = (cls + cfg.w_pc * pc).detach()
        zero = logits1.sum() * 0.0
        out = {"cls": cls.detach(), "pc": pc.detach(), "score": score}

        if warmup:
            loss = cls.mean() if len(cls) else zero
            terms = {
                "loss_cls": loss.detach(),
                "loss_pc": pc.detach().mean() if len(pc) else zero.detach(),
                "loss_tri": zero.detach(),
                "loss_re": zero.detach(),
            }
            pushed = torch.arange(len(y), device=y.device)
        else:
            clean, high, cand = partition(score, self.rate, cfg.er, cfg.relabel_slice)
            loss_cls = cls[clean].mean() if len(clean) else zero
            loss_pc = pc[clean].mean() if len(clean) else zero
            # triplet term of each view against that view's bank (as it was before this batch)
            loss_tri = zero
            for h, bank in ((h1, self.banks[0]), (h2, self.banks[1])):
                feats, labels = bank.contents()
                loss_tri = loss_tri + 0.5 * triplet_loss(
                    h[high],
                    y[high],
                    feats,
                    labels,
                    cfg.margin,
                    tuple(cfg.pos_window),
                    tuple(cfg.neg_window),
                    cfg.triplet_mode,
                )
            # relabel candidates from their k-reciprocal neighbours; both views must agree, else OOD
            softs = []
            for h, bank in ((h1, self.banks[0]), (h2, self.banks[1])):
                feats, labels = bank.contents()
                softs.append(kreciprocal_soft_labels(h[cand].detach(), feats, labels, cfg.k1, C)[0])
            keep, target = relabel_gate(softs[0], softs[1], cfg.sigma)
            if bool(keep.any()):
                kept = cand[keep]
                loss_re = 0.5 * (
                    soft_cross_entropy(logits1[kept], target[keep]) + soft_cross_entropy(logits2[kept], target[keep])
                )
            else:
                loss_re = zero
            loss = loss_cls + cfg.w_pc * loss_pc + cfg.w_tri * loss_tri + cfg.w_re * loss_re
            terms = {
                "loss_cls": loss_cls.detach(),
                "loss_pc": loss_pc.detach(),
                "loss_tri": loss_tri.detach(),
                "loss_re": loss_re.detach(),
            }
            masks = {}
            for key, part in (("selected", clean), ("high_conf", high), ("candidate", cand)):
                m = torch.zeros(len(y), dtype=torch.bool, device=y.device)
                m[part] = True
                masks[key] = m
            # report the candidates in batch order so the caller can index them with the masks
            order = torch.argsort(cand)
            out.update(masks, keep=keep[order], target=target[order])
            pushed = high

        self.optimizer.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
            self.optimizer.step()
        terms["loss"] = loss.detach()
        out["terms"] = terms
        # the bank update comes after the step, with the features of this forward pass (detached)
        self.banks[0].push(h1[pushed], y[pushed])
        self.banks[1].push(h2[pushed], y[pushed])
        return out

    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """The preset of a paper setting: ``cifar10`` / ``cifar100`` with ``symmetric:ρ`` or ``pairflip:ρ`` ->
        ``cifar10nc`` / ``cifar100nc``; ``cifar100`` with ``openset:0.2+...`` -> ``cifar80no``; the web sets with no
        injected noise -> their own; digits -> ``digits``.  Anything else gives ``None``."""
        dataset = str(dataset).lower()
        if dataset == "digits":
            return "digits"
        if dataset in cls.WEB_DATASETS:
            return dataset if cls.no_injected_noise(noise) else None
        if noise is None:
            return None
        try:
            parsed = parse_noise_spec(str(noise))
        except ValueError:
            return None
        if parsed.kind == "openset":
            ok = (
                dataset == "cifar100"
                and math.isclose(parsed.open_ratio, 0.2)
                and parsed.closed.kind in ("symmetric", "pairflip", "none")
            )
            return "cifar80no" if ok else None
        if parsed.kind in ("symmetric", "pairflip") and dataset in ("cifar10", "cifar100"):
            return f"{dataset}nc"
        return None

    # ------------------------------------------------------------------ schedule
    def learning_rate(self, epoch: int) -> float:
        cfg = self.config
        if cfg.lr_schedule == "coteaching":
            return coteaching_lr(cfg.lr, epoch, cfg.epochs, cfg.decay_start)
        if cfg.lr_schedule == "cosine_after_warmup" and epoch >= cfg.warmup_epochs:
            t = (epoch - cfg.warmup_epochs + 1) / (cfg.epochs - cfg.warmup_epochs + 1)
            return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * t))
        return cfg.lr

    def forget_rate(self, noise_spec: str | None) -> float:
        """``r`` of this run: ``forget_rate`` if set, else ``o + (1 − o)·ρ_c`` from the config or the noise spec."""
        cfg = self.config
        if cfg.forget_rate is not None:
            return cfg.forget_rate
        if cfg.closeset_ratio is not None:
            return forget_rate(cfg.closeset_ratio, cfg.open_ratio or 0.0)
        if noise_spec is None:
            raise ValueError("Co-mining needs a forget rate: set forget_rate or closeset_ratio (no noise spec known)")
        rate = forget_rate_from_noise(noise_spec)
        if cfg.open_ratio is not None:  # an explicit open-set ratio overrides the spec's
            parsed = parse_noise_spec(noise_spec)
            closed = parsed.closed if parsed.kind == "openset" else parsed
            rate = forget_rate(float(closed.rate or 0.0), cfg.open_ratio)
        return rate

    def _build_network(self, ctx: Context):
        cfg = self.config
        if cfg.web_backbone == "resnet18_halved_residual":
            return ctx.build_model(
                "resnet18", weights_path=cfg.weights_path, stem="imagenet", halved_residual=True, fc_init="he"
            )
        if cfg.web_backbone == "resnet50_torchvision":
            return ctx.build_model("resnet50_tv", weights_path=cfg.weights_path)
        return ctx.build_model(cfg.model, weights_path=cfg.weights_path)

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "banks": [b.state_dict() for b in self.banks]}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        device = next(self.net.parameters()).device
        for bank, sd in zip(self.banks, state["banks"]):
            bank.load_state_dict(sd, device)

    def reported_metric(self, history: list[dict]) -> float:
        """Mean test accuracy over the last ``report_last`` epochs (fewer when the run is shorter)."""
        accs = [r["test_acc"] for r in history[-self.config.report_last :] if r.get("test_acc") is not None]
        return float(np.mean(accs)) if accs else float("nan")

    def _result(self, history, data, status, wall_s) -> dict:
        result = super()._result(history, data, status, wall_s)
        accs = [r["test_acc"] for r in history[-self.config.report_last :] if r.get("test_acc") is not None]
        result["reported_std"] = float(np.std(accs)) if accs else None  # population std, as the official stats
        result["forget_rate"] = getattr(self, "rate", None)
        return result


# ---------------------------------------------------------------------------------------------------- the pieces
def forget_rate(closeset_ratio: float, open_ratio: float = 0.0) -> float:
    """Co-mining's forget rate ``r = (ρ_c + o/(1 − o)) / (1 + o/(1 − o)) = o + (1 − o)·ρ_c``.

    The expected noisy fraction when a fraction ``o`` of the images is open-set and the rest carries closed-set noise
    at rate ``ρ_c`` (``cifar80no`` with ``ρ_c = 0.4``: 0.52).
    """
    if not 0.0 <= closeset_ratio <= 1.0 or not 0.0 <= open_ratio < 1.0:
        raise ValueError(f"need 0 <= closeset_ratio <= 1 and 0 <= open_ratio < 1, got {closeset_ratio}, {open_ratio}")
    odds = open_ratio / (1.0 - open_ratio)
    return (closeset_ratio + odds) / (1.0 + odds)


def forget_rate_from_noise(spec: str) -> float:
    """The forget rate of a nominal noise spec: ``symmetric:0.4`` -> 0.4, ``openset:0.2+symmetric:0.4`` -> 0.52,
    ``none`` -> 0.

    Raises
    ------
    ValueError
        For noise without a nominal rate (CIFAR-N files, real web noise): set ``forget_rate`` explicitly.
    """
    parsed = parse_noise_spec(spec)
    closed, open_ratio = (parsed.closed, parsed.open_ratio) if parsed.kind == "openset" else (parsed, 0.0)
    if closed.rate is None:
        raise ValueError(
            f"noise {spec!r} has no nominal rate to derive Co-mining's forget rate from; "
            "set forget_rate=... (e.g. --set forget_rate=0.25)"
        )
    return forget_rate(float(closed.rate), float(open_ratio))


def partition(
    score: torch.Tensor, rate: float, er: float, relabel_slice: str = "faithful"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a batch by its ranking score into clean, high-confidence and relabel-candidate indices.

    Parameters
    ----------
    score : Tensor (N,)
        Ranking score (small = clean).
    rate : float
        Forget rate ``r``.
    er : float
        High-confidence fraction of the clean set.
    relabel_slice : {"faithful", "intended"}
        Candidates ``sorted[⌊N·r⌋:]`` (official code) or ``sorted[⌊N(1 − r)⌋:]`` (the paper's intent).

    Returns
    -------
    clean, high, candidates : Tensor int64
        Batch positions, in ascending score order; ``|clean| = ⌊N(1 − r)⌋``, ``|high| = ⌊|clean|·er⌋``.
    """
    if relabel_slice not in RELABEL_SLICES:
        raise ValueError(f"relabel_slice must be one of {RELABEL_SLICES}, got {relabel_slice!r}")
    n = len(score)
    order = torch.argsort(score, stable=True)
    n_clean = int(n * (1.0 - rate) + 1e-9)  # the official int() truncation; the epsilon absorbs float noise
    n_high = int(n_clean * er + 1e-9)
    start = n_clean if relabel_slice == "intended" else int(n * rate + 1e-9)
    return order[:n_clean], order[:n_high], order[start:]


def symmetric_kl_bits(p: torch.Tensor, q: torch.Tensor, clamp: float | None = 1e-8) -> torch.Tensor:
    """Per-sample ``KL(p‖q) + KL(q‖p)`` in bits (log base 2), Co-mining's prediction-consistency term.

    Parameters
    ----------
    p, q : Tensor (B, C)
        Probability rows.
    clamp : float or None
        Lower bound on the probabilities inside the logarithms (``None``: the official unclamped form, which gives
        NaN/inf once a probability underflows to 0).

    Returns
    -------
    Tensor (B,)
    """
    lp, lq = (
        (torch.log2(p.clamp_min(clamp)), torch.log2(q.clamp_min(clamp))) if clamp else (torch.log2(p), torch.log2(q))
    )
    return (p * (lp - lq)).sum(1) + (q * (lq - lp)).sum(1)


def _window_mean(
    values: torch.Tensor, valid: torch.Tensor, window: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the valid entries of columns ``[lo, hi)`` of each row, and whether a row had any."""
    lo, hi = window
    v, ok = values[:, lo:hi], valid[:, lo:hi]
    count = ok.sum(1)
    mean = torch.where(ok, v, torch.zeros_like(v)).sum(1) / count.clamp_min(1)
    return mean, count > 0


def triplet_loss(
    anchors: torch.Tensor,
    labels: torch.Tensor,
    bank_feats: torch.Tensor,
    bank_labels: torch.Tensor,
    margin: float,
    pos_window: tuple[int, int] = (0, 5),
    neg_window: tuple[int, int] = (0, 5),
    mode: str = "faithful",
) -> torch.Tensor:
    """Co-mining's top-k triplet ("semi-hard mining") loss of anchors against a memory bank.

    Similarity is ``cos + 1`` on L2-normalised features.  ``s⁺`` averages the positives (same label) of ranks
    ``pos_window`` in ascending similarity (the hardest), ``s⁻`` the negatives of ranks ``neg_window`` in
    descending similarity.

    * ``mode="corrected"``: ``mean_a max(0, s⁻ − s⁺ + m)`` over the anchors that have both a positive and a negative
      in the bank.
    * ``mode="faithful"`` (official code): the windows are taken over ``sim·[same label]`` and ``sim·[other
      label]`` (zeros included) and the loss is ``mean_a max(0, m·(s⁻ − s⁺) + m) = m·max(0, s⁻ − s⁺ + 1)``, which is
      identically 0 for ``m = 0``.

    Parameters
    ----------
    anchors : Tensor (A, D), L2-normalised
    labels : Tensor int64 (A,)
    bank_feats : Tensor (M, D), L2-normalised
    bank_labels : Tensor int64 (M,)
    margin : float
    pos_window, neg_window : (int, int)
        ``[plk, puk)`` and ``[nlk, nuk)``.
    mode : {"faithful", "corrected"}

    Returns
    -------
    Tensor, scalar (0 with gradient 0 when there is no anchor or the bank is empty)
    """
    if mode not in TRIPLET_MODES:
        raise ValueError(f"triplet_mode must be one of {TRIPLET_MODES}, got {mode!r}")
    if len(anchors) == 0 or len(bank_feats) == 0:
        return anchors.sum() * 0.0
    sim = anchors @ bank_feats.to(anchors.dtype).T + 1.0  # (A, M) in [0, 2]
    same = labels[:, None] == bank_labels[None, :]
    if mode == "faithful":
        pos = (sim * same).sort(1).values
        neg = (sim * ~same).sort(1, descending=True).values
        everything = torch.ones_like(pos, dtype=torch.bool)
        s_pos, ok_p = _window_mean(pos, everything, pos_window)
        s_neg, ok_n = _window_mean(neg, everything, neg_window)
        ok = ok_p & ok_n
        loss = F.relu(margin * (s_neg - s_pos) + margin)
    else:
        pos = sim.masked_fill(~same, math.inf).sort(1).values
        neg = sim.masked_fill(same, -math.inf).sort(1, descending=True).values
        s_pos, ok_p = _window_mean(pos, torch.isfinite(pos), pos_window)
        s_neg, ok_n = _window_mean(neg, torch.isfinite(neg), neg_window)
        ok = ok_p & ok_n
        loss = F.relu(s_neg - s_pos + margin)
    return loss[ok].mean() if bool(ok.any()) else anchors.sum() * 0.0


def _squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``‖a_i − b_j‖²`` for rows of ``a`` (P, D) and ``b`` (Q, D): (P, Q), clamped at 0."""
    return ((a * a).sum(1, keepdim=True) + (b * b).sum(1)[None] - 2.0 * a @ b.T).clamp_min(0.0)


def kreciprocal_soft_labels(
    queries: torch.Tensor, bank_feats: torch.Tensor, bank_labels: torch.Tensor, k1: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft labels of ``queries`` from their k-reciprocal neighbours in a memory bank.

    ``N_k(q)`` are the ``k1`` bank entries nearest to ``q`` (squared Euclidean distance).  Neighbour ``j`` is
    *reciprocal* when ``q`` is among the ``k1`` nearest neighbours of ``j`` searched over all queries and the bank
    (``j`` itself included).  The soft label is the normalised vote of the reciprocal neighbours' labels; a query
    with no reciprocal neighbour votes with all ``k1`` (plain kNN).

    Parameters
    ----------
    queries : Tensor (Q, D), L2-normalised
    bank_feats : Tensor (M, D), L2-normalised
    bank_labels : Tensor int64 (M,)
    k1 : int
    num_classes : int

    Returns
    -------
    soft : Tensor float32 (Q, C)
        Rows sum to 1 (all zeros when the bank is empty).
    reciprocal : Tensor bool (Q, min(k1, M))
        Which of each query's nearest bank entries (nearest first) are reciprocal.
    """
    nq, m = len(queries), len(bank_feats)
    if nq == 0 or m == 0:
        return (
            torch.zeros(nq, num_classes, device=queries.device),
            torch.zeros(nq, 0, dtype=torch.bool, device=queries.device),
        )
    queries, bank_feats = queries.float(), bank_feats.float()
    k = min(k1, m)
    nearest = _squared_distance(queries, bank_feats).topk(k, dim=1, largest=False).indices  # (Q, k)
    used, inverse = torch.unique(nearest, return_inverse=True)  # only the bank entries that are someone's neighbour
    gallery = torch.cat([queries, bank_feats])
    back = _squared_distance(bank_feats[used], gallery)  # (U, Q + M)
    kth = back.topk(min(k1, len(gallery)), dim=1, largest=False).values[:, -1]  # k1-th smallest distance of each j
    rows = torch.arange(nq, device=queries.device)[:, None].expand_as(nearest)
    reciprocal = back[inverse, rows] <= kth[inverse]  # d(j, q) within j's own k1-NN radius
    weight = reciprocal.float()
    weight[~reciprocal.any(1)] = 1.0  # no reciprocal neighbour: plain kNN
    votes = F.one_hot(bank_labels[nearest], num_classes).float() * weight[..., None]
    soft = votes.sum(1) / weight.sum(1, keepdim=True)
    return soft, reciprocal


def relabel_gate(soft_a: torch.Tensor, soft_b: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Co-mining's in-distribution test of relabel candidates from two views' soft labels.

    Parameters
    ----------
    soft_a, soft_b : Tensor (Q, C)
        The two views' soft labels.
    sigma : float
        Threshold on each view's peak.

    Returns
    -------
    keep : Tensor bool (Q,)
        Both peaks ``≥ σ`` and the same argmax (in-distribution, relabelled); the rest is rejected as OOD.
    target : Tensor (Q, C)
        ``(soft_a + soft_b) / 2``, the target of the kept rows.
    """
    peak_a, arg_a = soft_a.max(1) if len(soft_a) else (soft_a.sum(1), soft_a.sum(1).long())
    peak_b, arg_b = soft_b.max(1) if len(soft_b) else (soft_b.sum(1), soft_b.sum(1).long())
    keep = (peak_a >= sigma) & (peak_b >= sigma) & (arg_a == arg_b)
    return keep, (soft_a + soft_b) / 2


class FeatureBank:
    """A FIFO memory of (feature, label) pairs, Co-mining's per-view bank.

    Writing ``q`` entries at pointer ``p`` fills slots ``[p, p + q)`` and advances ``p``; when ``p + q`` would pass the
    end, the official code writes the **last** ``q`` slots instead and resets ``p`` to 0 (reproduced here).  Only
    slots written so far are served, as the official ``XBM`` (``common/cross_batch_mem.py``) does.

    Parameters
    ----------
    size : int
        Capacity (4096 in the paper).
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"bank size must be >= 1, got {size}")
        self.size = int(size)
        self.feats: torch.Tensor | None = None  # (size, D), allocated on the first push
        self.labels: torch.Tensor | None = None  # (size,)
        self.ptr = 0
        self.filled = 0

    def __len__(self) -> int:
        return self.filled

    def push(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Append ``feats`` (Q, D) and ``labels`` (Q,), detached."""
        q = len(feats)
        if q == 0:
            return
        feats, labels = feats.detach().float(), labels.detach()
        if q > self.size:  # keep the newest `size`
            feats, labels, q = feats[-self.size :], labels[-self.size :], self.size
        if self.feats is None:
            self.feats = torch.zeros(self.size, feats.shape[1], device=feats.device)
            self.labels = torch.full((self.size,), -1, dtype=torch.long, device=feats.device)
        if self.ptr + q > self.size:
            self.feats[-q:], self.labels[-q:] = feats, labels
            self.ptr, self.filled = 0, self.size
        else:
            self.feats[self.ptr : self.ptr + q], self.labels[self.ptr : self.ptr + q] = feats, labels
            self.ptr += q
            self.filled = max(self.filled, self.ptr)

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The written entries: features (M, D) and labels (M,) (empty before the first push)."""
        if self.feats is None:
            return torch.zeros(0, 1), torch.zeros(0, dtype=torch.long)
        return self.feats[: self.filled], self.labels[: self.filled]

    def state_dict(self) -> dict:
        return {
            "feats": None if self.feats is None else self.feats.cpu().clone(),
            "labels": None if self.labels is None else self.labels.cpu().clone(),
            "ptr": self.ptr,
            "filled": self.filled,
        }

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.feats = None if state["feats"] is None else state["feats"].to(device)
        self.labels = None if state["labels"] is None else state["labels"].to(device)
        self.ptr, self.filled = int(state["ptr"]), int(state["filled"])


def load_trained(run_dir: str | os.PathLike, net: torch.nn.Module) -> list[FeatureBank]:
    """Restore a finished Co-mining run for analysis: its last checkpoint's weights go into ``net`` and its two
    feature banks come back.

    Parameters
    ----------
    run_dir : path
        A Co-mining run folder with a ``checkpoint.pt``.
    net : nn.Module
        Built as the run built it (its ``model`` hyperparameter); its weights are replaced.

    Returns
    -------
    list of FeatureBank
        The weak-view and the strong-view bank (:meth:`FeatureBank.contents` gives the written entries), on
        ``net``'s device.

    Raises
    ------
    ValueError
        When ``run_dir`` is not a Co-mining run; FileNotFoundError when it has no checkpoint.
    """
    from lnlkit.runs import load_run
    from lnlkit.train.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    config = load_run(run_dir).config
    method = config.get("method")
    if method != CoMining.name:
        raise ValueError(f"{run_dir} is a run of {method!r}, not of {CoMining.name!r}")
    if not (run_dir / "checkpoint.pt").exists():
        raise FileNotFoundError(f"{run_dir} has no checkpoint.pt")
    device = next(net.parameters()).device
    state = load_checkpoint(run_dir / "checkpoint.pt", device)
    net.load_state_dict(state["networks"][0])
    banks = []
    for bank_state in state["method"]["banks"]:
        bank = FeatureBank(config["hyperparameters"]["bank_size"])
        bank.load_state_dict(bank_state, device)
        banks.append(bank)
    return banks

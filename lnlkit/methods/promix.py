"""ProMix (Xiao et al., IJCAI 2023): "Combating Label Noise via Maximizing Clean Sample Utility" — two peer networks,
each picking its own clean set progressively and learning from it with debiased semi-supervised losses.

Docs: docs/methods/promix.md (the official code ``Justherozen/ProMix`` as it runs).  The loop is ``e = 0 … E``
**inclusive** (``epochs = 600`` gives 601 passes, :meth:`ProMix.num_epochs`); one SGD optimiser over both networks,
lr ``η(e)`` cosine from 0.05 to 5e-5 over ``E`` epochs.  Each network (a plain CIFAR ResNet-18 on CIFAR) has a
primary head ``h`` and an auxiliary pseudo head ``h_AP`` on the same feature.

1. **Warm-up** (``e < warm_up``, the official ``pretrain_ep``): plain CE on the weak view for both networks, summed,
   one step per batch; under asymmetric noise plus the negative-entropy confidence penalty of each network.
2. **SSL epoch** (every later epoch):

   a. *CSS, class-wise small-loss selection* (:func:`class_wise_small_loss_selection`), once per epoch and per
      network: the per-sample CE of the primary head (eval mode, no augmentation), min-max normalised; in each given
      class ``j`` the ``k_j = max(1, min(⌈ρ·N/C⌉, |S_j|))`` smallest losses are kept (a *balanced* quota).
   b. Every batch of all ``N`` samples (shuffled, ``drop_last``), with a weak and a strong view (ProMix's
      RandomAugment + Cutout, :class:`lnlkit.train.augment.RandomAugment`), for each network ``k``:

      * *MHCS, matched high-confidence selection* (:func:`matched_high_confidence`): a sample joins the clean set
        ``L_k`` when its network's plain softmax on the weak view gives its label a probability above ``τ``;
      * *LGA, label guessing by agreement* (:func:`label_guessing_by_agreement`, the last ``start_expand`` epochs:
        ``e > E − start_expand``): when ``|L_k| < 0.9·B``, unselected samples on which both networks agree with
        confidence above ``τ`` join ``L_k`` (at most ``⌊0.9·B⌋ − |L_k|``, most confident first) with the network's
        own *debiased* prediction as target;
      * *primary head* on ``L_k``: ``CE(weak) + w(e)·[CE(strong) + mixup + FMix]``, every logit shifted by
        ``α·log π_k`` (logit adjustment with the EMA prior ``π_k`` of the selected set, :func:`ema_prior`); mixup
        with ``λ ~ Beta(4, 4)``, ``λ ← max(λ, 1 − λ)`` inside ``L_k``; FMix with one hard Fourier mask per batch;
      * *pseudo head* ``h_AP``: the same four terms (fresh mixup/FMix draws), plus ``β(e)·[CE(weak) + w·CE(strong)]``
        on the unselected samples ``U_k`` with sharpened (``T = 0.5``), debiased pseudo-labels
        ``softmax(z − β_pl·log π_k,u)`` and logits shifted by ``α·log π_k,u``;
      * the priors ``π_k``, ``π_k,u`` move towards the batch-mean softmax of ``L_k`` and ``U_k`` (momentum 0.9999).

      The four losses (two heads × two networks) are summed: one backward pass, one SGD step.

   ``w(e) = min(e / R, 1)`` (``R = rampup_length``, the official ``warmup_ep`` = 50) counts from epoch 0 (warm-up
   included); ``β(e) = 0.1·min(e / 2R, 1)``, set to 0 from epoch ``2R`` on (so, officially, ``β`` never reaches
   0.1); with ``debias_pl = 0`` the official code uses ``β = 1`` for the whole run instead.
3. **Test ("Acc Mean")**: argmax of the mean of the two networks' *primary-head* logits (the number the authors
   report; the official ``Acc Net1/Net2`` printouts are pseudo-head accuracies, recorded here as
   ``test_acc_ap_net1/2``).  ``reported_as = "ensemble_acc_last"``; the best epoch is ``test_acc_best``.

Switches and kit choices: docs/methods/promix.md#implementation-notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.presets import PresetTable
from lnlkit.train.augment import Augment, RandomAugment
from lnlkit.train.evaluate import accuracy, autocast, predict
from lnlkit.train.loader import Batch, stream_numpy_generator
from lnlkit.train.losses import (
    ema_prior,
    fmix_mask,
    logit_adjust,
    mixup_lambda,
    negative_entropy,
    one_hot,
    sharpen,
    soft_cross_entropy,
)
from lnlkit.train.schedules import cosine_lr, set_lr
from lnlkit.train.selection import min_max_normalise
from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive, check_range

__all__ = [
    "ProMixConfig",
    "ProMix",
    "class_wise_small_loss_selection",
    "matched_high_confidence",
    "label_guessing_by_agreement",
    "negative_entropy_clamped",
    "debiased_probs",
]


# ---------------------------------------------------------------------------------------------- config
@dataclass
class ProMixConfig(MethodConfig):
    """Hyperparameters of ProMix (defaults: the official CIFAR-10 sym 50% command of ``run.sh``).

    Each field's reading: docs/methods/promix.md#configuration."""

    epochs: int = 600
    batch_size: int = 256
    model: str = "auto"
    lr: float = 0.05
    min_lr_factor: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warm_up: int = 10
    asym_penalty: bool = False
    rampup_length: float = 50.0
    rho: float = 0.5
    rho_end: float | None = None
    tau: float = 0.99
    debias_output: float = 0.8
    debias_pl: float = 0.8
    bias_m: float = 0.9999
    temperature: float = 0.5
    start_expand: int | None = 250
    lga_threshold: float = 0.9
    mixup_alpha: float = 4.0
    fmix_alpha: float = 1.0
    fmix_decay_power: float = 3.0
    pl_weight: float = 0.1
    pl_rampup: float | None = None
    pseudo_head_unlabeled_off: bool = True
    css_quota: str = "balanced"
    css_partition_from_predictions_after_epoch: int | None = None
    fix_negentropy_clamp: bool = True
    crop_padding: int = 4
    flip: bool = True
    augment_order: str = "flip_crop"
    randaug_ops: int = 3
    cutout_max_fraction: float = 0.5
    record_train_loss: bool = True
    model_width: int | None = None
    weights_path: str | None = None

    def validate(self) -> None:
        super().validate()
        check_positive(self, "lr", "temperature", "mixup_alpha", "fmix_alpha", "fmix_decay_power")
        check_range(
            self, "min_lr_factor", "rho", "tau", "lga_threshold", "bias_m", "cutout_max_fraction", low=0.0, high=1.0
        )
        check_range(self, "rho_end", low=0.0, high=1.0, optional=True)
        check_non_negative(self, "pl_rampup", optional=True)
        check_non_negative(self, "rampup_length", "pl_weight", "debias_output", "debias_pl")
        check_int(self, "warm_up", "randaug_ops", low=0)
        check_int(self, "start_expand", "css_partition_from_predictions_after_epoch", low=0, optional=True)
        check_int(self, "model_width", low=1, optional=True)
        check_choice(self, "css_quota", ("balanced", "per_class"))
        check_choice(self, "augment_order", ("crop_flip", "flip_crop"))


# ---------------------------------------------------------------------------------------------- the method
class ProMix(Method):
    """ProMix: CSS + MHCS (+ LGA late) per network, debiased SSL losses on two heads (module docstring)."""

    name = "promix"
    Config = ProMixConfig
    PRESETS = PresetTable("lnlkit.presets.promix")
    reported_as = "ensemble_acc_last"
    data_pipeline = "promix"  # official dataloader_cifarn.py: CIFAR-10 std (0.247, 0.243, 0.261)
    SETTINGS = PresetTable("lnlkit.presets.promix", "SETTINGS")  # drives preset_for

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        lr = self.learning_rate(epoch)
        set_lr(self.optimizer, lr)
        if self.phase(epoch) == "warmup":
            record, signals = self.warm_up(ctx, epoch)
        else:
            record, signals = self.ssl_epoch(ctx, epoch)
        return EpochOutput({"phase": self.phase(epoch), "lr": lr, **record}, signals)

    # ------------------------------------------------------------------ setup and state
    def setup(self, ctx: Context) -> None:
        cfg = self.config
        model = ctx.default_model if cfg.model == "auto" else cfg.model
        extra: dict = {"second_head": True}
        if model in ("resnet18", "resnet34"):
            extra["init"] = "kaiming"  # ProMix's ResNet initialisation (official model.py)
        if cfg.model_width is not None:
            extra["width"] = cfg.model_width
        self.nets = [ctx.build_model(model, weights_path=cfg.weights_path, **extra) for _ in range(2)]
        # one optimiser over both networks, as the official code
        self.optimizer = torch.optim.SGD(
            [p for net in self.nets for p in net.parameters()],
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        if ctx.data.is_image:
            self.weak = Augment(cfg.crop_padding, cfg.flip, order=cfg.augment_order)
            self.strong = RandomAugment(
                ctx.data.mean.cpu(),
                ctx.data.std.cpu(),
                n_ops=cfg.randaug_ops,
                cutout_max_fraction=cfg.cutout_max_fraction,
                then=self.weak,
            )
        else:
            self.weak = self.strong = None
        c = ctx.num_classes
        # EMA class priors of the selected (π_k) and unselected (π_k,u) sets, uniform at the start, kept across epochs
        self.prior = torch.full((2, c), 1.0 / c, device=ctx.device)
        self.prior_u = torch.full((2, c), 1.0 / c, device=ctx.device)

    # ------------------------------------------------------------------ 1. warm-up
    def warm_up(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """CE on the weak view for both networks on the same batches (+ each one's confidence penalty under
        asymmetric noise), one step on the sum."""
        cfg = self.config
        penalty_fn = negative_entropy if cfg.fix_negentropy_clamp else negative_entropy_clamped
        loader = ctx.data.loader(cfg.batch_size, augment=self.weak, stream="warmup")
        for net in self.nets:
            net.train()
        loss_sum = torch.zeros((), device=ctx.device)
        pen_sum = torch.zeros((), device=ctx.device)
        steps = 0
        for batch in loader.epoch(epoch):
            loss = torch.zeros((), device=ctx.device)
            with autocast(ctx.device, cfg.precision):
                for net in self.nets:
                    logits = net(batch.x).float()
                    loss = loss + F.cross_entropy(logits, batch.y)
                    if cfg.asym_penalty:
                        penalty = penalty_fn(logits)
                        pen_sum += penalty.detach()
                        loss = loss + penalty
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            steps += 1
        record = {"loss": float(loss_sum.item() / max(steps, 1)), "steps": steps, "w": self.ramp(epoch)}
        if cfg.asym_penalty:
            record["penalty"] = float(pen_sum.item() / max(steps, 1))
        signals = {}
        if cfg.record_train_loss and ctx.records_signals(epoch):
            for k, suffix in enumerate(("", "_net2")):
                loss, score, _ = self.per_sample_losses(ctx, self.nets[k])
                signals["loss" + suffix], signals["score" + suffix] = loss, score
                signals["clean_score" + suffix] = 1.0 - loss  # the ranking the first CSS will use
        return record, signals

    # ------------------------------------------------------------------ 2a. CSS
    def per_sample_losses(self, ctx: Context, net) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """Primary-head CE of every training sample against its given label (eval mode, no augmentation).

        Returns
        -------
        loss : ndarray float32 (N,)
            Min-max normalised over the training set.
        score : ndarray float32 (N,)
            The softmax probability of the given label (what MHCS thresholds).
        pred : Tensor int64 (N,)
            Predicted labels (the IDN variant's class subsets).
        """
        logits = predict(net, ctx.data, "train", self.config.eval_batch_size, self.config.evaluation_precision)
        loss = F.cross_entropy(logits, ctx.data.labels, reduction="none")
        score = logits.softmax(1).gather(1, ctx.data.labels[:, None]).squeeze(1)
        return (
            min_max_normalise(loss.cpu().numpy()).astype(np.float32),
            score.cpu().numpy().astype(np.float32),
            logits.argmax(1),
        )

    def css(self, ctx: Context, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network ``k``'s CSS mask for this epoch, with the normalised losses and scores it came from."""
        cfg = self.config
        loss, score, pred = self.per_sample_losses(ctx, self.nets[k])
        after = cfg.css_partition_from_predictions_after_epoch
        partition = pred if after is not None and epoch >= after else ctx.data.labels
        mask = class_wise_small_loss_selection(
            loss, partition, self.selection_ratio(epoch), ctx.num_classes, cfg.css_quota
        )
        return mask, loss, score

    # ------------------------------------------------------------------ 2b. SSL epoch
    def ssl_epoch(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """CSS for both networks, then one pass over all samples in batches (MHCS, LGA, losses, one step each)."""
        cfg = self.config
        n = ctx.n_train
        css, losses, scores = zip(*(self.css(ctx, epoch, k) for k in range(2)))
        css_dev = torch.as_tensor(np.stack(css), device=ctx.device)  # (2, N)
        # what each network did with each sample this epoch (samples dropped by drop_last stay unseen)
        mhcs = torch.zeros(2, n, dtype=torch.bool, device=ctx.device)
        lga = torch.zeros(2, n, dtype=torch.bool, device=ctx.device)
        target = torch.full((2, n), -1, dtype=torch.long, device=ctx.device)

        w, beta = self.ramp(epoch), self.unlabelled_weight(epoch)
        lga_on = self.lga_active(epoch)
        views = [self.weak, self.strong] if self.weak is not None else [None, None]
        loader = ctx.data.loader(cfg.batch_size, augment=views, drop_last=True, stream="ssl")
        rng = stream_numpy_generator(ctx.seed, epoch, "ssl/lambda")
        gen = ctx.generator(epoch, "ssl/perm")
        for net in self.nets:
            net.train()
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        for batch in loader.epoch(epoch):
            out = self.ssl_step(ctx, batch, css_dev[:, batch.index], w, beta, lga_on, rng, gen)
            mhcs[:, batch.index] = out["mhcs"]
            lga[:, batch.index] = out["lga"]
            target[:, batch.index] = out["target"]
            for key, value in out["losses"].items():
                sums[key] = sums.get(key, torch.zeros((), device=ctx.device)) + value
            steps += 1

        record = {key: float(value.item() / steps) for key, value in sums.items()} if steps else {}
        record.update(steps=steps, w=w, beta=beta, rho=self.selection_ratio(epoch), lga_active=lga_on)
        signals = {}
        mhcs_np, lga_np, target_np = mhcs.cpu().numpy(), lga.cpu().numpy(), target.cpu().numpy()
        for k, suffix in enumerate(("", "_net2")):
            clean_set = css[k] | mhcs_np[k]
            record["n_css" + suffix] = int(css[k].sum())
            record["n_mhcs_added" + suffix] = int((mhcs_np[k] & ~css[k]).sum())
            record["n_lga" + suffix] = int(lga_np[k].sum())
            record["n_selected" + suffix] = int(clean_set.sum())
            record["prior_min" + suffix] = float(self.prior[k].min())
            signals["loss" + suffix] = losses[k]
            signals["clean_score" + suffix] = 1.0 - losses[k]  # what CSS ranks on, higher = cleaner
            signals["score" + suffix] = scores[k]
            signals["selected_css" + suffix] = css[k]
            signals["selected_mhcs" + suffix] = mhcs_np[k]
            signals["selected" + suffix] = clean_set  # trained with the given label: CSS ∪ MHCS
            signals["guessed_lga" + suffix] = lga_np[k]  # trained with a guessed label (LGA)
            signals["relabel" + suffix] = target_np[k].astype(np.int16)  # the primary head's target; -1: unselected
        return record, signals

    def ssl_step(
        self,
        ctx: Context,
        batch: Batch,
        css: torch.Tensor,
        w: float,
        beta: float,
        lga_on: bool,
        rng: np.random.Generator,
        gen: torch.Generator,
    ) -> dict:
        """One SSL iteration of both networks (official ``Train_promix.py``) and one optimiser step.

        Parameters
        ----------
        batch : Batch
            ``views = (weak, strong)`` of B samples, given labels ``y``.
        css : Tensor bool (2, B)
            Each network's CSS flags for the batch.
        w, beta : float
            The ramp ``w(e)`` and the unlabelled weight ``β(e)``.
        lga_on : bool
            Whether LGA runs this epoch.

        Returns
        -------
        dict with ``losses`` (detached scalars, summed over the networks / 2), per network (2, B) tensors ``mhcs``,
        ``lga`` (bool) and ``target`` (the primary head's target class, -1 for unselected samples), and ``terms``:
        per network, the detached loss terms before weighting (``primary`` and ``pseudo``: ``ce``, ``cr``, ``mix``,
        ``fmix`` and the random ``draws`` they used; ``unlabelled``: the pseudo head's term on ``U_k``).
        """
        cfg = self.config
        x_w, x_s = batch.views
        y = batch.y
        c = ctx.num_classes
        with autocast(ctx.device, cfg.precision):
            heads_w = [net.forward_heads(x_w)[:2] for net in self.nets]
            heads_s = [net.forward_heads(x_s)[:2] for net in self.nets]
        z_w = [h[0].float() for h in heads_w]
        a_w = [h[1].float() for h in heads_w]
        z_s = [h[0].float() for h in heads_s]
        a_s = [h[1].float() for h in heads_s]

        with torch.no_grad():
            probs = [z.detach().softmax(1) for z in z_w]  # plain, not adjusted
            mhcs = torch.stack([matched_high_confidence(p, y, cfg.tau) for p in probs])
            base = css | mhcs  # CSS ∪ MHCS
            q_sel = [debiased_probs(z_w[k].detach(), self.prior[k], cfg.debias_pl) for k in range(2)]
            q_uns = [debiased_probs(z_w[k].detach(), self.prior_u[k], cfg.debias_pl) for k in range(2)]
            if lga_on:
                lga = torch.stack(
                    [
                        label_guessing_by_agreement(probs[0], probs[1], base[k], cfg.tau, cfg.lga_threshold)
                        for k in range(2)
                    ]
                )
            else:
                lga = torch.zeros_like(base)
            selected = base | lga
            given = one_hot(y, c)
            # given label for CSS/MHCS samples; this network's debiased prediction for the ones LGA adds
            targets = [torch.where(base[k][:, None], given, one_hot(q_sel[k].argmax(1), c)) for k in range(2)]

        losses: dict[str, torch.Tensor] = {}
        terms: list[dict] = []
        total = torch.zeros((), device=ctx.device)
        for k in range(2):
            net, sel = self.nets[k], selected[k]
            idx_l = torch.nonzero(sel).squeeze(1)
            idx_u = torch.nonzero(~sel).squeeze(1)
            alpha = cfg.debias_output
            l_h = self._labelled_losses(
                ctx, net, "primary", x_w, z_w[k], z_s[k], targets[k], idx_l, self.prior[k], w, rng, gen
            )
            l_ap = self._labelled_losses(
                ctx, net, "pseudo", x_w, a_w[k], a_s[k], targets[k], idx_l, self.prior[k], w, rng, gen
            )
            # the pseudo head's unlabelled term: sharpened, debiased pseudo-labels of the unselected samples
            if len(idx_u):
                r = sharpen(q_uns[k][idx_u], cfg.temperature)
                l_u = soft_cross_entropy(
                    logit_adjust(a_w[k][idx_u], self.prior_u[k], alpha), r
                ) + w * soft_cross_entropy(logit_adjust(a_s[k][idx_u], self.prior_u[k], alpha), r)
            else:
                l_u = torch.zeros((), device=ctx.device)
            total = total + l_h["total"] + l_ap["total"] + beta * l_u
            for name, value in (
                ("loss_ce", l_h["ce"]),
                ("loss_cr", l_h["cr"]),
                ("loss_mix", l_h["mix"]),
                ("loss_fmix", l_h["fmix"]),
                ("loss_ap", l_ap["total"]),
                ("loss_u", l_u),
            ):
                losses[name] = losses.get(name, torch.zeros((), device=ctx.device)) + value.detach() / 2
            terms.append({"primary": _detached(l_h), "pseudo": _detached(l_ap), "unlabelled": l_u.detach()})

            # debiasing priors: EMA of the plain softmax over this batch's selected / unselected samples
            self.prior[k] = ema_prior(self.prior[k], probs[k][idx_l], cfg.bias_m)
            self.prior_u[k] = ema_prior(self.prior_u[k], probs[k][idx_u], cfg.bias_m)

        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        losses["loss"] = total.detach()
        with torch.no_grad():
            target = torch.stack(
                [torch.where(selected[k], targets[k].argmax(1), torch.full_like(y, -1)) for k in range(2)]
            )
        return {"losses": losses, "mhcs": mhcs, "lga": lga, "target": target, "terms": terms}

    def _labelled_losses(
        self,
        ctx: Context,
        net,
        head: str,
        x_w: torch.Tensor,
        logits_w: torch.Tensor,
        logits_s: torch.Tensor,
        targets: torch.Tensor,
        idx: torch.Tensor,
        prior: torch.Tensor,
        w: float,
        rng: np.random.Generator,
        gen: torch.Generator,
    ) -> dict:
        """``CE(weak) + w·[CE(strong) + mixup + FMix]`` of one head on the clean set ``idx``, logit-adjusted with
        ``prior``; zeros (and no extra forward) when the set is empty.  ``draws`` holds the mixup and FMix draws
        (``lam``, ``perm``; ``lam_fmix``, ``mask``, ``perm_fmix``)."""
        cfg = self.config
        zero = torch.zeros((), device=ctx.device)
        if len(idx) == 0:
            return {"ce": zero, "cr": zero, "mix": zero, "fmix": zero, "total": zero, "draws": {}}
        alpha = cfg.debias_output
        t = targets[idx]
        ce = soft_cross_entropy(logit_adjust(logits_w[idx], prior, alpha), t)
        cr = soft_cross_entropy(logit_adjust(logits_s[idx], prior, alpha), t)

        def forward(x: torch.Tensor) -> torch.Tensor:
            with autocast(ctx.device, cfg.precision):
                logits, pseudo, _ = net.forward_heads(x)
            return (logits if head == "primary" else pseudo).float()

        x = x_w[idx]
        # mixup inside the clean set, λ ~ Beta(4, 4) folded to >= 0.5, soft targets
        lam = mixup_lambda(rng, cfg.mixup_alpha)
        perm = torch.randperm(len(idx), device=ctx.device, generator=gen)
        mixed = forward(lam * x + (1.0 - lam) * x[perm])
        mix = soft_cross_entropy(logit_adjust(mixed, prior, alpha), lam * t + (1.0 - lam) * t[perm])
        # FMix: one hard Fourier mask for the batch, hard labels of both partners weighted by λ
        if x.dim() == 4:
            lam_f = float(rng.beta(cfg.fmix_alpha, cfg.fmix_alpha))
            mask = fmix_mask(lam_f, tuple(x.shape[-2:]), cfg.fmix_decay_power, gen, ctx.device)
            perm_f = torch.randperm(len(idx), device=ctx.device, generator=gen)
            adj = logit_adjust(forward(mask * x + (1.0 - mask) * x[perm_f]), prior, alpha)
            y_t = t.argmax(1)
            fmix = lam_f * F.cross_entropy(adj, y_t) + (1.0 - lam_f) * F.cross_entropy(adj, y_t[perm_f])
            draws = {"lam": lam, "perm": perm, "lam_fmix": lam_f, "mask": mask, "perm_fmix": perm_f}
        else:  # flat features have no image plane to mask
            fmix = zero
            draws = {"lam": lam, "perm": perm}
        return {"ce": ce, "cr": cr, "mix": mix, "fmix": fmix, "total": ce + w * (cr + mix + fmix), "draws": draws}

    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """The preset of a paper setting: ``("cifar10", "symmetric-inclusive:0.5") -> "cifar10-sym50"``,
        ``("cifar10", "cifar10n:worst") -> "cifar10n-worst"``; digits always get ``"digits"``; else ``None``."""
        dataset = str(dataset).lower()
        if dataset == "digits":
            return "digits"
        if noise is None or ":" not in str(noise):
            return None
        kind, _, arg = str(noise).lower().replace(" ", "").partition(":")
        for name, s in cls.SETTINGS.items():
            s_kind, _, s_arg = s["noise"].partition(":")
            if s["dataset"] != dataset or s_kind != kind:
                continue
            if kind in ("cifar10n", "cifar100n"):
                if arg == s_arg:
                    return name
                continue
            try:
                if math.isclose(float(arg), float(s_arg), abs_tol=1e-9):
                    return name
            except ValueError:
                return None
        return None

    # ------------------------------------------------------------------ schedules
    def num_epochs(self) -> int:
        """``epochs + 1``: the official loop is ``for epoch in range(num_epochs + 1)``."""
        return self.config.epochs + 1

    def phase(self, epoch: int) -> str:
        return "warmup" if epoch < self.config.warm_up else "ssl"

    def learning_rate(self, epoch: int) -> float:
        cfg = self.config
        return cosine_lr(cfg.lr, epoch, cfg.epochs, min_lr=cfg.lr * cfg.min_lr_factor)

    def ramp(self, epoch: int) -> float:
        """``w(e) = min(e / rampup_length, 1)``, counted from epoch 0 (warm-up included)."""
        length = self.config.rampup_length
        return 1.0 if length <= 0 else float(min(epoch / length, 1.0))

    def selection_ratio(self, epoch: int) -> float:
        cfg = self.config
        end = cfg.rho if cfg.rho_end is None else cfg.rho_end
        return cfg.rho + (end - cfg.rho) * self.ramp(epoch)

    def unlabelled_ramp_length(self) -> float:
        """``L_β``: ``pl_rampup``, or officially ``2 · rampup_length`` (``2*warmup_ep`` in ``Train_promix.py``)."""
        cfg = self.config
        return 2.0 * cfg.rampup_length if cfg.pl_rampup is None else float(cfg.pl_rampup)

    def unlabelled_weight(self, epoch: int) -> float:
        """``β(e)`` of the pseudo head's unlabelled loss: ``pl_weight·min(e / L_β, 1)``, 0 from ``e = L_β``
        (official: 0.1 ramped over 100 epochs, off from 100); ``1`` for the whole run when ``debias_pl = 0``."""
        cfg = self.config
        if cfg.debias_pl == 0:  # the official code's other branch: a constant weight of 1, never switched off
            return 1.0
        length = self.unlabelled_ramp_length()
        if cfg.pseudo_head_unlabeled_off and epoch >= length:
            return 0.0
        return cfg.pl_weight * (1.0 if length <= 0 else min(epoch / length, 1.0))

    def lga_start(self) -> int | None:
        """The last epoch without LGA, ``epochs − start_expand`` (LGA runs for ``e >`` it); ``None``: never."""
        cfg = self.config
        return None if cfg.start_expand is None else cfg.epochs - cfg.start_expand

    def lga_active(self, epoch: int) -> bool:
        start = self.lga_start()
        return start is not None and epoch > start

    def networks(self):
        return list(self.nets)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "prior": self.prior.clone(), "prior_u": self.prior_u.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.prior = state["prior"].to(self.prior.device)
        self.prior_u = state["prior_u"].to(self.prior_u.device)

    def evaluate(self, ctx: Context) -> dict[str, float]:
        """Acc Mean (``test_acc``: mean of the primary-head logits), each network's primary head and pseudo head."""
        c = ctx.num_classes

        def both_heads(net, x):
            logits, pseudo, _ = net.forward_heads(x)
            return torch.cat([logits, pseudo], 1)

        outs = [
            predict(
                net, ctx.data, "test", self.config.eval_batch_size, self.config.evaluation_precision, forward=both_heads
            )
            for net in self.nets
        ]
        y = ctx.data.y_test
        record = {}
        for k, out in enumerate(outs):
            record[f"test_acc_net{k + 1}"] = accuracy(out[:, :c], y)
            record[f"test_acc_ap_net{k + 1}"] = accuracy(out[:, c:], y)
        record["test_acc"] = accuracy((outs[0][:, :c] + outs[1][:, :c]) / 2, y)
        return record


# ---------------------------------------------------------------------------------------------- the pieces
def class_wise_small_loss_selection(
    losses: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    rho: float,
    num_classes: int,
    quota: str = "balanced",
) -> np.ndarray:
    """CSS: per class, the smallest-loss samples (official ``Train_promix.py``).

    Parameters
    ----------
    losses : array (N,)
        Per-sample losses (ProMix min-max normalises them first, which does not change the ranking).
    labels : int array (N,)
        The labels that define the class subsets ``S_j`` (the given labels; the IDN variant uses predictions).
    rho : float
        Selection ratio in [0, 1].
    num_classes : int
    quota : {"balanced", "per_class"}
        ``"balanced"`` (official): ``k_j = max(1, min(⌈ρ·N/C⌉, |S_j|))``; ``"per_class"``:
        ``k_j = max(1, min(⌈ρ·|S_j|⌉, |S_j|))``.  An empty class selects nothing.

    Returns
    -------
    ndarray bool (N,)
        ``True`` for the selected samples; ties are broken by index.
    """
    if quota not in ("balanced", "per_class"):
        raise ValueError(f"quota must be 'balanced' or 'per_class', got {quota!r}")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    losses = losses.detach().cpu().numpy() if torch.is_tensor(losses) else np.asarray(losses)
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if losses.shape != labels.shape:
        raise ValueError(f"losses {losses.shape} and labels {labels.shape} must have the same shape")
    n = len(losses)
    mask = np.zeros(n, dtype=bool)
    balanced = math.ceil(rho * n / num_classes)
    for j in range(num_classes):
        idx = np.flatnonzero(labels == j)
        if len(idx) == 0:
            continue
        k = balanced if quota == "balanced" else math.ceil(rho * len(idx))
        k = max(1, min(k, len(idx)))
        mask[idx[np.argsort(losses[idx], kind="stable")[:k]]] = True
    return mask


def matched_high_confidence(probs: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """MHCS: ``p_i[ỹ_i] > τ`` (official ``Train_promix.py``).

    For ``τ ≥ 0.5`` this is "the most confident class is the given label and its probability exceeds ``τ``".

    Parameters
    ----------
    probs : Tensor (B, C)
        The network's plain softmax on the weak view.
    labels : Tensor int64 (B,)
        Given labels.
    tau : float

    Returns
    -------
    Tensor bool (B,)
    """
    return probs.gather(1, labels[:, None]).squeeze(1) > tau


def label_guessing_by_agreement(
    probs_a: torch.Tensor, probs_b: torch.Tensor, selected: torch.Tensor, tau: float, threshold: float = 0.9
) -> torch.Tensor:
    """LGA: the unselected samples that join a network's clean set by the two networks' agreement.

    When ``|L| / B < threshold``, candidates are the samples outside ``L`` on which both networks' plain maximum
    probability exceeds ``τ`` and whose argmaxes agree; at most ``⌊threshold·B⌋ − |L|`` of them are taken, those with
    the highest mean of the two maximum probabilities first (ties by position).

    Parameters
    ----------
    probs_a, probs_b : Tensor (B, C)
        Both networks' plain softmax on the weak view.
    selected : Tensor bool (B,)
        This network's current clean set ``L`` (CSS ∪ MHCS).
    tau, threshold : float

    Returns
    -------
    Tensor bool (B,)
        The added samples (disjoint from ``selected``).
    """
    b = len(selected)
    added = torch.zeros_like(selected)
    n_sel = int(selected.sum())
    cap = int(math.floor(threshold * b)) - n_sel
    if b == 0 or n_sel / b >= threshold or cap <= 0:
        return added
    conf_a, pred_a = probs_a.max(1)
    conf_b, pred_b = probs_b.max(1)
    candidate = ~selected & (conf_a > tau) & (conf_b > tau) & (pred_a == pred_b)
    score = torch.where(candidate, (conf_a + conf_b) / 2, torch.full_like(conf_a, -1.0))
    take = torch.argsort(score, descending=True, stable=True)[:cap]
    added[take] = candidate[take]
    return added


def negative_entropy_clamped(logits: torch.Tensor) -> torch.Tensor:
    """The official warm-up penalty as coded: ``Σ p log p`` of ``softmax(max(z, 1e-12))`` — the logits, not the
    probabilities, are clamped, so every negative logit counts as 0 (``fix_negentropy_clamp=False``).
    """
    p = logits.clamp_min(1e-12).softmax(1)
    return (p * torch.log(p)).sum(1).mean()


def debiased_probs(logits: torch.Tensor, prior: torch.Tensor, strength: float) -> torch.Tensor:
    """Pseudo-label distribution of ProMix: ``softmax(z − β_pl · log π)`` for logits (B, C) and a prior (C,)."""
    return logit_adjust(logits, prior, -strength).softmax(1)


def _detached(terms: dict) -> dict:
    """A head's loss terms without their graph (the draws are kept as they are)."""
    return {key: value if key == "draws" else value.detach() for key, value in terms.items()}

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

SMR is DivideMix with (1) and (2) switched on (:class:`SMR`); every other line is shared.  Official-code quirks
sit behind named ``faithful_*`` switches that keep the official behaviour by default (``faithful_train_mode_guess``,
``faithful_lambda_u0_mixing``); those switches, the kit's deviations (seeded GMM, per-(seed, epoch, stream)
generators, exact resume) and the reported number (``reported_as = "ensemble_acc_last"``) are described in
docs/methods/dividemix_smr.md#switches-faithful-vs-fixed and the sections after it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.presets import PresetTable
from lnlkit.train.augment import Augment
from lnlkit.train.device import backward_step
from lnlkit.train.evaluate import autocast, predict_train_subset
from lnlkit.train.loader import Batch, class_balanced_subset, stream_numpy_generator
from lnlkit.train.losses import (
    mixup,
    mixup_cross_entropy,
    mixup_lambda,
    negative_entropy,
    one_hot,
    sharpen,
    soft_cross_entropy,
    uniform_prior_penalty,
)
from lnlkit.train.meter import mean_per_step
from lnlkit.train.schedules import linear_rampup, multistep_lr, set_lr
from lnlkit.train.selection import gmm_split, min_max_normalise
from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive, check_range

__all__ = ["DivideMixConfig", "SMRConfig", "DivideMix", "SMR"]


@dataclass
class DivideMixConfig(MethodConfig):
    """Hyperparameters of DivideMix (defaults: the official CIFAR-10 script, ``Train_cifar.py``).

    Each field's reading: docs/methods/dividemix_smr.md#configuration."""

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
        check_positive(self, "lr", "alpha", "temperature")
        check_choice(self, "warmup_loss", ("ce", "mixup"), "ce: DivideMix, mixup: SMR")
        check_int(self, "recal_period", "epoch_subset", low=1, optional=True)
        check_int(self, "warm_up", low=0)
        check_int(self, "loss_history", low=1)
        check_range(self, "p_threshold", low=0.0, high=1.0)
        check_non_negative(self, "lambda_u", "rampup_length")
        if self.labelled_only and self.lambda_u != 0:
            raise ValueError(f"labelled_only drops the unlabelled loss; it needs lambda_u=0, got {self.lambda_u}")
        if self.epoch_subset is not None and self.loss_history > 1:
            raise ValueError(
                "loss_history > 1 averages per-sample losses over epochs and cannot be combined "
                "with epoch_subset (each epoch partitions a different sample)"
            )


# ---------------------------------------------------------------------------------------------------- the method
class DivideMix(Method):
    """DivideMix: co-divide with per-network GMMs, co-refinement, co-guessing and MixMatch (module docstring)."""

    name = "dividemix"
    Config = DivideMixConfig
    PRESETS = PresetTable("lnlkit.presets.dividemix")
    CIFAR_SETTINGS = PresetTable("lnlkit.presets.dividemix", "CIFAR_SETTINGS")  # drives preset_for
    reported_as = "ensemble_acc_last"
    supports_fp16 = True
    data_pipeline = "dividemix"
    PRETRAINED_PRESETS = frozenset({"clothing1m"})  # official Train_clothing1M.py: resnet50(pretrained=True)
    REAL_NOISE_DATASETS: ClassVar[tuple[str, ...]] = ("animal10n", "clothing1m", "webvision")

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

    # ------------------------------------------------------------------ setup and state
    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.nets = [ctx.build_model(cfg.model, weights_path=cfg.weights_path) for _ in range(2)]
        self.optimizers = [
            torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
            for net in self.nets
        ]
        self.augment = Augment(cfg.crop_padding, cfg.flip) if ctx.data.is_image else None
        # last `loss_history` normalised per-sample loss vectors of each network (CPU float32), SSL epochs only
        self.loss_buffers: list[list[torch.Tensor]] = [[], []]

    # ------------------------------------------------------------------ 1. warm-up
    def warmup_batch_size(self) -> int:
        """The warm-up's batch: 2B, as the official ``Train_cifar.py`` (its warm-up loader doubles the batch)."""
        return 2 * self.config.batch_size

    def warm_up(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """Each network, in turn, one epoch on all samples with the given labels (batch :meth:`warmup_batch_size`,
        2B): CE (+ confidence penalty if ``asym_penalty``) for DivideMix, mixup CE for SMR."""
        cfg = self.config
        stats = []
        for k, (net, opt) in enumerate(zip(self.nets, self.optimizers)):
            pool = None
            if cfg.epoch_subset:  # Clothing1M: a fresh class-balanced sample of num_batches · 2B images
                pool = (
                    class_balanced_subset(
                        ctx.data.labels,
                        2 * cfg.epoch_subset,
                        ctx.num_classes,
                        ctx.generator(epoch, f"warmup/subset/net{k + 1}"),
                    )
                    .cpu()
                    .numpy()
                )
            loader = ctx.data.loader(
                self.warmup_batch_size(), indices=pool, augment=self.augment, stream=f"warmup/net{k + 1}"
            )
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
            pool = class_balanced_subset(
                ctx.data.labels, cfg.epoch_subset, ctx.num_classes, ctx.generator(epoch, "recal/subset")
            )
            for net, opt in zip(self.nets, self.optimizers):
                batches = (
                    Batch(idx, (x,), ctx.data.labels[idx])
                    for idx, x in ctx.data.iter_train_subset(pool, cfg.batch_size)
                )
                stats.append(self._supervised_epoch(ctx, net, opt, batches, "plain", None, None))
        else:
            for k, (net, opt) in enumerate(zip(self.nets, self.optimizers)):
                loader = ctx.data.loader(2 * cfg.batch_size, augment=self.augment, stream=f"recal/net{k + 1}")
                stats.append(self._supervised_epoch(ctx, net, opt, loader.epoch(epoch), "plain", None, None))
        return self._supervised_record(stats), self._loss_signals(ctx, epoch)

    def _supervised_epoch(
        self,
        ctx: Context,
        net,
        opt,
        batches: Iterator[Batch],
        loss_kind: str,
        rng: np.random.Generator | None,
        gen: torch.Generator | None,
    ) -> dict:
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

    def supervised_step(
        self,
        ctx: Context,
        net,
        opt,
        x: torch.Tensor,
        y: torch.Tensor,
        loss_kind: str,
        rng: np.random.Generator | None,
        gen: torch.Generator | None,
    ) -> dict[str, torch.Tensor]:
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
        return {
            "loss": self.normalised_losses(ctx, self.nets[0], pool),
            "loss_net2": self.normalised_losses(ctx, self.nets[1], pool),
        }

    # ------------------------------------------------------------------ 3. SSL epoch
    def ssl_epoch(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """Co-divide, then train net1 on net2's partition and net2 on net1's partition."""
        # (a) co-divide: both networks' clean probabilities, before either network trains this epoch
        pools = [self.partition_pool(ctx, epoch, k) for k in range(2)]
        divisions = [self.clean_probability(ctx, k, pools[k]) for k in range(2)]
        # (b) each network learns from the partition the *other* network made
        stats = [
            self.train_ssl(ctx, epoch, k=0, pool=pools[1], prob=divisions[1][0]),
            self.train_ssl(ctx, epoch, k=1, pool=pools[0], prob=divisions[0][0]),
        ]

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
        return class_balanced_subset(
            ctx.data.labels, self.config.epoch_subset, ctx.num_classes, ctx.generator(epoch, f"ssl/subset/net{k + 1}")
        )

    def normalised_losses(self, ctx: Context, net, pool: torch.Tensor) -> np.ndarray:
        """Per-sample CE of the given labels (eval mode, no augmentation), min-max normalised over ``pool``."""
        logits = predict_train_subset(
            net, ctx.data, pool, self.config.eval_batch_size, self.config.evaluation_precision
        )
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
            self.loss_buffers[k] = (self.loss_buffers[k] + [losses])[-cfg.loss_history :]
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
        labelled_loader = ctx.data.loader(
            cfg.batch_size, indices=labelled_idx.cpu().numpy(), augment=views, stream=f"ssl/labelled/{tag}"
        )
        use_unlabelled = len(unlabelled_idx) > 0 and (not cfg.labelled_only or cfg.faithful_lambda_u0_mixing)
        unlabelled_batches = (
            self._cycle(ctx, unlabelled_idx, views, epoch, f"ssl/unlabelled/{tag}") if use_unlabelled else None
        )
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

    def ssl_step(
        self,
        ctx: Context,
        k: int,
        x1: torch.Tensor,
        x2: torch.Tensor,
        labels: torch.Tensor,
        w: torch.Tensor,
        u1: torch.Tensor,
        u2: torch.Tensor,
        lambda_u: float,
        rng: np.random.Generator,
        gen: torch.Generator,
    ) -> dict[str, torch.Tensor]:
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
                p_u = (
                    net(u1).float().softmax(1)
                    + net(u2).float().softmax(1)
                    + partner(torch.cat([u1, u2])).float().softmax(1).view(2, len(u1), C).sum(0)
                ) / 4
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
        mixed_inputs, mixed_targets = mixup(inputs[: len(perm)], targets[: len(perm)], lam, perm)
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
        return {
            "loss": loss.detach(),
            "loss_x": loss_x.detach(),
            "loss_u": loss_u.detach(),
            "penalty": penalty.detach(),
            "targets_x": targets_x,
            "targets_u": targets_u,
        }

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
        for name, s in cls.CIFAR_SETTINGS.items():
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

    def networks(self):
        return list(self.nets)

    def state_dict(self) -> dict:
        return {
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "loss_buffers": [[t.clone() for t in buf] for buf in self.loss_buffers],
        }

    def load_state_dict(self, state: dict) -> None:
        for opt, sd in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(sd)
        self.loss_buffers = [[t.clone() for t in buf] for buf in state["loss_buffers"]]


@dataclass
class SMRConfig(DivideMixConfig):
    """SMR's defaults (official ``Train_cifar.py`` of SMR): DivideMix with a mixup-CE warm-up, recalibration every
    30 epochs and batch 128.  See :class:`DivideMixConfig` for every field."""

    batch_size: int = 128
    warmup_loss: str = "mixup"
    recal_period: int | None = 30


class SMR(DivideMix):
    """SMR: DivideMix with a mixup-CE warm-up and periodic plain-CE recalibration epochs (same code path)."""

    name = "smr"
    Config = SMRConfig
    PRESETS = PresetTable("lnlkit.presets.dividemix", "SMR_PRESETS")

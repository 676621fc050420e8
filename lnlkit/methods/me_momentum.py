"""Me-Momentum (Bai & Liu, ICCV 2021): extract hard confident examples by alternating confident-set extraction and
classifier refinement, with early stopping on a noisy held-out set.

Docs: docs/methods/me_momentum.md (quirks P-M1…P-M7). MNIST / CIFAR (the official ``main.py``, ``variant="noisy_val"``):

0. **Hold-out.**  10% of the noisy training set is held out at random (``val_fraction``; ``RandomState(seed)``, a
   choice without replacement).  Its labels stay noisy.  The validation metric is the **class-balanced accuracy
   against the noisy labels** (mean of the per-class accuracies, in %, rounded to 2 decimals), computed on images
   with the *training* augmentation (quirk P-M2, switch ``val_transform``), in eval mode (as ``tools.py``).
1. **Outer loop** (``outer_loops = 3``, all run).  A new network (SGD lr 0.01, momentum 0.9, wd 1e-4) is trained on
   the training set: the whole 90% in the first outer loop, the *last confident set* in the later ones.
2. **Phase A** (up to ``max_phase_a_epochs = 100``, constant lr) with the **growing-margin early stopping** (P-M3):
   an epoch counts when ``v > best + margin``; then ``best = v``, the model is saved as "latest" and the margin is
   reset to 0; otherwise the margin grows by 0.1; phase A stops once ``margin > 2`` (after 20 stale epochs, with the
   official float accumulation).
3. **Inner rounds** (up to ``max_inner_rounds = 19``): reload "latest", re-extract the **confident set** — every
   training sample whose predicted class equals its noisy label (predicted on augmented images in the official
   code, P-M1, switch ``extract_transform``; eval mode, as ``tools.py``) —
   and train ``round_epochs = 100`` epochs on it with a fresh SGD whose
   lr drops ×0.1 at epochs 40 and 80.  An epoch with ``v > best`` (no margin) saves "latest", and a new **global**
   best validation accuracy records the test accuracy.  A round that does not raise ``best`` above the previous
   round's ends the inner loop; ``best`` carries over from phase A and the previous round starts at 0, so at least
   two rounds run.
4. **Reported**: the test accuracy at the best noisy-validation accuracy (``reported_as = "test_at_best_val"``).
   Only inner-round epochs can set it, as in the official code.  Should no round epoch ever beat its phase A's
   best (the official script then reports its initial 0), lnlkit reports the test accuracy at the best validation
   accuracy of any epoch and marks the records ``reported_fallback`` (kit choice).

Clothing1M (``Clothing.py``, ``variant="per_class"``): no hold-out and no phase A; 3 outer loops × 6 rounds × 5
epochs on a class-weighted CE (``w_c = (mean n^train / n_c^train) · (n_c^val / mean n^val)``, recomputed whenever
the training set changes), lr ×0.1 at epochs 10 and 20 counted within the outer loop.  After each epoch the
per-class score ``β·recall + (1 − β)·precision`` (β = 0.45) on the clean validation set decides, class by class,
the best model so far in this outer loop; after each round the training set is rebuilt class by class: the
*original* training samples with noisy label c that c's best model predicts as c.  lnlkit keeps the per-class best
models' predictions on those samples (made when the class improves) instead of a checkpoint per epoch (P-M5).  The
model is not reloaded between rounds; each outer loop restarts from the (pretrained) initial weights on the carried
over training set.  Reported: test accuracy at the best clean-validation accuracy.

The epoch-based driver (:class:`LoopState`), the switches, the signals and the kit choices:
docs/methods/me_momentum.md#implementation-notes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.presets import PresetTable
from lnlkit.train.augment import Augment
from lnlkit.train.evaluate import autocast, class_balanced_accuracy, per_class_recall_precision, predict
from lnlkit.train.loader import random_holdout, stream_seed
from lnlkit.train.meter import mean_per_step
from lnlkit.train.schedules import multistep_lr, set_lr
from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive, check_range

__all__ = [
    "MeMomentumConfig",
    "MeMomentum",
    "LoopState",
    "LoopEvents",
    "early_stopping_step",
    "advance_noisy_val",
    "advance_per_class",
    "confident_mask",
    "clothing_class_weights",
    "per_class_scores",
]

TRANSFORMS = ("train", "test")
VARIANTS = ("noisy_val", "per_class")


@dataclass
class MeMomentumConfig(MethodConfig):
    """Hyperparameters of Me-Momentum (defaults: the official CIFAR-10 ``main.py``).

    Each field's reading: docs/methods/me_momentum.md#configuration."""

    epochs: int = 0
    batch_size: int = 128
    model: str = "auto"
    variant: str = "noisy_val"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    outer_loops: int = 3
    max_phase_a_epochs: int = 100
    margin_step: float = 0.1
    margin_limit: float = 2.0
    max_inner_rounds: int = 19
    round_epochs: int = 100
    round_milestones: tuple[int, ...] = (40, 80)
    lr_gamma: float = 0.1
    beta: float = 0.45
    class_weighted: bool = False
    crop_padding: int = 4
    flip: bool = True
    extract_transform: str = "train"
    val_transform: str = "train"
    stem_padding: int = 0
    record_train_loss: bool = True
    weights_path: str | None = None

    def validate(self) -> None:
        super().validate()
        check_choice(self, "variant", VARIANTS, "noisy_val: MNIST/CIFAR main.py, per_class: Clothing.py")
        check_positive(self, "lr", "margin_step")
        check_range(self, "val_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
        check_int(self, "outer_loops", "max_phase_a_epochs", "max_inner_rounds", "round_epochs", low=1)
        check_non_negative(self, "margin_limit")
        check_range(self, "beta", low=0.0, high=1.0)
        for name in ("extract_transform", "val_transform"):
            check_choice(self, name, TRANSFORMS, "train: augmented images, as the official code")
        check_choice(self, "stem_padding", (0, 1), "0: the official quirk, 1: standard")
        if any(not isinstance(m, int) or m < 0 for m in self.round_milestones):
            raise ValueError(f"round_milestones must be non-negative integers, got {self.round_milestones!r}")


# ---------------------------------------------------------------------------------------------------- the method
class MeMomentum(Method):
    """Me-Momentum: early-stopped training, confident-set extraction and retraining in nested loops (module
    docstring)."""

    name = "mememomentum"
    Config = MeMomentumConfig
    PRESETS = PresetTable("lnlkit.presets.me_momentum")
    reported_as = "test_at_best_val"
    data_pipeline = "mememomentum"  # CIFAR: DivideMix's statistics; Clothing1M: ImageNet's (official Clothing.py)
    PRETRAINED_PRESETS = frozenset({"clothing1m"})  # official Clothing.py: resnet50(pretrained=True)
    REAL_NOISE_DATASETS = ("clothing1m",)

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        cfg = self.config
        if getattr(self, "_ctx_weights_stale", False):  # after a resume: the weights follow the restored set
            self.class_weights, self._ctx_weights_stale = self._class_weights(ctx), False
        before = self.loop
        record: dict = {}
        if cfg.variant == "per_class":
            self.per_class_epoch_start(ctx, before, record)
        else:
            self.noisy_val_epoch_start(ctx, epoch, before, record)
        lr = self.learning_rate(before)
        set_lr(self.optimizer, lr)
        loss, steps = self.train_on_set(ctx, epoch)

        if cfg.variant == "per_class":
            val = self.per_class_epoch_end(ctx, epoch, record)
            self.loop, events = advance_per_class(before, val, cfg)
        else:
            val = self.noisy_validation_accuracy(ctx, epoch)
            self.loop, events = advance_noisy_val(before, val, cfg)
            if events.save_best:  # "latest" = this epoch's model
                self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        record.update(
            {
                "phase": before.phase,
                "outer": before.outer,
                "round": before.round,
                "epoch_in_phase": before.step,
                "lr": lr,
                "loss": loss,
                "steps": steps,
                "n_train_set": int(len(self.train_set)),
                "val_acc": val,
                "best_val": events.best_val,
                "best_val_global": self.loop.best_val_global,
                "new_global_best": events.new_global_best,
                "saved_best": events.save_best,
                "round_ended": events.round_ended,
                "round_improved": events.round_improved,
                "outer_ended": events.outer_ended,
            }
        )
        record["reported_fallback"] = self.loop.best_val_global == 0.0 and not events.new_global_best
        if before.phase == "phase_a":
            record["margin"] = events.margin
            record["phase_a_stopped"] = events.phase_a_stopped
        return EpochOutput(record, self.signals(ctx) if ctx.records_signals(epoch) else {})

    # ------------------------------------------------------------------ setup and state
    def setup(self, ctx: Context) -> None:
        cfg = self.config
        self.num_classes = ctx.num_classes
        self.net = self.fresh_network(ctx, outer=0)
        self.optimizer = self._sgd()
        self.augment = Augment(cfg.crop_padding, cfg.flip) if ctx.data.is_image else None
        self.loop = LoopState(phase="round", round=1) if cfg.variant == "per_class" else LoopState()
        self.best_state: dict | None = None  # "latest": the best model of the current outer loop (noisy_val)
        if cfg.variant == "per_class":
            if not ctx.data.has_val:
                raise ValueError(
                    "variant='per_class' (Clothing1M) selects models on a clean validation set, but "
                    f"the data set {ctx.dataset_name!r} has none (Dataset.x_val); use the "
                    "'noisy_val' variant"
                )
            self.train_pool = torch.arange(ctx.n_train, device=ctx.device)
            self.val_idx = None
            self.class_best = torch.full((ctx.num_classes,), -1.0)  # best per-class score in this outer loop
            self.class_keep = torch.ones(ctx.n_train, dtype=torch.bool)  # pred == label under c's best model
        else:
            train_idx, val_idx = random_holdout(ctx.n_train, cfg.val_fraction, ctx.seed)
            if len(train_idx) == 0 or len(val_idx) == 0:
                raise ValueError(
                    f"the noisy hold-out of {ctx.n_train} samples with val_fraction="
                    f"{cfg.val_fraction} leaves an empty training or validation set"
                )
            self.train_pool = torch.as_tensor(train_idx, device=ctx.device)
            self.val_idx = torch.as_tensor(val_idx, device=ctx.device)
        self.train_set = self.train_pool.clone()  # what the network trains on: all of the pool, then confident sets
        self.class_weights = self._class_weights(ctx)

    # ------------------------------------------------------------------ main.py: phase A and inner rounds
    def noisy_val_epoch_start(self, ctx: Context, epoch: int, state: LoopState, record: dict) -> None:
        """First epoch of a phase A: a new network and optimiser (outer loops after the first train on the last
        confident set, which ``train_set`` still holds).  First epoch of a round: reload "latest", a new optimiser,
        and extract the confident set over the whole training pool."""
        if state.step != 0:
            return
        if state.phase == "phase_a":
            if state.outer > 0:
                self.net.load_state_dict(self.fresh_network(ctx, state.outer).state_dict())
            self.optimizer = self._sgd()
            return
        if self.best_state is not None:  # (None only if no epoch ever improved: keep the current model)
            self.net.load_state_dict(self.best_state)
        self.optimizer = self._sgd()
        previous = self.train_set
        self.train_set = self.extract_confident_set(ctx, epoch)
        added = ~torch.isin(self.train_set, previous)
        record["n_extracted"] = int(len(self.train_set))
        record["n_added"] = int(added.sum())
        record["n_dropped"] = int((~torch.isin(previous, self.train_set)).sum())

    def extract_confident_set(self, ctx: Context, epoch: int) -> torch.Tensor:
        """Indices of the training pool whose predicted class (augmented images under the official
        ``extract_transform="train"``) equals the noisy label.

        Returns
        -------
        Tensor int64 (M,), sorted, on the device
        """
        pool = self.train_pool
        pred = self._predict(ctx, pool, self.config.extract_transform == "train", epoch, "extract").argmax(1)
        return pool[confident_mask(pred, ctx.data.labels[pool])]

    def noisy_validation_accuracy(self, ctx: Context, epoch: int) -> float:
        """Class-balanced accuracy (%) against the noisy labels of the hold-out, rounded to 2 decimals."""
        pred = self._predict(ctx, self.val_idx, self.config.val_transform == "train", epoch, "val").argmax(1)
        return round(class_balanced_accuracy(pred, ctx.data.labels[self.val_idx], ctx.num_classes), 2)

    def _predict(self, ctx: Context, indices: torch.Tensor, augmented: bool, epoch: int, stream: str) -> torch.Tensor:
        """Eval-mode logits of the training samples ``indices`` (in order), optionally on augmented images.

        Returns
        -------
        Tensor float32 (len(indices), C)
        """
        cfg = self.config
        augment = self.augment if augmented else None
        loader = ctx.data.loader(
            cfg.eval_batch_size, indices=indices.cpu().numpy(), augment=augment, shuffle=False, stream=stream
        )
        was_training = self.net.training
        self.net.eval()
        outs = []
        try:
            with torch.no_grad():
                for batch in loader.epoch(epoch):
                    with autocast(ctx.device, cfg.evaluation_precision):
                        outs.append(self.net(batch.x).float())
        finally:
            self.net.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0, ctx.num_classes, device=ctx.device)

    # ------------------------------------------------------------------ Clothing.py: per-class selection
    def per_class_epoch_start(self, ctx: Context, state: LoopState, record: dict) -> None:
        """First epoch of a round after the first: rebuild the training set class by class from the per-class
        best models' predictions; first epoch of a later outer loop: also a fresh network and optimiser, and the
        per-class bests start over."""
        if state.step != 0 or (state.outer == 0 and state.round == 1):
            return
        previous = self.train_set
        self.train_set = self.train_pool[self.class_keep.to(ctx.device)[self.train_pool]]
        record["n_extracted"] = int(len(self.train_set))
        record["n_added"] = int((~torch.isin(self.train_set, previous)).sum())
        record["n_dropped"] = int((~torch.isin(previous, self.train_set)).sum())
        self.class_weights = self._class_weights(ctx)
        if state.round == 1:  # a new outer loop
            self.net.load_state_dict(self.fresh_network(ctx, state.outer).state_dict())
            self.optimizer = self._sgd()
            self.class_best = torch.full((ctx.num_classes,), -1.0)

    def per_class_epoch_end(self, ctx: Context, epoch: int, record: dict) -> float:
        """Per-class scores on the clean validation set; for every class whose score improved, remember which of
        its original training samples this model predicts as that class.  Returns the overall validation accuracy
        (%)."""
        cfg = self.config
        pred = predict(self.net, ctx.data, "val", cfg.eval_batch_size, cfg.evaluation_precision).argmax(1)
        labels = ctx.data.y_val
        scores = per_class_scores(pred, labels, ctx.num_classes, cfg.beta).cpu()
        improved = scores > self.class_best
        self.class_best = torch.where(improved, scores, self.class_best)
        if bool(improved.any()):
            given = ctx.data.labels
            members = torch.nonzero(improved.to(given.device)[given]).flatten()
            member_pred = self._predict(ctx, members, cfg.extract_transform == "train", epoch, "extract").argmax(1)
            self.class_keep[members.cpu()] = confident_mask(member_pred, given[members]).cpu()
        record["n_class_improved"] = int(improved.sum())
        record["val_class_score"] = float(scores.mean())
        return round(float((pred == labels).float().mean()) * 100.0, 2) if len(labels) else 0.0

    # ------------------------------------------------------------------ shared: one pass of (weighted) CE
    def train_on_set(self, ctx: Context, epoch: int) -> tuple[float, int]:
        """One epoch of (class-weighted) CE on ``train_set`` with the training augmentation.

        Returns
        -------
        mean loss (NaN when the set is empty), number of steps
        """
        cfg = self.config
        self.net.train()
        total = torch.zeros((), device=ctx.device)
        steps = 0
        loader = ctx.data.loader(
            cfg.batch_size, indices=self.train_set.cpu().numpy(), augment=self.augment, stream="train"
        )
        for batch in loader.epoch(epoch):
            if len(batch.y) < 2:  # a lone last sample: BatchNorm cannot train on a batch of one (kit choice)
                continue
            with autocast(ctx.device, cfg.precision):
                logits = self.net(batch.x).float()
            if self.class_weights is None:
                loss = F.cross_entropy(logits, batch.y)
            else:  # CrossEntropyLoss(weight=w); a batch of zero-weight classes gives 0, not 0/0
                w = self.class_weights[batch.y]
                loss = (w * F.cross_entropy(logits, batch.y, reduction="none")).sum() / w.sum().clamp_min(1e-12)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            steps += 1
        return mean_per_step(total, steps), steps

    # ------------------------------------------------------------------ signals and reporting
    def signals(self, ctx: Context) -> dict:
        """``selected``: the current training set (the confident set after the first extraction); ``holdout``:
        the noisy validation samples; with ``record_train_loss`` also the per-sample ``loss`` (CE of the given
        label), ``confidence`` (softmax probability of the given label), ``pred`` and ``clean_score`` (probability
        of the given label minus the largest other one, higher = cleaner) of the current network (un-augmented, eval
        mode) over all training samples."""
        selected = np.zeros(ctx.n_train, dtype=bool)
        selected[self.train_set.cpu().numpy()] = True
        out = {"selected": selected}
        if self.val_idx is not None:
            holdout = np.zeros(ctx.n_train, dtype=bool)
            holdout[self.val_idx.cpu().numpy()] = True
            out["holdout"] = holdout
        if self.config.record_train_loss:
            logits = predict(self.net, ctx.data, "train", self.config.eval_batch_size, self.config.evaluation_precision)
            labels = ctx.data.labels
            out["loss"] = F.cross_entropy(logits, labels, reduction="none").cpu().numpy()
            out["confidence"] = logits.softmax(1).gather(1, labels[:, None])[:, 0].cpu().numpy()
            out["pred"] = logits.argmax(1).cpu().numpy().astype(np.int16)
            probs = logits.float().softmax(1)
            given = probs.gather(1, labels[:, None])[:, 0]
            other = probs.scatter(1, labels[:, None], float("-inf")).max(1).values
            out["clean_score"] = (given - other).cpu().numpy()
        return out

    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """The preset of a paper setting: one per data set (MNIST / CIFAR-10 / CIFAR-100 for any synthetic noise,
        Clothing1M without injected noise); the embedded digits get ``"digits"``."""
        dataset = str(dataset).lower()
        if dataset in cls.REAL_NOISE_DATASETS:
            return dataset if cls.no_injected_noise(noise) else None
        return dataset if dataset in cls.PRESETS else None

    # ------------------------------------------------------------------ schedule
    def max_epochs(self) -> int:
        """The longest the schedule can run."""
        cfg = self.config
        if cfg.variant == "per_class":
            return cfg.outer_loops * cfg.max_inner_rounds * cfg.round_epochs
        return cfg.outer_loops * (cfg.max_phase_a_epochs + cfg.max_inner_rounds * cfg.round_epochs)

    def num_epochs(self) -> int:
        """An upper bound: ``epochs`` when set, else :meth:`max_epochs`; the run ends earlier when the schedule
        does (:meth:`finished`)."""
        return min(self.config.epochs, self.max_epochs()) if self.config.epochs else self.max_epochs()

    def finished(self) -> bool:
        """True once the last outer loop has ended (the driver then stops before ``num_epochs()``)."""
        loop = getattr(self, "loop", None)
        return loop is not None and loop.phase == "done"

    def learning_rate(self, state: LoopState) -> float:
        """Constant in phase A; ×``lr_gamma`` at ``round_milestones`` of each round (``noisy_val``) or of the outer
        loop (``per_class``)."""
        cfg = self.config
        if cfg.variant == "per_class":
            return multistep_lr(cfg.lr, state.outer_epoch, cfg.round_milestones, cfg.lr_gamma)
        if state.phase == "phase_a":
            return cfg.lr
        return multistep_lr(cfg.lr, state.step, cfg.round_milestones, cfg.lr_gamma)

    def fresh_network(self, ctx: Context, outer: int):
        """A newly initialised network for outer loop ``outer`` (seeded by (seed, outer), so resume is exact)."""
        cfg = self.config
        from lnlkit.models import MODELS

        name = ctx.default_model if cfg.model == "auto" else cfg.model
        key = name.strip().lower().replace("-", "_")  # the registry's spelling: "ResNet18" is "resnet18"
        extra = {}
        if "stem_padding" in MODELS[key].options and key in ("resnet18", "resnet34"):
            extra["stem_padding"] = cfg.stem_padding
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(ctx.seed, f"network/outer{outer}"))
            return ctx.build_model(key, weights_path=cfg.weights_path, **extra)

    def _sgd(self) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.SGD(self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def _class_weights(self, ctx: Context) -> torch.Tensor | None:
        if not self.config.class_weighted:
            return None
        val_labels = ctx.data.y_val if ctx.data.has_val else ctx.data.labels[self.val_idx]
        return clothing_class_weights(ctx.data.labels[self.train_set], val_labels, ctx.num_classes)

    def networks(self):
        return [self.net]

    def state_dict(self) -> dict:
        state = {
            "optimizer": self.optimizer.state_dict(),
            "loop": asdict(self.loop),
            "train_set": self.train_set.cpu().clone(),
            "best_state": None
            if self.best_state is None
            else {k: v.detach().cpu().clone() for k, v in self.best_state.items()},
        }
        if self.config.variant == "per_class":
            state.update(class_best=self.class_best.clone(), class_keep=self.class_keep.clone())
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.loop = LoopState(**state["loop"])
        device = self.train_pool.device
        self.train_set = state["train_set"].to(device)
        self.best_state = (
            None if state["best_state"] is None else {k: v.to(device) for k, v in state["best_state"].items()}
        )
        if self.config.variant == "per_class":
            self.class_best, self.class_keep = state["class_best"].clone(), state["class_keep"].clone()
        self._ctx_weights_stale = True

    def reported_metric(self, history: list[dict]) -> float:
        """Test accuracy of the epoch that set the last new global-best validation accuracy.

        Only inner-round epochs can set it (official).  If none did — no round ever beat the best validation accuracy
        of its phase A, where the official script would print its initial 0 — lnlkit reports the test accuracy at
        the best validation accuracy of any epoch, phase A included (kit choice; ``reported_fallback`` is then True
        in the last record).  NaN for an empty history.
        """
        for record in reversed(history):
            if record.get("new_global_best"):
                return record["test_acc"]
        vals = [(r["val_acc"], -i) for i, r in enumerate(history) if r.get("val_acc") is not None]
        if not vals:
            return float("nan")
        return history[-max(vals)[1]]["test_acc"]


# ---------------------------------------------------------------------------------------------------- the loops
@dataclass
class LoopState:
    """Where the nested loops are, and what they remember (all plain numbers, checkpointed with the method).

    Attributes
    ----------
    outer : int
        Outer loop, 0-based.
    phase : {"phase_a", "round", "done"}
    round : int
        Inner round, 1-based (0 in phase A).
    step : int
        Epoch within the current phase A or round (the next epoch to run).
    outer_epoch : int
        Epoch within the outer loop (``per_class``'s lr schedule).
    best_val : float
        Best validation accuracy of this outer loop (``noisy_val``; carried from phase A into the rounds).
    margin : float
        Phase A's growing margin.
    last_round : float
        ``best_val`` at the end of the previous round (0 before the first).
    best_val_global : float
        Best validation accuracy of the run (the one that sets the reported test accuracy).
    """

    outer: int = 0
    phase: str = "phase_a"
    round: int = 0
    step: int = 0
    outer_epoch: int = 0
    best_val: float = 0.0
    margin: float = 0.0
    last_round: float = 0.0
    best_val_global: float = 0.0


@dataclass
class LoopEvents:
    """What one epoch's validation accuracy decided.

    Attributes
    ----------
    save_best : bool
        Save the model as "latest" (``noisy_val``).
    new_global_best : bool
        A new best validation accuracy of the whole run: its test accuracy is the reported one (so far).
    phase_a_stopped : bool
        Phase A ended by the margin rule (not by its length limit).
    round_ended : bool
        An inner round ended with this epoch.
    round_improved : bool
        ...and it raised ``best_val`` above the previous round's (``noisy_val``).
    outer_ended : bool
        The outer loop ended with this epoch.
    best_val : float
        The outer loop's best validation accuracy after this epoch (before any reset for the next outer loop).
    margin : float or None
        Phase A's margin after this epoch (None outside phase A).
    """

    save_best: bool = False
    new_global_best: bool = False
    phase_a_stopped: bool = False
    round_ended: bool = False
    round_improved: bool = False
    outer_ended: bool = False
    best_val: float = 0.0
    margin: float | None = None


def early_stopping_step(
    val: float, best: float, margin: float, step: float = 0.1, limit: float = 2.0
) -> tuple[bool, float, float, bool]:
    """Phase A's growing-margin rule (P-M3), exactly as the official code.

    An epoch counts when ``val > best + margin``: the best becomes ``val`` and the margin returns to 0; otherwise
    the margin grows by ``step`` (float accumulation, so with 0.1 / 2 the 20th stale epoch gives
    ``2.0000000000000004 > 2`` and stops).

    Returns
    -------
    improved : bool
    best, margin : float
        Updated values.
    stop : bool
        ``margin > limit``.
    """
    if val > best + margin:
        best, margin, improved = val, 0.0, True
    else:
        margin, improved = margin + step, False
    return improved, best, margin, margin > limit


def _end_outer(state: LoopState, outer_loops: int) -> LoopState:
    """Move to the next outer loop (its phase A, with a fresh best and margin), or finish."""
    if state.outer + 1 >= outer_loops:
        return replace(state, phase="done", step=0)
    return replace(
        state,
        outer=state.outer + 1,
        phase="phase_a",
        round=0,
        step=0,
        outer_epoch=0,
        best_val=0.0,
        margin=0.0,
        last_round=0.0,
    )


def advance_noisy_val(state: LoopState, val: float, cfg: MeMomentumConfig) -> tuple[LoopState, LoopEvents]:
    """The ``main.py`` control flow after one epoch with validation accuracy ``val`` (a pure function).

    Parameters
    ----------
    state : LoopState
        Before the epoch (``state.step`` is the epoch just run).
    val : float
        Its class-balanced noisy validation accuracy (%, rounded to 2 decimals).
    cfg : MeMomentumConfig
        Uses ``margin_step``, ``margin_limit``, ``max_phase_a_epochs``, ``round_epochs``, ``max_inner_rounds``,
        ``outer_loops``.

    Returns
    -------
    LoopState, LoopEvents
        The state before the next epoch and what this epoch decided.
    """
    if state.phase == "done":
        raise ValueError("the schedule is over; no epoch should have run")
    ev = LoopEvents()
    s = replace(state, step=state.step + 1, outer_epoch=state.outer_epoch + 1)
    if s.phase == "phase_a":
        ev.save_best, s.best_val, s.margin, stop = early_stopping_step(
            val, s.best_val, s.margin, cfg.margin_step, cfg.margin_limit
        )
        ev.phase_a_stopped, ev.best_val, ev.margin = stop, s.best_val, s.margin
        if stop or s.step >= cfg.max_phase_a_epochs:
            s = replace(s, phase="round", round=1, step=0)  # last_round = 0: round 1 always "improves"
        return s, ev
    # an inner round: plain improvement, no margin
    if val > s.best_val:
        s.best_val, ev.save_best = val, True
        if val > s.best_val_global:
            s.best_val_global, ev.new_global_best = val, True
    ev.best_val = s.best_val
    if s.step >= cfg.round_epochs:
        ev.round_ended = True
        ev.round_improved = s.best_val > s.last_round
        if ev.round_improved:
            s.last_round = s.best_val
        if ev.round_improved and s.round < cfg.max_inner_rounds:
            s = replace(s, round=s.round + 1, step=0)
        else:
            ev.outer_ended = True
            s = _end_outer(s, cfg.outer_loops)
    return s, ev


def advance_per_class(state: LoopState, val: float, cfg: MeMomentumConfig) -> tuple[LoopState, LoopEvents]:
    """The ``Clothing.py`` control flow after one epoch with overall clean validation accuracy ``val``: fixed
    ``outer_loops × max_inner_rounds × round_epochs`` epochs; a new global best records the test accuracy.
    (The per-class model selection is not a loop decision; see :meth:`MeMomentum.per_class_epoch_end`.)"""
    if state.phase == "done":
        raise ValueError("the schedule is over; no epoch should have run")
    ev = LoopEvents()
    s = replace(state, step=state.step + 1, outer_epoch=state.outer_epoch + 1)
    if val > s.best_val_global:
        s.best_val_global, ev.new_global_best = val, True
    s.best_val = max(s.best_val, val)
    ev.best_val = s.best_val
    if s.step >= cfg.round_epochs:
        ev.round_ended = True
        if s.round < cfg.max_inner_rounds:
            s = replace(s, round=s.round + 1, step=0)
        else:
            ev.outer_ended = True
            s = _end_outer(s, cfg.outer_loops)
            if s.phase == "phase_a":  # the per-class variant has no phase A: the next outer loop starts round 1
                s = replace(s, phase="round", round=1)
    return s, ev


# ---------------------------------------------------------------------------------------------------- pieces
def confident_mask(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The confident examples: prediction equals the noisy label.

    Parameters
    ----------
    pred, labels : Tensor int64 (N,)

    Returns
    -------
    Tensor bool (N,)
    """
    if pred.shape != labels.shape:
        raise ValueError(f"pred and labels must have the same shape, got {tuple(pred.shape)} and {tuple(labels.shape)}")
    return pred == labels


def clothing_class_weights(train_labels: torch.Tensor, val_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``Clothing.py``'s CE weights ``w_c = (mean_k n_k^train / n_c^train) · (n_c^val / mean_k n_k^val)``.

    A class with no training sample gets weight 0 (it has no loss term anyway) instead of an infinite one.

    Parameters
    ----------
    train_labels : Tensor int64 (N_train,)
        Noisy labels of the current training set.
    val_labels : Tensor int64 (N_val,)
        Clean validation labels.

    Returns
    -------
    Tensor float32 (C,), on ``train_labels``' device
    """
    n_train = torch.bincount(train_labels, minlength=num_classes).float()
    n_val = torch.bincount(val_labels.to(train_labels.device), minlength=num_classes).float()
    ratio_train = torch.where(n_train > 0, n_train.mean() / n_train.clamp_min(1.0), torch.zeros_like(n_train))
    return ratio_train * n_val / n_val.mean().clamp_min(1e-12)


def per_class_scores(pred: torch.Tensor, labels: torch.Tensor, num_classes: int, beta: float = 0.45) -> torch.Tensor:
    """``Clothing.py``'s per-class score ``β·recall_c + (1 − β)·precision_c`` on the clean validation set.

    Returns
    -------
    Tensor float32 (C,), in [0, 1] (an undefined recall or precision counts as 0)
    """
    recall, precision = per_class_recall_precision(pred, labels, num_classes)
    return beta * recall + (1.0 - beta) * precision

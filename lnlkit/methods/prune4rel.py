"""Prune4ReL (Park, Choi, Kim, Song & Lee, NeurIPS 2023): robust data pruning under label noise by maximising the
re-labelling accuracy, and the data-pruning baselines it is compared with (``prune:<name>``).

See docs/methods/prune4rel_sop.md#prune4rel-algorithm.  A subset ``S`` of ``round(f·n)`` samples is chosen so
that a re-labelling learner (SOP+ by default, DivideMix, CE) generalises best on it.  As the official code runs it:

1. **Warm-up** (``warmup_epochs``): the learner trains on the *full* noisy set, at batch B (DivideMix too).
2. **Scores**: one pass with one random strong augmentation per image (``score_view``) gives softmax probabilities
   and penultimate embeddings; the confidence ``c_i`` is the max probability (``uncertainty``).
3. **Greedy neighbourhood confidence** (:func:`greedy_neighborhood_confidence`): neighbours where
   ``0.5 + 0.5·cos > τ``; each step picks the largest gain ``tanh((NC_i + c_i)/η) − tanh(NC_i/η)`` and adds
   ``w(j, p)·c_p`` to the ``NC`` of each neighbour ``j`` of the pick ``p`` (``balance``: round-robin over classes).
4. **Train on S**: a **fresh** learner (new networks and optimisers) trains on ``S`` for ``epochs``.
5. Report the last epoch's test accuracy, the noise ratio inside ``S`` and its class counts (``clean_score``: the
   greedy's confidence).

The steps in full, the pruning baselines, the learners, the switches and the greedy's scalability:
docs/methods/prune4rel_sop.md#prune4rel-implementation-notes.
"""

from __future__ import annotations

import copy
import heapq
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig
from lnlkit.methods.dividemix import DivideMix, DivideMixConfig
from lnlkit.methods.sop import SOP, SOPConfig
from lnlkit.presets import PresetTable
from lnlkit.train.augment import SOP_STRONG_VIEWS, Augment, sop_strong_view
from lnlkit.train.evaluate import autocast, per_sample_pass
from lnlkit.train.loader import stream_generator, stream_numpy_generator
from lnlkit.train.meter import mean_per_step
from lnlkit.train.neighbours import INDEXES, Neighbourhoods, similarity_weights
from lnlkit.train.schedules import cosine_lr, multistep_lr, set_lr
from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive, check_range

__all__ = [
    "Prune4ReLConfig",
    "Prune4ReL",
    "GreedyResult",
    "greedy_neighborhood_confidence",
    "similarity_weights",
    "confidence_scores",
    "uniform_selection",
    "small_loss_selection",
    "uncertainty_selection",
    "forgetting_selection",
    "grand_scores",
    "grand_selection",
    "moderate_selection",
    "uncertainty_scores",
    "kcenter_greedy_selection",
    "glister_gains",
    "glister_selection",
    "SELECTORS",
    "LEARNERS",
    "PruneUniform",
    "PruneSmallLoss",
    "PruneUncertainty",
    "PruneForgetting",
    "PruneGraNd",
    "PruneModerate",
    "PruneKCenterGreedy",
    "PruneGlister",
]

SELECTORS = (
    "prune4rel",
    "uniform",
    "smallloss",
    "uncertainty",
    "forgetting",
    "grand",
    "moderate",
    "kcentergreedy",
    "glister",
)
# baselines whose official ``--balance True`` branch crashes: no class-balanced variant to reproduce
_NO_BALANCED_BRANCH = ("uniform", "uncertainty", "grand", "moderate", "glister")
LEARNERS = ("sop", "dividemix", "ce")


# ================================================================================== config
@dataclass
class Prune4ReLConfig(MethodConfig):
    """Hyperparameters of Prune4ReL and the pruning baselines (defaults: CIFAR-10N with SOP+, ``sop_CF10.sh``).

    Each field's reading: docs/methods/prune4rel_sop.md#prune4rel-configuration."""

    selector: str = "prune4rel"
    ratio: float = 0.2
    learner: str = "sop"
    epochs: int = 300
    warmup_epochs: int = 10
    batch_size: int = 128
    model: str = "auto"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    lr_schedule: str = "cosine"
    lr_min: float = 1e-4
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    # SOP+
    lr_u: float = 10.0
    lr_v: float = 100.0
    rc: float = 0.9
    rb: float = 0.1
    strong_cutout: int = 16
    strong_view: str = "autoaugment"
    # DivideMix
    lambda_u: float = 1.0
    p_threshold: float = 0.5
    temperature: float = 0.5
    alpha: float = 4.0
    subset_warm_up: int = 0
    # selection
    tau: float = 0.975
    eta: float = 1.0
    metric: str = "cossim"
    uncertainty: str = "LeastConfidence"
    balance: bool = True
    gain: str = "self"
    score_view: str = "strong"
    selection_batch: int = 256
    selection_block: int = 65536
    selection_index: str = "auto"
    selection_leaf: int = 256
    crop_padding: int = 4
    flip: bool = True
    faithful_subset_no_warmup: bool = True
    faithful_net2_milestone: bool = True
    faithful_warmup_batch: bool = True
    moderate_feature_batch: int | None = None
    glister_greedy: str = "stochastic"
    glister_epsilon: float = 0.9
    faithful_forgetting_last_network: bool = True
    forgetting_ties: str = "official"
    record_train_loss: bool = True
    weights_path: str | None = None

    def validate(self) -> None:
        super().validate()
        check_choice(self, "selector", SELECTORS)
        check_choice(self, "learner", LEARNERS)
        if self.balance and self.selector in _NO_BALANCED_BRANCH:
            raise ValueError(
                f"prune:{self.selector} has no class-balanced variant (the official --balance True branch "
                "crashes); use balance=False"
            )
        check_range(self, "ratio", low=0.0, high=1.0, low_open=True)  # the selection ratio f
        check_range(self, "tau", "p_threshold", low=0.0, high=1.0)  # tau: a threshold on 0.5 + 0.5·cos
        check_positive(self, "lr", "eta", "temperature", "alpha")
        check_non_negative(self, "rc", "rb", "lr_u", "lr_v", "lambda_u")
        check_int(self, "warmup_epochs", "subset_warm_up", low=0)
        check_int(self, "selection_batch", "selection_block", "selection_leaf", low=1)
        check_int(self, "moderate_feature_batch", low=1, optional=True)
        check_choice(self, "glister_greedy", ("stochastic", "lazy"))
        check_choice(self, "forgetting_ties", ("official", "lowest_index"))
        check_range(self, "glister_epsilon", low=0.0, high=1.0, low_open=True, high_open=True)
        check_choice(self, "lr_schedule", ("cosine", "multistep"))
        check_choice(self, "metric", ("cossim", "euclidean"))
        check_choice(self, "uncertainty", ("LeastConfidence", "Margin", "Entropy"))
        check_choice(self, "gain", ("self", "neighborhood"), "self: official, neighborhood: exact")
        check_choice(self, "strong_view", SOP_STRONG_VIEWS)
        check_choice(self, "score_view", ("strong", "weak", "clean"), "strong: official")
        check_choice(self, "selection_index", INDEXES)
        if self.selection_index == "cells" and self.metric != "cossim":
            raise ValueError("selection_index='cells' prunes by angle and needs metric='cossim'")


# ================================================================================== the method
class Prune4ReL(Method):
    """Prune4ReL: warm-up → scores → greedy neighbourhood-confidence subset → fresh re-labeller on the subset."""

    name = "prune4rel"
    Config = Prune4ReLConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel")
    data_pipeline = "prune4rel"
    PRETRAINED_PRESETS = frozenset({"clothing1m-dividemix"})  # ImageNet-initialised ResNet-50
    SELECTOR: ClassVar[str] = "prune4rel"
    reported_as = "test_acc_last"

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        if epoch < self.warmup_epochs:
            out = self.learner.train_epoch(ctx, epoch)
            return EpochOutput({**out.record, "phase": "warmup", "stage": "warmup"}, self._rename(out.signals))
        extra: dict = {}
        if self.stage != "subset":
            # scores of the warm-up model, the subset, and a fresh learner for it
            t0 = time.perf_counter()
            self.subset, score_signals = self.select(ctx, epoch)
            self.selection_info["select_s"] = time.perf_counter() - t0
            self._install_subset_learner(ctx, self.subset)
            self.stage = "subset"
            self.clean_score = score_signals.get("clean_score")
            extra = score_signals
        out = self.learner.train_epoch(ctx, epoch)
        signals = {**self._rename(out.signals), **extra}
        if self.clean_score is not None:  # the selection's score stays the run's clean score (its AUROC)
            signals["clean_score"] = self.clean_score
        mask = np.zeros(ctx.n_train, dtype=bool)
        mask[self.subset] = True
        signals["selected"] = mask
        record = {
            **out.record,
            "phase": "train",
            "stage": "subset",
            "n_selected": int(len(self.subset)),
            **{k: v for k, v in self.selection_info.items() if not isinstance(v, (list, np.ndarray))},
        }
        return EpochOutput(record, signals)

    def __init__(self, config: Prune4ReLConfig | None = None, preset: str | None = None):
        config = config if config is not None else self.Config()
        if config.selector != self.SELECTOR:
            raise ValueError(
                f"method {self.name!r} selects with {self.SELECTOR!r}, but the config says "
                f"selector={config.selector!r}; use the method 'prune4rel' or 'prune:<selector>'"
            )
        super().__init__(config, preset)

    def setup(self, ctx: Context) -> None:
        self._ctx = ctx
        self.stage = "warmup" if self.warmup_epochs > 0 else "select"
        self.learner = self._make_learner(ctx, "warmup")
        self.subset: np.ndarray | None = None  # S, sorted original indices
        self.selection_info: dict = {}
        self.clean_score: np.ndarray | None = None  # the selector's clean score, (n,), when it has one
        # per network of the learner (DivideMix: two), each with its own history, as the official code keeps them
        nets = len(self.learner.networks())
        self.forgetting = np.zeros((nets, ctx.n_train), dtype=np.int64)
        self.prev_correct = np.zeros((nets, ctx.n_train), dtype=bool)  # official last_acc starts at 0 (never right)

    @staticmethod
    def _rename(signals: dict) -> dict:
        """The learner's own selection (DivideMix's labelled set within S) goes under ``selected_learner*`` and its
        clean score under ``clean_prob_learner*`` / ``clean_score_learner*`` (``sel_auroc_learner*``: on S it is
        trained, outside S it is never updated); ``selected`` is the pruned subset and ``clean_score`` the
        selector's score, when it has one."""
        renamed = {}
        for key, value in signals.items():
            for prefix in ("selected", "clean_prob", "clean_score"):
                if key.startswith(prefix):
                    key = prefix + "_learner" + key[len(prefix) :]
                    break
            renamed[key] = value
        return renamed

    def _count_forgetting(
        self, index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, network: int = 0
    ) -> None:
        """Forgetting events of one training mini-batch of learner network ``network`` (official ``forgetting.py``
        ``after_loss``): a sample whose train-mode, augmented prediction was right on its given label the last time
        this network saw it and is wrong now."""
        idx = index.cpu().numpy()
        correct = (logits.argmax(1) == labels).cpu().numpy()
        self.forgetting[network, idx] += self.prev_correct[network, idx] & ~correct
        self.prev_correct[network, idx] = correct

    def forgetting_counts(self) -> np.ndarray:
        """The forgetting events the selection ranks, (n,).  The official warm-up trains the networks one after the
        other and its ``before_run`` resets the counters at the start of each, so with DivideMix only the last
        network's (net2's) events survive (``faithful_forgetting_last_network``; ``False``: the sum over the
        networks)."""
        if self.config.faithful_forgetting_last_network:
            return self.forgetting[-1]
        return self.forgetting.sum(0)

    # ------------------------------------------------------------------ scores and selection
    @torch.no_grad()
    def score_pass(
        self, ctx: Context, epoch: int, view: str, batch_statistics: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and penultimate embeddings of the warm-up model (net1 for DivideMix) for every training sample,
        under ``view`` ("strong": the config's ``strong_view``, by default AutoAugment's CIFAR-10 policy, flip, crop and
        Cutout 16 per image as the official ``train_strong_transform``; "weak": crop + flip; "clean"), eval mode.

        ``batch_statistics``: a copy of the network in train mode instead (BatchNorm normalises each batch by its own
        statistics), as Moderate's official feature extractor, which is never put in eval mode; its batches are
        those of the official evaluation loader, ``moderate_feature_batch`` (``None``: B, e.g. 128 on CIFAR), since
        in train mode the features depend on the batch.  The learner's network and its running statistics are
        untouched.  Otherwise batches of ``eval_batch_size`` (eval mode: the batch does not matter).

        Returns
        -------
        logits : Tensor float32 (N, C), embeddings : Tensor float32 (N, d), on the device
        """
        cfg = self.config
        net = self.learner.networks()[0]
        if batch_statistics:
            net = copy.deepcopy(net)
        was = net.training
        net.train(batch_statistics)
        aug = None
        if ctx.data.is_image and view != "clean":
            aug = (
                sop_strong_view(
                    cfg.strong_view,
                    ctx.data.mean.cpu(),
                    ctx.data.std.cpu(),
                    cfg.crop_padding,
                    cfg.flip,
                    cfg.strong_cutout,
                )
                if view == "strong"
                else Augment(cfg.crop_padding, cfg.flip, 0)
            )
        gen = stream_generator(ctx.device, ctx.seed, epoch, "prune4rel/score")
        logits, embs = [], []
        try:
            batch = cfg.eval_batch_size
            if batch_statistics:
                batch = cfg.batch_size if cfg.moderate_feature_batch is None else cfg.moderate_feature_batch
            for _, x in ctx.data.iter_split("train", batch):
                x = aug(x, gen) if aug is not None else x
                with autocast(ctx.device, cfg.evaluation_precision):
                    h = net.embed(x)
                    z = net.classify(h)
                logits.append(z.float())
                embs.append(h.float())
        finally:
            net.train(was)
        return torch.cat(logits), torch.cat(embs)

    def select(self, ctx: Context, epoch: int) -> tuple[np.ndarray, dict]:
        """The subset ``S`` (sorted indices) chosen with the warm-up model, and the per-sample scores behind it."""
        cfg = self.config
        n = ctx.n_train
        budget = int(round(cfg.ratio * n))
        labels = ctx.data.labels
        sel = cfg.selector
        signals: dict = {}
        if sel == "prune4rel":
            logits, emb = self.score_pass(ctx, epoch, cfg.score_view)
            if not (torch.isfinite(logits).all() and torch.isfinite(emb).all()):
                raise FloatingPointError(
                    "the warm-up model gives non-finite scores or embeddings (diverged warm-up); "
                    "lower lr or check the data"
                )
            conf = confidence_scores(logits.softmax(1), cfg.uncertainty)
            result = greedy_neighborhood_confidence(
                emb,
                conf,
                labels,
                budget,
                cfg.tau,
                cfg.eta,
                cfg.metric,
                cfg.balance,
                cfg.gain,
                cfg.selection_block,
                cfg.selection_batch,
                ctx.num_classes,
                cfg.selection_index,
                cfg.selection_leaf,
            )
            subset = np.sort(result.order)
            score = conf.cpu().numpy()
            # the greedy's confidence doubles as a clean score (higher = cleaner; the entropy is an uncertainty)
            clean = -score if cfg.uncertainty == "Entropy" else score
            signals = {
                "score": score,
                "clean_score": clean.astype(np.float32),
                "neighborhood_confidence": result.nc.astype(np.float32),
            }
            self.selection_info.update(min_balance=result.min_balance, balance_off_at=result.balance_off_at)
        elif sel == "uniform":
            rng = np.random.default_rng([ctx.seed, 4242])
            subset = uniform_selection(n, budget, rng)
        elif sel == "forgetting":
            counts = self.forgetting_counts()
            subset = forgetting_selection(counts, labels.cpu().numpy(), budget, self.config.forgetting_ties)
            signals = {"score": counts.astype(np.float32)}
        else:
            # the baselines score the clean (test-transform) view, as the official 'eval_train' loader
            logits, emb = self.score_pass(ctx, epoch, "clean", batch_statistics=sel == "moderate")
            y = labels.cpu().numpy()
            if sel == "smallloss":
                loss = F.cross_entropy(logits, labels, reduction="none").cpu().numpy()
                subset, signals = small_loss_selection(loss, budget), {"score": -loss, "clean_score": -loss}
            elif sel == "uncertainty":
                score = uncertainty_scores(logits, cfg.uncertainty)
                subset, signals = uncertainty_selection(logits, budget, cfg.uncertainty), {"score": score}
            elif sel == "grand":
                # the official evaluation batches hold `batch_size` samples (its selection batch defaults to it)
                score = grand_scores(logits, emb, labels, cfg.batch_size).cpu().numpy()
                subset, signals = grand_selection(score, budget), {"score": score}
            elif sel == "kcentergreedy":
                subset = kcenter_greedy_selection(emb, budget, np.random.default_rng([ctx.seed, 4243]))
            elif sel == "glister":
                gains = glister_gains(logits, emb, labels, cfg.batch_size).cpu().numpy()
                rng = stream_numpy_generator(ctx.seed, epoch, "prune4rel/glister")
                subset = glister_selection(gains, budget, cfg.glister_greedy, rng, cfg.glister_epsilon)
                signals = {"score": gains}
            else:  # moderate
                subset = moderate_selection(emb.cpu().numpy(), y, cfg.ratio)
        counts = np.bincount(labels.cpu().numpy()[subset], minlength=ctx.num_classes)
        self.selection_info.update(
            budget=budget, class_counts_min=int(counts.min()), class_counts_max=int(counts.max())
        )
        return np.asarray(subset, dtype=np.int64), signals

    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """``digits`` on the digits; ``cifar10n-sop`` / ``cifar100n-sop`` for CIFAR-N noise; ``clothing1m-dividemix``
        and ``webvision-sop`` for those data sets; otherwise ``None``."""
        dataset, noise = str(dataset).lower(), str(noise or "").lower()
        if dataset == "digits":
            return "digits"
        if dataset == "cifar10" and noise.startswith("cifar10n"):
            return "cifar10n-sop"
        if dataset == "cifar100" and noise.startswith("cifar100n"):
            return "cifar100n-sop"
        return {"clothing1m": "clothing1m-dividemix", "webvision": "webvision-sop"}.get(dataset)

    # ------------------------------------------------------------------ schedule
    @property
    def warmup_epochs(self) -> int:
        """Warm-up epochs on all data before the selection: ``warmup_epochs``, except for Uniform, which needs no
        model (official ``Uniform`` is a plain ``CoresetMethod``, without the early training)."""
        return 0 if self.config.selector == "uniform" else self.config.warmup_epochs

    def num_epochs(self) -> int:
        return self.warmup_epochs + self.config.epochs

    def reporting_epochs(self, history: list[dict]) -> list[dict]:
        """The epochs ``test_acc_best`` / ``best_epoch`` are taken over: the training on ``S`` only (the official
        best accuracy is tracked by the re-labeller's own loop, after the selection)."""
        return [r for r in history if r.get("stage") == "subset"]

    def learning_rate(self, epoch: int, net2: bool = False) -> float:
        """LR at ``epoch`` of a stage (both stages restart at 0): cosine over ``epochs`` or multistep."""
        cfg = self.config
        if cfg.lr_schedule == "cosine":
            return cosine_lr(cfg.lr, epoch, cfg.epochs, cfg.lr_min)
        milestones = (150,) if (net2 and cfg.faithful_net2_milestone) else cfg.lr_milestones
        return multistep_lr(cfg.lr, epoch, milestones, cfg.lr_gamma)

    # ------------------------------------------------------------------ learners
    def _make_learner_config(self, stage: str) -> SOPConfig | DivideMixConfig:
        """The learner's config for ``stage`` ("warmup": on all data; "subset": fresh, for S)."""
        cfg = self.config
        common = dict(
            batch_size=cfg.batch_size,
            model=cfg.model,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            crop_padding=cfg.crop_padding,
            flip=cfg.flip,
            record_train_loss=cfg.record_train_loss,
            eval_batch_size=cfg.eval_batch_size,
            precision=cfg.precision,
            eval_precision=cfg.eval_precision,
            weights_path=cfg.weights_path,
            record_signals_every=cfg.record_signals_every,
        )
        if cfg.learner in ("sop", "ce"):
            plus = (
                dict(lr_u=cfg.lr_u, lr_v=cfg.lr_v, rc=cfg.rc, rb=cfg.rb)
                if cfg.learner == "sop"
                else dict(lr_u=0.0, lr_v=0.0, rc=0.0, rb=0.0)
            )  # CE: no u/v, no second view
            return SOPConfig(
                epochs=cfg.epochs,
                nesterov=cfg.nesterov,
                lr_schedule=cfg.lr_schedule,
                lr_min=cfg.lr_min,
                lr_period=cfg.epochs,
                lr_milestones=cfg.lr_milestones,
                lr_gamma=cfg.lr_gamma,
                strong_cutout=cfg.strong_cutout,
                strong_view=cfg.strong_view,
                **plus,
                **common,
            )
        warm = cfg.warmup_epochs if stage == "warmup" else (0 if cfg.faithful_subset_no_warmup else cfg.subset_warm_up)
        # λu constant (rampup_length 0): Prune4ReL's DivideMix has no ramp; its schedule is set by this method
        return DivideMixConfig(
            epochs=self.num_epochs(),
            warm_up=warm,
            alpha=cfg.alpha,
            lambda_u=cfg.lambda_u,
            rampup_length=0.0,
            p_threshold=cfg.p_threshold,
            temperature=cfg.temperature,
            **common,
        )

    def _make_learner(self, ctx: Context, stage: str) -> Method:
        """A learner for ``stage``; its networks are drawn from a per-stage seed, so a resume rebuilds them."""
        torch.manual_seed(ctx.seed * 1000 + (0 if stage == "warmup" else 1))
        lc = self._make_learner_config(stage)
        learner: Method
        if isinstance(lc, SOPConfig):
            learner = _SubsetCE(lc) if self.config.learner == "ce" else SOP(lc)
        else:
            learner = _SubsetDivideMix(lc, self)
        learner.setup(ctx)
        learner.epoch_offset = 0 if stage == "warmup" else self.warmup_epochs
        if stage == "warmup" and self.config.selector == "forgetting":
            learner.batch_callback = self._count_forgetting  # events per training mini-batch, as officially
        return learner

    def networks(self):
        return self.learner.networks()

    def evaluate(self, ctx: Context) -> dict[str, float]:
        return self.learner.evaluate(ctx)

    def state_dict(self) -> dict:
        return {
            "stage": self.stage,
            "learner": self.learner.state_dict(),
            "subset": self.subset,
            "clean_score": self.clean_score,
            "selection_info": self.selection_info,
            "forgetting": self.forgetting,
            "prev_correct": self.prev_correct,
        }

    def load_state_dict(self, state: dict) -> None:
        self.stage = state["stage"]
        if self.stage == "subset":  # the checkpoint holds the fresh learner: rebuild it for S, then load
            self._install_subset_learner(self._ctx, state["subset"], keep_weights=True)
        self.learner.load_state_dict(state["learner"])
        self.subset, self.selection_info = state["subset"], state["selection_info"]
        self.clean_score = state.get("clean_score")
        forgetting, prev = state["forgetting"], state["prev_correct"]
        if prev is None:  # a checkpoint from before the per-batch count
            prev = np.zeros_like(forgetting, dtype=bool)
        forgetting, prev = np.atleast_2d(forgetting), np.atleast_2d(prev)
        rows = len(self.forgetting)  # the learner's networks (setup made one row each)
        if len(forgetting) != rows:  # a checkpoint from before the per-network count: one row, shared
            forgetting, prev = np.repeat(forgetting[-1:], rows, 0), np.repeat(prev[-1:], rows, 0)
        self.forgetting, self.prev_correct = forgetting, prev

    def _install_subset_learner(self, ctx: Context, subset: np.ndarray, keep_weights: bool = False) -> None:
        """Replace the learner by a fresh one for ``S`` (``keep_weights``: carry the current weights over, for a
        resume whose checkpointed networks the driver has just loaded)."""
        weights = [n.state_dict() for n in self.learner.networks()] if keep_weights else None
        self.learner = self._make_learner(ctx, "subset")
        if weights is not None:
            for net, sd in zip(self.learner.networks(), weights):
                net.load_state_dict(sd)
        if isinstance(self.learner, SOP):
            self.learner.train_indices = subset
        else:
            self.learner.subset = torch.as_tensor(subset, device=ctx.device)

    def reported_metric(self, history: list[dict]) -> float:
        return history[-1]["test_acc"] if history else float("nan")


# ================================================================================== confidence
def confidence_scores(probs: torch.Tensor, kind: str = "LeastConfidence") -> torch.Tensor:
    """Per-sample confidence ``c_i`` of the greedy (``--uncertainty``), from softmax probabilities (N, C) -> (N,).

    ``LeastConfidence``: max probability; ``Margin``: top-1 − top-2; ``Entropy``: the raw entropy (an uncertainty,
    as the official code uses it).
    """
    if kind == "LeastConfidence":
        return probs.max(1).values
    if kind == "Margin":
        top = probs.topk(min(2, probs.shape[1]), dim=1).values
        return top[:, 0] - (top[:, 1] if top.shape[1] > 1 else 0.0)
    if kind == "Entropy":
        return -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
    raise ValueError(f"uncertainty must be LeastConfidence, Margin or Entropy, got {kind!r}")


# ================================================================================== the greedy selection
@dataclass
class GreedyResult:
    """Result of :func:`greedy_neighborhood_confidence`.

    Attributes
    ----------
    order : ndarray int64 (B,)
        Selected indices in the order they were picked.
    nc : ndarray float64 (N,)
        Final neighbourhood confidence ``NC``.
    gains : ndarray float64 (B,)
        The gain of each pick when it was made.
    min_balance : int or None
        Size of the first class that ran out (``None``: none did).
    balance_off_at : int or None
        Index of the first pick made without class balance (``None``: balance stayed on for every pick).
    similarity_rows : int
        Neighbourhood queries answered (``B`` for the self gain).
    pairs_compared : int
        Similarities computed (``similarity_rows · N`` with the dense index, far fewer with the cell index).
    """

    order: np.ndarray
    nc: np.ndarray
    gains: np.ndarray
    min_balance: int | None = None
    balance_off_at: int | None = None
    similarity_rows: int = 0
    pairs_compared: int = 0

    def mask(self, n: int) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[self.order] = True
        return m


def _self_gain(nc: np.ndarray | float, c: np.ndarray | float, eta: float):
    return np.tanh((nc + c) / eta) - np.tanh(nc / eta)


@dataclass
class _BalanceState:
    """The official class round-robin: the pick ``t`` targets ``available[t mod |available|]``; exhausted classes are
    removed when they come up, and only then is the switch-off rule checked."""

    available: list
    picks: np.ndarray
    balanced: bool
    t: int = 0
    min_balance: int | None = None
    off_at: int | None = None
    switch_off: bool = False  # set by the pick that triggers the switch-off; applied after that pick


def greedy_neighborhood_confidence(
    embeddings: torch.Tensor | np.ndarray,
    confidence: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | None,
    budget: int,
    tau: float = 0.975,
    eta: float = 1.0,
    metric: str = "cossim",
    balance: bool = True,
    gain: str = "self",
    block: int = 65536,
    batch: int = 256,
    num_classes: int | None = None,
    index: str = "auto",
    leaf_size: int = 256,
) -> GreedyResult:
    """Prune4ReL's greedy neighbourhood-confidence selection (as the official code), without an n×n matrix.

    Parameters
    ----------
    embeddings : (N, d)
        Penultimate features (any device; the products run there).
    confidence : (N,)
        ``c_i >= 0`` (see :func:`confidence_scores`).
    labels : (N,) int, optional
        Given (noisy) labels for the class round-robin; required when ``balance``.
    budget : int
        Number of picks ``B`` (clipped to N).
    tau, eta : float
        Neighbourhood threshold on ``0.5 + 0.5·cos`` and the tanh temperature.
    metric : {"cossim", "euclidean"}
    balance : bool
        The official class round-robin (module docstring).
    gain : {"self", "neighborhood"}
        ``self``: the official surrogate ``tanh((NC_i + c_i)/η) − tanh(NC_i/η)``; ``neighborhood``: the exact
        marginal gain ``Σ_x tanh((NC_x + w(x, i) c_i)/η) − tanh(NC_x/η)`` (one similarity row per evaluation, so
        about ``N`` rows up front: O(N²d) time, O(N) memory).
    block : int
        Columns per block of the similarity products (memory ``batch × block`` floats).
    batch : int
        Picks whose similarity rows are computed together (one blocked product); until then their effect on a
        candidate's ``NC`` is computed on the fly from the pending picks (the result does not depend on it).
    index : {"auto", "dense", "cells"}
        How the neighbourhoods are found (:class:`lnlkit.train.neighbours.Neighbourhoods`): ``dense`` compares a
        pick with every sample; ``cells`` skips the k-means cells that cannot hold a neighbour (exact; cosine
        only); ``auto``: cells on the CPU from 20,000 samples on.  The result does not depend on it.
    leaf_size : int
        Samples per cell of the cell index.

    Returns
    -------
    GreedyResult
        Ties are broken towards the lowest index (``argmax`` semantics).
    """
    emb = torch.as_tensor(embeddings)
    conf = np.asarray(torch.as_tensor(confidence).detach().cpu().double().numpy())
    n = len(conf)
    if len(emb) != n:
        raise ValueError(f"embeddings ({len(emb)}) and confidence ({n}) differ in length")
    if eta <= 0:
        raise ValueError(f"eta must be positive, got {eta}")
    if gain not in ("self", "neighborhood"):
        raise ValueError(f"gain must be 'self' or 'neighborhood', got {gain!r}")
    if metric not in ("cossim", "euclidean"):
        raise ValueError(f"metric must be 'cossim' or 'euclidean', got {metric!r}")
    if np.any(conf < 0) or not np.all(np.isfinite(conf)):
        raise ValueError("confidence must be finite and >= 0 (the greedy's gains must shrink as NC grows)")
    if balance and labels is None:
        raise ValueError("balance=True needs the (noisy) labels")
    budget = int(min(max(int(budget), 0), n))
    lab = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(torch.as_tensor(labels).cpu().numpy(), np.int64)
    C = int(num_classes or (int(lab.max()) + 1 if n else 1))
    hood = Neighbourhoods(emb, metric, tau, index=index, block=block, leaf_size=leaf_size)
    nc = np.zeros(n)
    remaining = np.bincount(lab, minlength=C).astype(np.int64)  # unselected candidates per class
    selected = np.zeros(n, dtype=bool)

    # picks whose similarity rows are not yet in `nc` (flushed together: one blocked product per `batch` picks)
    pending: list[int] = []
    pending_conf = np.zeros(max(1, int(batch)))

    def flush() -> None:
        for (cols, w), i in zip(hood.rows_of(np.asarray(pending, dtype=np.int64)), pending):
            nc[cols] += w * conf[i]
        pending.clear()

    def gains_of(idx: np.ndarray) -> np.ndarray:
        """Current gains of ``idx`` (``nc`` must be flushed for the exact gain)."""
        if gain == "self":
            return _self_gain(nc[idx], conf[idx], eta)
        out = np.empty(len(idx))
        for start in range(0, len(idx), 4096):  # a chunk's neighbourhoods at a time, never all of them
            part = idx[start : start + 4096]
            for j, (cols, w) in enumerate(hood.rows_of(part)):
                out[start + j] = np.sum(_self_gain(nc[cols], w * conf[part[j]], eta))
        return out

    # the pending picks' stored vectors (NumPy or, for the dense index on a GPU, a tensor on that device)
    one = hood.vectors(np.zeros(min(n, 1), dtype=np.int64))
    pending_vectors = (
        np.empty((len(pending_conf), one.shape[1]), one.dtype)
        if isinstance(one, np.ndarray)
        else one.new_empty((len(pending_conf), one.shape[1]))
    )

    def pending_extra(i: int) -> float:
        """What the pending (not yet flushed) picks add to candidate ``i``'s ``NC``: k weights."""
        k = len(pending)
        return hood.weights_to(pending_vectors[:k], pending_conf[:k], i)

    def valid_top(h: list) -> tuple[int, float] | None:
        """Pop the exact argmax of a lazy heap of (−upper bound, index): a top whose recomputed gain still beats
        every other bound (lower index on ties) is the argmax, since gains only shrink as NC grows."""
        while h:
            neg, i = heapq.heappop(h)
            if selected[i]:
                continue
            if gain == "neighborhood":
                g = float(gains_of(np.array([i]))[0])
            else:
                # the flushed NC alone gives an upper bound: most stale tops fail already there, without products
                g = float(_self_gain(nc[i], conf[i], eta))
                if pending and (not h or (-g, i) <= h[0]):
                    g = float(_self_gain(nc[i] + pending_extra(i), conf[i], eta))
            if not h or (-g, i) <= h[0]:
                return i, g
            heapq.heappush(h, (-g, i))
        return None

    g0 = gains_of(np.arange(n)) if n else np.zeros(0)
    heaps: list[list] = [[] for _ in range(C)]
    for i in range(n):
        heaps[lab[i]].append((-float(g0[i]), i))
    for h in heaps:
        heapq.heapify(h)
    global_heap: list | None = None
    if not balance:
        global_heap = [(-float(g0[i]), i) for i in range(n)]
        heapq.heapify(global_heap)
    state = _BalanceState(list(range(C)), np.zeros(C, dtype=np.int64), bool(balance))

    def next_target(st: _BalanceState) -> int:
        """The class of the next pick (−1: unconstrained), advancing the official round-robin state.

        As the official ``k_neighbor_confidence_greedy``: the target is ``available[t mod |available|]``.  While it has
        no candidate left it is removed (the first removal fixes ``min_balance``, the initial size of that class)
        and the target is recomputed; right after such a removal, a new target that already has more than
        ``1.5 · min_balance`` picks switches balance off for good, from the *next* pick on: the pick being made
        stays within its class.  Nothing is checked on turns where no class runs out."""
        if not st.balanced:
            return -1
        c = st.available[st.t % len(st.available)]
        while remaining[c] == 0:
            if len(st.available) == C:
                st.min_balance = int(st.picks[c])  # every sample of the class was picked: its initial size
            st.available.remove(c)
            if not st.available:  # nothing left at all (cannot happen while budget <= n)
                st.balanced = False
                return -1
            c = st.available[st.t % len(st.available)]
            if st.picks[c] > 1.5 * st.min_balance:
                st.switch_off = True
        return c

    order: list[int] = []
    gains_made: list[float] = []
    while len(order) < budget:
        c = next_target(state)
        if c == -1 and global_heap is None:  # balance just switched off: one heap of every candidate left
            flush()
            left = np.flatnonzero(~selected)
            global_heap = [(-float(g), int(i)) for i, g in zip(left, gains_of(left))]
            heapq.heapify(global_heap)
        top = valid_top(global_heap if c == -1 else heaps[c])
        if top is None:
            break
        i, g = top
        if state.switch_off:  # the triggering pick was still limited to its class; the next ones are not
            state.balanced, state.switch_off, state.off_at = False, False, len(order) + 1
        state.picks[lab[i]] += 1
        state.t += 1
        selected[i] = True
        remaining[lab[i]] -= 1
        order.append(int(i))
        gains_made.append(g)
        pending_conf[len(pending)] = conf[i]
        pending_vectors[len(pending)] = hood.vectors(np.array([i]))[0]
        pending.append(int(i))
        if len(pending) == len(pending_conf) or gain == "neighborhood":
            flush()
    flush()
    return GreedyResult(
        np.asarray(order, dtype=np.int64),
        nc,
        np.asarray(gains_made),
        state.min_balance,
        state.off_at,
        hood.rows,
        hood.compared,
    )


# ================================================================================== the baselines' selections
def uniform_selection(n: int, budget: int, generator: np.random.Generator) -> np.ndarray:
    """``budget`` indices drawn uniformly without replacement (sorted).  Never class-balanced: the official balanced
    Uniform crashes (``deepcore/methods/uniform.py`` reads a ``dst_train`` attribute the class does not have)."""
    return np.sort(generator.choice(n, size=int(min(budget, n)), replace=False)).astype(np.int64)


def _top(scores: np.ndarray, k: int, largest: bool) -> np.ndarray:
    order = np.argsort(-scores if largest else scores, kind="stable")
    return np.sort(order[: int(k)]).astype(np.int64)


def _per_class(labels: np.ndarray, budget: int, fn: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """Split ``budget`` over the classes in proportion to their sizes (``round(f·n_c)``); apply ``fn`` within each."""
    n = len(labels)
    frac = budget / max(n, 1)
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out.append(idx[fn(idx, int(round(frac * len(idx))))])
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def _batch_sizes(n: int, batch_size: int) -> np.ndarray:
    """Size of the (in-order) evaluation batch each of ``n`` samples falls in: ``batch_size`` except the last."""
    pos = np.arange(n)
    start = (pos // batch_size) * batch_size
    return np.minimum(start + batch_size, n) - start


def small_loss_selection(losses: np.ndarray, budget: int) -> np.ndarray:
    """SmallLoss: the ``budget`` smallest per-sample CE losses (ties by index); sorted indices."""
    return _top(np.asarray(losses, np.float64), budget, largest=False)


def uncertainty_scores(logits: torch.Tensor | np.ndarray, kind: str = "Margin") -> np.ndarray:
    """DeepCore's Uncertainty scores (``deepcore/methods/uncertainty.py``); the *lowest* scores are kept.

    ``Margin`` (the official default): top-1 − top-2 of the softmax probabilities; ``LeastConfidence``: the largest
    **logit** (the official code takes the max of the raw network output, not of the softmax); ``Entropy``:
    ``Σ_c p_c log(p_c + 1e-6)`` (minus the entropy, so the most uncertain samples are kept).
    Shapes: logits (N, C) -> (N,) float64.
    """
    z = (
        torch.as_tensor(np.asarray(logits, np.float32))
        if isinstance(logits, np.ndarray)
        else logits.detach().float().cpu()
    )
    if kind == "LeastConfidence":
        score = z.max(1).values
    elif kind == "Margin":
        top = z.softmax(1).topk(min(2, z.shape[1]), dim=1).values
        score = top[:, 0] - (top[:, 1] if top.shape[1] > 1 else 0.0)
    elif kind == "Entropy":
        p = z.softmax(1)
        score = (p * torch.log(p + 1e-6)).sum(1)
    else:
        raise ValueError(f"uncertainty must be LeastConfidence, Margin or Entropy, got {kind!r}")
    return score.double().numpy()


def uncertainty_selection(logits: torch.Tensor | np.ndarray, budget: int, kind: str = "Margin") -> np.ndarray:
    """Uncertainty: the ``budget`` lowest :func:`uncertainty_scores` (the hardest samples), over all classes.

    There is no per-class variant: the official balanced branch crashes (its ``rank_uncertainty`` ignores the class
    index it is given, so the per-class slicing raises IndexError)."""
    return _top(uncertainty_scores(logits, kind), budget, largest=False)


def forgetting_selection(
    forgetting_counts: np.ndarray, labels: np.ndarray, budget: int, ties: str = "official"
) -> np.ndarray:
    """Forgetting: per given class (``round(f·n_c)`` each), the samples with the most forgetting events.  Always per
    class, as the official code (its ``balance`` argument is unused).

    ``ties``: ``"official"`` orders each class as the official code, the reverse of NumPy's default (unstable)
    ascending argsort of the float32 counts, so equal counts come out in whatever order that sort leaves them (on
    small arrays the highest index first); ``"lowest_index"``: a stable descending sort, ties by lowest index.
    """
    if ties == "official":
        counts32 = np.asarray(forgetting_counts, np.float32)  # the official counters are a float32 tensor
        return _per_class(np.asarray(labels), budget, lambda idx, k: np.argsort(counts32[idx])[::-1][:k])
    if ties != "lowest_index":
        raise ValueError(f"ties must be 'official' or 'lowest_index', got {ties!r}")
    counts = np.asarray(forgetting_counts, np.float64)
    return _per_class(np.asarray(labels), budget, lambda idx, k: np.argsort(-counts[idx], kind="stable")[:k])


def grand_scores(
    logits: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """GraNd: norm of the gradient of a *mean-reduced* CE w.r.t. the last layer (weight and bias), per sample.

    For ``z = W h + b``: ``∂CE/∂W = (p − y) hᵀ`` and ``∂CE/∂b = p − y``, so a sample's norm is
    ``‖p − y‖ · sqrt(‖h‖² + 1)``.  The official code takes the gradient of the batch-mean CE of each evaluation batch
    (``deepcore/methods/grand.py``), so each norm is divided by the size of its batch: the samples are taken in index
    order in batches of ``batch_size`` (the last one may be smaller; ``None``: one batch of everything divided out,
    i.e. no per-batch scaling, the plain per-sample norm).
    Shapes: logits (N, C), features (N, d), labels (N,) -> (N,).
    """
    p = logits.float().softmax(1)
    r = p - F.one_hot(labels, p.shape[1]).float()
    norm = r.norm(dim=1) * torch.sqrt(features.float().pow(2).sum(1) + 1.0)
    if batch_size is None:
        return norm
    sizes = torch.as_tensor(_batch_sizes(len(norm), int(batch_size)), dtype=norm.dtype, device=norm.device)
    return norm / sizes


def grand_selection(scores: np.ndarray, budget: int) -> np.ndarray:
    """GraNd keeps the ``budget`` largest scores (over all classes: the official balanced branch crashes on an
    undefined ``train_indx``)."""
    return _top(np.asarray(scores, np.float64), budget, largest=True)


def moderate_selection(features: np.ndarray, labels: np.ndarray, fraction: float) -> np.ndarray:
    """Moderate (Xia et al. 2023) as ``deepcore/methods/moderate.py``: each sample's distance to the element-wise
    median feature of its own (given) class; one global band over all samples: the distance ranks
    ``[round(n(0.5 − f/2)), round(n(0.5 + f/2)))``.  No per-class variant (the official balanced branch crashes).
    Shapes: features (N, d), labels (N,) -> sorted indices."""
    feats, labels = np.asarray(features, np.float64), np.asarray(labels)
    dist = np.zeros(len(labels))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        dist[idx] = np.linalg.norm(feats[idx] - np.median(feats[idx], axis=0), axis=1)
    n = len(labels)
    order = np.argsort(dist, kind="stable")
    lo, hi = int(round(n * (0.5 - fraction / 2))), int(round(n * (0.5 + fraction / 2)))
    return np.sort(order[lo:hi]).astype(np.int64)


def kcenter_greedy_selection(
    features: torch.Tensor | np.ndarray, budget: int, generator: np.random.Generator
) -> np.ndarray:
    """k-Center Greedy (Sener & Savarese 2018) as DeepCore's ``kcentergreedy.py``: a random first centre, then
    repeatedly the sample farthest (Euclidean) from its nearest centre.  Ties go to the lowest index.

    Parameters
    ----------
    features : (N, d)
        Penultimate features of the warm-up model (clean view, eval mode).
    budget : int
    generator : numpy Generator
        Draws the first centre.

    Returns
    -------
    ndarray int64 (min(budget, N),), sorted.
    """
    x = torch.as_tensor(features).double()
    n = len(x)
    budget = int(min(max(budget, 0), n))
    if budget == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(generator.integers(0, n))
    chosen = [first]
    nearest = torch.cdist(x, x[first : first + 1]).squeeze(1)
    nearest[first] = -1.0  # a centre is never picked again
    for _ in range(budget - 1):
        p = int(torch.argmax(nearest))
        chosen.append(p)
        nearest = torch.minimum(nearest, torch.cdist(x, x[p : p + 1]).squeeze(1))  # earlier centres stay at −1
        nearest[p] = -1.0
    return np.sort(np.asarray(chosen, dtype=np.int64))


def glister_gains(
    logits: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """GLISTER's first-order gains as DeepCore's ``glister.py`` computes them in Prune4ReL (the training set is its
    own validation set): ``g_i · ḡ`` with ``g_i`` the last-layer (bias, weight) gradient of the sample's CE and ``ḡ``
    the mean of the ``g_i`` over all samples.

    As the official code: the CE is applied to the *softmax probabilities* (``CrossEntropyLoss(softmax(z), y)``, a
    second softmax inside the loss) and mean-reduced over each evaluation batch of ``batch_size`` samples in index
    order (``None``: no per-batch scaling).  With ``b_i = ∂CE_i/∂z`` and ``h_i`` the features, ``g_i = [b_i,
    b_i ⊗ h_i]``, so ``g_i · ḡ = b_i · mean(b) + b_iᵀ mean(b hᵀ) h_i`` (no ``N × C·d`` matrix).
    Shapes: logits (N, C), features (N, d), labels (N,) -> (N,) float64.
    """
    z = logits.detach().double().requires_grad_(True)
    loss = F.cross_entropy(z.softmax(1), labels, reduction="none")
    (b,) = torch.autograd.grad(loss.sum(), z)
    if batch_size is not None:
        b = b / torch.as_tensor(_batch_sizes(len(b), int(batch_size)), dtype=b.dtype, device=b.device)[:, None]
    h = features.detach().double()
    mean_b = b.mean(0)
    mean_w = b.T @ h / max(len(b), 1)  # (C, d): the mean weight gradient
    return (b @ mean_b + ((b @ mean_w) * h).sum(1)).detach()


def glister_selection(
    gains: np.ndarray,
    budget: int,
    greedy: str = "stochastic",
    generator: np.random.Generator | None = None,
    epsilon: float = 0.9,
) -> np.ndarray:
    """GLISTER's pick of ``budget`` samples from fixed first-order ``gains`` (:func:`glister_gains`), sorted indices.

    The official greedy is meant to update the validation gradient after each pick, but the keyword is misspelt
    (``upadate_state``), so the update never runs and every sample keeps its first gain.  What is left depends on
    the greedy the official main script passes (``--submodular_greedy``):

    * ``"stochastic"`` (official default, DeepCore's ``StochasticGreedy`` with ``epsilon`` 0.9): each pick draws
      ``s = max(round(−ln ε · n / budget), 1)`` candidates uniformly without replacement from the samples not yet
      picked and takes the one with the largest gain (the first among equal gains).  For ``f = budget / n ≥ 0.1``
      ``s`` is 1, so the subset is a uniformly random one.
    * ``"lazy"`` (DeepCore's ``LazyGreedy``, the kit's earlier choice): over fixed gains, the ``budget`` largest.

    Parameters
    ----------
    gains : ndarray (n,)
    budget : int
    greedy : {"stochastic", "lazy"}
    generator : numpy Generator
        The candidates' draws (``"stochastic"`` only; required there).
    epsilon : float in (0, 1)
    """
    gains = np.asarray(gains, np.float64)
    if greedy == "lazy":
        return _top(gains, budget, largest=True)
    if greedy != "stochastic":
        raise ValueError(f"greedy must be 'stochastic' or 'lazy', got {greedy!r}")
    if generator is None:
        raise ValueError("the stochastic greedy needs a generator")
    n = len(gains)
    size = max(round(-np.log(epsilon) * n / budget), 1)
    free = np.ones(n, dtype=bool)
    everyone = np.arange(n)
    for picked in range(budget):
        candidates = generator.choice(everyone[free], size=min(size, n - picked), replace=False)
        free[candidates[np.argmax(gains[candidates])]] = False
    return np.flatnonzero(~free)


# ================================================================================== the CE learner
class _SubsetCE(SOP):
    """The "standard model" re-labeller (official ``robustlearner/ce.py``): plain cross-entropy on the weak view with
    Prune4ReL's optimiser and schedule, on the whole set (warm-up) or on ``S`` (``train_indices``).  It reuses SOP's
    plumbing (network, Nesterov SGD, schedule, subset loader); its ``u``/``v`` tables are never used."""

    name = "ce"

    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        cfg = self.config
        lr = self.learning_rate(epoch)
        set_lr(self.optimizer, lr)
        loader = ctx.data.loader(cfg.batch_size, indices=self.train_indices, augment=self.weak, stream="ce/train")
        self.net.train()
        loss_sum, steps = torch.zeros((), device=ctx.device), 0
        for batch in loader.epoch(epoch):
            with autocast(ctx.device, cfg.precision):
                logits = self.net(batch.x).float()
            if self.batch_callback is not None:
                self.batch_callback(batch.index, logits.detach(), batch.y)
            loss = F.cross_entropy(logits, batch.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            steps += 1
        record = {"phase": "train", "lr": lr, "loss": mean_per_step(loss_sum, steps), "steps": steps}
        if not (cfg.record_train_loss and ctx.records_signals(epoch)):
            return EpochOutput(record, {})
        ps = per_sample_pass(self.net, ctx.data, batch_size=cfg.eval_batch_size, precision=cfg.evaluation_precision)
        return EpochOutput(record, {"loss": ps.loss.cpu().numpy(), "pred": ps.pred.cpu().numpy().astype("int16")})


# ================================================================================== the DivideMix learner
class _SubsetDivideMix(DivideMix):
    """DivideMix restricted to a subset ``S`` (GMM on S's losses, labelled/unlabelled split within S), with
    Prune4ReL's optimiser (Nesterov) and schedule; the warm-up on all data is DivideMix's own."""

    def __init__(self, config: DivideMixConfig, owner: "Prune4ReL"):
        super().__init__(config)
        self.owner = owner
        self.subset: torch.Tensor | None = None
        self.epoch_offset = 0
        self.batch_callback: Callable[..., None] | None = None

    def _supervised_epoch(self, ctx: Context, net, opt, batches, loss_kind, rng, gen) -> dict:
        """DivideMix's supervised pass; with a ``batch_callback`` (the Forgetting baseline's warm-up) each batch's
        train-mode logits are passed on with the index of the network that made them (net1's epoch, then net2's),
        as the official ``after_loss`` hook sees them."""
        if self.batch_callback is None:
            return super()._supervised_epoch(ctx, net, opt, batches, loss_kind, rng, gen)
        current: dict = {}
        network = next(k for k, other in enumerate(self.nets) if other is net)

        def remembered():
            for batch in batches:
                current["batch"] = batch
                yield batch

        def hook(_module, _inputs, output):
            b = current["batch"]
            self.batch_callback(b.index, output.detach().float(), b.y, network)

        handle = net.register_forward_hook(hook)
        try:
            return super()._supervised_epoch(ctx, net, opt, remembered(), loss_kind, rng, gen)
        finally:
            handle.remove()

    def warmup_batch_size(self) -> int:
        """B, as Prune4ReL's official warm-up (its ``train`` loader, ``args.batch_size``); with
        ``faithful_warmup_batch=False`` DivideMix's own 2B."""
        return self.config.batch_size * (1 if self.owner.config.faithful_warmup_batch else 2)

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        cfg = self.owner.config
        self.optimizers = [
            torch.optim.SGD(
                net.parameters(),
                lr=cfg.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                nesterov=cfg.nesterov and cfg.momentum > 0,
            )
            for net in self.nets
        ]

    def partition_pool(self, ctx: Context, epoch: int, k: int) -> torch.Tensor:
        return self.subset if self.subset is not None else super().partition_pool(ctx, epoch, k)

    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        e = epoch - self.epoch_offset
        lrs = [self.owner.learning_rate(e), self.owner.learning_rate(e, net2=True)]
        for opt, lr in zip(self.optimizers, lrs):
            set_lr(opt, lr)
        if self.phase(epoch) == "warmup":
            record, signals = self.warm_up(ctx, epoch)
            phase = "warmup"
        else:
            record, signals = self.ssl_epoch(ctx, epoch)
            phase = "train"
        return EpochOutput({"phase": phase, "lr": lrs[0], **record}, signals)

    def phase(self, epoch: int) -> str:
        return "warmup" if epoch - self.epoch_offset < self.config.warm_up else "ssl"

    def warm_up(self, ctx: Context, epoch: int) -> tuple[dict, dict]:
        """CE for both networks, on ``S`` when a subset is set (non-faithful warm-up on S), else on all data."""
        if self.subset is None:
            return super().warm_up(ctx, epoch)
        stats = []
        for k, (net, opt) in enumerate(zip(self.nets, self.optimizers)):
            loader = ctx.data.loader(
                2 * self.config.batch_size,
                indices=self.subset.cpu().numpy(),
                augment=self.augment,
                stream=f"subset-warmup/net{k + 1}",
            )
            stats.append(self._supervised_epoch(ctx, net, opt, loader.epoch(epoch), "ce", None, None))
        return self._supervised_record(stats), {}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "subset": self.subset, "epoch_offset": self.epoch_offset}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.subset, self.epoch_offset = state.get("subset"), state.get("epoch_offset", 0)


# ================================================================================== the baselines as methods
@dataclass
class PruneUniformConfig(Prune4ReLConfig):
    selector: str = "uniform"
    balance: bool = False


class PruneUniform(Prune4ReL):
    """Uniform: a random subset, no warm-up (the official ``Uniform`` trains no model), never class-balanced (the
    official balanced branch crashes)."""

    name = "prune:uniform"
    SELECTOR = "uniform"
    Config = PruneUniformConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "UNIFORM_PRESETS")


@dataclass
class PruneSmallLossConfig(Prune4ReLConfig):
    selector: str = "smallloss"
    balance: bool = False


class PruneSmallLoss(Prune4ReL):
    """SmallLoss: the smallest CE losses of the warm-up model (clean view, eval mode), over all classes (the official
    code ignores ``balance``)."""

    name = "prune:smallloss"
    SELECTOR = "smallloss"
    Config = PruneSmallLossConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "SMALLLOSS_PRESETS")


@dataclass
class PruneUncertaintyConfig(Prune4ReLConfig):
    selector: str = "uncertainty"
    uncertainty: str = "Margin"
    balance: bool = False


class PruneUncertainty(Prune4ReL):
    """Uncertainty (DeepCore): the lowest :func:`uncertainty_scores` of the warm-up model (clean view, eval mode);
    by default Margin on the softmax probabilities over all classes, as the README's baseline command runs it.  The
    official ``--balance True`` branch crashes (IndexError), so ``balance=True`` is refused."""

    name = "prune:uncertainty"
    SELECTOR = "uncertainty"
    Config = PruneUncertaintyConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "UNCERTAINTY_PRESETS")


@dataclass
class PruneForgettingConfig(Prune4ReLConfig):
    selector: str = "forgetting"
    balance: bool = False


class PruneForgetting(Prune4ReL):
    """Forgetting (Toneva et al.): per class, the samples with the most forgetting events, counted on every training
    mini-batch of the warm-up (train mode, augmented view; DivideMix: net1's epoch, then net2's)."""

    name = "prune:forgetting"
    SELECTOR = "forgetting"
    Config = PruneForgettingConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "FORGETTING_PRESETS")


@dataclass
class PruneGraNdConfig(Prune4ReLConfig):
    selector: str = "grand"
    balance: bool = False


class PruneGraNd(Prune4ReL):
    """GraNd: the largest last-layer gradient norms of the warm-up model's batch-mean CE (one repeat, the official
    default).  The official balanced branch crashes, so ``balance=True`` is refused."""

    name = "prune:grand"
    SELECTOR = "grand"
    Config = PruneGraNdConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "GRAND_PRESETS")


@dataclass
class PruneModerateConfig(Prune4ReLConfig):
    selector: str = "moderate"
    balance: bool = False


class PruneModerate(Prune4ReL):
    """Moderate: one global band of distances (each to its own class's median feature) around the median; features
    from a train-mode copy of the warm-up model, as the official extractor.  The official balanced branch crashes
    (UnboundLocalError; the committed ``sop_CF100.sh`` passes ``--balance True``), so ``balance=True`` is refused."""

    name = "prune:moderate"
    SELECTOR = "moderate"
    Config = PruneModerateConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "MODERATE_PRESETS")


@dataclass
class PruneKCenterGreedyConfig(Prune4ReLConfig):
    selector: str = "kcentergreedy"
    balance: bool = False


class PruneKCenterGreedy(Prune4ReL):
    """k-Center Greedy: farthest-point picks in the warm-up model's penultimate features (clean view, eval mode,
    Euclidean), from one random first centre; ``balance`` is ignored, as officially."""

    name = "prune:kcentergreedy"
    SELECTOR = "kcentergreedy"
    Config = PruneKCenterGreedyConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "KCENTERGREEDY_PRESETS")


@dataclass
class PruneGlisterConfig(Prune4ReLConfig):
    selector: str = "glister"
    balance: bool = False


class PruneGlister(Prune4ReL):
    """GLISTER (DeepCore): first-order gains :func:`glister_gains` with the training set as its own validation set,
    picked by the official main script's greedy (``glister_greedy="stochastic"``, ε = 0.9: a random subset for
    ``f ≥ 0.1``; ``"lazy"``: the largest gains), see :func:`glister_selection`.  The official balanced branch
    crashes (undefined ``dst_train`` / ``val_indx``), so ``balance=True`` is refused."""

    name = "prune:glister"
    SELECTOR = "glister"
    Config = PruneGlisterConfig
    PRESETS = PresetTable("lnlkit.presets.prune4rel", "GLISTER_PRESETS")

"""The method contract: a method's config dataclass, its presets, and the hooks the driver calls.

A method subclass implements the paper's algorithm in three hooks:

* ``setup(ctx)`` builds its networks, optimisers and buffers;
* ``train_epoch(ctx, epoch) -> EpochOutput`` runs one epoch of the algorithm and returns the record (phase, lr,
  loss terms) and the per-sample signals it saw (loss, clean probability, selected mask, relabelled targets);
* ``networks()`` lists the networks evaluated on the test set (ensembled when several).

Everything else — the run folder, atomic checkpoints, exact ``resume``, progress bar, callbacks, test evaluation,
the final ``result.json`` — is done once by the driver, :mod:`lnlkit.train.driver`, behind ``Method.fit``.
``Context`` (what the hooks receive) lives in :mod:`lnlkit.train.context` and the ``--set`` parsing in
:mod:`lnlkit.train.overrides`; both are re-exported here.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import torch
import torch.nn as nn

from lnlkit.data.dataset import Dataset, NoisyDataset
from lnlkit.train import driver
from lnlkit.train.context import Context
from lnlkit.train.device import check_precision, grad_scaler
from lnlkit.train.driver import ProgressFactory
from lnlkit.train.evaluate import evaluate_test
from lnlkit.train.overrides import parse_overrides
from lnlkit.train.recorder import RunResult

__all__ = ["MethodConfig", "Method", "EpochOutput", "Context", "parse_overrides"]


@dataclass
class MethodConfig:
    """Settings every method has.  Subclasses add the paper's hyperparameters."""

    epochs: int = 10
    batch_size: int = 128
    model: str = "auto"
    eval_batch_size: int = 1024
    # numeric precision of the training forward passes: "fp32" (the official codes), "bf16" (bfloat16 autocast, CUDA
    # and CPU) or "fp16" (float16 autocast with loss scaling, CUDA; SMR's WebVision script)
    precision: str = "fp32"
    # precision of the evaluation passes (test accuracy, per-sample losses for selection); None: same as precision
    eval_precision: str | None = None
    amp: bool | None = None  # deprecated (lnlkit < 0.9): True meant bf16 autocast on CUDA; read into precision
    channels_last: bool = True  # on CUDA only
    record_signals_every: int = 1  # per-sample signals every k epochs (and always the last)
    checkpoint_every: int = 1
    # data pipeline: input normalisation (None: the method's official one for the data set, see
    # lnlkit.data.pipeline; "dataset": the statistics the data set was loaded with; or a name such as "promix")
    normalization: str | None = None
    # start from ImageNet weights read from weights_path: None follows the preset's paper (an error when the paper
    # starts from them and weights_path is unset); False trains from scratch on purpose
    pretrained: bool | None = None

    def __post_init__(self) -> None:
        if self.amp is not None:  # an old config or call: amp=True/False
            self.precision = check_precision(bool(self.amp))
            self.amp = None

    @property
    def evaluation_precision(self) -> str:
        """The precision of evaluation passes: ``eval_precision``, else ``precision``."""
        return self.precision if self.eval_precision is None else self.eval_precision

    def validate(self) -> None:
        """Raise ValueError for values outside their domain (subclasses extend)."""
        check_precision(self.precision)
        check_precision(self.eval_precision)
        for name in ("epochs", "batch_size", "eval_batch_size", "record_signals_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "epochs" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class EpochOutput:
    """What one epoch of a method produced.

    Attributes
    ----------
    record : dict
        ``phase``, ``lr`` and the loss terms (floats); test accuracy is added by the driver.
    signals : dict of ndarray (N,)
        Per-sample arrays: ``loss``, ``clean_prob``, ``selected`` (bool), ``relabel`` (int), ...
    """

    record: dict = field(default_factory=dict)
    signals: dict = field(default_factory=dict)


class Method(abc.ABC):
    """Base class of all methods.  See the module docstring for the hooks a subclass implements."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type] = MethodConfig
    PRESETS: ClassVar[dict[str, Callable[[], MethodConfig]]] = {}
    reported_as: ClassVar[str] = "test_acc_last"
    # whether the training steps go through ``self.grad_scaler`` (needed for precision "fp16")
    supports_fp16: ClassVar[bool] = False
    # whose official data pipeline (normalisation) the method follows; None: each data set's default
    data_pipeline: ClassVar[str | None] = None
    # presets whose paper starts from ImageNet weights: fit() refuses to train them from scratch silently
    PRETRAINED_PRESETS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: MethodConfig | None = None, preset: str | None = None):
        self.config = config if config is not None else self.Config()
        self.preset = preset
        self.config.validate()
        if "fp16" in (self.config.precision, self.config.eval_precision) and not self.supports_fp16:
            raise ValueError(f"{self.name} does not implement fp16 loss scaling; use precision 'bf16' or 'fp32'")
        # loss scaler of the training steps (active for fp16 on CUDA only); made again for the device in fit()
        self.grad_scaler = grad_scaler(torch.device("cpu"), "fp32")

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def setup(self, ctx: Context) -> None:
        """Build the networks, optimisers and buffers."""

    @abc.abstractmethod
    def train_epoch(self, ctx: Context, epoch: int) -> EpochOutput:
        """Run epoch ``epoch`` of the algorithm."""

    @abc.abstractmethod
    def networks(self) -> list[nn.Module]:
        """The networks evaluated on the test set (and saved in checkpoints), in a fixed order."""

    def state_dict(self) -> dict:
        """Everything besides the networks needed to resume (optimisers, buffers); override when needed."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def num_epochs(self) -> int:
        """Epochs of the run; for a method whose schedule can end early (see :meth:`finished`), an upper bound."""
        return self.config.epochs

    @classmethod
    def preset_for(cls, dataset: str, noise: str | None) -> str | None:
        """The preset of the paper's setting ``(dataset, noise)``, or ``None`` when the method has none.

        The default is the preset named after the data set (``"digits"``, ``"cifar10"``, ...); methods whose presets
        are per noise setting (DivideMix: ``cifar10-sym50``) override this.
        """
        dataset = str(dataset).lower()
        return dataset if dataset in cls.PRESETS else None

    @staticmethod
    def no_injected_noise(noise: str | None) -> bool:
        """Whether a noise spec injects nothing (``None``, ``"none"``, ``"clean"`` or ``""``): the setting of the
        real-noise data sets (Clothing1M, WebVision, ...), whose presets :meth:`preset_for` matches only then."""
        return noise is None or str(noise).lower() in ("none", "clean", "")

    def finished(self) -> bool:
        """True once the method's own schedule is over before ``num_epochs()`` (e.g. an early-stopped loop).

        The driver asks after every epoch (and before the first epoch of a resumed run): when True it treats the
        epoch just done as the last one (signals recorded, checkpoint and ``result.json`` written) and stops.  The
        answer must follow from the state the method checkpoints (``state_dict``), so a resumed run agrees.  The
        default never finishes early.
        """
        return False

    def evaluate(self, ctx: Context) -> dict[str, float]:
        """Test accuracy of each network and their ensemble (override for e.g. a second-head ensemble)."""
        return evaluate_test(self.networks(), ctx.data, self.config.eval_batch_size, self.config.evaluation_precision)

    def reported_metric(self, history: list[dict]) -> float:
        """The paper's headline number from the history (default: last epoch's test accuracy)."""
        return history[-1]["test_acc"] if history else float("nan")

    # ------------------------------------------------------------------ data pipeline and initial weights
    def normalization_request(self) -> tuple[str | None, bool]:
        """The normalisation this run asks for and whether the user named it (``config.normalization``) or it is
        the method's own pipeline (``data_pipeline``); see :func:`lnlkit.data.pipeline.resolve_normalization`."""
        if self.config.normalization is not None:
            return self.config.normalization, True
        return self.data_pipeline, False

    def pretrained_record(self) -> dict[str, Any]:
        """Which initial weights the run uses, for ``config.json``.

        Returns
        -------
        dict
            ``pretrained``: ``"imagenet:<file>"`` or False; ``from_scratch``: True when the preset's paper starts
            from ImageNet weights and this run does not (``pretrained=false``).

        Raises
        ------
        ValueError
            Before any training, when the preset's paper starts from ImageNet weights (or ``pretrained=True``) and
            no ``weights_path`` is set.
        """
        weights = getattr(self.config, "weights_path", None)
        paper = self.preset in self.PRETRAINED_PRESETS
        want = paper if self.config.pretrained is None else bool(self.config.pretrained)
        if weights:
            return {"pretrained": f"imagenet:{weights}", "from_scratch": False}
        if want:
            why = (
                f"the {self.name} preset {self.preset!r} starts from ImageNet weights, as its paper does"
                if self.config.pretrained is None
                else "pretrained=true asks for ImageNet weights"
            )
            raise ValueError(
                f"{why}, but no weights file is given (lnlkit never downloads weights). Pass --set weights_path=FILE "
                "(e.g. torchvision's resnet50-0676ba61.pth; in Python: weights_path=...) or train from scratch on "
                "purpose with --set pretrained=false"
            )
        return {"pretrained": False, "from_scratch": paper}

    # ------------------------------------------------------------------ running (the driver: lnlkit.train.driver)
    def describe(self) -> dict:
        out = {"method": self.name, "preset": self.preset, "hyperparameters": dataclasses.asdict(self.config)}
        if getattr(self, "auto_choices", None):  # what the auto preset picked for this data (lnlkit.presets.auto)
            out["auto"] = self.auto_choices
        return out

    def fit(
        self,
        data: NoisyDataset | Dataset,
        out: str | Path | None = None,
        device: str = "auto",
        callbacks: Iterable[Callable[[dict], None]] = (),
        resume: bool = False,
        progress: bool | ProgressFactory = True,
        seed: int | None = None,
    ) -> RunResult:
        """Train on ``data`` and write the run folder ``out`` (the driver: :func:`lnlkit.train.driver.fit`).

        Parameters
        ----------
        data : NoisyDataset or Dataset
            A plain ``Dataset`` is trained on its given labels (no injected noise).
        out : path, optional
            Run folder; a fresh temporary folder when omitted.
        device : {"auto", "cpu", "cuda"}
        callbacks : iterable of callables
            Each receives every epoch's completed record (dict).
        resume : bool
            Continue from ``out/checkpoint.pt``.  A complete run is returned as is.
        progress : bool or callable
            True: a tqdm text bar; False: none; or a bar factory ``factory(total=, initial=, desc=)``, e.g.
            :func:`lnlkit.widgets.progress_bar` for a notebook widget.
        seed : int, optional
            Training seed; defaults to the seed the noise was drawn with.

        Returns
        -------
        RunResult
        """
        return driver.fit(
            self, data, out=out, device=device, callbacks=callbacks, resume=resume, progress=progress, seed=seed
        )

    def reporting_epochs(self, history: list[dict]) -> list[dict]:
        """The epochs ``test_acc_best`` and ``best_epoch`` are taken over (default: all of them; a method with a
        preliminary stage, e.g. Prune4ReL's warm-up before the selection, reports from its final stage only)."""
        return history

    def _result(self, history: list[dict], data: NoisyDataset, status: str, wall_s: float) -> dict:
        """The run's ``result.json`` (:func:`lnlkit.train.driver.run_summary`); a method adds its own entries here."""
        return driver.run_summary(self, history, data, status, wall_s)

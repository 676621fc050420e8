"""What every method shares: its config dataclass and presets, and the epoch driver behind ``Method.fit``.

A method subclass implements the paper's algorithm in three hooks:

* ``setup(ctx)`` builds its networks, optimisers and buffers;
* ``train_epoch(ctx, epoch) -> EpochOutput`` runs one epoch of the algorithm and returns the record (phase, lr,
  loss terms) and the per-sample signals it saw (loss, clean probability, selected mask, relabelled targets);
* ``networks()`` lists the networks evaluated on the test set (ensembled when several).

Everything else — the run folder, atomic checkpoints, exact ``resume``, progress bar, callbacks, test evaluation,
the final ``result.json`` — is done here once.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import platform
import tempfile
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
import torch
import torch.nn as nn

from lnlkit._version import __version__
from lnlkit.data.dataset import Dataset, NoisyDataset
from lnlkit.data.pipeline import apply_normalization, pipeline_record
from lnlkit.train.checkpoint import load_checkpoint, save_checkpoint
from lnlkit.train.device import check_precision, grad_scaler, resolve_device, rng_state, seed_everything, set_rng_state
from lnlkit.train.evaluate import evaluate_test
from lnlkit.train.loader import DeviceData
from lnlkit.train.recorder import RunRecorder, RunResult, load_run, run_lock

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


def _coerce(value: str, annotation: Any, key: str) -> Any:
    """Parse a ``--set key=value`` string into the field's type."""
    origin = typing.get_origin(annotation)
    if annotation is bool or annotation == "bool":
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true/false, got {value!r}")
    if annotation in (int, "int"):
        return int(value)
    if annotation in (float, "float"):
        return float(value)
    if origin in (tuple, list) or annotation in ("tuple", "list") or str(annotation).startswith(("tuple", "list")):
        parsed = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(",") if v.strip()]
        args = typing.get_args(annotation)
        elem = args[0] if args else None
        conv = {int: int, float: float}.get(elem, None)
        if conv is None:
            conv = (lambda v: float(v) if "." in str(v) or "e" in str(v).lower() else int(v))
        return tuple(conv(v) for v in parsed)
    if origin is typing.Union or str(annotation).startswith(("typing.Optional", "Optional")) or " | " in str(annotation):
        if value.lower() in ("none", "null"):
            return None
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except (ValueError, TypeError):
                continue
        return value
    return value


def parse_overrides(config_cls: type, items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["lr=0.1", "epochs=5"]`` into typed overrides for ``config_cls``.

    Raises
    ------
    ValueError
        For a malformed item or an unknown key (the message lists the valid keys).
    """
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in names:
            raise ValueError(f"unknown setting {key!r} for {config_cls.__name__}; valid keys: {', '.join(sorted(names))}")
        try:
            out[key] = _coerce(value.strip(), hints.get(key, str), key)
        except (ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"--set {key}={value!r}: cannot parse as {hints.get(key)}: {err}") from None
    return out


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


@dataclass
class Context:
    """What a method's hooks may use.  Note: no true noise mask here — only the given labels."""

    data: DeviceData
    device: torch.device
    seed: int
    num_classes: int
    n_train: int
    in_channels: int
    input_shape: tuple
    default_model: str
    dataset_name: str
    progress: Any = None  # the tqdm bar, for per-step postfixes
    # the noise spec string the user asked for (e.g. "openset:0.2+symmetric:0.4"): the *nominal* setting, which some
    # official codes take as an argument (Co-mining's forget rate); never the realised noise mask
    noise_spec: str | None = None

    def build_model(self, name: str = "auto", **kw: Any) -> nn.Module:
        """Build a registry model sized for this data (``"auto"``: the data set's default), on the device; flat
        features get an MLP in place of an image network (:func:`lnlkit.models.build_model_for_input`)."""
        from lnlkit.models import build_model_for_input

        # flat features get an MLP whatever image network the preset names (see build_model_for_input)
        name = self.default_model if name == "auto" else name
        net = build_model_for_input(name, self.num_classes, self.input_shape, **kw).to(self.device)
        return net.to(memory_format=torch.channels_last) if self.data.channels_last else net

    def generator(self, epoch: int, stream: str) -> torch.Generator:
        """A reproducible per-(epoch, stream) generator on the device (see ``stream_generator``)."""
        from lnlkit.train.loader import stream_generator

        return stream_generator(self.device, self.seed, epoch, stream)


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
            why = (f"the {self.name} preset {self.preset!r} starts from ImageNet weights, as its paper does"
                   if self.config.pretrained is None else "pretrained=true asks for ImageNet weights")
            raise ValueError(
                f"{why}, but no weights file is given (lnlkit never downloads weights). Pass --set weights_path=FILE "
                "(e.g. torchvision's resnet50-0676ba61.pth; in Python: weights_path=...) or train from scratch on "
                "purpose with --set pretrained=false"
            )
        return {"pretrained": False, "from_scratch": paper}

    # ------------------------------------------------------------------ driver
    def describe(self) -> dict:
        return {"method": self.name, "preset": self.preset, "hyperparameters": dataclasses.asdict(self.config)}

    def fit(self, data: NoisyDataset | Dataset, out: str | Path | None = None, device: str = "auto",
            callbacks: Iterable[Callable[[dict], None]] = (), resume: bool = False, progress: bool = True,
            seed: int | None = None) -> RunResult:
        """Train on ``data`` and write the run folder ``out``.

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
        progress : bool
            Show a tqdm progress bar.
        seed : int, optional
            Training seed; defaults to the seed the noise was drawn with.

        Returns
        -------
        RunResult
        """
        if isinstance(data, Dataset):
            data = data.with_noise("none")
        if not isinstance(data, NoisyDataset):
            raise TypeError(f"fit() expects a NoisyDataset (dataset.with_noise(...)), got {type(data).__name__}")
        seed = int(data.seed if seed is None else seed)
        out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"lnlkit-{self.name}-"))
        dev = resolve_device(device)  # bad input fails before any folder is made
        if dev.type != "cuda" and "fp16" in (self.config.precision, self.config.eval_precision):
            raise ValueError("precision 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on the CPU")
        self.pretrained_record()  # a paper that starts from ImageNet weights: no silent from-scratch run
        requested, strict = self.normalization_request()  # the preset's data pipeline, whoever loaded the data
        data = apply_normalization(data, requested, strict=strict, warn=True,
                                   who=f"{self.name}" + (f" (preset {self.preset!r})" if self.preset else ""))
        with run_lock(out):  # a second process on the same folder waits, then resumes or refuses
            return self._fit(data, out, dev, callbacks, resume, progress, seed)

    def _fit(self, data: NoisyDataset, out: Path, dev: torch.device, callbacks: Iterable[Callable[[dict], None]],
             resume: bool, progress: bool, seed: int) -> RunResult:
        config = {
            **self.describe(), "dataset": data.name, "noise": data.noise.spec, "noise_info": data.noise.info,
            "noise_seed": data.seed, "seed": seed, "device": str(dev), "num_classes": data.num_classes,
            "n_train": len(data.labels), "lnlkit_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), **self.pretrained_record(),
            "data": pipeline_record(data.dataset),
        }
        checkpoint = out / "checkpoint.pt"
        if resume and (out / "config.json").exists():
            self._check_same_run(out, config)
            if (out / "result.json").exists() and json.loads((out / "result.json").read_text()).get("status") == "complete":
                return load_run(out)
        elif not resume and out.exists() and any((out / f).exists() for f in ("config.json", "checkpoint.pt")):
            raise FileExistsError(f"{out} already holds a run; pass resume=True (--resume) or choose another folder")

        true_labels = data.dataset.y_train if data.dataset.clean_train_known else None
        recorder = RunRecorder(out, data.noise, true_labels)
        seed_everything(seed)
        # fp32 runs keep the inputs in float32 (on CUDA the default storage is float16, which rounds them)
        storage = torch.float32 if self.config.precision == "fp32" else None
        device_data = DeviceData(data, dev, seed, storage_dtype=storage, channels_last=self.config.channels_last)
        shape = device_data.input_shape  # (C, H, W) for images, (D,) for flat features
        ctx = Context(
            data=device_data, device=dev, seed=seed, num_classes=data.num_classes, n_train=len(data.labels),
            in_channels=shape[0] if len(shape) == 3 else 1, input_shape=shape,
            default_model=data.dataset.default_model, dataset_name=data.name, noise_spec=data.noise.spec,
        )
        self.grad_scaler = grad_scaler(dev, self.config.precision)
        self.setup(ctx)
        start_epoch, wall_before = 0, 0.0
        if resume and checkpoint.exists():
            state = load_checkpoint(checkpoint)
            for net, sd in zip(self.networks(), state["networks"]):
                net.load_state_dict(sd)
            self.load_state_dict(state["method"])
            if state.get("grad_scaler"):
                self.grad_scaler.load_state_dict(state["grad_scaler"])
            set_rng_state(state["rng"])
            start_epoch, wall_before = state["next_epoch"], state["wall_s"]
            recorder.resume(start_epoch)
        else:
            recorder.start(config)

        total = self.num_epochs()
        t0 = time.perf_counter()
        bar = None
        if progress:
            from lnlkit.widgets import widget_frontend_available

            # a notebook widget bar only where a front-end renders it; a text bar in scripts and papermill output
            if widget_frontend_available():
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm

            bar = tqdm(total=total, initial=start_epoch, desc=f"{self.name}", unit="epoch", leave=False, mininterval=1.0)
        ctx.progress = bar
        epoch = start_epoch
        try:
            for epoch in range(start_epoch, total):
                if self.finished():  # a resumed run whose schedule had already ended
                    break
                t_epoch = time.perf_counter()
                output = self.train_epoch(ctx, epoch)
                record = {"epoch": epoch, **output.record, **self.evaluate(ctx),
                          "wall_s": time.perf_counter() - t_epoch}
                last = epoch == total - 1 or self.finished()
                keep_signals = last or epoch % self.config.record_signals_every == 0
                # quality metrics (selection precision, AUROC) every epoch; per-sample arrays on recorded epochs only
                record = recorder.log_epoch(record, output.signals, store=keep_signals)
                for cb in callbacks:
                    cb(record)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{record[k]:.3g}" for k in ("loss", "test_acc", "sel_precision")
                                     if isinstance(record.get(k), float)})
                if last or (epoch + 1) % self.config.checkpoint_every == 0:
                    recorder.flush()
                    save_checkpoint(checkpoint, {
                        "next_epoch": epoch + 1, "networks": [n.state_dict() for n in self.networks()],
                        "method": self.state_dict(), "rng": rng_state(), "grad_scaler": self.grad_scaler.state_dict(),
                        "wall_s": wall_before + time.perf_counter() - t0,
                    })
                    recorder.write_result(self._result(recorder.history, data, "interrupted", wall_before + time.perf_counter() - t0))
                if last:
                    break
        except KeyboardInterrupt:
            recorder.write_result(self._result(recorder.history, data, "interrupted", wall_before + time.perf_counter() - t0))
            raise
        finally:
            if bar is not None:
                bar.close()
        recorder.write_result(self._result(recorder.history, data, "complete", wall_before + time.perf_counter() - t0))
        return load_run(out)

    def _check_same_run(self, out: Path, config: dict) -> None:
        saved = json.loads((out / "config.json").read_text())
        keys = ("method", "hyperparameters", "dataset", "noise", "noise_seed", "seed", "n_train")
        fresh = json.loads(json.dumps({k: config[k] for k in keys}, default=str))
        diffs = [k for k in keys if saved.get(k) != fresh.get(k)]
        if diffs:
            raise ValueError(f"cannot resume {out}: its config differs in {', '.join(diffs)}; use a new --out folder")

    def reporting_epochs(self, history: list[dict]) -> list[dict]:
        """The epochs ``test_acc_best`` and ``best_epoch`` are taken over (default: all of them; a method with a
        preliminary stage, e.g. Prune4ReL's warm-up before the selection, reports from its final stage only)."""
        return history

    def _result(self, history: list[dict], data: NoisyDataset, status: str, wall_s: float) -> dict:
        accs = [r.get("test_acc") for r in history if r.get("test_acc") is not None]
        best = [r for r in self.reporting_epochs(history) if r.get("test_acc") is not None]
        result: dict[str, Any] = {
            "status": status, "epochs_done": len(history), "epochs_total": self.num_epochs(),
            "test_acc_last": accs[-1] if accs else None,
            "test_acc_best": max(r["test_acc"] for r in best) if best else None,
            "best_epoch": int(best[int(np.argmax([r["test_acc"] for r in best]))]["epoch"]) if best else None,
            "reported": self.reported_metric(history) if history else None, "reported_as": self.reported_as,
            "realized_rate": data.noise.realized_rate, "noise": data.noise.spec, "wall_s": wall_s,
        }
        if history:
            for key in ("sel_precision", "sel_recall", "sel_f1", "sel_fraction", "sel_auroc"):
                if key in history[-1]:
                    result[key] = history[-1][key]
            for key, value in history[-1].items():
                if key.startswith("test_acc_net"):
                    result[key + "_last"] = value
        return result

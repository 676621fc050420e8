"""The training driver behind ``Method.fit``: the run folder, atomic checkpoints and exact resume, the progress bar,
callbacks, test evaluation after every epoch, per-sample signals and the final ``result.json``.

A method only implements its hooks (``setup``, ``train_epoch``, ``networks``, ...; see :mod:`lnlkit.methods.base`);
:func:`fit` runs them epoch by epoch.  The driver never imports the notebook UI: the caller chooses the progress bar
(``progress=True`` is a plain tqdm text bar; pass a factory such as :func:`lnlkit.widgets.progress_bar` for a notebook
widget).
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Union

import numpy as np
import torch

from lnlkit._version import __version__
from lnlkit.data.dataset import Dataset, NoisyDataset
from lnlkit.data.pipeline import apply_normalization, pipeline_record
from lnlkit.runs import RunResult, load_run
from lnlkit.train.checkpoint import load_checkpoint, save_checkpoint
from lnlkit.train.context import Context
from lnlkit.train.device import grad_scaler, resolve_device, rng_state, seed_everything, set_rng_state
from lnlkit.train.loader import DeviceData
from lnlkit.train.recorder import RunRecorder, run_lock

__all__ = [
    "fit",
    "text_progress_bar",
    "ProgressBar",
    "ProgressFactory",
    "check_same_run",
    "run_summary",
    "SAME_RUN_KEYS",
    "build_context",
    "restore_trained",
]

# config.json entries a resumed run must share with the run in its folder
SAME_RUN_KEYS = ("method", "hyperparameters", "dataset", "noise", "noise_seed", "seed", "n_train")


class ProgressBar(Protocol):
    """What the driver needs of a progress bar (tqdm's interface)."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix(self, ordered_dict: dict | None = None, **kwargs: Any) -> Any: ...

    def close(self) -> Any: ...


# (total=epochs, initial=first epoch, desc=method name) -> a bar
ProgressFactory = Callable[..., ProgressBar]


def text_progress_bar(total: int, initial: int = 0, desc: str = "") -> ProgressBar:
    """The default bar: tqdm's plain text bar, one step per epoch (readable in scripts, logs and papermill output)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=False, mininterval=1.0)


def _progress_factory(progress: Union[bool, ProgressFactory, None]) -> ProgressFactory | None:
    if progress is None or progress is False:
        return None
    if progress is True:
        return text_progress_bar
    if callable(progress):
        return progress
    raise TypeError(f"progress must be True, False or a bar factory (total=, initial=, desc=), got {progress!r}")


def fit(
    method: Any,
    data: NoisyDataset | Dataset,
    out: str | Path | None = None,
    device: str = "auto",
    callbacks: Iterable[Callable[[dict], None]] = (),
    resume: bool = False,
    progress: Union[bool, ProgressFactory] = True,
    seed: int | None = None,
) -> RunResult:
    """Train ``method`` (a :class:`lnlkit.methods.Method`) on ``data`` and write the run folder ``out``.

    Parameters
    ----------
    method : Method
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
        True: a tqdm text bar; False: none; a callable ``factory(total=, initial=, desc=)`` returning a bar with
        ``update``, ``set_postfix`` and ``close`` (e.g. :func:`lnlkit.widgets.progress_bar` in a notebook).
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
    bar_factory = _progress_factory(progress)
    seed = int(data.seed if seed is None else seed)
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"lnlkit-{method.name}-"))
    dev = resolve_device(device)  # bad input fails before any folder is made
    cfg = method.config
    if dev.type != "cuda" and "fp16" in (cfg.precision, cfg.eval_precision):
        raise ValueError("precision 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on the CPU")
    method.pretrained_record()  # a paper that starts from ImageNet weights: no silent from-scratch run
    requested, strict = method.normalization_request()  # the preset's data pipeline, whoever loaded the data
    # the warning names the line that called Method.fit (Method.fit -> this function -> apply_normalization)
    data = apply_normalization(
        data,
        requested,
        strict=strict,
        warn=True,
        stacklevel=4,
        who=f"{method.name}" + (f" (preset {method.preset!r})" if method.preset else ""),
    )
    with run_lock(out):  # a second process on the same folder waits, then resumes or refuses
        return _fit(method, data, out, dev, callbacks, resume, bar_factory, seed)


def _fit(
    method: Any,
    data: NoisyDataset,
    out: Path,
    dev: torch.device,
    callbacks: Iterable[Callable[[dict], None]],
    resume: bool,
    bar_factory: ProgressFactory | None,
    seed: int,
) -> RunResult:
    config = {
        **method.describe(),
        "dataset": data.name,
        "noise": data.noise.spec,
        "noise_info": data.noise.info,
        "noise_seed": data.seed,
        "seed": seed,
        "device": str(dev),
        "num_classes": data.num_classes,
        "n_train": len(data.labels),
        "lnlkit_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        **method.pretrained_record(),
        "data": pipeline_record(data.dataset),
    }
    checkpoint = out / "checkpoint.pt"
    if resume and (out / "config.json").exists():
        check_same_run(out, config)
        if (out / "result.json").exists() and json.loads((out / "result.json").read_text()).get("status") == "complete":
            return load_run(out)
    elif not resume and out.exists() and any((out / f).exists() for f in ("config.json", "checkpoint.pt")):
        raise FileExistsError(f"{out} already holds a run; pass resume=True (--resume) or choose another folder")

    true_labels = data.dataset.y_train if data.dataset.clean_train_known else None
    recorder = RunRecorder(out, data.noise, true_labels)
    seed_everything(seed)
    cfg = method.config
    ctx = build_context(method, data, dev, seed)
    method.grad_scaler = grad_scaler(dev, cfg.precision)
    method.setup(ctx)
    start_epoch, wall_before = 0, 0.0
    if resume and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        for net, sd in zip(method.networks(), state["networks"]):
            net.load_state_dict(sd)
        method.load_state_dict(state["method"])
        if state.get("grad_scaler"):
            method.grad_scaler.load_state_dict(state["grad_scaler"])
        set_rng_state(state["rng"])
        start_epoch, wall_before = state["next_epoch"], state["wall_s"]
        recorder.resume(start_epoch)
    else:
        recorder.start(config)

    total = method.num_epochs()
    ctx.total_epochs = total  # the schedule as set up (and resumed)
    t0 = time.perf_counter()
    bar = bar_factory(total=total, initial=start_epoch, desc=f"{method.name}") if bar_factory is not None else None
    ctx.progress = bar
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, total):
            if method.finished():  # a resumed run whose schedule had already ended
                break
            t_epoch = time.perf_counter()
            output = method.train_epoch(ctx, epoch)
            record = {"epoch": epoch, **output.record, **method.evaluate(ctx), "wall_s": time.perf_counter() - t_epoch}
            last = epoch == total - 1 or method.finished()
            # quality metrics (selection precision, AUROC) every epoch; per-sample arrays on recorded epochs only
            record = recorder.log_epoch(record, output.signals, store=ctx.records_signals(epoch))
            for cb in callbacks:
                cb(record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    {
                        k: f"{record[k]:.3g}"
                        for k in ("loss", "test_acc", "sel_precision")
                        if isinstance(record.get(k), float)
                    }
                )
            if last or (epoch + 1) % cfg.checkpoint_every == 0:
                recorder.flush()
                save_checkpoint(
                    checkpoint,
                    {
                        "next_epoch": epoch + 1,
                        "networks": [n.state_dict() for n in method.networks()],
                        "method": method.state_dict(),
                        "rng": rng_state(),
                        "grad_scaler": method.grad_scaler.state_dict(),
                        "wall_s": wall_before + time.perf_counter() - t0,
                    },
                )
                recorder.write_result(
                    method._result(recorder.history, data, "interrupted", wall_before + time.perf_counter() - t0)
                )
            if last:
                break
    except KeyboardInterrupt:
        recorder.write_result(
            method._result(recorder.history, data, "interrupted", wall_before + time.perf_counter() - t0)
        )
        raise
    finally:
        if bar is not None:
            bar.close()
    recorder.write_result(method._result(recorder.history, data, "complete", wall_before + time.perf_counter() - t0))
    return load_run(out)


def build_context(method: Any, data: NoisyDataset, dev: torch.device, seed: int) -> Context:
    """What a method's hooks receive: the data on the device (given labels only, never the true noise mask), the
    device, the seed and the data's shape."""
    cfg = method.config
    # fp32 runs keep the inputs in float32 (on CUDA the default storage is float16, which rounds them)
    storage = torch.float32 if cfg.precision == "fp32" else None
    device_data = DeviceData(data, dev, seed, storage_dtype=storage, channels_last=cfg.channels_last)
    shape = device_data.input_shape  # (C, H, W) for images, (D,) for flat features
    return Context(
        data=device_data,
        device=dev,
        seed=seed,
        num_classes=data.num_classes,
        n_train=len(data.labels),
        in_channels=shape[0] if len(shape) == 3 else 1,
        input_shape=shape,
        default_model=data.dataset.default_model,
        dataset_name=data.name,
        noise_spec=data.noise.spec,
        record_signals_every=cfg.record_signals_every,
        finished=method.finished,
    )


def restore_trained(method: Any, data: NoisyDataset | Dataset, out: str | Path, device: str = "auto") -> Context:
    """Rebuild ``method``'s networks as its run folder ``out`` left them (its last checkpoint), for predictions
    after training (e.g. :func:`lnlkit.find_label_issues`' suggested labels).

    Parameters
    ----------
    method : Method
        Configured as the run was (same data pipeline and networks).
    data : NoisyDataset or Dataset
        The data the run trained on.
    out : path
        The run folder; it must hold ``checkpoint.pt``.
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    Context
        The context the networks were set up in (``ctx.data`` holds the training inputs, normalised as in training).
    """
    if isinstance(data, Dataset):
        data = data.with_noise("none")
    checkpoint = Path(out) / "checkpoint.pt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"{out} holds no checkpoint.pt; train the run first")
    dev = resolve_device(device)
    requested, strict = method.normalization_request()
    data = apply_normalization(data, requested, strict=strict, warn=False)
    seed = int(json.loads((Path(out) / "config.json").read_text()).get("seed", data.seed))
    seed_everything(seed)
    ctx = build_context(method, data, dev, seed)
    method.setup(ctx)
    state = load_checkpoint(checkpoint)
    for net, sd in zip(method.networks(), state["networks"]):
        net.load_state_dict(sd)
    return ctx


def check_same_run(out: Path, config: dict) -> None:
    """Refuse to resume ``out`` with a run whose method, hyperparameters, data, noise or seeds differ.

    Raises
    ------
    ValueError
        Naming the differing ``config.json`` entries.
    """
    saved = json.loads((Path(out) / "config.json").read_text())
    fresh = json.loads(json.dumps({k: config[k] for k in SAME_RUN_KEYS}, default=str))
    diffs = [k for k in SAME_RUN_KEYS if saved.get(k) != fresh.get(k)]
    if diffs:
        raise ValueError(f"cannot resume {out}: its config differs in {', '.join(diffs)}; use a new --out folder")


def run_summary(method: Any, history: list[dict], data: NoisyDataset, status: str, wall_s: float) -> dict:
    """The ``result.json`` of a run: status, last / best test accuracy (best over ``method.reporting_epochs``), the
    method's reported metric, the realised noise rate and the last epoch's selection quality.

    Parameters
    ----------
    method : Method
    history : list of dict
        The epoch records so far.
    data : NoisyDataset
    status : {"complete", "interrupted"}
    wall_s : float
        Training seconds so far (all sessions of a resumed run).
    """
    accs = [r.get("test_acc") for r in history if r.get("test_acc") is not None]
    best = [r for r in method.reporting_epochs(history) if r.get("test_acc") is not None]
    result: dict[str, Any] = {
        "status": status,
        "epochs_done": len(history),
        "epochs_total": method.num_epochs(),
        "test_acc_last": accs[-1] if accs else None,
        "test_acc_best": max(r["test_acc"] for r in best) if best else None,
        "best_epoch": int(best[int(np.argmax([r["test_acc"] for r in best]))]["epoch"]) if best else None,
        "reported": method.reported_metric(history) if history else None,
        "reported_as": method.reported_as,
        "realized_rate": data.noise.realized_rate,
        "noise": data.noise.spec,
        "wall_s": wall_s,
    }
    if history:
        for key in ("sel_precision", "sel_recall", "sel_f1", "sel_fraction", "sel_auroc"):
            if key in history[-1]:
                result[key] = history[-1][key]
        for key, value in history[-1].items():
            if key.startswith("test_acc_net"):
                result[key + "_last"] = value
    return result

"""The run folder (docs/run_folder.md): writing it atomically during training (its reader is :mod:`lnlkit.runs`).

Files: ``config.json``, ``noise.npz``, ``history.jsonl``, ``signals.npz``, ``result.json``, ``checkpoint.pt``.
Every write goes to a temporary file in the same folder and is renamed into place, so a killed run never leaves a
truncated file.  The recorder is the only component that sees the true noise mask: it turns each epoch's selected
mask into selection precision/recall/F1, and a method's per-sample clean score into its AUROC against the true clean
mask, *after* the method has produced them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# the reader lives in lnlkit.runs; these names stay importable from here for code written against this module
from lnlkit.runs import RunResult, is_complete_run, load_run, read_jsonl, results_table
from lnlkit.train.selection import selection_quality

__all__ = [
    "RUN_FILES",
    "atomic_write_bytes",
    "write_json",
    "run_lock",
    "RunRecorder",
    "auroc",
    "CLEAN_SCORE_SIGNALS",
    "RunResult",
    "load_run",
    "results_table",
    "is_complete_run",
]

RUN_FILES = ("config.json", "noise.npz", "history.jsonl", "signals.npz", "result.json", "checkpoint.pt")


# ---------------------------------------------------------------------------------------------- atomic writes
def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder ``out`` (created if needed) while training into it.

    Two processes pointed at one folder (e.g. two notebooks of a batch that both need the same baseline run) then
    train it one after the other instead of interleaving their writes: the second waits, and with ``resume=True``
    finds the finished run.  On systems without ``fcntl`` (Windows) nothing is locked.

    When the body fails before anything but the lock file is in the folder (bad input found while the networks are
    built, e.g. a ``weights_path`` the model cannot take), the lock file goes, and the folder too if this call made
    it: a failed command leaves no run folder behind.
    """
    out = Path(out)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    try:
        if fcntl is None:
            yield
            return
        with open(out / ".lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except BaseException:
        _remove_if_untouched(out, made)
        raise


def _remove_if_untouched(out: Path, made: bool) -> None:
    """Remove ``out/.lock`` when it is all the folder holds, and ``out`` itself when ``made`` (by :func:`run_lock`)."""
    try:
        if any(p.name != ".lock" for p in out.iterdir()):
            return  # a run (or the user's files) is there: keep everything
        (out / ".lock").unlink(missing_ok=True)
        if made:
            out.rmdir()
    except OSError:  # another process wrote meanwhile, or the folder is gone: leave it as it is
        pass


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as pretty JSON (NaN/inf become null)."""
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n").encode())


def _npz_bytes(arrays: dict[str, np.ndarray], compresslevel: int | None = None) -> bytes:
    """The bytes of an ``.npz`` file holding ``arrays`` (what ``np.savez_compressed`` writes; ``compresslevel`` 1-9
    trades size for speed, None is zlib's default)."""
    buf = io.BytesIO()
    if compresslevel is None:
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=True)  # as np.savez
    return buf.getvalue()


# signals.npz is rewritten whole at every checkpoint, so a run pays for compressing every epoch so far at every
# epoch; level 1 compresses 4x faster than the default for about 4% more bytes (same arrays when read back)
SIGNALS_COMPRESSLEVEL = 1


# ---------------------------------------------------------------------------------------------- selection AUROC
# Per-sample signals a method may emit to say how clean it believes each sample is (float, higher = cleaner, NaN =
# not scored this epoch); ``clean_prob_net2`` etc. score under a suffix.  The recorder turns each into
# ``sel_auroc{suffix}`` (DivideMix's official log reports this AUC of its clean posterior every epoch).
CLEAN_SCORE_SIGNALS = ("clean_score", "clean_prob")


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary labels ``positive``, by ranks (Mann-Whitney U).

    ``AUROC = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋)`` with ``R₊`` the sum of the positives' ranks among all scores (1-based;
    tied scores share their average rank, so a tie between a positive and a negative counts one half).  Samples with
    a NaN score are left out.

    Parameters
    ----------
    scores : ndarray float (N,)
        Higher = more likely positive.
    positive : ndarray bool (N,)

    Returns
    -------
    float
        In [0, 1]; NaN when no scored sample is positive or none is negative.

    Raises
    ------
    ValueError
        When the shapes differ or are not one-dimensional.
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if s.ndim != 1 or s.shape != pos.shape:
        raise ValueError(f"scores and positive must be 1-D arrays of one length, got {s.shape} and {pos.shape}")
    scored = ~np.isnan(s)
    s, pos = s[scored], pos[scored]
    n_pos = int(pos.sum())
    n_neg = len(s) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    _, first, count = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (count + 1) / 2.0, count)  # average 1-based rank of each run of ties
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _clean_score_suffixes(signals: dict) -> dict[str, str]:
    """``{suffix: signal name}`` of the clean-score signals in ``signals`` (``clean_score`` wins over
    ``clean_prob`` under one suffix)."""
    found: dict[str, str] = {}
    for base in reversed(CLEAN_SCORE_SIGNALS):
        for key in signals:
            if key == base or key.startswith(base + "_"):
                found[key[len(base) :]] = key
    return found


# ---------------------------------------------------------------------------------------------- recorder
def _fill_value(dtype: np.dtype):
    """Placeholder for an epoch that lacks a signal: False, -1 or NaN by dtype."""
    return False if np.dtype(dtype) == np.dtype(bool) else (-1 if np.issubdtype(dtype, np.integer) else np.nan)


class RunRecorder:
    """Writes a run folder as training goes.

    Parameters
    ----------
    out : path
        The run folder.
    noise : lnlkit.noise.NoisyLabels
        The labels the method trains on; ``is_noisy`` is used for selection quality only.
    true_labels : ndarray (N,), optional
        Clean training labels where known (stored in ``noise.npz`` for the example plots).
    """

    def __init__(self, out: str | os.PathLike, noise: Any, true_labels: np.ndarray | None = None):
        self.out = Path(out)
        self.noise = noise
        self.true_labels = true_labels
        self.history: list[dict] = []
        self._signals: dict[str, list[np.ndarray]] = {}
        self._signal_epochs: list[int] = []

    # -- start / resume
    def start(self, config: dict) -> None:
        """Write ``config.json`` and ``noise.npz`` for a new run."""
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "config.json", config)
        noise = self.noise
        arrays = {
            "labels": np.asarray(noise.labels, dtype=np.int64),
            "is_noisy": np.asarray(noise.is_noisy if noise.is_noisy is not None else np.zeros(0), dtype=bool),
            "transition": np.asarray(noise.transition if noise.transition is not None else np.zeros((0, 0))),
            "realized_rate": np.asarray(np.nan if noise.realized_rate is None else noise.realized_rate),
            "num_classes": np.asarray(noise.num_classes),
            "spec": np.asarray(noise.spec),
        }
        if getattr(noise, "ood_mask", None) is not None:
            arrays["ood_mask"] = np.asarray(noise.ood_mask, dtype=bool)
        if self.true_labels is not None:
            arrays["true_labels"] = np.asarray(self.true_labels, dtype=np.int64)
        atomic_write_bytes(self.out / "noise.npz", _npz_bytes(arrays))
        atomic_write_bytes(self.out / "history.jsonl", b"")

    def resume(self, next_epoch: int) -> None:
        """Reload history and signals written before the checkpoint and drop anything recorded after it."""
        self.history = [r for r in read_jsonl(self.out / "history.jsonl") if r["epoch"] < next_epoch]
        sig_path = self.out / "signals.npz"
        if sig_path.exists():
            with np.load(sig_path) as z:
                epochs = z["epoch"].tolist()
                keep = [i for i, e in enumerate(epochs) if e < next_epoch]
                self._signal_epochs = [epochs[i] for i in keep]
                self._signals = {k: [z[k][i] for i in keep] for k in z.files if k != "epoch"}

    # -- per epoch
    def log_epoch(self, record: dict, signals: dict[str, np.ndarray] | None = None, store: bool = True) -> dict:
        """Add one epoch.

        Quality metrics come from ``signals`` and the true mask: selection precision/recall/F1 from
        ``selected*`` (bool) and ``sel_auroc{suffix}`` from ``clean_score{suffix}`` / ``clean_prob{suffix}``
        (float, higher = cleaner, NaN = not scored).  ``store=False`` computes them without keeping the signals in
        ``signals.npz`` (epochs between ``record_signals_every``).

        Returns the completed record (what callbacks and the progress bar see).
        """
        record = dict(record)
        if signals:
            is_noisy = self.noise.is_noisy
            for key, value in signals.items():
                if key == "selected" or key.startswith("selected_"):
                    suffix = key[len("selected") :]
                    for name, v in selection_quality(np.asarray(value, dtype=bool), is_noisy).items():
                        record[name + suffix] = v
            if is_noisy is not None:
                clean = ~np.asarray(is_noisy, dtype=bool)
                for suffix, key in _clean_score_suffixes(signals).items():
                    record["sel_auroc" + suffix] = auroc(np.asarray(signals[key], dtype=np.float64), clean)
            record.update(self._rejection_quality(signals))
            if store:
                self._add_signals(int(record["epoch"]), signals)
        self.history.append(_jsonable(record))
        return record

    def _rejection_quality(self, signals: dict[str, np.ndarray]) -> dict[str, float]:
        """Quality of a method's out-of-distribution rejections (``signals['rejected']``, bool) and relabelling
        (``signals['relabel']``, int, -1 where a sample is not relabelled), against the truth, after the fact.

        ``ood_precision`` / ``ood_recall``: rejected samples that are open-set / open-set samples rejected (open-set
        noise only); ``rej_noisy_precision``: rejected samples whose given label is wrong; ``relabel_acc``:
        relabelled in-distribution samples whose new label is the true one (where clean labels are known).
        """
        out: dict[str, float] = {}
        if "rejected" in signals:
            rejected = np.asarray(signals["rejected"], dtype=bool)
            out["n_rejected"] = int(rejected.sum())
            ood = getattr(self.noise, "ood_mask", None)
            if ood is not None:
                ood = np.asarray(ood, dtype=bool)
                out["ood_precision"] = float(ood[rejected].mean()) if rejected.any() else float("nan")
                out["ood_recall"] = float(rejected[ood].mean()) if ood.any() else float("nan")
            if self.noise.is_noisy is not None and rejected.any():
                out["rej_noisy_precision"] = float(np.asarray(self.noise.is_noisy, dtype=bool)[rejected].mean())
        if "relabel" in signals and self.true_labels is not None:
            relabel = np.asarray(signals["relabel"])
            done = relabel >= 0
            ood = getattr(self.noise, "ood_mask", None)
            if ood is not None:
                done &= ~np.asarray(ood, dtype=bool)  # an open-set sample has no true class among the labels
            out["n_relabelled"] = int((relabel >= 0).sum())
            out["relabel_acc"] = (
                float((relabel[done] == np.asarray(self.true_labels)[done]).mean()) if done.any() else float("nan")
            )
        return out

    def _add_signals(self, epoch: int, signals: dict[str, np.ndarray]) -> None:
        n_before = len(self._signal_epochs)
        for key, value in signals.items():
            arr = np.asarray(value)
            if np.issubdtype(arr.dtype, np.floating):
                # float16 halves the run folder; values beyond its range (±65504) keep float32 instead of
                # silently becoming ±inf
                finite = arr[np.isfinite(arr)]
                fits = finite.size == 0 or float(np.abs(finite).max()) <= float(np.finfo(np.float16).max)
                arr = arr.astype(np.float16 if fits else np.float32)
            if key not in self._signals:  # a signal that appears late: pad earlier epochs
                self._signals[key] = [np.full_like(arr, _fill_value(arr.dtype)) for _ in range(n_before)]
            self._signals[key].append(arr)
        for key, rows in self._signals.items():
            if len(rows) == n_before:  # missing this epoch
                rows.append(np.full_like(rows[-1], _fill_value(rows[-1].dtype)))
        self._signal_epochs.append(epoch)

    def flush(self) -> None:
        """Atomically rewrite ``history.jsonl`` and ``signals.npz`` with everything recorded so far."""
        lines = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write_bytes(self.out / "history.jsonl", lines.encode())
        if self._signal_epochs:
            arrays = {k: np.stack(v) for k, v in self._signals.items()}
            arrays["epoch"] = np.asarray(self._signal_epochs, dtype=np.int64)
            atomic_write_bytes(self.out / "signals.npz", _npz_bytes(arrays, SIGNALS_COMPRESSLEVEL))

    def write_result(self, result: dict) -> None:
        write_json(self.out / "result.json", result)

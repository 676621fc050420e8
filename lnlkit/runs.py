"""Run folders and results tables: naming a run's folder, reading it back, tabulating many.

A run folder (docs/run_folder.md) is written by :class:`lnlkit.train.recorder.RunRecorder` during training; this
module is its reader.  Everything that looks at finished runs (the CLI's ``table``, the batch in
:mod:`lnlkit.reproduce`, :mod:`lnlkit.plots`, :mod:`lnlkit.widgets`, the notebooks) reads them through it.

* :func:`run_folder` / :func:`noise_tag`: where a batch or a notebook keeps the run of a method on one grid cell;
* :func:`load_run` -> :class:`RunResult`; :func:`is_complete_run`;
* :func:`results_table` (one row per run, or mean and std over seeds), :func:`summary_table` (complete runs, mean and
  std over seeds), :func:`display_table` (its ``mean ± std`` form) and :func:`format_table` (markdown, CSV, LaTeX).

It imports nothing else from lnlkit, so any module may use it without an import cycle.
"""

from __future__ import annotations

import glob as globmod
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = [
    "RunResult",
    "load_run",
    "is_complete_run",
    "read_jsonl",
    "run_folder",
    "noise_tag",
    "TABLE_COLUMNS",
    "results_table",
    "summary_table",
    "display_table",
    "TABLE_FORMATS",
    "format_table",
]


# ---------------------------------------------------------------------------------------------- naming
def noise_tag(noise: str) -> str:
    """A folder-safe form of a noise spec: ``symmetric:0.4`` -> ``symmetric-0.4``,
    ``openset:0.2+symmetric:0.4`` -> ``openset-0.2_symmetric-0.4``."""
    return str(noise).replace(":", "-").replace("+", "_").replace("/", "-")


def run_folder(
    runs_root: str | os.PathLike, method: str, dataset: str, noise: str, seed: int, variant: str | None = None
) -> Path:
    """Where a batch (or a notebook) keeps the run of ``method`` on one grid cell.

    Parameters
    ----------
    variant : str, optional
        Tells apart several runs of one method on the same cell (e.g. an ablation preset).

    Returns
    -------
    Path
        ``<runs_root>/<method>[+<variant>]/<dataset>_<noise tag>_s<seed>``, with ``:`` in the method name as ``-``
        (``prune:uniform`` -> ``prune-uniform``)
    """
    method = str(method).replace(":", "-")
    folder = method if variant is None else f"{method}+{variant}"
    return Path(runs_root) / folder / f"{dataset}_{noise_tag(noise)}_s{int(seed)}"


# ---------------------------------------------------------------------------------------------- reading
def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines file (``history.jsonl``); an empty list when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class RunResult:
    """A run folder as Python objects.

    Attributes
    ----------
    path : Path
    config : dict
    history : list of dict, one per epoch
    result : dict, the final metrics (``status`` says whether the run completed)
    labels, is_noisy, transition : ndarrays from ``noise.npz`` (``is_noisy`` None when unknown)
    """

    path: Path
    config: dict
    history: list[dict]
    result: dict
    labels: np.ndarray
    is_noisy: np.ndarray | None
    transition: np.ndarray | None
    true_labels: np.ndarray | None = None
    ood_mask: np.ndarray | None = None  # open-set noise: samples whose true class is outside the label space
    _signals: dict | None = field(default=None, repr=False)

    @property
    def signals(self) -> dict[str, np.ndarray]:
        """Per-epoch per-sample arrays (loaded on first access): ``epoch`` (E,), ``loss`` (E, N), ..."""
        if self._signals is None:
            path = self.path / "signals.npz"
            if path.exists():
                with np.load(path) as z:
                    self._signals = {k: z[k] for k in z.files}
            else:
                self._signals = {}
        return self._signals

    def history_frame(self):
        """History as a pandas DataFrame (one row per epoch)."""
        import pandas as pd

        return pd.DataFrame(self.history)

    def curve(self, key: str) -> np.ndarray:
        """One history column over epochs (NaN where an epoch lacks it)."""
        return np.array([np.nan if r.get(key) is None else r.get(key) for r in self.history], dtype=float)

    @property
    def complete(self) -> bool:
        return self.result.get("status") == "complete"


def load_run(path: str | os.PathLike) -> RunResult:
    """Read a run folder written by :meth:`lnlkit.methods.Method.fit`.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a run folder (no ``config.json``).
    """
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not an lnlkit run folder (no config.json)")
    config = json.loads((path / "config.json").read_text())
    result = (
        json.loads((path / "result.json").read_text()) if (path / "result.json").exists() else {"status": "running"}
    )
    labels = is_noisy = transition = true_labels = ood_mask = None
    if (path / "noise.npz").exists():
        with np.load(path / "noise.npz") as z:
            labels = z["labels"]
            is_noisy = z["is_noisy"] if z["is_noisy"].size else None
            transition = z["transition"] if z["transition"].size else None
            true_labels = z["true_labels"] if "true_labels" in z.files else None
            ood_mask = z["ood_mask"] if "ood_mask" in z.files else None
    return RunResult(
        path, config, read_jsonl(path / "history.jsonl"), result, labels, is_noisy, transition, true_labels, ood_mask
    )


def is_complete_run(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a run whose ``result.json`` says ``complete``."""
    try:
        return json.loads((Path(path) / "result.json").read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def _expand(paths_or_glob: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, os.PathLike)) else list(paths_or_glob)
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if (p / "config.json").exists():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(q.parent for q in p.rglob("config.json")))
        else:
            found.extend(sorted(Path(m) for m in globmod.glob(str(item)) if (Path(m) / "config.json").exists()))
    return sorted(set(found))


# ---------------------------------------------------------------------------------------------- tables
TABLE_COLUMNS = [
    "method",
    "preset",
    "from_scratch",
    "dataset",
    "noise",
    "seed",
    "realized_rate",
    "reported",
    "reported_as",
    "test_acc_last",
    "test_acc_best",
    "sel_precision",
    "sel_recall",
    "sel_auroc",
    "epochs",
    "wall_s",
    "status",
    "path",
]


def results_table(paths_or_glob: str | os.PathLike | Iterable[str | os.PathLike], aggregate: bool = False):
    """Collect run folders into a table.

    Parameters
    ----------
    paths_or_glob : path, glob pattern or list of them
        Run folders, or folders searched recursively for run folders.
    aggregate : bool
        One row per (method, preset, dataset, noise) with mean and standard deviation over seeds of the reported,
        last and best accuracies, the selection precision and AUROC, and the number of seeds.

    Returns
    -------
    pandas.DataFrame
        ``from_scratch`` marks runs of a preset whose paper starts from ImageNet weights that trained from scratch
        (``pretrained=false``).
    """
    import pandas as pd

    rows = []
    for p in _expand(paths_or_glob):
        run = load_run(p)
        cfg, res = run.config, run.result
        rows.append(
            {
                "method": cfg.get("method"),
                "preset": cfg.get("preset"),
                # the preset's paper starts from ImageNet weights but this run did not (pretrained=false)
                "from_scratch": bool(cfg.get("from_scratch", False)),
                "dataset": cfg.get("dataset"),
                "noise": cfg.get("noise"),
                "seed": cfg.get("seed"),
                "realized_rate": res.get("realized_rate"),
                "reported": res.get("reported"),
                "reported_as": res.get("reported_as"),
                "test_acc_last": res.get("test_acc_last"),
                "test_acc_best": res.get("test_acc_best"),
                "sel_precision": res.get("sel_precision"),
                "sel_recall": res.get("sel_recall"),
                "sel_auroc": res.get("sel_auroc"),
                "epochs": len(run.history),
                "wall_s": res.get("wall_s"),
                "status": res.get("status"),
                "path": str(p),
            }
        )
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if not aggregate or frame.empty:
        return frame
    keys = ["method", "preset", "from_scratch", "dataset", "noise", "reported_as"]
    numeric = ["reported", "test_acc_last", "test_acc_best", "sel_precision", "sel_auroc", "realized_rate"]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    grouped = frame.groupby(keys, dropna=False)
    out = grouped[numeric].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = grouped.size()
    return out.reset_index()


def summary_table(runs_root: str | os.PathLike):
    """Mean ± std over seeds of every (method, data set, noise) found under ``runs_root``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``preset``, ``from_scratch`` (the paper starts from ImageNet weights, these runs did not),
        ``dataset``, ``noise``, ``realized_rate``, ``seeds``, ``reported_as`` and the
        mean and standard deviation of ``reported``, ``test_acc_last``, ``test_acc_best``, ``sel_precision``,
        ``sel_recall`` and ``sel_auroc``, sorted by data set, noise and method.  Only complete runs count.
    """
    import pandas as pd

    runs = results_table(runs_root)
    runs = runs[runs["status"] == "complete"]
    metrics = [
        "reported",
        "test_acc_last",
        "test_acc_best",
        "sel_precision",
        "sel_recall",
        "sel_auroc",
        "realized_rate",
    ]
    keys = ["method", "preset", "from_scratch", "dataset", "noise", "reported_as"]
    if runs.empty:
        return pd.DataFrame(columns=keys + ["seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")])
    runs = runs.assign(**{m: pd.to_numeric(runs[m], errors="coerce") for m in metrics})
    grouped = runs.groupby(keys, dropna=False)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table["seeds"] = grouped.size()
    table = table.reset_index()
    return table.sort_values(["dataset", "noise", "method"], kind="stable").reset_index(drop=True)


def _mean_std(mean: float, std: float, digits: int = 2) -> str:
    if mean != mean:  # NaN: the method has no such metric
        return ""
    return f"{mean:.{digits}f}" if std != std else f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_table(summary):
    """The human-readable form of :func:`summary_table`: one row per (data set, noise, method), metrics as
    ``mean ± std`` strings (what ``results/<profile>.md`` shows)."""
    import pandas as pd

    rows = []
    for r in summary.itertuples(index=False):
        rows.append(
            {
                "dataset": r.dataset,
                "noise": r.noise,
                "method": r.method,
                "preset": f"{r.preset} (from scratch)" if r.from_scratch else r.preset,
                "realised rate": _mean_std(r.realized_rate_mean, float("nan"), 3),
                "seeds": int(r.seeds),
                "reported": _mean_std(r.reported_mean, r.reported_std),
                "reported as": r.reported_as,
                "best": _mean_std(r.test_acc_best_mean, r.test_acc_best_std),
                "last": _mean_std(r.test_acc_last_mean, r.test_acc_last_std),
                "sel. precision": _mean_std(r.sel_precision_mean, r.sel_precision_std, 3),
                "sel. recall": _mean_std(r.sel_recall_mean, r.sel_recall_std, 3),
                "sel. AUROC": _mean_std(r.sel_auroc_mean, r.sel_auroc_std, 3),
            }
        )
    return pd.DataFrame(rows)


TABLE_FORMATS = ("md", "csv", "latex")


def format_table(frame, fmt: str) -> str:
    """Render a results table as markdown, CSV or LaTeX.

    Parameters
    ----------
    frame : pandas.DataFrame
        E.g. :func:`results_table` or :func:`display_table`.
    fmt : {"md", "csv", "latex"}
        CSV keeps full precision; markdown and LaTeX show floats with two decimals (NaN as an empty cell).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For another ``fmt``.
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; one of {', '.join(TABLE_FORMATS)}")
    if fmt == "csv":
        return frame.to_csv(index=False)
    shown = frame.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda v: "" if v != v else f"{v:.2f}")
    if fmt == "latex":
        return shown.to_latex(index=False)
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"

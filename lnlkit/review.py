"""Reviewing the suspects of :func:`lnlkit.find_label_issues`: their score distributions, a grid of the top suspects,
an ipywidgets browser to mark each one keep / relabel / drop, and the corrected data set.

>>> frame = lnlkit.find_label_issues(data, out="labels/")
>>> reviewer = review_suspects(frame, data)          # in JupyterLab: page through, mark keep / relabel / drop
>>> corrected, counts = apply_review(data, frame, reviewer.decisions)
>>> export_labels(corrected, "labels/corrected_labels.csv")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lnlkit.data.dataset import Dataset, ImageFiles, NoisyDataset

__all__ = [
    "DECISIONS",
    "plot_detection_scores",
    "suspect_images",
    "plot_suspects",
    "apply_review",
    "export_labels",
    "SuspectReviewer",
    "review_suspects",
]

# what a reviewer can decide for a suspect: keep the given label, take the suggested (or a chosen) one, drop it
DECISIONS = ("keep", "relabel", "drop")


def _dataset(data: Dataset | NoisyDataset) -> Dataset:
    return data.dataset if isinstance(data, NoisyDataset) else data


def _positions(dataset: Dataset, sample_ids: Sequence[Any]) -> np.ndarray:
    """Row positions of ``sample_ids`` in the data set's training samples."""
    lookup = {str(s): i for i, s in enumerate(dataset.sample_ids)}
    missing = [s for s in sample_ids if str(s) not in lookup]
    if missing:
        raise ValueError(f"{len(missing)} sample id(s) are not in {dataset.name}, e.g. {missing[0]!r}")
    return np.asarray([lookup[str(s)] for s in sample_ids], dtype=np.int64)


# ---------------------------------------------------------------------------------------------------- figures
def plot_detection_scores(frame: Any, truth: np.ndarray | None = None, bins: int = 30, ncols: int = 4):
    """Each method's clean score and the consensus, as histograms split by the consensus decision (``is_issue``) or,
    where a benchmark knows it, by the true noise mask.

    Parameters
    ----------
    frame : DataFrame
        From :func:`lnlkit.find_label_issues`.
    truth : ndarray bool (N,), optional
        True noise mask in ``frame``'s row order (benchmarks only: injected noise); the split is then by truth.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    columns = [c for c in frame.columns if c.startswith("score_")] + ["consensus"]
    split = frame["is_issue"].to_numpy(bool) if truth is None else np.asarray(truth, dtype=bool)
    names = ("flagged", "kept") if truth is None else ("wrong label (truth)", "right label (truth)")
    ncols = min(ncols, len(columns))
    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), squeeze=False)
    for ax, col in zip(axes.ravel(), columns):
        values = frame[col].to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        edges = np.histogram_bin_edges(values[finite], bins=bins) if finite.any() else bins
        ax.hist(values[finite & split], bins=edges, color="#CC6677", alpha=0.8, label=names[0])
        ax.hist(values[finite & ~split], bins=edges, color="#88CCEE", alpha=0.6, label=names[1])
        ax.set_title("consensus (mean rank percentile)" if col == "consensus" else col[len("score_") :], fontsize=9)
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(columns) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    fig.supxlabel("clean score (higher = cleaner)", fontsize=9)
    fig.tight_layout()
    return fig


def suspect_images(data: Dataset | NoisyDataset, sample_ids: Sequence[Any], side: int = 64) -> np.ndarray:
    """The images of ``sample_ids`` for display: ``(K, C, H, W)`` as stored (in memory) or decoded from their files
    (RGB uint8 thumbnails of ``side`` pixels).

    Raises
    ------
    ValueError
        For flat-feature data (nothing to show as an image) or unknown ids.
    """
    dataset = _dataset(data)
    if not dataset.is_image:
        raise ValueError(f"{dataset.name} holds flat features, not images; show the rows of the table instead")
    pos = _positions(dataset, sample_ids)
    if not isinstance(dataset.x_train, ImageFiles):
        return np.asarray(dataset.x_train[pos])
    from PIL import Image

    out = np.zeros((len(pos), 3, side, side), dtype=np.uint8)
    for k, i in enumerate(pos):
        with Image.open(dataset.x_train.paths[i]) as img:
            thumb = img.convert("RGB").resize((side, side))
        out[k] = np.asarray(thumb).transpose(2, 0, 1)
    return out


def plot_suspects(
    frame: Any,
    data: Dataset | NoisyDataset,
    n: int = 16,
    start: int = 0,
    ncols: int = 8,
    decisions: Mapping[str, Any] | None = None,
):
    """A grid of the suspects ranked ``start+1 .. start+n``: each image titled ``#rank given → suggested``; a
    decision, where one is made, frames it (green keep, orange relabel, grey drop).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows = frame.sort_values("rank").iloc[start : start + n]
    if rows.empty:
        raise ValueError(f"no suspects from rank {start + 1}")
    dataset = _dataset(data)
    images = suspect_images(dataset, rows["sample_id"].tolist())
    from lnlkit.plots import _display_images

    shown = _display_images(images, dataset.pixel_scale if dataset.in_memory else 255.0)
    ncols = min(ncols, len(rows))
    nrows = -(-len(rows) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.75 * nrows), squeeze=False)
    colours = {"keep": "green", "relabel": "orange", "drop": "grey"}
    for ax, (_, row), img in zip(axes.ravel(), rows.iterrows(), shown):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{row['rank']} {row['given_class']} → {row['suggested_class']}", fontsize=7)
        decision = (decisions or {}).get(str(row["sample_id"]))
        kind = decision if decision in colours else ("relabel" if decision is not None else None)
        for spine in ax.spines.values():
            spine.set_visible(kind is not None)
            spine.set_color(colours.get(kind, "black"))
            spine.set_linewidth(3.0)
    for ax in axes.ravel()[len(rows) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------- decisions
def apply_review(
    data: Dataset | NoisyDataset,
    frame: Any,
    decisions: Mapping[str, Any] | None = None,
    default: str = "relabel",
) -> tuple[Dataset, dict[str, int]]:
    """The data set with the review applied: relabelled samples take their new label, dropped ones leave.

    Parameters
    ----------
    data : Dataset or NoisyDataset
        What the detection ran on (its given labels are the starting point).
    frame : DataFrame
        From :func:`lnlkit.find_label_issues`.
    decisions : mapping sample id -> decision, optional
        ``"keep"``, ``"relabel"`` (to the suggested label), ``"drop"``, or a class (index or name) to relabel to.
    default : {"keep", "relabel", "drop"}
        What happens to the ``is_issue`` samples without a decision (the others keep their label).

    Returns
    -------
    Dataset
        Given labels corrected, dropped rows removed (with their ids); the test split unchanged.
    dict
        How many samples were kept, relabelled (to another class) and dropped.

    Raises
    ------
    ValueError
        For an unknown decision, class or sample id.
    """
    import dataclasses

    if default not in DECISIONS:
        raise ValueError(f"default must be one of {DECISIONS}, got {default!r}")
    dataset = _dataset(data)
    labels = np.asarray(data.labels if isinstance(data, NoisyDataset) else dataset.y_train).copy()
    names = [str(c) for c in dataset.class_names]
    pos = _positions(dataset, frame["sample_id"].tolist())
    suggested = dict(zip(pos, frame["suggested_label"].to_numpy()))
    chosen = {str(k): v for k, v in (decisions or {}).items()}
    unknown = sorted(set(chosen) - {str(s) for s in frame["sample_id"]})
    if unknown:
        raise ValueError(f"decisions name {len(unknown)} sample id(s) not in the detection, e.g. {unknown[0]!r}")
    keep = np.ones(len(labels), dtype=bool)
    counts = {"kept": 0, "relabelled": 0, "dropped": 0}
    for i, sid, issue in zip(pos, frame["sample_id"].astype(str), frame["is_issue"].to_numpy(bool)):
        decision = chosen.get(sid, default if issue else "keep")
        if decision == "drop":
            keep[i] = False
            counts["dropped"] += 1
            continue
        if decision == "keep":
            counts["kept"] += 1
            continue
        if decision == "relabel":
            new = int(suggested[i])
        elif isinstance(decision, str) and decision in names:
            new = names.index(decision)
        elif isinstance(decision, (int, np.integer)) and 0 <= int(decision) < len(names):
            new = int(decision)
        else:
            raise ValueError(f"unknown decision {decision!r} for {sid}; use {DECISIONS} or a class name or index")
        counts["relabelled" if new != labels[i] else "kept"] += 1
        labels[i] = new
    extras = dict(dataset.extras)
    extras["sample_ids"] = [str(s) for s in np.asarray(dataset.sample_ids)[keep]]
    rows = np.flatnonzero(keep)
    x = dataset.x_train.subset(rows) if isinstance(dataset.x_train, ImageFiles) else dataset.x_train[rows]
    corrected = dataclasses.replace(
        dataset, name=f"{dataset.name}-reviewed", x_train=x, y_train=labels[keep], clean_train_known=False,
        extras=extras,
    )  # fmt: skip
    return corrected, counts


def export_labels(data: Dataset | NoisyDataset, path: str | os.PathLike) -> Path:
    """Write ``sample_id,label`` (the class name) of every training sample to ``path`` (CSV, atomically): the
    corrected labels, readable back with ``load_folder(root, csv=path)`` for an image folder."""
    import pandas as pd

    from lnlkit.train.recorder import atomic_write_bytes

    dataset = _dataset(data)
    labels = data.labels if isinstance(data, NoisyDataset) else dataset.y_train
    names = np.asarray([str(c) for c in dataset.class_names])
    table = pd.DataFrame({"path": dataset.sample_ids, "label": names[np.asarray(labels)]})
    atomic_write_bytes(Path(path), table.to_csv(index=False).encode())
    return Path(path)


# ---------------------------------------------------------------------------------------------------- the browser
def _explorer_base():
    from lnlkit.widgets import _Explorer

    return _Explorer


class SuspectReviewer(_explorer_base()):
    """Page through the suspects, most suspicious first, and mark each keep / relabel (to a class) / drop.

    ``decisions`` (sample id -> ``"keep"``, ``"drop"`` or the new class name) is what :func:`apply_review` takes;
    suspects left unmarked follow its ``default``.  Without a widget front-end (papermill, scripts) it shows the
    first page as a picture and ``decisions`` stays empty.
    """

    def __init__(
        self, frame: Any, data: Dataset | NoisyDataset, page_size: int = 8, only_issues: bool = True,
        static: bool | None = None,
    ):  # fmt: skip
        self.frame = frame.sort_values("rank")
        if only_issues and self.frame["is_issue"].any():
            self.frame = self.frame[self.frame["is_issue"]]
        self.data = data
        self.page_size = int(page_size)
        self.page = 0
        self.decisions: dict[str, Any] = {}
        self.class_names = [str(c) for c in _dataset(data).class_names]
        self._init_mode(static)
        self._draw()
        if not self.static:
            self._build()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.frame) // self.page_size))

    def _draw(self) -> None:
        self._render(
            lambda: plot_suspects(
                self.frame,
                self.data,
                n=self.page_size,
                start=self.page * self.page_size,
                ncols=self.page_size,
                decisions=self.decisions,
            )  # fmt: skip
        )

    def _rows(self):
        return self.frame.iloc[self.page * self.page_size : (self.page + 1) * self.page_size]

    def _build(self) -> None:
        w = _ipywidgets()
        self.output = w.Output()
        self.label = w.Label()
        prev_b, next_b = w.Button(description="◀ previous"), w.Button(description="next ▶")
        prev_b.on_click(lambda _: self.go(self.page - 1))
        next_b.on_click(lambda _: self.go(self.page + 1))
        self.controls = w.VBox()
        self.box = w.VBox([w.HBox([prev_b, next_b, self.label]), self.output, self.controls])
        self._refresh_controls()
        self._draw()

    def _refresh_controls(self) -> None:
        w = _ipywidgets()
        rows = []
        for _, row in self._rows().iterrows():
            sid = str(row["sample_id"])
            current = self.decisions.get(sid)
            action = w.ToggleButtons(
                options=list(DECISIONS), value=current if current in DECISIONS else ("relabel" if current else None)
            )
            target = w.Dropdown(options=self.class_names, value=str(row["suggested_class"]), layout={"width": "12em"})
            if current not in (None, *DECISIONS):
                target.value = current

            def changed(_=None, sid=sid, action=action, target=target):
                if action.value == "relabel":
                    self.decisions[sid] = target.value
                elif action.value is not None:
                    self.decisions[sid] = action.value
                self._draw()

            action.observe(changed, "value")
            target.observe(changed, "value")
            rows.append(w.HBox([w.Label(f"#{row['rank']} {sid} ({row['given_class']})", layout={"width": "22em"}),
                                action, target]))  # fmt: skip
        self.controls.children = rows
        self.label.value = f"page {self.page + 1} of {self.pages}; {len(self.decisions)} decided"

    def go(self, page: int) -> None:
        """Show page ``page`` (0-based, clipped to the pages there are)."""
        self.page = int(min(max(page, 0), self.pages - 1))
        if not self.static:
            self._refresh_controls()
        self._draw()

    def __repr__(self) -> str:
        pages = f"page {self.page + 1}/{self.pages}"
        return f"SuspectReviewer({len(self.frame)} suspects, {pages}, {len(self.decisions)} decided)"


def _ipywidgets():
    from lnlkit.widgets import _ipywidgets as load

    return load()


def review_suspects(frame: Any, data: Dataset | NoisyDataset, **kwargs: Any) -> SuspectReviewer:
    """A :class:`SuspectReviewer` over ``frame``'s suspects (``is_issue`` first; all samples when none is flagged)."""
    return SuspectReviewer(frame, data, **kwargs)

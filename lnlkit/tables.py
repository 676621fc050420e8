"""Paper-layout results tables: methods as rows, noise settings as columns, mean ± std over seeds.

:func:`paper_runs` picks the runs a paper table is about (complete runs of each method's main preset, no variant
folders); :func:`accuracy_table` and :func:`selection_table` lay them out; :func:`to_markdown`, :func:`to_latex` and
:func:`to_csv` render them; :func:`write_tables` writes ``<profile>.md``, ``.csv`` and ``.tex`` (what
``lnlkit reproduce`` and ``notebooks/99_results.ipynb`` call through :func:`lnlkit.reproduce.write_results`).
docs/results.md describes the layout.

* Accuracy table rows: ``CE (best epoch)`` and ``CE (last epoch)`` (references, never marked best), then DivideMix,
  SMR, ProMix, Co-mining, Me-Momentum, SOP+, Prune4ReL (f) and Uniform (f), each with the accuracy its paper reports.
* Selection table rows: the methods that select clean samples; cells ``precision / recall`` (%), and the AUROC of
  the method's clean score against the true clean mask where it has one.
* Columns: the noise settings present, by kind (symmetric, pair-flip, instance, open-set, others), then rate.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lnlkit.runs import results_table

__all__ = [
    "METHOD_ORDER",
    "DISPLAY_NAMES",
    "REPORTED_AS",
    "OPEN_SET_BEHAVIOUR",
    "PaperTable",
    "paper_runs",
    "method_label",
    "noise_header",
    "noise_sort_key",
    "accuracy_table",
    "selection_table",
    "latex_escape",
    "to_markdown",
    "to_latex",
    "to_csv",
    "write_tables",
]

# the methods of the kit in the order of the papers' tables (config method names)
METHOD_ORDER: tuple[str, ...] = (
    "ce",
    "dividemix",
    "smr",
    "promix",
    "comining",
    "mememomentum",
    "sop",
    "prune4rel",
    "prune:uniform",
)
DISPLAY_NAMES: dict[str, str] = {
    "ce": "CE",
    "dividemix": "DivideMix",
    "smr": "SMR",
    "promix": "ProMix",
    "comining": "Co-mining",
    "mememomentum": "Me-Momentum",
    "sop": "SOP+",
    "prune4rel": "Prune4ReL",
    "prune:uniform": "Uniform",
    "prune:smallloss": "Small-loss",
    "prune:uncertainty": "Uncertainty",
    "prune:forgetting": "Forgetting",
    "prune:grand": "GraNd",
    "prune:moderate": "Moderate",
    "prune:kcentergreedy": "kCenterGreedy",
    "prune:glister": "Glister",
}
# the words for each method's ``reported_as`` (result.json)
REPORTED_AS: dict[str, str] = {
    "test_acc_last": "test accuracy at the last epoch",
    "ensemble_acc_last": "test accuracy of the two networks' ensemble at the last epoch",
    "mean_last10": "mean test accuracy over the last 10 epochs",
    "test_at_best_val": "test accuracy at the epoch of best accuracy on a held-out noisy validation split",
}
# what each method does with open-set samples (images of classes outside the label space, given a known label);
# docs/methods/<method>.md and the method's code
OPEN_SET_BEHAVIOUR: dict[str, str] = {
    "ce": "learns their given known-class labels",
    "dividemix": "high-loss samples, open-set ones among them, lose their label and learn MixMatch pseudo-labels "
    "of the known classes",
    "smr": "as DivideMix, high-loss samples learn pseudo-labels of the known classes",
    "promix": "samples outside its clean set learn pseudo-labels of the known classes where both networks agree",
    "comining": "rejects them: its forget rate grows by the open-set ratio, and relabel candidates whose two views "
    "disagree are rejected as out-of-distribution (no loss)",
    "mememomentum": "keeps the samples whose prediction agrees with their label, so an open-set image leaves the "
    "training set only when the network does not predict its given class",
    "sop": "each sample's learnt correction term treats it as a mislabelled known-class sample",
    "prune4rel": "open-set images may enter the selected subset, where SOP+ treats them as mislabelled",
    "prune:uniform": "the random subset keeps open-set images at their share of the data",
}

_KINDS = (  # (spec kind, short header, column group rank)
    ("symmetric", "Sym.", 0),
    ("symmetric-inclusive", "Sym. (incl.)", 0),
    ("pairflip", "Pair", 1),
    ("asym-cifar10", "Asym.", 1),
    ("asym-cifar100", "Asym.", 1),
    ("instance", "Inst.", 2),
    ("openset", "Open", 3),
)
_KIND_SHORT = {k: s for k, s, _ in _KINDS}
_KIND_RANK = {k: r for k, _, r in _KINDS}
_OTHER_RANK = 4
_EMPTY = "—"


# ---------------------------------------------------------------------------------------------- noise columns
def _parts(spec: str) -> list[tuple[str, float | None]]:
    out = []
    for part in str(spec).split("+"):
        kind, sep, rate = part.strip().rpartition(":")
        try:
            out.append((kind.lower(), float(rate)) if sep and kind else (part.strip().lower(), None))
        except ValueError:
            out.append((part.strip().lower(), None))
    return out


def noise_header(spec: str) -> str:
    """A readable column header for a noise spec.

    ``"symmetric:0.2"`` -> ``"Sym. 20%"``, ``"pairflip:0.4"`` -> ``"Pair 40%"``, ``"instance:0.4"`` ->
    ``"Inst. 40%"``, ``"openset:0.2+symmetric:0.2"`` -> ``"Open 20% + Sym. 20%"``, ``"none"`` -> ``"Clean"``;
    other specs (real noise such as ``"cifar10n:worst"``) are returned unchanged.
    """
    text = str(spec).strip()
    if text.lower() in ("none", "clean"):
        return "Clean"
    parts = _parts(text)
    if any(rate is None or kind not in _KIND_SHORT for kind, rate in parts):
        return text
    return " + ".join(f"{_KIND_SHORT[kind]} {100 * rate:g}%" for kind, rate in parts)


def noise_sort_key(spec: str) -> tuple:
    """Column order: symmetric, pair-flip (asymmetric), instance, open-set, then any other spec; within a kind by
    rate (for open-set by the open ratio, then the closed-set part)."""
    text = str(spec).strip()
    if text.lower() in ("none", "clean"):
        return (-1, "", 0.0, text)
    parts = _parts(text)
    kind, rate = parts[0]
    rank = _KIND_RANK.get(kind, _OTHER_RANK) if rate is not None else _OTHER_RANK
    rest = tuple(noise_sort_key("+".join(f"{k}:{r}" for k, r in parts[1:]))) if len(parts) > 1 else ()
    return (rank, kind, math.inf if rate is None else rate, rest, text)


# ---------------------------------------------------------------------------------------------- run selection
def method_label(method: str, hyperparameters: dict | None = None) -> str:
    """The row label of a method: its display name, with the selection ratio of a pruning method (``f``, from
    its ``ratio`` hyperparameter) and ``SOP`` instead of ``SOP+`` when both SOP+ terms are off.

    Parameters
    ----------
    method : str
        Config method name, e.g. ``"prune:uniform"``.
    hyperparameters : dict, optional
        The run's ``config.json`` ``hyperparameters``.
    """
    hp = hyperparameters or {}
    name = DISPLAY_NAMES.get(method, method)
    if method == "sop" and float(hp.get("rc", 1.0) or 0.0) == 0.0 and float(hp.get("rb", 1.0) or 0.0) == 0.0:
        name = "SOP"
    if (method == "prune4rel" or method.startswith("prune:")) and hp.get("ratio") is not None:
        name += f" (f = {float(hp['ratio']):g})"
    return name


def _is_variant_folder(path: str | os.PathLike) -> bool:
    # run_folder names variants "<method>+<variant>/<dataset>_<noise>_s<seed>"
    return "+" in Path(path).parent.name


def paper_runs(
    runs_root: str | os.PathLike,
    main_presets: Mapping[str, str | None] | None = None,
    methods: Iterable[str] | None = None,
):
    """The runs a paper table is about: complete runs under ``runs_root`` on each method's main preset.

    Left out: unfinished runs, variant folders (``<method>+<variant>``, :func:`lnlkit.runs.run_folder`), runs whose
    preset is not the method's main preset (``main_presets``) and methods outside ``methods``.  Sibling folders of
    ``runs_root`` (such as notebook 14's ``<runs_root>-prune4rel-variants``) are never searched.
    :func:`lnlkit.reproduce.table_runs` fills both filters from a profile.

    Parameters
    ----------
    runs_root : path
        Folder searched recursively for run folders.
    main_presets : mapping, optional
        Method name -> its main preset (``None``: any preset); methods not in it keep every preset.
    methods : iterable of str, optional
        Keep only these methods (config names, e.g. ``"prune:uniform"``); None keeps all.

    Returns
    -------
    pandas.DataFrame
        :func:`lnlkit.results_table` columns plus ``label`` (the row label, :func:`method_label`), ``ratio`` (the
        selection ratio of pruning methods, else NaN) and ``order`` (the row's position).
    """
    import json

    runs = results_table(runs_root)
    runs = runs[runs["status"] == "complete"]
    runs = runs[[not _is_variant_folder(p) for p in runs["path"]]]
    if main_presets is not None and len(runs):
        main = [main_presets.get(str(m)) for m in runs["method"]]
        runs = runs[[p is None or preset == p for p, preset in zip(main, runs["preset"])]]
    if methods is not None and len(runs):  # e.g. the table's methods; notebook 14's extra baselines stay out
        runs = runs[runs["method"].isin(list(methods))]
    runs = runs.copy()
    hps = [json.loads((Path(p) / "config.json").read_text()).get("hyperparameters") or {} for p in runs["path"]]
    runs["label"] = [method_label(str(m), hp) for m, hp in zip(runs["method"], hps)]
    runs["ratio"] = [float(hp["ratio"]) if hp.get("ratio") is not None else np.nan for hp in hps]
    ranks = {m: i for i, m in enumerate(METHOD_ORDER)}
    runs["order"] = [ranks.get(str(m), len(METHOD_ORDER)) for m in runs["method"]]
    return runs.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- table model
@dataclass
class PaperTable:
    """A paper-layout table.

    Attributes
    ----------
    name : str
        ``"accuracy"``, ``"selection"`` or ``"auroc"``.
    title : str
        One line saying what the cells are.
    rows : list of str
        Row labels in order.
    reference_rows : list of str
        Rows shown for reference and never marked best (CE's).
    columns : list of str
        Column keys (``"<noise>"``, or ``"<dataset> <noise>"`` with several data sets), in order.
    headers : list of str
        Readable column headers.
    cells : pandas.DataFrame
        Tidy: one row per (row, column, metric) that has runs, with ``table``, ``row``, ``method``, ``dataset``,
        ``noise``, ``column``, ``metric``, ``mean``, ``std`` (NaN with one seed), ``seeds``, ``is_best``.
    metrics : list of str
        The metrics shown in one cell, joined by ``" / "`` (e.g. ``["sel_precision", "sel_recall"]``).
    scale : float
        Display factor (100 shows fractions as %).
    digits : int
        Decimals shown; ties for best are decided at this precision.
    show_std : bool
        Cells show ``mean ± std`` (else the means only; the CSV keeps the std).
    footnotes : list of str
    """

    name: str
    title: str
    rows: list[str]
    reference_rows: list[str]
    columns: list[str]
    headers: list[str]
    cells: Any
    metrics: list[str]
    scale: float = 1.0
    digits: int = 2
    show_std: bool = True
    footnotes: list[str] = field(default_factory=list)

    def seed_counts(self) -> list[int]:
        """The distinct numbers of seeds behind the cells, ascending."""
        return sorted({int(s) for s in self.cells["seeds"]}) if len(self.cells) else []


def _row_order(runs) -> list[str]:
    keyed = runs[["label", "order", "ratio", "method"]].drop_duplicates("label")
    keyed = keyed.assign(r=keyed["ratio"].fillna(-1.0))
    return list(keyed.sort_values(["order", "method", "r", "label"], kind="stable")["label"])


def _columns(runs) -> tuple[list[str], list[str], dict[str, tuple[str, str]]]:
    pairs = sorted(
        {(str(d), str(n)) for d, n in zip(runs["dataset"], runs["noise"])},
        key=lambda dn: (dn[0], noise_sort_key(dn[1])),
    )
    several = len({d for d, _ in pairs}) > 1
    keys = [f"{d} {n}" if several else n for d, n in pairs]
    headers = [f"{d}: {noise_header(n)}" if several else noise_header(n) for d, n in pairs]
    return keys, headers, dict(zip(keys, pairs))


def _stats(values: np.ndarray) -> tuple[float, float, int]:
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan, 0
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std, len(values)


def _tabulate(
    name: str,
    runs,
    rows: Sequence[tuple[str, str, str, str]],
    columns: dict[str, tuple[str, str]],
    reference: Iterable[str],
    best_metric: str | None,
    scale: float,
    digits: int,
):
    """Tidy cells: ``rows`` are (row label, method, run label, metric); best by ``best_metric`` among rows not in
    ``reference``, compared at the displayed precision (so shown ties are all marked)."""
    import pandas as pd

    reference = set(reference)
    records = []
    for row, method, label, metric in rows:
        mine = runs[runs["label"] == label]
        for key, (dataset, noise) in columns.items():
            cell = mine[(mine["dataset"].astype(str) == dataset) & (mine["noise"].astype(str) == noise)]
            mean, std, seeds = _stats(pd.to_numeric(cell[metric], errors="coerce").to_numpy(dtype=float))
            if seeds:
                records.append(
                    {
                        "table": name,
                        "row": row,
                        "method": method,
                        "dataset": dataset,
                        "noise": noise,
                        "column": key,
                        "metric": metric,
                        "mean": mean,
                        "std": std,
                        "seeds": seeds,
                        "is_best": False,
                    }
                )
    cells = pd.DataFrame(
        records,
        columns=["table", "row", "method", "dataset", "noise", "column", "metric", "mean", "std", "seeds", "is_best"],
    )
    if best_metric is not None and len(cells):
        shown = (cells["mean"] * scale).round(digits)
        candidate = (cells["metric"] == best_metric) & ~cells["row"].isin(reference)
        for key in cells["column"].unique():
            here = candidate & (cells["column"] == key)
            if here.any():
                cells.loc[here & (shown == shown[here].max()), "is_best"] = True
    return cells


def _caption_seeds(cells) -> str:
    counts = sorted({int(s) for s in cells["seeds"]}) if len(cells) else []
    if not counts:
        return ""
    if len(counts) == 1:
        n = counts[0]
        return f"{n} seed{'s' if n > 1 else ''} per cell" + (" (no ± std)" if n == 1 else "") + "."
    common = int(cells["seeds"].mode().iloc[0])
    return f"{common} seed{'s' if common > 1 else ''} per cell unless a superscript n=k gives another count."


def _common_footnotes(runs, tables_runs) -> list[str]:
    notes = []
    if len(runs) and runs["from_scratch"].astype(bool).any():
        rows = sorted(set(runs.loc[runs["from_scratch"].astype(bool), "label"]))
        notes.append(
            f"(from scratch): {', '.join(rows)} trained from scratch where the paper starts from ImageNet weights "
            "(pretrained=false); not comparable with the paper's numbers."
        )
    return notes


def _from_scratch_rows(runs) -> set[str]:
    return set(runs.loc[runs["from_scratch"].astype(bool), "label"]) if len(runs) else set()


def accuracy_table(runs) -> PaperTable:
    """Test accuracy (%) per method and noise setting, mean ± std over seeds.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`paper_runs`.

    Returns
    -------
    PaperTable
        Rows ``CE (best epoch)`` (CE's ``test_acc_best``), ``CE (last epoch)`` (``test_acc_last``), then every other
        method's ``reported`` accuracy in :data:`METHOD_ORDER`; the best non-CE mean of each column is marked.
    """
    keys, headers, columns = _columns(runs)
    scratch = _from_scratch_rows(runs)
    rows: list[tuple[str, str, str, str]] = []
    reference = []
    for label in _row_order(runs):
        method = str(runs.loc[runs["label"] == label, "method"].iloc[0])
        shown = label + (" (from scratch)" if label in scratch else "")
        if method == "ce":
            for what, metric in (("best epoch", "test_acc_best"), ("last epoch", "test_acc_last")):
                row = f"{shown} ({what})"
                rows.append((row, method, label, metric))
                reference.append(row)
        else:
            rows.append((shown, method, label, "reported"))
    cells = _tabulate("accuracy", runs, rows, columns, reference, "reported", 1.0, 2)
    notes = []
    if reference:
        notes.append(
            "CE (best epoch): the best test accuracy over all epochs (picked with the test labels, an upper "
            "reference); CE (last epoch): its last epoch. Neither competes for the best mark."
        )
    present = [m for m in dict.fromkeys(runs["method"]) if m != "ce"]
    groups: dict[str, list[str]] = {}
    for method in sorted(present, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99):
        how = runs.loc[runs["method"] == method, "reported_as"].dropna().astype(str).unique()
        for h in how:
            groups.setdefault(h, []).append(DISPLAY_NAMES.get(method, method))
    if groups:
        notes.append(
            "Reported as: "
            + "; ".join(f"{', '.join(names)}: {REPORTED_AS.get(h, h)}" for h, names in groups.items())
            + "."
        )
    for method in ("prune4rel", "prune:uniform"):
        if method in present:
            ratios = sorted(runs.loc[runs["method"] == method, "ratio"].dropna().unique())
            if method == "prune4rel":
                notes.append(
                    f"Prune4ReL: trains on a selected subset of f = {', '.join(f'{r:g}' for r in ratios)} of the "
                    "training set (f is the selection ratio)."
                )
            else:
                notes.append("Uniform: Prune4ReL's baseline, a random subset of the same size f, same learner.")
    notes += _open_set_notes(runs)
    notes += _common_footnotes(runs, None)
    return PaperTable(
        "accuracy",
        "Test accuracy (%), mean ± std over seeds; best per column in bold.",
        [r[0] for r in rows],
        reference,
        keys,
        headers,
        cells,
        ["reported"],
        1.0,
        2,
        True,
        [n for n in [_caption_seeds(cells)] if n] + notes,
    )


def _open_set_notes(runs) -> list[str]:
    opened = runs[[any(k == "openset" for k, _ in _parts(str(n))) for n in runs["noise"]]]
    if opened.empty:
        return []
    methods = sorted(dict.fromkeys(opened["method"]), key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99)
    described = [f"{DISPLAY_NAMES.get(m, m)}: {OPEN_SET_BEHAVIOUR[m]}" for m in methods if m in OPEN_SET_BEHAVIOUR]
    without = [DISPLAY_NAMES.get(m, m) for m in methods if m in OPEN_SET_BEHAVIOUR and m not in ("comining", "ce")]
    text = (
        "Open-set columns: a share of the images comes from held-out classes and carries a label of a known class; "
        "the test set holds the known classes only. "
    )
    if without:
        text += (
            f"{', '.join(without)} have no mechanism for open-set noise: they still run, and treat these images as "
            "mislabelled samples of known classes (expect them to behave as under extra closed-set noise). "
        )
    return [text + "What each does with them: " + "; ".join(described) + "."] if described else [text.strip()]


def selection_table(runs) -> tuple[PaperTable, PaperTable]:
    """Clean-sample selection quality at the last epoch against the true noise mask.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`paper_runs`.

    Returns
    -------
    (PaperTable, PaperTable)
        ``selection``: cells ``precision / recall`` in % (means over seeds; standard deviations in the CSV), rows
        the methods whose runs recorded a selection, the best precision per column in bold; ``auroc``: the AUROC of
        each method's clean score (mean ± std), rows the methods that record one (SOP+ scores without selecting).
    """
    import pandas as pd

    keys, headers, columns = _columns(runs)
    scratch = _from_scratch_rows(runs)
    labels = _row_order(runs)

    def has(label: str, metric: str) -> bool:
        return bool(np.isfinite(pd.to_numeric(runs.loc[runs["label"] == label, metric], errors="coerce")).any())

    def shown(label: str) -> str:
        return label + (" (from scratch)" if label in scratch else "")

    def method(label: str) -> str:
        return str(runs.loc[runs["label"] == label, "method"].iloc[0])

    sel_rows = [
        (shown(lb), method(lb), lb, m)
        for lb in labels
        if has(lb, "sel_precision")
        for m in ("sel_precision", "sel_recall")
    ]
    sel_cells = _tabulate("selection", runs, sel_rows, columns, (), "sel_precision", 100.0, 1)
    auc_rows = [(shown(lb), method(lb), lb, "sel_auroc") for lb in labels if has(lb, "sel_auroc")]
    auc_cells = _tabulate("auroc", runs, auc_rows, columns, (), "sel_auroc", 1.0, 3)
    sel_notes = [n for n in [_caption_seeds(sel_cells)] if n] + [
        "Precision: the share of the selected samples whose given label is right; recall: the share of rightly "
        "labelled samples that are selected; both at the last epoch, against the true noise mask (used for "
        "reporting only). Means over seeds; standard deviations in the CSV."
    ]
    if any(method(lb).startswith("prune") for lb, *_ in [(r[2],) for r in sel_rows]):
        sel_notes.append(
            "Prune4ReL and Uniform keep a subset of size f, so their recall is at most f / (1 - noise rate)."
        )
    if any(method(lb) == "sop" for lb in labels):
        sel_notes.append("SOP+ trains on every sample (no selection); its clean score appears in the AUROC table.")
    opened = [k for k, (_, n) in columns.items() if any(kind == "openset" for kind, _ in _parts(n))]
    if opened:
        sel_notes.append("Open-set samples count as noisy (their given label is wrong).")
    selection = PaperTable(
        "selection",
        "Selection precision / recall (%); best precision per column in bold.",
        list(dict.fromkeys(r[0] for r in sel_rows)),
        [],
        keys,
        headers,
        sel_cells,
        ["sel_precision", "sel_recall"],
        100.0,
        1,
        False,
        sel_notes,
    )
    auroc = PaperTable(
        "auroc",
        "AUROC of each method's per-sample clean score against the true clean mask, mean ± std over seeds; best "
        "per column in bold.",
        [r[0] for r in auc_rows],
        [],
        keys,
        headers,
        auc_cells,
        ["sel_auroc"],
        1.0,
        3,
        True,
        [n for n in [_caption_seeds(auc_cells)] if n],
    )
    return selection, auroc


# ---------------------------------------------------------------------------------------------- writers
def _number(value: float, scale: float, digits: int) -> str:
    return f"{value * scale:.{digits}f}"


def _cell_parts(table: PaperTable, row: str, column: str):
    """(text pieces per metric, is_best, seeds) of one cell, or None when the cell is empty."""
    cells = table.cells
    here = cells[(cells["row"] == row) & (cells["column"] == column)]
    if here.empty:
        return None
    pieces = []
    # a one-metric table takes each row's own metric (CE's reference rows show test_acc_best / test_acc_last)
    for metric in table.metrics if len(table.metrics) > 1 else [here["metric"].iloc[0]]:
        one = here[here["metric"] == metric]
        if one.empty:
            pieces.append(None)
            continue
        r = one.iloc[0]
        mean = _number(r["mean"], table.scale, table.digits)
        std = None if not table.show_std or r["std"] != r["std"] else _number(r["std"], table.scale, table.digits)
        pieces.append((mean, std))
    best = bool(here["is_best"].any())
    return pieces, best, int(here["seeds"].max())


def _common_seeds(table: PaperTable) -> int | None:
    return int(table.cells["seeds"].mode().iloc[0]) if len(table.cells) else None


def to_markdown(table: PaperTable) -> str:
    """The table as GitHub markdown: a title line, the table (best cells in bold, ``—`` where a method has no
    run, ``<sup>n=k</sup>`` where a cell has another number of seeds than most) and its footnotes."""
    common = _common_seeds(table)
    lines = [f"**{table.title}**", "", "| Method | " + " | ".join(table.headers) + " |"]
    lines.append("|---|" + "|".join(":---:" for _ in table.headers) + "|")
    for row in table.rows:
        out = []
        for column in table.columns:
            parts = _cell_parts(table, row, column)
            if parts is None:
                out.append(_EMPTY)
                continue
            pieces, best, seeds = parts
            text = " / ".join(_EMPTY if p is None else (p[0] if p[1] is None else f"{p[0]} ± {p[1]}") for p in pieces)
            if best:
                text = f"**{text}**"
            if seeds != common:
                text += f"<sup>n={seeds}</sup>"
            out.append(text)
        lines.append(f"| {row} | " + " | ".join(out) + " |")
    if table.footnotes:
        lines.append("")
        lines += [f"- {note}" for note in table.footnotes]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "—": "---",
    "–": "--",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``\\ & % $ # _ { } ~ ^``) and write ``±``, ``—``, ``≥`` in LaTeX."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], str(text))


def to_latex(table: PaperTable, label: str | None = None) -> str:
    """The table as a booktabs ``table`` environment a paper can ``\\input`` (needs ``\\usepackage{booktabs}``).

    Best cells in ``\\textbf``, ``$\\pm$`` between mean and std, ``---`` for a missing cell, ``$^{n=k}$`` where a
    cell has another number of seeds than most; the CE reference rows are set apart by a rule; the footnotes
    follow the tabular in ``\\footnotesize``.
    """
    common = _common_seeds(table)
    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(table.title)}}}",
    ]
    if label:
        out.append(rf"\label{{{re.sub(r'[^A-Za-z0-9:.-]', '-', label)}}}")
    out += [
        r"\begin{tabular}{l" + "c" * len(table.columns) + "}",
        r"\toprule",
        "Method & " + " & ".join(latex_escape(h) for h in table.headers) + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(table.rows):
        cells = []
        for column in table.columns:
            parts = _cell_parts(table, row, column)
            if parts is None:
                cells.append("---")
                continue
            pieces, best, seeds = parts
            text = " / ".join(
                "---" if p is None else (p[0] if p[1] is None else rf"{p[0]} $\pm$ {p[1]}") for p in pieces
            )
            if best:
                text = rf"\textbf{{{text}}}"
            if seeds != common:
                text += rf"$^{{n={seeds}}}$"
            cells.append(text)
        out.append(latex_escape(row) + " & " + " & ".join(cells) + r" \\")
        following = table.rows[i + 1] if i + 1 < len(table.rows) else None
        if row in table.reference_rows and following is not None and following not in table.reference_rows:
            out.append(r"\midrule")
    out += [r"\bottomrule", r"\end{tabular}"]
    if table.footnotes:
        out.append(r"\par\smallskip\footnotesize")
        out += [latex_escape(note) + r"\par" for note in table.footnotes]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def to_csv(tables: Sequence[PaperTable]) -> str:
    """The tidy cells of ``tables`` as CSV: one line per (table, row, noise, metric) with ``mean``, ``std``,
    ``seeds`` and ``is_best``, numbers at full precision (fractions stay fractions)."""
    import pandas as pd

    frames = [t.cells for t in tables if len(t.cells)]
    if not frames:
        return tables[0].cells.to_csv(index=False) if tables else ""
    return pd.concat(frames, ignore_index=True).to_csv(index=False, float_format="%.17g")


def _all_runs_table(runs_root: str | os.PathLike) -> str:
    """Every group of complete runs (one run folder group and preset per row, variants included) as markdown."""
    import pandas as pd

    from lnlkit.runs import format_table

    runs = results_table(runs_root)
    runs = runs[runs["status"] == "complete"]
    if runs.empty:
        return ""
    runs = runs.assign(folder=[Path(p).parent.name for p in runs["path"]])
    numeric = ["reported", "test_acc_best", "test_acc_last", "sel_precision", "sel_recall", "sel_auroc"]
    runs[numeric] = runs[numeric].apply(pd.to_numeric, errors="coerce")

    def fmt(values, digits):
        mean, std, n = _stats(values.to_numpy(dtype=float))
        if not n:
            return ""
        return f"{mean:.{digits}f}" if std != std else f"{mean:.{digits}f} ± {std:.{digits}f}"

    rows = []
    for (dataset, noise, folder, preset), g in runs.groupby(["dataset", "noise", "folder", "preset"], dropna=False):
        rows.append(
            {
                "dataset": dataset,
                "noise": noise,
                "run folder": folder,
                "preset": f"{preset} (from scratch)" if g["from_scratch"].astype(bool).any() else preset,
                "seeds": len(g),
                "reported": fmt(g["reported"], 2),
                "reported as": g["reported_as"].iloc[0],
                "best": fmt(g["test_acc_best"], 2),
                "last": fmt(g["test_acc_last"], 2),
                "sel. precision": fmt(g["sel_precision"], 3),
                "sel. recall": fmt(g["sel_recall"], 3),
                "sel. AUROC": fmt(g["sel_auroc"], 3),
                "_key": (str(dataset), noise_sort_key(str(noise)), str(folder)),
            }
        )
    frame = pd.DataFrame(sorted(rows, key=lambda r: r["_key"])).drop(columns="_key")
    return format_table(frame, "md")


def write_tables(
    runs_root: str | os.PathLike, results_dir: str | os.PathLike, profile: str, runs: Any = None
) -> dict[str, Path]:
    """Write ``<profile>.md`` (the accuracy table, the selection tables, then every run group), ``<profile>.csv``
    (tidy cells of the paper tables) and ``<profile>.tex`` (one booktabs table per paper table), atomically.

    ``runs`` are the runs of the paper tables (default: :func:`paper_runs` of ``runs_root``); the last section of
    the markdown lists every run group under ``runs_root``.

    Returns
    -------
    dict
        ``{"md": path, "csv": path, "tex": path}``

    Raises
    ------
    ValueError
        When ``runs_root`` holds no complete run of a main preset.
    """
    from lnlkit.train.recorder import atomic_write_bytes

    runs = paper_runs(runs_root) if runs is None else runs
    if runs.empty:
        raise ValueError(f"no complete run folders under {runs_root}: nothing to tabulate")
    accuracy = accuracy_table(runs)
    selection, auroc = selection_table(runs)
    tables = [t for t in (accuracy, selection, auroc) if t.rows]
    results_dir = Path(results_dir)
    paths = {ext: results_dir / f"{profile}.{ext}" for ext in ("md", "csv", "tex")}
    md = [
        f"# Results of `lnlkit reproduce --profile {profile}`\n",
        "Each method on its main preset; the tables come from the run folders under "
        f"`{Path(runs_root).name}/` (docs/results.md).\n",
    ]
    for table, heading in zip(tables, ("Test accuracy", "Clean-sample selection", "Clean score AUROC")):
        md += [f"## {heading}\n", to_markdown(table)]
    every = _all_runs_table(runs_root)
    if every:
        md += [
            "## All runs\n",
            "Every group of complete runs under the runs folder, ablation and switch variants included "
            "(`<method>+<variant>` folders); test accuracy in %, selection metrics as fractions.\n",
            every,
        ]
    atomic_write_bytes(paths["md"], "\n".join(md).encode())
    atomic_write_bytes(paths["csv"], to_csv(tables).encode())
    tex = [f"% written by lnlkit (profile {profile}); needs \\usepackage{{booktabs}}\n"]
    tex += [to_latex(t, label=f"tab:{profile}-{t.name}") for t in tables]
    atomic_write_bytes(paths["tex"], "\n".join(tex).encode())
    return paths

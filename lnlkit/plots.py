"""Figures of a run: accuracy curves, per-sample loss distributions with the two-component GMM fit, selection
quality, memorisation of the noisy labels, the label transition matrix and example images with their given, true and
relabelled labels; and figures of many runs (accuracy against noise rate, selection quality per method) from
:func:`lnlkit.results_table`.

Every function takes a :class:`~lnlkit.train.recorder.RunResult` (or plain arrays) and returns the matplotlib
``Figure``; nothing is shown or saved implicitly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lnlkit.runs import RunResult
from lnlkit.train.selection import gmm_split, min_max_normalise

if TYPE_CHECKING:  # pandas is imported where a table is built
    import pandas as pd

__all__ = [
    "plot_accuracy_curves",
    "plot_loss_distribution",
    "plot_loss_distributions",
    "plot_loss_over_epochs",
    "plot_selection_quality",
    "plot_transition_matrix",
    "plot_examples",
    "plot_run_examples",
    "plot_memorisation",
    "plot_epoch_snapshot",
    "plot_noise_overview",
    "plot_accuracy_vs_noise",
    "plot_selection_over_epochs",
    "plot_selection_summary",
    "METHOD_COLORS",
    "method_color",
    "plot_test_accuracy",
    "plot_open_set_rejection",
]


# ---------------------------------------------------------------------------------------------- colours
# One colour per method in every figure of the kit: Paul Tol's colour-blind-safe "muted" palette; CE, the
# reference, in black/grey.  Variants of a method (ablation presets, switches) keep its colour with another style.
METHOD_COLORS: dict[str, str] = {
    "ce": "#000000",
    "dividemix": "#332288",
    "smr": "#88CCEE",
    "promix": "#117733",
    "comining": "#CC6677",
    "mememomentum": "#AA4499",
    "sop": "#DDCC77",
    "prune4rel": "#882255",
    "prune:uniform": "#999933",
}
# CE's two reference curves: best epoch (dashed) and last epoch (dotted)
REFERENCE_COLORS: dict[str, str] = {"ref_best": "#555555", "ref_last": "#999999"}
_EXTRA_COLORS = ("#44AA99", "#E69F00", "#56B4E9", "#0072B2", "#D55E00", "#009E73", "#F0E442")


def method_color(method: str, reference: bool = False) -> str:
    """The colour of ``method`` in every figure: :data:`METHOD_COLORS` for the kit's methods (``"prune-uniform"``
    and ``"method+variant"`` folder names map to their method); other names get a fixed colour from a second
    colour-blind-safe palette, the same in every figure (chosen from the name, not from the drawing order)."""
    import zlib

    name = str(method).split("+", 1)[0].split(" (", 1)[0]
    name = {"prune-uniform": "prune:uniform", "me-momentum": "mememomentum"}.get(name, name)
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    return _EXTRA_COLORS[zlib.crc32(name.encode()) % len(_EXTRA_COLORS)]


def _pyplot():
    # The backend is left to the user (inline, ipympl, ...); headless, matplotlib falls back to Agg by itself.
    import matplotlib.pyplot as plt

    return plt


def _figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
    fig, axes = _pyplot().subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def _grid(count: int, ncols: int, width: float, height: float):
    """A grid holding exactly ``count`` axes (the unused cells of the last row are removed), in reading order."""
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    fig, axes = _pyplot().subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        fig.delaxes(ax)
    return fig, flat[:count]


def _epoch_axes(ax, ylabel: str, top: float, legend_loc: str, fontsize: int, title: str) -> None:
    """The common dressing of a per-epoch curve plot: labels, y range from 0, grid, legend, title."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend_loc, fontsize=fontsize)
    ax.set_title(title)


def plot_accuracy_curves(run: RunResult, title: str | None = None):
    """Test accuracy (and accuracy on the given training labels, when recorded) over epochs, best and last marked.

    Two-network methods that record ``test_acc_net1`` / ``test_acc_net2`` get those curves too, dashed (``test_acc``
    is then the ensemble).

    Parameters
    ----------
    run : RunResult
        Its history gives ``epoch``, ``test_acc`` and optionally ``train_acc_given``, ``test_acc_net1``,
        ``test_acc_net2`` (percentages).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (ax,) = _figure()
    epochs = run.curve("epoch")
    test = run.curve("test_acc")
    ax.plot(epochs, test, label="test accuracy", color="C0")
    if np.isfinite(run.curve("train_acc_given")).any():
        ax.plot(epochs, run.curve("train_acc_given"), label="train accuracy on given labels", color="C1", alpha=0.8)
    for k, color in ((1, "C4"), (2, "C5")):
        net = run.curve(f"test_acc_net{k}")
        if np.isfinite(net).any():
            ax.plot(epochs, net, ls="--", lw=1, color=color, alpha=0.9, label=f"test accuracy, network {k}")
    if np.isfinite(test).any():
        best = int(np.nanargmax(test))
        ax.scatter(
            [epochs[best]],
            [test[best]],
            color="C2",
            zorder=3,
            label=f"best {test[best]:.1f}% (epoch {int(epochs[best])})",
        )
        ax.scatter([epochs[-1]], [test[-1]], color="C3", zorder=3, label=f"last {test[-1]:.1f}%")
    cfg = run.config
    _epoch_axes(
        ax,
        "accuracy (%)",
        101,
        "lower right",
        8,
        title or f"{cfg.get('method')} on {cfg.get('dataset')}, {cfg.get('noise')}, seed {cfg.get('seed')}",
    )
    fig.tight_layout()
    return fig


def plot_test_accuracy(curves: Mapping[str, RunResult | tuple[RunResult, str]], title: str | None = None):
    """Several runs' test accuracy over epochs on one axis (e.g. a method next to CE on the same noise).

    Parameters
    ----------
    curves : mapping
        Legend label -> a run (its ``test_acc``) or ``(run, history key)`` for another per-epoch accuracy, e.g.
        ``(promix_run, "test_acc_ap_net1")`` (drawn dotted).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``curves`` is empty.
    """
    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    fig, (ax,) = _figure(width=7.0, height=3.5)
    for label, item in curves.items():
        run, key = (item, "test_acc") if isinstance(item, RunResult) else item
        # the method's colour (METHOD_COLORS); another curve of the same run keeps it, dotted
        color = method_color(str(run.config.get("method")))
        ax.plot(run.curve("epoch"), run.curve(key), ":" if key != "test_acc" else "-", label=label, color=color)
    _epoch_axes(ax, "test accuracy (%)", 101, "lower right", 8, title or "test accuracy")
    fig.tight_layout()
    return fig


def plot_open_set_rejection(run: RunResult, title: str | None = None):
    """What a method rejects as out-of-distribution, per epoch, against the truth (open-set noise).

    Draws the history's ``ood_precision`` (rejected samples that are open-set), ``ood_recall`` (open-set samples
    that are rejected), ``rej_noisy_precision`` (rejected samples with a wrong label) and ``sel_precision`` (of the
    clean set), those the run recorded.

    Parameters
    ----------
    run : RunResult
        A run with a ``rejected`` signal (the recorder then computes the keys above).
    title : str, optional
        Default: the run's noise spec.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (ax,) = _figure(width=6.0, height=3.6)
    epochs = run.curve("epoch")
    for key, label in (
        ("ood_precision", "OOD precision (rejected that are open-set)"),
        ("ood_recall", "OOD recall (open-set that are rejected)"),
        ("rej_noisy_precision", "rejected with a wrong label"),
        ("sel_precision", "clean-set precision"),
    ):
        values = run.curve(key)
        if np.isfinite(values).any():
            ax.plot(epochs, values, label=label)
    _epoch_axes(ax, "share", 1.02, "best", 7, title or str(run.config.get("noise")))
    fig.tight_layout()
    return fig


def plot_loss_distribution(
    losses: np.ndarray,
    is_noisy: np.ndarray | None = None,
    ax=None,
    bins: int = 40,
    normalise: bool = True,
    title: str | None = None,
):
    """Histogram of per-sample losses split into truly clean and truly noisy samples, with the GMM fit.

    Parameters
    ----------
    losses : ndarray (N,)
    is_noisy : bool ndarray (N,), optional
        True noise mask (for the split colours only).
    normalise : bool
        Min-max normalise first, as DivideMix does before its GMM.
    """
    if ax is None:
        fig, (ax,) = _figure()
    else:
        fig = ax.figure
    x = min_max_normalise(losses) if normalise else np.asarray(losses, dtype=float)
    edges = np.linspace(x.min(), x.max() if x.max() > x.min() else x.min() + 1, bins + 1)
    if is_noisy is None:
        ax.hist(x, bins=edges, density=True, color="C7", alpha=0.6, label="all samples")
    else:
        noisy = np.asarray(is_noisy, dtype=bool)
        weights = np.full(len(x), 1.0 / (len(x) * np.diff(edges)[0]))
        ax.hist(
            [x[~noisy], x[noisy]],
            bins=edges,
            weights=[weights[~noisy], weights[noisy]],
            stacked=True,
            color=["C0", "C3"],
            alpha=0.6,
            label=[f"clean ({(~noisy).sum()})", f"noisy ({noisy.sum()})"],
        )
    split = gmm_split(x)
    grid = np.linspace(edges[0], edges[-1], 400)
    pdf = split.pdf(grid)
    ax.plot(grid, pdf[0], color="C0", lw=1.5, label="GMM clean component")
    ax.plot(grid, pdf[1], color="C3", lw=1.5, label="GMM noisy component")
    if np.isfinite(split.threshold):
        ax.axvline(split.threshold, color="k", ls="--", lw=1, label=f"p(clean) = 0.5 at {split.threshold:.2f}")
    ax.set_xlabel("normalised per-sample loss" if normalise else "per-sample loss")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def plot_loss_distributions(run: RunResult, epochs: Sequence[int] | None = None, bins: int = 40):
    """Loss distributions at several epochs side by side (default: first, best-test and last recorded epoch).

    Shows the clean/noisy separation the selection methods rely on, and how plain training erodes it by memorising
    the noisy labels.
    """
    sig = run.signals
    if "loss" not in sig:
        raise ValueError(f"run {run.path} recorded no per-sample losses")
    recorded = sig["epoch"].tolist()
    if epochs is None:
        test = run.curve("test_acc")
        best = int(run.curve("epoch")[int(np.nanargmax(test))]) if np.isfinite(test).any() else recorded[0]
        wanted = [recorded[0], best, recorded[-1]]
        epochs = sorted(set(min(recorded, key=lambda e: abs(e - w)) for w in wanted))
    missing = [e for e in epochs if e not in recorded]
    if missing:
        raise ValueError(f"epochs {missing} have no recorded signals; recorded: {recorded[:5]}...{recorded[-3:]}")
    fig, axes = _figure(len(epochs), width=4.2)
    acc = {int(r["epoch"]): r.get("test_acc") for r in run.history}
    for ax, e in zip(axes, epochs):
        losses = sig["loss"][recorded.index(e)].astype(np.float64)
        title = f"epoch {e}" + (f" (test {acc[e]:.1f}%)" if acc.get(e) is not None else "")
        plot_loss_distribution(losses, run.is_noisy, ax=ax, bins=bins, title=title)
    fig.tight_layout()
    return fig


def plot_loss_over_epochs(run: RunResult, n_panels: int = 6, bins: int = 40, ncols: int = 3):
    """Loss distributions at evenly spaced recorded epochs, as a grid of small multiples.

    The first and last recorded epochs are always included.  Read left to right, top to bottom, the panels show the
    clean/noisy separation growing while the network fits the clean samples, then shrinking again as it memorises
    the noisy labels.

    Parameters
    ----------
    run : RunResult
        Needs ``run.signals['loss']`` of shape (E, N) and ``run.signals['epoch']`` of shape (E,).
    n_panels : int
        Number of panels (at most the E recorded epochs).
    bins : int
        Histogram bins per panel.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per chosen epoch, each drawn by :func:`plot_loss_distribution`.

    Raises
    ------
    ValueError
        When the run recorded no per-sample losses, or ``n_panels < 1``.
    """
    sig = run.signals
    if "loss" not in sig or len(sig.get("epoch", ())) == 0:
        raise ValueError(f"run {run.path} recorded no per-sample losses")
    if n_panels < 1:
        raise ValueError(f"n_panels must be at least 1, got {n_panels}")
    recorded = [int(e) for e in sig["epoch"]]
    rows = sorted(set(np.linspace(0, len(recorded) - 1, min(n_panels, len(recorded))).round().astype(int).tolist()))
    fig, axes = _grid(len(rows), ncols, width=4.2, height=3.4)
    acc = {int(r["epoch"]): r.get("test_acc") for r in run.history if "epoch" in r}
    for ax, i in zip(axes, rows):
        e = recorded[i]
        losses = sig["loss"][i].astype(np.float64)
        title = f"epoch {e}" + (f" (test {acc[e]:.1f}%)" if acc.get(e) is not None else "")
        plot_loss_distribution(losses, run.is_noisy, ax=ax, bins=bins, title=title)
    fig.tight_layout()
    return fig


_SELECTION_KEYS = (
    ("sel_precision", "precision (clean among selected)", "C0"),
    ("sel_recall", "recall (selected among clean)", "C1"),
    ("sel_f1", "F1", "C2"),
    ("sel_fraction", "selected fraction", "C7"),
    ("sel_auroc", "AUROC of the clean score", "C3"),
)


def plot_selection_quality(run_or_history: RunResult | Sequence[dict], ax=None, title: str | None = None):
    """Clean-sample selection precision, recall, F1 and selected fraction over epochs, and the AUROC of the
    method's per-sample clean score against the true clean mask where the method has one.

    Selections recorded under a suffix (``selected_net2`` gives ``sel_precision_net2``, ...) are drawn dashed in the
    colour of their metric.

    Parameters
    ----------
    run_or_history : RunResult or list of dict
        A run, or its history: one record per epoch with ``epoch`` and some of ``sel_precision``, ``sel_recall``,
        ``sel_f1``, ``sel_fraction``, ``sel_auroc`` (all in [0, 1]).
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When no epoch carries a selection metric (plain cross-entropy selects nothing).
    """
    history = run_or_history.history if isinstance(run_or_history, RunResult) else list(run_or_history)
    epochs = np.array([r.get("epoch", i) for i, r in enumerate(history)], dtype=float)

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in history], dtype=float)

    suffixes = sorted(
        {k[len(base) :] for r in history for k in r for base, _, _ in _SELECTION_KEYS if k.startswith(base + "_")}
    )
    curves = []
    for suffix in [""] + suffixes:
        for base, label, color in _SELECTION_KEYS:
            values = column(base + suffix)
            if np.isfinite(values).any():
                curves.append(
                    (values, label + (f" [{suffix.lstrip('_')}]" if suffix else ""), color, "--" if suffix else "-")
                )
    if not curves:
        where = f"run {run_or_history.path}" if isinstance(run_or_history, RunResult) else "this history"
        raise ValueError(
            f"{where} recorded no sample selection (no sel_precision/sel_recall/sel_f1/sel_fraction/"
            "sel_auroc); "
            "methods without a clean-sample selection, such as plain cross-entropy, have none"
        )
    if ax is None:
        fig, (ax,) = _figure()
    else:
        fig = ax.figure
    for values, label, color, ls in curves:
        ax.plot(epochs, values, label=label, color=color, ls=ls, lw=1.5 if ls == "-" else 1.0)
    if title is None and isinstance(run_or_history, RunResult):
        cfg = run_or_history.config
        title = f"selection quality: {cfg.get('method')}, {cfg.get('noise')}"
    _epoch_axes(ax, "fraction, AUROC", 1.02, "lower right", 7, title or "selection quality")
    fig.tight_layout()
    return fig


def plot_transition_matrix(
    transition: np.ndarray | RunResult, class_names: Sequence[str] | None = None, ax=None, title: str | None = None
):
    """Heatmap of a label transition matrix ``T[i, j] = P(given label j | true class i)``.

    Parameters
    ----------
    transition : ndarray (C, C) or RunResult
        The matrix, or a run whose ``transition`` is used.  Rows are true classes, columns given labels.
    class_names : sequence of C str, optional
        Tick labels (default: class indices).
    ax : matplotlib Axes, optional
    title : str, optional
        Prefix of the title; the mean diagonal (average probability of keeping the true label, *not* the realised
        noise rate, which would need the class counts) is always appended.

    Returns
    -------
    matplotlib.figure.Figure
        Cells are annotated with their value when C <= 12.

    Raises
    ------
    ValueError
        When the run has no transition matrix (real noise) or the matrix is not square.
    """
    import seaborn as sns

    if isinstance(transition, RunResult):
        run = transition
        if run.transition is None or np.size(run.transition) == 0:
            raise ValueError(f"run {run.path} has no transition matrix (real or unknown noise)")
        matrix = np.asarray(run.transition, dtype=float)
        if title is None:
            title = f"{run.config.get('noise', 'label noise')}"
    else:
        matrix = np.asarray(transition, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"transition must be a square (C, C) matrix, got shape {matrix.shape}")
    c = matrix.shape[0]
    names = [str(i) for i in range(c)] if class_names is None else [str(n) for n in class_names]
    if len(names) != c:
        raise ValueError(f"class_names has {len(names)} entries for {c} classes")
    if ax is None:
        side = min(max(3.0, 0.45 * c + 1.5), 12.0)
        fig, (ax,) = _figure(width=side + 1.0, height=side)
    else:
        fig = ax.figure
    annotate = c <= 12
    sns.heatmap(
        matrix,
        ax=ax,
        vmin=0.0,
        vmax=1.0,
        cmap="Blues",
        square=True,
        annot=annotate,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        xticklabels=names,
        yticklabels=names,
        cbar_kws={"shrink": 0.8},
        linewidths=0.3 if c <= 30 else 0.0,
        linecolor="white",
    )
    ax.set_xlabel("given label")
    ax.set_ylabel("true class")
    mean_diag = float(np.trace(matrix) / c)
    ax.set_title(f"{title + ': ' if title else ''}mean diagonal {mean_diag:.3f}")
    fig.tight_layout()
    return fig


def _choose_examples(n_total: int, n: int, noisy: np.ndarray | None, seed: int) -> np.ndarray:
    """Deterministic choice of ``n`` sample indices: half noisy, half clean where the truth is known."""
    rng = np.random.default_rng(seed)
    n = min(n, n_total)
    if noisy is None:
        return np.sort(rng.choice(n_total, size=n, replace=False))
    noisy_idx, clean_idx = np.flatnonzero(noisy), np.flatnonzero(~noisy)
    k_noisy = min(len(noisy_idx), n // 2)
    k_clean = min(len(clean_idx), n - k_noisy)
    k_noisy = n - k_clean  # top up with noisy samples when clean ones run out
    chosen = np.concatenate(
        [rng.choice(noisy_idx, size=k_noisy, replace=False), rng.choice(clean_idx, size=k_clean, replace=False)]
    )
    return np.sort(chosen)


def _display_images(images: np.ndarray, pixel_scale: float | None) -> np.ndarray:
    """(K, C, H, W) or (K, H, W) inputs as (K, H, W) grey or (K, H, W, 3) RGB floats in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3 (or (N, H, W)), got shape {np.shape(images)}")
    x = x.astype(np.float64)
    if pixel_scale is None:
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0.0 and hi <= 1.0:
            pixel_scale = 1.0
        elif lo >= 0.0:
            pixel_scale = 255.0 if np.asarray(images).dtype == np.uint8 and hi > 16 else hi
        else:  # e.g. normalised floats: min-max over the images shown
            x, pixel_scale = (x - lo) / (hi - lo if hi > lo else 1.0), 1.0
    x = np.clip(x / pixel_scale, 0.0, 1.0)
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


def _draw_examples(
    axes: Sequence[Any],
    idx: np.ndarray,
    shown: np.ndarray,
    given: np.ndarray,
    true: np.ndarray | None,
    selected: np.ndarray | None,
    relabelled: np.ndarray | None,
    class_names: Sequence[str] | None,
) -> None:
    """Draw the images ``shown`` (K, H, W[, 3]) of samples ``idx`` (K,) into ``axes`` with their label titles."""

    def name(c: int) -> str:
        return str(class_names[c]) if class_names is not None and 0 <= c < len(class_names) else str(c)

    for ax, i, img in zip(axes, idx, shown):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_label(f"sample {int(i)}")
        text = f"given {name(given[i])}" + ("" if true is None else f" / true {name(true[i])}")
        if relabelled is not None and 0 <= int(relabelled[i]) != given[i]:
            text += f" → {name(int(relabelled[i]))}"
        is_noisy = true is not None and bool(given[i] != true[i])
        ax.set_title(text, fontsize=7, color="red" if is_noisy else "black")
        is_selected = selected is not None and bool(selected[i])
        for spine in ax.spines.values():
            spine.set_visible(is_selected)
            spine.set_color("green")
            spine.set_linewidth(3.0)


def plot_examples(
    images: np.ndarray,
    given: np.ndarray,
    true: np.ndarray | None = None,
    selected: np.ndarray | None = None,
    relabelled: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    n: int = 24,
    seed: int = 0,
    pixel_scale: float | None = None,
    indices: Sequence[int] | None = None,
    ncols: int = 8,
    title: str | None = None,
):
    """A grid of training images with their given label, true label, selection and relabelling.

    Each image is titled ``given g / true t`` (red when ``g != t``); a green frame marks samples the method selected
    as clean, and ``→ r`` is appended when it relabelled the sample to ``r``.  Each image axes carries the sample
    index as its (invisible) artist label ``"sample i"``.

    Parameters
    ----------
    images : ndarray (N, C, H, W) or (N, H, W), uint8 or float
        Grey when C == 1, RGB when C == 3.
    given : int ndarray (N,)
        Labels the method trained on.
    true : int ndarray (N,), optional
        True labels; enables the red titles and the mixed choice of noisy and clean samples.
    selected : bool ndarray (N,), optional
        Clean-sample selection.
    relabelled : int ndarray (N,), optional
        Targets the method assigned; entries < 0 or equal to the given label count as not relabelled.
    class_names : sequence of str, optional
    n : int
        Number of images shown (at most N).
    seed : int
        Seed of the choice of samples: about half noisy and half clean when ``true`` is given, uniform otherwise.
    pixel_scale : float, optional
        Images are divided by this for display; by default 1 for values in [0, 1], 255 for uint8 images above 16,
        otherwise the largest value shown (min-max for negative values).
    indices : sequence of int, optional
        Show these samples instead of a random choice (``n`` and ``seed`` are then ignored).
    ncols : int
        Images per row.
    title : str, optional
        Figure title (a key to the markers is always added).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per image shown.
    """
    given = np.asarray(given, dtype=np.int64)
    N = len(given)
    if len(images) != N:
        raise ValueError(f"{len(images)} images but {N} given labels")
    for name, arr in (("true", true), ("selected", selected), ("relabelled", relabelled)):
        if arr is not None and len(arr) != N:
            raise ValueError(f"{name} has {len(arr)} entries for {N} samples")
    true = None if true is None else np.asarray(true, dtype=np.int64)
    noisy = None if true is None else given != true
    if indices is None:
        if n < 1 or N == 0:
            raise ValueError(f"nothing to show: n={n}, {N} samples")
        idx = _choose_examples(N, n, noisy, seed)
    else:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0 or idx.min() < -N or idx.max() >= N:
            raise ValueError(f"indices must be non-empty and within [0, {N})")
        idx = idx % N
    shown = _display_images(np.asarray(images)[idx], pixel_scale)
    fig, axes = _grid(len(idx), ncols, width=1.45, height=1.7)
    _draw_examples(axes, idx, shown, given, true, selected, relabelled, class_names)
    key = []
    if true is not None:
        key.append("red title: given label is wrong")
    if selected is not None:
        key.append("green frame: selected as clean")
    if relabelled is not None:
        key.append("→ r: relabelled to r")
    heading = "; ".join(([title] if title else []) + key)
    if heading:
        fig.suptitle(heading, fontsize=9)
    fig.tight_layout()
    return fig


def plot_run_examples(run: RunResult, dataset: Any, epoch: int = -1, n: int = 24, seed: int = 0, **kwargs: Any):
    """:func:`plot_examples` for a run: images from the data set, labels and signals from the run folder.

    Parameters
    ----------
    run : RunResult
        Gives the labels trained on (``labels``), the true labels (``true_labels``) and, at the chosen epoch,
        ``signals['selected']`` (E, N) and ``signals['relabel']`` (E, N) where recorded.
    dataset : Dataset or NoisyDataset
        The data set the run trained on; ``dataset.x_train`` (N, C, H, W) must be in memory.
    epoch : int
        Recorded epoch number whose selection and relabelling are shown; -1 for the last recorded epoch.
    n, seed : int
        As in :func:`plot_examples`.
    **kwargs
        Passed on to :func:`plot_examples` (``pixel_scale``, ``class_names``, ``indices``, ...).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When the images are not in memory, do not match the run's labels, or ``epoch`` was not recorded.
    """
    images = dataset.x_train
    if not isinstance(images, np.ndarray) or images.ndim not in (3, 4):
        raise ValueError(f"plot_run_examples needs in-memory images (N, C, H, W); {dataset!r} has none")
    if run.labels is None or len(run.labels) != len(images):
        raise ValueError(
            f"the run has {None if run.labels is None else len(run.labels)} labels but the data set "
            f"{len(images)} training images: is it the data set the run trained on?"
        )
    base = getattr(dataset, "dataset", dataset)  # NoisyDataset wraps the Dataset
    kwargs.setdefault("class_names", getattr(base, "class_names", None) or None)
    kwargs.setdefault("pixel_scale", getattr(base, "pixel_scale", None))
    true = run.true_labels  # None for real noise: the truth is unknown
    sig = run.signals
    selected = relabel = None
    shown_epoch = None
    if len(sig.get("epoch", ())):
        recorded = [int(e) for e in sig["epoch"]]
        if epoch == -1:
            row = len(recorded) - 1
        elif epoch in recorded:
            row = recorded.index(epoch)
        else:
            raise ValueError(f"epoch {epoch} has no recorded signals; recorded: {recorded[:5]}...{recorded[-3:]}")
        shown_epoch = recorded[row]
        if "selected" in sig:
            selected = np.asarray(sig["selected"][row], dtype=bool)
        if "relabel" in sig:
            relabel = np.asarray(sig["relabel"][row], dtype=np.int64)
    elif epoch != -1:
        raise ValueError(f"run {run.path} recorded no per-sample signals, so epoch {epoch} cannot be shown")
    cfg = run.config
    kwargs.setdefault(
        "title",
        f"{cfg.get('method')} on {cfg.get('dataset')}, {cfg.get('noise')}"
        + (f", epoch {shown_epoch}" if shown_epoch is not None else ""),
    )
    return plot_examples(images, run.labels, true=true, selected=selected, relabelled=relabel, n=n, seed=seed, **kwargs)


# ---------------------------------------------------------------------------------------------- memorisation
_MEMORISATION_CURVES = (
    ("memorised", "noisy: predicted given (wrong) label", "C3"),
    ("corrected", "noisy: predicted true label", "C2"),
    ("clean", "clean: predicted correctly", "C0"),
)


def _memorisation(run: RunResult) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Recorded epochs (E,) and the three fractions of :func:`plot_memorisation`, each (E,); validates first."""
    sig = run.signals
    if "pred" not in sig or len(sig.get("epoch", ())) == 0:
        raise ValueError(
            f"run {run.path} recorded no network predictions (signals['pred']), so memorisation "
            "cannot be measured; plain cross-entropy records them"
        )
    if run.true_labels is None or run.labels is None:
        raise ValueError(
            f"run {run.path} has no true training labels (real or unknown noise), so it is unknown "
            "which given labels are wrong"
        )
    pred = np.asarray(sig["pred"], dtype=np.int64)
    given = np.asarray(run.labels, dtype=np.int64)
    true = np.asarray(run.true_labels, dtype=np.int64)
    if pred.ndim != 2 or pred.shape[1] != len(given) or len(true) != len(given):
        raise ValueError(f"signals['pred'] has shape {pred.shape} for {len(given)} given and {len(true)} true labels")
    noisy = given != true

    def fraction(mask: np.ndarray, target: np.ndarray) -> np.ndarray:
        if not mask.any():
            return np.full(len(pred), np.nan)
        return (pred[:, mask] == target[mask]).mean(axis=1)

    curves = {"memorised": fraction(noisy, given), "corrected": fraction(noisy, true), "clean": fraction(~noisy, given)}
    missing = (pred < 0).all(axis=1)  # epochs padded with -1 because this one did not record predictions
    for values in curves.values():
        values[missing] = np.nan
    return np.asarray(sig["epoch"], dtype=int), curves


def plot_memorisation(run: RunResult, ax=None, title: str | None = None):
    """How the network's predictions on the training samples follow the given labels over epochs.

    Three fractions per recorded epoch: of the truly noisy samples, those predicted as their given (wrong) label
    ("memorised") and those predicted as their true label ("corrected"); of the clean samples, those predicted
    correctly.  Under plain cross-entropy the memorised fraction climbs once the clean samples are fitted: the
    memorisation the selection methods try to avoid.

    Parameters
    ----------
    run : RunResult
        Needs ``run.signals['pred']`` (E, N) with ``run.signals['epoch']`` (E,), ``run.labels`` (N,) and
        ``run.true_labels`` (N,).
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One line per fraction (labels ``"noisy: predicted given (wrong) label"``, ``"noisy: predicted true
        label"``, ``"clean: predicted correctly"``), y in [0, 1].

    Raises
    ------
    ValueError
        When the run recorded no predictions or has no true labels.
    """
    epochs, curves = _memorisation(run)
    if ax is None:
        fig, (ax,) = _figure()
    else:
        fig = ax.figure
    for key, label, color in _MEMORISATION_CURVES:
        ax.plot(epochs, curves[key], marker="o" if len(epochs) < 20 else None, ms=3, color=color, label=label)
    cfg = run.config
    _epoch_axes(
        ax, "fraction of samples", 1.02, "best", 7, title or f"memorisation: {cfg.get('method')}, {cfg.get('noise')}"
    )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- one epoch
def plot_epoch_snapshot(run: RunResult, epoch: int, bins: int = 40):
    """A run at one recorded epoch: its loss distribution, and where the epoch sits on the run's curves.

    This is the figure :class:`lnlkit.widgets.RunExplorer` redraws when its slider moves.

    Parameters
    ----------
    run : RunResult
        Needs ``run.signals['loss']`` (E, N) and ``run.signals['epoch']`` (E,).
    epoch : int
        A recorded signal epoch (one of ``run.signals['epoch']``).
    bins : int
        Histogram bins of the loss distribution.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes.  Left: :func:`plot_loss_distribution` at ``epoch``, titled ``"epoch E (test A%)"``.  Right, with a
        vertical dotted line labelled ``"shown epoch"`` at ``epoch``: :func:`plot_selection_quality` over all
        epochs; for a run that selects nothing (plain cross-entropy), :func:`plot_memorisation`; when that is
        unavailable too (no predictions or no true labels), the test accuracy curve.

    Raises
    ------
    ValueError
        When the run recorded no per-sample losses, or ``epoch`` is not a recorded epoch (the message lists them).
    """
    sig = run.signals
    if "loss" not in sig or len(sig.get("epoch", ())) == 0:
        raise ValueError(f"run {run.path} recorded no per-sample losses")
    recorded = [int(e) for e in sig["epoch"]]
    if not isinstance(epoch, (int, np.integer)) or int(epoch) not in recorded:
        raise ValueError(f"epoch {epoch!r} has no recorded signals; recorded epochs: {recorded}")
    epoch = int(epoch)
    losses = np.asarray(sig["loss"][recorded.index(epoch)], dtype=np.float64)
    keep = np.isfinite(losses)  # an epoch that lacks the loss signal is padded with NaN
    if not keep.any():
        raise ValueError(f"run {run.path} recorded no losses at epoch {epoch}")
    is_noisy = None if run.is_noisy is None else np.asarray(run.is_noisy, dtype=bool)[keep]

    fig, (left, right) = _figure(2, width=5.4, height=3.9)
    acc = {int(r["epoch"]): r.get("test_acc") for r in run.history if "epoch" in r}
    title = f"epoch {epoch}" + (f" (test {acc[epoch]:.1f}%)" if acc.get(epoch) is not None else "")
    plot_loss_distribution(losses[keep], is_noisy, ax=left, bins=bins, title=title)
    try:
        plot_selection_quality(run, ax=right)
    except ValueError:  # no selection recorded: show what the network memorises instead
        try:
            plot_memorisation(run, ax=right)
        except ValueError:
            right.plot(run.curve("epoch"), run.curve("test_acc"), color="C0", label="test accuracy")
            right.set_xlabel("epoch")
            right.set_ylabel("accuracy (%)")
            right.set_ylim(0, 101)
            right.grid(alpha=0.3)
            right.set_title("test accuracy")
    right.axvline(epoch, color="k", ls=":", lw=1.2, label="shown epoch")
    right.legend(loc="best", fontsize=7)
    cfg = run.config
    fig.suptitle(
        f"{cfg.get('method')} on {cfg.get('dataset')}, {cfg.get('noise')}, seed {cfg.get('seed')}: epoch {epoch}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- noise
def plot_noise_overview(noisy_dataset: Any, n_examples: int = 16, ncols: int = 4, title: str | None = None):
    """A noisy data set at a glance: its realised transition matrix beside the first flipped training samples.

    This is the figure :class:`lnlkit.widgets.NoiseExplorer` redraws.

    Parameters
    ----------
    noisy_dataset : NoisyDataset
        From ``Dataset.with_noise(spec, seed)``; its ``noise.transition`` (C, C) is drawn, and, when
        ``x_train`` (N, C, H, W) is in memory, the first ``n_examples`` samples (in index order) whose given label
        differs from the true one, titled ``given g / true t``.
    n_examples : int
        Flipped samples shown (fewer when fewer were flipped; none for ``n_examples=0``).
    ncols : int
        Example images per row.
    title : str, optional
        Figure title; by default the spec, the seed and the realised against the nominal rate.

    Returns
    -------
    matplotlib.figure.Figure
        ``axes[0]`` is the heatmap, then its colour bar, then one axes per example image (artist label
        ``"sample i"``, as in :func:`plot_examples`).

    Raises
    ------
    ValueError
        When the labels have no transition matrix (real noise with unknown clean labels).
    """
    noise = noisy_dataset.noise
    base = getattr(noisy_dataset, "dataset", noisy_dataset)
    if noise.transition is None or noise.is_noisy is None:
        raise ValueError(
            f"{noise.spec!r} on {base.name} has no known clean labels, so there is no transition "
            "matrix or flipped sample to show"
        )
    if n_examples < 0 or ncols < 1:
        raise ValueError(f"n_examples must be >= 0 and ncols >= 1, got {n_examples} and {ncols}")
    given = np.asarray(noise.labels, dtype=np.int64)
    true = np.asarray(base.y_train, dtype=np.int64)
    images = getattr(base, "x_train", None)
    in_memory = isinstance(images, np.ndarray) and images.ndim in (3, 4)
    flipped = np.flatnonzero(given != true)[:n_examples] if in_memory else np.zeros(0, dtype=np.int64)

    c = np.shape(noise.transition)[0]
    side = min(max(3.5, 0.45 * c + 1.5), 9.0)
    ncols = max(1, min(ncols, len(flipped))) if len(flipped) else 1
    nrows = math.ceil(len(flipped) / ncols) if len(flipped) else 1
    height = max(side, 1.7 * nrows)
    width = side + 1.2 + (1.45 * ncols if len(flipped) else 0.0)
    fig = _pyplot().figure(figsize=(width, height))
    # One grid: the heatmap spans the first column, the examples fill the others (tight_layout copes with it).
    grid = (
        fig.add_gridspec(nrows, 1 + ncols, width_ratios=[(side + 1.2) / 1.45] + [1.0] * ncols)
        if len(flipped)
        else fig.add_gridspec(1, 1)
    )
    heat = fig.add_subplot(grid[:, 0])
    names = getattr(base, "class_names", None) or None
    plot_transition_matrix(
        noise.transition,
        class_names=names if names is not None and len(names) == c else None,
        ax=heat,
        title="realised transition",
    )
    if len(flipped):
        axes = [fig.add_subplot(grid[k // ncols, 1 + k % ncols]) for k in range(len(flipped))]
        shown = _display_images(images[flipped], getattr(base, "pixel_scale", None))
        _draw_examples(axes, flipped, shown, given, true, None, None, names)
    rate = noise.realized_rate
    nominal = noise.nominal_rate
    heading = title or (
        f"{noise.spec}, seed {getattr(noisy_dataset, 'seed', '?')}: realised rate "
        f"{rate:.3f}"
        + ("" if nominal is None else f" (nominal {nominal:.3f})")
        + f", {int((given != true).sum())} of {len(given)} labels wrong"
        + (f"; first {len(flipped)} flipped samples" if len(flipped) else "")
    )
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- many runs
def _noise_axis(spec: Any) -> tuple[str | None, float] | None:
    """``"symmetric:0.4"`` -> ("symmetric", 0.4); ``"none"``/``"clean"`` -> (None, 0.0), i.e. rate 0 of every
    panel; specs without a numeric rate at the end (real noise such as ``"cifar10n:worst"``) -> None."""
    text = str(spec).strip().lower()
    if text in ("none", "clean"):
        return None, 0.0
    kind, sep, rate = text.rpartition(":")
    try:
        return (kind, float(rate)) if sep and kind else None
    except ValueError:
        return None


def _numeric(table, column: str):
    import pandas as pd

    return pd.to_numeric(table[column], errors="coerce")


def _method_labels(table: pd.DataFrame) -> pd.Series:
    """The display name of each row's method (:data:`lnlkit.tables.DISPLAY_NAMES`), or ``name (preset)`` for a
    method whose runs use several presets (ablation or switch variants), so that different configurations are
    never pooled into one line or bar."""
    from lnlkit.tables import DISPLAY_NAMES

    methods = table["method"].astype(str)
    names = methods.map(lambda m: DISPLAY_NAMES.get(m, m))
    if "preset" not in table.columns:
        return names
    presets = table["preset"].astype(str)
    several = presets.groupby(methods).transform("nunique") > 1
    return names.where(~several, names + " (" + presets + ")")


def _panel_title(kind: str) -> str:
    from lnlkit.tables import noise_header

    if kind == "none":
        return "no noise"
    head, _, last = kind.rpartition("+")  # "openset:0.2+symmetric" -> "Open 20% + sym." (fits a narrow panel)
    words = {"symmetric": "Symmetric", "pairflip": "Pair-flip", "instance": "Instance", "openset": "Open-set"}
    if head:
        return f"{noise_header(head)} + {_SHORT_KIND.get(last, last)}"
    return words.get(last, last) + " noise"


_SHORT_KIND = {"symmetric": "sym.", "pairflip": "pair", "instance": "inst."}


def _panel_key(kind: str) -> tuple:
    from lnlkit.tables import noise_sort_key

    return noise_sort_key(f"{kind}:0")


def _outside_legend(fig, handles, labels, ncol: int) -> None:
    """One legend for the whole figure, below the panels (never over the data)."""
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


def plot_accuracy_vs_noise(
    table: Any,
    metric: str = "reported",
    ax=None,
    best: str | None = None,
    reference: str | None = "ce",
    width: float = 9.0,
):
    """Accuracy against nominal noise rate: one panel per noise kind, one curve per method (mean ± std over seeds),
    CE's best and last epochs as grey reference curves, one shared legend below the panels.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run, as :func:`lnlkit.results_table` returns it: needs ``method``, ``noise`` (a spec such as
        ``"symmetric:0.4"``) and ``metric``; ``test_acc_best`` / ``test_acc_last`` for the reference curves;
        ``dataset`` tells lines apart when there are several.  The panel is the spec up to its last ``:``
        (``"openset:0.2+symmetric:0.4"`` goes to the panel ``"openset:0.2+symmetric"`` at 0.4); ``"none"`` runs
        sit at rate 0 on every panel; runs without a numeric rate (real noise such as ``"cifar10n:worst"``) and
        runs whose value is missing are left out.
    metric : str
        Column plotted for the methods, e.g. ``"reported"``, ``"test_acc_last"``.
    ax : sequence of Axes, optional
        One axes per panel (panels in the order symmetric, pair-flip, instance, open-set, others).
    best : str or None
        A second column drawn dashed in each method's colour (e.g. ``"test_acc_best"``); None draws none.
    reference : str or None
        The method drawn as reference curves, ``CE (best epoch)`` (``test_acc_best``, grey dashed) and ``CE (last
        epoch)`` (``test_acc_last``, grey dotted), instead of a method curve; None draws it as any method.
    width : float
        Figure width in inches (9 at dpi 100 is README width).

    Returns
    -------
    matplotlib.figure.Figure
        Panels sharing the y range, wider for kinds with several rates; in a panel with a single rate the methods
        sit side by side around it.  Each method keeps its colour (:data:`METHOD_COLORS`) in every figure.

    Raises
    ------
    ValueError
        When the table is empty, lacks a needed column, has nothing to plot, or ``ax`` does not match the panels.
    """
    import pandas as pd

    if table is None or len(table) == 0:
        raise ValueError("the results table is empty: no runs to plot (did results_table find any run folder?)")
    missing = [c for c in ("method", "noise", metric) if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) {missing}; columns: {list(table.columns)}")
    several_datasets = "dataset" in table.columns and table["dataset"].nunique(dropna=False) > 1
    suffix = (" (" + table["dataset"].astype(str) + ")") if several_datasets else ""
    # paper_runs' row labels ("Prune4ReL (f = 0.2)") where the table has them
    labels = (table["label"].astype(str) if "label" in table.columns else _method_labels(table)) + suffix
    is_ref = table["method"].astype(str) == reference if reference is not None else pd.Series(False, table.index)
    parts = []
    for column, style in ((metric, "method"), (best, "best")):
        if column is None or column == metric and style == "best" or column not in table.columns:
            continue
        parts.append(
            pd.DataFrame(
                {
                    "label": labels + ("" if style == "method" else ", best epoch"),
                    "method": table["method"].astype(str),
                    "style": style,
                    "noise": table["noise"],
                    "value": _numeric(table, column),
                }
            )[~is_ref]
        )
    if reference is not None:
        for column, what, style in (("test_acc_best", "best", "ref_best"), ("test_acc_last", "last", "ref_last")):
            if column in table.columns:
                name = labels[is_ref]
                parts.append(
                    pd.DataFrame(
                        {
                            "label": name + f" ({what} epoch)",
                            "method": reference,
                            "style": style,
                            "noise": table["noise"][is_ref],
                            "value": _numeric(table, column)[is_ref],
                        }
                    )
                )
    frame = pd.concat(parts, ignore_index=True)
    axis = [_noise_axis(s) for s in frame["noise"]]
    frame["kind"] = [a[0] if a else np.nan for a in axis]
    frame["rate"] = [a[1] if a else np.nan for a in axis]
    frame = frame[np.isfinite(frame["rate"].astype(float)) & np.isfinite(frame["value"].astype(float))]
    if frame.empty:
        raise ValueError(f"no run has both a numeric noise rate and a finite {metric!r}")
    kinds = sorted(frame["kind"].dropna().unique(), key=_panel_key) or ["none"]
    clean = frame[frame["kind"].isna()]
    rates = {k: sorted(set(frame.loc[frame["kind"] == k, "rate"]) | set(clean["rate"])) for k in kinds}
    if ax is None:
        ratios = [2.0 if len(rates[k]) > 1 else 1.0 for k in kinds]
        fig, axes = _pyplot().subplots(
            1,
            len(kinds),
            figsize=(width, 3.6),
            sharey=True,
            squeeze=False,
            layout="constrained",
            gridspec_kw={"width_ratios": ratios},
        )
        axes = list(axes[0])
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(kinds):
            raise ValueError(f"{len(kinds)} noise kinds {kinds} need {len(kinds)} axes, got {len(axes)}")
        fig = axes[0].figure
    # legend order: CE references first, then the methods in the papers' order
    from lnlkit.tables import METHOD_ORDER

    def order(label: str) -> tuple:
        rows = frame[frame["label"] == label].iloc[0]
        rank = METHOD_ORDER.index(rows["method"]) if rows["method"] in METHOD_ORDER else len(METHOD_ORDER)
        return (not rows["style"].startswith("ref"), rank, label)

    series = sorted(frame["label"].unique(), key=order)
    styles = {
        "method": dict(ls="-", marker="o", ms=4, lw=1.6),
        "best": dict(ls="--", marker=".", ms=3, lw=1.0, alpha=0.7),
        "ref_best": dict(ls="--", marker="", lw=1.3),
        "ref_last": dict(ls=":", marker="", lw=1.6),
    }
    handles: dict[str, Any] = {}
    lowest = 100.0
    for panel, kind in zip(axes, kinds):
        rows = pd.concat([frame[frame["kind"] == kind], clean])
        single = len(rates[kind]) == 1
        drawn = [lb for lb in series if (rows["label"] == lb).any()]
        methods_here = [lb for lb in drawn if not rows.loc[rows["label"] == lb, "style"].iloc[0].startswith("ref")]
        for label in drawn:
            mine = rows[rows["label"] == label]
            style = mine["style"].iloc[0]
            points = mine.groupby("rate")["value"].agg(["mean", "std"]).sort_index()
            spread = points["std"].fillna(0.0).to_numpy()
            x = points.index.to_numpy(dtype=float)
            color = method_color(mine["method"].iloc[0], reference=style.startswith("ref"))
            color = REFERENCE_COLORS[style] if style.startswith("ref") else color
            if single and style.startswith("ref"):
                # a reference at a single rate: a horizontal line across the panel
                h = panel.axhline(
                    points["mean"].iloc[0], color=color, **{k: v for k, v in styles[style].items() if k != "marker"}
                )
            else:
                if single:  # methods side by side around the one rate, so their error bars do not overlap
                    i = methods_here.index(label) if label in methods_here else 0
                    x = x + (i - (len(methods_here) - 1) / 2) * 0.012
                h = panel.errorbar(
                    x,
                    points["mean"].to_numpy(),
                    yerr=spread if style == "method" else None,
                    color=color,
                    capsize=2.5 if style == "method" else 0,
                    label=label,
                    **styles[style],
                )
            handles.setdefault(label, h)
            lowest = min(lowest, float(np.min(points["mean"].to_numpy() - spread)))
        panel.set_title(_panel_title(kind), fontsize=10)
        panel.set_xticks(rates[kind], [f"{r:g}" for r in rates[kind]])
        if single:
            panel.set_xlim(rates[kind][0] - 0.07, rates[kind][0] + 0.07)
        else:
            pad = 0.06 * (rates[kind][-1] - rates[kind][0])
            panel.set_xlim(rates[kind][0] - pad, rates[kind][-1] + pad)
        panel.set_xlabel("noise rate")
        panel.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)" if metric in ("reported", "test_acc_last", "test_acc_best") else metric)
    # one scale for every panel, so kinds compare at a glance (a single point must not fill its panel)
    for panel in axes:
        panel.set_ylim(max(0.0, 10.0 * np.floor((lowest - 5.0) / 10.0)), 101.0)
    labels_shown = list(handles)
    _outside_legend(fig, [handles[lb] for lb in labels_shown], labels_shown, ncol=min(5, len(labels_shown)))
    return fig


def plot_selection_over_epochs(
    runs: Any,
    noise: str | None = None,
    seed: int | None = None,
    x: str = "fraction",
    title: str | None = None,
    width: float = 9.0,
):
    """Selection precision and recall over training for every selecting method on one setting, side by side.

    Parameters
    ----------
    runs : mapping, pandas.DataFrame or sequence
        ``{label: RunResult}``; or a runs table (:func:`lnlkit.results_table`, with ``path``), from which the runs
        on ``noise`` and ``seed`` are loaded; or a sequence of run folders / :class:`RunResult`.  Runs whose history
        has no ``sel_precision`` (CE, SOP+) are left out.
    noise, seed : optional
        The setting taken from a table (default: the first noise setting in column order, the smallest seed).
    x : {"fraction", "epoch"}
        ``"fraction"``: the share of the run's epochs done (epoch index / last epoch index, so runs of different
        lengths end at 1); ``"epoch"``: the epoch number.
    title : str, optional
        Default: the setting.
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (precision, recall), one line per method in its colour (:data:`METHOD_COLORS`), one legend below.

    Raises
    ------
    ValueError
        For another ``x``, or when no run recorded a selection.
    """
    from lnlkit.runs import load_run
    from lnlkit.tables import DISPLAY_NAMES, METHOD_ORDER, method_label, noise_sort_key

    if x not in ("fraction", "epoch"):
        raise ValueError(f"x must be 'fraction' or 'epoch', got {x!r}")
    if isinstance(runs, Mapping):
        chosen = dict(runs)
    elif hasattr(runs, "columns"):
        table = runs
        if "path" not in table.columns or not len(table):
            raise ValueError("the runs table is empty or has no 'path' column")
        if noise is None:
            noise = sorted(table["noise"].astype(str).unique(), key=noise_sort_key)[0]
        table = table[table["noise"].astype(str) == str(noise)]
        if seed is None and len(table):
            seed = int(table["seed"].min())
        table = table[table["seed"] == seed]
        chosen = {}
        for p in table["path"]:
            run = load_run(p)
            label = method_label(str(run.config.get("method")), run.config.get("hyperparameters"))
            chosen.setdefault(label, run)
    else:
        chosen = {}
        for item in runs:
            run = item if isinstance(item, RunResult) else load_run(item)
            chosen.setdefault(DISPLAY_NAMES.get(run.config.get("method"), str(run.config.get("method"))), run)
    selecting = {k: r for k, r in chosen.items() if np.isfinite(r.curve("sel_precision")).any()}
    if not selecting:
        raise ValueError("none of these runs recorded a sample selection (sel_precision): nothing to plot")

    def rank(item):
        m = item[1].config.get("method")
        return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), item[0])

    fig, axes = _pyplot().subplots(1, 2, figsize=(width, 3.4), sharey=True, layout="constrained")
    for label, run in sorted(selecting.items(), key=rank):
        epochs = run.curve("epoch")
        if x == "fraction":
            span = max(epochs[-1] - epochs[0], 1.0)
            xs = (epochs - epochs[0]) / span
        else:
            xs = epochs
        color = method_color(str(run.config.get("method")))
        for panel, key in zip(axes, ("sel_precision", "sel_recall")):
            values = run.curve(key)
            keep = np.isfinite(values)
            panel.plot(xs[keep], values[keep], color=color, lw=1.6, marker="." if keep.sum() < 30 else "", label=label)
    for panel, name in zip(axes, ("precision (clean among selected)", "recall (selected among clean)")):
        panel.set_title(name, fontsize=10)
        panel.set_xlabel("fraction of training (epoch / last epoch)" if x == "fraction" else "epoch")
        panel.set_ylim(0, 1.02)
        panel.grid(alpha=0.3)
    axes[0].set_ylabel("selection quality")
    if title is None:
        first = next(iter(selecting.values())).config
        title = f"{first.get('dataset')}, {first.get('noise')}, seed {first.get('seed')}"
    fig.suptitle(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    _outside_legend(fig, handles, labels, ncol=min(4, len(labels)))
    return fig


def plot_selection_summary(table: Any):
    """Final clean-sample selection precision and recall per method and noise setting (mean ± std over seeds), and
    the AUROC of the method's clean score where its runs recorded one.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run, as :func:`lnlkit.results_table` returns it: ``method``, ``noise``, ``sel_precision``,
        ``sel_recall`` (fractions), optionally ``sel_auroc``; ``dataset`` joins the noise in the group labels when
        there are several.  Rows
        without a finite ``sel_precision`` (methods that select nothing, unfinished runs) are left out.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per method with two bars (precision, recall) per noise setting, a third (AUROC) when the
        method's runs have one, or, when no row has a
        selection, a single empty axes with the centred text ``"no method in these runs selects clean samples"``
        (so a results notebook can always draw it).
    """
    import pandas as pd

    if table is not None and len(table) and not {"method", "noise", "sel_precision"} <= set(table.columns):
        raise ValueError(
            f"the results table needs columns method, noise and sel_precision; columns: {list(table.columns)}"
        )
    frame = pd.DataFrame()
    if table is not None and len(table):
        frame = pd.DataFrame(
            {
                "method": _method_labels(table),
                "method_name": table["method"].astype(str),
                "setting": table["noise"].astype(str),
                "precision": _numeric(table, "sel_precision"),
                "recall": _numeric(table, "sel_recall") if "sel_recall" in table.columns else np.nan,
                "AUROC": _numeric(table, "sel_auroc") if "sel_auroc" in table.columns else np.nan,
            }
        )
        if "dataset" in table.columns and table["dataset"].nunique(dropna=False) > 1:
            frame["setting"] = table["dataset"].astype(str) + "\n" + frame["setting"]
        frame = frame[np.isfinite(frame["precision"])]
    if frame.empty:
        fig, (ax,) = _figure(width=6.0, height=2.0)
        ax.text(
            0.5, 0.5, "no method in these runs selects clean samples", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_axis_off()
        return fig

    def order(setting: str):  # by kind then rate, so "symmetric:0.2" comes before "symmetric:0.8"
        axis = _noise_axis(setting.rsplit("\n", 1)[-1])
        return (
            setting.rsplit("\n", 1)[0] if "\n" in setting else "",
            "" if axis is None or axis[0] is None else axis[0],
            axis[1] if axis else math.inf,
            setting,
        )

    methods = sorted(frame["method"].unique())
    fig, axes = _figure(len(methods), width=max(3.5, 1.1 * frame["setting"].nunique() + 1.5), height=3.6)
    for ax, method in zip(axes, methods):
        rows = frame[frame["method"] == method]
        # the method's colour (METHOD_COLORS): precision solid, recall lighter and hatched, AUROC outlined
        color = method_color(rows["method_name"].iloc[0])
        metrics = [("precision", dict(color=color)), ("recall", dict(color=color, alpha=0.45, hatch="//"))] + (
            [("AUROC", dict(facecolor="white", edgecolor=color, hatch=".."))]
            if np.isfinite(rows["AUROC"]).any()
            else []
        )
        stats = rows.groupby("setting")[[m for m, _ in metrics]].agg(["mean", "std"])
        settings = sorted(stats.index, key=order)
        stats = stats.loc[settings]
        x = np.arange(len(settings))
        width = 0.76 / len(metrics)
        for i, (metric, look) in enumerate(metrics):
            ax.bar(
                x + (i - (len(metrics) - 1) / 2) * width,
                stats[(metric, "mean")].to_numpy(),
                width,
                yerr=stats[(metric, "std")].fillna(0.0),
                capsize=3,
                label=metric,
                **look,
            )
        crowded = len(settings) > 3
        ax.set_xticks(x, settings, rotation=30 if crowded else 0, ha="right" if crowded else "center", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("final selection quality")
        ax.set_title(method)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig

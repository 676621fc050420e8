"""Figures of a run: accuracy curves and per-sample loss distributions with the two-component GMM fit.

Every function takes a :class:`~lnlkit.train.recorder.RunResult` (or plain arrays) and returns the matplotlib
``Figure``; nothing is shown or saved implicitly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lnlkit.train.recorder import RunResult
from lnlkit.train.selection import gmm_split, min_max_normalise

__all__ = ["plot_accuracy_curves", "plot_loss_distribution", "plot_loss_distributions"]


def _figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY"))


def plot_accuracy_curves(run: RunResult, title: str | None = None):
    """Test accuracy (and accuracy on the given training labels, when recorded) over epochs, best and last marked.

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
    if np.isfinite(test).any():
        best = int(np.nanargmax(test))
        ax.scatter([epochs[best]], [test[best]], color="C2", zorder=3, label=f"best {test[best]:.1f}% (epoch {int(epochs[best])})")
        ax.scatter([epochs[-1]], [test[-1]], color="C3", zorder=3, label=f"last {test[-1]:.1f}%")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    cfg = run.config
    ax.set_title(title or f"{cfg.get('method')} on {cfg.get('dataset')}, {cfg.get('noise')}, seed {cfg.get('seed')}")
    fig.tight_layout()
    return fig


def plot_loss_distribution(losses: np.ndarray, is_noisy: np.ndarray | None = None, ax=None, bins: int = 40,
                           normalise: bool = True, title: str | None = None):
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
        ax.hist([x[~noisy], x[noisy]], bins=edges, weights=[weights[~noisy], weights[noisy]], stacked=True,
                color=["C0", "C3"], alpha=0.6, label=[f"clean ({(~noisy).sum()})", f"noisy ({noisy.sum()})"])
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

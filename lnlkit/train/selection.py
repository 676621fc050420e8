"""Clean-sample selection rules shared by the methods, and the selection-quality metrics the recorder reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "min_max_normalise",
    "GMMSplit",
    "gmm_split",
    "small_loss_mask",
    "classwise_small_loss_mask",
    "selection_quality",
]


def min_max_normalise(values: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1]; a constant array maps to zeros."""
    v = np.asarray(values, dtype=np.float64)
    span = v.max() - v.min() if v.size else 0.0
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


@dataclass
class GMMSplit:
    """A two-component 1-D Gaussian mixture fitted to per-sample losses.

    Attributes
    ----------
    clean_prob : ndarray (N,)
        Posterior of the low-mean ("clean") component.
    means, stds, weights : ndarray (2,)
        Component parameters, clean component first.
    threshold : float
        Loss at which the clean posterior crosses 0.5 (NaN when it never does in the data range).
    """

    clean_prob: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray
    threshold: float

    def pdf(self, grid: np.ndarray) -> np.ndarray:
        """Weighted component densities on ``grid``: shape (2, len(grid)), clean first."""
        g = np.asarray(grid, dtype=np.float64)[None]
        return (
            self.weights[:, None]
            * np.exp(-0.5 * ((g - self.means[:, None]) / self.stds[:, None]) ** 2)
            / (self.stds[:, None] * np.sqrt(2 * np.pi))
        )


def gmm_split(
    losses: np.ndarray, max_iter: int = 10, tol: float = 1e-2, reg_covar: float = 5e-4, random_state: int = 0
) -> GMMSplit:
    """Fit DivideMix's two-component GMM to per-sample losses and return the clean posterior.

    The defaults are DivideMix's (``max_iter=10, tol=1e-2, reg_covar=5e-4``); callers normalise the losses first
    where the method does (DivideMix min-max normalises).

    Parameters
    ----------
    losses : ndarray (N,)

    Returns
    -------
    GMMSplit
    """
    from sklearn.mixture import GaussianMixture

    x = np.asarray(losses, dtype=np.float64).reshape(-1, 1)
    if len(x) < 2 or np.ptp(x) == 0:
        # nothing to separate: every sample is equally (and fully) plausible as clean
        m = float(x.mean()) if len(x) else 0.0
        return GMMSplit(np.ones(len(x)), np.array([m, m]), np.ones(2), np.array([1.0, 0.0]), float("nan"))
    gmm = GaussianMixture(n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=random_state)
    gmm.fit(x)
    clean = int(np.argmin(gmm.means_.ravel()))
    order = [clean, 1 - clean]
    prob = gmm.predict_proba(x)[:, clean]
    means = gmm.means_.ravel()[order]
    stds = np.sqrt(gmm.covariances_.ravel()[order])
    weights = gmm.weights_[order]
    grid = np.linspace(x.min(), x.max(), 2001)
    post = gmm.predict_proba(grid[:, None])[:, clean]
    between = (grid >= means[0]) & (post < 0.5)
    threshold = float(grid[np.argmax(between)]) if between.any() else float("nan")
    return GMMSplit(prob, means, stds, weights, threshold)


def small_loss_mask(losses: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Keep the ``round(keep_fraction · N)`` smallest-loss samples (ties broken by index). Returns bool (N,)."""
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction}")
    n_keep = int(round(keep_fraction * len(losses)))
    mask = np.zeros(len(losses), dtype=bool)
    mask[np.argsort(losses, kind="stable")[:n_keep]] = True
    return mask


def classwise_small_loss_mask(losses: np.ndarray, labels: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Per given class, keep the ``round(keep_fraction · n_c)`` smallest-loss samples. Returns bool (N,)."""
    mask = np.zeros(len(losses), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        mask[idx[small_loss_mask(losses[idx], keep_fraction)]] = True
    return mask


def selection_quality(selected: np.ndarray, is_noisy: np.ndarray | None) -> dict[str, float]:
    """Precision, recall and F1 of a clean-sample selection against the true noise mask (reporting only).

    Parameters
    ----------
    selected : bool ndarray (N,)
        Samples the method treats as clean.
    is_noisy : bool ndarray (N,) or None
        True noise mask; ``None`` (real noise, unknown truth) gives only the selected fraction.

    Returns
    -------
    dict with ``sel_fraction`` and, when the truth is known, ``sel_precision`` (clean among selected),
    ``sel_recall`` (selected among clean) and ``sel_f1``; NaN where undefined (nothing selected, no clean sample).
    """
    selected = np.asarray(selected, dtype=bool)
    out = {"sel_fraction": float(selected.mean()) if selected.size else float("nan")}
    if is_noisy is None:
        return out
    clean = ~np.asarray(is_noisy, dtype=bool)
    tp = float(np.sum(selected & clean))
    precision = tp / selected.sum() if selected.sum() else float("nan")
    recall = tp / clean.sum() if clean.sum() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    out.update(sel_precision=float(precision), sel_recall=float(recall), sel_f1=float(f1))
    return out

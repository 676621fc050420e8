"""Exact thresholded neighbourhoods of chosen samples against a whole embedding set, without an n×n matrix.

Prune4ReL's greedy needs, for each pick ``p``, every sample ``j`` whose similarity to ``p`` passes the threshold,
with the weight ``w(j, p)``.  :class:`Neighbourhoods` answers such *range queries* in one of two exact ways:

* ``"dense"``: the query rows against every embedding, in column blocks (time O(k·n·d) for k queries; the right
  choice on a GPU, where the products are cheap).
* ``"cells"`` (cosine only): the unit embeddings are split once into small cells by bisecting spherical k-means,
  until a cell has at most ``leaf_size`` samples and an angular radius of at most ``max_radius`` degrees (or a
  single distinct point); each cell keeps its mean direction ``m`` and its radius ``r`` (the largest angle between
  a member and ``m``).  Angles obey the triangle inequality, so a member ``x`` of cell ``b`` lies at least
  ``angle(q, m_b) − r_b`` from a query ``q`` of cell ``a``, and at least ``angle(m_a, m_b) − r_a − r_b`` from any
  member of ``a``.  Cells farther than the threshold angle ``arccos(2τ − 1)`` (plus a small margin against
  rounding) by the second bound are not *adjacent* (a sparse cell graph computed once, cell by cell, never sample by
  sample); a query is compared only with the members of the adjacent cells that also pass the first, per-query
  bound.  On embeddings with cluster structure (a trained network's features, the synthetic benchmark) a query
  touches a few hundred samples instead of ``n``; on structureless data nothing is pruned and the cost is about that
  of ``"dense"``.  Neighbour sets and weights equal the dense ones (same formula; the last float bit may differ).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["similarity_weights", "Neighbourhoods", "spherical_kmeans", "bisecting_cells", "INDEXES"]

INDEXES = ("auto", "dense", "cells")

# cells are skipped only when they clear the threshold angle by this much (radians): arccos is ill-conditioned near
# cos = 1, where float32 products can move an angle by ~1e-3, and a bound adds up to three such angles
_ANGLE_MARGIN = 0.01
# "auto" uses cells on the CPU from this many samples on (below it the dense products are already cheap)
AUTO_CELLS_MIN_N = 20_000


def similarity_weights(
    a: torch.Tensor, b: torch.Tensor, metric: str = "cossim", tau: float = 0.975, normalised: bool = False
) -> torch.Tensor:
    """Neighbourhood weights ``w(a_i, b_j)`` (Prune4ReL's ``--metric``), zero outside the neighbourhood.

    Parameters
    ----------
    a : Tensor (k, d)
    b : Tensor (m, d)
    metric : {"cossim", "euclidean"}
        ``cossim``: ``s = 0.5 + 0.5·cos`` in [0, 1], kept where ``s > tau`` (strict), weight ``s``.
        ``euclidean``: ``clamp(1/(dist + 0.1) − 0.1, 0, 10)``, no τ.
    tau : float
        Threshold on the *rescaled* similarity: τ = 0.975 means raw cosine > 0.95.
    normalised : bool
        ``a`` and ``b`` rows already have unit norm (cossim only; saves the normalisation).

    Returns
    -------
    Tensor float32 (k, m)
    """
    if metric == "cossim":
        if not normalised:
            a, b = F.normalize(a.float(), dim=1), F.normalize(b.float(), dim=1)
        s = 0.5 + 0.5 * (a @ b.T).float()
        return s * (s > tau)
    if metric == "euclidean":
        d = torch.cdist(a.float(), b.float())
        return torch.clamp(1.0 / (d + 0.1) - 0.1, 0.0, 10.0)
    raise ValueError(f"metric must be 'cossim' or 'euclidean', got {metric!r}")


def _nearest_centroid(x: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index of the most similar unit centroid for each unit row of ``x`` (chunked: memory chunk × k)."""
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        out[start : start + chunk] = np.argmax(x[start : start + chunk] @ centroids.T, axis=1)
    return out


def spherical_kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 8, sample: int | None = None
) -> np.ndarray:
    """Unit centroids of a spherical k-means (Lloyd iterations on cosine similarity).

    Parameters
    ----------
    x : ndarray float32 (n, d)
        Unit rows.
    k : int
        Number of centroids (clipped to the number of rows used).
    rng : numpy Generator
        Draws the initial centroids (distinct rows) and the training sample.
    iterations : int
    sample : int, optional
        Fit on this many random rows (all when ``None`` or larger than ``n``).

    Returns
    -------
    ndarray float32 (k', d)
        Unit centroids; a centroid that loses all its rows keeps its previous position.
    """
    if sample is not None and sample < len(x):
        x = x[np.sort(rng.choice(len(x), size=sample, replace=False))]
    k = int(max(1, min(k, len(x))))
    centroids = x[rng.choice(len(x), size=k, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest_centroid(x, centroids)
        sums = (assign[None, :] == np.arange(k)[:, None]).astype(x.dtype) @ x  # (k, d) per-centroid sums
        norms = np.linalg.norm(sums, axis=1)
        moved = norms > 0
        centroids[moved] = sums[moved] / norms[moved, None]
    return centroids


def _cell_radius(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean direction (d,) and angular radius (radians) of unit rows ``x`` (n, d)."""
    total = x.sum(0)
    norm = float(np.linalg.norm(total))
    centre = total / norm if norm > 0 else x[0]
    return centre, float(np.arccos(np.clip((x @ centre).min(), -1.0, 1.0)))


def bisecting_cells(x: np.ndarray, leaf_size: int, max_radius: float, rng: np.random.Generator) -> np.ndarray:
    """Split unit rows into cells by bisecting spherical k-means.

    A cell is split in two while it has more than ``leaf_size`` rows or an angular radius above ``max_radius``
    (radians); a split that leaves one side empty (duplicates) ends that cell.

    Parameters
    ----------
    x : ndarray float32 (n, d)
        Unit rows.
    leaf_size : int
    max_radius : float
    rng : numpy Generator

    Returns
    -------
    ndarray int64 (n,)
        Cell id of each row, ``0 … K − 1``.
    """
    cell = np.zeros(len(x), dtype=np.int64)
    todo = [np.arange(len(x))]
    next_id = 0
    while todo:
        members = todo.pop()
        size = len(members)
        split = size > leaf_size
        if not split and size > 1:
            split = _cell_radius(x[members])[1] > max_radius
        if split:
            fit = members if size <= 4096 else np.sort(rng.choice(members, size=4096, replace=False))
            centroids = spherical_kmeans(x[fit], 2, rng, iterations=6)
            side = np.zeros(size, dtype=np.int64)
            if len(centroids) == 2:
                for start in range(0, size, 65536):  # a chunk of rows at a time: never a copy of a large cell
                    side[start : start + 65536] = _nearest_centroid(x[members[start : start + 65536]], centroids)
            if 0 < side.sum() < size:
                todo += [members[side == 0], members[side == 1]]
                continue
        cell[members] = next_id
        next_id += 1
    return cell


class Neighbourhoods:
    """Range queries ``{j : w(q, x_j) > 0}`` of chosen samples against all embeddings (module docstring).

    Parameters
    ----------
    embeddings : Tensor (n, d)
        Any device for ``"dense"`` (the products run there); ``"cells"`` works on a float32 NumPy copy.
    metric : {"cossim", "euclidean"}
    tau : float
        Threshold on the rescaled cosine ``0.5 + 0.5·cos`` (cossim).
    index : {"auto", "dense", "cells"}
        ``auto``: cells for cosine embeddings on the CPU with at least ``AUTO_CELLS_MIN_N`` samples, else dense.
    block : int
        Columns per product in the dense index (memory ``chunk × block`` floats).
    leaf_size : int
        Largest cell of the cell index.
    max_radius : float
        Largest angular radius of a cell (degrees): narrow cells prune well.
    seed : int
        Seed of the k-means (the neighbour sets do not depend on it, only the speed).

    Attributes
    ----------
    index : str
        The index in use.
    rows : int
        Query rows answered so far.
    compared : int
        (query, sample) pairs whose similarity was computed so far (``rows · n`` for the dense index).
    """

    def __init__(
        self,
        embeddings: torch.Tensor,
        metric: str = "cossim",
        tau: float = 0.975,
        index: str = "auto",
        block: int = 65536,
        leaf_size: int = 256,
        max_radius: float = 30.0,
        seed: int = 0,
    ):
        if metric not in ("cossim", "euclidean"):
            raise ValueError(f"metric must be 'cossim' or 'euclidean', got {metric!r}")
        if index not in INDEXES:
            raise ValueError(f"index must be one of {INDEXES}, got {index!r}")
        if index == "cells" and metric != "cossim":
            raise ValueError("the cell index prunes by angle: it needs metric='cossim' (use index='dense')")
        if block < 1 or leaf_size < 1:
            raise ValueError(f"block and leaf_size must be >= 1, got {block}, {leaf_size}")
        emb = torch.as_tensor(embeddings)
        if index == "auto":
            index = (
                "cells" if metric == "cossim" and emb.device.type == "cpu" and len(emb) >= AUTO_CELLS_MIN_N else "dense"
            )
        self.metric, self.tau, self.block, self.index = metric, float(tau), int(block), index
        self.rows = self.compared = 0
        self.n = len(emb)
        if index == "dense":
            self.emb = F.normalize(emb.float(), dim=1) if metric == "cossim" else emb.float()
            self._on_cpu = self.emb.device.type == "cpu"
            self._emb_np = self.emb.numpy() if self._on_cpu else None
        else:
            self._build_cells(emb, int(leaf_size), math.radians(max_radius), np.random.default_rng(seed))

    # ------------------------------------------------------------------------------------------------ cells
    def _build_cells(self, emb: torch.Tensor, leaf_size: int, max_radius: float, rng: np.random.Generator) -> None:
        n = self.n
        x = np.empty((n, emb.shape[1]), dtype=np.float32)
        for start in range(0, n, 65536):  # normalised in chunks, so only one float32 copy of the embeddings is made
            x[start : start + 65536] = F.normalize(emb[start : start + 65536].float(), dim=1).cpu().numpy()
        cell = bisecting_cells(x, leaf_size, max_radius, rng) if n else np.zeros(0, dtype=np.int64)
        # the embeddings stay in their order (one copy); the cells are index ranges of `_members`
        self._emb_np = x
        self._members = np.argsort(cell, kind="stable")
        counts = np.bincount(cell, minlength=int(cell.max()) + 1 if n else 0)
        self._cell_of = cell
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        K, d = len(counts), x.shape[1]
        sums = np.zeros((K, d), dtype=np.float64)
        for start in range(0, n, 65536):  # per-cell sums over contiguous member ranges, a chunk at a time
            rows = self._members[start : start + 65536]
            cells = cell[rows]
            first = np.concatenate([[0], np.flatnonzero(np.diff(cells)) + 1])
            sums[cells[first]] += np.add.reduceat(x[rows], first, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self._centroids = (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        min_cos = np.full(K, np.inf)
        for start in range(0, n, 65536):
            rows = self._members[start : start + 65536]
            cells = cell[rows]
            member_cos = np.einsum("ij,ij->i", x[rows], self._centroids[cells])
            np.minimum.at(min_cos, cells, member_cos)
        self._radius = np.arccos(np.clip(min_cos, -1.0, 1.0))
        self._threshold_angle = float(np.arccos(np.clip(2.0 * self.tau - 1.0, -1.0, 1.0)))
        # the cell graph: b is adjacent to a when angle(m_a, m_b) − r_a − r_b can still be within the threshold
        adjacent: list[np.ndarray] = []
        for start in range(0, K, 1024):
            angle = np.arccos(np.clip(self._centroids[start : start + 1024] @ self._centroids.T, -1.0, 1.0))
            near = angle - self._radius[start : start + 1024, None] - self._radius[None, :]
            rows, cols = np.nonzero(near <= self._threshold_angle + _ANGLE_MARGIN)
            bounds = np.searchsorted(rows, np.arange(len(near) + 1))
            adjacent += [cols[bounds[i] : bounds[i + 1]] for i in range(len(near))]
        self._adjacent = adjacent
        self._on_cpu = True
        self.emb = None

    @property
    def num_cells(self) -> int:
        """Number of cells (0 for the dense index)."""
        return 0 if self.index == "dense" else len(self._starts) - 1

    # ------------------------------------------------------------------------------------------------ queries
    def vectors(self, idx: np.ndarray) -> torch.Tensor | np.ndarray:
        """The (normalised, for cosine) embeddings of ``idx`` as the index stores them: (k, d)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._on_cpu:
            return self._emb_np[idx]
        return self.emb[torch.as_tensor(idx, device=self.emb.device)]

    def weights_to(self, vectors, conf: np.ndarray, i: int) -> float:
        """``Σ_k w(v_k, x_i)·conf_k`` for a few stored vectors ``v`` (the greedy's not yet flushed picks)."""
        if not len(conf):
            return 0.0
        if not self._on_cpu:
            w = similarity_weights(vectors, self.vectors(np.array([i])), self.metric, self.tau, normalised=True)[:, 0]
            return float(w.double().cpu().numpy() @ conf)
        xi = self.vectors(np.array([i]))[0]
        if self.metric == "cossim":
            s = 0.5 + 0.5 * (vectors @ xi)
            w = s * (s > self.tau)
        else:
            w = np.clip(1.0 / (np.sqrt(((vectors - xi) ** 2).sum(1)) + 0.1) - 0.1, 0.0, 10.0)
        return float(w.astype(np.float64) @ conf)

    def rows_of(self, idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each index, the (original column indices, float64 weights) with a non-zero weight.

        Queries are answered in chunks, so any number of them fits in memory (apart from the answers)."""
        idx = np.asarray(idx, dtype=np.int64)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        chunk = 1024 if self.index == "cells" else max(1, 2**24 // self.block)
        for start in range(0, len(idx), chunk):
            part = idx[start : start + chunk]
            out.extend(self._cells_rows(part) if self.index == "cells" else self._dense_rows(part))
        self.rows += len(idx)
        return out

    def _dense_rows(self, idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        q = self.emb[torch.as_tensor(idx, device=self.emb.device)]
        self.compared += len(idx) * self.n
        cols: list[list[np.ndarray]] = [[] for _ in idx]
        vals: list[list[np.ndarray]] = [[] for _ in idx]
        for start in range(0, self.n, self.block):
            w = similarity_weights(q, self.emb[start : start + self.block], self.metric, self.tau, normalised=True)
            r, c = torch.nonzero(w, as_tuple=True)
            v = w[r, c]
            r, c, v = r.cpu().numpy(), c.cpu().numpy() + start, v.double().cpu().numpy()
            bounds = np.searchsorted(r, np.arange(len(idx) + 1))  # nonzero() is row-major: rows are contiguous
            for i in range(len(idx)):
                cols[i].append(c[bounds[i] : bounds[i + 1]])
                vals[i].append(v[bounds[i] : bounds[i + 1]])
        return [(np.concatenate(c), np.concatenate(v)) for c, v in zip(cols, vals)]

    def _cells_rows(self, idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        q_cell = self._cell_of[idx]
        cols: list[list[np.ndarray]] = [[] for _ in idx]
        vals: list[list[np.ndarray]] = [[] for _ in idx]
        by_cell = np.argsort(q_cell, kind="stable")
        bounds = np.flatnonzero(np.diff(q_cell[by_cell])) + 1
        for group in np.split(by_cell, bounds):  # the queries of one cell share its adjacent cells
            q = self._emb_np[idx[group]]
            near = self._adjacent[q_cell[group[0]]]
            # the per-query bound: angle(q, m_b) − r_b within the threshold
            angle = np.arccos(np.clip(q @ self._centroids[near].T, -1.0, 1.0))
            flags = angle - self._radius[near][None, :] <= self._threshold_angle + _ANGLE_MARGIN
            keep = flags.any(0)
            near, flags = near[keep], flags[:, keep]
            sizes = self._starts[near + 1] - self._starts[near]
            # the kept cells' rows, at most ~block of them per product
            for part in np.split(np.arange(len(near)), np.flatnonzero(np.diff(np.cumsum(sizes) // self.block)) + 1):
                if not len(part):
                    continue
                lo, size = self._starts[near[part]], sizes[part]
                rows = self._members[
                    np.repeat(lo - np.concatenate([[0], np.cumsum(size)[:-1]]), size) + np.arange(size.sum())
                ]
                s = 0.5 + 0.5 * (q @ self._emb_np[rows].T)
                self.compared += len(group) * len(rows)
                r, c = np.nonzero((s > self.tau) & np.repeat(flags[:, part], size, axis=1))
                cut = np.searchsorted(r, np.arange(len(group) + 1))
                for j, qi in enumerate(group):
                    hit = c[cut[j] : cut[j + 1]]
                    if len(hit):
                        cols[qi].append(rows[hit])
                        vals[qi].append(s[j, hit].astype(np.float64))
        return [
            (np.concatenate(c) if c else np.zeros(0, np.int64), np.concatenate(v) if v else np.zeros(0))
            for c, v in zip(cols, vals)
        ]

"""The exact thresholded-neighbourhood index behind Prune4ReL's greedy (``lnlkit.train.neighbours``)."""

import numpy as np
import pytest
import torch

from lnlkit.methods.prune4rel import greedy_neighborhood_confidence
from lnlkit.train.neighbours import Neighbourhoods, similarity_weights, spherical_kmeans

pytestmark = pytest.mark.usefixtures("one_thread")


def _clustered(n: int, d: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    return (centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, d))).astype(np.float32)


def _brute_force(emb: np.ndarray, idx: np.ndarray, tau: float) -> list[dict[int, float]]:
    w = similarity_weights(torch.tensor(emb[idx]), torch.tensor(emb), "cossim", tau).numpy()
    return [{int(j): float(w[r, j]) for j in np.flatnonzero(w[r])} for r in range(len(idx))]


@pytest.mark.parametrize("spread", [0.15, 0.5, 3.0])  # tight clusters, loose ones, no structure at all
def test_cells_find_exactly_the_dense_neighbourhoods(spread):
    emb = _clustered(3000, 16, 40, spread, seed=1)
    idx = np.random.default_rng(2).choice(3000, 300, replace=False)
    cells = Neighbourhoods(torch.tensor(emb), tau=0.975, index="cells", leaf_size=32)
    dense = Neighbourhoods(torch.tensor(emb), tau=0.975, index="dense", block=500)
    assert cells.index == "cells" and cells.num_cells >= 3000 // 32 // 2 and dense.num_cells == 0
    want = _brute_force(emb, idx, 0.975)
    for answers in (cells.rows_of(idx), dense.rows_of(idx)):
        for (cols, w), ref in zip(answers, want):
            assert sorted(cols.tolist()) == sorted(ref)  # the same neighbours, none pruned wrongly
            got = dict(zip(cols.tolist(), w.tolist()))
            np.testing.assert_allclose([got[j] for j in ref], [ref[j] for j in ref], rtol=1e-6)
    assert dense.compared == 300 * 3000 and cells.rows == dense.rows == 300
    if spread <= 0.5:  # with cluster structure the cells skip most of the comparisons
        assert cells.compared < 0.25 * dense.compared


def test_cells_handle_duplicates_tiny_sets_and_loose_thresholds():
    emb = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)  # 4 directions, 5 identical copies each
    hood = Neighbourhoods(torch.tensor(emb), tau=0.975, index="cells", leaf_size=3)
    for i, (cols, w) in enumerate(hood.rows_of(np.arange(20))):
        assert sorted(cols.tolist()) == list(range(i // 5 * 5, i // 5 * 5 + 5))
        np.testing.assert_allclose(w, 1.0, rtol=1e-6)
    # τ = 0.5 keeps every pair with cos > 0: nothing may be pruned by the angle test
    emb = _clustered(400, 3, 5, 1.0, seed=3)
    idx = np.arange(0, 400, 7)
    got = Neighbourhoods(torch.tensor(emb), tau=0.5, index="cells", leaf_size=10).rows_of(idx)
    assert [sorted(c.tolist()) for c, _ in got] == [sorted(r) for r in _brute_force(emb, idx, 0.5)]
    one = Neighbourhoods(torch.tensor(emb[:1]), tau=0.975, index="cells")
    assert one.rows_of(np.array([0]))[0][0].tolist() == [0]


def test_index_choice_and_validation():
    emb = torch.tensor(_clustered(100, 4, 3, 0.2, seed=0))
    assert Neighbourhoods(emb, index="auto").index == "dense"  # small: the dense products are cheap
    with pytest.raises(ValueError, match="cossim"):
        Neighbourhoods(emb, metric="euclidean", index="cells")
    with pytest.raises(ValueError, match="index"):
        Neighbourhoods(emb, index="kdtree")
    with pytest.raises(ValueError, match="leaf_size"):
        Neighbourhoods(emb, index="cells", leaf_size=0)


def test_spherical_kmeans_separates_clear_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.eye(3)[k] + 0.01 * rng.normal(size=(50, 3)) for k in range(3)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    best = max(
        (spherical_kmeans(x, 3, np.random.default_rng(s)) for s in range(5)), key=lambda c: (x @ c.T).max(1).sum()
    )
    np.testing.assert_allclose(np.sort(np.abs(best).max(1)), 1.0, atol=1e-3)  # each centroid on one axis
    np.testing.assert_allclose(np.linalg.norm(best, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("gain", ["self", "neighborhood"])
def test_greedy_with_cells_picks_what_the_dense_greedy_picks(gain):
    emb = _clustered(1500, 12, 60, 0.25, seed=4)
    rng = np.random.default_rng(5)
    conf, labels = rng.uniform(0.2, 1.0, 1500), rng.integers(0, 6, 1500)
    budget = 300 if gain == "self" else 60
    dense = greedy_neighborhood_confidence(emb, conf, labels, budget, tau=0.975, gain=gain, index="dense", batch=32)
    cells = greedy_neighborhood_confidence(
        emb, conf, labels, budget, tau=0.975, gain=gain, index="cells", leaf_size=24, batch=32
    )
    np.testing.assert_array_equal(cells.order, dense.order)
    np.testing.assert_allclose(cells.nc, dense.nc, atol=1e-5)
    assert cells.pairs_compared < 0.25 * dense.pairs_compared
    with pytest.raises(ValueError, match="cossim"):
        greedy_neighborhood_confidence(emb, conf, labels, 5, metric="euclidean", index="cells")

"""The AUROC of a method's clean score against the true clean mask (``sel_auroc``): the rank formula against the
pairwise definition, the recorder's signal names and suffixes, and the plots and tables that show it."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from lnlkit.train.recorder import RunRecorder, auroc


def _pairwise_auc(scores, positive):
    """The definition: P(score of a positive > score of a negative), ties counting one half, over every pair."""
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_auroc_is_the_pairwise_probability_with_ties_halved():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5, 0.5]), np.array([True, False, False])) == pytest.approx(0.5)
    assert auroc(np.array([3.0, 2.0, 1.0]), np.array([True, True, False])) == 1.0
    assert auroc(np.array([3.0, 2.0, 1.0]), np.array([False, True, True])) == 0.0
    rng = np.random.default_rng(0)
    for n in (7, 300):
        positive = rng.random(n) < 0.6
        scores = np.round(rng.random(n) + 0.3 * positive, 1)  # coarse: many ties, within and across the classes
        expected = _pairwise_auc(scores, positive)
        assert auroc(scores, positive) == pytest.approx(expected, abs=1e-12)
        assert auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)


def test_auroc_leaves_out_unscored_samples_and_rejects_bad_input():
    rng = np.random.default_rng(1)
    positive = rng.random(50) < 0.5
    scores = rng.random(50)
    scored = rng.random(50) < 0.7
    with_nan = np.where(scored, scores, np.nan)
    assert auroc(with_nan, positive) == pytest.approx(_pairwise_auc(scores[scored], positive[scored]), abs=1e-12)
    assert math.isnan(auroc(np.array([0.2, 0.9, np.nan]), np.array([True, True, False])))  # no scored negative
    assert math.isnan(auroc(np.array([0.2, 0.9]), np.array([False, False])))
    with pytest.raises(ValueError, match="1-D"):
        auroc(np.zeros(3), np.zeros(4, dtype=bool))


def _recorder(tmp_path, is_noisy):
    noise = SimpleNamespace(
        is_noisy=np.asarray(is_noisy),
        labels=np.zeros(len(is_noisy), dtype=np.int64),
        transition=None,
        realized_rate=None,
        num_classes=2,
        spec="test",
    )
    rec = RunRecorder(tmp_path / "run", noise)
    rec.start({"method": "test"})
    return rec


def test_recorder_scores_clean_prob_and_clean_score_signals_under_their_suffix(tmp_path):
    is_noisy = np.array([False, False, True, True, False, True])
    clean = ~is_noisy
    prob = np.array([0.9, 0.2, 0.3, 0.1, np.nan, 0.8])  # sample 4 not scored
    score = np.array([5.0, 4.0, 1.0, 2.0, 3.0, 0.0])  # a perfect ranking
    rec = _recorder(tmp_path, is_noisy)
    r = rec.log_epoch(
        {"epoch": 0}, {"clean_prob": prob, "clean_score_net2": score, "clean_prob_css": 1 - score, "loss": score}
    )
    keep = ~np.isnan(prob)
    assert r["sel_auroc"] == pytest.approx(_pairwise_auc(prob[keep], clean[keep]))
    assert r["sel_auroc_net2"] == 1.0 and r["sel_auroc_css"] == 0.0
    assert not any(k.startswith("sel_auroc") and k not in ("sel_auroc", "sel_auroc_net2", "sel_auroc_css") for k in r)
    # under one suffix an explicit clean_score wins over clean_prob
    r = rec.log_epoch({"epoch": 1}, {"clean_prob": prob, "clean_score": score})
    assert r["sel_auroc"] == 1.0
    # without a score there is no AUROC; with store=False the metrics come without keeping the arrays
    r = rec.log_epoch({"epoch": 2}, {"loss": score, "selected": clean}, store=False)
    assert "sel_auroc" not in r and r["sel_precision"] == 1.0
    r = rec.log_epoch({"epoch": 3}, {"clean_score": score[::-1].copy()}, store=False)
    assert r["sel_auroc"] == pytest.approx(_pairwise_auc(score[::-1], clean))
    rec.flush()
    with np.load(tmp_path / "run" / "signals.npz") as z:
        assert z["epoch"].tolist() == [0, 1]
    assert [h.get("sel_auroc") is not None for h in rec.history] == [True, True, False, True]


def test_recorder_without_a_known_mask_records_no_auroc(tmp_path):
    noise = SimpleNamespace(
        is_noisy=None,
        labels=np.zeros(3, dtype=np.int64),
        transition=None,
        realized_rate=None,
        num_classes=2,
        spec="none",
    )
    rec = RunRecorder(tmp_path / "run", noise)
    rec.start({"method": "test"})
    assert "sel_auroc" not in rec.log_epoch({"epoch": 0}, {"clean_prob": np.array([0.1, 0.5, 0.9])})


def test_selection_plots_draw_the_auroc():
    from matplotlib import pyplot as plt

    from lnlkit.plots import plot_selection_quality, plot_selection_summary

    history = [{"epoch": e, "sel_precision": 0.8, "sel_auroc": 0.7 + 0.02 * e} for e in range(5)]
    ax = plot_selection_quality(history).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["AUROC of the clean score"].get_ydata(), [0.7, 0.72, 0.74, 0.76, 0.78])
    lines = {
        line.get_label(): line
        for line in plot_selection_quality([dict(h, sel_auroc_net2=0.5) for h in history]).axes[0].get_lines()
    }
    assert lines["AUROC of the clean score [net2]"].get_linestyle() == "--"
    # only AUROC recorded (a method that scores without selecting) still draws
    assert "AUROC of the clean score" in {
        line.get_label() for line in plot_selection_quality([{"epoch": 0, "sel_auroc": 0.9}]).axes[0].get_lines()
    }
    table = pd.DataFrame(
        [
            {
                "method": m,
                "noise": "symmetric:0.4",
                "seed": s,
                "sel_precision": 0.9,
                "sel_recall": 0.8,
                "sel_auroc": (0.95 + 0.01 * s) if m == "dm" else None,
            }
            for m in ("dm", "me")
            for s in (0, 1)
        ]
    )
    fig = plot_selection_summary(table)
    bars = {
        ax.get_title(): {c.get_label(): c for c in ax.containers if not c.get_label().startswith("_")}
        for ax in fig.axes
    }
    assert set(bars["dm"]) == {"precision", "recall", "AUROC"} and set(bars["me"]) == {"precision", "recall"}
    assert bars["dm"]["AUROC"][0].get_height() == pytest.approx(0.955)
    plt.close("all")

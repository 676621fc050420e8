"""Label-error detection (lnlkit.detect): each method's score and decision read the right way round, the consensus
formula, the summary and evaluation written out, and the truth kept out of every method and of the ranking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lnlkit
from lnlkit import detect
from lnlkit.data.dataset import Dataset

# each default method's auto preset, shortened: enough for blobs this far apart
SHORT = {m: v for m, v in detect.SMOKE_OVERRIDES.items() if m in detect.DETECT_METHODS}


def blobs(n: int = 240, classes: int = 4, dim: int = 8, seed: int = 0) -> Dataset:
    """Well-separated Gaussian blobs (flat features, labels known clean): any method learns the clean mapping."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(0, 1, (classes, dim))
    centers *= 4 / np.linalg.norm(centers, axis=1, keepdims=True)
    x = (centers[y] + rng.normal(0, 0.6, (n, dim))).astype(np.float32)
    return Dataset(name="blobs", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8], num_classes=classes)


@pytest.fixture(scope="module")
def noisy_blobs():
    return blobs().with_noise("symmetric:0.25", seed=0)


@pytest.fixture(scope="module")
def all_methods(noisy_blobs, tmp_path_factory):
    out = tmp_path_factory.mktemp("detect-all")
    frame = detect.find_label_issues(
        noisy_blobs, methods=list(SHORT), overrides=SHORT, out=out, device="cpu", progress=False
    )
    return frame, out


# ------------------------------------------------------------------------------------------ formulas
def test_rank_percentile_is_the_average_rank_over_n():
    # ranks of [0.3, 0.1, 0.3, 0.9] (ties share 2.5): [2.5, 1, 2.5, 4] / 4
    np.testing.assert_allclose(detect.rank_percentile(np.array([0.3, 0.1, 0.3, 0.9])), [0.625, 0.25, 0.625, 1.0])
    # NaN sits at 0.5; the others rank among themselves
    np.testing.assert_allclose(detect.rank_percentile(np.array([np.nan, 2.0, 1.0])), [0.5, 1.0, 0.5])


def test_consensus_is_the_mean_rank_percentile_of_every_method():
    a = np.array([0.1, 0.9, 0.5, 0.7])  # percentiles 1/4, 1, 2/4, 3/4
    b = np.array([30.0, -2.0, 1.0, 2.0])  # another scale: percentiles 1, 1/4, 2/4, 3/4
    c = np.array([0.2, 0.3, 0.1, 0.4])  # percentiles 2/4, 3/4, 1/4, 1
    expected = (np.array([1, 4, 2, 3]) + np.array([4, 1, 2, 3]) + np.array([2, 3, 1, 4])) / 4 / 3
    np.testing.assert_allclose(detect.consensus_score({"a": a, "b": b, "c": c}), expected)
    # every method moves it: dropping any one changes the result
    for drop in "abc":
        rest = {k: v for k, v in {"a": a, "b": b, "c": c}.items() if k != drop}
        assert not np.allclose(detect.consensus_score(rest), expected)
    with pytest.raises(ValueError, match="no method"):
        detect.consensus_score({})


def test_clean_score_orientation_and_network_mean():
    sig = {"clean_prob": np.array([0.9, 0.1]), "clean_prob_net2": np.array([0.7, np.nan]), "loss": np.array([0, 5.0])}
    np.testing.assert_allclose(detect.clean_score_of(sig), [0.8, 0.1])
    # clean_score wins over clean_prob; a loss alone ranks small-loss first (negated)
    np.testing.assert_allclose(detect.clean_score_of({**sig, "clean_score": np.array([-1.0, 2.0])}), [-1.0, 2.0])
    np.testing.assert_allclose(detect.clean_score_of({"loss": np.array([0.2, 3.0])}), [-0.2, -3.0])


def test_own_flags_selection_majority_then_relabel_then_prediction():
    given = np.array([0, 1, 2, 3])
    two_nets = {"selected": np.array([1, 0, 1, 0], bool), "selected_net2": np.array([1, 1, 0, 0], bool)}
    # a tie between the networks counts as selected; flagged = selected by neither
    np.testing.assert_array_equal(detect.own_flags(two_nets, given), [False, False, False, True])
    # a held-out sample (Me-Momentum's noisy validation split) is judged by its prediction, never by the selection
    held = {
        "selected": np.array([1, 0, 0, 0], bool),
        "holdout": np.array([0, 0, 1, 1], bool),
        "pred": np.array([1, 0, 2, 0]),
    }
    np.testing.assert_array_equal(detect.own_flags(held, given), [False, True, False, True])
    np.testing.assert_array_equal(
        detect.own_flags({"relabel": np.array([0, 2, -1, 3])}, given), [False, True, False, False]
    )
    np.testing.assert_array_equal(detect.own_flags({"pred": np.array([1, 1, 2, 0])}, given), [True, False, False, True])


def test_summary_transition_counts_each_sample_once():
    frame = pd.DataFrame(
        {
            "given_label": [0, 0, 1, 1, 1, 2],
            "suggested_label": [0, 1, 1, 0, 2, 2],
            "is_issue": [False, True, False, True, False, False],
        }
    )
    s = detect.detection_summary(frame, 3, ["a", "b", "c"])
    # estimated true class: [0, 1, 1, 0, 1, 2] (suggested where is_issue); rows = true, columns = given
    expected = np.array([[1, 1, 0], [1, 2, 0], [0, 0, 1]])
    np.testing.assert_array_equal(s["transition_counts"], expected)
    np.testing.assert_allclose(s["transition"], expected / expected.sum(1, keepdims=True), atol=1e-6)
    assert s["n_issues"] == 2 and s["estimated_noise_rate"] == pytest.approx(2 / 6)
    assert [r["issues"] for r in s["per_class"]] == [1, 1, 0] and s["per_class"][1]["class"] == "b"


def test_evaluate_detection_precision_at_k_by_hand():
    frame = pd.DataFrame(
        {
            "sample_id": ["3", "0", "1", "2", "4"],  # any row order: matched by id
            "score_m": [0.1, 0.2, 0.9, 0.3, 0.8],
            "flag_m": [True, True, False, False, False],
            "consensus": [0.2, 0.4, 1.0, 0.6, 0.8],
            "is_issue": [True, False, False, False, False],
        }
    )
    truth = np.array([False, False, True, True, False])  # ids 2 and 3 are noisy: k = 2
    ev = detect.evaluate_detection(frame, truth)
    assert ev["n_noisy"] == 2
    # m's two lowest scores: ids 3 (noisy) and 0 (clean) -> 1 hit of 2
    assert ev["m"]["precision_at_k"] == 0.5 and ev["m"]["recall_at_k"] == 0.5
    assert ev["m"]["flag_precision"] == 0.5 and ev["m"]["flag_recall"] == 0.5
    # AUROC of the clean class: clean scores {0.2, 0.9, 0.8} vs noisy {0.3, 0.1}: 5 of 6 pairs ordered
    assert ev["m"]["auroc"] == pytest.approx(5 / 6)
    assert ev["consensus"]["flag_precision"] == 1.0 and ev["consensus"]["flag_recall"] == 0.5


def test_stratified_folds_spread_every_class():
    labels = np.repeat(np.arange(3), [10, 7, 3])
    fold = detect.stratified_folds(labels, 5, seed=0)
    assert set(fold) == set(range(5))
    for c in range(3):
        counts = np.bincount(fold[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="folds"):
        detect.stratified_folds(labels[:3], 5, seed=0)


# ------------------------------------------------------------------------------------------ end to end
def test_every_method_ranks_the_flipped_labels_first(all_methods, noisy_blobs):
    frame, _ = all_methods
    ev = detect.evaluate_detection(frame, noisy_blobs.is_noisy)
    for name in (*SHORT, "consensus"):
        # an inverted score (or a consensus that ignored the right way round) gives ~0 here
        assert ev[name]["auroc"] > 0.85, (name, ev[name])
    assert ev["consensus"]["precision_at_k"] > 0.85
    assert ev["consensus"]["flag_precision"] > 0.8 and ev["consensus"]["flag_recall"] > 0.8
    # suggested labels of the flagged samples are mostly the true ones
    issues = frame[frame["is_issue"]]
    true = noisy_blobs.dataset.y_train[issues["sample_id"].astype(int)]
    assert (issues["suggested_label"].to_numpy() == true).mean() > 0.8


def test_frame_columns_order_and_files(all_methods):
    frame, out = all_methods
    head = list(detect.DETECT_COLUMNS)
    assert list(frame.columns[: len(head)]) == head
    for m in SHORT:
        assert f"score_{m}" in frame and f"flag_{m}" in frame
    assert list(frame.columns[-4:]) == ["consensus", "n_flags", "is_issue", "rank"]
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    assert frame["consensus"].is_monotonic_increasing
    assert frame["is_issue"].tolist() == (frame["n_flags"] > len(SHORT) / 2).tolist()
    written = pd.read_csv(out / "label_issues.csv")
    assert written["sample_id"].astype(str).tolist() == frame["sample_id"].tolist()
    summary = json.loads((out / "label_summary.json").read_text())
    assert summary["n_issues"] == int(frame["is_issue"].sum()) and summary["methods"] == list(SHORT)
    assert (out / "label_transition.csv").exists()
    # each run trained on the given labels only: no noise spec, no mask, no selection metrics
    for runs in frame.attrs["runs"].values():
        for run in map(lnlkit.load_run, runs):
            assert run.config["noise"] == "none" and run.is_noisy is None
            assert "sel_precision" not in run.result and "sel_auroc" not in run.result


def test_the_truth_never_reaches_a_method_or_the_ranking(noisy_blobs, tmp_path):
    """Same given labels, two different 'truths' (the real mask and a random one, other specs): identical output."""
    from dataclasses import replace

    fake_noise = replace(
        noisy_blobs.noise,
        is_noisy=np.random.default_rng(1).random(len(noisy_blobs.labels)) < 0.5,
        spec="pairflip:0.45",
        realized_rate=0.45,
        nominal_rate=0.45,
    )
    fake = replace(noisy_blobs, noise=fake_noise)
    short = {"sop": {"epochs": 4}, "comining": {"epochs": 3, "warmup_epochs": 1}}
    frames = [
        detect.find_label_issues(
            d, methods=["sop", "comining"], overrides=short, out=tmp_path / k, device="cpu", progress=False
        )
        for k, d in (("real", noisy_blobs), ("fake", fake))
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    # Co-mining's forget rate came from the other method, not from the spec's nominal rate
    config = json.loads((tmp_path / "real" / "runs" / "comining" / "blobs_given_s0" / "config.json").read_text())
    assert config["hyperparameters"]["forget_rate"] == pytest.approx(frames[0]["flag_sop"].mean())


def test_resume_skips_complete_runs(all_methods, noisy_blobs):
    frame, out = all_methods
    again = detect.find_label_issues(
        noisy_blobs, methods=list(SHORT), overrides=SHORT, out=out, device="cpu", progress=False
    )
    pd.testing.assert_frame_equal(frame, again)
    assert max(again.attrs["seconds"].values()) < 30  # read back, not retrained (a loose bound: no timing claim)


def test_bad_input_fails_before_training(noisy_blobs, tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        detect.find_label_issues(noisy_blobs, methods=["sop", "nope"], out=tmp_path)
    with pytest.raises(ValueError, match="named twice"):
        detect.find_label_issues(noisy_blobs, methods=["sop", "sop"], out=tmp_path)
    with pytest.raises(ValueError, match="forget_rate"):
        detect.find_label_issues(noisy_blobs, methods=["comining"], out=tmp_path)
    with pytest.raises(ValueError, match="not run"):
        detect.find_label_issues(noisy_blobs, methods=["sop"], overrides={"smr": {}}, out=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_cleanlab_on_out_of_sample_probabilities(noisy_blobs, tmp_path):
    pytest.importorskip("cleanlab")
    frame = detect.find_label_issues(
        noisy_blobs,
        methods=["cleanlab"],
        overrides={"cleanlab": {"epochs": 8}},
        folds=3,
        out=tmp_path,
        device="cpu",
        progress=False,
    )
    ev = detect.evaluate_detection(frame, noisy_blobs.is_noisy)
    assert ev["cleanlab"]["auroc"] > 0.85
    # three CE folds, each trained without its held-out third
    runs = sorted((tmp_path / "runs" / "cleanlab").iterdir())
    assert len(runs) == 3
    sizes = [lnlkit.load_run(r).config["n_train"] for r in runs]
    assert sum(sizes) == 2 * len(noisy_blobs.labels)

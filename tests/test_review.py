"""Reviewing suspects (lnlkit.review): decisions applied to the labels, the exported CSV, the figures and the
static browser; Dataset.with_test and write_image_folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lnlkit
from lnlkit import review
from lnlkit.data.dataset import Dataset
from lnlkit.data.user import write_image_folder


def _data() -> Dataset:
    x = np.arange(6 * 1 * 4 * 4, dtype=np.uint8).reshape(6, 1, 4, 4)
    return Dataset.from_arrays(x, ["a", "b", "c", "a", "b", "c"], sample_ids=[f"s{i}" for i in range(6)])


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": ["s3", "s1", "s0", "s2", "s4", "s5"],
            "given_label": [0, 1, 0, 2, 1, 2],
            "given_class": ["a", "b", "a", "c", "b", "c"],
            "suggested_label": [2, 0, 0, 2, 1, 2],
            "suggested_class": ["c", "a", "a", "c", "b", "c"],
            "score_m": [0.1, 0.2, 0.8, 0.9, 0.95, 0.99],
            "consensus": [0.1, 0.2, 0.6, 0.7, 0.8, 0.9],
            "is_issue": [True, True, False, False, False, False],
            "rank": [1, 2, 3, 4, 5, 6],
        }
    )


def test_apply_review_follows_each_decision_and_the_default():
    data, frame = _data(), _frame()
    # s3: undecided issue -> default relabel to its suggestion (c); s1: dropped; s0: relabelled by name to b
    corrected, counts = review.apply_review(data, frame, {"s1": "drop", "s0": "b"})
    assert list(corrected.sample_ids) == ["s0", "s2", "s3", "s4", "s5"]
    assert corrected.y_train.tolist() == [1, 2, 2, 1, 2]
    assert counts == {"kept": 3, "relabelled": 2, "dropped": 1}
    assert not corrected.clean_train_known and len(corrected.x_train) == 5
    np.testing.assert_array_equal(corrected.x_train[2], data.x_train[3])  # s3's pixels went with it
    kept, counts = review.apply_review(data, frame, default="keep")
    assert kept.y_train.tolist() == data.y_train.tolist() and counts["relabelled"] == 0
    dropped, _ = review.apply_review(data, frame, default="drop")
    assert list(dropped.sample_ids) == ["s0", "s2", "s4", "s5"]


def test_apply_review_rejects_bad_decisions():
    data, frame = _data(), _frame()
    with pytest.raises(ValueError, match="unknown decision"):
        review.apply_review(data, frame, {"s3": "maybe"})
    with pytest.raises(ValueError, match="not in the detection"):
        review.apply_review(data, frame, {"nope": "drop"})
    with pytest.raises(ValueError, match="default"):
        review.apply_review(data, frame, default="delete")


@pytest.mark.filterwarnings("ignore:.*single training sample")
def test_export_labels_writes_names_readable_by_load_folder(tmp_path):
    digits = lnlkit.load_dataset("digits")
    names = [f"d{c}" for c in range(10)]
    paths = write_image_folder(digits.x_train[:30], digits.y_train[:30], names, tmp_path / "imgs", pixel_scale=16)
    folder = lnlkit.load_folder(tmp_path / "imgs")
    assert sorted(folder.sample_ids) == sorted(paths)
    np.testing.assert_array_equal(
        folder.x_train[list(folder.sample_ids).index(paths[0])][0],
        (digits.x_train[0, 0] * (255 / 16)).round().astype(np.uint8),
    )
    relabelled = folder.y_train.copy()
    relabelled[0] = (relabelled[0] + 1) % 10
    from dataclasses import replace

    written = review.export_labels(replace(folder, y_train=relabelled), tmp_path / "imgs" / "fixed.csv")
    again = lnlkit.load_folder(tmp_path / "imgs", csv=written)
    assert again.y_train.tolist() == [again.class_names.index(folder.class_names[v]) for v in relabelled]


@pytest.mark.filterwarnings("ignore:.*single training sample")
def test_with_test_takes_a_second_folder_and_checks_classes():
    x = np.zeros((6, 1, 4, 4), np.uint8)
    train = Dataset.from_arrays(x, ["a", "b", "c"] * 2)
    test = Dataset.from_arrays(x[:3], ["a", "b", "c"])
    both = train.with_test(test)
    assert both.has_test and both.y_test.tolist() == [0, 1, 2] and both.extras["test_split"] == "given"
    with pytest.raises(ValueError, match="classes"):
        train.with_test(Dataset.from_arrays(x[:2], ["a", "b"]))


def test_figures_and_the_static_browser():
    data, frame = _data(), _frame()
    fig = review.plot_detection_scores(frame)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()][:1] == ["m"]
    grid = review.plot_suspects(frame, data, n=4, decisions={"s3": "drop"})
    assert [ax.get_title() for ax in grid.axes][:2] == ["#1 a → c", "#2 b → a"]
    browser = review.review_suspects(frame, data, page_size=1, static=True)
    assert browser.pages == 2 and browser.decisions == {}  # the two issues, one per page
    browser.go(5)
    assert browser.page == 1
    bundle = browser._repr_mimebundle_()
    assert "image/png" in bundle and "SuspectReviewer" in bundle["text/plain"]
    with pytest.raises(ValueError, match="flat features"):
        review.suspect_images(Dataset.from_arrays(np.zeros((6, 2)), [0, 1, 2] * 2), ["0"])

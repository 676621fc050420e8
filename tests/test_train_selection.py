"""``lnlkit.train.selection``: the GMM split, small-loss rules and selection quality."""

import math

import numpy as np
import pytest

from lnlkit.train.selection import (
    classwise_small_loss_mask,
    gmm_split,
    min_max_normalise,
    selection_quality,
    small_loss_mask,
)


def test_gmm_split_finds_the_low_loss_component():
    rng = np.random.default_rng(0)
    clean = rng.normal(0.1, 0.03, 700)
    noisy = rng.normal(0.7, 0.08, 300)
    split = gmm_split(min_max_normalise(np.concatenate([clean, noisy])))
    assert split.means[0] < split.means[1] and split.weights[0] == pytest.approx(0.7, abs=0.03)
    assert split.clean_prob[:700].mean() > 0.97 and split.clean_prob[700:].mean() < 0.03
    x = min_max_normalise(np.concatenate([clean, noisy]))
    assert x[:700].max() < split.threshold < x[700:].min() + 0.2
    assert split.pdf(np.linspace(0, 1, 11)).shape == (2, 11)
    const = gmm_split(np.ones(10))  # degenerate input: no crash, no NaN posterior
    assert np.all(const.clean_prob == 1.0)


def test_small_loss_rules_and_selection_quality():
    loss = np.array([0.5, 0.1, 0.9, 0.2, 0.3, 0.8])
    assert small_loss_mask(loss, 0.5).tolist() == [False, True, False, True, True, False]
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert classwise_small_loss_mask(loss, labels, 1 / 3).tolist() == [False, True, False, True, False, False]
    with pytest.raises(ValueError, match="keep_fraction"):
        small_loss_mask(loss, 1.5)
    selected = np.array([True, True, False, True, False, False])
    noisy = np.array([False, True, True, False, False, True])
    q = selection_quality(selected, noisy)
    assert q["sel_precision"] == pytest.approx(2 / 3) and q["sel_recall"] == pytest.approx(2 / 3)
    assert q["sel_f1"] == pytest.approx(2 / 3) and q["sel_fraction"] == 0.5
    empty = selection_quality(np.zeros(6, bool), noisy)
    assert math.isnan(empty["sel_precision"]) and empty["sel_recall"] == 0.0
    assert set(selection_quality(selected, None)) == {"sel_fraction"}

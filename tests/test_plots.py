"""Figures of lnlkit.plots: synthetic RunResult objects (no training) plus one real 2-epoch CE run on digits."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import lnlkit
from lnlkit.plots import (plot_accuracy_curves, plot_examples, plot_loss_distributions, plot_loss_over_epochs,
                          plot_run_examples, plot_selection_quality, plot_transition_matrix)
from lnlkit.train.recorder import RunResult

N, C = 80, 4
RED, BLACK, GREEN = to_rgba("red"), to_rgba("black"), to_rgba("green")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _transition(c=C, rate=0.4):
    t = np.full((c, c), rate / (c - 1))
    np.fill_diagonal(t, 1 - rate)
    return t


def _run(epochs=10, selection=True, nets=False, signals=True, transition=True, every=2):
    """A run of ``epochs`` epochs whose signals are recorded every ``every`` epochs."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, C, N)
    is_noisy = np.zeros(N, dtype=bool)
    is_noisy[rng.choice(N, 30, replace=False)] = True
    labels = np.where(is_noisy, (true + 1) % C, true)
    history = []
    for e in range(epochs):
        r = {"epoch": e, "phase": "train", "lr": 0.1, "loss": 2.0 / (e + 1), "test_acc": 50.0 + 3 * e,
             "train_acc_given": 40.0 + 5 * e}
        if nets:
            r.update(test_acc_net1=49.0 + 3 * e, test_acc_net2=48.0 + 2 * e)
        if selection:
            r.update(sel_precision=0.6 + 0.03 * e, sel_recall=0.5 + 0.04 * e, sel_f1=0.55 + 0.035 * e,
                     sel_fraction=0.4 + 0.01 * e)
        history.append(r)
    sig = {}
    if signals:
        rec = np.arange(0, epochs, every)
        loss = rng.random((len(rec), N)) + 2.0 * is_noisy * (np.arange(len(rec))[:, None] + 1) / len(rec)
        sig = {"epoch": rec, "loss": loss.astype(np.float16)}
        if selection:
            sig["selected"] = np.stack([~is_noisy ^ (rng.random(N) < 0.1) for _ in rec])
            relabel = np.full((len(rec), N), -1, dtype=np.int64)
            relabel[-1, :5] = (labels[:5] + 2) % C
            sig["relabel"] = relabel
    return RunResult(Path("synthetic"), {"method": "m", "dataset": "d", "noise": "symmetric:0.4", "seed": 0},
                     history, {"status": "complete"}, labels, is_noisy, _transition() if transition else None,
                     true, _signals=sig)


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def _samples(fig):
    """Image axes of an example grid as {sample index: axes}."""
    return {int(ax.get_label().split()[1]): ax for ax in fig.axes if ax.get_label().startswith("sample ")}


# ------------------------------------------------------------------------------------------------ accuracy
def test_accuracy_curves_draw_per_network_curves_dashed():
    run = _run(nets=True)
    fig = plot_accuracy_curves(run)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = _lines(fig.axes[0])
    for k in (1, 2):
        line = lines[f"test accuracy, network {k}"]
        assert line.get_linestyle() == "--"
        np.testing.assert_allclose(line.get_ydata(), run.curve(f"test_acc_net{k}"))
    assert lines["test accuracy"].get_linestyle() == "-"
    np.testing.assert_allclose(lines["test accuracy"].get_ydata(), run.curve("test_acc"))


def test_accuracy_curves_unchanged_without_network_curves():
    fig = plot_accuracy_curves(_run(nets=False))
    assert set(_lines(fig.axes[0])) == {"test accuracy", "train accuracy on given labels"}


# ------------------------------------------------------------------------------------------------ losses
def test_loss_over_epochs_picks_evenly_spaced_epochs_with_first_and_last():
    run = _run(epochs=20, every=2)  # recorded epochs 0, 2, ..., 18
    fig = plot_loss_over_epochs(run, n_panels=6)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    shown = [int(ax.get_title().split()[1]) for ax in fig.axes]
    assert shown == [0, 4, 8, 10, 14, 18]
    assert "(test 50.0%)" in fig.axes[0].get_title()
    for ax in fig.axes:  # each panel is a plot_loss_distribution: the two GMM components
        assert {"GMM clean component", "GMM noisy component"} <= set(_lines(ax))


def test_loss_over_epochs_with_fewer_recorded_epochs_than_panels_and_missing_losses():
    fig = plot_loss_over_epochs(_run(epochs=3, every=1), n_panels=6)
    assert [ax.get_title().split()[1] for ax in fig.axes] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="no per-sample losses"):
        plot_loss_over_epochs(_run(signals=False))


# ------------------------------------------------------------------------------------------------ selection
def test_selection_quality_lines():
    run = _run(epochs=8)
    fig = plot_selection_quality(run)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    lines = _lines(ax)
    expected = {"precision (clean among selected)": "sel_precision", "recall (selected among clean)": "sel_recall",
                "F1": "sel_f1", "selected fraction": "sel_fraction"}
    assert set(lines) == set(expected)
    for label, key in expected.items():
        np.testing.assert_allclose(lines[label].get_xdata(), np.arange(8))
        np.testing.assert_allclose(lines[label].get_ydata(), run.curve(key))
    assert ax.get_ylim()[0] == 0 and 1 <= ax.get_ylim()[1] <= 1.05
    # a plain history list works too, and suffixed selections are drawn dashed
    history = [dict(r, sel_precision_net2=0.9) for r in run.history]
    lines = _lines(plot_selection_quality(history).axes[0])
    assert lines["precision (clean among selected) [net2]"].get_linestyle() == "--"


def test_selection_quality_without_selection_raises():
    with pytest.raises(ValueError, match="no sample selection"):
        plot_selection_quality(_run(selection=False))
    with pytest.raises(ValueError, match="no sample selection"):
        plot_selection_quality([{"epoch": 0, "test_acc": 50.0, "sel_precision": None}])


# ------------------------------------------------------------------------------------------------ transition
def test_transition_matrix_heatmap():
    t = _transition(5, 0.3)
    t[0] = [0.5, 0.5, 0, 0, 0]
    fig = plot_transition_matrix(t, class_names=list("abcde"), title="T")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]  # fig.axes[1] is the colour bar
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(5, 5), t)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == list("abcde")
    assert ax.get_xlabel() == "given label" and ax.get_ylabel() == "true class"
    assert len(ax.texts) == 25 and ax.texts[1].get_text() == "0.50"
    assert ax.get_title() == f"T: mean diagonal {np.trace(t) / 5:.3f}"


def test_transition_matrix_large_is_not_annotated_and_run_input():
    fig = plot_transition_matrix(_transition(15))
    assert len(fig.axes[0].texts) == 0
    run = _run()
    ax = plot_transition_matrix(run).axes[0]
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(C, C), run.transition)
    assert ax.get_title() == "symmetric:0.4: mean diagonal 0.600"
    with pytest.raises(ValueError, match="no transition matrix"):
        plot_transition_matrix(_run(transition=False))
    with pytest.raises(ValueError, match="square"):
        plot_transition_matrix(np.ones((2, 3)))


# ------------------------------------------------------------------------------------------------ examples
def test_examples_grid_mixes_noisy_and_clean_with_red_titles_for_noisy():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (N, 1, 8, 8), dtype=np.uint8)
    given = rng.integers(0, C, N)
    true = given.copy()
    true[:20] = (given[:20] + 1) % C  # 20 noisy samples
    fig = plot_examples(images, given, true=true, n=24, seed=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 24
    shown = _samples(fig)
    assert len(shown) == 24
    noisy_shown = [i for i in shown if given[i] != true[i]]
    assert len(noisy_shown) == 12
    for i, ax in shown.items():
        assert len(ax.get_images()) == 1
        assert ax.get_title() == f"given {given[i]} / true {true[i]}"
        assert to_rgba(ax.title.get_color()) == (RED if given[i] != true[i] else BLACK)
    # deterministic for a seed, different for another
    assert sorted(_samples(plot_examples(images, given, true=true, n=24, seed=3))) == sorted(shown)
    assert sorted(_samples(plot_examples(images, given, true=true, n=24, seed=4))) != sorted(shown)


def test_examples_markers_and_rgb_scaling():
    rng = np.random.default_rng(2)
    images = rng.random((10, 3, 6, 6)) * 2.0  # floats above 1: scaled by their maximum
    given = np.arange(10) % 3
    selected = np.arange(10) % 2 == 0
    relabelled = np.full(10, -1)
    relabelled[3] = 2  # given[3] == 0
    relabelled[4] = given[4]  # unchanged label: not a relabelling
    fig = plot_examples(images, given, selected=selected, relabelled=relabelled, class_names=["x", "y", "z"],
                        indices=[2, 3, 4, 5])
    shown = _samples(fig)
    assert sorted(shown) == [2, 3, 4, 5]
    assert shown[3].get_title() == "given x → z"
    assert "→" not in shown[4].get_title() and "→" not in shown[2].get_title()
    for i, ax in shown.items():
        spine = ax.spines["left"]
        assert spine.get_visible() == bool(selected[i])
        if selected[i]:
            assert to_rgba(spine.get_edgecolor()) == GREEN
        arr = np.asarray(ax.get_images()[0].get_array())
        assert arr.shape == (6, 6, 3) and arr.min() >= 0 and arr.max() <= 1
    np.testing.assert_allclose(np.asarray(shown[2].get_images()[0].get_array()),
                               images[2].transpose(1, 2, 0) / images[[2, 3, 4, 5]].max())
    with pytest.raises(ValueError, match="C = 1 or 3"):
        plot_examples(np.zeros((4, 2, 5, 5)), np.zeros(4, dtype=int))


def test_run_examples_uses_signals_of_the_chosen_epoch():
    run = _run(epochs=10, every=2)  # recorded 0, 2, ..., 8; relabelling only at the last one
    images = np.random.default_rng(0).integers(0, 17, (N, 1, 8, 8), dtype=np.uint8)

    class Data:  # the attributes plot_run_examples reads from a Dataset
        x_train = images
        class_names = [str(i) for i in range(C)]
        pixel_scale = 16.0

    fig = plot_run_examples(run, Data(), epoch=-1, indices=[0, 1, 2, 40])
    shown = _samples(fig)
    sel = run.signals["selected"][-1]
    for i, ax in shown.items():
        assert ax.spines["left"].get_visible() == bool(sel[i])
        assert to_rgba(ax.title.get_color()) == (RED if run.is_noisy[i] else BLACK)
    assert "→" in shown[0].get_title() and "→" not in shown[40].get_title()
    assert "epoch 8" in fig._suptitle.get_text()
    fig = plot_run_examples(run, Data(), epoch=2, indices=[0, 1])
    assert all("→" not in ax.get_title() for ax in fig.axes)
    np.testing.assert_allclose(np.asarray(fig.axes[0].get_images()[0].get_array()), images[0, 0] / 16.0)
    with pytest.raises(ValueError, match="epoch 3"):
        plot_run_examples(run, Data(), epoch=3)


# ------------------------------------------------------------------------------------------------ real run
def test_figures_of_a_real_ce_run(digits, tmp_path):
    data = digits.with_noise("symmetric:0.4", seed=0)
    run = lnlkit.get_method("ce", preset="digits", epochs=2).fit(data, out=tmp_path / "r", progress=False)
    fig = plot_accuracy_curves(run)
    assert {"test accuracy", "train accuracy on given labels"} <= set(_lines(fig.axes[0]))
    assert len(plot_loss_distributions(run).axes) >= 1
    fig = plot_loss_over_epochs(run, n_panels=6)
    assert [ax.get_title().split()[1] for ax in fig.axes] == ["0", "1"]
    with pytest.raises(ValueError, match="no sample selection"):
        plot_selection_quality(run)
    ax = plot_transition_matrix(run).axes[0]
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(10, 10), run.transition)
    fig = plot_run_examples(run, data, n=24)
    shown = _samples(fig)
    assert len(shown) == 24 == len(fig.axes)
    noisy = run.labels != run.true_labels
    assert sum(noisy[i] for i in shown) == 12
    for i, ax in shown.items():
        assert to_rgba(ax.title.get_color()) == (RED if noisy[i] else BLACK)
        assert not ax.spines["left"].get_visible()  # CE selects nothing

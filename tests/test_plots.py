"""Figures of lnlkit.plots: synthetic RunResult objects (no training) plus one real 2-epoch CE run on digits."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import lnlkit
from lnlkit.plots import (
    METHOD_COLORS,
    plot_accuracy_curves,
    plot_accuracy_vs_noise,
    plot_epoch_snapshot,
    plot_examples,
    plot_loss_distributions,
    plot_loss_over_epochs,
    plot_memorisation,
    plot_noise_overview,
    plot_run_examples,
    plot_selection_quality,
    plot_selection_summary,
    plot_transition_matrix,
)
from lnlkit.runs import RunResult

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
        r = {
            "epoch": e,
            "phase": "train",
            "lr": 0.1,
            "loss": 2.0 / (e + 1),
            "test_acc": 50.0 + 3 * e,
            "train_acc_given": 40.0 + 5 * e,
        }
        if nets:
            r.update(test_acc_net1=49.0 + 3 * e, test_acc_net2=48.0 + 2 * e)
        if selection:
            r.update(
                sel_precision=0.6 + 0.03 * e,
                sel_recall=0.5 + 0.04 * e,
                sel_f1=0.55 + 0.035 * e,
                sel_fraction=0.4 + 0.01 * e,
            )
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
    return RunResult(
        Path("synthetic"),
        {"method": "m", "dataset": "d", "noise": "symmetric:0.4", "seed": 0},
        history,
        {"status": "complete"},
        labels,
        is_noisy,
        _transition() if transition else None,
        true,
        _signals=sig,
    )


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
    expected = {
        "precision (clean among selected)": "sel_precision",
        "recall (selected among clean)": "sel_recall",
        "F1": "sel_f1",
        "selected fraction": "sel_fraction",
    }
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
    fig = plot_examples(
        images, given, selected=selected, relabelled=relabelled, class_names=["x", "y", "z"], indices=[2, 3, 4, 5]
    )
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
    np.testing.assert_allclose(
        np.asarray(shown[2].get_images()[0].get_array()), images[2].transpose(1, 2, 0) / images[[2, 3, 4, 5]].max()
    )
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


# ------------------------------------------------------------------------------------------------ memorisation
def _with_pred(run):
    """Add ``signals['pred']``: at recorded row k the first 10*k noisy samples (in index order) are predicted as
    their given label, the other noisy ones as their true label, and the first 5*k clean ones wrongly."""
    noisy, clean = np.flatnonzero(run.is_noisy), np.flatnonzero(~run.is_noisy)
    rows = []
    for k in range(len(run.signals["epoch"])):
        pred = run.labels.copy()
        pred[noisy] = run.true_labels[noisy]
        pred[noisy[: 10 * k]] = run.labels[noisy[: 10 * k]]
        pred[clean[: 5 * k]] = (run.labels[clean[: 5 * k]] + 1) % C
        rows.append(pred)
    run.signals["pred"] = np.stack(rows).astype(np.int16)
    return run


def test_memorisation_fractions():
    run = _with_pred(_run(epochs=6, selection=False, every=2))  # recorded 0, 2, 4; 30 noisy, 50 clean samples
    fig = plot_memorisation(run)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = _lines(fig.axes[0])
    k = np.arange(3)
    expected = {
        "noisy: predicted given (wrong) label": 10 * k / 30,
        "noisy: predicted true label": 1 - 10 * k / 30,
        "clean: predicted correctly": 1 - 5 * k / 50,
    }
    assert set(lines) == set(expected)
    for label, values in expected.items():
        np.testing.assert_allclose(lines[label].get_xdata(), [0, 2, 4])
        np.testing.assert_allclose(lines[label].get_ydata(), values)


def test_memorisation_needs_predictions_and_true_labels():
    with pytest.raises(ValueError, match="no network predictions"):
        plot_memorisation(_run())
    run = _with_pred(_run())
    run.true_labels = None
    with pytest.raises(ValueError, match="no true training labels"):
        plot_memorisation(run)


# ------------------------------------------------------------------------------------------------ epoch snapshot
def _marker(ax):
    (line,) = [line for line in ax.get_lines() if line.get_label() == "shown epoch"]
    return line


def test_epoch_snapshot_with_selection():
    run = _run(epochs=10, every=2)
    fig = plot_epoch_snapshot(run, 4)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_title() == "epoch 4 (test 62.0%)"
    assert {"GMM clean component", "GMM noisy component"} <= set(_lines(left))
    assert "precision (clean among selected)" in _lines(right)
    np.testing.assert_allclose(_marker(right).get_xdata(), [4, 4])
    assert "epoch 4" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match=r"recorded epochs: \[0, 2, 4, 6, 8\]"):
        plot_epoch_snapshot(run, 3)
    with pytest.raises(ValueError, match="no per-sample losses"):
        plot_epoch_snapshot(_run(signals=False), 0)


def test_epoch_snapshot_falls_back_to_memorisation_then_accuracy():
    run = _with_pred(_run(epochs=6, selection=False, every=2))
    right = plot_epoch_snapshot(run, 2).axes[1]
    assert "noisy: predicted given (wrong) label" in _lines(right)
    np.testing.assert_allclose(_marker(right).get_xdata(), [2, 2])
    right = plot_epoch_snapshot(_run(epochs=6, selection=False, every=2), 0).axes[1]
    assert set(_lines(right)) == {"test accuracy", "shown epoch"}
    np.testing.assert_allclose(_lines(right)["test accuracy"].get_ydata(), 50.0 + 3 * np.arange(6))


# ------------------------------------------------------------------------------------------------ noise overview
def test_noise_overview_shows_the_first_flipped_samples(digits):
    data = digits.with_noise("pairflip:0.3", seed=1)
    fig = plot_noise_overview(data, n_examples=6)
    heat = fig.axes[0]
    np.testing.assert_allclose(np.asarray(heat.collections[0].get_array()).reshape(10, 10), data.noise.transition)
    shown = _samples(fig)
    flipped = np.flatnonzero(data.labels != digits.y_train)
    assert sorted(shown) == flipped[:6].tolist()
    for i, ax in shown.items():
        assert ax.get_title() == f"given {data.labels[i]} / true {digits.y_train[i]}"
        assert to_rgba(ax.title.get_color()) == RED
    assert f"realised rate {data.noise.realized_rate:.3f} (nominal 0.300)" in fig._suptitle.get_text()
    clean = plot_noise_overview(digits.with_noise("symmetric:0", seed=0))
    assert _samples(clean) == {} and "0 of 1347 labels wrong" in clean._suptitle.get_text()


# ------------------------------------------------------------------------------------------------ many runs
def _table():
    """Two seeds of ce and dm on none / symmetric:0.2 / symmetric:0.5 / pairflip:0.45, plus rows to leave out."""
    rows = []
    for method, base in (("ce", 90.0), ("dm", 95.0)):
        for noise, rate in (("none", 0.0), ("symmetric:0.2", 0.2), ("symmetric:0.5", 0.5), ("pairflip:0.45", 0.45)):
            for seed in (0, 1):
                selects = method == "dm"
                rows.append(
                    {
                        "method": method,
                        "dataset": "digits",
                        "noise": noise,
                        "seed": seed,
                        "reported": base - 40 * rate + 2 * seed,
                        "test_acc_last": base - 1,
                        "sel_precision": 0.9 - rate / 2 + 0.02 * seed if selects else None,
                        "sel_recall": 0.8 + 0.02 * seed if selects else None,
                    }
                )
    rows.append({"method": "ce", "dataset": "digits", "noise": "cifar10n:worst", "seed": 0, "reported": 10.0})
    rows.append({"method": "ce", "dataset": "digits", "noise": "symmetric:0.8", "seed": 0, "reported": None})
    return pd.DataFrame(rows)


def _errorbars(ax):
    """{label: (x, y, yerr)} of the error-bar lines of an axes."""
    out = {}
    for container in ax.containers:
        line = container.lines[0]
        bars = container.lines[2]
        segments = bars[0].get_segments() if bars else []
        out[container.get_label()] = (
            line.get_xdata(),
            line.get_ydata(),
            np.array([(s[1][1] - s[0][1]) / 2 for s in segments]),
        )
    return out


def test_accuracy_vs_noise_panels_lines_and_error_bars():
    fig = plot_accuracy_vs_noise(_table(), reference=None)
    assert [ax.get_title() for ax in fig.axes] == ["Symmetric noise", "Pair-flip noise"]
    sym = _errorbars(fig.axes[0])
    assert set(sym) == {"CE", "dm"}
    x, y, err = sym["CE"]  # the NaN run at 0.8 is left out; "none" sits at rate 0
    np.testing.assert_allclose(x, [0.0, 0.2, 0.5])
    np.testing.assert_allclose(y, [91.0, 83.0, 71.0])
    np.testing.assert_allclose(err, np.std([0.0, 2.0], ddof=1))
    x, y, _ = _errorbars(fig.axes[1])["dm"]
    np.testing.assert_allclose(x, [0.0, 0.45])
    np.testing.assert_allclose(y, [96.0, 96.0 - 18.0])
    fig = plot_accuracy_vs_noise(_table(), metric="test_acc_last")
    np.testing.assert_allclose(_errorbars(fig.axes[0])["dm"][1], [94.0, 94.0, 94.0])


def test_accuracy_vs_noise_ce_reference_curves_and_shared_scale():
    table = _table().assign(test_acc_best=lambda t: t["reported"] + 5.0)
    fig = plot_accuracy_vs_noise(table)
    sym = _errorbars(fig.axes[0])
    assert set(sym) == {"CE (best epoch)", "CE (last epoch)", "dm"}  # CE is drawn as its two references only
    np.testing.assert_allclose(sym["CE (best epoch)"][1], [96.0, 88.0, 76.0])
    np.testing.assert_allclose(sym["CE (last epoch)"][1], [89.0, 89.0, 89.0])
    for label, ls in (("CE (best epoch)", "--"), ("CE (last epoch)", ":")):
        container = next(c for c in fig.axes[0].containers if c.get_label() == label)
        assert container.lines[0].get_linestyle() == ls
        assert to_rgba(container.lines[0].get_color()) != to_rgba(METHOD_COLORS["dividemix"])
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim() and fig.axes[0].get_ylim()[1] > 100
    dashed = _errorbars(plot_accuracy_vs_noise(table, best="test_acc_best").axes[0])
    np.testing.assert_allclose(dashed["dm, best epoch"][1], np.array([96.0, 88.0, 76.0]) + 5.0)


def test_accuracy_vs_noise_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plot_accuracy_vs_noise(pd.DataFrame(columns=["method", "noise", "reported"]))
    with pytest.raises(ValueError, match="lacks column"):
        plot_accuracy_vs_noise(_table(), metric="nope")
    with pytest.raises(ValueError, match="2 axes"):
        _, ax = plt.subplots()
        plot_accuracy_vs_noise(_table(), ax=ax)


def test_selection_summary_bars_per_method_and_setting():
    fig = plot_selection_summary(_table())
    assert len(fig.axes) == 1  # ce selects nothing
    ax = fig.axes[0]
    assert ax.get_title() == "dm"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "pairflip:0.45", "symmetric:0.2", "symmetric:0.5"]
    precision, recall = (c for c in ax.containers if c.get_label() in ("precision", "recall"))
    assert len(precision) == len(recall) == 4
    np.testing.assert_allclose([b.get_height() for b in precision], [0.91, 0.91 - 0.225, 0.91 - 0.1, 0.91 - 0.25])
    np.testing.assert_allclose([b.get_height() for b in recall], [0.81] * 4)


def test_selection_summary_without_selection_is_a_note_not_an_error():
    for table in (_table()[lambda t: t.method == "ce"], pd.DataFrame(columns=["method", "noise", "sel_precision"])):
        fig = plot_selection_summary(table)
        assert len(fig.axes) == 1
        assert [t.get_text() for t in fig.axes[0].texts] == ["no method in these runs selects clean samples"]


def test_preset_variants_are_never_pooled():
    # an ablation variant of "dm" must get its own line and bars, not count as extra seeds of the main preset
    table = _table().assign(preset="digits")
    variant = table[table.method == "dm"].assign(preset="digits-fixed", reported=lambda t: t["reported"] - 10.0)
    table = pd.concat([table, variant], ignore_index=True)
    sym = _errorbars(plot_accuracy_vs_noise(table, reference=None).axes[0])
    assert set(sym) == {"CE", "dm (digits)", "dm (digits-fixed)"}
    np.testing.assert_allclose(sym["dm (digits)"][1] - sym["dm (digits-fixed)"][1], 10.0)
    np.testing.assert_allclose(sym["dm (digits)"][2], np.std([0.0, 2.0], ddof=1))  # two seeds, not four runs
    assert [ax.get_title() for ax in plot_selection_summary(table).axes] == ["dm (digits)", "dm (digits-fixed)"]


def test_test_accuracy_overlays_runs_and_other_keys():
    a, b = _run(), _run(epochs=6, nets=True)
    fig = lnlkit.plots.plot_test_accuracy({"CE": a, "other": b, "other, net 1": (b, "test_acc_net1")}, title="t")
    lines = _lines(fig.axes[0])
    assert set(lines) == {"CE", "other", "other, net 1"}
    np.testing.assert_allclose(lines["CE"].get_ydata(), [50.0 + 3 * e for e in range(10)])
    np.testing.assert_allclose(lines["other, net 1"].get_ydata(), [49.0 + 3 * e for e in range(6)])
    assert lines["other, net 1"].get_linestyle() == ":" and lines["CE"].get_linestyle() == "-"
    with pytest.raises(ValueError, match="empty"):
        lnlkit.plots.plot_test_accuracy({})


def test_open_set_rejection_draws_the_recorded_keys_only():
    run = _run(epochs=4)
    for e, r in enumerate(run.history):
        r.update(ood_precision=0.1 * e, ood_recall=0.2 * e)
    lines = _lines(lnlkit.plots.plot_open_set_rejection(run).axes[0])
    assert set(lines) == {
        "OOD precision (rejected that are open-set)",
        "OOD recall (open-set that are rejected)",
        "clean-set precision",
    }  # no rej_noisy_precision recorded
    np.testing.assert_allclose(lines["OOD recall (open-set that are rejected)"].get_ydata(), [0.0, 0.2, 0.4, 0.6])

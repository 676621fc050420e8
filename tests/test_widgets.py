"""lnlkit.widgets: explorers in interactive mode (widgets built, no kernel needed) and static mode, on synthetic runs
(from test_plots) and on one real 3-epoch CE run on digits."""

import base64
import importlib
import sys
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from test_plots import _run, _samples

import lnlkit
import lnlkit.widgets
from lnlkit.plots import plot_accuracy_vs_noise, plot_selection_summary
from lnlkit.widgets import (
    WIDGET_VIEW_MIME,
    NoiseExplorer,
    RunExplorer,
    default_noise_kinds,
    explore_noise,
    explore_run,
    noise_spec,
    widget_frontend_available,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory, digits):
    data = digits.with_noise("symmetric:0.4", seed=0)
    return lnlkit.get_method("ce", preset="digits", epochs=3).fit(
        data, out=tmp_path_factory.mktemp("w") / "ce", progress=False
    )


def _png(data: str) -> bytes:
    raw = base64.b64decode(data)
    assert raw.startswith(PNG_MAGIC)
    return raw


def _shown_png(explorer) -> bytes:
    """The PNG the Output widget holds."""
    (item,) = explorer.output.outputs
    return _png(item["data"]["image/png"])


def _marker_x(fig) -> float:
    (line,) = [line for line in fig.axes[1].get_lines() if line.get_label() == "shown epoch"]
    return line.get_xdata()[0]


# ------------------------------------------------------------------------------------------------ front-end
def test_widget_frontend_available_honours_env_ipywidgets_and_kernel(monkeypatch):
    monkeypatch.delenv("LNLKIT_STATIC_WIDGETS", raising=False)
    assert widget_frontend_available() is False  # pytest runs in no IPython kernel
    monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace())  # a shell without kernel
    assert widget_frontend_available() is False
    monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace(kernel=object()))
    assert widget_frontend_available() is True
    for value in ("1", "true", "YES"):
        monkeypatch.setenv("LNLKIT_STATIC_WIDGETS", value)
        assert widget_frontend_available() is False
    monkeypatch.setenv("LNLKIT_STATIC_WIDGETS", "0")
    assert widget_frontend_available() is True
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` fail
    assert widget_frontend_available() is False


def test_module_imports_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    module = importlib.reload(lnlkit.widgets)
    try:
        assert module.RunExplorer(_run(), static=True).figure is not None
        with pytest.raises(ImportError, match="ipywidgets"):
            module.RunExplorer(_run(), static=False)
    finally:
        monkeypatch.undo()
        importlib.reload(lnlkit.widgets)


# ------------------------------------------------------------------------------------------------ run explorer
def test_run_explorer_slider_redraws_without_leaking_figures():
    run = _run(epochs=10, every=2)
    explorer = RunExplorer(run, static=False)
    assert list(explorer.slider.options) == [(str(e), e) for e in (0, 2, 4, 6, 8)]
    assert explorer.slider.value == explorer.epoch == 8
    assert explorer.box.children == (explorer.slider, explorer.output)
    first, first_png = explorer.figure, _shown_png(explorer)
    assert first.axes[0].get_title().startswith("epoch 8") and _marker_x(first) == 8

    explorer.slider.value = 2
    assert explorer.epoch == 2 and explorer.figure is not first
    assert explorer.figure.axes[0].get_title() == "epoch 2 (test 56.0%)" and _marker_x(explorer.figure) == 2
    assert _shown_png(explorer) != first_png
    assert plt.get_fignums() == []  # each figure is closed once rendered

    explorer.show_epoch(6)
    assert explorer.slider.value == 6 and explorer.figure.axes[0].get_title().startswith("epoch 6")
    with pytest.raises(ValueError, match=r"recorded epochs: \[0, 2, 4, 6, 8\]"):
        explorer.show_epoch(3)


def test_run_explorer_mimebundle_interactive_and_static(monkeypatch):
    run = _run(epochs=6, every=2)
    explorer = RunExplorer(run, static=False, epoch=2)
    bundle = explorer._repr_mimebundle_()
    assert set(bundle) == {WIDGET_VIEW_MIME, "image/png", "text/plain"}
    assert bundle[WIDGET_VIEW_MIME]["model_id"] == explorer.box.model_id
    assert _png(bundle["image/png"]) == _shown_png(explorer)
    assert "epoch 2" in bundle["text/plain"]
    assert set(explorer._repr_mimebundle_(include=["image/png"])) == {"image/png"}

    static = RunExplorer(run, static=True)
    assert static.slider is static.output is static.box is None
    bundle = static._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"}
    _png(bundle["image/png"])
    assert static.figure.axes[0].get_title().startswith("epoch 4")  # the last recorded epoch
    static.show_epoch(0)
    assert static.figure.axes[0].get_title().startswith("epoch 0")

    assert RunExplorer(run).static  # static=None in pytest: no kernel
    monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace(kernel=object()))
    assert not RunExplorer(run).static
    monkeypatch.setenv("LNLKIT_STATIC_WIDGETS", "1")
    assert RunExplorer(run).static


def test_run_explorer_shows_a_drawing_error_instead_of_raising():
    run = _run(epochs=6, every=2)
    run.signals["loss"][1] = np.nan  # epoch 2 lost its losses
    explorer = RunExplorer(run, static=False)
    explorer.slider.value = 2  # must not raise
    assert "recorded no losses at epoch 2" in explorer.error
    assert explorer.figure is None
    (item,) = explorer.output.outputs
    assert "recorded no losses at epoch 2" in item["data"]["text/plain"]
    assert "image/png" not in explorer._repr_mimebundle_()
    explorer.slider.value = 4
    assert explorer.error is None and explorer.figure.axes[0].get_title().startswith("epoch 4")


def test_run_explorer_rejects_runs_without_losses_and_bad_epochs():
    with pytest.raises(ValueError, match="no per-sample losses"):
        RunExplorer(_run(signals=False), static=True)
    with pytest.raises(ValueError, match="recorded epochs"):
        RunExplorer(_run(), static=True, epoch=1)


def test_run_explorer_on_a_real_ce_run(ce_run):
    explorer = explore_run(str(ce_run.path), static=False)  # a run folder path
    assert explorer.epochs == [0, 1, 2] and explorer.slider.value == 2
    right = explorer.figure.axes[1]  # CE selects nothing: the memorisation curves
    assert "noisy: predicted given (wrong) label" in {line.get_label() for line in right.get_lines()}
    explorer.slider.value = 0
    acc = ce_run.history[0]["test_acc"]
    assert explorer.figure.axes[0].get_title() == f"epoch 0 (test {acc:.1f}%)" and _marker_x(explorer.figure) == 0
    assert {WIDGET_VIEW_MIME, "image/png"} <= set(explorer._repr_mimebundle_())
    # the results-table figures on a real table (CE selects nothing: the note)
    table = lnlkit.results_table(ce_run.path)
    fig = plot_accuracy_vs_noise(table)
    assert [ax.get_title() for ax in fig.axes] == ["Symmetric noise"]
    assert len(plot_selection_summary(table).axes[0].texts) == 1


# ------------------------------------------------------------------------------------------------ noise explorer
def test_noise_spec_and_default_kinds():
    assert noise_spec("pairflip", 0.30000000000000004) == "pairflip:0.3"
    assert noise_spec("openset", 0.4) == "openset:0.2+symmetric:0.4"
    assert noise_spec("openset:0.3+pairflip:{rate}", 0.1) == "openset:0.3+pairflip:0.1"
    assert "asym-cifar10" in default_noise_kinds(10)
    assert default_noise_kinds(4) == ["symmetric", "symmetric-inclusive", "pairflip", "instance", "openset"]


def test_noise_explorer_redraws_on_rate_and_kind(digits):
    explorer = NoiseExplorer(digits, static=False, n_examples=4)
    assert list(explorer.kind.options) == default_noise_kinds(10)
    assert explorer.kind.value == "symmetric" and explorer.rate.value == pytest.approx(0.4)
    assert (explorer.rate.min, explorer.rate.max, explorer.rate.step) == (0.0, 0.9, 0.05)
    before = explorer.noisy.noise.realized_rate
    explorer.rate.value = 0.2
    after = explorer.noisy.noise.realized_rate
    assert explorer.spec == "symmetric:0.2" and after != before and abs(after - 0.2) < 0.05
    assert f"realised rate {after:.3f} vs nominal 0.200" in explorer.text.value
    assert f"realised rate {after:.3f}" in explorer.figure._suptitle.get_text()
    flipped = np.flatnonzero(explorer.noisy.labels != digits.y_train)
    assert sorted(_samples(explorer.figure)) == flipped[:4].tolist()
    _shown_png(explorer)
    explorer.kind.value = "pairflip"
    assert explorer.spec == "pairflip:0.2" and explorer.noisy.noise.spec.startswith("pairflip")
    assert plt.get_fignums() == []
    bundle = explore_noise(digits, static=False, n_examples=2)._repr_mimebundle_()
    assert set(bundle) == {WIDGET_VIEW_MIME, "image/png", "text/plain"}


def test_noise_explorer_shows_errors_instead_of_raising(digits):
    explorer = NoiseExplorer(
        digits, kinds=["symmetric", "asym-cifar100-superclass", "openset"], static=False, n_examples=2
    )
    explorer.kind.value = "asym-cifar100-superclass"  # digits has no coarse labels: must not raise
    assert "coarse labels" in explorer.error and explorer.figure is None and explorer.noisy is None
    assert "coarse labels" in explorer.text.value
    (item,) = explorer.output.outputs
    assert "coarse labels" in item["data"]["text/plain"]
    assert "image/png" not in explorer._repr_mimebundle_()
    explorer.show("openset", 0.3)
    assert explorer.error is None and explorer.kind.value == "openset" and explorer.rate.value == pytest.approx(0.3)
    assert explorer.spec == "openset:0.2+symmetric:0.3" and explorer.noisy.num_classes == 8
    with pytest.raises(ValueError, match="not offered"):
        explorer.show("instance", 0.3)
    with pytest.raises(ValueError, match=r"\[0, 0.9\]"):
        explorer.show("symmetric", 0.95)
    with pytest.raises(ValueError, match="unknown noise kind"):
        NoiseExplorer(digits, kinds=["symetric"], static=True)


def test_noise_explorer_static(digits, monkeypatch):
    monkeypatch.setenv("LNLKIT_STATIC_WIDGETS", "true")
    explorer = explore_noise(digits, n_examples=2)
    assert explorer.static and explorer.kind is explorer.rate is explorer.box is None
    bundle = explorer._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"}
    _png(bundle["image/png"])
    assert "symmetric:0.4: realised rate" in bundle["text/plain"]
    explorer.show("pairflip", 0.1)
    assert explorer.noisy.noise.spec.startswith("pairflip") and "pairflip:0.1" in repr(explorer)


# ------------------------------------------------------------------------------------------------ notebooks
def test_saved_output_without_widget_state_falls_back_to_the_png():
    """nbconvert (a notebook viewed without a kernel) skips a widget view whose state was not saved: it picks the
    PNG; with the state saved (as papermill/nbclient do) it renders the widget."""
    pytest.importorskip("nbconvert")
    from nbconvert import HTMLExporter
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    bundle = RunExplorer(_run(epochs=4), static=False)._repr_mimebundle_()
    pick = WidgetsDataTypeFilter(notebook_metadata={}, parent=HTMLExporter())
    assert pick(bundle) == ["image/png"]
    state = {
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {bundle[WIDGET_VIEW_MIME]["model_id"]: {}}}}
    }
    assert WidgetsDataTypeFilter(notebook_metadata={"": state}, parent=HTMLExporter())(bundle) == [WIDGET_VIEW_MIME]

"""The paper-layout tables (lnlkit.tables) and the signature figures, on tiny fake run folders."""

import csv
import io
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from lnlkit import plots  # noqa: E402
from lnlkit.reproduce import table_runs, write_results  # noqa: E402
from lnlkit.runs import run_folder  # noqa: E402
from lnlkit.tables import (  # noqa: E402
    accuracy_table,
    latex_escape,
    noise_header,
    paper_runs,
    selection_table,
    to_latex,
    to_markdown,
)

NOISES = ("openset:0.2+symmetric:0.2", "instance:0.4", "symmetric:0.8", "pairflip:0.4", "symmetric:0.2")
REPORTED_AS = {
    "ce": "test_acc_last",
    "dividemix": "ensemble_acc_last",
    "smr": "ensemble_acc_last",
    "comining": "mean_last10",
    "mememomentum": "test_at_best_val",
    "sop": "test_acc_last",
    "prune4rel": "test_acc_last",
    "prune:uniform": "test_acc_last",
}


def _write_run(
    root,
    method,
    noise,
    seed,
    reported,
    *,
    best=None,
    last=None,
    sel=None,
    auroc=None,
    preset="digits",
    variant=None,
    status="complete",
    ratio=None,
    epochs=3,
):
    folder = run_folder(root, method.replace(":", "-"), "digits", noise, seed, variant=variant)
    folder.mkdir(parents=True)
    hp = {"epochs": epochs} | ({"ratio": ratio} if ratio is not None else {})
    config = {
        "method": method,
        "preset": preset,
        "hyperparameters": hp,
        "dataset": "digits",
        "noise": noise,
        "seed": seed,
    }
    (folder / "config.json").write_text(json.dumps(config))
    history = []
    for e in range(epochs):
        rec = {"epoch": e, "test_acc": reported}
        if sel is not None:  # precision rises to its final value; recall constant
            rec |= {"sel_precision": sel[0] - 0.1 * (epochs - 1 - e), "sel_recall": sel[1]}
        history.append(rec)
    (folder / "history.jsonl").write_text("\n".join(json.dumps(r) for r in history) + "\n")
    result = {
        "status": status,
        "reported": reported,
        "reported_as": REPORTED_AS.get(method, "test_acc_last"),
        "test_acc_last": reported if last is None else last,
        "test_acc_best": reported if best is None else best,
    }
    if sel is not None:
        result |= {"sel_precision": sel[0], "sel_recall": sel[1]}
    if auroc is not None:
        result["sel_auroc"] = auroc
    (folder / "result.json").write_text(json.dumps(result))
    return folder


@pytest.fixture
def grid(tmp_path):
    """ce (2 seeds), dividemix (2 seeds), sop, prune4rel and uniform at f = 0.2 on a few settings, plus rows that
    must stay out: a variant folder, a non-main preset, an unfinished run, a sibling variants folder."""
    root = tmp_path / "runs"
    values = {}
    for noise in ("symmetric:0.2", "symmetric:0.8", "pairflip:0.4", "openset:0.2+symmetric:0.2"):
        for seed in (0, 1):
            values[("ce", noise, seed)] = (80.0 + seed, 90.0 + 2 * seed)  # (last, best)
            _write_run(root, "ce", noise, seed, 80.0 + seed, best=90.0 + 2 * seed)
            values[("dividemix", noise, seed)] = 85.0 + 3 * seed
            _write_run(root, "dividemix", noise, seed, 85.0 + 3 * seed, sel=(0.9 + 0.02 * seed, 0.8), auroc=0.95)
    # SOP+ ties DivideMix's mean (86.5) on symmetric:0.2, beats it on pairflip, has no run on symmetric:0.8
    _write_run(root, "sop", "symmetric:0.2", 0, 86.5, auroc=0.7)
    _write_run(root, "sop", "pairflip:0.4", 0, 99.0, auroc=0.7)
    _write_run(root, "prune4rel", "symmetric:0.2", 0, 70.0, sel=(0.95, 0.2), ratio=0.2)
    _write_run(root, "prune:uniform", "symmetric:0.2", 0, 60.0, sel=(0.8, 0.2), ratio=0.2)
    # CE's best epoch is the highest number of its column but must never be marked
    _write_run(root, "ce", "instance:0.4", 0, 50.0, best=99.9)
    _write_run(root, "dividemix", "instance:0.4", 0, 70.0, sel=(0.7, 0.6))
    # to be left out
    _write_run(root, "dividemix", "symmetric:0.2", 0, 100.0, variant="mixup", sel=(1.0, 1.0))
    _write_run(root, "dividemix", "symmetric:0.2", 2, 100.0, preset="digits-recal", sel=(1.0, 1.0))
    _write_run(root, "dividemix", "symmetric:0.2", 3, 100.0, status="running", sel=(1.0, 1.0))
    # a baseline outside the profile's table (notebook 14 trains it next to the grid's runs)
    _write_run(root, "prune:smallloss", "symmetric:0.2", 0, 100.0, sel=(1.0, 0.4), ratio=0.2)
    _write_run(Path(f"{root}-prune4rel-variants"), "prune4rel", "symmetric:0.2", 0, 100.0, variant="x", ratio=0.5)
    return root, values


def test_rows_columns_and_headers(grid):
    root, _ = grid
    table = accuracy_table(table_runs(root, "quick"))
    assert table.rows == [
        "CE (best epoch)",
        "CE (last epoch)",
        "DivideMix",
        "SOP+",
        "Prune4ReL (f = 0.2)",
        "Uniform (f = 0.2)",
    ]
    assert table.columns == [
        "symmetric:0.2",
        "symmetric:0.8",
        "pairflip:0.4",
        "instance:0.4",
        "openset:0.2+symmetric:0.2",
    ]
    assert table.headers == ["Sym. 20%", "Sym. 80%", "Pair 40%", "Inst. 40%", "Open 20% + Sym. 20%"]
    assert noise_header("symmetric:0.5") == "Sym. 50%" and noise_header("cifar10n:worst") == "cifar10n:worst"


def test_variants_unfinished_and_sibling_runs_stay_out(grid):
    root, _ = grid
    runs = table_runs(root, "quick")
    assert set(runs["seed"][runs["method"] == "dividemix"]) == {0, 1}
    assert (runs["reported"] < 100.0).all()
    rel = [str(Path(p).relative_to(root)) for p in runs["path"]]  # nothing from the sibling folder either
    assert not any("+" in p for p in rel) and len(rel) == 8 * 2 + 2 + 2 + 2
    assert "prune:smallloss" not in set(runs["method"])  # not a method of the quick table
    assert "prune:smallloss" in set(paper_runs(root)["method"])  # no profile: every method


def test_mean_std_best_ties_and_missing_cells(grid):
    root, values = grid
    table = accuracy_table(table_runs(root, "quick"))
    cells = table.cells.set_index(["row", "column"])
    for noise in ("symmetric:0.2", "pairflip:0.4"):
        dm = [values[("dividemix", noise, s)] for s in (0, 1)]
        assert cells.loc[("DivideMix", noise), "mean"] == pytest.approx(np.mean(dm))
        assert cells.loc[("DivideMix", noise), "std"] == pytest.approx(np.std(dm, ddof=1))
        assert cells.loc[("DivideMix", noise), "seeds"] == 2
        best = [values[("ce", noise, s)][1] for s in (0, 1)]
        assert cells.loc[("CE (best epoch)", noise), "mean"] == pytest.approx(np.mean(best))
        last = [values[("ce", noise, s)][0] for s in (0, 1)]
        assert cells.loc[("CE (last epoch)", noise), "mean"] == pytest.approx(np.mean(last))
    best = table.cells[table.cells["is_best"]]
    assert set(zip(best["row"], best["column"])) == {
        ("DivideMix", "symmetric:0.2"),
        ("SOP+", "symmetric:0.2"),  # a tie: both marked
        ("DivideMix", "symmetric:0.8"),
        ("SOP+", "pairflip:0.4"),
        ("DivideMix", "instance:0.4"),  # CE's best epoch (99.9) is higher but never a candidate
        ("DivideMix", "openset:0.2+symmetric:0.2"),
    }
    md = to_markdown(table)
    sop = next(line for line in md.splitlines() if line.startswith("| SOP+ |"))
    assert sop.split(" | ")[1:3] == ["**86.50**<sup>n=1</sup>", "—"]  # missing cell, seeds differ from most
    ce = next(line for line in md.splitlines() if line.startswith("| CE (best epoch) |"))
    assert "**" not in ce
    assert "Open-set columns" in md and "no mechanism for open-set noise" in md


def test_selection_and_auroc_tables(grid):
    root, _ = grid
    selection, auroc = selection_table(table_runs(root, "quick"))
    assert selection.rows == ["DivideMix", "Prune4ReL (f = 0.2)", "Uniform (f = 0.2)"]  # SOP+ selects nothing
    assert auroc.rows == ["DivideMix", "SOP+"]
    md = to_markdown(selection)
    prune = next(line for line in md.splitlines() if line.startswith("| Prune4ReL"))
    assert prune.split(" | ")[1] == "**95.0 / 20.0**<sup>n=1</sup>"  # best precision of its column, in %
    dm = next(line for line in md.splitlines() if line.startswith("| DivideMix"))
    assert dm.split(" | ")[1] == f"{100 * np.mean([0.9, 0.92]):.1f} / 80.0"


def test_latex_is_balanced_and_escaped(grid):
    root, _ = grid
    tex = to_latex(accuracy_table(table_runs(root, "quick")), label="tab:x_y")
    assert tex.count("{") == tex.count("}")
    assert tex.count(r"\begin{") == tex.count(r"\end{")
    body = tex.replace(r"\%", "").replace(r"\_", "").replace(r"\&", "")
    assert "%" not in body and "_" not in body.replace("tab:x-y", "")  # every % and _ escaped
    assert "\\textbf{" in tex and "$\\pm$" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    rows = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert all(line.count(" & ") == 5 for line in rows)  # label + 5 columns, no stray &
    assert latex_escape("a_b & 20% #1 {x} ~ ^") == r"a\_b \& 20\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"


def test_write_results_files_and_csv_round_trip(grid, tmp_path):
    root, values = grid
    paths = write_results(root, tmp_path / "results", "quick")
    assert set(paths) == {"md", "csv", "tex"}
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    got = {(r["table"], r["row"], r["noise"], r["metric"]): r for r in rows}
    dm = got[("accuracy", "DivideMix", "symmetric:0.2", "reported")]
    expected = [values[("dividemix", "symmetric:0.2", s)] for s in (0, 1)]
    assert float(dm["mean"]) == np.mean(expected) and float(dm["std"]) == np.std(expected, ddof=1)
    assert dm["seeds"] == "2" and dm["is_best"] == "True"
    sel = got[("selection", "DivideMix", "symmetric:0.2", "sel_precision")]
    assert float(sel["mean"]) == np.mean([0.9, 0.92])  # fractions at full precision
    md = paths["md"].read_text()
    assert "## All runs" in md and "dividemix+mixup" in md  # variants only in the last section
    assert paths["tex"].read_text().count(r"\begin{table}") == 3


def _legend_outside(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    return all(not box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)


def test_figures_legend_outside_and_one_colour_per_method(grid):
    root, _ = grid
    runs = table_runs(root, "quick")
    acc = plots.plot_accuracy_vs_noise(runs)
    sel = plots.plot_selection_over_epochs(runs, noise="symmetric:0.2", seed=0)
    assert _legend_outside(acc) and _legend_outside(sel)
    assert not any(ax.get_legend() for ax in acc.axes + sel.axes)
    colours = {}
    for fig in (acc, sel):
        for ax in fig.axes:
            for line in ax.get_lines():
                if not line.get_label().startswith("_"):
                    colours.setdefault(line.get_label(), set()).add(to_rgba(line.get_color()))
            for c in ax.containers:
                colours.setdefault(c.get_label(), set()).add(to_rgba(c.lines[0].get_color()))
    assert colours["DivideMix"] == {to_rgba(plots.METHOD_COLORS["dividemix"])}
    assert colours["Prune4ReL (f = 0.2)"] == {to_rgba(plots.METHOD_COLORS["prune4rel"])}
    assert len({next(iter(v)) for k, v in colours.items() if not k.startswith("CE")}) == len(
        [k for k in colours if not k.startswith("CE")]
    )  # different methods, different colours
    assert len(set(plots.METHOD_COLORS.values())) == len(plots.METHOD_COLORS)
    plt.close("all")


def test_selection_over_epochs_lines_and_x_axis(grid):
    root, _ = grid
    runs = table_runs(root, "quick")
    fig = plots.plot_selection_over_epochs(runs, noise="symmetric:0.2", seed=0)
    precision = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(precision) == ["DivideMix", "Prune4ReL (f = 0.2)", "Uniform (f = 0.2)"]  # CE, SOP+ select nothing
    np.testing.assert_allclose(precision["DivideMix"].get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(precision["DivideMix"].get_ydata(), [0.7, 0.8, 0.9])
    by_epoch = plots.plot_selection_over_epochs(runs, noise="symmetric:0.2", seed=0, x="epoch")
    np.testing.assert_allclose(by_epoch.axes[1].get_lines()[0].get_xdata(), [0, 1, 2])
    with pytest.raises(ValueError, match="fraction"):
        plots.plot_selection_over_epochs(runs, x="time")
    plt.close("all")

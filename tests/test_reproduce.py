"""`lnlkit reproduce`: the smoke profile end to end (every notebook through papermill), resume, failure isolation."""

import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from lnlkit.cli import main
from lnlkit.reproduce import (
    PROFILES,
    TABLE_METHODS,
    TABLE_NOISES,
    Grid,
    Job,
    NotebookSpec,
    RunJob,
    noise_tag,
    plan_jobs,
    profile_method,
    reproduce,
    run_folder,
)
from lnlkit.train.recorder import load_run

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _errors(executed: Path) -> list[str]:
    nb = nbformat.read(executed, as_version=4)
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke batch, shared by the tests below (about a minute on 2 cores)."""
    root = tmp_path_factory.mktemp("smoke")
    env_before = os.environ.get("LNLKIT_DATA")
    if (SHARED_DATA / "cifar-n").is_dir():
        os.environ["LNLKIT_DATA"] = str(SHARED_DATA)  # 01_label_noise then shows the real CIFAR-N noise
    lines: list[str] = []
    try:
        outcomes = reproduce(
            "smoke",
            out=root / "runs",
            results=root / "results",
            figures=root / "figures",
            jobs=2,
            echo=lines.append,
            timeout=600,
        )
    finally:
        if env_before is None:
            os.environ.pop("LNLKIT_DATA", None)
        else:
            os.environ["LNLKIT_DATA"] = env_before
    return root, outcomes, lines


def test_smoke_executes_every_notebook_without_error(smoke):
    root, outcomes, lines = smoke
    names = {o.job.name: o for o in outcomes}
    table = PROFILES["smoke"].table_methods
    assert {n for n in names if n.startswith("table/")} == {"table/digits_symmetric-0.4_s0"}, lines
    # the table grid runs first, every method of a cell in one process, before any notebook starts
    first_notebook = next(i for i, line in enumerate(lines) if line.startswith("start 00_"))
    assert all(line.startswith("start table/") for line in lines[:first_notebook] if line.startswith("start"))
    log = (root / "runs" / "smoke" / "_runs" / "digits_symmetric-0.4_s0.log").read_text()
    for method in table:
        folder = run_folder(root / "runs" / "smoke", method, "digits", "symmetric:0.4", 0)
        assert f"run folder: {folder}" in log and load_run(folder).complete, method
    notebooks = [o for o in outcomes if not o.job.name.startswith("table/")]
    assert {o.job.name for o in notebooks} == {
        "00_quickstart/digits_symmetric-0.4_s0",
        "01_label_noise",
        "10_promix/digits_symmetric-0.4_s0",
        "11_dividemix_smr/digits_symmetric-0.4_s0",
        "12_comining/digits_symmetric-0.4_s0",
        "13_me_momentum/digits_symmetric-0.4_s0",
        "14_prune4rel/digits_symmetric-0.4_s0",
        "99_results",
    }, lines
    for o in outcomes:
        assert o.status == "ok", f"{o.job.name}: {o.error}"
    for o in notebooks:
        assert o.job.executed.exists() and _errors(o.job.executed) == []
        assert o.job.marker.exists()


def test_smoke_quickstart_run_metrics(smoke):
    root, _, _ = smoke
    run = load_run(run_folder(root / "runs" / "smoke", "ce", "digits", "symmetric:0.4", 0))
    assert run.complete and len(run.history) == PROFILES["smoke"].methods["ce"].overrides["epochs"]
    assert run.config["method"] == "ce" and run.config["preset"] == "digits" and run.config["noise"] == "symmetric:0.4"
    assert 0.35 < run.result["realized_rate"] < 0.45
    # four epochs of CE on 40% noisy digits already generalise far beyond chance (10%)
    assert run.result["test_acc_best"] > 60.0
    assert run.signals["loss"].shape == (4, 1347)


def test_smoke_promix_run_records_its_selections(smoke):
    root, _, _ = smoke
    run = load_run(run_folder(root / "runs" / "smoke", "promix", "digits", "symmetric:0.4", 0))
    plan = PROFILES["smoke"].methods["promix"].overrides
    assert run.complete and len(run.history) == plan["epochs"] + 1  # the official loop is inclusive
    assert run.config["preset"] == "digits" and run.result["reported_as"] == "ensemble_acc_last"
    assert [r["phase"] for r in run.history] == ["warmup"] + ["ssl"] * plan["epochs"]
    assert run.history[-1]["lga_active"] and run.history[-1]["sel_precision"] > 0.9
    for key in ("selected", "selected_css", "selected_mhcs", "guessed_lga", "relabel"):
        assert run.signals[key].shape == (plan["epochs"] + 1, 1347), key
    for variant in ("digits-penalty-faithful", "digits-penalty"):  # the notebook's switch comparison
        assert load_run(
            run_folder(root / "runs" / "smoke", "promix", "digits", "symmetric:0.4", 0, variant=variant)
        ).complete


def test_smoke_label_noise_summary(smoke):
    root, _, _ = smoke
    summary = pd.read_csv(root / "runs" / "smoke" / "label-noise" / "noise_summary.csv")
    rates = dict(zip(summary["spec"], summary["realized_rate"]))
    assert abs(rates["symmetric:0.4"] - 0.4) < 0.05
    assert abs(rates["symmetric-inclusive:0.4"] - 0.36) < 0.05
    if (SHARED_DATA / "cifar-n").is_dir():
        assert abs(rates["cifar10n:worst"] - 0.4021) < 1e-3


def test_smoke_results_table_and_figures(smoke):
    root, _, _ = smoke
    md = (root / "results" / "smoke.md").read_text()
    assert "| digits | symmetric:0.4 | ce | digits |" in md
    csv = pd.read_csv(root / "results" / "smoke.csv")
    acc = csv[csv["table"] == "accuracy"]
    # the paper tables hold the table's methods on their main preset only; the notebooks' ablation and
    # faithful-vs-fixed variants (other presets), notebook 14's other ratios (a sibling folder) and its extra
    # baselines appear only in the md's "All runs" section
    assert set(acc["row"]) == {
        "CE (best epoch)",
        "CE (last epoch)",
        "DivideMix",
        "SMR",
        "ProMix",
        "Co-mining",
        "Me-Momentum",
        "SOP+",
        "Prune4ReL (f = 0.2)",
        "Uniform (f = 0.2)",
    }, set(acc["row"])
    assert (csv["seeds"] == 1).all()
    for method, row, key in (("ce", "CE (last epoch)", "test_acc_last"), ("mememomentum", "Me-Momentum", "reported")):
        cell = acc[(acc["row"] == row) & (acc["noise"] == "symmetric:0.4")].iloc[0]
        run = load_run(run_folder(root / "runs" / "smoke", method, "digits", "symmetric:0.4", 0))
        assert cell["mean"] == pytest.approx(run.result[key])
    assert set(acc.loc[acc["method"] == "comining", "noise"]) == {"symmetric:0.4", "openset:0.2+symmetric:0.2"}
    assert "## All runs" in md and "| digits-mixup-warmup |" in md
    # notebook 14's other baselines are not methods of the table: listed with the other runs only
    assert "| prune-smallloss |" in md[md.index("## All runs") :] and "prune:smallloss" not in set(csv["method"])
    assert "\\begin{tabular}" in (root / "results" / "smoke.tex").read_text()
    for name in ("smoke_accuracy_vs_noise.png", "smoke_selection_over_epochs.png", "smoke_selection.png"):
        assert (root / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_complete_cells_and_loses_nothing(smoke):
    root, outcomes, _ = smoke
    quick = next(o.job for o in outcomes if o.job.name.startswith("00_quickstart"))
    history = quick.runs[0] / "history.jsonl"
    stamps = {p: p.stat().st_mtime_ns for p in (quick.executed, history)}

    again = reproduce(
        "smoke",
        out=root / "runs",
        results=root / "results",
        figures=root / "figures",
        jobs=2,
        run_results=False,
        echo=lambda _: None,
    )
    assert {o.status for o in again} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # a cell whose notebook did not finish (no marker) is executed again, but its complete run is not retrained
    quick.marker.unlink()
    third = reproduce(
        "smoke",
        out=root / "runs",
        results=root / "results",
        figures=root / "figures",
        jobs=2,
        run_results=False,
        echo=lambda _: None,
        only=["00_quickstart"],
    )
    assert [(o.job.name, o.status) for o in third] == [(quick.name, "ok")]
    assert history.stat().st_mtime_ns == stamps[history]


_OK_CELL = "from pathlib import Path\nPath(runs_root, 'ok.txt').write_text(profile)"


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "quick"\nruns_root = "."')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


def test_failing_notebook_is_reported_and_does_not_stop_the_others(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "bad.ipynb", "raise RuntimeError('deliberate failure in cell 2')")
    _notebook(nbs / "good.ipynb", _OK_CELL)
    lines: list[str] = []
    outcomes = reproduce(
        "smoke",
        out=tmp_path / "runs",
        notebooks_dir=nbs,
        jobs=2,
        run_results=False,
        notebooks=(NotebookSpec("bad.ipynb"), NotebookSpec("good.ipynb")),
        table=False,
        echo=lines.append,
    )
    status = {o.job.name: o for o in outcomes}
    assert status["good"].status == "ok"
    assert (tmp_path / "runs" / "smoke" / "ok.txt").read_text() == "smoke"  # parameters were injected
    bad = status["bad"]
    assert bad.status == "failed" and "deliberate failure in cell 2" in bad.error
    assert bad.job.executed.exists() and not bad.job.marker.exists()
    assert any(line.startswith("FAILED bad") and str(bad.job.executed) in line for line in lines)


def test_missing_notebook_fails_cleanly(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    outcomes = reproduce(
        "smoke",
        out=tmp_path / "runs",
        notebooks_dir=nbs,
        run_results=False,
        notebooks=(NotebookSpec("absent.ipynb"),),
        table=False,
        echo=lambda _: None,
    )
    assert outcomes[0].status == "failed" and "notebook not found" in outcomes[0].error


def test_plan_jobs_grid_and_errors(tmp_path):
    jobs = plan_jobs("quick", tmp_path)
    # the results table's grid first: one process per noise column and seed, training every table method
    table = PROFILES["quick"].table
    runs = [j for j in jobs if isinstance(j, RunJob)]
    assert jobs[: len(runs)] == runs
    assert len(runs) == len(TABLE_NOISES) * len(table.seeds) == 6
    assert [j.parameters["noise"] for j in runs] == list(TABLE_NOISES)
    assert all(j.parameters["methods"] == list(TABLE_METHODS) and len(j.runs) == 9 for j in runs)
    uniform = runs[0].runs[TABLE_METHODS.index("prune:uniform")]
    assert uniform == run_folder(tmp_path.resolve(), "prune-uniform", "digits", TABLE_NOISES[0], 0)
    command = runs[0].command()
    assert command[command.index("--profile") + 1] == "quick"
    assert command[command.index("--method") + 1] == ",".join(TABLE_METHODS)
    assert command[command.index("--runs-root") + 1] == str(tmp_path.resolve())
    # each notebook's cell is a table column, so the notebooks reuse the grid's main runs
    cells = {r for j in runs for r in j.runs}
    for job in jobs[len(runs) :]:
        assert set(job.runs) <= cells, job.name
    assert jobs[-1].parameters["ratios"] == [0.2]  # notebook 14: one ratio in quick (notebook_parameters)
    assert len(plan_jobs("full", tmp_path)) == len(jobs) + 2 * len(runs)  # three seeds
    assert plan_jobs("quick", tmp_path, table=False) == jobs[len(runs) :]
    assert plan_jobs("quick", tmp_path, only=["table"]) == runs
    grid = PROFILES["quick"].grid
    quick = [j for j in jobs if isinstance(j, Job) and j.notebook.stem == "00_quickstart"]
    assert len(quick) == len(grid.noises) * len(grid.seeds)
    assert {j.parameters["noise"] for j in quick} == set(grid.noises)
    assert all(
        j.runs == (run_folder(tmp_path.resolve(), "ce", "digits", j.parameters["noise"], j.parameters["seed"]),)
        for j in quick
    )
    assert len({j.executed for j in jobs}) == len(jobs)
    custom = NotebookSpec("x.ipynb", methods=("ce",), grids={"quick": Grid("digits", ("none",), (5,))})
    (job,) = plan_jobs("quick", tmp_path, notebooks=(custom,), table=False)
    assert job.parameters["seed"] == 5 and job.name == "x/digits_none_s5"
    with pytest.raises(ValueError, match="unknown profile"):
        plan_jobs("huge", tmp_path)
    with pytest.raises(ValueError, match="unknown notebook"):
        plan_jobs("quick", tmp_path, only=["02_nothing"])


def test_noise_tag_run_folder_and_profile_method(tmp_path):
    assert noise_tag("openset:0.2+symmetric:0.4") == "openset-0.2_symmetric-0.4"
    assert run_folder(tmp_path, "ce", "digits", "pairflip:0.4", 2) == tmp_path / "ce" / "digits_pairflip-0.4_s2"
    assert run_folder(tmp_path, "ce", "digits", "none", 0, variant="cifar10").parent.name == "ce+cifar10"
    ce = profile_method("ce", "smoke")
    assert ce.preset == "digits" and ce.config.epochs == 4
    other = profile_method("ce", "smoke", preset="cifar10")  # another preset, the profile's overrides kept
    assert other.preset == "cifar10" and other.config.model == "preact_resnet18" and other.config.epochs == 4
    assert profile_method("ce", "quick", lr=0.01).config.lr == 0.01
    assert profile_method("ce", "paper", dataset="cifar10").preset == "cifar10"
    with pytest.raises(ValueError, match="no plan for method"):
        profile_method("nosuch", "quick")


def test_cli_dry_run_and_bad_jobs(tmp_path, capsys):
    assert main(["reproduce", "--profile", "smoke", "--out", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "to do     00_quickstart/digits_symmetric-0.4_s0" in out and "01_label_noise" in out
    assert main(["reproduce", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_cli_run_with_a_profile_trains_the_cell_as_the_batch_does(tmp_path, capsys):
    out = tmp_path / "uniform"
    args = ["run", "--profile", "smoke", "--method", "prune:uniform", "--noise", "pairflip:0.4", "--seed", "1"]
    assert main([*args, "--out", str(out), "--set", "ratio=0.3", "--quiet"]) == 0
    config = load_run(out).config
    smoke = PROFILES["smoke"].methods["prune:uniform"]
    assert config["preset"] == smoke.preset and config["noise"] == "pairflip:0.4" and config["seed"] == 1
    hp = config["hyperparameters"]
    assert hp["epochs"] == smoke.overrides["epochs"] and hp["warmup_epochs"] == smoke.overrides["warmup_epochs"]
    assert hp["ratio"] == 0.3  # --set on top of the profile
    # the same cell as `reproduce` plans it: same hyperparameters
    planned = profile_method("prune:uniform", "smoke", "digits", "pairflip:0.4", ratio=0.3).config
    for key in ("epochs", "warmup_epochs", "ratio", "lr", "batch_size", "selector"):
        assert hp[key] == getattr(planned, key), key
    with pytest.raises(SystemExit):  # argparse: not a profile
        main(["run", "--profile", "huge", "--method", "ce", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_cli_run_several_methods_into_the_batch_layout(tmp_path, capsys, monkeypatch):
    root = tmp_path / "runs"
    args = ["run", "--profile", "smoke", "--noise", "symmetric:0.4", "--runs-root", str(root), "--quiet"]
    assert main([*args, "--method", "ce,prune:uniform"]) == 0
    folders = {m: run_folder(root, m, "digits", "symmetric:0.4", 0) for m in ("ce", "prune:uniform")}
    assert all(load_run(f).complete for f in folders.values())
    assert (
        load_run(folders["ce"]).config["hyperparameters"]["epochs"]
        == PROFILES["smoke"].methods["ce"].overrides["epochs"]
    )
    capsys.readouterr()
    # a rerun skips the complete runs; a method that fails does not stop the next one, and the exit code says so
    import lnlkit.methods.ce as ce_module

    def broken(self, ctx, epoch):
        raise RuntimeError("deliberate failure")

    monkeypatch.setattr(ce_module.CE, "train_epoch", broken)
    code = main([*args, "--method", "ce,prune:uniform,dividemix", "--noise", "pairflip:0.4"])
    captured = capsys.readouterr()
    assert code == 1 and "FAILED ce" in captured.out and "1 of 3 method(s) failed: ce" in captured.err
    assert load_run(run_folder(root, "dividemix", "digits", "pairflip:0.4", 0)).complete
    assert main([*args, "--method", "ce,prune:uniform"]) == 0
    assert "is complete, skipped" in capsys.readouterr().out
    # bad input before any training: several methods need --runs-root, an unknown method is named
    assert main(["run", "--method", "ce,smr", "--out", str(tmp_path / "x")]) == 2
    assert "several methods need --runs-root" in capsys.readouterr().err
    assert main([*args, "--method", "ce,nosuch"]) == 2
    assert not (root / "nosuch").exists()


def test_the_label_noise_notebook_has_a_size_for_every_profile():
    import ast

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "01_label_noise.ipynb", as_version=4)
    (source,) = [c.source for c in nb.cells if c.cell_type == "code" and "SIZES = {" in c.source]
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.startswith("%")))  # no magics
    (sizes,) = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "SIZES"]
    assert set(ast.literal_eval(sizes)) == set(PROFILES)


def test_committed_notebooks_have_no_outputs_and_one_parameters_cell():
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    notebooks = sorted(folder.glob("*.ipynb"))
    assert {p.name for p in notebooks} >= {"00_quickstart.ipynb", "01_label_noise.ipynb", "99_results.ipynb"}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name} carries outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged parameters"
        assert "profile" in tagged[0].source, path.name


def test_main_preset_runs_drops_variants_for_the_figures():
    from lnlkit.reproduce import main_preset_runs

    table = pd.DataFrame(
        {
            "method": ["ce", "dividemix", "dividemix", "smr", "mine"],
            "preset": ["digits", "digits", "digits-recal", "digits", "whatever"],
        }
    )
    kept = main_preset_runs(table, "quick")
    assert list(zip(kept["method"], kept["preset"])) == [
        ("ce", "digits"),
        ("dividemix", "digits"),
        ("smr", "digits"),
        ("mine", "whatever"),
    ]
    assert len(main_preset_runs(table, "paper")) == 5  # the paper profile picks presets per setting
    assert len(main_preset_runs(table, "my-own-profile")) == 5

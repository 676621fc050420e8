"""`lnlkit reproduce` beyond one worker: the device pool (GPUs simulated by CPU workers), the SLURM executor on a
real one-node SLURM cluster started on localhost, interrupted batches that resume, and the checks that refuse bad
input before anything starts."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from slurm_cluster import ClusterUnavailable, start_cluster

from lnlkit.cli import main
from lnlkit.reproduce import (
    Grid,
    NotebookSpec,
    SlurmOptions,
    check_data,
    parse_devices,
    plan_jobs,
    reproduce,
    summary_table,
)

REPO = Path(__file__).resolve().parents[1]
CELL = ("digits", "symmetric:0.4", 0)
# each job of the pool gets cpu_count // 2 threads; SLURM jobs get as many, so both train alike
THREADS = max(1, (os.cpu_count() or 1) // 2)


# ------------------------------------------------------------------------------------------- notebooks
def _write_notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\ndataset = "digits"\nnoise = "symmetric:0.4"\nseed = 0\ndevice = "auto"\nruns_root = "."'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


# CE with the smoke profile; while <runs_root>/hold exists it waits after its second epoch (its first is checkpointed)
# so a test can interrupt it mid-run; it notes whether it started from a checkpoint (resumed) in starts.jsonl
_SLOW_CE = """
import json, time
from pathlib import Path
import lnlkit
from lnlkit.reproduce import profile_method, run_folder
out = run_folder(runs_root, "ce+slow", dataset, noise, seed)
with open(Path(runs_root) / "starts.jsonl", "a") as f:
    f.write(json.dumps({"checkpoint": (out / "checkpoint.pt").exists()}) + "\\n")
noisy = lnlkit.load_dataset(dataset).with_noise(noise, seed=seed)
method = profile_method("ce", profile, dataset=dataset, noise=noise, epochs=6)
def hold(record):
    while record["epoch"] >= 1 and Path(runs_root, "hold").exists():
        time.sleep(0.2)
method.fit(noisy, out=out, device=device, resume=True, progress=False, callbacks=[hold])
"""


def _notebooks(folder: Path) -> tuple[Path, tuple[NotebookSpec, ...]]:
    """The smoke batch's quickstart notebook and a slow CE notebook, one grid cell each."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "notebooks" / "00_quickstart.ipynb", folder)
    _write_notebook(folder / "slow_ce.ipynb", _SLOW_CE)
    return folder, (
        NotebookSpec("00_quickstart.ipynb", methods=("ce",)),
        NotebookSpec("slow_ce.ipynb", methods=("ce+slow",)),
    )


def _slow_run(runs_root: Path) -> Path:
    return runs_root / "ce+slow" / "digits_symmetric-0.4_s0"


def _starts(runs_root: Path) -> list[dict]:
    return [json.loads(line) for line in (runs_root / "starts.jsonl").read_text().splitlines()]


def _wait_for(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def _mid_run(runs_root: Path) -> bool:
    """The slow run has a checkpoint and is not finished."""
    run = _slow_run(runs_root)
    return (
        (run / "checkpoint.pt").exists()
        and not (run / "result.json").exists()
        or ((run / "result.json").exists() and json.loads((run / "result.json").read_text())["status"] != "complete")
    )


@pytest.fixture
def simulated_gpus(monkeypatch):
    monkeypatch.setenv("LNLKIT_SIMULATED_GPUS", "2")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The two-notebook batch run once without interruption on two (simulated) GPUs: the reference tables."""
    root = tmp_path_factory.mktemp("reference")
    nb_dir, specs = _notebooks(root / "notebooks")
    before = os.environ.get("LNLKIT_SIMULATED_GPUS")
    os.environ["LNLKIT_SIMULATED_GPUS"] = "2"
    try:
        outcomes = reproduce(
            "smoke",
            out=root / "runs",
            notebooks_dir=nb_dir,
            notebooks=specs,
            table=False,
            run_results=False,
            devices="cuda:0,cuda:1",
            echo=lambda _: None,
            timeout=300,
        )
    finally:
        if before is None:
            os.environ.pop("LNLKIT_SIMULATED_GPUS")
        else:
            os.environ["LNLKIT_SIMULATED_GPUS"] = before
    assert [o.status for o in outcomes] == ["ok", "ok"], [o.error for o in outcomes]
    return summary_table(root / "runs" / "smoke")


# ------------------------------------------------------------------------------------------- bad input (fast)
@pytest.mark.parametrize(
    "args, message",
    [
        (["--executor", "kubernetes"], "unknown executor 'kubernetes'; choose one of local, slurm"),
        (["--devices", "cuda:2"], "--devices names cuda:2, but this machine has 2 GPU(s): cuda:0, cuda:1"),
        (["--devices", "tpu:0"], "unknown device 'tpu:0'"),
        (["--devices", "cuda:0", "--jobs", "2"], "--jobs counts CPU workers"),
        (["--partition", "gpu"], "need --executor slurm"),
        (["--executor", "slurm", "--devices", "cuda:0"], "--devices is for the local executor"),
        (["--slurm", "account"], "--slurm takes KEY=VALUE"),
    ],
)
def test_bad_executor_input_is_one_line_and_starts_nothing(tmp_path, capsys, simulated_gpus, args, message):
    assert main(["reproduce", "--profile", "smoke", "--out", str(tmp_path / "runs"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_slurm_without_submitit_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    assert (
        main(
            [
                "reproduce",
                "--profile",
                "smoke",
                "--out",
                str(tmp_path / "runs"),
                "--executor",
                "slurm",
                "--partition",
                "gpu",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "needs submitit: pip install 'lnlkit[cluster]'" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_parse_devices(simulated_gpus):
    assert parse_devices("all") == ["cuda:0", "cuda:1"]
    assert parse_devices("cuda:1, cuda:1,cpu") == ["cuda:1", "cuda:1", "cpu"]
    assert parse_devices(["cuda"]) == ["cuda:0"]
    with pytest.raises(ValueError, match="empty"):
        parse_devices(" , ")


def test_paper_profile_without_data_lists_everything_missing_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LNLKIT_DATA", str(tmp_path / "empty"))
    assert main(["reproduce", "--profile", "paper", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing was started" in err and "CIFAR-10 not found" in err
    jobs = [j for j in plan_jobs("paper", tmp_path) if "dataset" in j.parameters]
    assert len(jobs) > 1 and "needed by data set cifar10" in err
    assert not (tmp_path / "runs").exists()


def test_missing_label_file_and_data_set_in_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LNLKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("LNLKIT_CIFARN_DIR", str(tmp_path / "empty"))
    specs = (
        NotebookSpec(
            "a.ipynb", methods=("ce",), grids={"smoke": Grid("digits", ("cifar10n:worst", "symmetric:0.2"), (0,))}
        ),
        NotebookSpec("b.ipynb", methods=("ce",), grids={"smoke": Grid("cifar100", ("symmetric:0.2",), (0,))}),
    )
    jobs = plan_jobs("smoke", tmp_path, notebooks=specs, table=False)
    with pytest.raises(FileNotFoundError) as err:
        check_data(jobs, tmp_path / "empty")
    text = str(err.value)
    assert text.startswith("2 input(s)") and "CIFAR-10_human.pt" in text and "digits with cifar10n:worst" in text
    assert "CIFAR-100" in text and "data set cifar100" in text and "symmetric:0.2)" not in text.split("CIFAR-100")[0]
    check_data([j for j in jobs if j.parameters["noise"] == "symmetric:0.2" and j.parameters["dataset"] == "digits"])


# ------------------------------------------------------------------------------------------- the device pool
_PROBE = """
import json, os, time
from pathlib import Path
t0 = time.time()
time.sleep(1.0)
Path(runs_root, f"probe_{seed}.json").write_text(json.dumps({
    "slot": os.environ["LNLKIT_DEVICE_SLOT"], "visible": os.environ["CUDA_VISIBLE_DEVICES"], "device": device,
    "t0": t0, "t1": time.time()}))
Path(runs_root, "ce", f"digits_none_s{seed}").mkdir(parents=True, exist_ok=True)
Path(runs_root, "ce", f"digits_none_s{seed}", "result.json").write_text('{"status": "complete"}')
"""


@pytest.mark.slow
def test_device_pool_gives_each_job_one_device_for_its_lifetime(tmp_path, simulated_gpus):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _write_notebook(nbs / "probe.ipynb", _PROBE)
    spec = NotebookSpec("probe.ipynb", methods=("ce",), grids={"smoke": Grid("digits", ("none",), (0, 1, 2, 3))})
    lines: list[str] = []
    outcomes = reproduce(
        "smoke",
        out=tmp_path / "runs",
        notebooks_dir=nbs,
        notebooks=(spec,),
        table=False,
        run_results=False,
        devices="all",
        echo=lines.append,
        timeout=300,
        check_inputs=False,
    )
    assert [o.status for o in outcomes] == ["ok"] * 4, [o.error for o in outcomes]
    probes = [json.loads((tmp_path / "runs" / "smoke" / f"probe_{s}.json").read_text()) for s in range(4)]
    assert {p["slot"] for p in probes} <= {"cuda:0", "cuda:1"}
    for p in probes:
        assert p["visible"] == p["slot"].split(":")[1] and p["device"] == "cpu"  # simulated GPUs train on the CPU
    for i, a in enumerate(probes):  # jobs that overlap in time never share a device
        for b in probes[i + 1 :]:
            if a["t0"] < b["t1"] and b["t0"] < a["t1"]:
                assert a["slot"] != b["slot"]
    assert any("one per device on cuda:0, cuda:1" in line for line in lines)


@pytest.mark.slow
def test_local_batch_killed_half_way_resumes_without_retraining(tmp_path, uninterrupted):
    nb_dir, specs = _notebooks(tmp_path / "notebooks")
    runs_root = tmp_path / "runs" / "smoke"
    env = {**os.environ, "LNLKIT_SIMULATED_GPUS": "2", "PYTHONPATH": str(REPO)}
    code = (
        "import sys; from lnlkit.reproduce import reproduce, NotebookSpec\n"
        f"reproduce('smoke', out={str(tmp_path / 'runs')!r}, notebooks_dir={str(nb_dir)!r}, notebooks={specs!r}, "
        "table=False, run_results=False, devices='cuda:0,cuda:1')"
    )
    runs_root.mkdir(parents=True)
    (runs_root / "hold").touch()
    batch = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        start_new_session=True,
        stdout=open(tmp_path / "batch.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        quick = runs_root / "_notebooks" / "00_quickstart__digits_symmetric-0.4_s0.done.json"
        _wait_for(
            lambda: quick.exists() and _mid_run(runs_root) or batch.poll() is not None,
            240,
            "quickstart done and the slow run mid-way",
        )
        assert batch.poll() is None, (tmp_path / "batch.log").read_text()
    finally:
        os.killpg(batch.pid, signal.SIGKILL)  # the whole batch: driver, papermill and kernels
        batch.wait(timeout=30)
    (runs_root / "hold").unlink()
    finished = runs_root / "ce" / "digits_symmetric-0.4_s0" / "history.jsonl"
    stamp = finished.stat().st_mtime_ns
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LNLKIT_SIMULATED_GPUS", "2")
        again = reproduce(
            "smoke",
            out=tmp_path / "runs",
            notebooks_dir=nb_dir,
            notebooks=specs,
            table=False,
            run_results=False,
            devices="cuda:0,cuda:1",
            echo=lines.append,
            timeout=300,
        )
    assert {o.job.name.split("/")[0]: o.status for o in again} == {"00_quickstart": "skipped", "slow_ce": "ok"}
    assert finished.stat().st_mtime_ns == stamp  # the finished run was not retrained
    assert _starts(runs_root) == [{"checkpoint": False}, {"checkpoint": True}]  # the slow run resumed
    assert len((_slow_run(runs_root) / "history.jsonl").read_text().splitlines()) == 6
    assert summary_table(runs_root).equals(uninterrupted)


# ------------------------------------------------------------------------------------------- SLURM
@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    pytest.importorskip("submitit", reason="submitit not installed (pip install 'lnlkit[cluster]')")
    root = Path(f"/tmp/lnlslurm-{os.getpid()}")  # short: slurmd's socket path must fit in sun_path
    shutil.rmtree(root, ignore_errors=True)
    try:
        cluster = start_cluster(root, cpus=2 * THREADS)
    except ClusterUnavailable as err:
        pytest.skip(f"no local SLURM cluster: {err}")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_unknown_partition_is_refused_before_submitting(slurm, tmp_path, capsys):
    assert (
        main(
            [
                "reproduce",
                "--profile",
                "smoke",
                "--out",
                str(tmp_path / "runs"),
                "--executor",
                "slurm",
                "--partition",
                "nosuch",
                "--time",
                "5",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"partition 'nosuch' not on this cluster; sinfo lists {slurm.partition}" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
    assert slurm.run("squeue", "-h", "-t", "all").stdout.strip() == ""


@pytest.mark.slow
def test_slurm_batch_survives_a_cancelled_job_and_matches_the_local_tables(slurm, tmp_path, uninterrupted, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the jobs import this checkout's lnlkit
    nb_dir, specs = _notebooks(tmp_path / "notebooks")
    runs_root = tmp_path / "runs" / "smoke"
    lines: list[str] = []
    options = SlurmOptions(partition=slurm.partition, gpus_per_job=0, cpus_per_job=THREADS, time_min=10, poll_s=1.0)
    result: dict = {}
    runs_root.mkdir(parents=True)
    (runs_root / "hold").touch()

    def batch():
        try:
            result["outcomes"] = reproduce(
                "smoke",
                out=tmp_path / "runs",
                notebooks_dir=nb_dir,
                notebooks=specs,
                table=False,
                run_results=False,
                executor="slurm",
                slurm=options,
                echo=lines.append,
                timeout=300,
                progress=False,
            )
        except BaseException as err:  # surfaced below
            result["error"] = err

    driver = threading.Thread(target=batch)
    driver.start()
    _wait_for(lambda: _mid_run(runs_root) or not driver.is_alive(), 240, "the slow SLURM job mid-run")
    assert driver.is_alive(), result
    (submitted,) = [line for line in lines if line.startswith("submit slow_ce/")]
    job_id = submitted.split("SLURM job ")[1].split(",")[0]
    assert Path(submitted.split(", log ")[1].split(" (")[0]).parent.is_dir()  # the job's log path is written
    assert slurm.run("scancel", job_id).returncode == 0
    time.sleep(3.0)  # let SLURM end the job before the hold is lifted, so the resubmitted job is the one to finish
    (runs_root / "hold").unlink()
    driver.join(timeout=300)
    assert not driver.is_alive() and "error" not in result, result
    status = {o.job.name.split("/")[0]: o.status for o in result["outcomes"]}
    assert status == {"00_quickstart": "ok", "slow_ce": "ok"}, ([o.error for o in result["outcomes"]], lines)
    assert any(line.startswith(f"lost  slow_ce/digits_symmetric-0.4_s0: SLURM job {job_id} ") for line in lines)
    assert _starts(runs_root) == [{"checkpoint": False}, {"checkpoint": True}]  # resubmitted, resumed
    assert len((_slow_run(runs_root) / "history.jsonl").read_text().splitlines()) == 6
    assert summary_table(runs_root).equals(uninterrupted)


@pytest.mark.slow
def test_slurm_detect_trains_one_job_per_method_then_tabulates(slurm, tmp_path, monkeypatch, capsys):
    """``lnlkit detect --executor slurm``: each method a SLURM job (Co-mining in a second stage, at the first stage's
    noise-rate estimate), then label_issues.csv here; a rerun submits nothing."""
    import functools

    import numpy as np
    import pandas as pd
    from PIL import Image

    import lnlkit
    from lnlkit import reproduce as rp

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the jobs import this checkout's lnlkit
    monkeypatch.setattr(rp, "SlurmOptions", functools.partial(rp.SlurmOptions, poll_s=1.0))
    digits = lnlkit.load_dataset("digits")
    root = tmp_path / "imgs"
    for d in range(3):
        (root / f"c{d}").mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(digits.y_train == d)[:20]):
            Image.fromarray((digits.x_train[i, 0] * 15).astype(np.uint8), "L").save(root / f"c{d}" / f"{j}.png")
    out = tmp_path / "labels"
    args = ["detect", str(root), "--methods", "sop,comining", "--set", "sop.epochs=3", "--set", "comining.epochs=2"]
    args += ["--set", "comining.warmup_epochs=1", "--out", str(out), "--executor", "slurm", "--partition"]
    args += [slurm.partition, "--gpus-per-job", "0", "--cpus-per-job", str(THREADS), "--time", "10", "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out.count("submit detect/") == 2
    frame = pd.read_csv(out / "label_issues.csv")
    assert len(frame) == 60 and {"score_sop", "score_comining"} <= set(frame.columns)
    config = json.loads(next((out / "runs" / "comining").glob("*/config.json")).read_text())
    assert config["hyperparameters"]["forget_rate"] == pytest.approx(frame["flag_sop"].mean())
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["comining_s0.log", "sop_s0.log"]
    assert main(args) == 0  # complete: nothing submitted
    again = capsys.readouterr().out
    assert again.count("skip  detect/") == 2 and "submit" not in again

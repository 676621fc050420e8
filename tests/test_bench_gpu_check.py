"""bench/gpu_check.py at its tiniest CPU size: it runs and writes its markdown tables (speed is not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_gpu_check_writes_tables_on_cpu(tmp_path):
    proc = _run(
        "--device",
        "cpu",
        "--methods",
        "comining",
        "--n",
        "48",
        "--n-test",
        "16",
        "--epochs",
        "1",
        "--max-steps",
        "1",
        "--compare-steps",
        "2",
        "--reps",
        "1",
        "--set",
        "batch_size=16",
        "eval_batch_size=16",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = list(tmp_path.glob("cpu-*.md"))
    assert len(files) == 1 and not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftover
    text = files[0].read_text()
    lines = text.splitlines()
    head = next(line for line in lines if line.startswith("| method | preset"))
    assert [c.strip() for c in head.strip("|").split("|")] == [
        "method",
        "preset",
        "model",
        "batch",
        "phase",
        "epochs",
        "batches measured / full",
        "s/epoch",
        "img/s",
        "× ideal",
        "fb/img",
        "f/img",
        "peak GiB",
    ]
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| comining | cifar10nc")]
    assert {r[4].strip() for r in rows} == {"warmup", "train"}  # one row per phase
    for r in rows:
        assert r[2].strip() == "cnn7" and r[6].strip() == "1 / 3"  # the paper backbone; 48 images in batches of 16
        assert float(r[7]) > 0 and float(r[9]) > 0
        assert float(r[10]) == pytest.approx(2.0)  # Co-mining trains two networks on every batch
    compare = next(line for line in lines if line.startswith("| comining | 2 |"))
    assert float(compare.split("|")[5]) >= 0.0
    assert text.strip() in proc.stdout  # printed as well


def test_gpu_check_without_gpu_stops_with_a_message(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = _run("--device", "cuda", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())

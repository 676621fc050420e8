"""``lnlkit detect`` on a folder of images written as PNG files and on a CSV table, as a new user runs it: the
documented label_issues.csv, the same ranking as ``find_label_issues``, one-line errors, the device pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import lnlkit
from lnlkit import detect

NAMES = ("zero", "one", "two")
# SOP+ shortened (its auto preset runs 60 epochs on 150 samples) and Me-Momentum as auto sizes it: seconds per run
METHODS = "sop,mememomentum"
SETS = ["--set", "sop.epochs=30"]
OVERRIDES = {"sop": {"epochs": 30}}
# the device-pool test checks the plumbing only: a few epochs
FAST = ["--set", "sop.epochs=3", "--set", "mememomentum.outer_loops=1", "--set", "mememomentum.max_phase_a_epochs=2",
        "--set", "mememomentum.round_epochs=1", "--set", "mememomentum.round_milestones=()"]  # fmt: skip
COLUMNS = [
    "sample_id", "given_label", "given_class", "suggested_label", "suggested_class", "suggested_prob",
    "score_sop", "score_mememomentum", "flag_sop", "flag_mememomentum", "consensus", "n_flags", "is_issue", "rank",
]  # fmt: skip


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "lnlkit", "detect", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def wrong_folder(tmp_path_factory):
    """Digits 0-2 as PNG files, one sub-folder per class, with every fifth image filed under the wrong class."""
    digits = lnlkit.load_dataset("digits")
    root = tmp_path_factory.mktemp("pngs") / "my_digits"
    moved = {}
    for d, name in enumerate(NAMES):
        for j, i in enumerate(np.flatnonzero(digits.y_train == d)[:50]):
            wrong = j % 5 == 0
            folder = NAMES[(d + 1) % 3] if wrong else name
            rel = f"{folder}/{name}_{j:03d}.png"
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray((digits.x_train[i, 0].astype(np.int64) * 255 // 16).astype(np.uint8), "L").save(root / rel)
            moved[rel] = wrong
    return root, moved


def test_detect_on_a_folder_writes_the_documented_file_and_matches_the_api(wrong_folder, tmp_path):
    root, moved = wrong_folder
    out = tmp_path / "labels"
    proc = _cli(str(root), "--methods", METHODS, *SETS, "--out", str(out), "--device", "cpu", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "labels look wrong" in proc.stdout
    frame = pd.read_csv(out / "label_issues.csv")
    assert list(frame.columns) == COLUMNS
    assert set(frame["sample_id"]) == set(moved)  # ids are the files' paths relative to the folder
    assert set(frame["given_class"]) == set(NAMES)
    # the misfiled images rank first: precision of the 30 lowest consensus scores
    top = frame.nsmallest(30, "rank")["sample_id"]
    assert np.mean([moved[s] for s in top]) > 0.8
    # and their suggested class is the folder they came from
    flagged = frame[frame["is_issue"] & frame["sample_id"].map(moved)]
    assert (flagged["suggested_class"] == flagged["sample_id"].str.split("/").str[1].str.split("_").str[0]).mean() > 0.8
    summary = json.loads((out / "label_summary.json").read_text())
    assert summary["n_samples"] == len(moved) and summary["methods"] == ["sop", "mememomentum"]
    # the Python API on the same folder and output reads the same runs back: the same ranking
    api = detect.find_label_issues(
        lnlkit.load_folder(root),
        methods=["sop", "mememomentum"],
        overrides=OVERRIDES,
        out=out,
        device="cpu",
        progress=False,
    )
    assert api["sample_id"].tolist() == frame["sample_id"].tolist()
    np.testing.assert_allclose(api["consensus"].to_numpy(), frame["consensus"].to_numpy(), rtol=1e-5)


def test_detect_on_a_table_with_class_names(tmp_path):
    digits = lnlkit.load_dataset("digits")
    keep = np.flatnonzero(digits.y_train < 3)[:150]
    x = digits.x_train[keep].reshape(len(keep), -1).astype(float)
    y = digits.y_train[keep].copy()
    wrong = np.arange(len(y)) % 6 == 0
    y[wrong] = (y[wrong] + 1) % 3
    table = pd.DataFrame(x, columns=[f"px{i}" for i in range(64)])
    table.insert(0, "item", [f"row-{i}" for i in range(len(y))])
    table["digit"] = [NAMES[v] for v in y]
    csv = tmp_path / "table.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "labels"
    args = ["--label", "digit", "--id-column", "item", "--methods", METHODS, *SETS, "--out", str(out)]
    proc = _cli(str(csv), *args, "--device", "cpu", "--quiet")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out / "label_issues.csv")
    assert list(frame.columns) == COLUMNS
    assert frame["sample_id"].str.startswith("row-").all()
    truth = pd.Series(wrong, index=[f"row-{i}" for i in range(len(y))])
    top = frame.nsmallest(int(wrong.sum()), "rank")["sample_id"]
    assert truth[top].mean() > 0.7


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "sop,nope"], "unknown method"),
        (["--set", "epochs=3"], "METHOD.KEY=VALUE"),
        (["--set", "smr.epochs=3", "--methods", "sop"], "not among --methods"),
        (["--set", "sop.nope=3", "--methods", "sop"], "unknown setting"),
    ],
)
def test_bad_arguments_are_one_line_errors(wrong_folder, tmp_path, args, message):
    root, _ = wrong_folder
    proc = _cli(str(root), "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_one_class_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "only" / "a.png")
    proc = _cli(str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "at least 2 classes" in proc.stderr and "Traceback" not in proc.stderr


def test_detect_on_device_slots_trains_as_batch_jobs(wrong_folder, tmp_path):
    """--devices: one `lnlkit detect --train-only` job per method and seed on the slots, then the table here."""
    root, _ = wrong_folder
    out = tmp_path / "labels"
    proc = _cli(str(root), "--methods", METHODS, *SETS, "--out", str(out), "--devices", "cpu,cpu", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "logs" / "sop_s0.log").exists() and (out / "logs" / "mememomentum_s0.log").exists()
    assert len(pd.read_csv(out / "label_issues.csv")) == 150
    again = _cli(str(root), "--methods", METHODS, *SETS, "--out", str(out), "--devices", "cpu,cpu", "--quiet")
    assert again.returncode == 0 and again.stdout.count("skip  detect/") == 2

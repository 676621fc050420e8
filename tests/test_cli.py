"""The `lnlkit` command line: run, table, noise, list — and clear errors that leave nothing behind."""

import json
import subprocess
import sys

import pytest

from lnlkit.cli import main
from lnlkit.train.recorder import RUN_FILES


def test_run_then_table(tmp_path, capsys):
    out = tmp_path / "ce"
    assert (
        main(
            [
                "run",
                "--method",
                "ce",
                "--dataset",
                "digits",
                "--noise",
                "pairflip:0.3",
                "--seed",
                "1",
                "--out",
                str(out),
                "--epochs",
                "2",
                "--set",
                "lr=0.02",
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and str(out) in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "digits" and cfg["hyperparameters"]["lr"] == 0.02 and cfg["hyperparameters"]["epochs"] == 2
    for fmt, marker in (("md", "| method |"), ("csv", "method,preset"), ("latex", "\\begin{tabular}")):
        assert main(["table", str(tmp_path), "--format", fmt]) == 0
        assert marker in capsys.readouterr().out
    assert main(["table", str(tmp_path), "--runs"]) == 0
    assert "pairflip:0.3" in capsys.readouterr().out


def test_noise_command_prints_rate_and_matrix(capsys):
    assert main(["noise", "--dataset", "digits", "--noise", "pairflip:0.4", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "realised rate: 0.4" in out and "transition matrix" in out


def test_list_and_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "lnlkit", "list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ce" in done.stdout and "digits" in done.stdout and "symmetric-inclusive" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--noise", "symmetric:1.5"], "[0, 1]"),
        (["--noise", "gaussian:0.2"], "unknown noise kind"),
        (["--method", "nosuchmethod"], "unknown method"),
        (["--set", "learning_rate=0.1"], "unknown setting 'learning_rate'"),
        (["--set", "lr"], "key=value"),
        (["--set", "epochs=many"], "epochs"),
        (["--preset", "imagenet"], "unknown preset"),
        (["--dataset", "cifar10", "--root", "{tmp}/nowhere"], "data_batch_1"),
        (["--dataset", "mnist"], "unknown data set"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    base = {"--method": "ce", "--dataset": "digits", "--noise": "symmetric:0.4", "--out": str(out)}
    extra = [a.replace("{tmp}", str(tmp_path)) for a in args]
    for flag in list(base):
        if flag in extra:
            base.pop(flag)
    argv = ["run", *[x for kv in base.items() for x in kv], *extra, "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and message in err
    assert not out.exists(), "a failed command must not leave a run folder"


def test_cifarn_on_digits_is_a_clear_error(capsys, tmp_path):
    assert main(["noise", "--dataset", "digits", "--noise", "cifar10n:worst"]) == 2
    assert "CIFAR-10_human.pt" in capsys.readouterr().err


def test_table_on_missing_folder(capsys, tmp_path):
    assert main(["table", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_run_folder_files_are_complete_after_cli(tmp_path):
    out = tmp_path / "r"
    assert (
        main(["run", "--method", "ce", "--noise", "symmetric:0.2", "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    )
    assert all((out / f).is_file() for f in RUN_FILES)


def test_set_option_the_model_cannot_take_is_a_one_line_error(tmp_path, capsys):
    """``--set weights_path=FILE`` on digits (whose ``small_cnn`` loads no ImageNet weights): exit code 2, one line,
    no traceback, and no run folder (not even its lock file)."""
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not read")
    out = tmp_path / "run"
    argv = ["run", "--method", "ce", "--dataset", "digits", "--out", str(out), "--quiet"]
    assert main([*argv, "--set", f"weights_path={weights}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "small_cnn" in err and "weights_path" in err
    assert not out.exists(), "a failed command must not leave a run folder"

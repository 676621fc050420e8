"""Results criteria of the CE baseline on the embedded digits (fixed seeds, CPU, deterministic)."""

import json

from lnlkit.cli import main


def _result(out):
    return json.loads((out / "result.json").read_text())


def test_ce_memorises_noise_on_digits(tmp_path):
    # the command: best test accuracy is at least 10 points above the last (memorisation)
    out = tmp_path / "ce-sym40"
    assert (
        main(
            [
                "run",
                "--method",
                "ce",
                "--dataset",
                "digits",
                "--noise",
                "symmetric:0.4",
                "--seed",
                "0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    res = _result(out)
    assert res["status"] == "complete" and res["epochs_done"] == 100
    assert res["test_acc_best"] - res["test_acc_last"] >= 10.0, res
    assert res["test_acc_best"] >= 90.0, res  # early in training it is still a good classifier
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert history[-1]["train_acc_given"] > 95.0  # it ends up fitting the noisy labels


def test_ce_is_strong_on_clean_digits(tmp_path):
    out = tmp_path / "ce-clean"
    assert (
        main(
            [
                "run",
                "--method",
                "ce",
                "--dataset",
                "digits",
                "--noise",
                "none",
                "--seed",
                "0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert _result(out)["test_acc_last"] >= 98.0, _result(out)

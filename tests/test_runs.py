"""lnlkit.runs: the tables' rendering, and the CE comparison's check that the runs share the labels."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lnlkit.reproduce import compare_with_ce
from lnlkit.runs import RunResult, format_table


def test_format_table_renders_md_csv_and_refuses_other_formats():
    frame = pd.DataFrame({"method": ["ce", "smr"], "reported": [71.234, float("nan")]})
    assert format_table(frame, "md") == "| method | reported |\n|---|---|\n| ce | 71.23 |\n| smr |  |\n"
    assert format_table(frame, "csv").splitlines()[1] == "ce,71.234"
    with pytest.raises(ValueError, match="unknown table format 'html'"):
        format_table(frame, "html")


def test_compare_with_ce_refuses_runs_on_other_labels(tmp_path):
    run = RunResult(Path("r"), {"noise": "symmetric:0.2", "noise_seed": 0}, [], {}, np.zeros(3), None, None)
    data = SimpleNamespace(noise=SimpleNamespace(spec="symmetric:0.4"), seed=0)
    with pytest.raises(ValueError, match="trained on symmetric:0.2"):
        compare_with_ce(run, data, profile="smoke", runs_root=tmp_path, dataset="digits", noise="symmetric:0.4", seed=0)
    assert not any(tmp_path.iterdir())  # nothing trained

"""notebooks/20_find_label_errors.ipynb executed at smoke size with papermill on the demo folder (the table path
is exercised through the CLI): it loads, detects with two kit methods and cleanlab, reviews, retrains and checks the
result against the demo's truth."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "20_find_label_errors.ipynb"


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("source", ["demo-folder"])  # the table path: tests/test_detect_cli.py
def test_notebook_20_runs_at_smoke_size(tmp_path, source, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("LNLKIT_STATIC_WIDGETS", "1")  # the kernel inherits it: the browser renders static
    executed = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        parameters={
            "source": source,
            "profile": "smoke",
            "demo_size": 300,
            "methods": ["sop", "mememomentum", "cleanlab"],
            "device": "cpu",
            "out": str(tmp_path / "detect"),
        },
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
    )
    nb = nbformat.read(executed, as_version=4)
    text = _outputs(nb)
    assert "labels look wrong" in text and "given labels" in text and "corrected labels" in text
    frame = pd.read_csv(tmp_path / "detect" / "label_issues.csv")
    assert len(frame) == 300 and {"score_sop", "score_mememomentum", "score_cleanlab"} <= set(frame.columns)
    corrected = pd.read_csv(tmp_path / "detect" / "corrected_labels.csv")
    assert len(corrected) == 300 and list(corrected.columns) == ["path", "label"]
    assert "auroc" in text  # the demo's truth section ran


def test_notebook_20_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source

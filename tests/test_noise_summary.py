"""Tests for lnlkit.noise.noise_summary and for notebooks/01_label_noise.ipynb (executed at smoke size)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lnlkit.noise import SUMMARY_COLUMNS, NoiseSpec, inject_noise, noise_summary

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_label_noise.ipynb"


def shared_cifarn_dir() -> Path | None:
    """The CIFAR-N label files of ../shared (or $LNLKIT_CIFARN_DIR), None when absent."""
    env = os.environ.get("LNLKIT_CIFARN_DIR")
    folder = Path(env) if env else REPO.parent / "shared" / "data" / "cifar-n"
    return folder if (folder / "CIFAR-10_human.pt").is_file() else None


# ---------------------------------------------------------------------------------------------
# noise_summary
# ---------------------------------------------------------------------------------------------


def test_summary_rows_and_columns(digits):
    specs = ["symmetric:0.4", "symmetric-inclusive:0.4", "pairflip:0.4", "openset:0.2+symmetric:0.4", "none"]
    table = noise_summary(digits.y_train, specs, 10, seed=0)
    assert isinstance(table, pd.DataFrame)
    assert tuple(table.columns) == SUMMARY_COLUMNS
    assert table["spec"].tolist() == specs
    assert table["kind"].tolist() == ["symmetric", "symmetric-inclusive", "pairflip", "openset", "none"]
    assert table["options"].tolist() == [""] * 5
    assert table["classes_changed"].dtype == np.int64
    rows = table.set_index("spec")
    assert rows.loc["symmetric:0.4", "realized_rate"] == pytest.approx(0.4, abs=0.04)
    assert rows.loc["symmetric-inclusive:0.4", "realized_rate"] == pytest.approx(0.36, abs=0.03)
    assert rows.loc["pairflip:0.4", "classes_changed"] == 10
    assert rows.loc["openset:0.2+symmetric:0.4", "ood_fraction"] == pytest.approx(0.2, abs=0.02)
    assert rows.loc["openset:0.2+symmetric:0.4", "nominal_rate"] == pytest.approx(0.52)
    assert rows.loc["openset:0.2+symmetric:0.4", "min_diagonal"] == 0.0  # held-out classes keep nothing
    assert (rows.drop(index="openset:0.2+symmetric:0.4")["ood_fraction"] == 0.0).all()
    clean = rows.loc["none"]
    assert (clean["realized_rate"], clean["mean_diagonal"], clean["min_diagonal"], clean["classes_changed"]) == (
        0.0,
        1.0,
        1.0,
        0,
    )


def test_summary_matches_inject_noise(digits):
    y = digits.y_train
    spec = "pairflip:0.3"
    row = noise_summary(y, [spec], 10, seed=7).iloc[0]
    ref = inject_noise(y, spec, 10, seed=7)
    diag = np.diag(ref.transition)
    assert row["realized_rate"] == ref.realized_rate
    assert row["nominal_rate"] == pytest.approx(0.3)
    assert row["mean_diagonal"] == pytest.approx(diag.mean())
    assert row["min_diagonal"] == pytest.approx(diag.min())
    assert row["classes_changed"] == len(np.unique(y[ref.is_noisy]))
    # mean diagonal and realised rate agree on balanced-enough data: rate = sum_i pi_i (1 - T_ii)
    priors = np.bincount(y, minlength=10) / len(y)
    assert row["realized_rate"] == pytest.approx(priors @ (1 - diag))


def test_summary_classes_changed_counts_source_classes():
    y = np.repeat(np.arange(10), 500)
    rows = noise_summary(y, ["asym-cifar10:0.4", "asym-cifar10-bidirectional:0.4"], 10).set_index("spec")
    assert rows.loc["asym-cifar10:0.4", "classes_changed"] == 5  # bird, cat, deer, dog, truck
    assert rows.loc["asym-cifar10:0.4", "min_diagonal"] == pytest.approx(0.6, abs=0.05)
    assert rows.loc["asym-cifar10:0.4", "realized_rate"] == pytest.approx(0.2, abs=0.02)
    assert rows.loc["asym-cifar10-bidirectional:0.4", "classes_changed"] == 10
    assert rows.loc["asym-cifar10-bidirectional:0.4", "realized_rate"] == 0.4  # exactly int(R N) / N


def test_summary_diagonal_ignores_absent_classes():
    y = np.repeat([0, 1, 2], 200)  # classes 3 and 4 have no samples (their rows are all zero)
    row = noise_summary(y, ["none"], 5).iloc[0]
    assert row["mean_diagonal"] == 1.0 and row["min_diagonal"] == 1.0


def test_summary_options_global_and_per_spec(digits):
    y = digits.y_train
    table = noise_summary(y, ["symmetric:0.4", ("symmetric:0.4", {"recipe": "exact"})], 10, seed=3)
    assert table["options"].tolist() == ["", "recipe=exact"]
    assert table.loc[1, "realized_rate"] == int(0.4 * len(y)) / len(y)
    everywhere = noise_summary(y, ["symmetric:0.2", "symmetric:0.4"], 10, recipe="exact")
    assert everywhere["options"].tolist() == ["recipe=exact"] * 2
    assert everywhere["realized_rate"].tolist() == [int(r * len(y)) / len(y) for r in (0.2, 0.4)]
    # a per-spec option overrides the global one
    mixed = noise_summary(y, [("symmetric:0.4", {"recipe": "multinomial"})], 10, recipe="exact")
    assert mixed.loc[0, "options"] == "recipe=multinomial"
    assert mixed.loc[0, "realized_rate"] == inject_noise(y, "symmetric:0.4", 10, 0).realized_rate


def test_summary_single_spec_and_parsed_spec(digits):
    one = noise_summary(digits.y_train, "symmetric:0.4", 10)
    assert len(one) == 1 and one.loc[0, "spec"] == "symmetric:0.4"
    parsed = noise_summary(digits.y_train, [NoiseSpec(kind="pairflip", rate=0.2)], 10)
    assert parsed.loc[0, "spec"] == "pairflip:0.2"
    canonical = noise_summary(digits.y_train, [" Symmetric:0.40 "], 10)
    assert canonical.loc[0, "spec"] == "symmetric:0.4"


def test_summary_instance_needs_and_uses_features(digits):
    y = digits.y_train
    with pytest.raises(ValueError, match="features"):
        noise_summary(y, ["instance:0.4"], 10)
    table = noise_summary(
        y, ["instance:0.4", ("instance:0.4", {"normalize_inputs": True})], 10, features=digits.raw_features()
    )
    assert table["realized_rate"].between(0.3, 0.5).all()
    assert table.loc[0, "realized_rate"] == digits.with_noise("instance:0.4", seed=0).noise.realized_rate


def test_summary_superclass_uses_coarse_labels():
    y = np.repeat(np.arange(10), 100)
    coarse = y // 5
    row = noise_summary(y, ["asym-cifar100-superclass:0.3"], 10, coarse_labels=coarse).iloc[0]
    assert row["realized_rate"] == pytest.approx(0.3, abs=0.05)
    assert row["classes_changed"] == 10


def test_summary_is_deterministic_and_seeded(digits):
    y = digits.y_train
    a = noise_summary(y, ["symmetric:0.4", "pairflip:0.4"], 10, seed=1)
    b = noise_summary(y, ["symmetric:0.4", "pairflip:0.4"], 10, seed=1)
    c = noise_summary(y, ["symmetric:0.4", "pairflip:0.4"], 10, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["realized_rate"].equals(c["realized_rate"])


@pytest.mark.parametrize("specs", [[], (), iter([])])
def test_summary_empty_specs(specs):
    with pytest.raises(ValueError, match="specs is empty"):
        noise_summary(np.array([0, 1, 1, 0]), specs, 2)


def test_summary_errors(digits):
    y = digits.y_train
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise_summary(y, ["symmetric:0.4", "symetric:0.4"], 10)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        noise_summary(y, ["symmetric:40"], 10)
    with pytest.raises(ValueError, match="num_classes"):
        noise_summary(y, ["symmetric:0.4"], 5)  # labels out of range
    with pytest.raises(ValueError, match="spec string or a"):
        noise_summary(y, [("symmetric:0.4", "exact")], 10)
    with pytest.raises(ValueError, match="list of noise specs"):
        noise_summary(y, 0.4, 10)
    with pytest.raises(TypeError, match="recipe"):
        noise_summary(y, ["symmetric:0.4", "pairflip:0.4"], 10, recipe="exact")
    with pytest.raises(ValueError, match="10 CIFAR-10 classes"):
        noise_summary(y[y < 5], ["asym-cifar10:0.4"], 5)
    with pytest.raises(FileNotFoundError, match="CIFAR-10_human.pt"):
        noise_summary(np.repeat(np.arange(10), 5), ["cifar10n:worst"], 10)


def test_summary_checks_every_spec_before_injecting(digits, monkeypatch):
    import lnlkit.noise as noise_module

    calls = []
    monkeypatch.setattr(noise_module, "inject_noise", lambda *a, **k: calls.append(a))
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise_summary(digits.y_train, ["symmetric:0.4", "pairflip:0.4", "nonsense:0.1"], 10)
    assert calls == []


def test_summary_cifarn_rates():
    folder = shared_cifarn_dir()
    if folder is None:
        pytest.skip("CIFAR-N label files not found (set LNLKIT_CIFARN_DIR)")
    from lnlkit.noise import load_cifarn_labels

    _, clean = load_cifarn_labels(folder, "clean", dataset="cifar10n")
    table = noise_summary(clean, ["cifar10n:aggre", "cifar10n:worst"], 10, cifarn_file=folder).set_index("spec")
    assert math.isnan(table.loc["cifar10n:worst", "nominal_rate"])
    assert table.loc["cifar10n:worst", "realized_rate"] == pytest.approx(0.4021, abs=5e-4)
    assert table.loc["cifar10n:aggre", "realized_rate"] == pytest.approx(0.0901, abs=5e-4)
    assert (table["ood_fraction"] == 0.0).all()


# ---------------------------------------------------------------------------------------------
# The notebook
# ---------------------------------------------------------------------------------------------


def test_committed_notebook_is_clean():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["display_name"] == "Python 3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "commit the notebook without outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "exactly one cell, the first code cell, is tagged 'parameters'"
    params: dict = {}
    exec(tagged[0].source, {}, params)  # small JSON-serialisable values only
    assert params == {"profile": "quick", "seed": 0, "rate": 0.4, "runs_root": "../runs/lab", "cifarn_dir": None}
    papermill = pytest.importorskip("papermill")
    # papermill skips parameter lines with a second '=' (e.g. in the comment); it must see all five
    assert set(papermill.inspect_notebook(str(NOTEBOOK))) == set(params)


@pytest.mark.slow
def test_notebook_executes_at_smoke_size(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    import nbformat

    monkeypatch.setenv("LNLKIT_STATIC_WIDGETS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("LNLKIT_DATA", raising=False)  # the default CIFAR-N location must not leak in
    cifarn = shared_cifarn_dir()
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={
            "profile": "smoke",
            "runs_root": str(tmp_path / "runs"),
            "cifarn_dir": None if cifarn is None else str(cifarn),
        },
        kernel_name="python3",
        cwd=str(REPO / "notebooks"),
        progress_bar=False,
    )
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    images = sum("image/png" in o.get("data", {}) for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 9  # heatmaps of sections a-g, example grids, explorer

    csv = tmp_path / "runs" / "label-noise" / "noise_summary.csv"
    assert csv.is_file()
    assert [p.name for p in csv.parent.iterdir()] == ["noise_summary.csv"]  # no temporary file left behind
    table = pd.read_csv(csv)
    table["options"] = table["options"].fillna("")  # "" (no explicit options) reads back as NaN
    assert list(table.columns) == ["data", "seed", *SUMMARY_COLUMNS]
    assert (table["seed"] == 0).all()
    rows = {(r.spec, r.options): r for r in table.itertuples()}
    expected = {
        ("symmetric:0.4", ""): (0.34, 0.46),
        ("symmetric:0.4", "recipe=exact"): (0.399, 0.4),
        ("symmetric-inclusive:0.4", ""): (0.32, 0.40),
        ("pairflip:0.4", ""): (0.34, 0.46),
        ("asym-cifar10:0.4", ""): (0.17, 0.23),
        ("asym-cifar10-bidirectional:0.4", ""): (0.4, 0.4),
        ("asym-cifar100-block5:0.4", "block5_rule=nextclass"): (0.36, 0.44),
        ("asym-cifar100-block5:0.4", "block5_rule=randompair"): (0.12, 0.20),
        ("instance:0.4", ""): (0.33, 0.47),
        ("instance:0.4", "normalize_inputs=True"): (0.33, 0.47),
        ("openset:0.2+symmetric:0.4", ""): (0.46, 0.58),
    }
    if cifarn is not None:
        expected.update(
            {
                ("cifar10n:aggre", ""): (0.0896, 0.0906),
                ("cifar10n:worst", ""): (0.4016, 0.4026),
                ("cifar10n:rand1", ""): (0.1718, 0.1728),
                ("cifar10n:rand2", ""): (0.1807, 0.1817),
                ("cifar10n:rand3", ""): (0.1759, 0.1769),
            }
        )
        if (cifarn / "CIFAR-100_human.pt").is_file():
            expected[("cifar100n:noisy", "")] = (0.4015, 0.4025)
    assert set(rows) == set(expected)
    for key, (lo, hi) in expected.items():
        assert lo <= rows[key].realized_rate <= hi, (key, rows[key].realized_rate)
    assert rows[("asym-cifar10:0.4", "")].classes_changed == 5
    assert rows[("pairflip:0.4", "")].classes_changed == 10
    assert rows[("openset:0.2+symmetric:0.4", "")].ood_fraction == pytest.approx(0.2, abs=0.02)
    real = table["kind"].isin(["cifar10n", "cifar100n"])
    assert table.loc[real, "nominal_rate"].isna().all() and table.loc[~real, "nominal_rate"].notna().all()
    if cifarn is None:
        text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
        assert "skipped: no CIFAR-N files at" in text

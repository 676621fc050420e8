"""The pass table of ``bench/bench_cost.py`` against the code: forward hooks count the samples every network sees
during a short real run of each method, and every epoch's counts (training forwards with grad, no-grad forwards)
must equal the table's.  A method that grows (or loses) a pass fails here until the table says so."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

_PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_cost.py"
_spec = importlib.util.spec_from_file_location("bench_cost", _PATH)
bench_cost = importlib.util.module_from_spec(_spec)
sys.modules["bench_cost"] = bench_cost  # dataclasses look their module up there
_spec.loader.exec_module(bench_cost)


def test_batch_sizes_follow_the_loader(small_digits):
    import torch

    from lnlkit.train.loader import DeviceData

    data = DeviceData(small_digits.with_noise("none"), torch.device("cpu"))
    for n, b, drop in ((400, 32, False), (97, 32, False), (65, 32, False), (65, 32, True), (1, 32, False)):
        loader = data.loader(b, indices=list(range(n)), drop_last=drop)
        assert bench_cost.batch_sizes(n, b, drop) == [len(batch.y) for batch in loader.epoch(0)]
    assert bench_cost.cycled_sizes(65, 32, 5) == [32, 33, 32, 33, 32]  # 65 = 32 + 33 (the lone sample folds in)


@pytest.mark.parametrize("method", bench_cost.METHODS)
def test_pass_table_matches_hooked_forwards(method, small_digits, tmp_path):
    data = small_digits.with_noise("symmetric:0.4", seed=0)
    obj = bench_cost.short_method(method, 2)
    logs = bench_cost.run_counted(obj, data, str(tmp_path / "run"))
    assert len(logs) >= 2
    phases = set()
    for log in logs:
        want = bench_cost.table_passes(method, obj, log, len(data.labels), len(data.y_test))
        assert (log.fwd_bwd, log.fwd) == (want.fwd_bwd, want.fwd), f"epoch {log.epoch} ({log.phase})"
        assert log.phase in bench_cost.PASSES[method][0]  # every phase has its formula in words
        phases.add(log.phase)
    assert phases == {p for p, c in bench_cost.phase_epochs(method).items() if c > 0}  # the short run has them all


def test_the_table_says_why_a_phase_is_above_its_ideal():
    def row(method, phase, x_ideal):
        return dict(method=method, phase=phase, s_epoch=1.0, cpu_epoch=1.0, fwd_bwd=10, fwd=10, train_batch=32,
                    ideal=1.0 / x_ideal, x_ideal=x_ideal, hooked="yes", flush_mid=0.0, formula="f")  # fmt: skip

    text = bench_cost.render([row("ce", "train", 1.0), row("comining", "train", 1.75), row("sop", "train", 1.6)], 1, 3)
    listed = text[text.index("above 1.5x their ideal") :].split("\n\n")[1]
    assert "comining / train (1.75x): per step, a k-reciprocal" in listed
    assert "sop / train (1.60x): not explained yet" in listed and "ce / train" not in listed
    assert "above" not in bench_cost.render([row("ce", "train", 1.0)], 1, 3)

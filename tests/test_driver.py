"""The training driver (``lnlkit.train.driver``) and the bookkeeping it shares with the methods: the Context's
signal-recording rule, the per-step loss mean, stream seeds, the progress-bar injection and ``--set`` parsing."""

import ast
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import lnlkit
from lnlkit.methods import Context, EpochOutput, Method, MethodConfig, parse_overrides
from lnlkit.train.loader import DeviceData, stream_generator, stream_seed
from lnlkit.train.meter import mean_per_step


# ------------------------------------------------------------------ a minimal method for driver checks
class _Probe(Method):
    """A linear model that takes no optimisation step; ``finish_after`` ends its schedule early (as Me-Momentum's)."""

    name = "probe"

    def __init__(self, config=None, finish_after=None):
        super().__init__(config)
        self.finish_after = finish_after
        self.done = -1

    def setup(self, ctx):
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(ctx.input_shape)), ctx.num_classes))

    def networks(self):
        return [self.net]

    def state_dict(self):
        return {"done": self.done}

    def load_state_dict(self, state):
        self.done = state["done"]

    def finished(self):
        return self.finish_after is not None and self.done >= self.finish_after

    def train_epoch(self, ctx, epoch):
        self.done = epoch
        asked = ctx.records_signals(epoch)  # asked after the epoch's work, as a method does before its signal pass
        return EpochOutput({"loss": 0.0, "asked": asked}, {"loss": np.full(ctx.n_train, float(epoch), np.float32)})


@pytest.fixture(scope="module")
def noisy(small_digits):
    return small_digits.with_noise("symmetric:0.4", seed=0)


def test_driver_stores_signals_on_the_epochs_the_context_names(noisy, tmp_path):
    # 7 epochs, every 3rd: epochs 0, 3 and the last (6) hold signals, and the method was told the same
    run = _Probe(MethodConfig(epochs=7, record_signals_every=3)).fit(noisy, out=tmp_path / "a", progress=False)
    assert list(run.signals["epoch"]) == [0, 3, 6]
    assert [r["asked"] for r in run.history] == [e in (0, 3, 6) for e in range(7)]
    # an early-finished schedule: its last epoch (2) is recorded although 2 % 3 != 0 and 2 != epochs - 1
    run = _Probe(MethodConfig(epochs=7, record_signals_every=3), finish_after=2).fit(
        noisy, out=tmp_path / "b", progress=False
    )
    assert len(run.history) == 3 and list(run.signals["epoch"]) == [0, 2]
    assert [r["asked"] for r in run.history] == [True, False, True]


def test_records_signals_rule_of_a_hand_made_context():
    ctx = Context(
        data=None,
        device=torch.device("cpu"),
        seed=0,
        num_classes=2,
        n_train=4,
        in_channels=1,
        input_shape=(1, 2, 2),
        default_model="small_cnn",
        dataset_name="x",
    )
    assert all(ctx.records_signals(e) for e in range(5))  # made by hand: every epoch (record_signals_every=1)
    ctx.record_signals_every, ctx.total_epochs = 4, 10
    assert [e for e in range(10) if ctx.records_signals(e)] == [0, 4, 8, 9]
    ctx.finished = lambda: True
    assert ctx.records_signals(5)


def test_progress_bar_is_passed_in(noisy, tmp_path):
    calls = []

    class Bar:
        def __init__(self, **kw):
            calls.append(("make", kw))

        def update(self, n=1):
            calls.append(("update", n))

        def set_postfix(self, d=None, **kw):
            calls.append(("postfix", sorted(d)))

        def close(self):
            calls.append(("close",))

    _Probe(MethodConfig(epochs=2)).fit(noisy, out=tmp_path / "a", progress=Bar)
    assert calls[0] == ("make", {"total": 2, "initial": 0, "desc": "probe"})
    assert [c[0] for c in calls[1:]] == ["update", "postfix", "update", "postfix", "close"]
    assert ("postfix", ["loss", "test_acc"]) in calls
    with pytest.raises(TypeError, match="progress"):
        _Probe(MethodConfig(epochs=1)).fit(noisy, out=tmp_path / "b", progress="yes")


def test_core_does_not_import_the_notebook_ui():
    # every import statement of the methods and the training pieces, function-level ones included
    root = Path(lnlkit.__file__).parent
    offenders = []
    for path in sorted([*root.glob("methods/*.py"), *root.glob("train/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("lnlkit.widgets")]
    assert offenders == []


def test_mean_per_step():
    assert mean_per_step(torch.tensor(6.0), 4) == 1.5 and isinstance(mean_per_step(torch.tensor(6.0), 4), float)
    assert mean_per_step(3.0, 2) == 1.5
    assert math.isnan(mean_per_step(torch.tensor(0.0), 0))  # an epoch without steps (empty selection)


def test_stream_seed_is_the_sha256_of_the_named_stream():
    def written_out(text):
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2**63 - 1)

    assert stream_seed(7, "network/outer2") == written_out("7/network/outer2")
    assert stream_seed(7, 3, "train") == written_out("7/3/train")
    expected = torch.Generator().manual_seed(written_out("7/3/train"))
    assert torch.equal(
        torch.rand(5, generator=stream_generator(torch.device("cpu"), 7, 3, "train")), torch.rand(5, generator=expected)
    )


def test_build_model_passes_weights_path_only_when_set(small_digits, monkeypatch):
    import lnlkit.models

    seen = []
    monkeypatch.setattr(
        lnlkit.models, "build_model_for_input", lambda name, c, shape, **kw: seen.append(kw) or nn.Identity()
    )
    data = DeviceData(small_digits.with_noise("none"), torch.device("cpu"), 0)
    ctx = Context(
        data=data,
        device=torch.device("cpu"),
        seed=0,
        num_classes=10,
        n_train=400,
        in_channels=1,
        input_shape=data.input_shape,
        default_model="small_cnn",
        dataset_name="digits",
    )
    ctx.build_model("small_cnn", weights_path=None, width=2)
    ctx.build_model("small_cnn", "w.pth")
    assert seen == [{"width": 2}, {"weights_path": "w.pth"}]


def test_no_injected_noise():
    assert all(Method.no_injected_noise(n) for n in (None, "none", "Clean", ""))
    assert not any(Method.no_injected_noise(n) for n in ("symmetric:0.2", "cifar10n:worst"))


def test_parse_overrides_from_both_homes():
    from lnlkit.train.overrides import parse_overrides as from_train

    assert from_train is parse_overrides
    assert parse_overrides(MethodConfig, ["epochs=3", "eval_precision=none", "pretrained=false"]) == {
        "epochs": 3,
        "eval_precision": None,
        "pretrained": False,
    }
    with pytest.raises(ValueError, match="valid keys"):
        parse_overrides(MethodConfig, ["nope=1"])

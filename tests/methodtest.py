"""Pieces shared by the method test modules (``test_dividemix``, ``test_promix``, ``test_comining``, ...)."""

import json
from pathlib import Path

import pytest
import torch

import lnlkit
from lnlkit.methods.base import Context
from lnlkit.train.loader import DeviceData

# CE (``ce`` preset ``digits``) on digits with symmetric:0.4, seed 0, measured on this kit's CPU runs: best epoch
# 95.1 %, last epoch 66.9 % (see tests/test_ce_acceptance.py for the CE run itself).  The methods' acceptance criterion:
# above CE's best epoch and at least 15 points above its last.
CE_SYM40_SEED0_BEST, CE_SYM40_SEED0_LAST = 95.1, 66.9

# torch's thread count when the test session started (the method modules run single-threaded, see conftest.py)
DEFAULT_THREADS = torch.get_num_threads()


def method_context(method, noisy, seed: int = 0) -> Context:
    """The CPU Context the driver would give ``method`` (its ``setup`` included), without running ``fit``."""
    dev = torch.device("cpu")
    torch.manual_seed(seed)
    data = DeviceData(noisy, dev, seed)
    ctx = Context(
        data=data,
        device=dev,
        seed=seed,
        num_classes=noisy.num_classes,
        n_train=len(noisy.labels),
        in_channels=data.input_shape[0],
        input_shape=data.input_shape,
        default_model=noisy.dataset.default_model,
        dataset_name=noisy.name,
        noise_spec=noisy.noise.spec,
    )
    method.setup(ctx)
    return ctx


def interrupt_then_resume(make_method, data, out, crash_after_epoch: int):
    """Fit ``make_method(checkpoint_every=1)`` into ``out`` until a KeyboardInterrupt right after epoch
    ``crash_after_epoch`` (checking that its ``result.json`` says so), then resume it there; returns the resumed run
    (compare it with an uninterrupted one)."""

    def crash(record):
        if record["epoch"] == crash_after_epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_method(checkpoint_every=1).fit(data, out=out, progress=False, callbacks=[crash])
    assert json.loads((Path(out) / "result.json").read_text())["status"] == "interrupted"
    return make_method(checkpoint_every=1).fit(data, out=out, progress=False, resume=True)


def digits_acceptance_run(method: str, digits, out) -> dict:
    """``method``'s ``digits`` preset on digits with symmetric:0.4, seed 0, with the session's thread count (the
    full-size run is faster multi-threaded on an idle machine); returns ``result.json`` after checking the issue's
    criterion against CE: above CE's best epoch and at least 15 points above its last."""
    before = torch.get_num_threads()
    torch.set_num_threads(DEFAULT_THREADS)
    try:
        run = lnlkit.get_method(method, preset="digits").fit(
            digits.with_noise("symmetric:0.4", seed=0), out=out, progress=False
        )
    finally:
        torch.set_num_threads(before)
    res = run.result
    assert res["reported"] > CE_SYM40_SEED0_BEST, res
    assert res["reported"] >= CE_SYM40_SEED0_LAST + 15.0, res
    return res

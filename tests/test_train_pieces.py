"""Unit tests of the shared training pieces on tiny tensors: schedules, losses, selection, evaluation."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lnlkit.data import Dataset
from lnlkit.train import losses, schedules
from lnlkit.train.device import resolve_device, rng_state, seed_everything, set_rng_state
from lnlkit.train.evaluate import evaluate_test, per_sample_pass, predict
from lnlkit.train.loader import DeviceData
from lnlkit.train.selection import (classwise_small_loss_mask, gmm_split, min_max_normalise, selection_quality,
                                    small_loss_mask)


def test_schedules():
    assert schedules.multistep_lr(0.02, 149, (150,)) == 0.02
    assert schedules.multistep_lr(0.02, 150, (150,)) == pytest.approx(0.002)
    assert schedules.multistep_lr(0.01, 85, (40, 80)) == pytest.approx(0.0001)
    assert schedules.cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert schedules.cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert schedules.cosine_lr(0.1, 100, 100, min_lr=0.01) == pytest.approx(0.01)
    assert schedules.linear_rampup(8, 16) == 0.5 and schedules.linear_rampup(20, 16) == 1.0
    assert schedules.linear_rampup(-3, 16) == 0.0 and schedules.linear_rampup(3, 0) == 1.0
    assert schedules.sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5)) and schedules.sigmoid_rampup(10, 10) == 1.0
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedules.set_lr(opt, 0.3)
    assert opt.param_groups[0]["lr"] == 0.3


def test_soft_cross_entropy_matches_hard_ce_and_smoothing():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    onehot = losses.one_hot(y, 4)
    assert torch.allclose(losses.soft_cross_entropy(logits, onehot), F.cross_entropy(logits, y))
    assert torch.allclose(losses.soft_cross_entropy(logits, losses.smooth_labels(onehot, 0.1)),
                          F.cross_entropy(logits, y, label_smoothing=0.1))
    assert losses.soft_cross_entropy(logits, onehot, reduction="none").shape == (6,)
    assert losses.soft_cross_entropy(logits[:0], onehot[:0]).item() == 0.0  # empty batch: no NaN


def test_mixup_and_logit_adjust():
    x = torch.arange(4.0).reshape(4, 1)
    t = torch.eye(4)
    perm = torch.tensor([1, 0, 3, 2])
    xm, tm = losses.mixup(x, t, 0.75, perm)
    assert torch.allclose(xm[:, 0], torch.tensor([0.25, 0.75, 2.25, 2.75]))
    assert torch.allclose(tm.sum(1), torch.ones(4)) and tm[0, 0] == 0.75 and tm[0, 1] == 0.25
    prior = torch.tensor([0.5, 0.25, 0.25])
    z = torch.zeros(2, 3)
    assert torch.allclose(losses.logit_adjust(z, prior), torch.log(prior).expand(2, 3))


def test_symmetric_kl_and_penalties():
    a = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    assert losses.symmetric_kl(a, a).abs().item() < 1e-6
    b = a.flip(1)
    assert losses.symmetric_kl(a, b).item() == pytest.approx(losses.symmetric_kl(b, a).item(), rel=1e-5)
    assert losses.symmetric_kl(a, b).item() > 0
    uniform = torch.zeros(4, 5)
    assert losses.negative_entropy(uniform).item() == pytest.approx(-math.log(5), rel=1e-5)
    assert losses.uniform_prior_penalty(uniform).abs().item() < 1e-6
    collapsed = torch.tensor([[10.0, 0, 0]] * 4)
    assert losses.uniform_prior_penalty(collapsed).item() > 1.0


def test_gmm_split_finds_the_low_loss_component():
    rng = np.random.default_rng(0)
    clean = rng.normal(0.1, 0.03, 700)
    noisy = rng.normal(0.7, 0.08, 300)
    split = gmm_split(min_max_normalise(np.concatenate([clean, noisy])))
    assert split.means[0] < split.means[1] and split.weights[0] == pytest.approx(0.7, abs=0.03)
    assert split.clean_prob[:700].mean() > 0.97 and split.clean_prob[700:].mean() < 0.03
    x = min_max_normalise(np.concatenate([clean, noisy]))
    assert x[:700].max() < split.threshold < x[700:].min() + 0.2
    assert split.pdf(np.linspace(0, 1, 11)).shape == (2, 11)
    const = gmm_split(np.ones(10))  # degenerate input: no crash, no NaN posterior
    assert np.all(const.clean_prob == 1.0)


def test_small_loss_rules_and_selection_quality():
    loss = np.array([0.5, 0.1, 0.9, 0.2, 0.3, 0.8])
    assert small_loss_mask(loss, 0.5).tolist() == [False, True, False, True, True, False]
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert classwise_small_loss_mask(loss, labels, 1 / 3).tolist() == [False, True, False, True, False, False]
    with pytest.raises(ValueError, match="keep_fraction"):
        small_loss_mask(loss, 1.5)
    selected = np.array([True, True, False, True, False, False])
    noisy = np.array([False, True, True, False, False, True])
    q = selection_quality(selected, noisy)
    assert q["sel_precision"] == pytest.approx(2 / 3) and q["sel_recall"] == pytest.approx(2 / 3)
    assert q["sel_f1"] == pytest.approx(2 / 3) and q["sel_fraction"] == 0.5
    empty = selection_quality(np.zeros(6, bool), noisy)
    assert math.isnan(empty["sel_precision"]) and empty["sel_recall"] == 0.0
    assert set(selection_quality(selected, None)) == {"sel_fraction"}


class _Fixed(nn.Module):
    """Logits are a fixed function of the first input value (for exact evaluation checks)."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.as_tensor(table, dtype=torch.float32)

    def forward(self, x):
        return self.table[x.reshape(len(x), -1)[:, 0].round().long()]


def test_predict_per_sample_and_ensemble():
    x = np.arange(6, dtype=np.float32).reshape(6, 1)
    y = np.array([0, 1, 0, 1, 0, 1])
    ds = Dataset.from_arrays(x, y, x, y, mean=[0.0], std=[1.0], num_classes=2)
    data = DeviceData(ds.with_noise("none"), torch.device("cpu"))
    good = _Fixed([[9.0, 0], [0, 9.0]] * 3)  # always right, and more confident than `half`
    half = _Fixed([[5.0, 0], [5.0, 0]] * 3)  # always predicts 0
    assert predict(good, data, "test", batch_size=4).shape == (6, 2)
    ps = per_sample_pass(half, data, batch_size=4)
    assert torch.allclose(ps.loss[0], F.cross_entropy(torch.tensor([[5.0, 0]]), torch.tensor([0])))
    assert ps.loss[1] > ps.loss[0] and ps.pred.tolist() == [0] * 6
    res = evaluate_test([good, half], data, batch_size=4)
    assert res["test_acc_net1"] == 100.0 and res["test_acc_net2"] == 50.0 and res["test_acc"] == 100.0
    assert evaluate_test(half, data) == {"test_acc": 50.0}


def test_device_and_rng_helpers():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    seed_everything(5)
    state = rng_state()
    a = (torch.rand(3), np.random.rand(), __import__("random").random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_recorder_keeps_float32_for_signals_beyond_the_float16_range(tmp_path):
    from lnlkit.noise import inject_noise
    from lnlkit.train.recorder import RunRecorder

    noise = inject_noise(np.array([0, 1, 0, 1]), "symmetric:0.0", num_classes=2, seed=0)
    rec = RunRecorder(tmp_path / "run", noise)
    rec.start({"method": "test"})
    rec.log_epoch({"epoch": 0}, {"loss": np.array([0.5, 1.0, 2.0, 3.0]), "u": np.array([1.0, 7e4, -2e5, 0.0])})
    rec.log_epoch({"epoch": 1}, {"loss": np.array([0.25, 1.0, 2.0, 3.0]), "u": np.array([1.0, 2.0, 3.0, 4.0])})
    rec.flush()
    with np.load(tmp_path / "run" / "signals.npz") as z:
        assert z["loss"].dtype == np.float16  # small values: the compact dtype
        assert np.isfinite(z["u"]).all() and z["u"][0, 2] == -2e5  # not overflowed to -inf

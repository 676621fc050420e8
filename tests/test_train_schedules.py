"""``lnlkit.train.schedules``: the learning-rate and momentum schedules."""

import math

import pytest
import torch
import torch.nn as nn

import lnlkit
from lnlkit.train import schedules
from lnlkit.train.schedules import coteaching_beta1, coteaching_lr


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


def test_coteaching_schedule():
    assert coteaching_lr(1e-3, 79, 200, 80) == 1e-3
    assert coteaching_lr(1e-3, 80, 200, 80) == pytest.approx(1e-3)
    assert coteaching_lr(1e-3, 140, 200, 80) == pytest.approx(0.5e-3)
    assert coteaching_lr(1e-3, 199, 200, 80) == pytest.approx(1e-3 / 120)
    assert (coteaching_beta1(79, 80), coteaching_beta1(80, 80)) == (0.9, 0.1)
    m = lnlkit.get_method("comining", preset="cifar10nc")
    assert m.learning_rate(100) == pytest.approx(1e-3 * 100 / 120)
    web = lnlkit.get_method("comining", preset="web-bird")
    assert web.learning_rate(9) == 0.01  # constant in the warm-up
    assert web.learning_rate(10) == pytest.approx(0.005 * (1 + math.cos(math.pi / 51)))
    assert web.learning_rate(59) == pytest.approx(0.005 * (1 + math.cos(math.pi * 50 / 51)))

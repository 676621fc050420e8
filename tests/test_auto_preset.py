"""The ``auto`` preset: the results table's schedule on the digits, scaled by s(N) = clip(sqrt(1347/N), 1/3, 3)
elsewhere, the batch fitted to small data, the network and augmentation following the data."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import lnlkit
from lnlkit.data.dataset import Dataset
from lnlkit.methods import method_class
from lnlkit.presets.auto import AUTO_EPOCH_FIELDS, auto_config, auto_method, schedule_factor
from lnlkit.reproduce import TABLE_SCHEDULES

METHODS = ("ce", "dividemix", "smr", "promix", "comining", "mememomentum", "sop", "prune4rel", "prune:uniform")


def flat(n: int, dim: int = 5, classes: int = 3) -> Dataset:
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    y = np.arange(n) % classes
    return Dataset(name="flat", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3], num_classes=classes)


def images(n: int, side: int, channels: int = 3) -> Dataset:
    x = np.random.default_rng(0).integers(0, 255, size=(n, channels, side, side), dtype=np.uint8)
    y = np.arange(n) % 4
    return Dataset(name="img", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4], num_classes=4, pixel_scale=255.0)


def test_schedule_factor_formula():
    for n in (100, 500, 1347, 5000, 12123, 200_000):
        assert schedule_factor(n) == pytest.approx(min(3.0, max(1 / 3, math.sqrt(1347 / n))))
    assert schedule_factor(1347) == 1.0 and schedule_factor(50_000) == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", METHODS)
def test_on_the_digits_auto_is_the_results_table_schedule(name):
    digits = lnlkit.load_dataset("digits")
    config, choices = auto_config(name, digits)
    table = dataclasses.replace(method_class(name).PRESETS["digits"](), **TABLE_SCHEDULES[name], model="auto")
    assert config == table
    assert choices["schedule_factor"] == 1.0 and choices["model"] == "small_cnn"


def test_a_larger_data_set_scales_every_epoch_counted_setting():
    n = 12123  # s = 1/3 exactly (the floor)
    got, _ = auto_config("dividemix", flat(n))
    # the table's DivideMix: 20 epochs, warm-up 3, milestone 10 -> round(x / 3), at least 1
    assert (got.epochs, got.warm_up, got.lr_milestones) == (7, 1, (3,))
    smr, _ = auto_config("smr", flat(n))
    assert smr.recal_period == 1  # 2 / 3 rounds to 1
    promix, _ = auto_config("promix", flat(n))
    # the table's ProMix: 20 epochs, warm-up 3 (the preset's), LGA from 8, ramp 2.0 -> 7, 1, 3, 1.0 (ramps >= 1)
    assert (promix.epochs, promix.warm_up, promix.start_expand, promix.rampup_length) == (7, 1, 3, 1.0)
    mm, _ = auto_config("mememomentum", flat(n))
    assert (mm.max_phase_a_epochs, mm.round_epochs, mm.round_milestones) == (2, 1, ())
    # a constant of the algorithm never moves
    assert got.p_threshold == 0.5 and got.lambda_u == 25.0 and promix.tau == 0.99


def test_a_small_data_set_gets_more_epochs_and_smaller_batches():
    got, choices = auto_config("dividemix", flat(150))
    s = math.sqrt(1347 / 150)
    assert choices["schedule_factor"] == pytest.approx(s, abs=1e-4)
    assert got.epochs == round(20 * s) and got.warm_up == round(3 * s)
    # batch 64 halved until the data hold four batches: 150 < 256 -> 32; 150 >= 128 stops
    assert got.batch_size == 32
    tiny, _ = auto_config("ce", flat(40))
    assert tiny.batch_size == 8  # never below 8
    with pytest.raises(ValueError, match="too few"):
        auto_config("ce", flat(10))


def test_the_network_and_augmentation_follow_the_data():
    config, choices = auto_config("comining", images(64, 32))
    defaults = method_class("comining").Config()
    assert choices["model"] == "preact_resnet18"
    assert (config.crop_padding, config.flip, config.strong_view) == (4, True, defaults.strong_view)
    small, choices = auto_config("comining", images(64, 8, channels=1))
    assert choices["model"] == "small_cnn" and (small.crop_padding, small.flip, small.strong_view) == (1, False, "mild")
    assert auto_config("promix", flat(64))[1]["model"] == "mlp"
    assert auto_config("promix", images(64, 32))[0].model_width is None  # the small CNN's width is not carried over


def test_auto_method_overrides_win_and_the_registry_refuses_auto_without_data():
    m = auto_method("dividemix", flat(300), epochs=5, warm_up=1)
    assert m.preset == "auto" and (m.config.epochs, m.config.warm_up) == (5, 1)
    assert m.auto_choices["n_train"] == 300
    with pytest.raises(ValueError, match="unknown setting"):
        auto_method("dividemix", flat(300), nope=1)
    with pytest.raises(ValueError, match="auto_method"):
        lnlkit.get_method("dividemix", preset="auto")


def test_every_listed_field_exists():
    for name, fields in AUTO_EPOCH_FIELDS.items():
        config = method_class(name).Config()
        for f in fields:
            assert hasattr(config, f), (name, f)

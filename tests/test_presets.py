"""Every CE preset runs one short epoch end to end on tiny fake data in its data set's own on-disk format."""

import pytest
from fakedata import write_cifar10, write_cifar100, write_clothing_official

import lnlkit
from lnlkit.methods import method_class


def _fit(preset, data, tmp_path, **kw):
    method = lnlkit.get_method("ce", preset=preset, epochs=1, batch_size=8, eval_batch_size=16, **kw)
    return method.fit(data, out=tmp_path / preset, progress=False)


@pytest.mark.parametrize("preset", ["cifar10", "cifar-promix"])
def test_cifar10_presets(preset, tmp_path):
    write_cifar10(tmp_path / "data", per_batch=6, n_test=8)
    data = lnlkit.load_dataset("cifar10", root=tmp_path / "data", method=lnlkit.get_method("ce", preset=preset))
    data = data.with_noise("asym-cifar10:0.4", seed=0)
    run = _fit(preset, data, tmp_path)
    assert run.complete and run.signals["loss"].shape == (1, 30)


def test_cifar100_preset(tmp_path):
    write_cifar100(tmp_path / "data", n_train=24, n_test=8)
    data = lnlkit.load_dataset("cifar100", root=tmp_path / "data").with_noise("symmetric:0.2", seed=0)
    assert _fit("cifar100", data, tmp_path).complete


def test_clothing1m_preset_on_image_files(tmp_path):
    write_clothing_official(tmp_path / "clothing1m")
    ds = lnlkit.load_dataset("clothing1m", root=tmp_path / "clothing1m", resize=40, crop=32)
    assert not ds.clean_train_known
    run = _fit("clothing1m", ds.with_noise("none"), tmp_path, pretrained=False)  # no ImageNet file in the tests
    assert run.complete and run.is_noisy is None and run.result["realized_rate"] is None
    assert run.signals["loss"].shape == (1, 6)


def test_every_preset_is_covered():
    assert set(method_class("ce").PRESETS) == {"digits", "cifar10", "cifar100", "cifar-promix", "clothing1m"}


def test_default_preset_for_is_named_after_the_data_set():
    ce = method_class("ce")
    assert ce.preset_for("cifar10", "symmetric:0.4") == "cifar10"
    assert ce.preset_for("Digits", None) == "digits"
    assert ce.preset_for("webvision", None) is None  # CE has no WebVision preset: the config's defaults apply

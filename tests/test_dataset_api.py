"""The Dataset API: the embedded digits, from_arrays, with_noise and their input validation."""

import numpy as np
import pytest

import lnlkit
from lnlkit.data import DATASETS, Dataset, load_dataset


def test_digits_split_is_fixed_and_stratified(digits):
    assert len(digits.y_train) == 1347 and len(digits.y_test) == 450
    assert digits.x_train.shape == (1347, 1, 8, 8) and digits.x_train.dtype == np.uint8
    assert digits.x_train.max() == 16 and digits.pixel_scale == 16.0
    counts_tr = np.bincount(digits.y_train) / len(digits.y_train)
    counts_te = np.bincount(digits.y_test) / len(digits.y_test)
    assert np.abs(counts_tr - counts_te).max() < 0.01
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    np.testing.assert_array_equal(again.x_test, digits.x_test)
    assert digits.default_model == "small_cnn"


def test_with_noise_is_deterministic_and_keeps_the_truth_separate(digits):
    a = digits.with_noise("symmetric:0.4", seed=0)
    b = digits.with_noise("symmetric:0.4", seed=0)
    c = digits.with_noise("symmetric:0.4", seed=1)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    np.testing.assert_array_equal(a.is_noisy, a.labels != digits.y_train)
    assert abs(a.noise.realized_rate - 0.4) < 0.05


def test_openset_on_digits_filters_the_test_set(digits):
    noisy = digits.with_noise("openset:0.2+symmetric:0.4", seed=0)
    assert noisy.num_classes == 8
    assert noisy.labels.max() < 8 and noisy.y_test.max() < 8
    assert len(noisy.y_test) == int((digits.y_test < 8).sum()) and len(noisy.x_test) == len(noisy.y_test)


def test_instance_noise_uses_raw_pixels(digits):
    noisy = digits.with_noise("instance:0.4", seed=0)
    assert 0.3 < noisy.noise.realized_rate < 0.5


def test_from_arrays_images_and_defaults():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 3, 16, 16), dtype=np.uint8)
    y = np.arange(30) % 3
    ds = Dataset.from_arrays(x[:20], y[:20], x[20:], y[20:], name="mine")
    assert ds.num_classes == 3 and ds.pixel_scale == 255 and len(ds.mean) == 3
    assert ds.default_model == "small_cnn" and ds.input_shape == (3, 16, 16)
    grey = Dataset.from_arrays(x[:20, 0], y[:20], x[20:, 0], y[20:])
    assert grey.input_shape == (1, 16, 16)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(y_train=np.array([0, 1, 5] * 6 + [0, 1])), r"must lie in \[0, 3\)"),
        (dict(y_train=np.array([0, 1, -1] * 6 + [0, 1])), "found -1"),
        (dict(y_train=np.zeros(19, dtype=int)), "20 samples but y_train has 19"),
        (dict(x_test=np.zeros((10, 3, 8, 8))), "different shapes"),
        (dict(x_train=np.zeros((20, 2, 3, 4, 5))), r"\(N, C, H, W\)"),
        (dict(x_train=np.full((20, 3, 16, 16), np.nan)), "NaN"),
        (dict(y_train=np.full(20, 0.5)), "integer class indices"),
        (dict(y_train=np.zeros((20, 1), dtype=int)), "1-D"),
    ],
)
def test_from_arrays_validation(change, message):
    rng = np.random.default_rng(0)
    args = dict(
        x_train=rng.random((20, 3, 16, 16)),
        y_train=np.arange(20) % 3,
        x_test=rng.random((10, 3, 16, 16)),
        y_test=np.arange(10) % 3,
        num_classes=3,
    )
    args.update(change)
    with pytest.raises(ValueError, match=message):
        Dataset.from_arrays(**args)


def test_unknown_dataset_and_bad_noise(digits):
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown noise kind"):
        digits.with_noise("gaussian:0.3")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        digits.with_noise("symmetric:-0.1")
    with pytest.raises(ValueError, match="coarse labels"):
        digits.with_noise("asym-cifar100-superclass:0.2")


def test_every_registered_dataset_reports_a_missing_folder(tmp_path):
    for name in DATASETS:
        if name == "digits":
            continue
        with pytest.raises(lnlkit.DatasetNotFoundError) as info:
            load_dataset(name, root=tmp_path / "empty")
        assert str(tmp_path / "empty") in str(info.value), name


def test_real_noise_dataset_refuses_synthetic_noise():
    ds = Dataset.from_arrays(np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 2)), [0, 1])
    assert not ds.clean_train_known  # the user's labels are taken as given unless clean_labels=True
    with pytest.raises(ValueError, match="real label noise.*pass clean_labels=True to from_arrays"):
        ds.with_noise("symmetric:0.2")
    assert ds.with_noise("none").is_noisy is None
    trusted = Dataset.from_arrays(np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 2)), [0, 1], clean_labels=True)
    assert trusted.clean_train_known and trusted.with_noise("symmetric:0.2").is_noisy is not None


def test_get_method_validation():
    with pytest.raises(ValueError, match="unknown method 'dividemixx'"):
        lnlkit.get_method("dividemixx")
    with pytest.raises(ValueError, match="unknown setting"):
        lnlkit.get_method("ce", preset="digits", learning_rate=0.1)
    with pytest.raises(ValueError, match="lr must be positive"):
        lnlkit.get_method("ce", lr=-1.0)
    with pytest.raises(TypeError, match="NoisyDataset"):
        lnlkit.get_method("ce", preset="digits").fit(np.zeros(3))

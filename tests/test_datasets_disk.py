"""On-disk data set loaders (CIFAR pickles, Clothing1M, mini-WebVision, Animal-10N, WebFG) on tiny fake data.

Every test writes its own miniature copy of a data set layout under ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import (  # noqa: E402
    _cifar_rows,
    _pickle,
    write_cifar10,
    write_cifar100,
    write_clothing_official,
    write_image,
    write_lines,
)

from lnlkit.data import DatasetNotFoundError, ImageFiles, load_dataset
from lnlkit.data.cifar import CIFAR10_CLASSES, load_cifar
from lnlkit.data.images import ImageFileDataset, make_file_loader
from lnlkit.data.web import CLOTHING1M_MEAN, CLOTHING1M_STD, IMAGENET_MEAN, load_clothing1m


def test_cifar10_shapes_order_labels(tmp_path):
    folder = write_cifar10(tmp_path)
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.name == "cifar10" and ds.num_classes == 10
    assert ds.x_train.shape == (100, 3, 32, 32) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10, 3, 32, 32) and ds.x_test.dtype == np.uint8
    # batch 1 rows first, file order kept; planes are R, G, B (CHW by reshape)
    np.testing.assert_array_equal(ds.x_train[:, 0, 0, 0], np.arange(100))
    np.testing.assert_array_equal(ds.x_train[:, 1, 5, 7], 255 - np.arange(100))
    assert ds.x_train[3, 2, 0, 5] == 5 and ds.x_train[3, 2, 1, 0] == 32
    np.testing.assert_array_equal(ds.x_test[:, 0, 0, 0], np.arange(1000, 1010) % 256)
    np.testing.assert_array_equal(ds.y_train, np.arange(100) % 10)
    np.testing.assert_array_equal(ds.y_test, (np.arange(10) * 3) % 10)
    assert ds.y_train.dtype == np.int64
    assert ds.class_names == [f"c{i}" for i in range(10)]  # from batches.meta
    assert ds.pixel_scale == 255 and ds.clean_train_known and ds.default_model == "preact_resnet18"
    assert ds.root == folder
    assert ds.mean == (0.4914, 0.4822, 0.4465) and ds.std == (0.2023, 0.1994, 0.2010)
    assert str(folder) in ds.extras["cifarn_dirs"] and str(tmp_path) in ds.extras["cifarn_dirs"]

    # root may be the batches folder itself
    ds2 = load_cifar(folder, num_classes=10)
    np.testing.assert_array_equal(ds2.x_train, ds.x_train)


def test_cifar10_without_meta_and_normalizations(tmp_path, monkeypatch):
    folder = write_cifar10(tmp_path, meta=False)
    monkeypatch.setenv("LNLKIT_CIFARN_DIR", str(tmp_path / "labels"))
    ds = load_cifar(folder, 10)
    assert ds.class_names == CIFAR10_CLASSES
    assert ds.extras["cifarn_dirs"][0] == str(tmp_path / "labels")
    expected = {
        "dividemix": (0.2023, 0.1994, 0.2010),
        "smr": (0.2023, 0.1994, 0.2010),
        "promix": (0.247, 0.243, 0.261),
        "comining": (0.229, 0.224, 0.225),
        "prune4rel": (0.2023, 0.1994, 0.2010),
    }
    for name, std in expected.items():
        d = load_cifar(tmp_path, 10, normalization=name)
        assert d.std == std, name
    assert load_cifar(tmp_path, 10, normalization="comining").mean == (0.485, 0.456, 0.406)
    with pytest.raises(ValueError, match="normalization"):
        load_cifar(tmp_path, 10, normalization="bogus")
    with pytest.raises(TypeError, match="bogus_option"):
        load_cifar(tmp_path, 10, bogus_option=1)


def test_cifar100_fine_coarse(tmp_path):
    folder = write_cifar100(tmp_path)
    ds = load_dataset("cifar100", root=tmp_path)
    assert ds.name == "cifar100" and ds.num_classes == 100
    assert ds.x_train.shape == (60, 3, 32, 32) and ds.x_test.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(ds.y_train, (np.arange(60) * 7) % 100)
    np.testing.assert_array_equal(ds.extras["coarse_labels"], ds.y_train // 5)
    np.testing.assert_array_equal(ds.extras["coarse_labels_test"], ds.y_test // 5)
    assert ds.class_names[3] == "fine3" and ds.extras["coarse_class_names"][0] == "coarse0"
    assert ds.mean == (0.507, 0.487, 0.441) and ds.std == (0.267, 0.256, 0.276)
    p = load_cifar(folder, 100, normalization="prune4rel")
    assert p.mean == (0.5071, 0.4865, 0.4409) and p.std == (0.2673, 0.2564, 0.2762)
    assert load_cifar(folder, 100, normalization="promix").std == (0.267, 0.256, 0.276)


def test_cifar_missing_and_corrupt(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("cifar10", root=missing)
    msg = str(err.value)
    assert str(missing) in msg and "data_batch_1" in msg and "cs.toronto.edu" in msg
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        load_dataset("cifar100", root=missing)

    folder = write_cifar10(tmp_path / "a")
    (folder / "test_batch").unlink()
    with pytest.raises(DatasetNotFoundError, match="test_batch"):
        load_cifar(folder, 10)

    folder = write_cifar10(tmp_path / "b")
    (folder / "data_batch_3").write_bytes(b"\x80\x02}q\x00this is not a pickle")
    with pytest.raises(ValueError, match="data_batch_3.*corrupt"):
        load_cifar(folder, 10)

    folder = write_cifar10(tmp_path / "c")
    _pickle(folder / "data_batch_2", {"data": _cifar_rows(0, 5), "labels": [0] * 5})
    with pytest.raises(ValueError, match="num_cases_per_batch"):
        load_cifar(folder, 10)

    folder = write_cifar10(tmp_path / "d")
    _pickle(folder / "data_batch_4", {"data": _cifar_rows(0, 20), "labels": [0] * 19})
    with pytest.raises(ValueError, match="data_batch_4"):
        load_cifar(folder, 10)


def test_cifar10_with_noise(tmp_path):
    pytest.importorskip("lnlkit.noise", reason="lnlkit.noise is written by another engineer")
    write_cifar10(tmp_path, per_batch=200)
    ds = load_dataset("cifar10", root=tmp_path)
    nd = ds.with_noise("symmetric:0.4", seed=0)
    assert len(nd.labels) == 1000 and nd.labels.dtype == np.int64
    assert 0.25 < np.mean(nd.labels != ds.y_train) < 0.55


# ------------------------------------------------------------------------------------------------------- Clothing1M


def test_clothing1m_official_layout(tmp_path):
    info = write_clothing_official(tmp_path)
    ds = load_dataset("clothing1m", root=tmp_path)
    assert ds.name == "clothing1m" and ds.num_classes == 14 and not ds.clean_train_known
    assert isinstance(ds.x_train, ImageFiles) and len(ds.x_train) == 6 and len(ds.x_test) == 2
    assert len(ds.x_val) == 3 and ds.extras["test_split"] == "test" and ds.extras["val_split"] == "val"
    np.testing.assert_array_equal(ds.y_train, [info["noisy"][k] for k in info["keys"]["train"]])
    np.testing.assert_array_equal(ds.y_test, [info["clean"][k] for k in info["keys"]["test"]])
    np.testing.assert_array_equal(ds.y_val, [info["clean"][k] for k in info["keys"]["val"]])
    assert all(Path(p).is_file() for p in ds.x_train.paths + ds.x_test.paths + ds.x_val.paths)
    assert (ds.x_train.resize, ds.x_train.crop) == (256, 224)
    assert ds.mean == CLOTHING1M_MEAN and ds.std == CLOTHING1M_STD and ds.class_names[8] == "Down Coat"

    swapped = load_clothing1m(tmp_path, test_split="val", resize=32, crop=28)
    assert len(swapped.x_test) == 3 and len(swapped.x_val) == 2 and swapped.extras["test_split"] == "val"
    assert swapped.x_test.crop == 28
    with pytest.raises(ValueError, match="test_split"):
        load_clothing1m(tmp_path, test_split="train")


def test_clothing1m_dividemix_style_and_default_root(tmp_path, monkeypatch):
    # annotation files directly in the folder, image folders without the leading "images/"
    root = tmp_path / "clothing1m"
    info = write_clothing_official(root, annotations=False, images_prefix=False)
    monkeypatch.setenv("LNLKIT_DATA", str(tmp_path))
    ds = load_dataset("clothing1m")  # finds <data root>/clothing1m
    assert ds.root == root and len(ds.x_train) == 6
    assert ds.x_train.paths[0] == str(root / info["keys"]["train"][0][len("images/") :])
    assert Path(ds.x_train.paths[0]).is_file()


def test_clothing1m_prune4rel_layout(tmp_path):
    write_lines(tmp_path / "noisy_train.txt", [f"images/t{i}.jpg {i % 14}" for i in range(5)])
    write_lines(tmp_path / "clean_val.txt", ["images/v0.jpg 3", "", "images/v1.jpg 13"])
    for name in [f"t{i}" for i in range(5)] + ["v0", "v1"]:
        write_image(tmp_path / "images" / f"{name}.jpg")
    with pytest.raises(DatasetNotFoundError, match="test_split='val'"):
        load_clothing1m(tmp_path)
    ds = load_clothing1m(tmp_path, test_split="val")
    assert ds.extras["layout"] == "prune4rel" and not ds.clean_train_known
    np.testing.assert_array_equal(ds.y_train, np.arange(5) % 14)
    np.testing.assert_array_equal(ds.y_test, [3, 13])
    assert ds.x_val is None and ds.extras["val_split"] is None
    # with a clean test list the default split works and the val list becomes x_val
    write_lines(tmp_path / "clean_test.txt", ["images/v1.jpg 1"])
    ds = load_clothing1m(tmp_path)
    assert len(ds.x_test) == 1 and len(ds.x_val) == 2


@pytest.mark.parametrize(
    "bad_line, pattern",
    [
        ("images/t9.jpg", r"line 3.*missing label"),
        ("images/t9.jpg seven", r"line 3.*not an integer"),
        ("images/t9.jpg 14", r"line 3.*out of range"),
        ("images/t9.jpg -1", r"line 3.*out of range"),
    ],
)
def test_clothing1m_malformed_lines(tmp_path, bad_line, pattern):
    write_lines(tmp_path / "noisy_train.txt", ["images/t0.jpg 0", "images/t1.jpg 1", bad_line])
    write_lines(tmp_path / "clean_val.txt", ["images/t0.jpg 0"])
    with pytest.raises(ValueError, match=pattern) as err:
        load_clothing1m(tmp_path, test_split="val", check_images=False)
    assert "noisy_train.txt" in str(err.value)


def test_clothing1m_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("clothing1m", root=tmp_path / "void")
    msg = str(err.value)
    assert str(tmp_path / "void") in msg and "noisy_train_key_list.txt" in msg and "Cysu/noisy_label" in msg
    # key without a label in the kv file
    write_clothing_official(tmp_path / "a")
    with open(tmp_path / "a" / "annotations" / "noisy_train_key_list.txt", "a") as f:
        f.write("images/0/00/unlabelled.jpg\n")
    with pytest.raises(ValueError, match=r"noisy_train_key_list.txt, line 7.*no label"):
        load_clothing1m(tmp_path / "a")
    # lists present, images absent
    write_lines(tmp_path / "b" / "noisy_train.txt", ["images/x.jpg 1"])
    write_lines(tmp_path / "b" / "clean_val.txt", ["images/y.jpg 1"])
    with pytest.raises(DatasetNotFoundError, match="first listed image"):
        load_clothing1m(tmp_path / "b", test_split="val")
    assert len(load_clothing1m(tmp_path / "b", test_split="val", check_images=False).x_train) == 1


# --------------------------------------------------------------------------------------------------- mini-WebVision


def test_webvision_filtering_and_imagenet_val(tmp_path):
    root = tmp_path / "webvision"
    train = [
        ("google/q0001/a.jpg", 0),
        ("google/q0002/b.jpg", 1),
        ("google/q0050/c.jpg", 49),
        ("google/q0051/d.jpg", 50),
        ("google/q0999/e.jpg", 999),
        ("google/q0003/f.jpg", 2),
    ]
    write_lines(root / "info" / "train_filelist_google.txt", [f"{p} {y}" for p, y in train])
    write_lines(root / "info" / "val_filelist.txt", ["val000001.jpg 0", "val000002.jpg 60", "val000003.jpg 7"])
    write_lines(root / "info" / "synsets.txt", [f"n{i:08d} name{i}, other{i}" for i in range(1000)])
    for p, _ in train:
        write_image(root / p)
    for i in (1, 2, 3):
        write_image(root / "val_images_256" / f"val00000{i}.jpg")
    imagenet = tmp_path / "imagenet_val"
    for c in range(50):
        (imagenet / f"n{c:08d}").mkdir(parents=True)
    write_image(imagenet / "n00000000" / "ILSVRC2012_val_00000001.JPEG")
    write_image(imagenet / "n00000000" / "ILSVRC2012_val_00000002.JPEG")
    write_image(imagenet / "n00000004" / "ILSVRC2012_val_00000003.JPEG")

    ds = load_dataset("webvision", root=tmp_path, imagenet_root=imagenet)  # finds tmp/webvision
    assert ds.name == "webvision" and ds.num_classes == 50 and not ds.clean_train_known
    np.testing.assert_array_equal(ds.y_train, [0, 1, 49, 2])
    assert ds.x_train.paths[2] == str(root / "google/q0050/c.jpg")
    np.testing.assert_array_equal(ds.y_test, [0, 7])
    assert ds.x_test.paths[1] == str(root / "val_images_256" / "val000003.jpg")
    assert (ds.x_train.resize, ds.x_train.crop) == (320, 299)
    assert ds.class_names[:2] == ["name0", "name1"] and ds.mean == IMAGENET_MEAN
    np.testing.assert_array_equal(ds.y_val, [0, 0, 4])
    assert ds.extras["val_name"] == "imagenet_val"

    no_val = load_dataset("webvision", root=root, num_classes=3)
    assert no_val.x_val is None and list(no_val.y_train) == [0, 1, 2] and list(no_val.y_test) == [0]

    with pytest.raises(DatasetNotFoundError, match="synset folders"):
        load_dataset("webvision", root=root, imagenet_root=tmp_path / "empty")


def test_webvision_val_images_folder_and_errors(tmp_path):
    write_lines(tmp_path / "info" / "train_filelist_google.txt", ["google/q0001/a.jpg 0", "google/q0001/b.jpg 1"])
    write_lines(tmp_path / "info" / "val_filelist.txt", ["v1.jpg 1"])
    for n in "ab":
        write_image(tmp_path / "google" / "q0001" / f"{n}.jpg")
    write_image(tmp_path / "val_images" / "v1.jpg")
    ds = load_dataset("webvision", root=tmp_path)
    assert ds.x_test.paths == (str(tmp_path / "val_images" / "v1.jpg"),)
    assert ds.class_names == [str(i) for i in range(50)]

    write_lines(tmp_path / "info" / "train_filelist_google.txt", ["google/q0001/a.jpg 0", "google/q0001/b.jpg x"])
    with pytest.raises(ValueError, match=r"train_filelist_google.txt, line 2"):
        load_dataset("webvision", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="train_filelist_google.txt") as err:
        load_dataset("webvision", root=tmp_path / "none")
    assert "webvision/download" in str(err.value)


# ------------------------------------------------------------------------------------------------------- Animal-10N


def test_animal10n(tmp_path):
    root = tmp_path / "animal10n"
    for i, lab in enumerate([3, 0, 9, 3]):
        write_image(root / "training" / f"{lab}_{i:05d}.jpg", size=(64, 64), color=(lab * 20, 0, 0))
    write_image(root / "training" / "5_00099.png", size=(64, 64), color=(100, 0, 0))
    write_image(root / "testing" / "7_00000.jpg", size=(64, 64))
    write_image(root / "testing" / "1_00001.jpg", size=(32, 32))  # wrong size: resized with a warning
    with pytest.warns(UserWarning, match="resized"):
        ds = load_dataset("animal10n", root=tmp_path)
    assert ds.name == "animal10n" and not ds.clean_train_known and ds.num_classes == 10
    assert ds.x_train.shape == (5, 3, 64, 64) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (2, 3, 64, 64)
    # sorted by file name: 0_00001, 3_00000, 3_00003, 5_00099, 9_00002
    np.testing.assert_array_equal(ds.y_train, [0, 3, 3, 5, 9])
    np.testing.assert_array_equal(ds.y_test, [1, 7])
    assert abs(int(ds.x_train[1, 0, 10, 10]) - 60) <= 3  # the red value of the class-3 JPEG
    assert ds.mean == CLOTHING1M_MEAN and ds.std == CLOTHING1M_STD  # the SMR quirk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_dataset("animal10n", root=root, normalization="imagenet", num_workers=1).mean == IMAGENET_MEAN

    write_image(root / "training" / "cat_1.jpg", size=(64, 64))
    with pytest.raises(ValueError, match="cat_1.jpg"):
        load_dataset("animal10n", root=root)
    with pytest.raises(DatasetNotFoundError, match="training/") as err:
        load_dataset("animal10n", root=tmp_path / "none")
    assert "dm.kaist.ac.kr" in str(err.value)


# ---------------------------------------------------------------------------------------------------------- WebFG


def test_webfg(tmp_path):
    sub = tmp_path / "web-bird"
    for c, n in (("002.Laysan_Albatross", 2), ("001.Black_footed_Albatross", 3), ("010.Red_winged", 1)):
        for i in range(n):
            write_image(sub / "train" / c / f"img{i}.jpg")
    write_image(sub / "val" / "010.Red_winged" / "t0.jpg")
    write_image(sub / "val" / "001.Black_footed_Albatross" / "t1.jpg")
    (sub / "train" / "notes.txt").write_text("not a class")

    with pytest.warns(UserWarning, match="expected 200"):
        ds = load_dataset("web-bird", root=tmp_path)
    assert ds.name == "web-bird" and ds.num_classes == 3 and not ds.clean_train_known
    assert ds.class_names == ["001.Black_footed_Albatross", "002.Laysan_Albatross", "010.Red_winged"]
    np.testing.assert_array_equal(ds.y_train, [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(ds.y_test, [0, 2])
    assert (ds.x_train.resize, ds.x_train.crop) == (512, 448) and ds.mean == IMAGENET_MEAN

    # root = the subset folder itself; "tval" accepted for web-aircraft
    air = tmp_path / "air"
    for c in ("A320", "B737"):
        write_image(air / "train" / c / "x.jpg")
        write_image(air / "tval" / c / "y.jpg")
    with pytest.warns(UserWarning, match="expected 100"):
        ds = load_dataset("web-aircraft", root=air)
    assert len(ds.x_test) == 2 and ds.class_names == ["A320", "B737"]

    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("web-car", root=tmp_path)
    assert "web-car" in str(err.value) and "wsnfg-sh.oss-cn-shanghai.aliyuncs.com/web-car.tar.gz" in str(err.value)


# ------------------------------------------------------------------------------------------------ image file loader


def test_image_file_dataset_and_loader(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8) for _ in range(5)]
    paths = []
    for i, a in enumerate(arrays):
        write_image(tmp_path / f"im{i}.png", array=a)
        paths.append(str(tmp_path / f"im{i}.png"))
    files = ImageFiles(paths=tuple(paths), resize=16, crop=12)
    labels = np.array([0, 1, 2, 3, 4])

    ev = ImageFileDataset(files, labels, train=False)
    x, y, idx = ev[2]
    assert x.shape == (3, 12, 12) and x.dtype == torch.uint8 and y == 2 and idx == 2
    np.testing.assert_array_equal(x.numpy(), arrays[2][2:14, 2:14].transpose(2, 0, 1))  # centre crop

    tr = ImageFileDataset(files, labels, train=True)
    torch.manual_seed(0)
    for _ in range(5):
        x, y, idx = tr[1]
        assert x.shape == (3, 12, 12) and x.dtype == torch.uint8
        img = x.numpy().transpose(1, 2, 0)
        found = any(
            np.array_equal(img, cand[t : t + 12, left : left + 12])
            for cand in (arrays[1], arrays[1][:, ::-1])
            for t in range(5)
            for left in range(5)
        )
        assert found  # a crop of the image or of its mirror

    loader = make_file_loader(files, labels, batch_size=4, train=True, num_workers=0, seed=1)
    xb, yb, ib = next(iter(loader))
    assert xb.shape == (4, 3, 12, 12) and xb.dtype == torch.uint8 and yb.dtype == torch.int64
    np.testing.assert_array_equal(yb.numpy(), labels[ib.numpy()])
    assert sum(len(b[0]) for b in make_file_loader(files, labels, 2, train=False, num_workers=0)) == 5

    with pytest.raises(ValueError, match="labels"):
        ImageFileDataset(files, labels[:3], train=True)
    bad = ImageFiles(paths=(str(tmp_path / "missing.png"),), resize=16, crop=12)
    with pytest.raises(OSError, match="missing.png"):
        ImageFileDataset(bad, [0], train=False)[0]


def test_file_loader_on_clothing1m(tmp_path):
    write_clothing_official(tmp_path)
    ds = load_clothing1m(tmp_path, resize=10, crop=8)
    xb, yb, ib = next(iter(make_file_loader(ds.x_train, ds.y_train, batch_size=6, train=True, num_workers=0)))
    assert xb.shape == (6, 3, 8, 8)
    np.testing.assert_array_equal(yb.numpy(), ds.y_train[ib.numpy()])

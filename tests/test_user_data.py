"""The user's own data: from_arrays without a test split or with a holdout, load_folder and load_table."""

import contextlib
import warnings

import numpy as np
import pytest
from PIL import Image

import lnlkit
from lnlkit.data import Dataset, ImageFiles, load_folder, load_table

DIGITS = {"three": 3, "five": 5, "eight": 8}  # folder name -> digit; sorted names: eight, five, three


def _digits_folder(root, digits, per_class=10):
    """``root/<name>/img_XXXX.png``: ``per_class`` 8×8 grey PNGs per class; returns {relative path: pixels}."""
    written = {}
    for name, d in DIGITS.items():
        for j, i in enumerate(np.flatnonzero(digits.y_train == d)[:per_class]):
            rel = f"{name}/img_{j:04d}.png"
            pixels = (digits.x_train[i, 0].astype(np.int64) * 255 // 16).astype(np.uint8)
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "L").save(root / rel)
            written[rel] = pixels
    return written


def _write_csv(path, rows, header="path,label"):
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows))


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none expected
        return fn(*args, **kw)


# ------------------------------------------------------------------------------------------------ load_folder
def test_folder_of_digits_loads_in_memory(tmp_path, digits):
    written = _digits_folder(tmp_path / "mydigits", digits)
    ds = _quiet(load_folder, tmp_path / "mydigits")
    assert ds.name == "mydigits" and ds.in_memory and not ds.clean_train_known and not ds.has_test
    assert ds.x_train.shape == (30, 1, 8, 8) and ds.x_train.dtype == np.uint8
    assert ds.class_names == ["eight", "five", "three"] and ds.num_classes == 3
    assert list(ds.sample_ids) == sorted(written)  # relative paths, classes and files in sorted order
    for k, rel in enumerate(ds.sample_ids):
        np.testing.assert_array_equal(ds.x_train[k, 0], written[rel])
        assert ds.class_names[ds.y_train[k]] == rel.split("/")[0]
    assert ds.extras["skipped"] == [] and ds.extras["test_split"] == "none"
    assert ds.pixel_scale == 255 and len(ds.mean) == 1 and "eight, five, three" in repr(ds)
    assert ds.x_test.shape == (0, 1, 8, 8) and ds.y_test.dtype == np.int64


def test_csv_gives_the_same_arrays(tmp_path, digits):
    _digits_folder(tmp_path / "d", digits)
    folder = load_folder(tmp_path / "d")
    _write_csv(tmp_path / "d" / "labels.csv", [(rel, rel.split("/")[0]) for rel in folder.sample_ids])
    for ds in (
        load_folder(tmp_path / "d" / "labels.csv"),
        load_folder(tmp_path / "d", csv=tmp_path / "d" / "labels.csv"),
    ):
        np.testing.assert_array_equal(ds.x_train, folder.x_train)
        np.testing.assert_array_equal(ds.y_train, folder.y_train)
        assert ds.class_names == folder.class_names and list(ds.sample_ids) == list(folder.sample_ids)
        assert ds.name == "d"
    # integer labels keep their values; absolute paths are accepted
    _write_csv(tmp_path / "ints.csv", [(tmp_path / "d" / rel, DIGITS[rel.split("/")[0]]) for rel in folder.sample_ids])
    ints = load_folder(tmp_path / "ints.csv")
    assert ints.num_classes == 9 and set(ints.y_train) == {3, 5, 8}


def test_unreadable_files_are_skipped_and_listed(tmp_path, digits):
    _digits_folder(tmp_path / "d", digits)
    (tmp_path / "d" / "five" / "broken.png").write_bytes(np.random.default_rng(0).bytes(200))
    (tmp_path / "d" / "three" / "notes.txt").write_text("not an image")
    (tmp_path / "d" / "three" / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored, not listed
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable file\(s\) of 32: .*broken.png"):
        ds = load_folder(tmp_path / "d")
    assert len(ds.y_train) == 30
    skipped = ds.extras["skipped"]
    assert [s["path"].split("/")[-1] for s in skipped] == ["broken.png", "notes.txt"]
    assert all(s["reason"] for s in skipped)


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "does not exist"),
        ("no_classes", "no class folders"),
        ("one_class", "single class folder"),
        ("empty_class", "class folder 'empty' .* is empty"),
        ("csv_missing_paths", r"lists 2 path\(s\) that are not files.*'x/gone.png'"),
        ("csv_missing_column", "must have the header columns path,label; missing label"),
        ("csv_missing_labels", r"1 row\(s\) without a label \(line 3\)"),
        ("all_broken", "class 'b' has no readable image"),
    ],
)
def test_folder_errors(tmp_path, layout, message):
    root = tmp_path / "data"
    img = np.zeros((8, 8), dtype=np.uint8)
    if layout != "missing":
        root.mkdir()
    if layout in ("one_class", "empty_class", "all_broken"):
        (root / "a").mkdir()
        Image.fromarray(img).save(root / "a" / "0.png")
        Image.fromarray(img).save(root / "a" / "1.png")
    if layout == "empty_class":
        (root / "empty").mkdir()
    if layout == "all_broken":
        (root / "b").mkdir()
        (root / "b" / "x.png").write_bytes(b"garbage")
    if layout.startswith("csv"):
        Image.fromarray(img).save(root / "ok.png")
        rows = {
            "csv_missing_paths": [("ok.png", "a"), ("x/gone.png", "b"), ("gone2.png", "b")],
            "csv_missing_column": [("ok.png", "a")],
            "csv_missing_labels": [("ok.png", "a"), ("ok.png", "")],
        }[layout]
        _write_csv(root / "l.csv", rows, header="path,lbl" if layout == "csv_missing_column" else "path,label")
        root = root / "l.csv"
    skipped = pytest.warns(UserWarning, match="skipped 1") if layout == "all_broken" else contextlib.nullcontext()
    with pytest.raises(ValueError, match=message), skipped:
        load_folder(root)


def test_single_image_class_warns(tmp_path):
    for c, n in (("a", 3), ("b", 1)):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8), i, dtype=np.uint8)).save(tmp_path / "d" / c / f"{i}.png")
    with pytest.warns(UserWarning, match="'b' have a single training sample"):
        ds = load_folder(tmp_path / "d")
    assert np.bincount(ds.y_train).tolist() == [3, 1]


@pytest.mark.filterwarnings("ignore:.*single training sample")
def test_colour_sizes_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "b").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "d" / "a" / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / "d" / "b" / "grey.png")
    Image.fromarray(rng.integers(0, 255, (12, 10), dtype=np.uint8)).save(tmp_path / "d" / "b" / "other.png")
    with pytest.raises(ValueError, match="different sizes.*pass image_size="):
        load_folder(tmp_path / "d")
    ds = load_folder(tmp_path / "d", image_size=6)
    assert ds.x_train.shape == (3, 3, 6, 6)  # one colour image makes the set RGB
    grey = np.asarray(Image.open(tmp_path / "d" / "b" / "grey.png").resize((6, 6), Image.BILINEAR))
    for c in range(3):
        np.testing.assert_array_equal(ds.x_train[1, c], grey)
    assert load_folder(tmp_path / "d", image_size=6, grey=True).x_train.shape == (3, 1, 6, 6)


def test_larger_images_become_image_files(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "pets" / c).mkdir(parents=True)
        for i in range(4):
            img = Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
            img.save(tmp_path / "pets" / c / f"{i}.jpg")
    ds = _quiet(load_folder, tmp_path / "pets")
    assert isinstance(ds.x_train, ImageFiles) and (ds.x_train.resize, ds.x_train.crop) == (256, 224)
    assert ds.mean == (0.485, 0.456, 0.406) and ds.std == (0.229, 0.224, 0.225)
    assert isinstance(ds.x_test, ImageFiles) and len(ds.x_test) == 0 and not ds.has_test
    assert list(ds.sample_ids[:2]) == ["cat/0.jpg", "cat/1.jpg"] and ds.class_names == ["cat", "dog"]
    sized = load_folder(tmp_path / "pets", image_size=96, holdout=0.25, seed=1)
    assert (sized.x_train.resize, sized.x_train.crop) == (110, 96)
    assert np.bincount(sized.y_test).tolist() == [1, 1] and len(sized.y_train) == 6
    held = sized.extras["holdout_index"]
    assert [p.split("pets/")[1] for p in sized.x_test.paths] == [ds.sample_ids[i] for i in held]
    assert set(sized.sample_ids) == set(ds.sample_ids) - {ds.sample_ids[i] for i in held}
    assert load_folder(tmp_path / "pets", in_memory=True).x_train.shape == (8, 3, 80, 100)


# ------------------------------------------------------------------------------------------------ from_arrays
def test_from_arrays_without_a_test_split():
    x = np.random.default_rng(0).random((12, 4))
    ds = Dataset.from_arrays(x, np.arange(12) % 3)
    assert not ds.has_test and ds.x_test.shape == (0, 4) and ds.y_test.dtype == np.int64 and len(ds.y_test) == 0
    assert not ds.clean_train_known and ds.extras["test_split"] == "none"
    assert list(ds.sample_ids) == [str(i) for i in range(12)]
    assert Dataset.from_arrays(x, np.arange(12) % 3, x[:3], [0, 1, 2]).extras["test_split"] == "given"
    bare = Dataset("bare", x, np.arange(12) % 3, None, None, num_classes=3)  # __post_init__ builds the empty split
    assert bare.x_test.shape == (0, 4) and not bare.has_test


def test_from_arrays_string_labels_and_class_names():
    x = np.zeros((6, 2))
    ds = Dataset.from_arrays(x, ["dog", "cat", "bird", "dog", "cat", "bird"], x[:2], ["cat", "dog"])
    assert ds.class_names == ["bird", "cat", "dog"] and ds.y_train.tolist() == [2, 1, 0, 2, 1, 0]
    assert ds.y_test.tolist() == [1, 2] and "bird, cat, dog" in repr(ds)
    given = Dataset.from_arrays(x, ["b", "a"] * 3, class_names=["b", "a", "c"])
    assert given.num_classes == 3 and given.y_train.tolist() == [0, 1] * 3
    with pytest.raises(ValueError, match="not among class_names: 'z'"):
        Dataset.from_arrays(x, ["a", "b", "z"] * 2, class_names=["a", "b"])


@pytest.mark.parametrize(
    "labels, message",
    [
        (["a", None, "b", "a", "", "b"], r"2 missing label\(s\) .*first: row 1"),
        ([0.0, 1.0, np.nan, 1.0, 0.0, 1.0], r"1 missing label\(s\) .*first: row 2"),
        ([1] * 6, r"hold 1 class \('1'\); a classifier needs at least 2"),
    ],
)
def test_from_arrays_label_errors(labels, message):
    with pytest.raises(ValueError, match=message):
        Dataset.from_arrays(np.zeros((6, 2)), np.asarray(labels, dtype=object if None in labels else None))


def test_from_arrays_nan_features_and_single_sample_class():
    x = np.zeros((6, 2))
    x[3, 1] = x[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite values in 2 of 6 rows \(first: row 3\)"):
        Dataset.from_arrays(x, [0, 1] * 3)
    with pytest.warns(UserWarning, match="'lonely' have a single training sample"):
        Dataset.from_arrays(np.zeros((5, 2)), ["a", "b", "a", "b", "lonely"])


def test_holdout_is_stratified_and_keeps_ids():
    x = np.arange(60, dtype=np.float32).reshape(30, 2)
    y = np.repeat([0, 1, 2], 10)
    ids = [f"row-{i}" for i in range(30)]
    ds = Dataset.from_arrays(x, y, holdout=0.2, seed=3, sample_ids=ids)
    held = ds.extras["holdout_index"]
    assert ds.extras["test_split"] == "holdout" and ds.has_test
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2] and len(ds.y_train) == 24
    np.testing.assert_array_equal(ds.x_test, x[held])
    np.testing.assert_array_equal(ds.y_test, y[held])
    kept = np.setdiff1d(np.arange(30), held)
    assert list(ds.sample_ids) == [ids[i] for i in kept]
    np.testing.assert_array_equal(ds.x_train, x[kept])
    again = Dataset.from_arrays(x, y, holdout=0.2, seed=3)
    np.testing.assert_array_equal(again.extras["holdout_index"], held)
    with pytest.raises(ValueError, match="either a test split .* or holdout="):
        Dataset.from_arrays(x, y, x, y, holdout=0.2)
    with pytest.raises(ValueError, match="sample_ids must be unique"):
        Dataset.from_arrays(x, y, sample_ids=["a"] * 30)


def test_ce_runs_without_a_test_split(tmp_path, digits):
    ds = Dataset.from_arrays(digits.x_train[:120], digits.y_train[:120], pixel_scale=16.0)
    noisy = ds.with_noise("none")
    assert noisy.is_noisy is None
    run = lnlkit.get_method("ce", preset="digits", epochs=1).fit(ds, out=tmp_path / "r", progress=False)
    assert run.result["status"] == "complete"
    assert run.result["test_acc_last"] is None or np.isnan(run.result["test_acc_last"])
    assert not any(k.startswith("sel_") for r in run.history for k in r)
    saved = np.load(tmp_path / "r" / "noise.npz")
    assert saved["is_noisy"].size == 0  # no truth, so no selection metrics against the given labels


# ------------------------------------------------------------------------------------------------ load_table
def _table(path, **columns):
    import pandas as pd

    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_table_loads_features_labels_and_ids(tmp_path):
    rng = np.random.default_rng(0)
    n = 12
    path = _table(
        tmp_path / "patients.csv",
        pid=[f"p{i}" for i in range(n)],
        age=rng.integers(20, 80, n),
        score=rng.random(n),
        diagnosis=["flu", "cold", "covid"] * 4,
    )
    ds = _quiet(load_table, path, label="diagnosis", id_column="pid", holdout=0.25)
    assert ds.name == "patients" and ds.x_train.dtype == np.float32 and ds.input_shape == (2,)
    assert ds.class_names == ["cold", "covid", "flu"] and ds.default_model == "mlp" and not ds.clean_train_known
    assert len(ds.y_test) == 3 and len(ds.sample_ids) == 9 and ds.extras["feature_names"] == ["age", "score"]
    assert all(s.startswith("p") for s in ds.sample_ids)
    plain = load_table(path, label="diagnosis", features=["score"])
    assert plain.input_shape == (1,) and list(plain.sample_ids[:2]) == ["0", "1"] and not plain.has_test


@pytest.mark.parametrize(
    "columns, kw, message",
    [
        (dict(a=[1.0, np.nan, 3.0, np.nan], y=[0, 1, 0, 1]), {}, r"column\(s\) 'a', 2 row\(s\) \(first: row 1"),
        (dict(a=[1, 2, 3, 4], note=list("wxyz"), y=[0, 1, 0, 1]), {}, "non-numeric feature column.*'note'.*features="),
        (dict(a=[1, 2, 3, 4], y=["u", None, "v", "u"]), {}, r"1 row\(s\) without a label .*rows 1"),
        (dict(a=[1, 2, 3, 4], y=[0, 1, 0, 1]), dict(label="target"), "no column.*'target'"),
    ],
)
def test_table_errors(tmp_path, columns, kw, message):
    path = _table(tmp_path / "t.csv", **columns)
    with pytest.raises(ValueError, match=message):
        load_table(path, **{"label": "y", **kw})


def test_table_non_numeric_column_can_be_left_out(tmp_path):
    path = _table(tmp_path / "t.csv", a=[1, 2, 3, 4], note=list("wxyz"), y=[0, 1, 0, 1])
    assert load_table(path, label="y", features=["a"]).input_shape == (1,)

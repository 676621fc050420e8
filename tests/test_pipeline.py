"""Each preset's data pipeline (normalisation, image-file decoding, initial weights), applied by every entry point.

Expected values are the official codes' constants and torchvision's transforms, written out here.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from fakedata import write_cifar10, write_cifar100, write_clothing_official, write_image  # noqa: E402
from methodtest import method_context  # noqa: E402
from PIL import Image

import lnlkit
from lnlkit.cli import main
from lnlkit.data import Dataset, ImageFiles, load_dataset
from lnlkit.data.images import ImageFileDataset, decode_image
from lnlkit.methods import get_method, list_methods, method_class
from lnlkit.train.loader import DeviceData

# mean / std after division by 255, as the official loaders write them
DIVIDEMIX_C10 = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))  # DivideMix/SMR/Me-Momentum dataloader_cifar.py
PROMIX_C10 = ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))  # ProMix dataloader_cifarn.py
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # Co-mining builder.py; Me-Momentum Clothing.py
PRUNE4REL_C100 = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))  # Prune4ReL CIFAR-100
CLOTHING_SMR = ((0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214))  # SMR dataloader_clothing1M.py


def _stats(ds):
    return tuple(np.round(ds.mean, 6)), tuple(np.round(ds.std, 6))


def _close(ds, expected):
    np.testing.assert_allclose(ds.mean, expected[0], atol=1e-9)
    np.testing.assert_allclose(ds.std, expected[1], atol=1e-9)


@pytest.fixture
def fake_cifar10(tmp_path):
    write_cifar10(tmp_path / "c10", per_batch=20, n_test=10)
    return tmp_path / "c10"


# ------------------------------------------------------------------------------------------------ normalisation
@pytest.mark.parametrize(
    "method, preset, expected",
    [
        ("promix", "cifar10-sym50", PROMIX_C10),
        ("comining", "cifar10nc", IMAGENET),
        ("dividemix", "cifar10-sym50", DIVIDEMIX_C10),
        ("smr", "cifar10-sym50", DIVIDEMIX_C10),
        ("mememomentum", "cifar10", DIVIDEMIX_C10),
        ("ce", "cifar10", DIVIDEMIX_C10),
        ("ce", "cifar-promix", PROMIX_C10),  # CE in ProMix's setting takes ProMix's pipeline
        ("prune4rel", "cifar10n-sop", DIVIDEMIX_C10),
    ],
)
def test_load_dataset_with_method_applies_the_presets_normalisation(fake_cifar10, method, preset, expected):
    ds = load_dataset("cifar10", fake_cifar10, method=get_method(method, preset=preset))
    _close(ds, expected)
    # a method name gives the method's own pipeline too
    if preset != "cifar-promix":
        _close(load_dataset("cifar10", fake_cifar10, method=method), expected)


def test_cifar100_and_clothing1m_pipelines(tmp_path):
    write_cifar100(tmp_path / "c100")
    _close(load_dataset("cifar100", tmp_path / "c100", method="prune4rel"), PRUNE4REL_C100)
    _close(load_dataset("cifar100", tmp_path / "c100", method="comining"), IMAGENET)
    write_clothing_official(tmp_path / "cl")
    _close(load_dataset("clothing1m", tmp_path / "cl", method="smr"), CLOTHING_SMR)
    _close(load_dataset("clothing1m", tmp_path / "cl", method="mememomentum"), IMAGENET)
    with pytest.raises(TypeError, match="not both"):
        load_dataset("cifar10", tmp_path / "c100", method="promix", normalization="promix")


def test_explicit_normalization_setting(fake_cifar10, small_digits):
    # "dataset" keeps what was loaded; an unknown name is a clear error; a name on a hand-made data set warns
    loaded = load_dataset("cifar10", fake_cifar10, normalization="comining")
    _close(loaded, IMAGENET)
    m = get_method("promix", preset="cifar10-sym50", normalization="dataset")
    from lnlkit.data.pipeline import apply_normalization

    _close(apply_normalization(loaded, *m.normalization_request()), IMAGENET)
    with pytest.raises(ValueError, match="unknown normalization"):
        load_dataset("cifar10", fake_cifar10, method=get_method("ce", preset="cifar10", normalization="nope"))
    with pytest.warns(UserWarning, match="own mean/std"):
        same = load_dataset("digits", method=get_method("ce", preset="digits", normalization="promix"))
    assert _stats(same) == _stats(load_dataset("digits"))
    # the digits have no table of official statistics: a method's own pipeline leaves them alone, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _stats(load_dataset("digits", method="promix")) == _stats(load_dataset("digits"))


class _Probe:
    """Mixin recording the normalisation the device data of a run uses."""

    def setup(self, ctx):
        self.seen = (ctx.data.mean.tolist(), ctx.data.std.tolist())
        super().setup(ctx)


def _tiny_ce(preset="cifar-promix", **kw):
    from lnlkit.methods.ce import CE

    cfg = CE.PRESETS[preset]()
    for k, v in {"epochs": 1, "model": "small_cnn", "batch_size": 32, "eval_batch_size": 64, **kw}.items():
        setattr(cfg, k, v)
    return type("ProbeCE", (_Probe, CE), {})(cfg, preset=preset)


def test_fit_renormalises_a_hand_loaded_dataset_warns_and_records(fake_cifar10, tmp_path):
    data = load_dataset("cifar10", fake_cifar10).with_noise("symmetric:0.4", seed=0)  # DivideMix statistics
    method = _tiny_ce()
    with pytest.warns(UserWarning, match="re-normalised"):
        run = method.fit(data, out=tmp_path / "r", progress=False)
    np.testing.assert_allclose(method.seen[1], PROMIX_C10[1], rtol=1e-6)  # the device data used ProMix's std
    rec = json.loads((run.path / "config.json").read_text())["data"]
    assert rec["normalization"] == "promix"
    np.testing.assert_allclose(rec["std"], PROMIX_C10[1])
    # loaded through the method: same statistics, no warning
    direct = load_dataset("cifar10", fake_cifar10, method=_tiny_ce()).with_noise("symmetric:0.4", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _tiny_ce().fit(direct, out=tmp_path / "r2", progress=False)


def test_cli_run_loads_with_the_presets_pipeline(fake_cifar10, tmp_path):
    out = tmp_path / "cli"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loaded through the preset: nothing to re-normalise
        code = main(
            [
                "run",
                "--method",
                "ce",
                "--preset",
                "cifar-promix",
                "--dataset",
                "cifar10",
                "--root",
                str(fake_cifar10),
                "--noise",
                "symmetric:0.4",
                "--epochs",
                "1",
                "--set",
                "model=small_cnn",
                "--set",
                "batch_size=32",
                "--out",
                str(out),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
    assert code == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["normalization"] == "promix" and cfg["hyperparameters"]["normalization"] == "promix"
    np.testing.assert_allclose(cfg["data"]["std"], PROMIX_C10[1])
    assert cfg["pretrained"] is False and cfg["from_scratch"] is False


def test_notebooks_load_data_through_the_methods_pipeline():
    # reproduce executes the notebooks: each training notebook must load its data with its method's pipeline
    from lnlkit.reproduce import NOTEBOOKS, default_notebooks_dir

    for spec in NOTEBOOKS:
        if not spec.methods:
            continue
        nb = json.loads((default_notebooks_dir() / spec.filename).read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "load_dataset(dataset, method=" in code, spec.filename


# ------------------------------------------------------------------------------------------------ image files
def _gradient_image(path, width, height):
    # every pixel distinct enough that a crop position can be told apart
    x = np.arange(width)[None, :, None]
    y = np.arange(height)[:, None, None]
    arr = np.concatenate(
        [
            np.broadcast_to(x * 255 // max(width - 1, 1), (height, width, 1)),
            np.broadcast_to(y * 255 // max(height - 1, 1), (height, width, 1)),
            np.full((height, width, 1), 7),
        ],
        axis=2,
    ).astype(np.uint8)
    write_image(path, array=arr)
    return arr


def _torchvision_resize(path, size):
    from torchvision.transforms import functional as TF

    with Image.open(path) as im:
        return np.asarray(TF.resize(im.convert("RGB"), size))


def test_decode_resizes_the_shorter_side_and_keeps_the_aspect_ratio(tmp_path):
    _gradient_image(tmp_path / "wide.png", 40, 20)
    _gradient_image(tmp_path / "tall.png", 15, 33)
    wide = decode_image(str(tmp_path / "wide.png"), 10)
    tall = decode_image(str(tmp_path / "tall.png"), 10)
    assert wide.shape == (10, 20, 3) and tall.shape == (int(10 * 33 / 15), 10, 3)  # torchvision's Resize(int)
    np.testing.assert_array_equal(wide, _torchvision_resize(tmp_path / "wide.png", 10))
    np.testing.assert_array_equal(tall, _torchvision_resize(tmp_path / "tall.png", 10))


def test_eval_and_train_crops_of_an_aspect_kept_image(tmp_path):
    from torchvision.transforms import functional as TF

    _gradient_image(tmp_path / "wide.png", 40, 20)
    files = ImageFiles(paths=(str(tmp_path / "wide.png"),), resize=10, crop=8)
    x, _, _ = ImageFileDataset(files, [0], train=False)[0]
    with Image.open(tmp_path / "wide.png") as im:
        ref = np.asarray(TF.center_crop(TF.resize(im.convert("RGB"), 10), 8))  # official Resize -> CenterCrop
    np.testing.assert_array_equal(x.numpy().transpose(1, 2, 0), ref)

    resized = _torchvision_resize(tmp_path / "wide.png", 10)  # (10, 20, 3)
    train = ImageFileDataset(files, [0], train=True)
    torch.manual_seed(0)
    lefts = set()
    for _ in range(40):
        img = train[0][0].numpy().transpose(1, 2, 0)
        # left offsets in the unflipped image: a flipped crop at offset l of the mirror starts at 12 - l
        hits = [
            12 - left if flip else left
            for flip, cand in ((False, resized), (True, resized[:, ::-1]))
            for t in range(3)
            for left in range(13)
            if np.array_equal(img, cand[t : t + 8, left : left + 8])
        ]
        assert hits  # a crop of the aspect-kept image (or its mirror)
        lefts.update(hits)
    assert max(lefts) > 2  # offsets reach across the long side (a 10x10 square allows only 0..2)


def test_each_view_is_an_independent_crop(tmp_path):
    paths, arrays = [], []
    for i in range(12):
        arrays.append(_gradient_image(tmp_path / f"im{i}.png", 24, 16))
        paths.append(str(tmp_path / f"im{i}.png"))
    files = ImageFiles(paths=tuple(paths), resize=16, crop=8)
    ds = Dataset(
        name="files",
        x_train=files,
        y_train=np.arange(12) % 3,
        x_test=files,
        y_test=np.arange(12) % 3,
        num_classes=3,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        pixel_scale=1.0,
    )
    data = DeviceData(ds.with_noise("none"), torch.device("cpu"), seed=0, num_workers=0)
    batch = next(iter(data.loader(12, augment=(None, None), shuffle=False).epoch(0)))
    v1, v2 = batch.views
    assert v1.shape == v2.shape == (12, 3, 8, 8)
    differ = [not torch.equal(v1[i], v2[i]) for i in range(12)]
    assert sum(differ) >= 9  # two independent draws of 9 x 17 offsets x 2 flips rarely coincide
    for view in (v1, v2):  # and each view is a crop of its own image
        for i in range(12):
            img = view[i].numpy().transpose(1, 2, 0).astype(np.uint8)
            resized = decode_image(paths[int(batch.index[i])], 16)
            assert any(
                np.array_equal(img, cand[t : t + 8, left : left + 8])
                for cand in (resized, resized[:, ::-1])
                for t in range(9)
                for left in range(17)
            )


# ------------------------------------------------------------------------------------------------ SMR recalibration
def test_smr_clothing_recalibration_runs_at_batch_b(small_digits):
    # official Train_clothing1M.py trains the recalibration epoch on eval_loader, whose batch size is B
    B = 16
    method = get_method("smr", preset="digits", batch_size=B, epoch_subset=200, epochs=4, warm_up=1)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    calls = []  # per call: (samples, largest batch)
    inner = ctx.data.iter_train_subset

    def spy(indices, batch_size):
        calls.append([0, 0])
        for idx, x in inner(indices, batch_size):
            calls[-1] = [calls[-1][0] + len(idx), max(calls[-1][1], len(idx))]
            yield idx, x

    ctx.data.iter_train_subset = spy
    method.recalibrate(ctx, 2)
    # the two training passes (one per network, each over the 200-sample pool) at batch B; the per-sample loss
    # pass that follows reads the whole set at the evaluation batch size
    assert calls[:2] == [[200, B], [200, B]]


# ------------------------------------------------------------------------------------------------ initial weights
# (method, preset) whose official code starts from ImageNet weights
PAPER_PRETRAINED = {
    ("ce", "clothing1m"),
    ("dividemix", "clothing1m"),
    ("smr", "clothing1m"),
    ("mememomentum", "clothing1m"),
    ("comining", "web-bird"),
    ("comining", "web-car"),
    ("comining", "web-aircraft"),
    *{
        (m, "clothing1m-dividemix")
        for m in (
            "prune4rel",
            "prune:uniform",
            "prune:smallloss",
            "prune:uncertainty",
            "prune:forgetting",
            "prune:grand",
            "prune:moderate",
            "prune:kcentergreedy",
            "prune:glister",
        )
    },
}


def test_exactly_the_papers_pretrained_presets_refuse_to_start_without_weights(small_digits, tmp_path):
    data = small_digits.with_noise("none")
    flagged = set()
    for name in list_methods():
        for preset in method_class(name).PRESETS:
            method = get_method(name, preset=preset)
            out = tmp_path / f"{name}-{preset}".replace(":", "_")
            try:
                method.pretrained_record()
            except ValueError as err:
                flagged.add((name, preset))
                assert "--set weights_path=FILE" in str(err) and "pretrained=false" in str(err)
                with pytest.raises(ValueError, match="weights_path=FILE"):
                    method.fit(data, out=out, progress=False)
                assert not out.exists()  # stopped before any folder, network or epoch
    assert flagged == PAPER_PRETRAINED


def test_pretrained_false_trains_from_scratch_and_the_tables_mark_it(small_digits, tmp_path):
    from lnlkit.runs import display_table, summary_table

    run = _tiny_ce("clothing1m", pretrained=False).fit(
        small_digits.with_noise("none"), out=tmp_path / "r" / "a", progress=False
    )
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["pretrained"] is False and cfg["from_scratch"] is True
    assert bool(lnlkit.results_table(tmp_path / "r")["from_scratch"].iloc[0])
    assert bool(lnlkit.results_table(tmp_path / "r", aggregate=True)["from_scratch"].iloc[0])
    assert display_table(summary_table(tmp_path / "r"))["preset"].iloc[0] == "clothing1m (from scratch)"
    # with a weights file the run records it (the record is made before the file is read)
    rec = get_method("dividemix", preset="clothing1m", weights_path="w/resnet50.pth").pretrained_record()
    assert rec == {"pretrained": "imagenet:w/resnet50.pth", "from_scratch": False}
    # and a CIFAR preset is not from scratch for the tables: its paper starts from random weights
    assert get_method("dividemix", preset="cifar10-sym50").pretrained_record() == {
        "pretrained": False,
        "from_scratch": False,
    }


def test_cli_stops_a_pretrained_preset_without_weights(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--method", "ce", "--preset", "clothing1m", "--out", str(out), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--set weights_path=FILE" in err and "--set pretrained=false" in err
    assert not out.exists()

"""The training substrate and the CE baseline: run folder contract, resume, callbacks, loaders, augmentation."""

import json

import numpy as np
import pytest
import torch

import lnlkit
from lnlkit.train.augment import Augment, cutout, random_crop, random_flip
from lnlkit.train.loader import DeviceData
from lnlkit.train.recorder import RUN_FILES, atomic_write_bytes, load_run, results_table


def _ce(**kw):
    return lnlkit.get_method("ce", preset="digits", **kw)


def test_run_folder_contract(digits, tmp_path):
    data = digits.with_noise("symmetric:0.4", seed=0)
    seen = []
    run = _ce(epochs=3).fit(data, out=tmp_path / "run", progress=False, callbacks=[seen.append])
    for name in RUN_FILES:
        assert (tmp_path / "run" / name).is_file(), name
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    for key in (
        "method",
        "preset",
        "hyperparameters",
        "dataset",
        "noise",
        "seed",
        "device",
        "lnlkit_version",
        "torch_version",
    ):
        assert key in cfg
    assert cfg["hyperparameters"]["lr"] == 0.05 and cfg["noise"] == "symmetric:0.4"
    with np.load(tmp_path / "run" / "noise.npz") as z:
        np.testing.assert_array_equal(z["labels"], data.labels)
        np.testing.assert_array_equal(z["is_noisy"], data.is_noisy)
        assert z["transition"].shape == (10, 10)
        np.testing.assert_array_equal(z["true_labels"], digits.y_train)
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [0, 1, 2] == [r["epoch"] for r in seen]
    for r in history:
        for key in ("phase", "lr", "loss", "test_acc", "wall_s"):
            assert key in r
    sig = run.signals
    assert sig["loss"].shape == (3, len(digits.y_train)) and sig["loss"].dtype == np.float16
    assert sig["epoch"].tolist() == [0, 1, 2]
    res = run.result
    assert res["status"] == "complete" and res["reported_as"] == "test_acc_last"
    assert res["test_acc_last"] == history[-1]["test_acc"]
    assert res["test_acc_best"] == max(r["test_acc"] for r in history)
    assert abs(res["realized_rate"] - data.noise.realized_rate) < 1e-12
    assert not list((tmp_path / "run").glob("*.tmp")), "temporary files left behind"


def test_per_sample_losses_separate_noisy_samples_early(digits, tmp_path):
    # after a few epochs the noisy samples have clearly higher loss than the clean ones (what GMM methods use)
    data = digits.with_noise("symmetric:0.4", seed=1)
    run = _ce(epochs=4).fit(data, out=tmp_path / "r", progress=False)
    loss = run.signals["loss"][-1].astype(float)
    assert loss[data.is_noisy].mean() > 3 * loss[~data.is_noisy].mean()


def test_existing_run_folder_is_not_overwritten(digits, tmp_path):
    data = digits.with_noise("symmetric:0.2", seed=0)
    _ce(epochs=1).fit(data, out=tmp_path / "r", progress=False)
    with pytest.raises(FileExistsError, match="resume"):
        _ce(epochs=1).fit(data, out=tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="differs in"):
        _ce(epochs=1, lr=0.01).fit(data, out=tmp_path / "r", progress=False, resume=True)


def test_a_second_fit_on_a_locked_run_folder_waits_then_resumes(digits, tmp_path):
    import threading

    from lnlkit.train.recorder import run_lock

    data = digits.with_noise("symmetric:0.2", seed=0)
    done = []
    with run_lock(tmp_path / "r"):  # another process is training into the folder
        worker = threading.Thread(
            target=lambda: done.append(_ce(epochs=1).fit(data, out=tmp_path / "r", progress=False, resume=True))
        )
        worker.start()
        worker.join(timeout=3.0)
        assert worker.is_alive() and not done  # it waits instead of writing alongside
    worker.join(timeout=120)
    assert done and done[0].complete


def test_from_arrays_flat_features_get_an_mlp(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    ds = lnlkit.Dataset.from_arrays(x[:150], y[:150], x[150:], y[150:], name="toy", clean_labels=True)
    assert ds.default_model == "mlp" and ds.num_classes == 2
    run = lnlkit.get_method("ce", lr=0.05, epochs=5, batch_size=32, lr_milestones=()).fit(
        ds.with_noise("symmetric:0.1", seed=0), out=tmp_path / "r", progress=False
    )
    assert run.result["test_acc_last"] > 80


def test_results_table_aggregates_seeds(digits, tmp_path):
    for seed in (0, 1):
        _ce(epochs=1).fit(digits.with_noise("pairflip:0.2", seed=seed), out=tmp_path / f"s{seed}", progress=False)
    rows = results_table(tmp_path)
    assert len(rows) == 2 and set(rows["seed"]) == {0, 1}
    agg = results_table(str(tmp_path / "s*"), aggregate=True)
    assert len(agg) == 1 and int(agg["seeds"].iloc[0]) == 2
    assert agg["test_acc_last_mean"].iloc[0] == pytest.approx(rows["test_acc_last"].mean())


# ------------------------------------------------------------------ loader and augmentation
def test_device_loader_is_a_permutation_and_replays(digits):
    data = DeviceData(digits.with_noise("symmetric:0.4", seed=0), torch.device("cpu"), seed=3)
    loader = data.loader(100, augment=[Augment(1, False), None], stream="t")
    batches = list(loader.epoch(0))
    idx = torch.cat([b.index for b in batches])
    assert sorted(idx.tolist()) == list(range(data.n_train)) and len(batches) == len(loader)
    assert len(batches[0].views) == 2 and batches[0].views[0].shape == (100, 1, 8, 8)
    torch.testing.assert_close(batches[0].y, data.labels[batches[0].index])
    again = next(iter(loader.epoch(0)))
    torch.testing.assert_close(again.views[0], batches[0].views[0])
    assert not torch.equal(next(iter(loader.epoch(1))).index, batches[0].index)
    sub = data.loader(7, indices=np.array([5, 9, 11]), shuffle=False)
    assert [b.index.tolist() for b in sub.epoch(0)] == [[5, 9, 11]]


def test_random_crop_translates_and_zero_pads():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out = random_crop(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    shifts = set()
    for img in out[:, 0]:
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ref = torch.zeros(6, 6)
                ref[1:5, 1:5] = x[0, 0]
                if torch.equal(img, ref[1 + dy : 5 + dy, 1 + dx : 5 + dx]):
                    shifts.add((dy, dx))
                    break
            else:
                continue
            break
        else:
            pytest.fail("crop is not a shifted window of the padded image")
    assert len(shifts) > 4
    assert torch.equal(random_crop(x, 0), x)


def test_flip_and_cutout():
    x = torch.randn(200, 3, 8, 8)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | kept).all()) and 60 < int(flipped.sum()) < 140
    c = cutout(torch.ones(50, 1, 16, 16), 4, torch.Generator().manual_seed(0))
    zeros = (c == 0).sum(dim=(1, 2, 3))
    assert int(zeros.max()) == 16 and int(zeros.min()) >= 4  # clipped at the border, never empty


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_load_run_rejects_non_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an lnlkit run folder"):
        load_run(tmp_path)

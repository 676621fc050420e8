"""The contract every registered method keeps, one parametrised test per clause over ``lnlkit.methods.METHODS``:

* the registry knows the method and every preset builds, validates and documents itself;
* ``preset_for`` maps the paper's (data set, noise) pairs to its presets and nothing else to them;
* bad settings raise ValueError at ``get_method``;
* clean data trains without NaN;
* empty or degenerate selections train without NaN;
* a run interrupted after an epoch and resumed equals an uninterrupted run;
* every paper preset runs one short epoch on fake data in its paper's on-disk format.

A new method gets the whole contract by adding one entry to ``CONTRACT`` (its short digits run, its resume run, its
paper presets); what a method needs beyond the common checks is a function in its entry, not a copied test.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import numpy as np
import pytest
import torch
from fakedata import write_cifar10, write_cifar100, write_cifarn, write_clothing_official, write_web_fg
from methodtest import interrupt_then_resume, method_context

import lnlkit
from lnlkit.methods import METHODS, list_methods, method_class

pytestmark = pytest.mark.usefixtures("one_thread")

PRUNE_BASELINES = ["uniform", "smallloss", "uncertainty", "forgetting", "grand", "moderate", "kcentergreedy", "glister"]


@pytest.fixture(scope="module")
def digits300(digits):
    """300 training / 100 test digits (the pruning methods' short runs; their budgets below are counted on 300)."""
    return lnlkit.Dataset.from_arrays(
        digits.x_train[:300],
        digits.y_train[:300],
        digits.x_test[:100],
        digits.y_test[:100],
        name="digits",
        num_classes=10,
        mean=digits.mean,
        std=digits.std,
        pixel_scale=16.0,
        clean_labels=True,
    )


def _finite_params(method) -> bool:
    nets = method.networks() if hasattr(method, "networks") else [method.net]
    return all(bool(torch.isfinite(p).all()) for net in nets for p in net.parameters())


def _finite(*values) -> bool:
    return all(math.isfinite(float(v)) for v in values)


# ================================================================================================ fake paper data
def _fake_cifar(root, dataset, noise, n, n_test, normalization=None, cifarn=False, method=None, monkeypatch=None):
    """Fake CIFAR pickles (``n`` training images: per batch for CIFAR-10, in all for CIFAR-100), a fake CIFAR-N file
    next to them when ``noise`` is a CIFAR-N label set."""
    if monkeypatch is not None:
        monkeypatch.delenv("LNLKIT_CIFARN_DIR", raising=False)
    if dataset == "cifar10":
        write_cifar10(root, per_batch=n, n_test=n_test)
    else:
        write_cifar100(root, n_train=n, n_test=n_test)
    kw = {}
    if normalization:
        kw["normalization"] = normalization
    if method is not None:
        kw["method"] = method
    ds = lnlkit.load_dataset(dataset, root=root, **kw)
    if cifarn:
        c100 = dataset == "cifar100"
        write_cifarn(root / ("CIFAR-100_human.pt" if c100 else "CIFAR-10_human.pt"), ds.y_train, c100)
    return ds.with_noise(noise, seed=0)


def _fake_arrays(kind):
    """WebVision / Clothing1M / ImageNet shaped random RGB arrays (the Prune4ReL/SOP runs: the image-file loaders are
    run by the CE, Co-mining and Me-Momentum entries; on the constant-colour fake Clothing1M images a freshly warmed-up
    ResNet-50's eval-mode BatchNorm gives NaN features).  WebVision's are 75×75, the smallest input of its
    Inception-ResNet-v2."""
    rng = np.random.default_rng(0)
    side = 75 if kind == "webvision" else 32
    x = rng.integers(0, 256, (12, 3, side, side), dtype=np.uint8)
    y = np.arange(12) % 5
    noise = "none" if kind == "clothing1m" else "symmetric:0.2"
    return lnlkit.Dataset.from_arrays(x, y, x[:4], y[:4], name=kind, num_classes=5, clean_labels=True).with_noise(
        noise, seed=0
    )


# ================================================================================================ per-method checks
# -- CE
def _ce_cifar10_check(run):
    assert run.signals["loss"].shape == (1, 30)


def _ce_clothing_data(tmp_path, monkeypatch):
    write_clothing_official(tmp_path / "clothing1m")
    ds = lnlkit.load_dataset("clothing1m", root=tmp_path / "clothing1m", resize=40, crop=32)
    assert not ds.clean_train_known
    return ds.with_noise("none")


def _ce_clothing_check(run):
    assert run.is_noisy is None and run.result["realized_rate"] is None
    assert run.signals["loss"].shape == (1, 6)


# -- DivideMix / SMR
DIVIDEMIX_CIFAR = {
    f"cifar{k}-sym{r}": (f"cifar{k}", f"symmetric-inclusive:0.{r[0]}")
    for k in ("10", "100")
    for r in ("20", "50", "80", "90")
}
DIVIDEMIX_CIFAR["cifar10-asym40"] = ("cifar10", "asym-cifar10:0.4")
DIVIDEMIX_CIFAR = dict(sorted(DIVIDEMIX_CIFAR.items(), key=lambda kv: (kv[0].startswith("cifar100"), kv[0])))


def _dividemix_fake_check(run):
    assert [r["phase"] for r in run.history] == ["warmup", "ssl"]
    assert run.config["hyperparameters"]["model"] == "preact_resnet18"
    assert run.signals["clean_prob"].shape == (1, 5) and "test_acc_net2" in run.history[-1]
    assert run.history[-1]["steps"] == 2  # one SSL step per network


def _dividemix_clean_check(run):
    assert [r["phase"] for r in run.history] == ["warmup", "ssl", "ssl"]
    assert np.isfinite(run.signals["clean_prob"][-1].astype(float)).all()


def _dividemix_degenerate(method, data, case):
    noisy = data.with_noise("symmetric:0.4", seed=0)
    ctx = method_context(method, noisy)
    before = [p.detach().clone() for p in method.nets[0].parameters()]
    pool = torch.arange(400)
    prob = {
        "empty_labelled": torch.zeros(400),
        "empty_unlabelled": torch.ones(400),
        "class_without_labelled": (torch.as_tensor(noisy.labels) != 0).float(),
    }[case]
    out = method.train_ssl(ctx, 1, k=0, pool=pool, prob=prob)
    assert _finite_params(method)
    sums = {k: float(v) for k, v in out["sums"].items()}
    if case == "empty_labelled":  # nothing to learn from: the network is untouched
        assert out["steps"] == 0
        assert all(torch.equal(a, b) for a, b in zip(before, method.nets[0].parameters()))
    else:
        assert out["steps"] == math.ceil(int((prob > 0.5).sum()) / method.config.batch_size)
        assert all(math.isfinite(v) for v in sums.values())
    if case == "empty_unlabelled":
        assert sums["loss_u"] == 0.0


# -- Co-mining
COMINING_CIFAR = {
    "cifar10nc": ("cifar10", "symmetric:0.4"),
    "cifar100nc": ("cifar100", "pairflip:0.4"),
    "cifar80no": ("cifar100", "openset:0.2+symmetric:0.4"),
}


def _comining_cifar_check(preset, run):
    assert method_class("comining").preset_for(*COMINING_CIFAR[preset]) == preset
    assert [r["phase"] for r in run.history] == ["warmup", "train"]
    assert run.config["hyperparameters"]["model"] == "cnn7" and run.history[-1]["steps"] == 2
    assert run.result["forget_rate"] == pytest.approx(0.52 if preset == "cifar80no" else 0.4)
    assert run.signals["selected"].shape == (2, 10)


def _comining_web_data(subset, tmp_path, monkeypatch):
    root = write_web_fg(tmp_path / "webfg", subset)
    with pytest.warns(UserWarning, match="expected"):
        data = lnlkit.load_dataset(subset, root=root, resize=36, crop=32)
    return data.with_noise("none")


def _comining_web_check(run):
    assert [r["phase"] for r in run.history] == ["warmup", "train"]
    assert run.history[-1]["steps"] == 2 and run.result["forget_rate"] == 0.25
    assert all(math.isfinite(run.history[-1][k]) for k in ("loss", "loss_tri", "loss_re"))
    assert run.history[-1]["loss_tri"] > 0  # m = 0.4: the faithful term pushes the hardest negatives


def _comining_clean_check(run):
    assert run.result["forget_rate"] == 0.0
    assert run.signals["selected"][-1].all()  # r = 0: everything is clean
    assert np.isfinite(run.signals["score"].astype(float)).all()


def _comining_degenerate(method, data, case):
    from lnlkit.methods.comining import FeatureBank

    ctx = method_context(method, data.with_noise("symmetric:0.4", seed=0))
    x = ctx.data.train_inputs(torch.arange(20))
    y = ctx.data.labels[:20].clone()
    if case == "class_without_selected":
        y[:] = 3  # only one class present: every other class has no selected sample and no bank entry
    method.train_step(ctx, x, x, y, warmup=True)
    out = method.train_step(ctx, x, x, y, warmup=False)
    assert all(math.isfinite(float(v)) for v in out["terms"].values())
    assert _finite_params(method)
    if case == "no_clean":
        assert int(out["selected"].sum()) == 0 and int(out["candidate"].sum()) == 20
    if case == "no_candidates":
        assert int(out["candidate"].sum()) == 0 and float(out["terms"]["loss_re"]) == 0.0
    # a single-sample batch and an empty bank
    method.banks = [FeatureBank(8), FeatureBank(8)]
    out = method.train_step(ctx, x[:1], x[:1], y[:1], warmup=False)
    assert all(math.isfinite(float(v)) for v in out["terms"].values())


# -- Me-Momentum
_MM_SHORT = dict(
    max_phase_a_epochs=1,
    round_epochs=1,
    max_inner_rounds=1,
    outer_loops=1,
    batch_size=4,
    eval_batch_size=16,
    checkpoint_every=100,
)


def _mm_short_check(run, phases=("phase_a", "round")):
    assert [r["phase"] for r in run.history] == list(phases)
    assert all(math.isfinite(r["loss"]) for r in run.history if r["steps"])
    assert math.isfinite(run.history[-1]["test_acc"]) and run.result["reported_as"] == "test_at_best_val"


def _mm_cifar_check(preset, run):
    _mm_short_check(run)
    assert run.config["hyperparameters"]["model"] == ("resnet18" if preset == "cifar10" else "resnet34")
    assert run.signals["holdout"][0].sum() == 2 and run.signals["selected"].shape == (2, 20)


def _mm_mnist_data(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20, 1, 28, 28), dtype=np.uint8)
    y = np.arange(20) % 10
    ds = lnlkit.Dataset.from_arrays(
        x, y, x[:5], y[:5], name="mnist", mean=[0.1307], std=[0.3081], pixel_scale=255.0, clean_labels=True
    )
    return ds.with_noise("instance:0.4", seed=0)


def _mm_mnist_check(run):
    _mm_short_check(run)
    assert run.config["hyperparameters"]["model"] == "lenet"


def _mm_clothing_data(tmp_path):
    write_clothing_official(tmp_path / "clothing1m")
    return lnlkit.load_dataset("clothing1m", root=tmp_path / "clothing1m", resize=40, crop=32).with_noise("none")


def _mm_clothing_check(run):
    assert [(r["outer"], r["round"]) for r in run.history] == [(0, 1), (0, 2)]
    assert run.history[0]["n_class_improved"] > 0 and "n_extracted" in run.history[1]
    best = [r for r in run.history if r["new_global_best"]]
    assert best and run.result["reported"] == best[-1]["test_acc"]
    assert "holdout" not in run.signals and run.signals["selected"].shape == (2, 6)


def _mm_clean_check(run):
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["val_acc"]) for r in run.history)
    assert run.result["sel_precision"] == 1.0


def _mm_degenerate(method, data, case):
    from lnlkit.methods.me_momentum import LoopState, MeMomentum

    ctx = method_context(method, data.with_noise("symmetric:0.4", seed=0))
    method.train_epoch(ctx, 0)
    labels = ctx.data.labels
    if case == "empty_confident":  # nothing confident: the round trains zero steps, no NaN anywhere
        method.loop = LoopState(phase="round", round=1, best_val=10.0)
        method._predict = lambda ctx, idx, aug, epoch, stream: torch.nn.functional.one_hot(
            (labels[idx] + 1) % 10, 10
        ).float()
        out = method.train_epoch(ctx, 1)
        assert out.record["n_extracted"] == 0 and out.record["steps"] == 0 and _finite_params(method)
        assert not out.signals["selected"].any() and math.isfinite(out.record["val_acc"])
        return
    # every sample confident except class 0's
    method.loop = LoopState(phase="round", round=2, best_val=10.0)
    real = MeMomentum._predict

    def predict_all_but_class0(ctx, idx, aug, epoch, stream):
        if stream == "extract":
            given = labels[idx]
            return torch.nn.functional.one_hot(torch.where(given == 0, 1, given), 10).float()
        return real(method, ctx, idx, aug, epoch, stream)

    method._predict = predict_all_but_class0
    out = method.train_epoch(ctx, 2)
    kept = method.train_set
    assert out.record["steps"] > 0 and not (labels[kept] == 0).any() and _finite_params(method)


# -- ProMix
PROMIX_PRESETS = {
    **{k: v for k, v in DIVIDEMIX_CIFAR.items()},
    **{f"cifar10n-{k}": ("cifar10", f"cifar10n:{k}") for k in ("aggre", "rand1", "rand2", "rand3", "worst")},
    "cifar100n-noisy": ("cifar100", "cifar100n:noisy"),
}


def _promix_data(preset, tmp_path, monkeypatch):
    dataset, noise = PROMIX_PRESETS[preset]
    return _fake_cifar(
        tmp_path / "data",
        dataset,
        noise,
        2 if dataset == "cifar10" else 10,
        2,
        normalization="promix",
        cifarn=noise.startswith("cifar"),
        monkeypatch=monkeypatch,
    )


def _promix_fake_check(preset, run):
    # the preset's ResNet-18 is swapped for a tiny CNN here (test_promix.py runs the real backbone once)
    assert method_class("promix").PRESETS[preset]().model == "resnet18"
    assert [r["phase"] for r in run.history] == ["warmup", "ssl"]
    last = run.history[-1]
    assert last["steps"] == 2 and last["lga_active"] and {"test_acc_net2", "test_acc_ap_net1", "loss_fmix"} <= set(last)
    assert run.signals["selected_css"].shape == (1, 10) and math.isfinite(last["loss"])


def _promix_clean_check(run):
    assert [r["phase"] for r in run.history] == ["warmup", "ssl", "ssl"]
    assert np.isfinite(run.signals["loss"][-1].astype(float)).all()


def _promix_degenerate(method, data, case):
    from lnlkit.train.loader import stream_numpy_generator

    ctx = method_context(method, data.with_noise("symmetric:0.4", seed=0))
    prior, prior_u = method.prior.clone(), method.prior_u.clone()
    loader = ctx.data.loader(64, augment=[method.weak, method.strong], drop_last=True, stream="test")
    batch = next(iter(loader.epoch(20)))
    flags = {
        "empty_selected": torch.zeros(len(batch.y), dtype=torch.bool),
        "empty_unselected": torch.ones(len(batch.y), dtype=torch.bool),
        "class_without_selected": batch.y != 0,
    }[case]
    out = method.ssl_step(
        ctx,
        batch,
        flags.expand(2, -1).clone(),
        1.0,
        0.1,
        True,
        stream_numpy_generator(0, 20, "t"),
        ctx.generator(20, "t"),
    )
    assert _finite_params(method) and all(math.isfinite(float(v)) for v in out["losses"].values())
    assert torch.isfinite(method.prior).all() and torch.isfinite(method.prior_u).all()
    if case == "empty_selected":  # the primary heads learn only from L: no gradient reaches them
        assert all(net.fc.weight.grad is None for net in method.nets)
        assert torch.equal(method.prior, prior) and float(out["losses"]["loss_ce"]) == 0.0
        assert bool((out["target"] == -1).all())
    if case == "empty_unselected":
        assert torch.equal(method.prior_u, prior_u) and float(out["losses"]["loss_u"]) == 0.0
    if case == "class_without_selected":  # tau = 1: no MHCS and no LGA, so class 0 stays out of L entirely
        assert bool((out["target"][:, batch.y == 0] == -1).all()) and bool((out["target"][:, batch.y != 0] >= 0).all())


# -- SOP / Prune4ReL
PRUNE_KIND = {
    "cifar10n-sop": "cifar10",
    "cifar100n-sop": "cifar100",
    "cifar10n-dividemix": "cifar10",
    "cifar100n-dividemix": "cifar100",
    "webvision-sop": "webvision",
    "clothing1m-dividemix": "clothing1m",
    "imagenet-sop": "imagenet",
    "cifar100-sop-sym50": "cifar100",
    "cifar100-sop-asym40": "cifar100",
    "webvision": "webvision",
}


def _prune_data(preset, tmp_path, monkeypatch):
    kind = PRUNE_KIND[preset]
    if kind in ("cifar10", "cifar100"):
        return _fake_cifar(
            tmp_path / "data",
            kind,
            "cifar10n:worst" if kind == "cifar10" else "cifar100n:noisy",
            2 if kind == "cifar10" else 10,
            2,
            cifarn=True,
            monkeypatch=monkeypatch,
        )
    return _fake_arrays(kind)


def _prune_fake_check(run):
    assert math.isfinite(run.result["reported"]) and run.signals["selected"][-1].sum() > 0


def _sop_fake_check(run):
    assert math.isfinite(run.history[-1]["loss"])


def _prune_clean_check(run):
    assert run.signals["selected"][-1].sum() == 3  # ratio 0.01 of 300: fewer samples than classes


def _sop_clean_check(run):
    assert all(math.isfinite(v) for k, v in run.history[-1].items() if k.startswith("loss"))


def _baseline_clean_check(run):
    assert abs(int(run.signals["selected"][-1].sum()) - 75) <= 10  # ratio 0.25 of 300


def _sop_degenerate(method, data, case):
    ctx = method_context(method, data.with_noise("symmetric:0.4", seed=0))
    method.train_indices = np.zeros(0, dtype=np.int64)  # nothing selected
    out = method.train_epoch(ctx, 0)
    assert out.record["steps"] == 0 and _finite_params(method)


# ================================================================================================ the table
@dataclasses.dataclass
class Contract:
    """What the contract tests need to know about one registered method.

    ``short`` turns its ``digits`` preset into a run of a second or two (epochs, batches; never the algorithm);
    ``data`` names the digits fixture of the short runs; ``clean_keys`` are the history fields that must be finite on
    clean data (in the records from ``clean_from`` on); ``resume`` is the (noise, overrides, crash-after epochs,
    run length) of the resume check and ``resume_result`` the result.json fields it compares; ``fake`` maps a paper
    preset to (fake-data builder, overrides, check); ``not_run`` names the presets no fake run covers, with why;
    ``degenerate`` maps a case to a function(method, data, case) run on a fresh short method (or to a pair of it and
    the case's own overrides)."""

    reported_as: str
    short: dict
    preset_for: dict  # (data set, noise) -> preset or None
    invalid: list  # (overrides, message regex)
    data: str = "small_digits"
    clean_keys: tuple = ("loss", "test_acc")
    clean_from: int = 0
    clean_short: dict = dataclasses.field(default_factory=dict)
    clean_check: object = None
    resume: tuple = ("symmetric:0.4", 0, {}, (1,), None)
    resume_result: tuple = ("reported", "status")
    fake: dict = dataclasses.field(default_factory=dict)
    not_run: dict = dataclasses.field(default_factory=dict)
    degenerate: dict = dataclasses.field(default_factory=dict)
    degenerate_short: dict = dataclasses.field(default_factory=dict)


def _cifar_fake(dataset, noise, n, n_test, **kw):
    return lambda preset, tmp_path, monkeypatch: _fake_cifar(
        tmp_path / "data", dataset, noise, n, n_test, monkeypatch=monkeypatch, **kw
    )


_CE_FAKE = dict(epochs=1, batch_size=8, eval_batch_size=16)
_DM_SHORT = {"preset": "digits", "epochs": 2, "warm_up": 1, "checkpoint_every": 100}
_DM_FAKE = dict(epochs=1, warm_up=1, batch_size=4, eval_batch_size=16, record_train_loss=False, checkpoint_every=100)
_DM_PRESET_FOR = {
    **{pair: name for name, pair in DIVIDEMIX_CIFAR.items()},
    ("cifar10", "symmetric-inclusive:0.5"): "cifar10-sym50",
    ("CIFAR10", "symmetric-inclusive:0.90"): "cifar10-sym90",
    ("clothing1m", "none"): "clothing1m",
    ("webvision", None): "webvision",
    ("animal10n", "none"): "animal10n",
    ("digits", "pairflip:0.4"): "digits",
    **{
        pair: None
        for pair in (
            ("cifar10", "symmetric-inclusive:0.4"),
            ("cifar10", "symmetric:0.5"),
            ("cifar100", "asym-cifar10:0.4"),
            ("cifar10", None),
            ("clothing1m", "symmetric:0.2"),
            ("mnist", "symmetric:0.2"),
            ("cifar10", "asym-cifar10:abc"),
        )
    },
}
_DM_NOT_RUN = {
    "animal10n": "no fake Animal-10N writer yet (VGG-19-BN on 64x64 images)",
    "clothing1m": "ResNet-50 on image files: the loader runs in the CE and Me-Momentum entries",
    "webvision": "InceptionResNetV2 at 299 pixels: too slow for a CPU test",
}
_DM_SSL_DEGENERATE = {
    case: _dividemix_degenerate for case in ("empty_labelled", "empty_unlabelled", "class_without_labelled")
}
_DM_INVALID = [
    (dict(labelled_only=True, lambda_u=25.0), "lambda_u=0"),
    (dict(warmup_loss="cutmix"), "warmup_loss"),
    (dict(recal_period=0), "recal_period"),
    (dict(epoch_subset=100, loss_history=5), "epoch_subset"),
]


def _dm_fake(parity):
    """The CIFAR settings alternate between DivideMix and SMR (their presets differ only in the warm-up,
    recalibration and batch settings, which every run exercises); the other method is listed as covered."""
    names = list(DIVIDEMIX_CIFAR)
    return {
        name: (
            _cifar_fake(*DIVIDEMIX_CIFAR[name], 1 if DIVIDEMIX_CIFAR[name][0] == "cifar10" else 5, 2),
            _DM_FAKE,
            _dividemix_fake_check,
        )
        for i, name in enumerate(names)
        if i % 2 == parity
    }


def _dm_covered(parity, other):
    names = list(DIVIDEMIX_CIFAR)
    return {name: f"run by the {other} entry" for i, name in enumerate(names) if i % 2 != parity}


_PRUNE_SHORT = {"preset": "digits", "epochs": 2, "warmup_epochs": 1, "checkpoint_every": 100}
_PRUNE_NOT_RUN = {
    p: "the same preset runs in the prune4rel entry (only the selector differs)"
    for p in (
        "cifar10n-sop",
        "cifar100n-sop",
        "cifar10n-dividemix",
        "cifar100n-dividemix",
        "webvision-sop",
        "clothing1m-dividemix",
        "imagenet-sop",
    )
}
_PRUNE_FAKE = dict(epochs=1, warmup_epochs=1, ratio=0.5, eval_batch_size=16, batch_size=4, pretrained=False)


def _baseline(selector):
    return Contract(
        reported_as="test_acc_last",
        data="digits300",
        short={**_PRUNE_SHORT, "ratio": 0.25},
        preset_for={("digits", "symmetric:0.4"): "digits"},
        invalid=[({"ratio": 0.0}, "ratio")],
        clean_short={"epochs": 1},
        clean_check=_baseline_clean_check,
        resume=("symmetric:0.4", 1, {"epochs": 2}, (0,), None),
        resume_result=("test_acc_last", "status"),
        not_run=_PRUNE_NOT_RUN,
    )


CONTRACT: dict[str, Contract] = {
    "ce": Contract(
        reported_as="test_acc_last",
        short={"preset": "digits", "epochs": 2},
        preset_for={
            ("cifar10", "symmetric:0.4"): "cifar10",
            ("Digits", None): "digits",
            ("webvision", None): None,
        },  # no WebVision preset: the config's defaults apply
        invalid=[({"lr": -1.0}, "lr")],
        data="digits",
        resume=("symmetric:0.4", 0, {"epochs": 6}, (3,), 6),
        resume_result=("test_acc_last", "test_acc_best", "best_epoch", "reported", "epochs_done", "status"),
        fake={
            "cifar10": (
                lambda p, t, m: _fake_cifar(
                    t / "data", "cifar10", "asym-cifar10:0.4", 6, 8, method=lnlkit.get_method("ce", preset=p)
                ),
                _CE_FAKE,
                _ce_cifar10_check,
            ),
            "cifar-promix": (
                lambda p, t, m: _fake_cifar(
                    t / "data", "cifar10", "asym-cifar10:0.4", 6, 8, method=lnlkit.get_method("ce", preset=p)
                ),
                _CE_FAKE,
                _ce_cifar10_check,
            ),
            "cifar100": (_cifar_fake("cifar100", "symmetric:0.2", 24, 8), _CE_FAKE, None),
            "clothing1m": (
                lambda p, t, m: _ce_clothing_data(t, m),
                {**_CE_FAKE, "pretrained": False},
                _ce_clothing_check,
            ),
        },
    ),
    "dividemix": Contract(
        reported_as="ensemble_acc_last",
        short=_DM_SHORT,
        preset_for=_DM_PRESET_FOR,
        invalid=_DM_INVALID,
        clean_keys=("loss", "loss_x", "loss_u", "penalty", "test_acc"),
        clean_from=1,
        clean_check=_dividemix_clean_check,
        resume=("pairflip:0.3", 1, {"epochs": 3}, (1,), 4),
        resume_result=("test_acc_last", "test_acc_best", "reported", "sel_precision", "status"),
        fake=_dm_fake(0),
        not_run={**_DM_NOT_RUN, **_dm_covered(0, "smr")},
        degenerate=_DM_SSL_DEGENERATE,
    ),
    "smr": Contract(
        reported_as="ensemble_acc_last",
        short=_DM_SHORT,
        preset_for=_DM_PRESET_FOR,
        invalid=_DM_INVALID,
        # the checkpoint after epoch 3 holds the loss history of SSL epoch 2 (recalibration does not extend it)
        resume=("pairflip:0.3", 1, {"epochs": 4, "recal_period": 3, "loss_history": 2}, (3,), 5),
        resume_result=("test_acc_last", "test_acc_best", "reported", "sel_precision", "status"),
        fake=_dm_fake(1),
        not_run={**_DM_NOT_RUN, **_dm_covered(1, "dividemix")},
    ),
    "comining": Contract(
        reported_as="mean_last10",
        short={"preset": "digits", "epochs": 2, "warmup_epochs": 1, "checkpoint_every": 100, "bank_size": 128},
        preset_for={
            ("cifar10", "symmetric:0.5"): "cifar10nc",
            ("cifar100", "pairflip:0.4"): "cifar100nc",
            ("cifar100", "openset:0.2+symmetric:0.4"): "cifar80no",
            ("web-aircraft", "none"): "web-aircraft",
            ("digits", "openset:0.2+symmetric:0.2"): "digits",
            **{
                pair: None
                for pair in (
                    ("cifar10", "openset:0.2+symmetric:0.4"),
                    ("cifar10", "asym-cifar10:0.4"),
                    ("cifar10", None),
                    ("web-bird", "symmetric:0.2"),
                    ("mnist", "symmetric:0.2"),
                    ("cifar10", "symmetric:abc"),
                )
            },
        },
        invalid=[
            (dict(relabel_slice="middle"), "relabel_slice"),
            (dict(triplet_mode="soft"), "triplet_mode"),
            (dict(web_backbone="vgg"), "web_backbone"),
            (dict(optimizer="rmsprop"), "optimizer"),
            (dict(epsilon=1.0), "epsilon"),
            (dict(pos_window=(5, 0)), "pos_window"),
            (dict(open_ratio=1.0), "open_ratio"),
            (dict(bank_size=0), "bank_size"),
            (dict(sigma=1.5), "sigma"),
            (dict(lr_schedule="step"), "lr_schedule"),
        ],
        clean_keys=("loss", "loss_cls", "loss_pc", "loss_tri", "loss_re", "test_acc"),
        clean_check=_comining_clean_check,
        resume=("pairflip:0.3", 1, {"epochs": 4, "triplet_mode": "corrected", "decay_start": 2}, (2,), 4),
        resume_result=("reported", "reported_std", "test_acc_best", "status"),
        fake={
            **{
                p: (
                    _cifar_fake(d, n, 2 if d == "cifar10" else 10, 4 if d == "cifar10" else 20),
                    dict(epochs=2, warmup_epochs=1, batch_size=5, eval_batch_size=16, checkpoint_every=100),
                    partial(_comining_cifar_check, p),
                )
                for p, (d, n) in COMINING_CIFAR.items()
            },
            **{
                s: (
                    lambda p, t, m: _comining_web_data(p, t, m),
                    dict(epochs=2, warmup_epochs=1, batch_size=5, checkpoint_every=100, pretrained=False),
                    _comining_web_check,
                )
                for s in ("web-bird", "web-car", "web-aircraft")
            },
        },
        degenerate={
            "no_clean": (_comining_degenerate, {"forget_rate": 1.0}),
            "no_candidates": (_comining_degenerate, {"forget_rate": 0.0}),
            "class_without_selected": (_comining_degenerate, {"forget_rate": 0.4}),
        },
        degenerate_short={"relabel_slice": "intended"},
    ),
    "mememomentum": Contract(
        reported_as="test_at_best_val",
        short={
            "preset": "digits",
            "max_phase_a_epochs": 2,
            "round_epochs": 2,
            "max_inner_rounds": 3,
            "outer_loops": 2,
            "checkpoint_every": 100,
        },
        preset_for={
            ("cifar100", "instance:0.4"): "cifar100",
            ("clothing1m", "none"): "clothing1m",
            ("clothing1m", "symmetric:0.2"): None,
            ("webvision", None): None,
        },
        invalid=[
            (dict(variant="other"), "variant"),
            (dict(extract_transform="aug"), "extract_transform"),
            (dict(val_transform="x"), "val_transform"),
            (dict(stem_padding=2), "stem_padding"),
            (dict(val_fraction=0.0), "val_fraction"),
            (dict(round_epochs=0), "round_epochs"),
            (dict(beta=1.5), "beta"),
            (dict(margin_step=0), "margin_step"),
        ],
        clean_short={"outer_loops": 1},
        clean_check=_mm_clean_check,
        resume=("symmetric:0.4", 0, {"outer_loops": 1}, (1,), None),
        resume_result=("reported", "status"),
        fake={
            "cifar10": (
                _cifar_fake("cifar10", "symmetric:0.4", 4, 2, normalization="mememomentum"),
                _MM_SHORT,
                partial(_mm_cifar_check, "cifar10"),
            ),
            "cifar100": (
                _cifar_fake("cifar100", "symmetric:0.4", 20, 2, normalization="mememomentum"),
                _MM_SHORT,
                partial(_mm_cifar_check, "cifar100"),
            ),
            "mnist": (lambda p, t, m: _mm_mnist_data(t, m), _MM_SHORT, _mm_mnist_check),
            "clothing1m": (
                lambda p, t, m: _mm_clothing_data(t),
                dict(
                    round_epochs=1,
                    max_inner_rounds=2,
                    outer_loops=1,
                    batch_size=4,
                    eval_batch_size=8,
                    checkpoint_every=100,
                    pretrained=False,
                ),
                _mm_clothing_check,
            ),
        },
        degenerate={"empty_confident": _mm_degenerate, "class_without_confident": _mm_degenerate},
    ),
    "promix": Contract(
        reported_as="ensemble_acc_last",
        short={"preset": "digits", "epochs": 2, "warm_up": 1, "checkpoint_every": 100},
        preset_for={
            ("cifar10", "symmetric-inclusive:0.5"): "cifar10-sym50",
            ("CIFAR100", "symmetric-inclusive:0.90"): "cifar100-sym90",
            ("digits", "pairflip:0.4"): "digits",
            **{pair: name for name, pair in PROMIX_PRESETS.items()},
            **{
                pair: None
                for pair in (
                    ("cifar10", "symmetric:0.5"),
                    ("cifar10", "symmetric-inclusive:0.4"),
                    ("cifar100", "cifar10n:worst"),
                    ("cifar10", None),
                    ("cifar10", "asym-cifar10:x"),
                )
            },
        },
        invalid=[
            (dict(rho=1.5), "rho"),
            (dict(tau=-0.1), "tau"),
            (dict(css_quota="global"), "css"),
            (dict(start_expand=-1), "start"),
            (dict(warm_up=-1), "warm"),
            (dict(temperature=0.0), "temperature"),
            (dict(augment_order="crop"), "augment"),
            (dict(mixup_alpha=0.0), "mixup"),
            (dict(model_width=0), "model"),
        ],
        clean_keys=("loss", "loss_ce", "loss_u", "loss_ap", "test_acc"),
        clean_from=1,
        clean_check=_promix_clean_check,
        resume=("pairflip:0.3", 1, {"epochs": 3, "start_expand": 2}, (2,), 4),
        fake={
            p: (
                lambda p, t, m: _promix_data(p, t, m),
                dict(
                    epochs=1,
                    warm_up=1,
                    batch_size=4,
                    eval_batch_size=16,
                    start_expand=1,
                    record_train_loss=False,
                    checkpoint_every=100,
                    model="small_cnn",
                    model_width=4,
                ),
                partial(_promix_fake_check, p),
            )
            for p in PROMIX_PRESETS
        },
        degenerate={
            case: _promix_degenerate for case in ("empty_selected", "empty_unselected", "class_without_selected")
        },
        degenerate_short={"tau": 1.0},
    ),  # no MHCS: the CSS flags decide
    "sop": Contract(
        reported_as="test_acc_last",
        data="digits300",
        short={"preset": "digits", "epochs": 2, "checkpoint_every": 100},
        preset_for={("cifar10", "cifar10n:worst"): "cifar10n"},
        invalid=[({"rc": -1.0}, "rc"), ({"lr_schedule": "step"}, "lr_schedule"), ({"lr_u": -1.0}, "lr_u")],
        clean_short={"epochs": 1},
        clean_check=_sop_clean_check,
        resume=("pairflip:0.4", 0, {"epochs": 3}, (1,), 3),
        resume_result=("reported", "status"),
        fake={
            p: (lambda p, t, m: _prune_data(p, t, m), dict(epochs=1, eval_batch_size=16, batch_size=4), _sop_fake_check)
            for p in ("cifar100-sop-sym50", "cifar100-sop-asym40", "webvision")
        },
        not_run={
            p: "the learner of the prune4rel preset of the same data (test_prune4rel.py checks them equal)"
            for p in ("cifar10n", "cifar100n")
        },
        degenerate={"empty_batch_list": _sop_degenerate},
    ),
    "prune4rel": Contract(
        reported_as="test_acc_last",
        data="digits300",
        short=_PRUNE_SHORT,
        preset_for={("digits", "symmetric:0.4"): "digits", ("cifar100", "cifar100n:noisy"): "cifar100n-sop"},
        invalid=[
            ({"ratio": 0.0}, "ratio"),
            ({"tau": 1.5}, "tau"),
            ({"gain": "exact"}, "gain"),
            ({"score_view": "test"}, "score_view"),
            ({"learner": "elr"}, "learner"),
            ({"metric": "l1"}, "metric"),
            ({"eta": 0.0}, "eta"),
            ({"uncertainty": "x"}, "uncertainty"),
            ({"selector": "uniform"}, "prune:<selector>"),
        ],
        clean_short={"ratio": 0.01},
        clean_check=_prune_clean_check,
        # stop after the warm-up (before the selection), then after the first subset epoch
        resume=("symmetric:0.4", 0, {"epochs": 3, "warmup_epochs": 2, "ratio": 0.3}, (1, 2), 5),
        resume_result=("test_acc_last", "status"),
        fake={
            p: (lambda p, t, m: _prune_data(p, t, m), _PRUNE_FAKE, _prune_fake_check)
            for p in (
                "cifar10n-sop",
                "cifar100n-sop",
                "cifar10n-dividemix",
                "cifar100n-dividemix",
                "webvision-sop",
                "clothing1m-dividemix",
                "imagenet-sop",
            )
        },
    ),
    **{f"prune:{b}": _baseline(b) for b in PRUNE_BASELINES},
}
# presets that only change the digits preset's scale or flip one switch: the short digits runs cover them
DIGITS_VARIANTS = ("digits",)


def _method(name, **overrides):
    spec = CONTRACT[name]
    kw = {**spec.short, **overrides}
    return lnlkit.get_method(name, **kw)


def _data(request, spec):
    return request.getfixturevalue(spec.data)


def _ids(pairs):
    return [f"{a}-{b}" for a, b in pairs]


# ================================================================================================ registry and presets
def test_every_registered_method_has_a_contract_entry():
    assert set(CONTRACT) == set(METHODS) == set(list_methods())


@pytest.mark.parametrize("name", list(METHODS))
def test_registry_and_presets(name):
    cls = method_class(name)
    spec = CONTRACT[name]
    assert cls.name == name and method_class(name.upper()) is cls and cls.reported_as == spec.reported_as
    assert "digits" in cls.PRESETS
    for preset, build in cls.PRESETS.items():
        cfg = build()
        cfg.validate()
        assert isinstance(cfg, cls.Config), (name, preset)
        assert build.__doc__ and len(build.__doc__) > 40, (name, preset)
        assert lnlkit.get_method(name, preset=preset).config == cfg
    # every paper preset is run on fake data below, or its entry says why not
    paper = {p for p in cls.PRESETS if not p.startswith(DIGITS_VARIANTS)}
    assert paper == set(spec.fake) | set(spec.not_run), name
    assert not set(spec.fake) & set(spec.not_run)
    with pytest.raises(ValueError, match="unknown preset"):
        lnlkit.get_method(name, preset="no-such-preset")
    with pytest.raises(ValueError, match="unknown setting"):
        lnlkit.get_method(name, no_such_setting=1)


def test_aliases_and_unknown_names():
    assert method_class("me-momentum") is method_class("mememomentum")
    assert "me-momentum" not in list_methods() and "mememomentum" in list_methods()
    assert lnlkit.get_method("prune:grand").config.selector == "grand"
    with pytest.raises(ValueError, match="unknown method"):
        method_class("no-such-method")


@pytest.mark.parametrize("name", list(METHODS))
def test_preset_for(name):
    cls = method_class(name)
    for (dataset, noise), expected in CONTRACT[name].preset_for.items():
        assert cls.preset_for(dataset, noise) == expected, (dataset, noise)


_INVALID = [(name, i) for name in METHODS for i in range(len(CONTRACT[name].invalid))]


@pytest.mark.parametrize("name, i", _INVALID, ids=_ids(_INVALID))
def test_validation_errors(name, i):
    overrides, match = CONTRACT[name].invalid[i]
    with pytest.raises(ValueError, match=match):
        lnlkit.get_method(name, **overrides)


# ================================================================================================ short runs
@pytest.mark.parametrize("name", list(METHODS))
def test_clean_data_runs_without_nan(name, request, tmp_path):
    spec = CONTRACT[name]
    run = _method(name, **spec.clean_short).fit(
        _data(request, spec).with_noise("none"), out=tmp_path / "r", progress=False
    )
    assert run.complete and math.isfinite(run.result["reported"])
    for r in run.history[spec.clean_from :]:
        assert all(math.isfinite(r[k]) for k in spec.clean_keys), r
    if spec.clean_check is not None:
        spec.clean_check(run)


_DEGENERATE = [(name, case) for name in METHODS for case in CONTRACT[name].degenerate]


@pytest.mark.parametrize("name, case", _DEGENERATE, ids=_ids(_DEGENERATE))
def test_degenerate_selections_train_without_nan(name, case, request):
    spec = CONTRACT[name]
    run_case, overrides = (
        spec.degenerate[case] if isinstance(spec.degenerate[case], tuple) else (spec.degenerate[case], {})
    )
    method = _method(name, **spec.degenerate_short, **overrides)
    run_case(method, _data(request, spec), case)


@pytest.mark.parametrize("name", list(METHODS))
def test_resume_after_interrupt_matches_uninterrupted(name, request, tmp_path):
    spec = CONTRACT[name]
    noise, seed, overrides, crashes, length = spec.resume
    data = _data(request, spec).with_noise(noise, seed=seed)
    full = _method(name, **overrides).fit(data, out=tmp_path / "full", progress=False)
    if length is not None:
        assert len(full.history) == length
    for crash_after in crashes:
        cut = tmp_path / f"cut{crash_after}"
        resumed = interrupt_then_resume(
            lambda **more: _method(name, **overrides, **more), data, cut, crash_after_epoch=crash_after
        )
        assert resumed.complete and resumed.result["status"] == "complete"
        assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in full.history]
        for a, b in zip(resumed.history, full.history):  # every field but the wall-clock times (``*_s``)
            a, b = ({k: v for k, v in r.items() if not k.endswith("_s")} for r in (a, b))
            assert a.keys() == b.keys()
            for key in a:
                assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), (crash_after, a["epoch"], key)
        assert set(resumed.signals) == set(full.signals)
        for key in full.signals:
            np.testing.assert_array_equal(resumed.signals[key], full.signals[key], err_msg=key)
        for key in spec.resume_result:
            assert resumed.result[key] == full.result[key], key
        # resuming a complete run returns it unchanged
        again = _method(name, **overrides, checkpoint_every=1).fit(data, out=cut, progress=False, resume=True)
        assert again.result == resumed.result


# ========================================================================================= paper presets on fake data
_FAKE = [(name, preset) for name in METHODS for preset in CONTRACT[name].fake]


@pytest.mark.parametrize("name, preset", _FAKE, ids=_ids(_FAKE))
def test_paper_preset_runs_one_short_epoch_on_fake_data(name, preset, tmp_path, monkeypatch):
    build, overrides, check = CONTRACT[name].fake[preset]
    data = build(preset, tmp_path, monkeypatch)
    run = lnlkit.get_method(name, preset=preset, **overrides).fit(
        data, out=tmp_path / "r", progress=False, device="cpu"
    )
    assert run.complete
    if check is not None:
        check(run)

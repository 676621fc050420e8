"""The user's own arrays with every preset (images and flat features), batches of any size, and the precision
setting (fp32 / bf16 / fp16 autocast)."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import lnlkit
from lnlkit.data import Dataset
from lnlkit.methods import list_methods, method_class
from lnlkit.models import MLP, build_model, build_model_for_input
from lnlkit.train.device import autocast, backward_step, check_precision, grad_scaler
from lnlkit.train.evaluate import predict
from lnlkit.train.loader import DeviceData

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = list_methods()


def _arrays(digits, n: int, flat: bool) -> Dataset:
    """The first ``n`` digits as the user's own arrays: images ``(N, 1, 8, 8)`` or flat features ``(N, 64)``."""
    x_tr, x_te = digits.x_train[:n], digits.x_test[:60]
    if flat:
        x_tr, x_te = x_tr.reshape(n, -1), x_te.reshape(len(x_te), -1)
    return Dataset.from_arrays(
        x_tr, digits.y_train[:n], x_te, digits.y_test[:60], num_classes=10, pixel_scale=16.0, clean_labels=True
    )


def _short(name: str, epochs: int) -> dict:
    """Overrides for a run of a few epochs, with warm-ups of one epoch so the main phase runs too."""
    cfg = method_class(name).PRESETS["digits"]()
    over = {"epochs": epochs}
    for key in ("warm_up", "warmup_epochs"):
        if hasattr(cfg, key):
            over[key] = 1
    return over


# ------------------------------------------------------------------------------------------------ arrays


@pytest.mark.parametrize("kind", ["image", "flat"])
@pytest.mark.parametrize("name", METHODS)
def test_every_digits_preset_runs_on_image_and_flat_arrays(digits, tmp_path, name, kind):
    data = _arrays(digits, 120, flat=kind == "flat").with_noise("symmetric:0.4", seed=0)
    method = lnlkit.get_method(name, preset="digits", epochs=1)
    run = method.fit(data, out=tmp_path / "run", progress=False)
    assert run.result["status"] == "complete"
    assert np.isfinite(run.result["test_acc_last"])
    nets = method.networks()
    if kind == "flat":  # the preset's small_cnn is replaced by an MLP over the 64 features
        assert all(isinstance(net, MLP) and net.in_features == 64 for net in nets), nets
    else:
        assert not any(isinstance(net, MLP) for net in nets)
    if name == "promix":  # its pseudo head survives the swap
        assert all(net.pseudo_head is not None for net in nets)


@pytest.mark.parametrize("name", METHODS)
def test_lone_trailing_sample_does_not_crash_a_run(digits, tmp_path, name):
    # 129 = 1 mod 32, 64 and 128: every loader of every digits preset (B and 2B) ends on a one-sample batch
    data = _arrays(digits, 129, flat=True).with_noise("symmetric:0.4", seed=0)
    run = lnlkit.get_method(name, preset="digits", **_short(name, 3)).fit(data, out=tmp_path / "run", progress=False)
    assert run.result["status"] == "complete"


def test_loader_folds_a_lone_trailing_sample_into_the_previous_batch(digits):
    data = DeviceData(_arrays(digits, 129, flat=True).with_noise("none"), torch.device("cpu"), seed=0)
    loader = data.loader(32, shuffle=True)
    sizes = [len(b.index) for b in loader.epoch(0)]
    assert sizes == [32, 32, 32, 33] and len(loader) == 4
    seen = torch.cat([b.index for b in loader.epoch(0)])
    assert sorted(seen.tolist()) == list(range(129))  # every sample once
    # no lone sample: unchanged; drop_last: unchanged
    assert [len(b.index) for b in data.loader(32, indices=np.arange(98)).epoch(0)] == [32, 32, 32, 2]
    assert [len(b.index) for b in data.loader(32, drop_last=True).epoch(0)] == [32, 32, 32, 32]
    assert [len(b.index) for b in data.loader(32, indices=[5]).epoch(0)] == [1]


def test_mlp_trains_on_a_single_sample_with_running_statistics():
    torch.manual_seed(0)
    net = MLP(3, 5, hidden=(4,))
    net.train()
    net(torch.randn(16, 5))  # running statistics away from their initial values
    bn = net.body[1]
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(1, 5)
    out = net(x)
    h = net.body[0](x)
    expected = (h - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(net.body[1](h), expected)
    assert out.shape == (1, 3)
    torch.testing.assert_close(bn.running_mean, mean)  # a lone sample does not move the statistics
    out.sum().backward()
    assert net.fc.weight.grad is not None


def test_build_model_for_input_follows_the_data():
    img = build_model_for_input("small_cnn", 10, (1, 8, 8), width=8)
    assert not isinstance(img, MLP) and img(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    flat = build_model_for_input("resnet18", 10, (20,), second_head=True, stem_padding=0)
    assert isinstance(flat, MLP) and flat.in_features == 20 and flat.pseudo_head is not None
    assert flat(torch.zeros(2, 20)).shape == (2, 10)
    assert isinstance(build_model_for_input("mlp", 10, (20,), width=8), MLP)  # ProMix's width: an image option
    with pytest.raises(ValueError, match="weights_path"):
        build_model_for_input("resnet50_tv", 10, (20,), weights_path="w.pt")
    with pytest.raises(ValueError, match="unknown model"):
        build_model_for_input("resnet9", 10, (20,))
    with pytest.raises(ValueError, match="input_shape"):
        build_model_for_input("mlp", 10, (4, 5))


# ------------------------------------------------------------------------------------------------ precision


def _fc_dtypes(method) -> list:
    """Record the output dtype of every network's last Linear layer during the run."""
    seen = []
    original = method.setup

    def setup(ctx):
        original(ctx)
        for net in method.networks():
            net.fc.register_forward_hook(lambda mod, inp, out: seen.append((mod.training, out.dtype)))

    method.setup = setup
    return seen


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_sets_the_dtype_of_training_and_evaluation_matmuls(digits, tmp_path, precision, dtype):
    data = _arrays(digits, 64, flat=False).with_noise("symmetric:0.4", seed=0)
    method = lnlkit.get_method("ce", preset="digits", epochs=1, precision=precision)
    seen = _fc_dtypes(method)
    run = method.fit(data, out=tmp_path / "run", progress=False)
    assert {d for training, d in seen if training} == {dtype}  # training steps
    assert {d for training, d in seen if not training} == {dtype}  # test pass, per-sample losses
    assert json.loads((tmp_path / "run" / "config.json").read_text())["hyperparameters"]["precision"] == precision
    assert run.config["hyperparameters"]["precision"] == precision


def test_eval_precision_applies_to_evaluation_passes_only(digits, tmp_path):
    data = _arrays(digits, 64, flat=False).with_noise("symmetric:0.4", seed=0)
    method = lnlkit.get_method("dividemix", preset="digits", epochs=1, precision="bf16", eval_precision="fp32")
    seen = _fc_dtypes(method)
    method.fit(data, out=tmp_path / "run", progress=False)
    assert {d for training, d in seen if training} == {torch.bfloat16}
    assert {d for training, d in seen if not training} == {torch.float32}
    hp = json.loads((tmp_path / "run" / "config.json").read_text())["hyperparameters"]
    assert (hp["precision"], hp["eval_precision"]) == ("bf16", "fp32")


def test_autocast_helper_on_cpu():
    lin = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    cpu = torch.device("cpu")
    with autocast(cpu, "fp32"):
        assert lin(x).dtype == torch.float32
    with autocast(cpu, "bf16"):
        assert lin(x).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="CUDA"):
        autocast(cpu, "fp16")
    with pytest.raises(ValueError, match="precision"):
        autocast(cpu, "fp8")
    assert not grad_scaler(cpu, "fp16").is_enabled()


def test_predict_defaults_to_fp32(digits):
    data = DeviceData(_arrays(digits, 64, flat=True).with_noise("none"), torch.device("cpu"), seed=0)
    net = build_model("mlp", 10, in_channels=1, image_size=1, in_features=64)
    seen = []
    net.fc.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    predict(net, data, "test")
    predict(net, data, "test", precision="bf16")
    assert seen == [torch.float32, torch.bfloat16]


def test_presets_use_the_official_precision():
    for name in METHODS:
        cls = method_class(name)
        for preset, build in cls.PRESETS.items():
            cfg = build()
            expected = ("fp16", "fp32") if (name, preset) == ("smr", "webvision") else ("fp32", None)
            assert (cfg.precision, cfg.eval_precision) == expected, (name, preset)


def test_amp_is_a_deprecated_alias_of_precision():
    with pytest.warns(DeprecationWarning):
        method = lnlkit.get_method("ce", preset="digits", amp=True)
    assert method.config.precision == "bf16" and method.config.amp is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert lnlkit.get_method("ce", amp=False).config.precision == "fp32"
        # an old run's hyperparameters (amp=True) still build a config
        old = {**dataclasses.asdict(method_class("ce").PRESETS["digits"]()), "amp": True}
        old.pop("precision")
        assert method_class("ce").Config(**old).precision == "bf16"
    assert check_precision(None) == "fp32"


def test_bad_precision_is_refused_at_the_boundary(digits):
    with pytest.raises(ValueError, match="precision"):
        lnlkit.get_method("ce", precision="half")
    with pytest.raises(ValueError, match="fp16"):
        lnlkit.get_method("comining", preset="digits", precision="fp16")  # no loss scaling wired there
    data = _arrays(digits, 64, flat=True).with_noise("none")
    with pytest.raises(ValueError, match="CUDA"):
        lnlkit.get_method("ce", preset="digits", precision="fp16").fit(data, device="cpu", progress=False)


def test_backward_step_without_scaling_is_a_plain_step():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    oa, ob = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    x = torch.randn(4, 3)
    a(x).square().sum().backward()
    oa.step()
    backward_step(b(x).square().sum(), [ob], grad_scaler(torch.device("cpu"), "fp32"))
    torch.testing.assert_close(a.weight, b.weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA only")
def test_cuda_fp16_scales_the_loss_and_fp32_stores_float32_inputs(digits, tmp_path):
    data = _arrays(digits, 64, flat=False).with_noise("symmetric:0.4", seed=0)
    method = lnlkit.get_method("ce", preset="digits", epochs=1, precision="fp16")
    seen = _fc_dtypes(method)
    method.fit(data, out=tmp_path / "fp16", device="cuda", progress=False)
    assert method.grad_scaler.is_enabled() and {d for t, d in seen if t} == {torch.float16}
    method = lnlkit.get_method("ce", preset="digits", epochs=1)
    stored = []
    original = method.setup
    method.setup = lambda ctx: (stored.append(ctx.data.storage_dtype), original(ctx))
    method.fit(data, out=tmp_path / "fp32", device="cuda", progress=False)
    assert stored == [torch.float32]

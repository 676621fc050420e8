"""Tests of lnlkit.models: interface, shapes, architecture facts from official code, weight loading, registry errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lnlkit.models import MODELS, build_model, count_parameters, list_models
from lnlkit.models.base import load_state_dict_except_heads, read_state_dict
from lnlkit.models.preact_resnet import PreActBlock
from lnlkit.models.resnet import BasicBlock

# name -> (build kwargs, input shape of a tiny batch, expected feature_dim)
CASES = {
    "preact_resnet18": ({}, (2, 3, 32, 32), 512),
    "resnet18": ({}, (2, 3, 32, 32), 512),
    "resnet34": ({}, (2, 3, 32, 32), 512),
    "cnn7": ({}, (2, 3, 32, 32), 256),
    "lenet": ({"in_channels": 1, "image_size": 28}, (2, 1, 28, 28), 84),
    "small_cnn": ({"in_channels": 1, "image_size": 8}, (3, 1, 8, 8), 128),
    "mlp": ({"in_features": 64}, (3, 64), 256),
    "resnet50_tv": ({"image_size": 64}, (2, 3, 64, 64), 2048),
    "inception_resnet_v2": ({"image_size": 75}, (2, 3, 75, 75), 1536),  # its smallest input
}

NUM_CLASSES = 7


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def built():
    """One model per name (built once; ResNet-50 and ResNet-34 are the slow ones on CPU)."""
    torch.manual_seed(0)
    return {name: build_model(name, NUM_CLASSES, **kw).eval() for name, (kw, _, _) in CASES.items()}


def test_registry_covers_every_case():
    assert set(list_models()) == set(CASES)
    assert list_models() == sorted(MODELS)
    for name, entry in MODELS.items():
        assert isinstance(entry.description, str) and entry.description.strip(), name
        assert "second_head" in entry.options, f"{name} should offer second_head"


@pytest.mark.parametrize("name", list(CASES))
def test_shapes_and_forward_equals_classify_embed(built, name):
    _, shape, dim = CASES[name]
    model = built[name]
    x = torch.randn(*shape)
    with torch.no_grad():
        logits = model(x)
        feats = model.embed(x)
        again = model.classify(feats)
    assert model.feature_dim == dim
    assert model.num_classes == NUM_CLASSES
    assert logits.shape == (shape[0], NUM_CLASSES)
    assert feats.shape == (shape[0], dim)
    assert torch.allclose(logits, again, atol=1e-6)
    assert model.pseudo_head is None and not model.has_second_head


def _small_input(name):
    """A cheaper input for the (slow on CPU) ResNets where the exact size is not what is tested."""
    _, shape, _ = CASES[name]
    if name in ("preact_resnet18", "resnet18", "resnet34"):
        return torch.randn(2, 3, 16, 16)
    return torch.randn(*shape)


@pytest.mark.parametrize("name", list(CASES))
def test_forward_heads_without_second_head(built, name):
    model = built[name]
    x = _small_input(name) if name != "resnet50_tv" else torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits, pseudo, feats = model.forward_heads(x)
        assert torch.allclose(logits, model.classify(feats), atol=1e-6)
        assert torch.allclose(feats, model.embed(x), atol=1e-6)
    assert pseudo is None
    assert logits.shape == (x.shape[0], NUM_CLASSES) and feats.shape == (x.shape[0], model.feature_dim)


@pytest.mark.parametrize("name", ["preact_resnet18", "resnet18", "cnn7", "lenet", "small_cnn", "mlp"])
def test_second_head(name):
    kw, shape, dim = CASES[name]
    torch.manual_seed(1)
    model = build_model(name, NUM_CLASSES, second_head=True, **kw).eval()
    assert isinstance(model.pseudo_head, nn.Linear) and model.has_second_head
    assert model.pseudo_head.in_features == dim and model.pseudo_head.out_features == NUM_CLASSES
    x = _small_input(name)
    with torch.no_grad():
        logits, pseudo, feats = model.forward_heads(x)
        assert torch.allclose(logits, model(x), atol=1e-6)
        assert torch.allclose(pseudo, model.pseudo_head(feats), atol=1e-6)
    assert pseudo.shape == (x.shape[0], NUM_CLASSES)
    assert not torch.allclose(pseudo, logits)  # two independently initialised heads


def test_second_head_gets_gradients():
    model = build_model("cnn7", 5, second_head=True)
    logits, pseudo, _ = model.forward_heads(torch.randn(2, 3, 32, 32))
    pseudo.sum().backward()
    assert model.pseudo_head.weight.grad is not None and model.features[0].weight.grad is not None
    assert model.fc.weight.grad is None  # the primary head took no part in this loss


# --------------------------------------------------------------------------------------- PreAct ResNet-18 facts


def _conv(cin, cout, k):
    return cin * cout * k * k


def _bn(c):
    return 2 * c  # weight and bias (running stats are buffers, not parameters)


def test_preact_resnet18_parameter_count_from_architecture():
    # Derived from the official PreResNet.py, independently of the implementation:
    # stem conv3x3(3->64) + BN(64); per PreAct block BN(in) + conv3x3(in->out) + BN(out) + conv3x3(out->out)
    # [+ 1x1 projection conv without BN when the shape changes]; no final BN; linear 512 -> 10.
    expected = _conv(3, 64, 3) + _bn(64)
    cin = 64
    for width, stride in zip((64, 128, 256, 512), (1, 2, 2, 2)):
        for j in range(2):
            s = stride if j == 0 else 1
            expected += _bn(cin) + _conv(cin, width, 3) + _bn(width) + _conv(width, width, 3)
            if s != 1 or cin != width:
                expected += _conv(cin, width, 1)
            cin = width
    expected += 512 * 10 + 10
    assert expected == 11_171_274  # ≈ 11.17M
    model = build_model("preact_resnet18", 10)
    assert count_parameters(model) == expected
    # Standard post-activation CIFAR ResNet-18 adds BN on the 3 projection shortcuts (2·(128+256+512)) and its
    # first BN of each downsampling block is on the output width (+2·(64+128+256)): the well-known 11,173,962.
    assert count_parameters(build_model("resnet18", 10)) == expected + 2 * (128 + 256 + 512) + 2 * (64 + 128 + 256)
    assert count_parameters(build_model("resnet18", 10)) == 11_173_962


def test_preact_structure_quirks():
    torch.manual_seed(0)
    model = build_model("preact_resnet18", 10).eval()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 1 + 8 * 2  # stem BN + two per block, no final BN after layer4
    blocks = [m for m in model.modules() if isinstance(m, PreActBlock)]
    assert len(blocks) == 8
    projections = [b.shortcut for b in blocks if b.shortcut is not None]
    assert len(projections) == 3
    for sc in projections:  # 1x1 conv without BN
        assert all(isinstance(m, nn.Conv2d) for m in sc) and sc[0].kernel_size == (1, 1)

    seen = {}
    model.layer4.register_forward_hook(lambda mod, inp, out: seen.__setitem__("l4", out))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.embed(x)
    assert seen["l4"].shape == (2, 512, 4, 4)
    # For 32x32 inputs the adaptive pool equals the official fixed 4x4 average pool.
    assert torch.allclose(feats, F.avg_pool2d(seen["l4"], 4).flatten(1), atol=1e-6)
    # No final BN-ReLU: the pooled raw residual sum takes negative values.
    assert (feats < 0).any()
    # Both kinds of shortcut take the pre-activated input a = ReLU(BN1(x)) (official PreResNet.py: the identity
    # shortcut is an empty nn.Sequential applied to a): the projection sees a, and an identity block returns
    # conv2(ReLU(BN2(conv1(a)))) + a, not ... + x.
    block = model.layer2[0]
    captured = {}
    block.register_forward_hook(lambda mod, inp, out: captured.__setitem__("x", inp[0]))
    block.shortcut[0].register_forward_hook(lambda mod, inp, out: captured.__setitem__("sc", inp[0]))
    with torch.no_grad():
        model.embed(x)
        assert torch.allclose(captured["sc"], F.relu(block.bn1(captured["x"])))
        for b in (model.layer1[0], model.layer1[1], model.layer2[1], model.layer3[1], model.layer4[1]):
            assert b.shortcut is None  # the five identity blocks
            xin = torch.randn(2, b.bn1.num_features, 8, 8)
            a = F.relu(b.bn1(xin))
            assert torch.allclose(b(xin), b.conv2(F.relu(b.bn2(b.conv1(a)))) + a, atol=1e-5)
    # Other sizes work thanks to the adaptive pool.
    with torch.no_grad():
        assert model.embed(torch.randn(2, 3, 20, 20)).shape == (2, 512)


def test_resnet18_features_are_post_relu():
    model = build_model("resnet18", 10).eval()
    with torch.no_grad():
        assert (model.embed(torch.randn(2, 3, 16, 16)) >= 0).all()


# ------------------------------------------------------------------------------------------- CIFAR ResNet facts


@pytest.mark.parametrize("padding, side, stages", [(0, 30, (30, 15, 8, 4)), (1, 32, (32, 16, 8, 4))])
def test_stem_padding_map_sizes(padding, side, stages):
    model = build_model("resnet18", 10, stem_padding=padding).eval()
    seen = {}
    model.conv1.register_forward_hook(lambda mod, inp, out: seen.__setitem__("stem", out.shape))
    for i in range(1, 5):
        getattr(model, f"layer{i}").register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, out.shape[-1]))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert seen["stem"] == (2, 64, side, side)
    assert tuple(seen[i] for i in range(1, 5)) == stages
    assert out.shape == (2, 10)


def test_stem_padding_default_is_standard():
    assert build_model("resnet34", 10).conv1.padding == (1, 1)
    assert build_model("resnet34", 10, stem_padding=0).conv1.padding == (0, 0)


def test_halved_residual_block_is_half_the_standard_block():
    torch.manual_seed(0)
    for stride, cin, cout in [(1, 16, 16), (2, 16, 32)]:
        plain = BasicBlock(cin, cout, stride, halved_residual=False).eval()
        halved = BasicBlock(cin, cout, stride, halved_residual=True).eval()
        halved.load_state_dict(plain.state_dict())
        x = torch.randn(2, cin, 8, 8)
        with torch.no_grad():
            assert torch.allclose(halved(x), 0.5 * plain(x), atol=1e-6)


def test_halved_residual_changes_model_outputs():
    torch.manual_seed(0)
    plain = build_model("resnet18", 10).eval()
    halved = build_model("resnet18", 10, halved_residual=True).eval()
    halved.load_state_dict(plain.state_dict())  # identical weights; only the residual sum differs
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        a, b = plain(x), halved(x)
    assert a.shape == b.shape
    assert not torch.allclose(a, b, atol=1e-4)


def test_resnet_imagenet_stem_and_in_channels():
    model = build_model("resnet18", 10, stem="imagenet", in_channels=1).eval()
    assert model.conv1.kernel_size == (7, 7) and model.conv1.in_channels == 1
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match="stem_padding"):
        build_model("resnet18", 10, stem="imagenet", stem_padding=0)


def test_resnet_init_options():
    torch.manual_seed(0)
    default = build_model("resnet18", 10)
    kaiming = build_model("resnet18", 10, init="kaiming", fc_init="he")
    w_def = default.layer4[1].conv2.weight
    w_kai = kaiming.layer4[1].conv2.weight
    fan_out = 512 * 3 * 3
    # Kaiming-normal fan_out: std sqrt(2 / fan_out) ≈ 0.0208; PyTorch's default gives ≈ 0.0085.
    assert abs(w_kai.std().item() - (2 / fan_out) ** 0.5) < 0.002
    assert w_def.std().item() < 0.6 * w_kai.std().item()
    # He-initialised head: std sqrt(2 / 512) = 0.0625; default uniform(±1/sqrt(512)) has std ≈ 0.0255.
    assert abs(kaiming.fc.weight.std().item() - 0.0625) < 0.006
    assert default.fc.weight.std().item() < 0.03


# ------------------------------------------------------------------------------------------------ small models


def test_cnn7_structure_and_other_sizes():
    model = build_model("cnn7", 10).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 196, 16]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 6
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    assert model.fc.in_features == 256
    small = build_model("cnn7", 10, in_channels=1, image_size=28).eval()
    assert small.feature_dim == 16 * 3 * 3
    with torch.no_grad():
        assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        with pytest.raises(ValueError, match="built for 28×28"):
            small(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError):
        build_model("cnn7", 10, image_size=6)


def test_cnn7_conv_biases_as_official():
    # Official model/cnn.py: nn.Conv2d(..., padding=1) with PyTorch's default bias=True, each followed by BN.
    model = build_model("cnn7", 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None and c.bias.requires_grad for c in convs)
    widths = (3, 64, 64, 128, 128, 196, 16)
    expected = sum(9 * cin * cout + cout + 2 * cout for cin, cout in zip(widths, widths[1:])) + 256 * 10 + 10
    assert count_parameters(model) == expected


def test_cnn7_old_bias_free_checkpoints_still_load():
    """A state dict written before the convs had a bias loads with zero biases: the same function as before."""
    torch.manual_seed(0)
    current = build_model("cnn7", 10).eval()
    with torch.no_grad():
        for m in current.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.zero_()  # what a bias-free conv computes
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
    conv_biases = {f"features.{n}.bias" for n, m in current.features.named_children() if isinstance(m, nn.Conv2d)}
    assert len(conv_biases) == 6
    old = {k: v.clone() for k, v in current.state_dict().items() if k not in conv_biases}
    loaded = build_model("cnn7", 10)
    loaded.load_state_dict(old)  # strict: the missing biases are supplied as zeros
    loaded.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), current(x), atol=1e-6)
    assert all(torch.count_nonzero(m.bias) == 0 for m in loaded.modules() if isinstance(m, nn.Conv2d))
    # A current-layout state dict (version 2 metadata) that lost a bias is still an error naming it.
    truncated = current.state_dict()
    del truncated["features.7.bias"]
    with pytest.raises(RuntimeError, match=r"features\.7\.bias"):
        build_model("cnn7", 10).load_state_dict(truncated)


def test_he_head_has_zero_bias():
    # Co-mining's web code (official model/resnet.py init_weights 'He'): kaiming_normal_ weight, bias 0.
    torch.manual_seed(0)
    model = build_model("resnet18", 200, stem="imagenet", halved_residual=True, fc_init="he", second_head=True)
    for head in model.heads():
        assert torch.count_nonzero(head.bias) == 0
    assert torch.count_nonzero(build_model("resnet18", 200).fc.bias) > 0  # default init keeps its random bias


def test_lenet_sizes_and_parameter_count():
    model = build_model("lenet", 10, in_channels=1, image_size=28)
    assert model.flat_features == 400 and model.fc1.in_features == 400
    # LeNet-5: conv 6@5x5 (156) + conv 16@5x5 (2,416) + 400-120 (48,120) + 120-84 (10,164) + 84-10 (850).
    assert count_parameters(model) == 156 + 2416 + 48120 + 10164 + 850 == 61_706
    other = build_model("lenet", 10, in_channels=3, image_size=32).eval()
    assert other.flat_features == 16 * 6 * 6
    with torch.no_grad():
        assert other(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError):
        build_model("lenet", 10, in_channels=1, image_size=8)


def test_small_cnn_width_dropout():
    model = build_model("small_cnn", 10, in_channels=1, image_size=8, width=8, dropout=0.5)
    assert model.feature_dim == 32
    x = torch.randn(4, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model.classify(model.embed(x)))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    b = model(x)
    assert not torch.allclose(a, b)  # dropout active in training mode
    with pytest.raises(ValueError, match="dropout"):
        build_model("small_cnn", 10, dropout=1.5)


def test_mlp_in_features_and_flattening():
    from_size = build_model("mlp", 10, in_channels=1, image_size=8, hidden=(32,), dropout=0.1).eval()
    assert from_size.in_features == 64 and from_size.feature_dim == 32
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(from_size(x), from_size(x.flatten(1)))
        with pytest.raises(ValueError, match="64 input features"):
            from_size(torch.randn(3, 65))
    linear = build_model("mlp", 4, in_features=20, hidden=())
    assert linear.feature_dim == 20 and count_parameters(linear) == 20 * 4 + 4
    with pytest.raises(ValueError, match="hidden"):
        build_model("mlp", 4, in_features=20, hidden=(0,))


# ---------------------------------------------------------------------------------------------- weight loading


def test_resnet50_weights_path_round_trip(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("lnlkit must never download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    torch.manual_seed(123)
    imagenet = torchvision.models.resnet50(weights=None)  # stands in for an ImageNet checkpoint
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(imagenet.state_dict(), path)

    torch.manual_seed(7)
    model = build_model("resnet50_tv", 14, weights_path=str(path), second_head=True)
    src = imagenet.state_dict()
    own = model.state_dict()
    trunk = [k for k in src if not k.startswith("fc.")]
    assert len(trunk) > 300
    for k in trunk:
        assert torch.equal(own[k], src[k]), k
    assert own["fc.weight"].shape == (14, 2048) and model.pseudo_head.weight.shape == (14, 2048)
    with torch.no_grad():
        logits, pseudo, feats = model.eval().forward_heads(torch.randn(2, 3, 32, 32))
    assert logits.shape == pseudo.shape == (2, 14) and feats.shape == (2, 2048)


def test_state_dict_reading_and_strict_trunk_loading(tmp_path):
    """The ResNet-50 loader's rules, exercised on a small model to keep the test fast."""
    torch.manual_seed(0)
    source = build_model("cnn7", 10)
    src = source.state_dict()
    # Wrapped checkpoints with a DataParallel prefix and without BN num_batches_tracked counters (like
    # torchvision's older ImageNet files) are read too.
    wrapped = tmp_path / "wrapped.pth"
    old_style = {f"module.{k}": v for k, v in src.items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": old_style, "epoch": 3}, wrapped)
    state = read_state_dict(wrapped)
    assert set(state) == {k for k in src if not k.endswith("num_batches_tracked")}
    target = build_model("cnn7", 4)
    fresh_fc = target.fc.weight.clone()
    load_state_dict_except_heads(target, state)
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert torch.equal(target.fc.weight, fresh_fc)  # head (10 vs 4 classes) not loaded
    # An incomplete file is an error, not a silent partial load.
    broken = dict(state)
    del broken["features.3.weight"]
    with pytest.raises(RuntimeError, match="features.3.weight"):
        load_state_dict_except_heads(build_model("cnn7", 4), broken)
    with pytest.raises(RuntimeError, match="shape"):
        load_state_dict_except_heads(build_model("cnn7", 4, in_channels=1), state)
    torch.save({"not": "weights"}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="state dict"):
        read_state_dict(tmp_path / "junk.pth")


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nope" / "resnet50.pth"
    with pytest.raises(FileNotFoundError) as err:
        build_model("resnet50_tv", 14, weights_path=str(missing))
    assert str(missing) in str(err.value) and "never downloads" in str(err.value)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        build_model("resnet18", 10, weights_path=missing)


def test_resnet18_loads_shape_matching_imagenet_tensors(tmp_path):
    torch.manual_seed(5)
    tv18 = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(tv18.state_dict(), path)
    web = build_model("resnet18", 200, stem="imagenet", halved_residual=True, fc_init="he", weights_path=path)
    assert web.weights_report["not_in_file"] == []
    assert set(web.weights_report["skipped"]) == {"fc.weight", "fc.bias"}
    assert torch.equal(web.conv1.weight, tv18.conv1.weight)
    assert torch.equal(web.layer4[1].bn2.running_var, tv18.layer4[1].bn2.running_var)
    cifar = build_model("resnet18", 10, weights_path=path)  # 3x3 stem: the 7x7 conv1 does not match
    assert "conv1.weight" in cifar.weights_report["skipped"]
    assert torch.equal(cifar.layer1[0].conv1.weight, tv18.layer1[0].conv1.weight)


# --------------------------------------------------------------------------------------------- registry errors


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("resnet19", 10)
    for name in list_models():
        assert name in str(err.value)
    assert build_model("PreAct-ResNet18", 10).feature_dim == 512  # case/dash tolerant


def test_bad_keyword_is_type_error_naming_it():
    with pytest.raises(TypeError, match="stem_pading"):
        build_model("resnet18", 10, stem_pading=0)
    with pytest.raises(TypeError, match="halved_residual"):
        build_model("preact_resnet18", 10, halved_residual=True)
    with pytest.raises(TypeError, match="width"):
        build_model("cnn7", 10, width=16)


@pytest.mark.parametrize("num_classes", [1, 0, -3])
def test_num_classes_below_two(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        build_model("small_cnn", num_classes)


def test_bad_option_values():
    with pytest.raises(ValueError, match="stem_padding"):
        build_model("resnet18", 10, stem_padding=2)
    with pytest.raises(TypeError, match="num_classes"):
        build_model("resnet18", 10.0)
    with pytest.raises(TypeError, match="second_head"):
        build_model("cnn7", 10, second_head="yes")
    with pytest.raises(TypeError, match="image_size"):
        build_model("cnn7", 10, image_size="32")
    with pytest.raises(ValueError, match="in_channels"):
        build_model("cnn7", 10, in_channels=0)
    with pytest.raises(ValueError, match="init"):
        build_model("resnet18", 10, init="xavier")

"""Inception-ResNet-v2, the WebVision backbone of DivideMix, SMR, SOP+ and Prune4ReL (issue 23 item 7).

The reference below is written out from the architecture's definition (Szegedy et al. 2017, Inception-ResNet-v2, in
the TF-slim layout that the official ``InceptionResNetV2.py`` files train): every conv-BN-ReLU with its kernel,
stride, padding and width, the residual scales 0.17 / 0.10 / 0.20 / 1, the ReLU after each residual sum except the
last block's. It borrows only the kit model's tensors (weights, BN statistics), never its modules' forward code, so
a wrong stride, padding, width, scale or missing ReLU in the model fails here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from lnlkit.models import build_model, build_model_for_input, count_parameters, load_official_state_dict
from lnlkit.models.inception_resnet_v2 import MIN_INPUT_SIDE, InceptionResNetV2

pytestmark = pytest.mark.usefixtures("one_thread")

C = 50  # mini-WebVision


@pytest.fixture(scope="module")
def net() -> InceptionResNetV2:
    torch.manual_seed(0)
    model = build_model("inception_resnet_v2", C, image_size=299).eval()
    # non-trivial BN statistics and affine parameters, so that an eval-mode BN that is skipped or mis-wired shows
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


# --------------------------------------------------------------------------------------- reference from the paper


def _cbr(x: Tensor, unit, cin: int, cout: int, k: tuple[int, int], stride: int = 1, pad: tuple[int, int] = (0, 0)):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU with the unit's tensors and the definition's geometry."""
    w = unit.conv.weight
    assert tuple(w.shape) == (cout, cin, *k), f"conv shape {tuple(w.shape)}, definition {(cout, cin, *k)}"
    assert unit.conv.bias is None
    bn = unit.bn
    assert bn.eps == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.1)
    y = F.conv2d(x, w, stride=stride, padding=pad)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=1e-3)
    return F.relu(y)


def _up(x: Tensor, conv, cin: int, cout: int) -> Tensor:
    """The residual branch's 1×1 projection back to the block width: a conv *with* bias, no BN, no ReLU."""
    assert tuple(conv.weight.shape) == (cout, cin, 1, 1) and conv.bias is not None
    return F.conv2d(x, conv.weight, conv.bias)


def _ref_stem(m, x: Tensor) -> Tensor:
    x = _cbr(x, m.conv2d_1a, 3, 32, (3, 3), stride=2)
    x = _cbr(x, m.conv2d_2a, 32, 32, (3, 3))
    x = _cbr(x, m.conv2d_2b, 32, 64, (3, 3), pad=(1, 1))
    x = F.max_pool2d(x, 3, 2)
    x = _cbr(x, m.conv2d_3b, 64, 80, (1, 1))
    x = _cbr(x, m.conv2d_4a, 80, 192, (3, 3))
    x = F.max_pool2d(x, 3, 2)
    b = m.mixed_5b  # Mixed_5b: 96 + 64 + 96 + 64 = 320
    b0 = _cbr(x, b.branch0, 192, 96, (1, 1))
    b1 = _cbr(_cbr(x, b.branch1[0], 192, 48, (1, 1)), b.branch1[1], 48, 64, (5, 5), pad=(2, 2))
    b2 = _cbr(x, b.branch2[0], 192, 64, (1, 1))
    b2 = _cbr(_cbr(b2, b.branch2[1], 64, 96, (3, 3), pad=(1, 1)), b.branch2[2], 96, 96, (3, 3), pad=(1, 1))
    b3 = _cbr(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), b.branch3[1], 192, 64, (1, 1))
    return torch.cat([b0, b1, b2, b3], 1)


def _ref_block35(blk, x: Tensor) -> Tensor:
    """Inception-ResNet-A on 320 channels: 32 | 32-32 | 32-48-64 -> 1×1 to 320, x + 0.17·r, ReLU."""
    b0 = _cbr(x, blk.branch0, 320, 32, (1, 1))
    b1 = _cbr(_cbr(x, blk.branch1[0], 320, 32, (1, 1)), blk.branch1[1], 32, 32, (3, 3), pad=(1, 1))
    b2 = _cbr(x, blk.branch2[0], 320, 32, (1, 1))
    b2 = _cbr(_cbr(b2, blk.branch2[1], 32, 48, (3, 3), pad=(1, 1)), blk.branch2[2], 48, 64, (3, 3), pad=(1, 1))
    return F.relu(x + 0.17 * _up(torch.cat([b0, b1, b2], 1), blk.conv2d, 128, 320))


def _ref_mixed_6a(b, x: Tensor) -> Tensor:
    """Reduction-A (k, l, m, n = 256, 256, 384, 384): 320 -> 384 + 384 + 320 = 1088."""
    b0 = _cbr(x, b.branch0, 320, 384, (3, 3), stride=2)
    b1 = _cbr(_cbr(x, b.branch1[0], 320, 256, (1, 1)), b.branch1[1], 256, 256, (3, 3), pad=(1, 1))
    b1 = _cbr(b1, b.branch1[2], 256, 384, (3, 3), stride=2)
    return torch.cat([b0, b1, F.max_pool2d(x, 3, 2)], 1)


def _ref_block17(blk, x: Tensor) -> Tensor:
    """Inception-ResNet-B on 1088 channels: 192 | 128-160 (1×7)-192 (7×1) -> 1×1 to 1088, x + 0.10·r, ReLU."""
    b0 = _cbr(x, blk.branch0, 1088, 192, (1, 1))
    b1 = _cbr(x, blk.branch1[0], 1088, 128, (1, 1))
    b1 = _cbr(b1, blk.branch1[1], 128, 160, (1, 7), pad=(0, 3))
    b1 = _cbr(b1, blk.branch1[2], 160, 192, (7, 1), pad=(3, 0))
    return F.relu(x + 0.10 * _up(torch.cat([b0, b1], 1), blk.conv2d, 384, 1088))


def _ref_mixed_7a(b, x: Tensor) -> Tensor:
    """Reduction-B: 1088 -> 384 + 288 + 320 + 1088 = 2080."""
    b0 = _cbr(_cbr(x, b.branch0[0], 1088, 256, (1, 1)), b.branch0[1], 256, 384, (3, 3), stride=2)
    b1 = _cbr(_cbr(x, b.branch1[0], 1088, 256, (1, 1)), b.branch1[1], 256, 288, (3, 3), stride=2)
    b2 = _cbr(_cbr(x, b.branch2[0], 1088, 256, (1, 1)), b.branch2[1], 256, 288, (3, 3), pad=(1, 1))
    b2 = _cbr(b2, b.branch2[2], 288, 320, (3, 3), stride=2)
    return torch.cat([b0, b1, b2, F.max_pool2d(x, 3, 2)], 1)


def _ref_block8(blk, x: Tensor, scale: float, relu: bool) -> Tensor:
    """Inception-ResNet-C on 2080 channels: 192 | 192-224 (1×3)-256 (3×1) -> 1×1 to 2080, x + scale·r (ReLU)."""
    b0 = _cbr(x, blk.branch0, 2080, 192, (1, 1))
    b1 = _cbr(x, blk.branch1[0], 2080, 192, (1, 1))
    b1 = _cbr(b1, blk.branch1[1], 192, 224, (1, 3), pad=(0, 1))
    b1 = _cbr(b1, blk.branch1[2], 224, 256, (3, 1), pad=(1, 0))
    out = x + scale * _up(torch.cat([b0, b1], 1), blk.conv2d, 448, 2080)
    return F.relu(out) if relu else out


def _ref_logits(m, x: Tensor) -> tuple[Tensor, Tensor]:
    """The whole network from the definition: (features (B, 1536), logits (B, C))."""
    x = _ref_stem(m, x)
    assert len(m.repeat) == 10 and len(m.repeat_1) == 20 and len(m.repeat_2) == 9
    for blk in m.repeat:
        x = _ref_block35(blk, x)
    x = _ref_mixed_6a(m.mixed_6a, x)
    for blk in m.repeat_1:
        x = _ref_block17(blk, x)
    x = _ref_mixed_7a(m.mixed_7a, x)
    for blk in m.repeat_2:
        x = _ref_block8(blk, x, 0.20, relu=True)
    x = _ref_block8(m.block8, x, 1.0, relu=False)
    x = _cbr(x, m.conv2d_7b, 2080, 1536, (1, 1))
    feats = x.mean(dim=(2, 3))
    return feats, F.linear(feats, m.fc.weight, m.fc.bias)


# ------------------------------------------------------------------------------------------------------ tests


def test_logits_equal_the_reference_on_the_smallest_input(net):
    torch.manual_seed(1)
    x = torch.randn(2, 3, MIN_INPUT_SIDE, MIN_INPUT_SIDE)
    with torch.no_grad():
        ref_feats, ref_logits = _ref_logits(net, x)
        feats, logits = net.embed(x), net(x)
    assert feats.shape == (2, 1536) and logits.shape == (2, C)
    assert torch.allclose(feats, ref_feats, rtol=1e-4, atol=1e-5)
    assert torch.allclose(logits, ref_logits, rtol=1e-4, atol=1e-5)


def test_block35_residual_scale_and_relu_in_training_mode(net):
    """One Inception-ResNet-A block in training mode (batch statistics): x + 0.17·r, then ReLU."""
    blk = net.repeat[3]
    torch.manual_seed(2)
    x = torch.randn(4, 320, 5, 5)
    blk.train()
    try:
        with torch.no_grad():
            out = blk(x)
    finally:
        blk.eval()

    def cbr_train(z, unit, pad=0):
        y = F.conv2d(z, unit.conv.weight, padding=pad)
        return F.relu(F.batch_norm(y, None, None, unit.bn.weight, unit.bn.bias, training=True, eps=1e-3))

    b0 = cbr_train(x, blk.branch0)
    b1 = cbr_train(cbr_train(x, blk.branch1[0]), blk.branch1[1], 1)
    b2 = cbr_train(cbr_train(cbr_train(x, blk.branch2[0]), blk.branch2[1], 1), blk.branch2[2], 1)
    r = F.conv2d(torch.cat([b0, b1, b2], 1), blk.conv2d.weight, blk.conv2d.bias)
    assert torch.allclose(out, F.relu(x + 0.17 * r), atol=1e-5)
    assert not torch.allclose(out, F.relu(x + r), atol=1e-3)  # the scale matters at this size
    assert (out >= 0).all()


def test_stem_and_stage_shapes_for_a_299_input(net):
    """35×35×320 after the stem, 17×17×1088 after Reduction-A, 8×8×2080 after Reduction-B, 8×8×1536 at the end."""
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        stem = x
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a"):
            stem = getattr(net, name)(stem)
        stem = net.mixed_5b(stem)
        assert stem.shape == (1, 320, 35, 35)
        a = net.mixed_6a(net.repeat(stem))
        assert a.shape == (1, 1088, 17, 17)
        b = net.mixed_7a(a)  # the 20 Block17s keep the shape; skipped to stay fast
        assert b.shape == (1, 2080, 8, 8)
        top = net.conv2d_7b(net.block8(b))
        assert top.shape == (1, 1536, 8, 8)
        # the official DivideMix/SMR head pools the whole network's map with AvgPool2d(8): the kit's feature on 299
        # crops (the map is 8×8, so a max or a corner would differ)
        full = net.features_map(x)
        assert full.shape == (1, 1536, 8, 8)
        official = F.avg_pool2d(full, 8, count_include_pad=False).flatten(1)
        assert torch.allclose(net.embed(x), official, rtol=1e-5, atol=1e-6)
        assert net.features_map(torch.randn(1, 3, 224, 224)).shape[-2:] == (5, 5)  # Prune4ReL's 224 crops


def test_parameter_count_matches_the_published_network():
    """55.8M with the 1000 ImageNet classes (the published count); 1536·(C + 1) less for C = 50."""
    m1000 = InceptionResNetV2(1000)
    assert count_parameters(m1000) == 55_843_464
    m50 = InceptionResNetV2(C)
    assert count_parameters(m50) == 55_843_464 - 1536 * 950 - 950 == 54_383_314
    assert m50.feature_dim == 1536 and m50.fc.out_features == C


def test_interface_second_head_and_input_checks():
    torch.manual_seed(3)
    m = build_model("inception_resnet_v2", 5, second_head=True).eval()
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        logits, pseudo, feats = m.forward_heads(x)
    assert logits.shape == pseudo.shape == (1, 5) and feats.shape == (1, 1536)
    assert torch.allclose(pseudo, m.pseudo_head(feats)) and not torch.allclose(pseudo, logits)
    with pytest.raises(ValueError, match="at least 75"):
        m(torch.randn(1, 3, 74, 80))
    gray = build_model("inception_resnet_v2", 5, in_channels=1)
    assert gray.conv2d_1a.conv.weight.shape == (32, 1, 3, 3)
    with pytest.raises(ValueError, match="weights_path"):
        build_model("inception_resnet_v2", 5, weights_path="x.pt")


# ---------------------------------------------------------------------------------------- official checkpoints


def _conv_bn(prefix: str) -> list[str]:
    return [f"{prefix}.conv.weight"] + [
        f"{prefix}.bn.{t}" for t in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]


def _dividemix_keys() -> list[str]:
    """Every tensor name of the official DivideMix ``InceptionResNetV2`` (module names of its file)."""
    keys: list[str] = []
    for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a"):
        keys += _conv_bn(name)
    for unit in ("branch0", "branch1.0", "branch1.1", "branch2.0", "branch2.1", "branch2.2", "branch3.1"):
        keys += _conv_bn(f"mixed_5b.{unit}")
    blocks = (
        [
            (f"repeat.{i}", ("branch0", "branch1.0", "branch1.1", "branch2.0", "branch2.1", "branch2.2"))
            for i in range(10)
        ]
        + [(f"repeat_1.{i}", ("branch0", "branch1.0", "branch1.1", "branch1.2")) for i in range(20)]
        + [(f"repeat_2.{i}", ("branch0", "branch1.0", "branch1.1", "branch1.2")) for i in range(9)]
        + [("block8", ("branch0", "branch1.0", "branch1.1", "branch1.2"))]
    )
    for prefix, units in blocks:
        for unit in units:
            keys += _conv_bn(f"{prefix}.{unit}")
        keys += [f"{prefix}.conv2d.weight", f"{prefix}.conv2d.bias"]
    for unit in ("branch0", "branch1.0", "branch1.1", "branch1.2"):
        keys += _conv_bn(f"mixed_6a.{unit}")
    for unit in ("branch0.0", "branch0.1", "branch1.0", "branch1.1", "branch2.0", "branch2.1", "branch2.2"):
        keys += _conv_bn(f"mixed_7a.{unit}")
    return keys + _conv_bn("conv2d_7b") + ["last_linear.weight", "last_linear.bias"]


def _official_state(model: InceptionResNetV2, rename) -> dict[str, Tensor]:
    """Fresh random tensors in the model's shapes, under official names (``rename``: kit name -> official name)."""
    g = torch.Generator().manual_seed(4)
    state = {}
    for k, v in model.state_dict().items():
        fresh = (
            torch.randint(0, 1000, v.shape, generator=g) if v.dtype == torch.long else torch.randn(v.shape, generator=g)
        )
        state[rename(k)] = fresh.to(v.dtype)
    return state


def _to_dividemix(key: str) -> str:
    return "last_linear" + key[2:] if key.startswith("fc.") else key


def test_dividemix_webvision_checkpoint_loads_every_tensor():
    kit = InceptionResNetV2(C)
    official = _official_state(kit, _to_dividemix)
    assert sorted(official) == sorted(_dividemix_keys())  # the kit's names are the official file's names
    # as saved from Train_webvision_parallel.py (DataParallel) and by SMR (an unused projection layer)
    saved = {f"module.{k}": v for k, v in official.items()}
    saved["module.projection_head.weight"] = torch.randn(128, 1536)
    saved["module.projection_head.bias"] = torch.randn(128)
    target = InceptionResNetV2(C)
    assert load_official_state_dict(target, saved, "dividemix_webvision") is target
    for k, v in target.state_dict().items():
        assert torch.equal(v, official[_to_dividemix(k)]), k
    broken = dict(official)
    del broken["repeat_1.7.branch1.1.conv.weight"]
    with pytest.raises(ValueError, match="repeat_1.7.branch1.1.conv.weight"):
        load_official_state_dict(InceptionResNetV2(C), broken, "smr_webvision")
    with pytest.raises(TypeError, match="inception_resnet_v2"):
        load_official_state_dict(build_model("small_cnn", C, image_size=8), official, "dividemix_webvision")


def _prune4rel_name(key: str) -> str:
    """Kit name -> Prune4ReL's ``Inception_ResNetv2`` name, written from its module tree: ``features`` = [Stem,
    10 × A, Reduction_A, 20 × B, Reduciton_B, 9 × C, C without activation], then ``conv`` and ``linear``; the stem's
    own ``features`` Sequential holds conv, conv, conv, max pool, conv, conv, max pool."""
    head, _, rest = key.partition(".")
    stem = {"conv2d_1a": 0, "conv2d_2a": 1, "conv2d_2b": 2, "conv2d_3b": 4, "conv2d_4a": 5}
    if head in stem:
        return f"features.0.features.{stem[head]}.{rest}"
    if head == "conv2d_7b":
        return f"conv.{rest}"
    if head == "fc":
        return f"linear.{rest}"

    def inside(r: str) -> str:
        r = r.replace("branch", "branch_", 1) if r.startswith("branch") else r
        return "conv" + r[len("conv2d") :] if r.startswith("conv2d.") else r

    if head == "mixed_5b":
        return f"features.0.{inside(rest)}"
    offsets = {"repeat": 1, "repeat_1": 12, "repeat_2": 33}
    if head in offsets:
        i, _, r = rest.partition(".")
        return f"features.{offsets[head] + int(i)}.{inside(r)}"
    return f"features.{ {'mixed_6a': 11, 'mixed_7a': 32, 'block8': 42}[head] }.{inside(rest)}"


def test_prune4rel_webvision_checkpoint_loads_every_tensor():
    kit = InceptionResNetV2(C)
    official = _official_state(kit, _prune4rel_name)
    assert len(official) == len(kit.state_dict())  # the renaming is one to one
    target = load_official_state_dict(InceptionResNetV2(C), official, "prune4rel_webvision")
    for k, v in target.state_dict().items():
        assert torch.equal(v, official[_prune4rel_name(k)]), k


# -------------------------------------------------------------------------------------------------- presets


def test_each_webvision_preset_trains_inception_resnet_v2():
    import lnlkit.presets.dividemix as dm
    import lnlkit.presets.prune4rel as p4r
    import lnlkit.presets.sop as sop

    configs = {
        "dividemix": dm.PRESETS["webvision"](),
        "smr": dm.SMR_PRESETS["webvision"](),
        "sop": sop.PRESETS["webvision"](),
        "prune4rel": p4r.PRESETS["webvision-sop"](),
        "prune4rel uniform baseline": p4r.UNIFORM_PRESETS["webvision-sop"](),
    }
    for who, cfg in configs.items():
        assert cfg.model == "inception_resnet_v2", who
    # the call the training context makes: 299 crops for DivideMix / SMR, 224 for SOP+ / Prune4ReL
    for who in ("dividemix", "smr", "sop", "prune4rel"):
        side = 299 if who in ("dividemix", "smr") else 224
        model = build_model_for_input(configs[who].model, C, (3, side, side))
        assert isinstance(model, InceptionResNetV2) and model.fc.out_features == C, who

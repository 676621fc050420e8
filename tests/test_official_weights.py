"""The architectures pinned against the official definitions, through lnlkit.models.load_official_state_dict.

Each test writes out the official network (module and parameter names as in the official file, forward as the
official ``forward``), gives it random weights (BN statistics and affine parameters included, so that eval mode
is not a near-identity), loads its state dict into the lnlkit model and compares the outputs in eval and in train
mode. The official files:

* DivideMix ``PreResNet.py`` ``ResNet18`` (= SMR's copy, = SOP ``model/PreResNet.py`` ``PreActResNet18``);
* ProMix ``model.py`` ``ResNet18`` (``linear`` + ``pseudo_linear`` heads, projection MLP ``head``);
* Co-mining ``model/cnn.py`` ``CNN`` (conv biases on);
* Me-Momentum ``networks/Resnet.py`` ``ResNet18`` (stem padding 0);
* ``torchvision.models.resnet50`` with a C-way fc.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lnlkit.models import OFFICIAL_SOURCES, build_model, load_official_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")

C = 7


# ------------------------------------------------------------------------------ reference official networks


class RefPreActBlock(nn.Module):
    """DivideMix's PreActBlock: r = relu(bn1(x)); conv2(relu(bn2(conv1(r)))) + shortcut(r)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        projection = stride != 1 or cin != cout
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False)) if projection else nn.Sequential()

    def forward(self, x):
        r = F.relu(self.bn1(x))
        branch = self.conv2(F.relu(self.bn2(self.conv1(r))))
        return branch + self.shortcut(r)


class RefPostActBlock(nn.Module):
    """ProMix / Me-Momentum BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x):
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(branch + self.shortcut(x))


def _stages(block, counts=(2, 2, 2, 2)):
    stages, cin = [], 64
    for width, stride, n in zip((64, 128, 256, 512), (1, 2, 2, 2), counts):
        blocks = []
        for j in range(n):
            blocks.append(block(cin, width, stride if j == 0 else 1))
            cin = width
        stages.append(nn.Sequential(*blocks))
    return stages


class RefDivideMixResNet18(nn.Module):
    """DivideMix PreResNet.py ResNet18: conv-bn-relu stem, 4 PreAct stages, avg_pool2d(4), linear."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1, self.layer2, self.layer3, self.layer4 = _stages(RefPreActBlock)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.avg_pool2d(out, 4).view(x.shape[0], -1))


class RefPostActResNet(nn.Module):
    """ProMix model.py ResNet (pseudo_head=True: + head MLP + pseudo_linear) / Me-Momentum networks/Resnet.py."""

    def __init__(self, num_classes, stem_padding, promix, counts=(2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, stem_padding, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1, self.layer2, self.layer3, self.layer4 = _stages(RefPostActBlock, counts)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(512, num_classes)
        self.promix = promix
        if promix:
            self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))
            self.pseudo_linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        feat = torch.flatten(self.avgpool(out), 1)
        if self.promix:
            return self.linear(feat), self.pseudo_linear(feat)
        return self.linear(feat)


class RefCoMiningCNN(nn.Module):
    """Co-mining model/cnn.py CNN: c1..c6 (3x3, padding 1, bias) each -> bn -> relu, max-pool after c2, c4, c6."""

    def __init__(self, num_classes):
        super().__init__()
        widths = (3, 64, 64, 128, 128, 196, 16)
        for i in range(1, 7):
            setattr(self, f"c{i}", nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1))  # bias on (the default)
        self.fc = nn.Linear(256, num_classes)
        for i in range(1, 7):
            setattr(self, f"bn{i}", nn.BatchNorm2d(widths[i], momentum=0.1))

    def forward(self, x):
        h = x
        for i in range(1, 7):
            h = F.relu(getattr(self, f"bn{i}")(getattr(self, f"c{i}")(h)))
            if i % 2 == 0:
                h = F.max_pool2d(h, 2, 2)
        return self.fc(h.view(h.shape[0], -1))


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, BN running statistics and affine parameters included (and conv biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(17)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=g))
    return module


def _outputs(net, x, lnlkit):
    """Primary logits (and pseudo logits when there are two heads) of an official or an lnlkit network."""
    if lnlkit:
        logits, pseudo, _ = net.forward_heads(x)
        return (logits,) if pseudo is None else (logits, pseudo)
    out = net(x)
    return out if isinstance(out, tuple) else (out,)


def _assert_same_function(ref, ours, x):
    """Same outputs in eval mode, in train mode (batch statistics), and the same BN running-stat updates."""
    for train in (False, True):
        ref.train(train)
        ours.train(train)
        with torch.no_grad():
            expected, got = _outputs(ref, x, False), _outputs(ours, x, True)
        assert len(expected) == len(got)
        for e, o in zip(expected, got):
            torch.testing.assert_close(o, e, atol=1e-5, rtol=1e-5, msg=lambda m: f"train={train}: {m}")
    ref_bns = [m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]
    our_bns = [m for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(ref_bns) == len(our_bns)
    # The train-mode pass updated the running statistics of BNs in the same order.
    assert sorted(float(b.running_mean.sum()) for b in ref_bns) == pytest.approx(
        sorted(float(b.running_mean.sum()) for b in our_bns), abs=1e-4
    )


# ------------------------------------------------------------------------------------------- the five sources


@pytest.mark.parametrize("alias", ["dividemix", "SMR", "sop"])
def test_dividemix_preresnet18_matches_official(alias):
    ref = _randomise(RefDivideMixResNet18(C), seed=1)
    ours = build_model("preact_resnet18", C)
    assert load_official_state_dict(ours, ref.state_dict(), alias) is ours
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    _assert_same_function(ref, ours, x)


def test_promix_resnet18_matches_official_both_heads():
    ref = _randomise(RefPostActResNet(C, stem_padding=1, promix=True), seed=2)
    ours = build_model("resnet18", C, second_head=True, init="kaiming")
    fresh_fc = ours.fc.weight.clone()
    load_official_state_dict(ours, ref.state_dict(), "promix")
    assert not torch.equal(ours.fc.weight, fresh_fc)
    assert not any(k.startswith("head.") for k in ours.state_dict())  # projection MLP not carried over
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    _assert_same_function(ref, ours, x)


def test_comining_cnn_matches_official():
    ref = _randomise(RefCoMiningCNN(C), seed=3)
    ours = build_model("cnn7", C)
    load_official_state_dict(ours, ref.state_dict(), "comining")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    _assert_same_function(ref, ours, x)


@pytest.mark.parametrize("model_name, counts", [("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3))])
def test_me_momentum_resnet_matches_official(model_name, counts):
    ref = _randomise(RefPostActResNet(C, stem_padding=0, promix=False, counts=counts), seed=4)
    ours = build_model(model_name, C, stem_padding=0)
    load_official_state_dict(ours, ref.state_dict(), "me_momentum")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    _assert_same_function(ref, ours, x)


def test_torchvision_resnet50_matches_official():
    ref = _randomise(torchvision.models.resnet50(weights=None, num_classes=C), seed=5)
    ours = build_model("resnet50_tv", C)
    load_official_state_dict(ours, ref.state_dict(), "resnet50")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _assert_same_function(ref, ours, x)


# ---------------------------------------------------------------------------------------- input handling


def test_checkpoint_wrappers_and_dataparallel_prefix():
    ref = _randomise(RefCoMiningCNN(C), seed=6)
    plain = {f"module.{k}": v for k, v in ref.state_dict().items()}
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref.eval()
    with torch.no_grad():
        expected = ref(x)
    for wrapped in ({"state_dict": plain, "epoch": 3}, {"net": plain, "acc": 91.0}, {"model": plain}, ref, plain):
        ours = load_official_state_dict(build_model("cnn7", C), wrapped, "co-mining").eval()
        with torch.no_grad():
            torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


def test_promix_dualnet_needs_subnet():
    class DualNet(nn.Module):  # ProMix saves its two networks as one module, net1 and net2
        def __init__(self):
            super().__init__()
            self.net1 = _randomise(RefPostActResNet(C, 1, promix=True), seed=7)
            self.net2 = _randomise(RefPostActResNet(C, 1, promix=True), seed=8)

    dual = DualNet()
    with pytest.raises(ValueError, match="subnet='net1'"):
        load_official_state_dict(build_model("resnet18", C, second_head=True), dual.state_dict(), "promix")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    dual.eval()
    for name in ("net1", "net2"):
        ours = build_model("resnet18", C, second_head=True)
        load_official_state_dict(ours, {"state_dict": dual.state_dict()}, "promix", subnet=name)
        with torch.no_grad():
            torch.testing.assert_close(ours.eval().forward_heads(x)[1], getattr(dual, name)(x)[1])
    with pytest.raises(ValueError, match="subnet 'net3' not found"):
        load_official_state_dict(build_model("resnet18", C, second_head=True), dual, "promix", subnet="net3")


def test_unknown_source_lists_sources():
    with pytest.raises(ValueError, match="unknown source 'divide_mix'") as err:
        load_official_state_dict(build_model("cnn7", C), {}, "divide_mix")
    for name in OFFICIAL_SOURCES:
        assert f"'{name}'" in str(err.value)
    assert set(OFFICIAL_SOURCES) == {
        "dividemix",
        "promix",
        "comining",
        "me_momentum",
        "torchvision_resnet50",
        "dividemix_webvision",
        "prune4rel_webvision",
    }


def test_missing_unexpected_and_shape_errors_name_the_keys():
    sd = _randomise(RefCoMiningCNN(C), seed=9).state_dict()
    missing = {k: v for k, v in sd.items() if k != "bn3.running_var"}
    with pytest.raises(ValueError, match=r"missing from the state dict: features\.8\.running_var"):
        load_official_state_dict(build_model("cnn7", C), missing, "comining")
    extra = dict(sd, **{"c7.weight": torch.zeros(3, 3, 3, 3)})
    with pytest.raises(ValueError, match=r"unexpected in the state dict: c7\.weight"):
        load_official_state_dict(build_model("cnn7", C), extra, "comining")
    mismatch = r"shape mismatches: fc\.bias: .*fc\.weight: file \(7, 256\) vs model \(10, 256\)"
    with pytest.raises(ValueError, match=mismatch):
        load_official_state_dict(build_model("cnn7", 10), sd, "comining")
    prm = _randomise(RefPostActResNet(C, 1, promix=True), seed=10).state_dict()
    with pytest.raises(ValueError, match=r"layer2\.0\.downsample\.1\.weight \(official layer2\.0\.shortcut\.1"):
        load_official_state_dict(
            build_model("resnet18", C, second_head=True),
            {k: (v[:-1] if k == "layer2.0.shortcut.1.weight" else v) for k, v in prm.items()},
            "promix",
        )
    with pytest.raises(ValueError, match="state dict"):
        load_official_state_dict(build_model("cnn7", C), {"epoch": 3, "acc": 0.5}, "comining")
    with pytest.raises(TypeError, match="state_dict must be"):
        load_official_state_dict(build_model("cnn7", C), [1, 2], "comining")


def test_wrong_model_for_source_is_a_clear_error():
    prm = _randomise(RefPostActResNet(C, 1, promix=True), seed=11).state_dict()
    with pytest.raises(ValueError, match="second_head=True"):
        load_official_state_dict(build_model("resnet18", C), prm, "promix")
    with pytest.raises(TypeError, match="CifarResNet"):
        load_official_state_dict(build_model("preact_resnet18", C, second_head=True), prm, "promix")
    mm = _randomise(RefPostActResNet(C, 0, promix=False), seed=12).state_dict()
    # Same tensor shapes, different network: the padding-0 stem has to be asked for.
    with pytest.raises(ValueError, match="padding 0"):
        load_official_state_dict(build_model("resnet18", C), mm, "me_momentum")
    with pytest.raises(ValueError, match="halved_residual"):
        load_official_state_dict(build_model("resnet18", C, stem_padding=0, halved_residual=True), mm, "me_momentum")
    # A DivideMix file into a model with a second head: the pseudo head has no weights in the file.
    dm = _randomise(RefDivideMixResNet18(C), seed=13).state_dict()
    with pytest.raises(ValueError, match=r"missing from the state dict: pseudo_head\.bias, pseudo_head\.weight"):
        load_official_state_dict(build_model("preact_resnet18", C, second_head=True), dm, "dividemix")


def test_old_torchvision_files_without_bn_counters_load():
    ref = _randomise(torchvision.models.resnet50(weights=None, num_classes=C), seed=14)
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    ours = load_official_state_dict(build_model("resnet50_tv", C), sd, "torchvision_resnet50")
    assert torch.equal(ours.layer3[2].bn2.running_var, ref.layer3[2].bn2.running_var)

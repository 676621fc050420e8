"""Post-activation ResNet-18/34 with a CIFAR stem (ProMix, Me-Momentum) and Co-mining's halved-residual variant.

Sources (facts only; see docs/methods/):

* **ProMix** (``Justherozen/ProMix``, ``model.py``): standard (non-pre-activation) ResNet-18 for CIFAR.
  Stem 3×3 conv, stride 1, 64 channels -> BN -> ReLU, no max-pool; BasicBlocks ×[2, 2, 2, 2], widths
  64/128/256/512, strides 1/2/2/2; shortcut 1×1 conv + BN when the shape changes; adaptive average pool -> 512-d;
  two linear heads 512 -> C, the primary ``h`` and the auxiliary pseudo head ``h_AP`` (here ``fc`` and
  ``pseudo_head``, enabled with ``second_head=True``). Convs are Kaiming-normal (fan_out, ReLU) initialised
  (``init="kaiming"``). ProMix's unused 512 -> 512 -> 128 projection MLP feeds no loss and is omitted.
* **Me-Momentum** (``tmllab/2021_ICCV_Me-Momentum``; P-M6 in docs/methods/me_momentum.md): the same post-activation
  CIFAR ResNet-18 (CIFAR-10) and ResNet-34 ×[3, 4, 6, 3] (CIFAR-100), but the stem conv has **padding 0**, so a
  32×32 image gives 30×30 maps after the stem (30 -> 15 -> 8 -> 4 through the stages). ``stem_padding=0``
  reproduces this quirk (faithful); ``stem_padding=1`` (default) is the standard stem.
* **Co-mining, web fine-grained** (docs/methods/comining.md#p3-web-backbone): a ResNet-18 whose BasicBlock outputs
  ``ReLU(0.5·branch + 0.5·shortcut)`` instead of ``ReLU(branch + shortcut)`` (``halved_residual=True``), ImageNet
  weights loaded for all shape-matching tensors (``weights_path=...``), FC He-initialised with a zero bias
  (``fc_init="he"``). Its images are 448×448, so it uses the ImageNet stem (``stem="imagenet"``: 7×7 conv
  stride 2 padding 3 -> BN -> ReLU -> 3×3 max-pool stride 2). Because ReLU is positively homogeneous, halving
  before or after the final ReLU gives the same output.

Parameter names follow torchvision's ResNet (``conv1``, ``bn1``, ``layerK.M.conv1/bn1/conv2/bn2/downsample.0/1``,
``fc``), so torchvision ImageNet state dicts load by name.
"""

from __future__ import annotations

import os

import torch.nn.functional as F
from torch import Tensor, nn

from lnlkit.models.base import (
    LNLModel,
    init_conv_kaiming,
    init_linear_he,
    load_matching_state_dict,
    read_state_dict,
)

__all__ = ["BasicBlock", "CifarResNet"]


class BasicBlock(nn.Module):
    """Post-activation basic block: ``ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + shortcut(x))``.

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels.
    stride : int
        Stride of ``conv1`` and of the projection shortcut.
    halved_residual : bool
        When True the block returns ``ReLU(0.5·branch + 0.5·shortcut)`` (Co-mining web variant).

    Notes
    -----
    ``(B, in_planes, H, W) -> (B, planes, ceil(H / stride), ceil(W / stride))``. The shortcut is the identity when
    the shape is unchanged, else a strided 1×1 conv + BN (``downsample``).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, halved_residual: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Sequential | None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        else:
            self.downsample = None
        self.halved_residual = bool(halved_residual)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        if self.halved_residual:
            return F.relu(0.5 * out + 0.5 * skip)
        return F.relu(out + skip)


class CifarResNet(LNLModel):
    """Post-activation ResNet (BasicBlocks) with a CIFAR stem by default; see the module docstring for sources.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    blocks : tuple of 4 ints
        Blocks per stage: ``(2, 2, 2, 2)`` for ResNet-18, ``(3, 4, 6, 3)`` for ResNet-34.
    in_channels : int, default 3
        Input channels.
    stem : {"cifar", "imagenet"}, default "cifar"
        ``"cifar"``: 3×3 conv stride 1 -> BN -> ReLU, no max-pool. ``"imagenet"``: 7×7 conv stride 2 padding 3
        -> BN -> ReLU -> 3×3 max-pool stride 2 (for large images, e.g. Co-mining's 448×448 web data).
    stem_padding : int or None, default None
        Padding of the CIFAR stem conv: 1 (standard, the default when None) or 0 (Me-Momentum's faithful quirk:
        30×30 maps after the stem for 32×32 inputs). Must be None with ``stem="imagenet"``.
    second_head : bool, default False
        Add ProMix's auxiliary pseudo head ``pseudo_head`` (512 -> C).
    halved_residual : bool, default False
        Co-mining's web variant: every block returns ``ReLU(0.5·branch + 0.5·shortcut)``.
    init : {"default", "kaiming"}, default "default"
        ``"default"``: PyTorch's default initialisation. ``"kaiming"``: Kaiming-normal (fan_out, ReLU) convs and
        BN weight 1 / bias 0, as in ProMix's official code; linear layers keep PyTorch's default.
    fc_init : {"default", "he"}, default "default"
        ``"he"``: He-normal (fan_in) weights and zero biases for the head(s), as in Co-mining's web code.
    weights_path : str or PathLike or None, default None
        Local state-dict file (e.g. torchvision's ImageNet ResNet-18 checkpoint) loaded **by name for every tensor
        whose shape matches** (Co-mining's web recipe); the heads are never loaded. What was loaded or skipped is
        kept in ``self.weights_report``. Nothing is ever downloaded; a missing file is a ``FileNotFoundError``.

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 512)`` (global average pool after ``layer4``);
    ``forward``: ``-> (B, C)``. With the CIFAR stem and a 32×32 input the stage outputs are 32/16/8/4 pixels
    (padding 1) or 30/15/8/4 (padding 0).
    """

    def __init__(
        self,
        num_classes: int,
        blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
        in_channels: int = 3,
        *,
        stem: str = "cifar",
        stem_padding: int | None = None,
        second_head: bool = False,
        halved_residual: bool = False,
        init: str = "default",
        fc_init: str = "default",
        weights_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        if init not in ("default", "kaiming"):
            raise ValueError(f"init must be 'default' or 'kaiming', got {init!r}")
        if fc_init not in ("default", "he"):
            raise ValueError(f"fc_init must be 'default' or 'he', got {fc_init!r}")
        if not isinstance(halved_residual, bool):
            raise TypeError(f"halved_residual must be a bool, got {halved_residual!r}")
        self.stem_type = stem
        if stem == "cifar":
            pad = 1 if stem_padding is None else stem_padding
            if isinstance(pad, bool) or pad not in (0, 1):
                raise ValueError(
                    f"stem_padding must be 1 (standard) or 0 (Me-Momentum faithful quirk), got {stem_padding!r}"
                )
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=pad, bias=False)
            self.maxpool: nn.Module | None = None
        else:
            if stem_padding is not None:
                raise ValueError("stem_padding only applies to stem='cifar'; leave it unset with stem='imagenet'")
            pad = 3
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stem_padding = pad
        self.bn1 = nn.BatchNorm2d(64)
        self.halved_residual = halved_residual
        in_planes = 64
        for i, (w, s, n) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2), blocks), start=1):
            layer = []
            for j in range(n):
                layer.append(BasicBlock(in_planes, w, s if j == 0 else 1, halved_residual))
                in_planes = w
            self.add_module(f"layer{i}", nn.Sequential(*layer))
        self._build_heads(512, num_classes, second_head)
        if init == "kaiming":
            init_conv_kaiming(self)
        if fc_init == "he":
            for head in self.heads():
                init_linear_he(head)
        self.weights_report: dict[str, list[str]] | None = None
        if weights_path is not None:
            self.weights_report = load_matching_state_dict(self, read_state_dict(weights_path))

    def stem(self, x: Tensor) -> Tensor:
        """Stem: ``(B, in_channels, H, W) -> (B, 64, H', W')`` (``H' = H - 2`` with CIFAR padding 0)."""
        out = F.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            out = self.maxpool(out)
        return out

    def embed(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

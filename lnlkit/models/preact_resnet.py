"""PreAct ResNet-18, DivideMix flavour (DivideMix, SMR and Prune4ReL/SOP+ on CIFAR).

Follows the ``ResNet18`` of DivideMix's official ``PreResNet.py`` (``LiJunnan1992/DivideMix``), which SMR uses
unchanged and SOP copies as ``PreActResNet18`` (512-d penultimate embeddings). Checkpoints written by those codes
load with :func:`lnlkit.models.load_official_state_dict` (source ``"dividemix"``).

Architecture (for a 32×32 input)::

    stem     3×3 conv, 64 channels, stride 1, padding 1, no bias -> BN -> ReLU          (B, 64, 32, 32)
    layer1   2 PreAct blocks,  64 channels, stride 1                                    (B, 64, 32, 32)
    layer2   2 PreAct blocks, 128 channels, stride 2                                    (B, 128, 16, 16)
    layer3   2 PreAct blocks, 256 channels, stride 2                                    (B, 256, 8, 8)
    layer4   2 PreAct blocks, 512 channels, stride 2                                    (B, 512, 4, 4)
    pool     average over the whole map -> flatten                                      (B, 512)  = embed(x)
    fc       linear 512 -> C                                                            (B, C)

A PreAct block computes ``a = ReLU(BN1(x))``, ``out = conv2(ReLU(BN2(conv1(a))))`` and returns ``out + s`` where
``s = x`` when the shape is unchanged and ``s = conv1x1(a)`` (a strided 1×1 conv *without* BN, applied to the
pre-activated input ``a``) when it changes.

Quirks kept from the official code:

* the stem is conv -> BN -> ReLU (not a bare conv as in He et al.'s PreAct ResNet);
* there is **no final BN -> ReLU** after ``layer4``: the pooled feature is taken from the raw residual sum;
* PyTorch default initialisation.

Deviation (documented): the official code pools with a fixed ``avg_pool2d(·, 4)``, which equals a global average
pool only for 32×32 inputs (4×4 maps after ``layer4``); lnlkit uses ``adaptive_avg_pool2d(·, 1)`` so that other input
sizes (e.g. 64×64 Animal-10N-sized images) also give a 512-d feature. For 32×32 inputs both are identical.

Parameter count with 10 classes: 11,171,274 (stem 1,856; layer1 147,968; layer2 525,184; layer3 2,098,944;
layer4 8,392,192; fc 5,130).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lnlkit.models.base import LNLModel

__all__ = ["PreActBlock", "PreActResNet18"]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """Pre-activation basic block (DivideMix flavour).

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels.
    stride : int
        Stride of the first 3×3 conv (and of the projection shortcut).

    Notes
    -----
    Input ``(B, in_planes, H, W)`` -> output ``(B, planes, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, 1)
        self.shortcut: nn.Sequential | None
        if stride != 1 or in_planes != planes:
            # 1×1 projection without BN, applied to the pre-activated input (as in the official code).
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False))
        else:
            self.shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        pre = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(LNLModel):
    """PreAct ResNet-18 as in DivideMix / SMR (see the module docstring for the exact layout and quirks).

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    in_channels : int, default 3
        Input channels.
    second_head : bool, default False
        Add a second linear head ``pseudo_head`` (512 -> C).

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 512)``; ``forward``: ``-> (B, C)``. Any ``H, W >= 1`` works thanks
    to the adaptive pool; 32×32 matches the official code exactly.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, second_head: bool = False) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, 64, 1)
        self.bn1 = nn.BatchNorm2d(64)
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 2)
        in_planes = 64
        for i, (w, s) in enumerate(zip(widths, strides), start=1):
            blocks = [PreActBlock(in_planes, w, s), PreActBlock(w, w, 1)]
            in_planes = w
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self._build_heads(512, num_classes, second_head)

    def stem(self, x: Tensor) -> Tensor:
        """Stem conv -> BN -> ReLU: ``(B, in_channels, H, W) -> (B, 64, H, W)``."""
        return F.relu(self.bn1(self.conv1(x)))

    def embed(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        # No final BN-ReLU (DivideMix quirk); global average pool (= avg_pool2d(4) for 32×32 inputs).
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

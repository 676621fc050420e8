"""torchvision ResNet-50 wrapper (Clothing1M for SMR/DivideMix, Me-Momentum and Prune4ReL; Co-mining's paper backbone).

Built with ``torchvision.models.resnet50(weights=None)`` (never downloads) with the 1000-way fc replaced by
``fc: 2048 -> C`` (and an optional ``pseudo_head``). The torchvision modules are registered directly on the wrapper,
so its state dict uses torchvision's names (``conv1.weight``, ``layer1.0.conv1.weight``, ..., ``fc.weight``) and an
ImageNet checkpoint file loads by name.

Pretrained weights: ``weights_path`` names a local state-dict file (e.g. torchvision's ``resnet50-0676ba61.pth``
that the user downloaded); every trunk tensor is loaded strictly (all must be present with matching shapes), the
file's fc is ignored and the head(s) keep their fresh initialisation for ``C`` classes. lnlkit never downloads
weights; a missing file is a ``FileNotFoundError`` naming the path. With ``in_channels != 3`` the stem conv is
replaced by a fresh 7×7 conv and ImageNet weights cannot be loaded (``ValueError``).

Feature: the 2048-d output of the global average pool (Co-mining's paper net / Prune4ReL use this as the embedding).
"""

from __future__ import annotations

import os

from torch import Tensor, nn

from lnlkit.models.base import LNLModel, load_state_dict_except_heads, read_state_dict

__all__ = ["TorchvisionResNet50"]


class TorchvisionResNet50(LNLModel):
    """torchvision ResNet-50 with lnlkit's interface.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    in_channels : int, default 3
        Input channels (a value other than 3 replaces ``conv1`` with a fresh ``in_channels -> 64`` 7×7 conv).
    weights_path : str or PathLike or None, default None
        Local ImageNet state dict to load (strict except the fc layer, which is re-initialised for ``C`` classes).
    second_head : bool, default False
        Add a second linear head ``pseudo_head`` (2048 -> C).

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 2048)``; ``forward``: ``-> (B, C)``. Any input of at least 32×32
    works (overall stride 32, adaptive average pool); ImageNet-style data uses 224×224.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        *,
        weights_path: str | os.PathLike | None = None,
        second_head: bool = False,
    ) -> None:
        super().__init__()
        if weights_path is not None and in_channels != 3:
            raise ValueError(
                f"ImageNet weights expect 3 input channels; cannot load weights_path with in_channels={in_channels}"
            )
        # imported here: torchvision's model zoo and ops cost seconds at start-up, and only this model needs them
        from torchvision.models import resnet50

        tv = resnet50(weights=None)
        if in_channels != 3:
            tv.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            self.add_module(name, getattr(tv, name))
        self._build_heads(tv.fc.in_features, num_classes, second_head)
        if weights_path is not None:
            load_state_dict_except_heads(self, read_state_dict(weights_path), source=f"'{weights_path}'")

    def embed(self, x: Tensor) -> Tensor:
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.avgpool(out).flatten(1)

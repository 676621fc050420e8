"""Co-mining's "7-layer CNN" for CIFAR (class ``CNN`` of the official ``model/cnn.py``, Co-mining repository).

Architecture (for a 32×32 input)::

    conv3×3(64)  -> BN -> ReLU                    (B, 64, 32, 32)
    conv3×3(64)  -> BN -> ReLU -> max-pool 2×2    (B, 64, 16, 16)
    conv3×3(128) -> BN -> ReLU                    (B, 128, 16, 16)
    conv3×3(128) -> BN -> ReLU -> max-pool 2×2    (B, 128, 8, 8)
    conv3×3(196) -> BN -> ReLU                    (B, 196, 8, 8)
    conv3×3(16)  -> BN -> ReLU -> max-pool 2×2    (B, 16, 4, 4)
    flatten                                       (B, 256)   = embed(x), the feature Co-mining's losses use
    fc 256 -> C                                   (B, C)

Six conv layers plus one linear layer make the seven layers. As in the official ``model/cnn.py``, the convs use
padding 1 (so the last block flattens to 256 features) and keep PyTorch's default bias (each is followed by BN,
which cancels a constant bias in the forward pass, but the bias is a parameter the optimiser updates, as in the
official code); BN momentum 0.1; PyTorch default initialisation. Co-mining L2-normalises the features before any
metric use; that belongs to the method, not the model, so ``embed`` returns them raw.

Parameter names: ``features.{0,3,7,10,14,17}`` are the convs (official ``c1`` ... ``c6``),
``features.{1,4,8,11,15,18}`` the BNs (``bn1`` ... ``bn6``) and ``fc`` the head; an official checkpoint loads with
:func:`lnlkit.models.load_official_state_dict` (source ``"comining"``). Checkpoints of lnlkit versions whose convs had
no bias still load: the missing biases are read as zeros, which computes exactly what those models computed.

Other input sizes: the trunk is fully convolutional and the three 2×2 max-pools floor-divide the size by 8, so an
``H×W`` input gives ``16·⌊H/8⌋·⌊W/8⌋`` features (``feature_dim`` and the fc are sized from ``image_size`` when the
model is built; 28×28 gives 144, 64×64 gives 1024). Inputs must be at least 8×8, and an input of another size than
the one the model was built for raises a ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lnlkit.models.base import LNLModel, pair

__all__ = ["CNN7"]


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _zero_bias_for_old_checkpoints(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
    """Load-state-dict pre-hook: fill in zero conv biases for checkpoints written before the convs had a bias.

    Only state dicts that carry no version 2 marker for this module are patched (state dicts of the current layout
    carry it unless their metadata was dropped, and then their biases are present), so a truncated new checkpoint
    still reports its missing keys.
    """
    version = local_metadata.get("version") if local_metadata else None
    if version is not None and version >= 2:
        return
    for name, sub in module.features.named_children():
        if isinstance(sub, nn.Conv2d) and sub.bias is not None:
            weight_key, bias_key = f"{prefix}features.{name}.weight", f"{prefix}features.{name}.bias"
            if weight_key in state_dict and bias_key not in state_dict:
                state_dict[bias_key] = torch.zeros_like(sub.bias)


class CNN7(LNLModel):
    """Co-mining's 7-layer CNN (six 3×3 conv-BN-ReLU layers 64-64-128-128-196-16, pool after each pair, FC).

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    in_channels : int, default 3
        Input channels.
    image_size : int or (int, int), default 32
        Input size the fc is built for; ``feature_dim = 16·⌊H/8⌋·⌊W/8⌋`` (256 for 32×32).
    second_head : bool, default False
        Add a second linear head ``pseudo_head``.

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 16·⌊H/8⌋·⌊W/8⌋)``; ``forward``: ``-> (B, C)``.
    """

    # Version 2: conv biases (as the official code). Version 1 state dicts (no conv bias) load with zero biases.
    _version = 2

    def __init__(
        self, num_classes: int, in_channels: int = 3, image_size: int | tuple[int, int] = 32, second_head: bool = False
    ) -> None:
        super().__init__()
        h, w = pair(image_size)
        if h < 8 or w < 8:
            raise ValueError(f"cnn7 needs inputs of at least 8×8 (three 2×2 max-pools), got image_size={image_size!r}")
        self.image_size = (h, w)
        layers: list[nn.Module] = []
        widths = (64, 64, 128, 128, 196, 16)
        cin = in_channels
        for i, cout in enumerate(widths):
            layers += _conv_bn_relu(cin, cout)
            cin = cout
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self._build_heads(16 * (h // 8) * (w // 8), num_classes, second_head)
        self.register_load_state_dict_pre_hook(_zero_bias_for_old_checkpoints)

    def embed(self, x: Tensor) -> Tensor:
        feats = self.features(x).flatten(1)
        return self._check_features(feats, x, f"{self.image_size[0]}×{self.image_size[1]} inputs")

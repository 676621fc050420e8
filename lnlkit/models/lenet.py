"""LeNet for MNIST as used by Me-Momentum (``tmllab/2021_ICCV_Me-Momentum``, ``networks/``).

Architecture (for a 28×28 one-channel input)::

    conv 6@5×5, padding 2 -> ReLU -> max-pool 2×2     (B, 6, 14, 14)
    conv 16@5×5, padding 0 -> ReLU -> max-pool 2×2    (B, 16, 5, 5)
    flatten                                           (B, 400)
    fc1 400 -> 120 -> ReLU                            (B, 120)
    fc2 120 -> 84  -> ReLU                            (B, 84)    = embed(x)
    fc  84 -> C                                       (B, C)

Official code fixes the layer sizes (conv 6@5×5 pad 2 -> pool -> conv 16@5×5 -> pool -> FC 400-120-84-C) but not the
non-linearity or the pooling type; lnlkit uses ReLU and 2×2 max-pooling (the common modern LeNet-5). PyTorch default
initialisation.

Other input sizes: the flatten size is computed from ``image_size``: ``16·s_h·s_w`` with
``s = ⌊(⌊n/2⌋ − 4)/2⌋`` per side (400 for 28, 576 for 32). Inputs must be at least 12×12; an input of another size
than the one the model was built for raises a ``ValueError``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lnlkit.models.base import LNLModel, pair

__all__ = ["LeNet"]


def _lenet_side(n: int) -> int:
    return ((n // 2) - 4) // 2


class LeNet(LNLModel):
    """LeNet (conv 6@5×5 pad 2, conv 16@5×5, FC 120-84) with an 84-d feature.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    in_channels : int, default 1
        Input channels.
    image_size : int or (int, int), default 28
        Input size; sets the flatten size (400 for 28×28).
    second_head : bool, default False
        Add a second linear head ``pseudo_head`` (84 -> C).

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 84)``; ``forward``: ``-> (B, C)``.
    """

    def __init__(
        self, num_classes: int, in_channels: int = 1, image_size: int | tuple[int, int] = 28, second_head: bool = False
    ) -> None:
        super().__init__()
        h, w = pair(image_size)
        sh, sw = _lenet_side(h), _lenet_side(w)
        if sh < 1 or sw < 1:
            raise ValueError(f"lenet needs inputs of at least 12×12, got image_size={image_size!r}")
        self.image_size = (h, w)
        self.flat_features = 16 * sh * sw
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(self.flat_features, 120)
        self.fc2 = nn.Linear(120, 84)
        self._build_heads(84, num_classes, second_head)

    def embed(self, x: Tensor) -> Tensor:
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2).flatten(1)
        if out.shape[1] != self.flat_features:
            raise ValueError(
                f"LeNet was built for {self.image_size[0]}×{self.image_size[1]} inputs but got an input of shape "
                f"{tuple(x.shape)}; rebuild it with the matching image_size"
            )
        return F.relu(self.fc2(F.relu(self.fc1(out))))

"""Inception-ResNet-v2 (Szegedy et al., 2017), the WebVision backbone of DivideMix, SMR, SOP+ and Prune4ReL.

The network is timm's ``InceptionResnetV2`` (``timm==1.0.31``, imported only when the model is built), which is the
TF-slim layout that the official codes train from scratch: DivideMix's and SMR's ``InceptionResNetV2.py`` (the
Cadene ``pretrainedmodels`` file) and Prune4ReL's ``deepcore/nets/inceptionresnetv2.py`` (the same layers under
other names). Its modules are registered directly on the wrapper under the official DivideMix names
(``conv2d_1a`` ... ``conv2d_7b``, ``mixed_5b``, ``repeat``, ``repeat_1``, ``repeat_2``, ``block8``), so an official
state dict loads by name once its ``last_linear`` is read as ``fc`` (:func:`lnlkit.models.load_official_state_dict`,
source ``"dividemix_webvision"``).

Layout for a 299×299 input (channels × side)::

    stem  conv 3×3/2 (32) · conv 3×3 (32) · conv 3×3 pad 1 (64) · max 3×3/2 · conv 1×1 (80) · conv 3×3 (192)
          · max 3×3/2 · Mixed_5b (96 + 64 + 96 + 64)                               -> 320 × 35
    10 × Block35 (Inception-ResNet-A), residual scaled by 0.17, ReLU             -> 320 × 35
    Mixed_6a (Reduction-A)                                                        -> 1088 × 17
    20 × Block17 (Inception-ResNet-B), residual scaled by 0.10, ReLU             -> 1088 × 17
    Mixed_7a (Reduction-B)                                                        -> 2080 × 8
    9 × Block8 (Inception-ResNet-C), residual scaled by 0.20, ReLU; one Block8 with scale 1 and no ReLU
    conv 1×1 (1536) · global average pool                                         -> 1536 (the feature)
    fc 1536 -> C

Every convolution except the blocks' residual 1×1 convolutions (which have a bias) is conv (no bias) · BatchNorm
(eps 1e-3, momentum 0.1) · ReLU, with PyTorch's default initialisation, as in the official files. The stem is the
TF-slim one (320 channels at 35×35), not the paper's Figure 3 (384 channels): the official codes, the published
ImageNet checkpoints and the ~55.8M parameters (1000 classes) are this layout.

Pooling: the official DivideMix/SMR file pools with ``AvgPool2d(8, count_include_pad=False)``, Prune4ReL's with an
adaptive average pool. For DivideMix's 299 crops the map is 8×8 and both are the global mean; the kit takes the
global mean, which also serves Prune4ReL's 224 crops (a 5×5 map, on which a fixed 8×8 pool would fail).
"""

from __future__ import annotations

from torch import Tensor

from lnlkit.models.base import LNLModel

__all__ = ["InceptionResNetV2", "MIN_INPUT_SIDE", "TRUNK_MODULES"]

#: The trunk's modules in forward order, under the official DivideMix / SMR names.
TRUNK_MODULES: tuple[str, ...] = (
    "conv2d_1a",
    "conv2d_2a",
    "conv2d_2b",
    "maxpool_3a",
    "conv2d_3b",
    "conv2d_4a",
    "maxpool_5a",
    "mixed_5b",
    "repeat",
    "mixed_6a",
    "repeat_1",
    "mixed_7a",
    "repeat_2",
    "block8",
    "conv2d_7b",
)

#: Smallest input side with a non-empty final map: the unpadded stride-2 and 3×3 layers need 75 pixels for 1×1.
MIN_INPUT_SIDE = 75


class InceptionResNetV2(LNLModel):
    """Inception-ResNet-v2 with lnlkit's interface, trained from scratch as the official WebVision runs.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C`` (50 for mini-WebVision).
    in_channels : int, default 3
        Input channels (the first convolution takes them).
    second_head : bool, default False
        Add a second linear head ``pseudo_head`` (1536 -> C).

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 1536)``; ``forward``: ``-> (B, C)``. ``H`` and ``W`` must be at least
    75 (:data:`MIN_INPUT_SIDE`); officially DivideMix and SMR train on 299 crops (an 8×8 final map), Prune4ReL on 224
    crops (5×5). With 50 classes the model has 54,383,314 parameters (55,843,464 with the 1000 ImageNet classes).
    """

    def __init__(self, num_classes: int, in_channels: int = 3, *, second_head: bool = False) -> None:
        super().__init__()
        # imported here: timm (and the torchvision it imports) costs seconds at start-up, and only this model needs it
        try:
            from timm.models.inception_resnet_v2 import InceptionResnetV2 as _TimmInceptionResNetV2
        except ImportError as err:
            raise ImportError(
                "inception_resnet_v2 (the WebVision presets' network) needs timm: pip install 'lnlkit[models]'"
            ) from err

        # timm's defaults are the official layers: BN eps 1e-3, ReLU, no dropout, padding 0 unless stated
        net = _TimmInceptionResNetV2(num_classes=num_classes, in_chans=in_channels)
        for name in TRUNK_MODULES:
            self.add_module(name, getattr(net, name))
        self._build_heads(net.num_features, num_classes, second_head)

    def features_map(self, x: Tensor) -> Tensor:
        """The trunk's last map before pooling.

        Parameters
        ----------
        x : Tensor
            ``(B, in_channels, H, W)`` with ``H, W >= 75``.

        Returns
        -------
        Tensor
            ``(B, 1536, h, w)``; ``h = w = 8`` for 299×299 inputs, 5 for 224×224.
        """
        if x.dim() != 4 or min(x.shape[-2:]) < MIN_INPUT_SIDE:
            raise ValueError(
                f"InceptionResNetV2 needs (B, C, H, W) inputs with H and W at least {MIN_INPUT_SIDE} (its unpadded "
                f"stride-2 layers leave nothing of smaller images), got {tuple(x.shape)}; the official WebVision "
                "runs use 299 (DivideMix, SMR) or 224 (Prune4ReL, SOP+) crops"
            )
        for name in TRUNK_MODULES:
            x = getattr(self, name)(x)
        return x

    def embed(self, x: Tensor) -> Tensor:
        # the global mean equals the official AvgPool2d(8) on 299 crops and Prune4ReL's adaptive pool on any size
        return self.features_map(x).mean(dim=(2, 3))

"""Small networks for the embedded data (scikit-learn digits, 1×8×8) and for flat feature vectors.

These are lnlkit's own designs (no paper prescribes them): they exist so that every method can run end to end on
a 2-core CPU in seconds while still learning a strong classifier, which makes noise effects visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from lnlkit.models.base import LNLModel, pair

__all__ = ["SmallCNN", "MLP"]


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _check_dropout(dropout: float) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
    return float(dropout)


class SmallCNN(LNLModel):
    """A small VGG-style CNN for 8×8 digits (lnlkit's default model for the embedded data).

    Architecture for a 1×8×8 input and ``width = w`` (default 32)::

        conv3×3(w)  -> BN -> ReLU                           (B, w, 8, 8)
        conv3×3(w)  -> BN -> ReLU -> max-pool 2×2           (B, w, 4, 4)
        conv3×3(2w) -> BN -> ReLU                           (B, 2w, 4, 4)
        conv3×3(2w) -> BN -> ReLU -> max-pool 2×2           (B, 2w, 2, 2)
        conv3×3(4w) -> BN -> ReLU                           (B, 4w, 2, 2)
        global average pool                                 (B, 4w)   = embed(x)  (128 for w = 32)
        dropout (p = ``dropout``, off by default) -> fc 4w -> C

    Each unit of the last 2×2 map already sees the whole 8×8 image, so global pooling loses little and the model
    is size-agnostic (any input of at least 4×4 works). About 0.14M parameters for ``w = 32``.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    in_channels : int, default 1
        Input channels.
    width : int, default 32
        Base channel count ``w``.
    dropout : float, default 0.0
        Dropout probability applied to the features before the head(s) (training mode only). ``embed`` returns
        the features *before* dropout, so ``forward(x) == classify(embed(x))`` holds in eval mode and whenever
        ``dropout == 0``.
    second_head : bool, default False
        Add a second linear head ``pseudo_head``.

    Notes
    -----
    ``embed``: ``(B, in_channels, H, W) -> (B, 4·width)``; ``forward``: ``-> (B, C)``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 8,
        *,
        width: int = 32,
        dropout: float = 0.0,
        second_head: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        h, w = pair(image_size)
        if h < 4 or w < 4:
            raise ValueError(f"small_cnn needs inputs of at least 4×4 (two 2×2 max-pools), got {image_size!r}")
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, width),
            *_conv_bn_relu(width, width),
            nn.MaxPool2d(2),
            *_conv_bn_relu(width, 2 * width),
            *_conv_bn_relu(2 * width, 2 * width),
            nn.MaxPool2d(2),
            *_conv_bn_relu(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
        )
        self.dropout = nn.Dropout(_check_dropout(dropout))
        self._build_heads(4 * width, num_classes, second_head)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x)

    def classify(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(features))

    def forward_heads(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        features = self.embed(x)
        dropped = self.dropout(features)
        pseudo = self.pseudo_head(dropped) if self.pseudo_head is not None else None
        return self.fc(dropped), pseudo, features


class _BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that accepts a training batch of one sample: it is normalised with the running statistics (which
    it leaves unchanged), as in eval mode, since one sample has no batch variance.  (A data loader folds a lone
    trailing sample into the previous batch; this covers sets of a single sample, e.g. a one-sample selection.)"""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1 and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class MLP(LNLModel):
    """Multi-layer perceptron for flat features: ``[Linear -> BN -> ReLU -> Dropout] × len(hidden)`` then a head.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C``.
    in_features : int
        Input width ``D_in``. Image-shaped inputs ``(B, C, H, W)`` are flattened, so ``C·H·W`` must equal it.
    hidden : sequence of int, default (256, 256)
        Hidden widths. An empty sequence gives a linear model (``embed`` is then the flattened input).
    dropout : float, default 0.0
        Dropout after every hidden ReLU.
    second_head : bool, default False
        Add a second linear head ``pseudo_head``.

    Notes
    -----
    ``embed``: ``(B, in_features)`` or ``(B, C, H, W)`` -> ``(B, hidden[-1])``; ``forward``: ``-> (B, C)``.
    A training batch of one sample is normalised with the running statistics (BatchNorm has no batch variance then).
    """

    def __init__(
        self,
        num_classes: int,
        in_features: int,
        *,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
        second_head: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive int, got {in_features!r}")
        if (
            isinstance(hidden, (str, bytes))
            or not isinstance(hidden, Sequence)
            or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden)
        ):
            raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
        p = _check_dropout(dropout)
        self.in_features = in_features
        self.hidden = tuple(hidden)
        layers: list[nn.Module] = []
        d = in_features
        for h in self.hidden:
            layers += [nn.Linear(d, h, bias=False), _BatchNorm1d(h), nn.ReLU(inplace=True)]
            if p > 0:
                layers.append(nn.Dropout(p))
            d = h
        self.body = nn.Sequential(*layers)
        self._build_heads(d, num_classes, second_head)

    def embed(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"MLP was built for {self.in_features} input features but got an input of shape {tuple(x.shape)}"
            )
        return self.body(x)


def mlp_in_features(in_channels: int, image_size: int | tuple[int, int]) -> int:
    """Input width of an MLP over flattened ``(in_channels, H, W)`` images: ``in_channels·H·W``."""
    h, w = pair(image_size)
    return in_channels * h * w

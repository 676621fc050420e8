"""Networks used by lnlkit's methods, behind one registry.

>>> from lnlkit.models import build_model, list_models
>>> net = build_model("preact_resnet18", num_classes=10)            # DivideMix / SMR CIFAR backbone
>>> net = build_model("resnet18", 10, second_head=True)              # ProMix (two heads)
>>> net = build_model("resnet18", 10, stem_padding=0)                # Me-Momentum faithful stem
>>> net = build_model("small_cnn", 10, in_channels=1, image_size=8)  # embedded digits

Every model has the interface of :class:`~lnlkit.models.base.LNLModel`: ``forward(x) -> (B, C)`` logits,
``embed(x) -> (B, feature_dim)`` penultimate features, ``classify(features) -> logits`` (``forward == classify ∘
embed``), ``forward_heads(x) -> (logits, pseudo_logits or None, features)``, and ``second_head=True`` adds
``model.pseudo_head`` (every model supports it). :func:`load_official_state_dict` loads checkpoints written by the
methods' official code (DivideMix/SMR/SOP, ProMix, Co-mining, Me-Momentum, torchvision ResNet-50, and the WebVision
Inception-ResNet-v2 of DivideMix/SMR and of Prune4ReL).

=======================  ======================================================================================
name                     model
=======================  ======================================================================================
``preact_resnet18``      PreAct ResNet-18, DivideMix flavour (DivideMix, SMR, Prune4ReL/SOP+ on CIFAR); 512-d
``resnet18``             post-activation CIFAR ResNet-18 (ProMix, Me-Momentum, Co-mining web variant); 512-d
``resnet34``             post-activation CIFAR ResNet-34 (Me-Momentum CIFAR-100); 512-d
``cnn7``                 Co-mining's 7-layer CNN for CIFAR; 256-d for 32×32
``lenet``                LeNet for MNIST (Me-Momentum); 84-d
``small_cnn``            small CNN for the embedded 8×8 digits (lnlkit's default there); 4·width-d
``mlp``                  MLP for flat features; hidden[-1]-d
``resnet50_tv``          torchvision ResNet-50 (Clothing1M etc.), optional local ImageNet weights; 2048-d
``inception_resnet_v2``  Inception-ResNet-v2 (timm), from scratch (WebVision: DivideMix, SMR, SOP+, Prune4ReL); 1536-d
=======================  ======================================================================================
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from lnlkit.models.base import LNLModel, pair, read_state_dict
from lnlkit.models.cnn7 import CNN7
from lnlkit.models.inception_resnet_v2 import InceptionResNetV2
from lnlkit.models.lenet import LeNet
from lnlkit.models.official import OFFICIAL_SOURCES, load_official_state_dict
from lnlkit.models.preact_resnet import PreActResNet18
from lnlkit.models.resnet import CifarResNet
from lnlkit.models.small import MLP, SmallCNN, mlp_in_features
from lnlkit.models.torchvision_resnet import TorchvisionResNet50

__all__ = [
    "ModelOptionError",
    "build_model",
    "build_model_for_input",
    "list_models",
    "MODELS",
    "ModelEntry",
    "LNLModel",
    "PreActResNet18",
    "CifarResNet",
    "CNN7",
    "LeNet",
    "SmallCNN",
    "MLP",
    "TorchvisionResNet50",
    "InceptionResNetV2",
    "count_parameters",
    "read_state_dict",
    "load_official_state_dict",
    "OFFICIAL_SOURCES",
]


class ModelOptionError(TypeError, ValueError):
    """A model option the chosen model does not accept (e.g. ``--set weights_path=FILE`` for ``small_cnn``).

    A ``TypeError`` as for any unexpected keyword argument, and a ``ValueError`` because it is bad user input: the
    command line reports it as its usual one-line error (``lnlkit run: error: ...``), not as a traceback.
    """


@dataclass(frozen=True)
class ModelEntry:
    """A registry entry: ``builder(num_classes, in_channels, image_size, **kw) -> LNLModel`` and a description."""

    builder: Callable[..., LNLModel]
    description: str

    def __call__(self, num_classes: int, in_channels: int, image_size: tuple[int, int], **kw) -> LNLModel:
        return self.builder(num_classes, in_channels, image_size, **kw)

    @property
    def options(self) -> tuple[str, ...]:
        """Names of the keyword options this model accepts (beyond num_classes, in_channels, image_size)."""
        params = inspect.signature(self.builder).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


# ----------------------------------------------------------------------------------------------------- builders
# Each builder takes (num_classes, in_channels, image_size) positionally and its options keyword-only; the
# keyword-only names are the options build_model accepts for that model.


def _preact_resnet18(num_classes, in_channels, image_size, *, second_head: bool = False) -> LNLModel:
    return PreActResNet18(num_classes, in_channels, second_head=second_head)


def _cifar_resnet(blocks: tuple[int, int, int, int]) -> Callable[..., LNLModel]:
    def build(
        num_classes,
        in_channels,
        image_size,
        *,
        stem_padding: int | None = None,
        second_head: bool = False,
        halved_residual: bool = False,
        stem: str = "cifar",
        init: str = "default",
        fc_init: str = "default",
        weights_path: str | os.PathLike | None = None,
    ) -> LNLModel:
        return CifarResNet(
            num_classes,
            blocks,
            in_channels,
            stem=stem,
            stem_padding=stem_padding,
            second_head=second_head,
            halved_residual=halved_residual,
            init=init,
            fc_init=fc_init,
            weights_path=weights_path,
        )

    return build


def _cnn7(num_classes, in_channels, image_size, *, second_head: bool = False) -> LNLModel:
    return CNN7(num_classes, in_channels, image_size, second_head=second_head)


def _lenet(num_classes, in_channels, image_size, *, second_head: bool = False) -> LNLModel:
    return LeNet(num_classes, in_channels, image_size, second_head=second_head)


def _small_cnn(
    num_classes, in_channels, image_size, *, width: int = 32, dropout: float = 0.0, second_head: bool = False
) -> LNLModel:
    return SmallCNN(num_classes, in_channels, image_size, width=width, dropout=dropout, second_head=second_head)


def _mlp(
    num_classes,
    in_channels,
    image_size,
    *,
    in_features: int | None = None,
    hidden: Sequence[int] = (256, 256),
    dropout: float = 0.0,
    second_head: bool = False,
) -> LNLModel:
    d = mlp_in_features(in_channels, image_size) if in_features is None else in_features
    return MLP(num_classes, d, hidden=hidden, dropout=dropout, second_head=second_head)


def _resnet50_tv(
    num_classes, in_channels, image_size, *, weights_path: str | os.PathLike | None = None, second_head: bool = False
) -> LNLModel:
    return TorchvisionResNet50(num_classes, in_channels, weights_path=weights_path, second_head=second_head)


def _inception_resnet_v2(num_classes, in_channels, image_size, *, second_head: bool = False) -> LNLModel:
    return InceptionResNetV2(num_classes, in_channels, second_head=second_head)


MODELS: dict[str, ModelEntry] = {
    "preact_resnet18": ModelEntry(
        _preact_resnet18, "PreAct ResNet-18, DivideMix flavour (DivideMix/SMR/Prune4ReL CIFAR backbone), 512-d feature"
    ),
    "resnet18": ModelEntry(
        _cifar_resnet((2, 2, 2, 2)),
        "post-activation CIFAR ResNet-18 (ProMix, Me-Momentum stem_padding=0, Co-mining halved_residual), 512-d",
    ),
    "resnet34": ModelEntry(
        _cifar_resnet((3, 4, 6, 3)), "post-activation CIFAR ResNet-34 (Me-Momentum CIFAR-100), 512-d feature"
    ),
    "cnn7": ModelEntry(_cnn7, "Co-mining 7-layer CNN (6 conv-BN-ReLU 64-64-128-128-196-16 + FC), 256-d for 32x32"),
    "lenet": ModelEntry(_lenet, "LeNet for MNIST (Me-Momentum): conv6-conv16-FC 400-120-84, 84-d feature"),
    "small_cnn": ModelEntry(_small_cnn, "small CNN for the embedded 8x8 digits (fast on CPU), 4*width-d feature"),
    "mlp": ModelEntry(_mlp, "MLP for flat features (Linear-BN-ReLU x len(hidden)), hidden[-1]-d feature"),
    "resnet50_tv": ModelEntry(
        _resnet50_tv, "torchvision ResNet-50 (Clothing1M etc.), optional local ImageNet weights_path, 2048-d feature"
    ),
    "inception_resnet_v2": ModelEntry(
        _inception_resnet_v2,
        "Inception-ResNet-v2 (timm, from scratch; DivideMix/SMR/SOP+/Prune4ReL WebVision), inputs >= 75x75, 1536-d",
    ),
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(MODELS)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def build_model(
    name: str, num_classes: int, in_channels: int = 3, image_size: int | tuple[int, int] = 32, **kw
) -> LNLModel:
    """Build a network by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models` (case-insensitive; ``-`` is read as ``_``).
    num_classes : int
        Number of classes ``C`` (at least 2).
    in_channels : int, default 3
        Input channels (use 1 for digits/MNIST).
    image_size : int or (int, int), default 32
        Input height/width. Used by the models whose layer sizes depend on it (``cnn7``, ``lenet``, ``mlp`` via
        ``in_channels·H·W``, ``small_cnn`` for a minimum-size check); the ResNets pool adaptively.
    **kw
        Model options, e.g. ``second_head``, ``stem_padding``, ``halved_residual``, ``width``, ``hidden``,
        ``dropout``, ``weights_path`` (see ``MODELS[name].options`` and each class's docstring).

    Returns
    -------
    LNLModel
        The network, in training mode, on the CPU.

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the valid names), ``num_classes < 2``, a bad size or option value.
    TypeError
        An argument of the wrong type, or (as :class:`ModelOptionError`, also a ``ValueError``) an option the model
        does not accept (the message names it and lists the accepted ones).
    FileNotFoundError
        ``weights_path`` names a file that does not exist (lnlkit never downloads weights).
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in MODELS:
        close = difflib.get_close_matches(key, list(MODELS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown model '{name}'. Valid names: {', '.join(list_models())}.{hint}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int):
        raise TypeError(f"in_channels must be an int, got {in_channels!r}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    size = pair(image_size)
    entry = MODELS[key]
    allowed = entry.options
    bad = sorted(k for k in kw if k not in allowed)
    if bad:
        raise ModelOptionError(
            f"model '{key}' got unexpected keyword argument(s) {', '.join(repr(b) for b in bad)}; "
            f"it accepts: {', '.join(allowed) if allowed else '(no options)'}"
        )
    return entry(num_classes, in_channels, size, **kw)


# Options that shape an image network's layers and mean nothing to an MLP (dropped when an image model is replaced
# by an MLP for flat features).
_IMAGE_ONLY_OPTIONS = ("width", "stem_padding", "halved_residual", "stem", "init", "fc_init")


def build_model_for_input(name: str, num_classes: int, input_shape: Sequence[int], **kw) -> LNLModel:
    """Build the network ``name`` for inputs of ``input_shape``: the model follows the data.

    Images ``(C, H, W)`` get ``name`` itself.  Flat features ``(D,)`` get an ``mlp`` of ``D`` inputs (hidden widths
    256-256, BatchNorm, about 0.09M parameters for D = 64, comparable with ``small_cnn``'s 0.14M) whatever image
    network ``name`` is, so a preset written for images (``small_cnn`` on digits, a ResNet on CIFAR) runs on the
    user's own feature vectors: the options the MLP shares (``second_head``, ``dropout``) carry over, the image-only
    layer options (``width``, ``stem_padding``, ``halved_residual``, ``stem``, ``init``, ``fc_init``) are dropped.
    The MLP's ``embed`` is its last hidden layer, so methods that need penultimate features (Co-mining, Prune4ReL,
    the second head of ProMix) have them.

    Parameters
    ----------
    name : str
        A registry name (see :func:`list_models`).
    num_classes : int
    input_shape : sequence of int
        ``(C, H, W)`` for images or ``(D,)`` for flat features (no batch dimension).
    **kw
        Model options (see :func:`build_model`).

    Returns
    -------
    LNLModel
        On the CPU, in training mode.

    Raises
    ------
    ValueError
        ``input_shape`` of another rank, or ``weights_path`` for flat features (pretrained image weights cannot load
        into an MLP; train from scratch or pass image-shaped arrays).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return build_model(name, num_classes, in_channels=shape[0], image_size=shape[1:], **kw)
    if len(shape) != 1:
        raise ValueError(f"input_shape must be (C, H, W) for images or (D,) for flat features, got {shape}")
    if kw.get("weights_path"):
        raise ValueError(
            f"weights_path={kw['weights_path']!r} holds image-network weights, but the data are flat feature vectors "
            f"of {shape[0]} values, which train an MLP; drop weights_path (e.g. --set weights_path=none) or pass "
            "image-shaped arrays (N, C, H, W) to Dataset.from_arrays"
        )
    kw = {k: v for k, v in kw.items() if k not in _IMAGE_ONLY_OPTIONS and k != "weights_path"}
    if isinstance(name, str) and name.strip().lower().replace("-", "_") not in MODELS:
        build_model(name, num_classes)  # raises the registry's unknown-name error
    return build_model("mlp", num_classes, in_channels=1, image_size=1, in_features=shape[0], **kw)

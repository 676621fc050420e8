"""Shared pieces of every lnlkit model: the uniform interface, heads, initialisation and local weight loading.

Every model in :mod:`lnlkit.models` derives from :class:`LNLModel` and therefore offers

* ``forward(x) -> logits`` of shape ``(B, C)``;
* ``embed(x) -> features`` of shape ``(B, D)`` with ``D == model.feature_dim`` (the penultimate feature the papers
  use for losses, selection and similarity);
* ``classify(features) -> logits`` (the primary head ``model.fc``), so ``forward(x) == classify(embed(x))``;
* ``forward_heads(x) -> (logits, pseudo_logits, features)``, where ``pseudo_logits`` comes from the optional second
  linear head ``model.pseudo_head`` (ProMix's auxiliary pseudo head) and is ``None`` when the model was built
  without one (``second_head=False``, then ``model.pseudo_head is None``).

Pretrained weights are only ever read from a local file the user names; lnlkit never downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "LNLModel",
    "NO_DOWNLOAD_HINT",
    "init_conv_kaiming",
    "init_linear_he",
    "read_state_dict",
    "load_state_dict_except_heads",
    "load_matching_state_dict",
    "pair",
]

NO_DOWNLOAD_HINT = (
    "lnlkit never downloads weights; download the state dict yourself (for example torchvision's ImageNet "
    "checkpoint, e.g. resnet50-0676ba61.pth or resnet18-f37072fd.pth) and pass its local path as weights_path"
)


def pair(size: int | tuple[int, int] | list[int], what: str = "image_size") -> tuple[int, int]:
    """Normalise an image size to ``(height, width)``.

    Parameters
    ----------
    size : int or tuple of two ints
        ``32`` means 32×32; ``(28, 32)`` means height 28, width 32.
    what : str
        Name used in error messages.

    Returns
    -------
    tuple of int
        ``(height, width)``, both positive.
    """
    if isinstance(size, bool):
        raise TypeError(f"{what} must be an int or a (height, width) pair, got {size!r}")
    if isinstance(size, int):
        hw = (size, size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        hw = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{what} must be an int or a (height, width) pair of ints, got {size!r}")
    if hw[0] < 1 or hw[1] < 1:
        raise ValueError(f"{what} must be positive, got {size!r}")
    return hw


class LNLModel(nn.Module):
    """Base class of every lnlkit network: a feature extractor plus one or two linear heads.

    Subclasses build their trunk, then call :meth:`_build_heads` last and implement :meth:`embed`.

    Attributes
    ----------
    feature_dim : int
        Width ``D`` of the features returned by :meth:`embed`.
    num_classes : int
        Number of classes ``C``.
    fc : nn.Linear
        The primary head, ``D -> C``.
    pseudo_head : nn.Linear or None
        The optional second head ``D -> C`` (ProMix's ``h_AP``); ``None`` when built with ``second_head=False``.
    """

    feature_dim: int
    num_classes: int
    fc: nn.Linear
    pseudo_head: nn.Linear | None

    def _build_heads(self, feature_dim: int, num_classes: int, second_head: bool) -> None:
        """Create ``fc`` (and ``pseudo_head`` when ``second_head``) with PyTorch's default initialisation."""
        if not isinstance(second_head, bool):
            raise TypeError(f"second_head must be a bool, got {second_head!r}")
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.fc = nn.Linear(self.feature_dim, self.num_classes)
        if second_head:
            self.pseudo_head = nn.Linear(self.feature_dim, self.num_classes)
        else:
            self.pseudo_head = None

    @property
    def has_second_head(self) -> bool:
        """Whether the model carries the second (pseudo) head."""
        return self.pseudo_head is not None

    def heads(self) -> list[nn.Linear]:
        """The linear heads (primary first)."""
        return [self.fc] if self.pseudo_head is None else [self.fc, self.pseudo_head]

    def embed(self, x: Tensor) -> Tensor:
        """Penultimate features.

        Parameters
        ----------
        x : Tensor
            Input batch, ``(B, in_channels, H, W)`` for convolutional models, ``(B, in_features)`` for the MLP.

        Returns
        -------
        Tensor
            ``(B, feature_dim)``.
        """
        raise NotImplementedError

    def classify(self, features: Tensor) -> Tensor:
        """Primary head: ``(B, feature_dim) -> (B, num_classes)`` logits."""
        return self.fc(features)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the primary head, ``(B, num_classes)``; equal to ``classify(embed(x))``."""
        return self.classify(self.embed(x))

    def forward_heads(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """One trunk pass, every head.

        Parameters
        ----------
        x : Tensor
            Input batch (see :meth:`embed`).

        Returns
        -------
        logits : Tensor
            ``(B, C)`` from the primary head.
        pseudo_logits : Tensor or None
            ``(B, C)`` from the second head, or ``None`` when the model has none.
        features : Tensor
            ``(B, feature_dim)``.
        """
        features = self.embed(x)
        logits = self.fc(features)
        pseudo = self.pseudo_head(features) if self.pseudo_head is not None else None
        return logits, pseudo, features

    def _check_features(self, features: Tensor, x: Tensor, built_for: str) -> Tensor:
        """Raise a clear error when a flatten-based trunk gets an input of another size than it was built for."""
        if features.shape[1] != self.feature_dim:
            raise ValueError(
                f"{type(self).__name__} was built for {built_for} (feature_dim {self.feature_dim}) but got an input "
                f"of shape {tuple(x.shape)} giving {features.shape[1]} features; rebuild it with the matching "
                "image_size / in_features"
            )
        return features


def init_conv_kaiming(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convolution weights and BN weight 1 / bias 0; linear layers untouched.

    This is the ResNet initialisation of ProMix's official code (``model.py``).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_linear_he(layer: nn.Linear) -> None:
    """He (Kaiming-normal, fan_in, gain sqrt(2)) weights and a zero bias for a linear head.

    This is how Co-mining's web ResNet-18 initialises its FC layer (``init_weights(..., init_method='He')`` in the
    official ``model/resnet.py``: ``kaiming_normal_`` on the weight, bias set to 0).
    """
    nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state dict from a local file (never downloads).

    Accepts a plain state dict, or a checkpoint dict holding one under ``"state_dict"`` or ``"model"``; a common
    ``"module."`` prefix (from ``DataParallel``) is stripped.

    Parameters
    ----------
    path : str or PathLike
        Local file written by ``torch.save``.

    Returns
    -------
    dict of str to Tensor

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist (the message names the path and explains that nothing is downloaded).
    ValueError
        When the file does not hold a state dict.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: '{p}'. {NO_DOWNLOAD_HINT}.")
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"'{p}' does not contain a state dict (a mapping from parameter names to tensors)")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _head_keys(model: nn.Module) -> set[str]:
    return {k for k in model.state_dict() if k.split(".")[0] in ("fc", "pseudo_head")}


def load_state_dict_except_heads(model: nn.Module, state: Mapping[str, Tensor], source: str = "weights") -> None:
    """Load ``state`` strictly except for the heads, which keep their fresh initialisation.

    Every trunk tensor of ``model`` must be present with the right shape and ``state`` may hold nothing else than
    trunk tensors and an ``fc.*`` head (whatever its class count); otherwise a ``RuntimeError`` lists the problems.
    """
    own = model.state_dict()
    heads = _head_keys(model)
    incoming = {k: v for k, v in state.items() if k.split(".")[0] not in ("fc", "pseudo_head")}
    # BN's num_batches_tracked counters are absent from old checkpoints (e.g. torchvision's 2017 ImageNet files);
    # PyTorch's BN loader tolerates that, so they are not required here either.
    missing = sorted(k for k in own if k not in heads and k not in incoming and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in incoming if k not in own)
    mismatched = sorted(
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in incoming.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    if missing or unexpected or mismatched:
        lines = []
        if missing:
            lines.append(f"missing from the file: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            lines.append(f"unexpected in the file: {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
        if mismatched:
            lines.append(f"shape mismatches: {mismatched[:10]}{' ...' if len(mismatched) > 10 else ''}")
        raise RuntimeError(f"cannot load {source} into {type(model).__name__}: " + "; ".join(lines))
    model.load_state_dict(incoming, strict=False)


def load_matching_state_dict(model: nn.Module, state: Mapping[str, Tensor]) -> dict[str, list[str]]:
    """Load every tensor of ``state`` whose name and shape match ``model``'s (heads excluded); skip the rest.

    This is how Co-mining's web code loads ImageNet weights into its modified ResNet-18 (official ``model/resnet.py``).

    Returns
    -------
    dict
        ``{"loaded": [...], "skipped": [...], "not_in_file": [...]}`` (parameter/buffer names).
    """
    own = model.state_dict()
    heads = _head_keys(model)
    loaded, skipped = [], []
    take = {}
    for k, v in state.items():
        if k in own and k not in heads and tuple(v.shape) == tuple(own[k].shape):
            take[k] = v
            loaded.append(k)
        else:
            skipped.append(k)
    model.load_state_dict(take, strict=False)
    not_in_file = sorted(k for k in own if k not in take and k not in heads)
    return {"loaded": loaded, "skipped": skipped, "not_in_file": not_in_file}

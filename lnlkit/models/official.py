"""Load checkpoints written by the methods' official code into lnlkit's models.

>>> from lnlkit.models import build_model, load_official_state_dict
>>> net = build_model("preact_resnet18", 10)
>>> load_official_state_dict(net, torch.load("dividemix_net1.pth"), "dividemix")   # doctest: +SKIP

The official repositories name their parameters differently from lnlkit (``linear`` for ``fc``, ``shortcut`` for
``downsample``, ``c1``/``bn1`` for ``features.0``/``features.1`` ...). :func:`load_official_state_dict` renames them,
checks that every tensor of the lnlkit model is present with the right shape and that nothing else is left over,
and copies them in. With the same weights the lnlkit model then computes the official network's outputs, in
evaluation and in training mode (the tests compare both against the official definitions written out).

Sources (aliases in brackets) and the lnlkit model to build for each:

* ``"dividemix"`` [``smr``, ``sop``, ``preresnet18``]: ``ResNet18`` of DivideMix's ``PreResNet.py`` (SMR's copy is
  the same, and so is SOP's ``PreActResNet18`` in ``model/PreResNet.py``) -> ``build_model("preact_resnet18", C)``.
* ``"promix"``: ``ResNet18`` of ProMix's ``model.py`` with its primary head ``linear`` and pseudo head
  ``pseudo_linear`` (the projection MLP ``head`` feeds no loss and is ignored) ->
  ``build_model("resnet18", C, second_head=True)``.
* ``"comining"`` [``comining_cnn``, ``co_mining``]: ``CNN`` of Co-mining's ``model/cnn.py`` (the 7-layer CNN) ->
  ``build_model("cnn7", C)``.
* ``"me_momentum"`` [``memomentum``]: ``ResNet18`` / ``ResNet34`` of Me-Momentum's ``networks/Resnet.py`` (stem
  padding 0) -> ``build_model("resnet18", C, stem_padding=0)`` (``"resnet34"`` for the 34-layer one).
* ``"torchvision_resnet50"`` [``resnet50``, ``resnet50_tv``]: ``torchvision.models.resnet50`` with its fc replaced
  for C classes (the Clothing1M networks of DivideMix, SMR, SOP, ...) -> ``build_model("resnet50_tv", C)``.
* ``"dividemix_webvision"`` [``smr_webvision``, ``inceptionresnetv2``]: ``InceptionResNetV2`` of DivideMix's and SMR's
  ``InceptionResNetV2.py`` (the WebVision network; SMR's unused ``projection_head`` is ignored) ->
  ``build_model("inception_resnet_v2", C)``.
* ``"prune4rel_webvision"`` [``prune4rel_inception``]: ``Inception_ResNetv2`` of Prune4ReL's
  ``deepcore/nets/inceptionresnetv2.py`` (the same layers, numbered ``features.0`` ... ``features.42``) ->
  ``build_model("inception_resnet_v2", C)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lnlkit.models.base import LNLModel
from lnlkit.models.cnn7 import CNN7
from lnlkit.models.inception_resnet_v2 import InceptionResNetV2
from lnlkit.models.preact_resnet import PreActResNet18
from lnlkit.models.resnet import CifarResNet
from lnlkit.models.torchvision_resnet import TorchvisionResNet50

__all__ = ["load_official_state_dict", "OFFICIAL_SOURCES"]

# Keys under which training scripts commonly wrap the state dict in a checkpoint dict, tried in this order.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "net", "model", "network")


@dataclass(frozen=True)
class _Source:
    name: str
    aliases: tuple[str, ...]
    description: str
    # Raises TypeError / ValueError when the lnlkit model cannot hold this source's network.
    check_model: Callable[[nn.Module], None]
    # Official key -> lnlkit key, or None for a tensor that is deliberately not loaded.
    rename: Callable[[str, nn.Module], str | None]


def _expect(model: nn.Module, cls: type, build_hint: str, source: str) -> None:
    if not isinstance(model, cls):
        raise TypeError(
            f"source '{source}' holds weights for lnlkit's {cls.__name__} ({build_hint}), got a {type(model).__name__}"
        )


def _swap_prefix(key: str, table: Mapping[str, str]) -> str:
    head, dot, rest = key.partition(".")
    return table.get(head, head) + dot + rest


# ----------------------------------------------------------------------------------------------------- DivideMix


def _check_preact(model: nn.Module) -> None:
    _expect(model, PreActResNet18, 'build_model("preact_resnet18", C)', "dividemix")


def _rename_preact(key: str, model: nn.Module) -> str | None:
    # Block names (bn1, conv1, bn2, conv2, shortcut.0) are the same; only the head differs.
    return _swap_prefix(key, {"linear": "fc"})


# ------------------------------------------------------------------------------ post-activation CIFAR ResNets


def _rename_block_shortcut(key: str) -> str:
    # layerK.M.shortcut.{0,1} (conv, BN) -> layerK.M.downsample.{0,1}
    parts = key.split(".")
    if len(parts) > 3 and parts[0].startswith("layer") and parts[2] == "shortcut":
        parts[2] = "downsample"
    return ".".join(parts)


def _check_cifar_resnet(model: nn.Module, source: str, padding: int, hint: str) -> None:
    _expect(model, CifarResNet, hint, source)
    if model.stem_type != "cifar" or model.stem_padding != padding:
        raise ValueError(
            f"source '{source}' is a CIFAR ResNet whose 3×3 stem conv has padding {padding}; the model has "
            f"stem='{model.stem_type}', stem_padding={model.stem_padding} ({hint})"
        )
    if model.halved_residual:
        raise ValueError(f"source '{source}' adds the full residual; build the model with halved_residual=False")


def _check_promix(model: nn.Module) -> None:
    hint = 'build_model("resnet18", C, second_head=True)'
    _check_cifar_resnet(model, "promix", 1, hint)
    if model.pseudo_head is None:
        raise ValueError(f"ProMix's network has a pseudo head (pseudo_linear); {hint}")


def _rename_promix(key: str, model: nn.Module) -> str | None:
    if key.startswith("head."):
        return None  # the projection MLP: computed by the official code but feeding no loss
    return _rename_block_shortcut(_swap_prefix(key, {"linear": "fc", "pseudo_linear": "pseudo_head"}))


def _check_me_momentum(model: nn.Module) -> None:
    _check_cifar_resnet(model, "me_momentum", 0, 'build_model("resnet18" or "resnet34", C, stem_padding=0)')


def _rename_me_momentum(key: str, model: nn.Module) -> str | None:
    return _rename_block_shortcut(_swap_prefix(key, {"linear": "fc"}))


# ----------------------------------------------------------------------------------------------------- Co-mining


def _check_cnn7(model: nn.Module) -> None:
    _expect(model, CNN7, 'build_model("cnn7", C)', "comining")


def _rename_cnn7(key: str, model: nn.Module) -> str | None:
    convs = [n for n, m in model.features.named_children() if isinstance(m, nn.Conv2d)]
    bns = [n for n, m in model.features.named_children() if isinstance(m, nn.BatchNorm2d)]
    head, dot, rest = key.partition(".")
    for letter, names in (("c", convs), ("bn", bns)):
        index = head[len(letter) :]
        if head.startswith(letter) and index.isdigit() and 1 <= int(index) <= len(names):
            return f"features.{names[int(index) - 1]}{dot}{rest}"
    return key  # fc.* keeps its name; anything else is reported as unexpected


# --------------------------------------------------------------------------------------------------- torchvision


def _check_resnet50(model: nn.Module) -> None:
    _expect(model, TorchvisionResNet50, 'build_model("resnet50_tv", C)', "torchvision_resnet50")


def _rename_identity(key: str, model: nn.Module) -> str | None:
    return key


# ------------------------------------------------------------------------------------------ Inception-ResNet-v2


def _check_inception(model: nn.Module) -> None:
    _expect(
        model, InceptionResNetV2, 'build_model("inception_resnet_v2", C)', "dividemix_webvision / prune4rel_webvision"
    )


def _rename_dividemix_inception(key: str, model: nn.Module) -> str | None:
    # The kit keeps the official module names; only the head differs. SMR's copy adds a 1536 -> 128 projection
    # layer that its forward never calls: not loaded.
    if key.startswith("projection_head."):
        return None
    return _swap_prefix(key, {"last_linear": "fc"})


# Prune4ReL's network is one Sequential ``features``: the stem (its own ``features`` Sequential, where indices 3 and 6
# are max pools, plus Mixed_5b's four branches), then the blocks in forward order, then ``conv`` and ``linear``.
_P4R_STEM_CONVS = {"0": "conv2d_1a", "1": "conv2d_2a", "2": "conv2d_2b", "4": "conv2d_3b", "5": "conv2d_4a"}
# (first index, last index, kit name, whether the kit name is a Sequential of blocks)
_P4R_BLOCKS = (
    (1, 10, "repeat", True),
    (11, 11, "mixed_6a", False),
    (12, 31, "repeat_1", True),
    (32, 32, "mixed_7a", False),
    (33, 41, "repeat_2", True),
    (42, 42, "block8", False),
)


def _rename_p4r_block_inside(rest: str) -> str:
    # branch_K -> branchK; a block's own residual 1x1 conv is ``conv`` there and ``conv2d`` in the kit
    rest = re.sub(r"^branch_(\d)", r"branch\1", rest)
    return "conv2d" + rest[len("conv") :] if rest.startswith("conv.") else rest


def _rename_prune4rel_inception(key: str, model: nn.Module) -> str | None:
    head, _, rest = key.partition(".")
    if head == "linear":
        return f"fc.{rest}"
    if head == "conv":  # the final 2080 -> 1536 conv-BN-ReLU
        return f"conv2d_7b.{rest}"
    if head != "features":
        return key  # reported as unexpected
    index, _, inner = rest.partition(".")
    if not index.isdigit():
        return key
    i = int(index)
    if i == 0:
        part, _, tail = inner.partition(".")
        if part == "features":
            pos, _, leaf = tail.partition(".")
            return f"{_P4R_STEM_CONVS[pos]}.{leaf}" if pos in _P4R_STEM_CONVS else key
        return f"mixed_5b.{_rename_p4r_block_inside(inner)}"
    for first, last, name, repeated in _P4R_BLOCKS:
        if first <= i <= last:
            prefix = f"{name}.{i - first}" if repeated else name
            return f"{prefix}.{_rename_p4r_block_inside(inner)}"
    return key


_SOURCES = (
    _Source(
        "dividemix",
        ("smr", "sop", "preresnet18", "preactresnet18", "dividemix_preresnet18"),
        "DivideMix/SMR PreResNet.py ResNet18 (= SOP PreActResNet18)",
        _check_preact,
        _rename_preact,
    ),
    _Source("promix", ("promix_resnet18",), "ProMix model.py ResNet18 with pseudo head", _check_promix, _rename_promix),
    _Source(
        "comining",
        ("comining_cnn", "comining_cnn7", "co_mining"),
        "Co-mining model/cnn.py CNN (7-layer)",
        _check_cnn7,
        _rename_cnn7,
    ),
    _Source(
        "me_momentum",
        ("memomentum", "me_momentum_resnet"),
        "Me-Momentum networks/Resnet.py ResNet18/34 (padding-0 stem)",
        _check_me_momentum,
        _rename_me_momentum,
    ),
    _Source(
        "torchvision_resnet50",
        ("resnet50", "resnet50_tv", "torchvision"),
        "torchvision resnet50 (fc for C classes)",
        _check_resnet50,
        _rename_identity,
    ),
    _Source(
        "dividemix_webvision",
        ("smr_webvision", "inceptionresnetv2", "inception_resnet_v2", "dividemix_inception"),
        "DivideMix/SMR InceptionResNetV2.py (WebVision; last_linear -> fc)",
        _check_inception,
        _rename_dividemix_inception,
    ),
    _Source(
        "prune4rel_webvision",
        ("prune4rel_inception", "prune4rel_inceptionresnetv2"),
        "Prune4ReL deepcore/nets/inceptionresnetv2.py Inception_ResNetv2 (WebVision)",
        _check_inception,
        _rename_prune4rel_inception,
    ),
)

#: Canonical source names accepted by :func:`load_official_state_dict` (aliases are listed in its docstring).
OFFICIAL_SOURCES: tuple[str, ...] = tuple(s.name for s in _SOURCES)

_BY_NAME = {n: s for s in _SOURCES for n in (s.name, *s.aliases)}


def _source_list() -> str:
    return "; ".join(f"'{s.name}' (also {', '.join(repr(a) for a in s.aliases)}): {s.description}" for s in _SOURCES)


def _strip_module_prefix(state: dict[str, object]) -> dict[str, object]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _as_mapping(obj: object) -> Mapping | None:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    return obj if isinstance(obj, Mapping) else None


def _unwrap(obj: object, subnet: str | None) -> dict[str, Tensor]:
    """Find the flat ``name -> tensor`` mapping inside a state dict, checkpoint dict or module."""
    state = _as_mapping(obj)
    if state is None:
        raise TypeError(
            f"state_dict must be a mapping (a state dict or a checkpoint dict) or an nn.Module, got "
            f"{type(obj).__name__}"
        )
    if not all(isinstance(v, Tensor) for v in state.values()):
        for key in _WRAPPER_KEYS:
            inner = _as_mapping(state.get(key))
            if inner is not None and (
                subnet is None or subnet in inner or any(str(k).startswith(f"{subnet}.") for k in inner)
            ):
                state = inner
                break
    state = _strip_module_prefix({str(k): v for k, v in state.items()})
    if subnet is not None:
        inner = _as_mapping(state.get(subnet))
        if inner is not None:
            state = {str(k): v for k, v in inner.items()}
        else:
            prefix = f"{subnet}."
            picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if not picked:
                raise ValueError(f"subnet '{subnet}' not found; the top-level names are {sorted(_heads(state))}")
            state = picked
        state = _strip_module_prefix(state)
    bad = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if not state or bad:
        raise ValueError(
            "state_dict does not hold a state dict (a mapping from parameter names to tensors), nor one under "
            f"{', '.join(repr(k) for k in _WRAPPER_KEYS)}; non-tensor entries: {bad[:10]}"
        )
    if subnet is None:
        heads = _heads(state)
        if len(heads) > 1 and all(re.fullmatch(r"net\d+", h) for h in heads):
            raise ValueError(
                f"the state dict holds several networks ({', '.join(sorted(heads))}, e.g. ProMix's DualNet); "
                f"pass subnet='{sorted(heads)[0]}' (or another) to load one of them"
            )
    return state


def _heads(state: Mapping[str, object]) -> set[str]:
    return {str(k).partition(".")[0] for k in state}


def _limited(names: list[str], n: int = 12) -> str:
    return ", ".join(names[:n]) + (f" ... ({len(names)} in all)" if len(names) > n else "")


def load_official_state_dict(
    model: LNLModel, state_dict: Mapping[str, object] | nn.Module, source: str, *, subnet: str | None = None
) -> LNLModel:
    """Load the weights of a network trained with a method's official code into the matching lnlkit model.

    Parameters
    ----------
    model : LNLModel
        The lnlkit network to fill, built for the same number of classes and input channels as the official one
        (see the table in the module docstring; e.g. ``build_model("resnet18", C, second_head=True)`` for ProMix,
        ``build_model("resnet18", C, stem_padding=0)`` for Me-Momentum). It keeps its device and dtype and its
        train/eval mode.
    state_dict : mapping or nn.Module
        The official network's state dict; or a checkpoint dict that wraps it under ``"state_dict"``,
        ``"model_state_dict"``, ``"net"``, ``"model"`` or ``"network"``; or a pickled official module (ProMix saves
        its whole ``DualNet``). A ``module.`` prefix (``DataParallel``) is stripped.
    source : str
        Which official network the weights come from (case-insensitive, ``-`` read as ``_``):

        * ``"dividemix"`` (aliases ``"smr"``, ``"sop"``, ``"preresnet18"``, ``"preactresnet18"``,
          ``"dividemix_preresnet18"``): the PreAct ResNet-18 of DivideMix/SMR ``PreResNet.py`` and SOP
          ``model/PreResNet.py``; ``linear`` -> ``fc``.
        * ``"promix"`` (``"promix_resnet18"``): ProMix's ``model.py`` ResNet-18; ``linear`` -> ``fc``,
          ``pseudo_linear`` -> ``pseudo_head``, ``layerK.M.shortcut`` -> ``layerK.M.downsample``; the unused
          projection MLP ``head.*`` is ignored.
        * ``"comining"`` (``"comining_cnn"``, ``"comining_cnn7"``, ``"co_mining"``): Co-mining's ``model/cnn.py``
          7-layer CNN; ``cK`` / ``bnK`` -> the K-th conv / BN of ``features``, ``fc`` unchanged.
        * ``"me_momentum"`` (``"memomentum"``, ``"me_momentum_resnet"``): Me-Momentum's ``networks/Resnet.py``
          ResNet-18/34 with the padding-0 stem; ``linear`` -> ``fc``, ``shortcut`` -> ``downsample``.
        * ``"torchvision_resnet50"`` (``"resnet50"``, ``"resnet50_tv"``, ``"torchvision"``): a torchvision
          ResNet-50 whose fc was replaced for C classes (names unchanged).
        * ``"dividemix_webvision"`` (``"smr_webvision"``, ``"inceptionresnetv2"``, ``"inception_resnet_v2"``,
          ``"dividemix_inception"``): the WebVision ``InceptionResNetV2`` of DivideMix / SMR; ``last_linear`` ->
          ``fc``, every other name unchanged, SMR's unused ``projection_head`` ignored. The official scripts save no
          weights of their own; this reads ``net.state_dict()`` of their network (``module.`` stripped when saved
          from ``Train_webvision_parallel.py``'s ``DataParallel``).
        * ``"prune4rel_webvision"`` (``"prune4rel_inception"``, ``"prune4rel_inceptionresnetv2"``): Prune4ReL's
          ``Inception_ResNetv2``; ``features.0`` -> the stem convs and ``mixed_5b``, ``features.1-10`` ->
          ``repeat``, ``11`` -> ``mixed_6a``, ``12-31`` -> ``repeat_1``, ``32`` -> ``mixed_7a``, ``33-41`` ->
          ``repeat_2``, ``42`` -> ``block8``, ``conv`` -> ``conv2d_7b``, ``linear`` -> ``fc``; inside a block
          ``branch_K`` -> ``branchK`` and the residual ``conv`` -> ``conv2d``.
    subnet : str or None, default None
        For a file holding several networks (ProMix's ``DualNet`` with ``net1``/``net2``, or a checkpoint dict
        with one entry per network): the name of the one to load.

    Returns
    -------
    LNLModel
        ``model`` itself, with the official weights (for chaining).

    Raises
    ------
    ValueError
        Unknown ``source`` (the message lists the sources and their aliases); a model configured differently from
        the source (e.g. Me-Momentum into a padding-1 stem, ProMix into a model without ``second_head``); tensors
        of the model missing from the file, tensors of the file with no place in the model, or shape mismatches
        (the message names the keys, in lnlkit's naming with the official name alongside); a file that holds no
        state dict, or several networks and no ``subnet``.
    TypeError
        ``model`` is not the lnlkit class that holds the source's network, or ``state_dict`` is of the wrong type.

    Notes
    -----
    BN ``num_batches_tracked`` counters may be absent (older files); the model's own counters are then kept.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {source!r}")
    key = source.strip().lower().replace("-", "_")
    if key not in _BY_NAME:
        raise ValueError(f"unknown source '{source}'. Valid sources: {_source_list()}")
    spec = _BY_NAME[key]
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an lnlkit model (nn.Module), got {type(model).__name__}")
    spec.check_model(model)
    state = _unwrap(state_dict, subnet)

    mapped: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for official_key, tensor in state.items():
        target = spec.rename(official_key, model)
        if target is None:
            continue
        if target in mapped:
            raise ValueError(f"'{official_key}' and '{origin[target]}' both map to '{target}'")
        mapped[target], origin[target] = tensor, official_key

    own = model.state_dict()

    def named(k: str) -> str:
        return k if origin.get(k, k) == k else f"{k} (official {origin[k]})"

    missing = sorted(k for k in own if k not in mapped and not k.endswith("num_batches_tracked"))
    unexpected = sorted(named(k) for k in mapped if k not in own)
    mismatched = sorted(
        f"{named(k)}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in mapped.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing from the state dict: {_limited(missing)}")
        if unexpected:
            problems.append(f"unexpected in the state dict: {_limited(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches: {_limited(mismatched)}")
        raise ValueError(
            f"cannot load the '{spec.name}' state dict into {type(model).__name__}: " + "; ".join(problems)
        )
    with torch.no_grad():
        model.load_state_dict(mapped, strict=False)
    return model

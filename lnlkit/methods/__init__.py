"""Methods by name: ``get_method("ce", preset="digits", lr=0.1)``."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from lnlkit.methods.base import Context, EpochOutput, Method, MethodConfig, parse_overrides

__all__ = [
    "get_method",
    "with_overrides",
    "list_methods",
    "method_class",
    "METHODS",
    "ALIASES",
    "Method",
    "MethodConfig",
    "EpochOutput",
    "Context",
    "parse_overrides",
]

# name -> "module:Class"; methods of later issues register here.
METHODS: dict[str, str] = {
    "ce": "lnlkit.methods.ce:CE",
    "dividemix": "lnlkit.methods.dividemix:DivideMix",
    "smr": "lnlkit.methods.dividemix:SMR",
    "comining": "lnlkit.methods.comining:CoMining",
    "mememomentum": "lnlkit.methods.me_momentum:MeMomentum",
    "promix": "lnlkit.methods.promix:ProMix",
    "sop": "lnlkit.methods.sop:SOP",
    "prune4rel": "lnlkit.methods.prune4rel:Prune4ReL",
    "prune:uniform": "lnlkit.methods.prune4rel:PruneUniform",
    "prune:smallloss": "lnlkit.methods.prune4rel:PruneSmallLoss",
    "prune:uncertainty": "lnlkit.methods.prune4rel:PruneUncertainty",
    "prune:forgetting": "lnlkit.methods.prune4rel:PruneForgetting",
    "prune:grand": "lnlkit.methods.prune4rel:PruneGraNd",
    "prune:moderate": "lnlkit.methods.prune4rel:PruneModerate",
    "prune:kcentergreedy": "lnlkit.methods.prune4rel:PruneKCenterGreedy",
    "prune:glister": "lnlkit.methods.prune4rel:PruneGlister",
}
# other spellings accepted by get_method / method_class (not listed by list_methods)
ALIASES: dict[str, str] = {"me-momentum": "mememomentum"}


def list_methods() -> list[str]:
    return sorted(METHODS)


def method_class(name: str) -> type[Method]:
    """The class behind a method name (ValueError listing the valid names otherwise)."""
    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    module, cls = METHODS[key].split(":")
    return getattr(importlib.import_module(module), cls)


def get_method(name: str, preset: str | None = None, **overrides: Any) -> Method:
    """Build a method with a preset's hyperparameters and optional overrides.

    Parameters
    ----------
    name : str
        ``ce`` (and the methods of later releases).
    preset : str, optional
        A preset of the method (``method_class(name).PRESETS``), e.g. ``"digits"`` or ``"cifar10"``; ``None`` uses
        the config's defaults.
    **overrides
        Config fields to change, e.g. ``epochs=5``.  Unknown keys raise ValueError listing the valid keys.

    Returns
    -------
    Method
    """
    cls = method_class(name)
    if preset == "auto":
        raise ValueError(
            "preset 'auto' sizes the method to the data set: use lnlkit.auto_method(name, data, **overrides) "
            "(lnlkit run --preset auto and lnlkit detect do it for you)"
        )
    if preset is None:
        config = cls.Config()
    elif preset not in cls.PRESETS:
        raise ValueError(f"unknown preset {preset!r} for {cls.name}; available: {', '.join(sorted(cls.PRESETS))}")
    else:
        config = cls.PRESETS[preset]()
    return cls(with_overrides(cls, config, overrides), preset=preset)


def with_overrides(cls: type[Method], config: MethodConfig, overrides: dict[str, Any]) -> MethodConfig:
    """``config`` with ``overrides`` set; ValueError naming unknown keys and listing the valid ones."""
    valid = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)} for {cls.name}; valid keys: {', '.join(sorted(valid))}"
        )
    return dataclasses.replace(config, **overrides)

"""``--set key=value`` overrides: strings from the command line, typed by the config dataclass's annotations."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Iterable

__all__ = ["parse_overrides", "coerce_value"]


def coerce_value(value: str, annotation: Any, key: str) -> Any:
    """Parse one ``--set key=value`` string into the field's type.

    Parameters
    ----------
    value : str
        The text after ``=``.
    annotation : type or str
        The field's annotation (``bool``, ``int``, ``float``, ``tuple[int, ...]``, ``X | None``, ...); strings are
        the postponed annotations of ``from __future__ import annotations``.
    key : str
        The field name, for error messages.

    Returns
    -------
    The typed value; text that matches no annotation is returned as is.
    """
    origin = typing.get_origin(annotation)
    if annotation is bool or annotation == "bool":
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true/false, got {value!r}")
    if annotation in (int, "int"):
        return int(value)
    if annotation in (float, "float"):
        return float(value)
    if origin in (tuple, list) or annotation in ("tuple", "list") or str(annotation).startswith(("tuple", "list")):
        parsed = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(",") if v.strip()]
        args = typing.get_args(annotation)
        elem = args[0] if args else None
        conv = {int: int, float: float}.get(elem, None)
        if conv is None:

            def conv(v):
                return float(v) if "." in str(v) or "e" in str(v).lower() else int(v)

        return tuple(conv(v) for v in parsed)
    if (
        origin is typing.Union
        or str(annotation).startswith(("typing.Optional", "Optional"))
        or " | " in str(annotation)
    ):
        if value.lower() in ("none", "null"):
            return None
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            try:
                return coerce_value(value, arg, key)
            except (ValueError, TypeError):
                continue
        return value
    return value


def parse_overrides(config_cls: type, items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["lr=0.1", "epochs=5"]`` into typed overrides for ``config_cls``.

    Parameters
    ----------
    config_cls : dataclass type
        A method's config class (``method_class(name).Config``).
    items : iterable of str
        ``key=value`` strings.

    Returns
    -------
    dict
        Field name -> typed value.

    Raises
    ------
    ValueError
        For a malformed item or an unknown key (the message lists the valid keys).
    """
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in names:
            raise ValueError(
                f"unknown setting {key!r} for {config_cls.__name__}; valid keys: {', '.join(sorted(names))}"
            )
        try:
            out[key] = coerce_value(value.strip(), hints.get(key, str), key)
        except (ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"--set {key}={value!r}: cannot parse as {hints.get(key)}: {err}") from None
    return out

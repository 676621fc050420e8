"""Checks for the configs' ``validate()``: each raises ValueError naming the field, the rule and the value it got.

Used as ``check_positive(self, "lr")`` inside a config dataclass's ``validate``; every check takes the config and
one or more field names, so one line covers fields that share a rule.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

__all__ = ["check_choice", "check_int", "check_non_negative", "check_positive", "check_range"]


def _values(cfg: Any, names: Iterable[str], optional: bool):
    for name in names:
        value = getattr(cfg, name)
        if not (optional and value is None):
            yield name, value


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _or_none(optional: bool) -> str:
    return " or None" if optional else ""


def check_choice(cfg: Any, name: str, choices: Iterable[Any], hint: str = "") -> None:
    """``cfg.name`` must be one of ``choices`` (``hint``, e.g. which setting uses which, goes into the message)."""
    choices = tuple(choices)
    value = getattr(cfg, name)
    if value not in choices:
        note = f" ({hint})" if hint else ""
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}{note}, got {value!r}")


def check_positive(cfg: Any, *names: str, optional: bool = False) -> None:
    """Each field must be a number > 0 (or None when ``optional``)."""
    for name, value in _values(cfg, names, optional):
        if not (_number(value) and value > 0):
            raise ValueError(f"{name} must be positive{_or_none(optional)}, got {value!r}")


def check_non_negative(cfg: Any, *names: str, optional: bool = False) -> None:
    """Each field must be a number >= 0 (or None when ``optional``)."""
    for name, value in _values(cfg, names, optional):
        if not (_number(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0{_or_none(optional)}, got {value!r}")


def check_int(cfg: Any, *names: str, low: int = 0, optional: bool = False) -> None:
    """Each field must be an integer (not a bool) >= ``low`` (or None when ``optional``)."""
    for name, value in _values(cfg, names, optional):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
            raise ValueError(f"{name} must be {kind}{_or_none(optional)}, got {value!r}")


def check_range(
    cfg: Any,
    *names: str,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    """Each field must lie in the interval from ``low`` to ``high`` (ends open as asked; None when ``optional``)."""
    for name, value in _values(cfg, names, optional):
        if (
            not _number(value)
            or not (value > low if low_open else value >= low)
            or not (value < high if high_open else value <= high)
        ):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"{name} must be in {interval}{_or_none(optional)}, got {value!r}")

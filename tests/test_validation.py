"""The config checks of lnlkit.train.validation: what each accepts, what it rejects and what the message names."""

from dataclasses import dataclass

import pytest

from lnlkit.train.validation import check_choice, check_int, check_non_negative, check_positive, check_range


@dataclass
class Cfg:
    a: object = 1
    b: object = 1


def _raises(fn, *args, match, **kw):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kw)


def test_check_choice():
    check_choice(Cfg(a="x"), "a", ("x", "y"))
    check_choice(Cfg(a=None), "a", (None, "x"))
    _raises(
        check_choice,
        Cfg(a="z"),
        "a",
        ("x", "y"),
        "x on CIFAR",
        match=r"a must be one of 'x', 'y' \(x on CIFAR\), got 'z'",
    )


def test_check_positive_and_non_negative():
    check_positive(Cfg(a=1e-9, b=3), "a", "b")
    _raises(check_positive, Cfg(a=1, b=0), "a", "b", match="b must be positive, got 0")
    _raises(check_positive, Cfg(a=float("nan")), "a", match="a must be positive")
    check_positive(Cfg(a=None), "a", optional=True)
    check_non_negative(Cfg(a=0, b=0.0), "a", "b")
    _raises(check_non_negative, Cfg(a=-1e-9), "a", match="a must be >= 0")
    _raises(check_non_negative, Cfg(a=None), "a", match="a must be >= 0")  # None only when optional


def test_check_int():
    check_int(Cfg(a=0, b=5), "a", "b", low=0)
    _raises(check_int, Cfg(a=0), "a", low=1, match="a must be a positive integer, got 0")
    _raises(check_int, Cfg(a=-1), "a", low=0, match="a must be a non-negative integer")
    _raises(check_int, Cfg(a=2.0), "a", match="integer, got 2.0")
    _raises(check_int, Cfg(a=True), "a", match="integer, got True")
    check_int(Cfg(a=None), "a", low=1, optional=True)
    _raises(check_int, Cfg(a=None), "a", low=1, match="a must be a positive integer, got None")
    _raises(check_int, Cfg(a=2), "a", low=3, match="an integer >= 3")


def test_check_range_ends():
    check_range(Cfg(a=0.0, b=1.0), "a", "b", low=0.0, high=1.0)
    _raises(check_range, Cfg(a=1.0), "a", low=0.0, high=1.0, high_open=True, match=r"a must be in \[0, 1\), got 1.0")
    _raises(check_range, Cfg(a=0.0), "a", low=0.0, high=1.0, low_open=True, match=r"a must be in \(0, 1\]")
    _raises(check_range, Cfg(a=1.5), "a", low=0.0, high=1.0, match=r"\[0, 1\]")
    _raises(check_range, Cfg(a=-0.1), "a", low=0.0, high=1.0, match=r"\[0, 1\]")
    _raises(check_range, Cfg(a=float("nan")), "a", low=0.0, high=1.0, match="a must be in")
    check_range(Cfg(a=None), "a", low=0.0, high=1.0, optional=True)
    _raises(check_range, Cfg(a=None, b=2.0), "a", "b", low=0.0, high=1.0, optional=True, match=r"b .* or None, got 2")

"""Label-noise injectors and transition-matrix tools.

Every variant is reached through one function, :func:`inject_noise`, with a spec string
``"<kind>:<arg>"``.  It returns a :class:`NoisyLabels` that carries the given (noisy) labels,
the noise mask, the *realised* transition matrix and the *realised* noise rate, because the
nominal rate ``R`` in the spec means different things for different kinds (table below).

Conventions
-----------
* Transition matrices are row-stochastic: ``T[i, j] = P(given label = j | true class = i)``
  (cleanlab uses the transpose; transpose before comparing).  The realised matrix is the
  row-normalised confusion count (true x given); rows of classes without samples are all zero.
* "Dataset order" is the order of ``labels`` as passed (for CIFAR: the python-pickle order,
  which torchvision uses too).  Official recipes walk the samples in that order, so the
  labels are only reproducible for the same order.
* ``seed`` is an integer in ``[0, 2**32)``.  Every kind builds its own private generator from
  it; the global ``random`` / ``numpy.random`` states are neither used nor changed.
* The realised rate is the fraction of samples whose given label differs from the true class.

Kinds
-----
What the rate ``R`` means, and the realised rate (fraction of labels != truth) on balanced data:

=================================  =========================================================  ==========================
spec                               meaning of the argument                                    realised rate
=================================  =========================================================  ==========================
``none`` / ``clean``               no noise (no argument)                                     0
``symmetric:R``                    flip with prob. R to a uniformly random OTHER class        ~= R
``symmetric-inclusive:R``          a fraction R is re-drawn uniformly from ALL C classes      ~= R (1 - 1/C)
``pairflip:R``                     i -> (i + 1) mod C with prob. R                            ~= R
``asym-cifar10:R``                 a fraction R of the WHOLE set is selected; selected        ~= R/2 (R on classes
                                   samples map bird->airplane, cat<->dog, deer->horse,        2, 3, 4, 5, 9)
                                   truck->automobile (C must be 10)
``asym-cifar10-bidirectional:R``   a fraction R flips via 0<->2, 1<->9, 3<->5, 4<->7, 6<->8   exactly int(R N)/N
``asym-cifar100-block5:R``         inside blocks of 5 consecutive indices: next class         ~= R; ~= 2R/5 for
                                   cyclically with prob. R (``block5_rule="randompair"``:     ``randompair``
                                   one random pair per block swaps with prob. R)
``asym-cifar100-superclass:R``     next fine class of the TRUE superclass with prob. R        ~= R
                                   (needs ``coarse_labels``)
``instance:R``                     mean of the per-sample flip rates q_i ~ TruncNorm(R, 0.1)  ~= mean(q) (0.2055 at
                                   on [0, 1]; flips follow a random projection of the raw     R = 0.2, ~= R for
                                   inputs (needs ``features``)                                R >= 0.4)
``openset:O+<closed spec>``        the last floor(O C) classes are held out and relabelled    o + (1 - o) rho, o =
                                   uniformly into the C_k known ones; the closed spec         floor(O C)/C, rho the
                                   applies to the known classes                               closed realised rate
``cifar10n:KEY``                   CIFAR-10N human labels, KEY in aggre, worst, rand1,        9.01, 40.21, 17.23,
                                   rand2, rand3, clean (needs ``CIFAR-10_human.pt``)          18.12, 17.64, 0 %
``cifar100n:KEY``                  CIFAR-100N human labels, KEY in noisy, clean               40.20, 0 %
                                   (needs ``CIFAR-100_human.pt``)
=================================  =========================================================  ==========================

RNG recipe of each kind (generator and order of draws):

==================================  ==================================================================================
spec                                recipe
==================================  ==================================================================================
``symmetric``, ``pairflip``         Co-mining / Me-Momentum: ``np.random.RandomState(seed)``, one
                                    ``multinomial(1, P[y_i])`` per sample in dataset order.  ``symmetric`` with
                                    ``recipe="exact"`` (Prune4ReL rule): exactly ``int(R N)`` samples from
                                    ``np.random.default_rng(seed).permutation``, each to a random other class.
``symmetric-inclusive``,            DivideMix / ProMix / SMR, bit-exact: private ``random.Random(seed)``; shuffle
``asym-cifar10``                    ``list(range(N))``; the first ``int(R N)`` are selected; walking them in
                                    ascending index order, ``randint(0, C - 1)`` each (symmetric) or the map (asym).
``asym-cifar10-bidirectional``      the same shuffle (``random.Random(seed)``; the official one is unseeded).
``asym-cifar100-block5``            UNICON / Co-teaching: multinomial per sample from ``RandomState(seed)``;
                                    ``randompair`` picks the pairs with ``default_rng(seed)`` first (SOP: unseeded).
``asym-cifar100-superclass``        lnlkit: ``np.random.default_rng(seed).random(N) < R``.
``instance``                        Me-Momentum (Xia et al. 2020): ``RandomState(seed)``: truncnorm q (N draws), then
                                    W ~ N(0, 1) of shape (C, D, C), then one categorical draw per sample.
``openset``                         Co-mining ``cifar80no``: one ``RandomState(seed)`` multinomial per sample over
                                    the full C x C matrix (closed kinds none/symmetric/pairflip/block5); other closed
                                    kinds run on the known-class samples, open-set samples use
                                    ``default_rng([seed, 1])``.
``cifar10n``, ``cifar100n``         none (files of Wei et al., ICLR 2022, https://github.com/UCSC-REAL/cifar-10-100n).
==================================  ==================================================================================

Reproducing official labels: ``symmetric-inclusive`` and ``asym-cifar10`` with ``seed=123`` and the
CIFAR pickle order regenerate the DivideMix / ProMix / SMR noisy labels bit for bit.  ``symmetric``
and ``pairflip`` with ``seed=0`` regenerate Co-mining's, with ``seed=1`` Me-Momentum's (same sample
order required; Me-Momentum applies noise to the full training set before its 90/10 split).
``asym-cifar100-block5`` uses the same per-sample sampler (SOP passes ``random_state=0``).

To compare several specs on the same labels, :func:`noise_summary` tabulates the nominal and
realised rate, the diagonal of the realised transition matrix and the open-set fraction of each.
"""

from __future__ import annotations

import difflib
import math
import operator
import random
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

if TYPE_CHECKING:  # pandas is imported lazily, by noise_summary only
    import pandas as pd

__all__ = [
    "NOISE_KINDS",
    "NoiseSpec",
    "NoisyLabels",
    "inject_noise",
    "load_cifarn_labels",
    "noise_summary",
    "parse_noise_spec",
    "transition_from_labels",
]

# --------------------------------------------------------------------------------------------
# Names and constants
# --------------------------------------------------------------------------------------------

NOISE_KINDS: tuple[str, ...] = (
    "none",
    "clean",
    "symmetric",
    "symmetric-inclusive",
    "pairflip",
    "asym-cifar10",
    "asym-cifar10-bidirectional",
    "asym-cifar100-block5",
    "asym-cifar100-superclass",
    "instance",
    "openset",
    "cifar10n",
    "cifar100n",
)
"""Every accepted kind name (the part of a spec before the first ``:``)."""

_NO_ARG_KINDS = ("none", "clean")
_CIFARN_KINDS = ("cifar10n", "cifar100n")
# Closed-set kinds whose sampler is "one multinomial draw per sample from a C x C matrix"; inside
# ``openset`` these follow Co-mining's single-RandomState recipe over the full matrix.
_MATRIX_KINDS = ("none", "clean", "symmetric", "pairflip", "asym-cifar100-block5")

# Options each kind accepts, with their defaults.
_KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "symmetric": {"recipe": "multinomial"},
    "asym-cifar100-block5": {"block5_rule": "nextclass"},
    "instance": {"normalize_inputs": False, "instance_std": 0.1},
}

# DivideMix / ProMix / SMR CIFAR-10 map: bird->airplane, cat->dog, dog->cat, deer->horse,
# truck->automobile; airplane, automobile, frog, horse and ship never change.
CIFAR10_ASYM_MAP = np.array([0, 1, 0, 5, 7, 3, 6, 7, 8, 1], dtype=np.int64)
# Prune4ReL's bidirectional map: airplane<->bird, automobile<->truck, cat<->dog, deer<->horse,
# frog<->ship.  Every class is a source class.
CIFAR10_BIDIRECTIONAL_MAP = np.array([2, 9, 0, 5, 7, 3, 8, 4, 6, 1], dtype=np.int64)

CIFARN_URL = "https://github.com/UCSC-REAL/cifar-10-100n"
# Spec name -> key in the CIFAR-N file (note the file's spelling "worse_label").
CIFAR10N_KEYS = {
    "aggre": "aggre_label",
    "worst": "worse_label",
    "rand1": "random_label1",
    "rand2": "random_label2",
    "rand3": "random_label3",
    "clean": "clean_label",
}
CIFAR100N_KEYS = {"noisy": "noisy_label", "clean": "clean_label"}
_CIFARN = {
    "cifar10n": {"file": "CIFAR-10_human.pt", "keys": CIFAR10N_KEYS, "num_classes": 10, "title": "CIFAR-10N"},
    "cifar100n": {"file": "CIFAR-100_human.pt", "keys": CIFAR100N_KEYS, "num_classes": 100, "title": "CIFAR-100N"},
}

# Tolerance for floor(O * C) so that e.g. 0.29 * 100 = 28.999999999999996 counts as 29 classes.
_FLOOR_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise spec (see :func:`parse_noise_spec`).

    Attributes
    ----------
    kind : str
        One of :data:`NOISE_KINDS`.
    rate : float or None
        Nominal rate ``R`` of the rate kinds; ``0.0`` for ``none``/``clean``; ``None`` for CIFAR-N
        and ``openset`` (whose rate lives in ``open_ratio`` and ``closed``).
    key : str or None
        CIFAR-N label set (``aggre``, ``worst``, ..., ``noisy``, ``clean``).
    open_ratio : float or None
        ``O`` of ``openset:O+...``: the fraction of classes held out.
    closed : NoiseSpec or None
        The closed-set spec applied to the known classes of ``openset``.

    Iterating yields ``(kind, arg)`` pairs, outer spec first: ``("symmetric", 0.4)``;
    ``("openset", 0.2), ("pairflip", 0.45)``; ``("cifar10n", "worst")``; ``("none", None)``.
    """

    kind: str
    rate: float | None = None
    key: str | None = None
    open_ratio: float | None = None
    closed: NoiseSpec | None = None

    def __iter__(self) -> Iterator[tuple[str, float | str | None]]:
        if self.kind in _NO_ARG_KINDS:
            yield (self.kind, None)
        elif self.kind in _CIFARN_KINDS:
            yield (self.kind, self.key)
        elif self.kind == "openset":
            yield (self.kind, self.open_ratio)
            yield from self.closed
        else:
            yield (self.kind, self.rate)

    def __str__(self) -> str:
        """Canonical spec string, e.g. ``symmetric:0.4`` or ``openset:0.2+pairflip:0.45``."""
        if self.kind in _NO_ARG_KINDS:
            return self.kind
        if self.kind in _CIFARN_KINDS:
            return f"{self.kind}:{self.key}"
        if self.kind == "openset":
            return f"openset:{_fmt_rate(self.open_ratio)}+{self.closed}"
        return f"{self.kind}:{_fmt_rate(self.rate)}"


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """The result of :func:`inject_noise`.

    Attributes
    ----------
    labels : ndarray of int64, shape (N,)
        The given (noisy) labels, all in ``[0, num_classes)``.
    is_noisy : ndarray of bool, shape (N,), or None
        ``labels != true class``.  Open-set samples are always noisy (their true class is not in
        the label space).  ``None`` when the clean labels are unknown.
    transition : ndarray of float64, shape (C, C), or None
        Realised transition matrix over the ORIGINAL ``C`` classes: rows = true class, columns =
        given label, row-normalised confusion counts.  Rows of classes with no samples are all
        zero (so those rows sum to 0, not 1).  For open set, columns ``>= C_k`` are zero.
    realized_rate : float or None
        Fraction of labels that differ from the truth.
    spec : str
        Canonical spec string.
    num_classes : int
        Size of the label space the labels live in (``C_k`` for open set, else ``C``).
    nominal_rate : float or None
        The spec's nominal rate (see the module table for what it means per kind); for open set
        ``o + (1 - o) * rho`` with ``o = floor(O*C)/C`` and ``rho`` the closed spec's nominal rate
        (Co-mining's forget-rate formula); ``None`` for real (CIFAR-N) noise.
    ood_mask : ndarray of bool, shape (N,), or None
        True for open-set samples (true class held out); ``None`` when not open set.
    info : dict
        JSON-serialisable details: kind, seed, RNG recipe, options, counts, known classes, ...
    """

    labels: np.ndarray
    is_noisy: np.ndarray | None
    transition: np.ndarray | None
    realized_rate: float | None
    spec: str
    num_classes: int
    nominal_rate: float | None
    ood_mask: np.ndarray | None
    info: dict

    def __repr__(self) -> str:
        rate = "unknown" if self.realized_rate is None else f"{self.realized_rate:.4f}"
        return (
            f"NoisyLabels(spec={self.spec!r}, N={len(self.labels)}, num_classes={self.num_classes}, "
            f"nominal_rate={self.nominal_rate}, realized_rate={rate})"
        )


# --------------------------------------------------------------------------------------------
# Spec parsing
# --------------------------------------------------------------------------------------------


def parse_noise_spec(spec: str | NoiseSpec) -> NoiseSpec:
    """Parse a noise spec string.

    Parameters
    ----------
    spec : str or NoiseSpec
        ``"none"``, ``"clean"``, ``"<kind>:<rate>"`` (e.g. ``"symmetric:0.4"``),
        ``"openset:<O>+<closed spec>"`` (e.g. ``"openset:0.2+pairflip:0.4"``) or
        ``"cifar10n:<key>"`` / ``"cifar100n:<key>"``.  Case and surrounding spaces are ignored.
        A :class:`NoiseSpec` is returned unchanged.

    Returns
    -------
    NoiseSpec
        ``str(result)`` is the canonical spec string; iterating it yields the ``(kind, arg)`` pairs,
        e.g. ``list(parse_noise_spec("openset:0.2+pairflip:0.4"))`` is
        ``[("openset", 0.2), ("pairflip", 0.4)]``.

    Raises
    ------
    ValueError
        Unknown kind (the message lists :data:`NOISE_KINDS`), malformed string, missing or
        non-numeric rate, rate outside ``[0, 1]``, unknown CIFAR-N key, or an open-set spec whose
        closed part is not a closed-set kind.
    TypeError
        ``spec`` is not a string.
    """
    if isinstance(spec, NoiseSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"noise spec must be a string such as 'symmetric:0.4', got {type(spec).__name__}")
    text = spec.strip().lower()
    if not text:
        raise ValueError("empty noise spec; use e.g. 'symmetric:0.4', or 'none' for clean labels")
    kind, sep, arg = text.partition(":")
    kind, arg = kind.strip(), arg.strip()
    if "+" in kind:
        raise ValueError(f"malformed noise spec {spec!r}: '+' is only allowed in 'openset:<O>+<closed spec>'")
    _check_kind_name(kind, spec)

    if kind in _NO_ARG_KINDS:
        if sep:
            raise ValueError(f"malformed noise spec {spec!r}: {kind!r} takes no argument; write just {kind!r}")
        return NoiseSpec(kind=kind, rate=0.0)

    if not sep or not arg:
        raise ValueError(f"malformed noise spec {spec!r}: {kind!r} needs an argument, e.g. {_EXAMPLES[kind]!r}")

    if kind in _CIFARN_KINDS:
        keys = _CIFARN[kind]["keys"]
        if arg not in keys:
            raise ValueError(
                f"unknown {_CIFARN[kind]['title']} label set {arg!r} in {spec!r}; valid: {', '.join(keys)}"
            )
        return NoiseSpec(kind=kind, key=arg)

    if kind == "openset":
        ratio_text, plus, closed_text = arg.partition("+")
        if not plus or not closed_text.strip():
            raise ValueError(
                f"malformed noise spec {spec!r}: open set needs 'openset:<O>+<closed spec>', "
                "e.g. 'openset:0.2+symmetric:0.4' (use 'openset:0.2+none' for no closed-set noise)"
            )
        ratio = _parse_rate(ratio_text, spec, what="open-set ratio")
        if ratio >= 1.0:
            raise ValueError(f"open-set ratio must be < 1 in {spec!r} (it is the fraction of classes held out)")
        closed = parse_noise_spec(closed_text)
        if closed.kind in _CIFARN_KINDS or closed.kind == "openset":
            allowed = [k for k in NOISE_KINDS if k not in _CIFARN_KINDS and k != "openset"]
            raise ValueError(
                f"the closed-set part of {spec!r} must be a synthetic closed-set kind "
                f"({', '.join(allowed)}), not {closed.kind!r}"
            )
        return NoiseSpec(kind="openset", open_ratio=ratio, closed=closed)

    if ":" in arg or "+" in arg:
        raise ValueError(f"malformed noise spec {spec!r}: expected '{kind}:<rate>', e.g. {_EXAMPLES[kind]!r}")
    return NoiseSpec(kind=kind, rate=_parse_rate(arg, spec))


_EXAMPLES = {
    "symmetric": "symmetric:0.4",
    "symmetric-inclusive": "symmetric-inclusive:0.5",
    "pairflip": "pairflip:0.45",
    "asym-cifar10": "asym-cifar10:0.4",
    "asym-cifar10-bidirectional": "asym-cifar10-bidirectional:0.4",
    "asym-cifar100-block5": "asym-cifar100-block5:0.4",
    "asym-cifar100-superclass": "asym-cifar100-superclass:0.4",
    "instance": "instance:0.4",
    "openset": "openset:0.2+symmetric:0.4",
    "cifar10n": "cifar10n:worst",
    "cifar100n": "cifar100n:noisy",
}


def _check_kind_name(kind: str, spec: str) -> None:
    if kind in NOISE_KINDS:
        return
    close = difflib.get_close_matches(kind, NOISE_KINDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown noise kind {kind!r} in {spec!r}; valid kinds: {', '.join(NOISE_KINDS)}.{hint}")


def _parse_rate(text: str, spec: str, what: str = "noise rate") -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} in {spec!r} is not a number; write e.g. 0.4 for 40%") from None
    if not math.isfinite(rate):
        raise ValueError(f"{what} in {spec!r} must be a finite number in [0, 1], got {text!r}")
    if not 0.0 <= rate <= 1.0:
        hint = f"; write {rate / 100:g} for {rate:g}%" if 1.0 < rate <= 100.0 else ""
        raise ValueError(f"{what} must be in [0, 1], got {rate:g} in {spec!r}{hint}")
    return rate


def _fmt_rate(x: float | None) -> str:
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


# --------------------------------------------------------------------------------------------
# Transition matrices
# --------------------------------------------------------------------------------------------


def transition_from_labels(true_labels: Any, noisy_labels: Any, num_classes: int) -> np.ndarray:
    """Realised transition matrix: row-normalised confusion counts.

    Parameters
    ----------
    true_labels : array-like of int, shape (N,)
        True classes, in ``[0, num_classes)``.
    noisy_labels : array-like of int, shape (N,)
        Given labels, in ``[0, num_classes)``.
    num_classes : int
        ``C``.

    Returns
    -------
    ndarray of float64, shape (C, C)
        ``T[i, j]`` = fraction of samples of true class ``i`` labelled ``j``.  Rows of classes with
        no samples are all zero (they sum to 0, not 1).
    """
    C = _check_num_classes(num_classes)
    t = _check_labels(true_labels, C, name="true_labels")
    n = _check_labels(noisy_labels, C, name="noisy_labels")
    if len(t) != len(n):
        raise ValueError(f"true_labels and noisy_labels differ in length ({len(t)} vs {len(n)})")
    counts = np.bincount(t * C + n, minlength=C * C).reshape(C, C).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _symmetric_matrix(C: int, rate: float) -> np.ndarray:
    """P[i, i] = 1 - R, P[i, j] = R / (C - 1) for j != i (Co-mining / Me-Momentum)."""
    P = np.full((C, C), rate / (C - 1))
    np.fill_diagonal(P, 1.0 - rate)
    return P


def _pairflip_matrix(C: int, rate: float) -> np.ndarray:
    """P[i, i] = 1 - R, P[i, (i + 1) mod C] = R (Co-mining 'asymmetric', Me-Momentum 'pairflip')."""
    P = (1.0 - rate) * np.eye(C)
    P[np.arange(C), (np.arange(C) + 1) % C] += rate
    return P


def _map_matrix(C: int, rate: float, target: np.ndarray) -> np.ndarray:
    """Class i keeps its label with prob. 1 - R and goes to target[i] with prob. R (target[i] == i: no flip)."""
    P = np.zeros((C, C))
    P[np.arange(C), np.arange(C)] += 1.0 - rate
    P[np.arange(C), target] += rate
    return P


def _block5_nextclass_matrix(C: int, rate: float) -> np.ndarray:
    """UNICON / Co-teaching: next class cyclically inside blocks of 5 consecutive indices."""
    i = np.arange(C)
    return _map_matrix(C, rate, (i // 5) * 5 + (i % 5 + 1) % 5)


def _block5_randompair_matrix(C: int, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """SOP: in each block of 5, one random pair (a, b) swaps with probability R; other classes keep."""
    target = np.arange(C)
    pairs = []
    for start in range(0, C, 5):
        a, b = (int(v) + start for v in rng.choice(5, size=2, replace=False))
        target[a], target[b] = b, a
        pairs.append([a, b])
    return _map_matrix(C, rate, target), pairs


# --------------------------------------------------------------------------------------------
# Recipes (one per paper).  Each takes the clean labels y (int64, shape (N,)) and returns the
# noisy labels plus a dict of JSON-serialisable details.
# --------------------------------------------------------------------------------------------


def _sample_from_rows(y: np.ndarray, P: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
    """Co-teaching / Co-mining / Me-Momentum sampler: for each sample, in dataset order, draw
    ``rs.multinomial(1, P[y_i])`` and take the position of the 1.

    The per-sample loop is kept on purpose: how many uniforms one multinomial call consumes
    depends on the row, so a vectorised draw would not reproduce the official stream.
    (``multinomial(1, p)`` and the official ``multinomial(1, p, 1)[0]`` consume the same draws.)
    """
    rows = [np.ascontiguousarray(P[c]) for c in range(P.shape[0])]
    draw = rs.multinomial
    return np.fromiter((draw(1, rows[c]).argmax() for c in y.tolist()), dtype=np.int64, count=len(y))


def _official_noisy_subset(n: int, rate: float, rng: random.Random) -> np.ndarray:
    """DivideMix recipe, steps 1-2: shuffle ``range(n)`` with Python's ``random`` and keep the first ``int(rate * n)``
    (float product truncated).  Returned ascending, the order in which the official loop visits them."""
    idx = list(range(n))
    rng.shuffle(idx)
    return np.sort(np.asarray(idx[: int(rate * n)], dtype=np.int64))


def _recipe_symmetric_inclusive(y: np.ndarray, C: int, rate: float, seed: int) -> tuple[np.ndarray, dict]:
    """DivideMix / ProMix / SMR symmetric noise (bit-exact, ``dataloader_cifar.py``): ``random.Random(seed)`` (the
    official scripts seed the global ``random`` with 123, the same stream), shuffle the indices,
    the first ``int(R*N)`` are noisy; walking the noisy samples in ascending index order, each
    gets ``randint(0, C - 1)``, which can be its true class."""
    rng = random.Random(seed)
    noisy_idx = _official_noisy_subset(len(y), rate, rng)
    out = y.copy()
    out[noisy_idx] = [rng.randint(0, C - 1) for _ in range(len(noisy_idx))]
    return out, {
        "rng": "random.Random(seed): shuffle(list(range(N))), first int(R*N) noisy, "
        "randint(0, C-1) per noisy sample in ascending index order (DivideMix/ProMix/SMR)",
        "num_selected": int(len(noisy_idx)),
        "_P": (1.0 - rate) * np.eye(C) + rate / C,
    }


def _recipe_asym_cifar10(y: np.ndarray, C: int, rate: float, seed: int) -> tuple[np.ndarray, dict]:
    """DivideMix / ProMix / SMR CIFAR-10 asymmetric noise (bit-exact, ``dataloader_cifar.py``): the same shuffle as
    the symmetric recipe, over the whole data set; each selected sample gets ``map[y_i]`` (no
    random call), so selected samples of airplane, automobile, frog, horse and ship keep their label."""
    rng = random.Random(seed)
    noisy_idx = _official_noisy_subset(len(y), rate, rng)
    out = y.copy()
    out[noisy_idx] = CIFAR10_ASYM_MAP[y[noisy_idx]]
    return out, {
        "rng": "random.Random(seed): shuffle(list(range(N))), first int(R*N) selected, "
        "selected samples mapped (DivideMix/ProMix/SMR)",
        "map": CIFAR10_ASYM_MAP.tolist(),
        "num_selected": int(len(noisy_idx)),
        "_P": _map_matrix(C, rate, CIFAR10_ASYM_MAP),
    }


def _recipe_asym_cifar10_bidirectional(y: np.ndarray, C: int, rate: float, seed: int) -> tuple[np.ndarray, dict]:
    """Prune4ReL's bidirectional CIFAR-10 map (``cifar10.py``): shuffle, the first ``int(R*N)`` samples flip
    through {0<->2, 1<->9, 3<->5, 4<->7, 6<->8}.  The official shuffle is unseeded; lnlkit seeds a
    private ``random.Random(seed)`` so that runs are reproducible."""
    noisy_idx = _official_noisy_subset(len(y), rate, random.Random(seed))
    out = y.copy()
    out[noisy_idx] = CIFAR10_BIDIRECTIONAL_MAP[y[noisy_idx]]
    return out, {
        "rng": "random.Random(seed): shuffle(list(range(N))), first int(R*N) flipped "
        "(Prune4ReL map; the official shuffle is unseeded)",
        "map": CIFAR10_BIDIRECTIONAL_MAP.tolist(),
        "num_selected": int(len(noisy_idx)),
        "_P": _map_matrix(C, rate, CIFAR10_BIDIRECTIONAL_MAP),
    }


def _recipe_symmetric(y: np.ndarray, C: int, rate: float, seed: int, recipe: str) -> tuple[np.ndarray, dict]:
    """Symmetric noise that never draws the true class.

    ``recipe="multinomial"`` (Co-mining with seed 0, Me-Momentum with seed 1): one
    ``RandomState(seed).multinomial`` per sample from ``P = (1-R) I + R/(C-1) (11^T - I)``.
    ``recipe="exact"`` (Prune4ReL's rule, seeded): exactly ``int(R*N)`` samples, picked by
    ``default_rng(seed).permutation``, each moved to a uniformly random other class
    (draw in ``0..C-2``, add 1 when the draw is >= the true class).
    """
    if recipe == "exact":
        rng = np.random.default_rng(seed)
        chosen = rng.permutation(len(y))[: int(rate * len(y))]
        draw = rng.integers(0, C - 1, size=len(chosen))
        out = y.copy()
        out[chosen] = draw + (draw >= y[chosen])
        return out, {
            "rng": "numpy default_rng(seed): permutation, first int(R*N) flipped to "
            "integers(0, C-1) (+1 if >= true class) (Prune4ReL rule)",
            "num_selected": int(len(chosen)),
            "_P": _symmetric_matrix(C, rate),
        }
    P = _symmetric_matrix(C, rate)
    return _sample_from_rows(y, P, np.random.RandomState(seed)), {"rng": _MULTINOMIAL_RNG, "_P": P}


_MULTINOMIAL_RNG = (
    "numpy RandomState(seed): one multinomial(1, P[y_i]) per sample in dataset order (Co-mining/Me-Momentum)"
)


def _recipe_pairflip(y: np.ndarray, C: int, rate: float, seed: int) -> tuple[np.ndarray, dict]:
    """Pair flip i -> (i + 1) mod C with probability R, sampled like ``symmetric`` (multinomial)."""
    P = _pairflip_matrix(C, rate)
    return _sample_from_rows(y, P, np.random.RandomState(seed)), {"rng": _MULTINOMIAL_RNG, "_P": P}


def _block5_matrix(C: int, rate: float, seed: int, rule: str) -> tuple[np.ndarray, dict]:
    if C % 5:
        raise ValueError(
            f"asym-cifar100-block5 needs the number of classes to be a multiple of 5 (blocks of 5 "
            f"consecutive indices), got {C}; use pairflip or asym-cifar100-superclass instead"
        )
    if rule == "nextclass":
        return _block5_nextclass_matrix(C, rate), {"block5_rule": "nextclass"}
    P, pairs = _block5_randompair_matrix(C, rate, np.random.default_rng(seed))
    return P, {
        "block5_rule": "randompair",
        "pairs": pairs,
        "pair_rng": "numpy default_rng(seed).choice(5, 2, replace=False) per block "
        "(SOP draws the pairs from the unseeded global RNG)",
    }


def _recipe_block5(y: np.ndarray, C: int, rate: float, seed: int, rule: str) -> tuple[np.ndarray, dict]:
    """CIFAR-100 asymmetric noise in blocks of 5 consecutive fine-label indices.

    ``nextclass`` (UNICON / Co-teaching): i -> next class of its block, cyclically (4 -> 0, 9 -> 5).
    ``randompair`` (SOP-like; an approximation of SOP's rule): in each block one random pair of
    classes swaps with probability R, the other three classes never change, so the realised rate
    is ~2R/5 on balanced data.  Both sample one multinomial per sample from ``RandomState(seed)``.
    Note: the blocks are not the real CIFAR-100 superclasses (fine labels are alphabetical).
    """
    P, details = _block5_matrix(C, rate, seed, rule)
    out = _sample_from_rows(y, P, np.random.RandomState(seed))
    return out, {"rng": _MULTINOMIAL_RNG, **details, "_P": P}


def _recipe_superclass(y: np.ndarray, C: int, rate: float, seed: int, coarse_labels: Any) -> tuple[np.ndarray, dict]:
    """lnlkit's CIFAR-100 convention with the true superclasses: each sample flips with probability
    R (one ``default_rng(seed).random(N) < R`` draw) to the next fine class of its superclass,
    cyclically in ascending fine-index order.  Superclass membership is read off the
    (fine, coarse) pairs present in the data; a class alone in its superclass cannot flip."""
    coarse = _check_side_array(coarse_labels, len(y), "coarse_labels")
    if coarse.ndim != 1:
        raise ValueError(f"coarse_labels must be 1-D (one coarse label per sample), got shape {coarse.shape}")
    _, coarse_idx = np.unique(coarse, return_inverse=True)
    pairs = np.unique(np.stack([y, coarse_idx.reshape(-1)], axis=1), axis=0)  # sorted by fine class
    fine, counts = np.unique(pairs[:, 0], return_counts=True)
    if (counts > 1).any():
        bad = int(fine[counts > 1][0])
        raise ValueError(
            f"coarse_labels are inconsistent: fine class {bad} occurs with {int(counts[fine == bad][0])} "
            "different coarse labels; pass the TRUE coarse label of every sample, in the same order as labels"
        )
    target = np.arange(C)
    for g in np.unique(pairs[:, 1]):
        members = pairs[pairs[:, 1] == g, 0]
        target[members] = np.roll(members, -1)
    alone = [int(c) for c in fine if target[c] == c]
    if alone:
        warnings.warn(
            f"asym-cifar100-superclass: classes {alone[:10]} are the only fine class of their superclass "
            "in the data and never flip; check coarse_labels",
            UserWarning,
            stacklevel=4,
        )
    flip = np.random.default_rng(seed).random(len(y)) < rate
    out = np.where(flip, target[y], y)
    return out, {
        "rng": "numpy default_rng(seed).random(N) < R; flipped samples go to the next fine class "
        "of their true superclass (lnlkit)",
        "target": target.tolist(),
        "classes_without_partner": alone,
        "_P": _map_matrix(C, rate, target),
    }


def _recipe_instance(
    y: np.ndarray, C: int, rate: float, seed: int, features: Any, normalize_inputs: bool, instance_std: float
) -> tuple[np.ndarray, dict]:
    """Instance-dependent noise of Xia et al. (NeurIPS 2020) as Me-Momentum generates it (``noisy_util.py``).

    With ``rs = RandomState(seed)``: (1) q_i ~ TruncNorm(R, std) on [0, 1], N draws from SciPy's
    ``truncnorm``; (2) W ~ N(0, 1) of shape (C, D, C), drawn class by class (the same numbers as
    one ``randn(C, D, C)``); (3) a_i = x_i W[y_i], a_i[y_i] = -inf, p_i = q_i softmax(a_i),
    p_i[y_i] += 1 - q_i, in float32; (4) one ``choice(C, p=p_i)`` per sample in dataset order,
    vectorised here with the same uniforms and the same cdf/searchsorted rule as ``choice``.
    """
    from scipy.stats import truncnorm

    X = _check_side_array(features, len(y), "features")
    X = X.reshape(len(y), -1)
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"features must be numeric, got dtype {X.dtype}")
    N, D = X.shape
    rs = np.random.RandomState(seed)
    std = instance_std
    q = truncnorm.rvs((0.0 - rate) / std, (1.0 - rate) / std, loc=rate, scale=std, size=N, random_state=rs)

    logits = np.empty((N, C), dtype=np.float32)
    chunk = 8192
    for c in range(C):
        Wc = rs.standard_normal((D, C)).astype(np.float32)  # W[c], same stream as randn(C, D, C)
        members = np.flatnonzero(y == c)
        for s in range(0, len(members), chunk):
            rows = members[s : s + chunk]
            x = X[rows].astype(np.float32)
            if normalize_inputs:
                norms = np.linalg.norm(x, axis=1, keepdims=True)
                x /= np.where(norms > 0, norms, 1.0)
            logits[rows] = x @ Wc
    if not np.isfinite(logits).all():
        raise ValueError("features contain NaN or infinite values (or overflow float32); clean them first")

    rows = np.arange(N)
    logits[rows, y] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    probs *= q.astype(np.float32)[:, None]
    probs[rows, y] += (1.0 - q).astype(np.float32)

    u = rs.random_sample(N)  # one uniform per np.random.choice call
    cdf = np.cumsum(probs.astype(np.float64), axis=1)
    cdf /= cdf[:, -1:]
    out = np.minimum((cdf <= u[:, None]).sum(axis=1), C - 1).astype(np.int64)
    return out, {
        "rng": "numpy RandomState(seed): truncnorm q (N), then W ~ N(0,1) (C, D, C), then one "
        "choice per sample in dataset order (Me-Momentum; the official code also seeds torch)",
        "feature_dim": int(D),
        "normalize_inputs": bool(normalize_inputs),
        "instance_std": float(std),
        "mean_flip_probability": float(q.mean()),
    }


def _inject_closed(
    y: np.ndarray, C: int, parsed: NoiseSpec, seed: int, opts: dict, features: Any, coarse_labels: Any
) -> tuple[np.ndarray, dict]:
    """Dispatch a closed-set kind to its recipe."""
    kind, rate = parsed.kind, parsed.rate
    if kind in _NO_ARG_KINDS:
        return y.copy(), {"rng": "none"}
    if kind == "symmetric":
        return _recipe_symmetric(y, C, rate, seed, opts["recipe"])
    if kind == "symmetric-inclusive":
        return _recipe_symmetric_inclusive(y, C, rate, seed)
    if kind == "pairflip":
        return _recipe_pairflip(y, C, rate, seed)
    if kind in ("asym-cifar10", "asym-cifar10-bidirectional"):
        if C != 10:
            raise ValueError(
                f"{kind} is defined for the 10 CIFAR-10 classes, got num_classes={C}; use pairflip, "
                "asym-cifar100-block5 or asym-cifar100-superclass for other label spaces"
            )
        if kind == "asym-cifar10":
            return _recipe_asym_cifar10(y, C, rate, seed)
        return _recipe_asym_cifar10_bidirectional(y, C, rate, seed)
    if kind == "asym-cifar100-block5":
        return _recipe_block5(y, C, rate, seed, opts["block5_rule"])
    if kind == "asym-cifar100-superclass":
        if coarse_labels is None:
            raise ValueError(
                "asym-cifar100-superclass needs coarse_labels=<true coarse (superclass) label of every "
                "sample, shape (N,)>, e.g. the 'coarse_labels' of the CIFAR-100 training pickle"
            )
        return _recipe_superclass(y, C, rate, seed, coarse_labels)
    if kind == "instance":
        if features is None:
            raise ValueError(
                "instance noise needs features=<raw inputs, shape (N, ...)>, e.g. the uint8 CIFAR "
                "training images as (N, 32, 32, 3) (flattened in HWC order, as Me-Momentum does)"
            )
        return _recipe_instance(y, C, rate, seed, features, opts["normalize_inputs"], opts["instance_std"])
    raise AssertionError(f"unhandled closed kind {kind!r}")  # pragma: no cover


def _closed_matrix(C: int, parsed: NoiseSpec, seed: int, opts: dict) -> tuple[np.ndarray, dict]:
    """Nominal matrix of a _MATRIX_KINDS spec over C classes."""
    if parsed.kind in _NO_ARG_KINDS:
        return np.eye(C), {}
    if parsed.kind == "symmetric":
        return _symmetric_matrix(C, parsed.rate), {}
    if parsed.kind == "pairflip":
        return _pairflip_matrix(C, parsed.rate), {}
    return _block5_matrix(C, parsed.rate, seed, opts["block5_rule"])


def _recipe_openset(
    y: np.ndarray, C: int, parsed: NoiseSpec, seed: int, opts: dict, features: Any, coarse_labels: Any
) -> tuple[np.ndarray, dict, int, np.ndarray, float]:
    """Open-set noise by held-out classes (Co-mining ``cifar80no``, generalised).

    The last ``floor(O*C)`` classes are out of distribution; the ``C_k`` known classes keep indices
    ``0..C_k-1``.  For closed kinds sampled from a matrix (none, symmetric with the multinomial
    recipe, pairflip, asym-cifar100-block5) this follows Co-mining exactly: a C x C matrix whose
    known rows hold the closed matrix over C_k classes and whose open rows are uniform 1/C_k over
    the known columns, then one ``RandomState(seed)`` multinomial per sample in dataset order.
    For the other closed kinds the closed recipe runs on the known-class samples alone (in
    dataset order, with ``seed``) and the open-set samples get ``default_rng([seed, 1]).integers(0, C_k)``.
    """
    closed = parsed.closed
    n_open = math.floor(parsed.open_ratio * C + _FLOOR_EPS)
    Ck = C - n_open
    if Ck < 2:
        raise ValueError(
            f"open-set ratio {parsed.open_ratio:g} holds out {n_open} of {C} classes and leaves {Ck} known "
            "class(es); at least 2 known classes are needed, lower the ratio"
        )
    ood = y >= Ck
    if closed.kind in _MATRIX_KINDS and not (closed.kind == "symmetric" and opts["recipe"] == "exact"):
        Pk, details = _closed_matrix(Ck, closed, seed, opts)
        P = np.zeros((C, C))
        P[:Ck, :Ck] = Pk
        P[Ck:, :Ck] = 1.0 / Ck
        out = _sample_from_rows(y, P, np.random.RandomState(seed))
        details = {"rng": _MULTINOMIAL_RNG + " over the full C x C matrix, open columns zeroed", **details}
        details["_P"] = Pk
    else:
        known = ~ood
        feats = None if features is None else _check_side_array(features, len(y), "features")[known]
        coarse = None if coarse_labels is None else _check_side_array(coarse_labels, len(y), "coarse_labels")[known]
        out = np.empty_like(y)
        out[known], details = _inject_closed(y[known], Ck, closed, seed, opts, feats, coarse)
        out[ood] = np.random.default_rng([seed, 1]).integers(0, Ck, size=int(ood.sum()))
        details = {
            **details,
            "open_rng": "numpy default_rng([seed, 1]).integers(0, C_k) per open-set sample in dataset order",
        }
    nominal_matrix = details.pop("_P", None)
    known_rate = float((out[~ood] != y[~ood]).mean()) if (~ood).any() else 0.0
    o = n_open / C
    closed_rate = closed.rate if closed.rate is not None else 0.0
    info = {
        "open_ratio": float(parsed.open_ratio),
        "known_classes": int(Ck),
        "open_classes": list(range(Ck, C)),
        "num_open_samples": int(ood.sum()),
        "closed_spec": str(closed),
        "closed_nominal_rate": float(closed_rate),
        "closed_realized_rate": known_rate,
        "closed": details,
        "_P": nominal_matrix,
    }
    return out, info, Ck, ood, o + (1.0 - o) * closed_rate


# --------------------------------------------------------------------------------------------
# CIFAR-N
# --------------------------------------------------------------------------------------------


def _torch_load_pickle(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError as exc:  # torch < 1.13 has no weights_only (and loads pickles by default)
        if "weights_only" not in str(exc):
            raise
        return torch.load(path, map_location="cpu")


def _cifarn_file_kind(obj: Any, path: Path) -> str:
    if not isinstance(obj, dict) or "clean_label" not in obj:
        raise ValueError(
            f"{path} is not a CIFAR-N label file (expected a dict with 'clean_label'); get "
            f"CIFAR-10_human.pt / CIFAR-100_human.pt from {CIFARN_URL} (folder data/)"
        )
    if "aggre_label" in obj or "worse_label" in obj:
        return "cifar10n"
    if "noisy_label" in obj:
        return "cifar100n"
    raise ValueError(f"{path} has 'clean_label' but neither CIFAR-10N nor CIFAR-100N label keys: {sorted(obj)}")


def load_cifarn_labels(
    path: str | PathLike,
    key_or_name: str,
    expected_clean: Any = None,
    *,
    dataset: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one label set of the CIFAR-N human annotations (Wei et al., ICLR 2022).

    Parameters
    ----------
    path : str or PathLike
        ``CIFAR-10_human.pt`` or ``CIFAR-100_human.pt`` (from https://github.com/UCSC-REAL/cifar-10-100n,
        folder ``data/``), or a folder that holds it (then ``dataset`` picks the file).
    key_or_name : str
        A spec name (CIFAR-10N: ``aggre``, ``worst``, ``rand1``, ``rand2``, ``rand3``, ``clean``;
        CIFAR-100N: ``noisy``, ``clean``) or a file key (``aggre_label``, ``worse_label``,
        ``random_label1``, ..., ``noisy_label``, ``clean_label``).
    expected_clean : array-like of int, shape (N,), optional
        The training labels of the images the noisy labels will be attached to.  When given, the
        file's ``clean_label`` must equal it, otherwise the file does not belong to these images.
    dataset : {"cifar10n", "cifar100n"}, optional
        Require this file type (a CIFAR-100N file is refused for CIFAR-10N and vice versa).

    Returns
    -------
    noisy : ndarray of int64, shape (50000,)
    clean : ndarray of int64, shape (50000,)
        Both in the order of the python-pickle CIFAR training set.

    Raises
    ------
    FileNotFoundError
        The file is missing (the message names the expected file and where to download it).
    ValueError
        Not a CIFAR-N file, wrong file type, unknown key, or ``clean_label`` differs from
        ``expected_clean`` (wrong sample order or wrong data set).
    """
    if dataset is not None and dataset not in _CIFARN:
        raise ValueError(f"dataset must be 'cifar10n' or 'cifar100n', got {dataset!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        names = [_CIFARN[dataset]["file"]] if dataset else [v["file"] for v in _CIFARN.values()]
        found = [p / n for n in names if (p / n).is_file()]
        if len(found) != 1:
            raise FileNotFoundError(_cifarn_missing_message(dataset, p))
        p = found[0]
    if not p.is_file():
        raise FileNotFoundError(_cifarn_missing_message(dataset, p))

    obj = _torch_load_pickle(p)
    kind = _cifarn_file_kind(obj, p)
    info = _CIFARN[kind]
    if dataset is not None and kind != dataset:
        want = _CIFARN[dataset]
        raise ValueError(
            f"{p} is the {info['title']} label file ({info['file']}), but {dataset} needs "
            f"{want['file']} ({want['title']}, {want['num_classes']} classes)"
        )
    names = info["keys"]
    name = str(key_or_name).strip().lower()
    key = names.get(name, name)
    if key not in names.values():
        other = next(k for k in _CIFARN if k != kind)
        if name in _CIFARN[other]["keys"] or name in _CIFARN[other]["keys"].values():
            raise ValueError(
                f"{key_or_name!r} is a {_CIFARN[other]['title']} label set, but {p} is the {info['title']} file"
            )
        raise ValueError(
            f"unknown {info['title']} label set {key_or_name!r}; valid: "
            + ", ".join(f"{n} ({k})" for n, k in names.items())
        )
    noisy = np.asarray(obj[key]).astype(np.int64).reshape(-1)
    clean = np.asarray(obj["clean_label"]).astype(np.int64).reshape(-1)
    if expected_clean is not None:
        exp = np.asarray(expected_clean).reshape(-1)
        if exp.shape != clean.shape or not np.array_equal(exp, clean):
            if exp.shape != clean.shape:
                what = f"it has {len(clean)} labels, the images {len(exp)}"
            else:
                diff = np.flatnonzero(exp != clean)
                what = (
                    f"clean_label differs from the given labels at {len(diff)} of {len(clean)} positions "
                    f"(first at index {int(diff[0])})"
                )
            raise ValueError(
                f"CIFAR-N label mismatch: the label file {p} does not match the images: {what}. The "
                "labels must be the CIFAR training labels in the python-pickle (torchvision) order; a "
                "different sample order (e.g. TFDS) or the wrong data set (CIFAR-10 vs CIFAR-100, "
                "test instead of train) causes this"
            )
    return noisy, clean


def _cifarn_missing_message(dataset: str | None, where: Path | None) -> str:
    names = " or ".join(v["file"] for v in _CIFARN.values()) if dataset is None else _CIFARN[dataset]["file"]
    lead = f"{dataset} needs the CIFAR-N label file {names}" if dataset else f"CIFAR-N label file {names}"
    loc = "; pass cifarn_file=<path to the file or its folder>" if where is None else f"; not found at {where}"
    return f"{lead}{loc}. Download it from {CIFARN_URL} (folder data/); lnlkit does not download it for you."


def _recipe_cifarn(y: np.ndarray, C: int, parsed: NoiseSpec, cifarn_file: Any) -> tuple[np.ndarray, dict]:
    spec_info = _CIFARN[parsed.kind]
    if C != spec_info["num_classes"]:
        raise ValueError(f"{parsed.kind} labels have {spec_info['num_classes']} classes, but num_classes={C}")
    if cifarn_file is None:
        raise FileNotFoundError(_cifarn_missing_message(parsed.kind, None))
    noisy, _ = load_cifarn_labels(cifarn_file, parsed.key, expected_clean=y, dataset=parsed.kind)
    bad = (noisy < 0) | (noisy >= C)
    if bad.any():  # pragma: no cover - the official files are fine
        raise ValueError(f"{cifarn_file} holds labels outside [0, {C}): {np.unique(noisy[bad])[:10].tolist()}")
    return noisy, {
        "rng": "none (real human labels)",
        "file": str(cifarn_file),
        "key": spec_info["keys"][parsed.key],
    }


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, (bool, np.bool_)):
        raise TypeError("num_classes must be an integer, got a bool")
    try:
        C = operator.index(num_classes)
    except TypeError:
        raise TypeError(f"num_classes must be an integer, got {type(num_classes).__name__}") from None
    if C < 2:
        raise ValueError(f"num_classes must be at least 2, got {C}")
    return C


def _check_labels(labels: Any, C: int, name: str = "labels") -> np.ndarray:
    if labels is None:
        raise ValueError(f"{name} is None; pass the clean labels, an integer array of shape (N,)")
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, shape (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {arr.dtype}; "
            "convert with .astype(np.int64) if the values are whole numbers"
        )
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= C)
    if bad.any():
        values = np.unique(arr[bad])
        shown = ", ".join(str(v) for v in values[:10]) + (", ..." if len(values) > 10 else "")
        raise ValueError(
            f"{name} must lie in [0, num_classes) = [0, {C}); found values {shown} in {int(bad.sum())} "
            "sample(s). Check num_classes, or remap the labels to 0..C-1"
        )
    return arr


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed must be an integer, got a bool")
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}") from None
    if not 0 <= s < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {s}")
    return s


def _check_side_array(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0 or len(arr) != n:
        got = "a scalar" if arr.ndim == 0 else f"{len(arr)} rows"
        raise ValueError(f"{name} must have one row per label ({n}), got {got}")
    return arr


def _check_options(parsed: NoiseSpec, options: dict) -> dict:
    kind = parsed.closed.kind if parsed.kind == "openset" else parsed.kind
    accepted = _KIND_OPTIONS.get(kind, {})
    for name in options:
        if name not in accepted:
            listed = ", ".join(accepted) if accepted else "none"
            raise TypeError(
                f"inject_noise() got an unexpected keyword argument {name!r} for noise kind {kind!r} "
                f"(options of this kind: {listed})"
            )
    opts = {**accepted, **options}
    if "recipe" in opts and opts["recipe"] not in ("multinomial", "exact"):
        raise ValueError(f"recipe must be 'multinomial' or 'exact', got {opts['recipe']!r}")
    if "block5_rule" in opts and opts["block5_rule"] not in ("nextclass", "randompair"):
        raise ValueError(f"block5_rule must be 'nextclass' or 'randompair', got {opts['block5_rule']!r}")
    if "normalize_inputs" in opts and not isinstance(opts["normalize_inputs"], (bool, np.bool_)):
        raise ValueError(f"normalize_inputs must be True or False, got {opts['normalize_inputs']!r}")
    if "instance_std" in opts:
        std = opts["instance_std"]
        if isinstance(std, bool) or not isinstance(std, (int, float, np.number)) or not (0 < float(std) < math.inf):
            raise ValueError(f"instance_std must be a positive number, got {std!r}")
        opts["instance_std"] = float(std)
    return {k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in opts.items()}


def _warn_if_not_identifiable(spec: str, P: np.ndarray, classes: np.ndarray) -> None:
    """Warn when the NOMINAL matrix sends some class present in the data to one wrong label at
    least as often as it keeps the right one (e.g. pairflip >= 0.5, symmetric >= (C-1)/C)."""
    for i in classes.tolist():
        row = P[i].copy()
        keep = row[i]
        row[i] = -1.0
        j = int(row.argmax())
        if row[j] > 0 and row[j] >= keep:
            warnings.warn(
                f"{spec}: class {i} keeps its label with probability {keep:.3g} but becomes {j} with "
                f"probability {row[j]:.3g}; the true class is no longer the most likely label, which "
                "most LNL methods assume",
                UserWarning,
                stacklevel=3,
            )
            return


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def inject_noise(
    labels: Any,
    spec: str | NoiseSpec,
    num_classes: int,
    seed: int = 0,
    *,
    features: Any = None,
    coarse_labels: Any = None,
    cifarn_file: str | PathLike | None = None,
    **options: Any,
) -> NoisyLabels:
    """Corrupt clean labels according to a noise spec.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Clean (true) labels in ``[0, num_classes)``, in dataset order.
    spec : str or NoiseSpec
        Noise spec, e.g. ``"symmetric:0.4"``, ``"symmetric-inclusive:0.5"``, ``"pairflip:0.45"``,
        ``"asym-cifar10:0.4"``, ``"instance:0.4"``, ``"openset:0.2+symmetric:0.4"``,
        ``"cifar10n:worst"``.  See the module docstring for every kind, what its rate means and
        which RNG recipe it follows.
    num_classes : int
        ``C``, the number of classes of ``labels`` (for open set: including the held-out ones).
    seed : int, default 0
        Seeds the kind's private generator (``random.Random`` or ``numpy``; global RNG states are
        untouched).  Official labels: ``seed=123`` for ``symmetric-inclusive`` / ``asym-cifar10``
        (DivideMix, ProMix, SMR), 0 for Co-mining, 1 for Me-Momentum.
    features : array-like, shape (N, ...), optional
        Raw inputs for ``instance`` (e.g. uint8 CIFAR images ``(N, 32, 32, 3)``; flattened per
        sample as given, so pass HWC images to match Me-Momentum).
    coarse_labels : array-like, shape (N,), optional
        True coarse (superclass) label of each sample, for ``asym-cifar100-superclass``.
    cifarn_file : str or PathLike, optional
        ``CIFAR-10_human.pt`` / ``CIFAR-100_human.pt`` or a folder holding it, for ``cifar10n`` /
        ``cifar100n``.  Its ``clean_label`` must equal ``labels``.
    **options
        Kind-specific options (for open set: those of the closed kind):

        * ``symmetric``: ``recipe="multinomial"`` (default; Co-mining / Me-Momentum) or
          ``"exact"`` (exactly ``int(R*N)`` flips, Prune4ReL rule).
        * ``asym-cifar100-block5``: ``block5_rule="nextclass"`` (default; UNICON) or
          ``"randompair"`` (SOP-like: one random pair per block swaps).
        * ``instance``: ``normalize_inputs=False`` (True: scale each input to unit L2 norm, so the
          flip distribution over the other classes is spread instead of one-hot),
          ``instance_std=0.1`` (sd of the per-sample flip rate).

    Returns
    -------
    NoisyLabels
        ``labels`` (int64, (N,)), ``is_noisy`` (bool, (N,)), realised ``transition`` (float64,
        (C, C) over the original classes), ``realized_rate``, canonical ``spec``,
        ``num_classes`` (``C_k`` for open set), ``nominal_rate``, ``ood_mask`` and ``info``.

    Raises
    ------
    ValueError
        Malformed spec, unknown kind, rate outside [0, 1], labels not 1-D integers or outside
        ``[0, num_classes)``, ``num_classes < 2``, side inputs of the wrong length, a missing
        ``features`` / ``coarse_labels``, ``asym-cifar10*`` with ``num_classes != 10``, an open-set
        ratio leaving fewer than 2 known classes, a CIFAR-N file of the wrong type or not matching
        ``labels``.
    FileNotFoundError
        CIFAR-N file not given or not found.
    TypeError
        An option the kind does not accept.

    Notes
    -----
    Same seed, same labels; a different seed gives different labels.  ``instance`` follows
    Me-Momentum's draw order with NumPy only (the official code also seeds torch and uses the
    global NumPy RNG, and may compute on GPU, so near-ties can differ); its SciPy ``truncnorm``
    stream may change across SciPy versions.  ``asym-cifar10-bidirectional`` and the block-5
    ``randompair`` rule are unseeded in their official code; lnlkit seeds them.
    """
    parsed = parse_noise_spec(spec)
    C = _check_num_classes(num_classes)
    y = _check_labels(labels, C)
    seed = _check_seed(seed)
    opts = _check_options(parsed, options)
    if features is not None:
        features = _check_side_array(features, len(y), "features")
    if coarse_labels is not None:
        coarse_labels = _check_side_array(coarse_labels, len(y), "coarse_labels")

    spec_str = str(parsed)
    ood_mask = None
    out_classes = C
    if parsed.kind in _CIFARN_KINDS:
        noisy, details = _recipe_cifarn(y, C, parsed, cifarn_file)
        nominal = None
    elif parsed.kind == "openset":
        noisy, details, out_classes, ood_mask, nominal = _recipe_openset(
            y, C, parsed, seed, opts, features, coarse_labels
        )
    else:
        noisy, details = _inject_closed(y, C, parsed, seed, opts, features, coarse_labels)
        nominal = parsed.rate

    nominal_matrix = details.pop("_P", None)
    if nominal_matrix is not None:
        present = np.unique(y)
        _warn_if_not_identifiable(spec_str, nominal_matrix, present[present < len(nominal_matrix)])
    is_noisy = noisy != y
    realized = float(is_noisy.mean())
    transition = transition_from_labels(y, noisy, C)
    info = {
        "kind": parsed.kind,
        "spec": spec_str,
        "seed": seed,
        "num_samples": int(len(y)),
        "num_classes_in": int(C),
        "num_classes_out": int(out_classes),
        "nominal_rate": nominal,
        "realized_rate": realized,
        "num_noisy": int(is_noisy.sum()),
        "options": {k: opts[k] for k in sorted(opts)},
        "transition_convention": "rows = true class, columns = given label; row-normalised counts; "
        "rows of classes without samples are all zero",
        **details,
    }
    return NoisyLabels(
        labels=noisy.astype(np.int64, copy=False),
        is_noisy=is_noisy,
        transition=transition,
        realized_rate=realized,
        spec=spec_str,
        num_classes=int(out_classes),
        nominal_rate=None if nominal is None else float(nominal),
        ood_mask=ood_mask,
        info=info,
    )


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------

SUMMARY_COLUMNS: tuple[str, ...] = (
    "spec",
    "options",
    "kind",
    "nominal_rate",
    "realized_rate",
    "mean_diagonal",
    "min_diagonal",
    "classes_changed",
    "ood_fraction",
)
"""Columns of the table :func:`noise_summary` returns, in order."""


def noise_summary(
    labels: Any,
    specs: Iterable[str | NoiseSpec | tuple[str | NoiseSpec, dict]] | str | NoiseSpec,
    num_classes: int,
    seed: int = 0,
    features: Any = None,
    coarse_labels: Any = None,
    cifarn_file: str | PathLike | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Inject several noise specs into the same labels and tabulate what each one realised.

    Each spec goes through :func:`inject_noise` with the same ``labels``, ``seed`` and side inputs,
    so the rows are directly comparable (e.g. ``symmetric:0.4`` next to ``symmetric-inclusive:0.4``).

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Clean (true) labels in ``[0, num_classes)``, in dataset order.
    specs : sequence of spec, or one spec
        Noise specs such as ``"symmetric:0.4"`` or ``"openset:0.2+pairflip:0.4"`` (a single string
        gives a one-row table).  An entry may also be a pair ``(spec, {option: value})`` whose
        options apply to that spec only, e.g. ``("symmetric:0.4", {"recipe": "exact"})``.
    num_classes : int
        ``C``, the number of classes of ``labels`` (for open set: including the held-out ones).
    seed : int, default 0
        Seed passed to every :func:`inject_noise` call.
    features : array-like, shape (N, ...), optional
        Raw inputs, needed by ``instance`` specs.
    coarse_labels : array-like, shape (N,), optional
        True superclass of each sample, needed by ``asym-cifar100-superclass`` specs.
    cifarn_file : str or PathLike, optional
        CIFAR-N label file or its folder, needed by ``cifar10n`` / ``cifar100n`` specs (then
        ``labels`` must be the file's clean labels).
    **options
        Kind-specific options passed to EVERY spec (see :func:`inject_noise`); a spec whose kind
        does not accept one raises ``TypeError``.  Use ``(spec, options)`` pairs to mix kinds.

    Returns
    -------
    pandas.DataFrame
        One row per spec, in the given order, with the columns of :data:`SUMMARY_COLUMNS`:

        * ``spec`` (str): canonical spec string.
        * ``options`` (str): the options passed explicitly for this row, ``"k=v"`` joined by
          ``", "`` in name order; ``""`` when none (the kind's defaults apply).
        * ``kind`` (str): the outer kind (``"openset"`` for open-set specs).
        * ``nominal_rate`` (float): the spec's nominal rate (what it means depends on the kind, see
          the module docstring); NaN for real (CIFAR-N) noise.
        * ``realized_rate`` (float): fraction of the N labels that differ from the truth.
        * ``mean_diagonal``, ``min_diagonal`` (float): mean and minimum of the diagonal of the
          realised transition matrix (probability that a class keeps its label) over the classes
          present in ``labels``.  Held-out open-set classes count with diagonal 0.
        * ``classes_changed`` (int): number of true classes with at least one changed label.
        * ``ood_fraction`` (float): fraction of samples that are open-set (true class held out);
          0 for closed-set kinds.

    Raises
    ------
    ValueError
        ``specs`` is empty, or an entry is not a spec or a ``(spec, dict)`` pair; plus every
        error of :func:`parse_noise_spec` / :func:`inject_noise` (bad spec, labels, side inputs,
        CIFAR-N file).  All specs are parsed before any noise is injected.
    TypeError
        An option the kind of some spec does not accept.
    FileNotFoundError
        A CIFAR-N spec without its label file.

    Examples
    --------
    >>> y = np.repeat(np.arange(10), 100)
    >>> table = noise_summary(y, ["symmetric:0.4", "symmetric-inclusive:0.4", "pairflip:0.4"], 10)
    >>> table[["spec", "realized_rate"]]  # doctest: +SKIP
    """
    import pandas as pd

    entries = _summary_entries(specs)
    C = _check_num_classes(num_classes)
    y = _check_labels(labels, C)
    present = np.unique(y)
    rows = []
    for parsed, own in entries:
        opts = {**options, **own}
        noisy = inject_noise(
            y, parsed, C, seed, features=features, coarse_labels=coarse_labels, cifarn_file=cifarn_file, **opts
        )
        diag = np.diag(noisy.transition)[present]
        rows.append(
            {
                "spec": noisy.spec,
                "options": ", ".join(f"{k}={opts[k]}" for k in sorted(opts)),
                "kind": parsed.kind,
                "nominal_rate": math.nan if noisy.nominal_rate is None else float(noisy.nominal_rate),
                "realized_rate": float(noisy.realized_rate),
                "mean_diagonal": float(diag.mean()),
                "min_diagonal": float(diag.min()),
                "classes_changed": int(len(np.unique(y[noisy.is_noisy]))),
                "ood_fraction": 0.0 if noisy.ood_mask is None else float(noisy.ood_mask.mean()),
            }
        )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.astype({"classes_changed": "int64"})


def _summary_entries(specs: Any) -> list[tuple[NoiseSpec, dict]]:
    """Normalise the ``specs`` argument of :func:`noise_summary` and parse every spec up front."""
    if isinstance(specs, (str, NoiseSpec)):
        specs = [specs]
    elif isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[1], dict):
        specs = [specs]
    try:
        items = list(specs)
    except TypeError:
        raise ValueError(
            f"specs must be a list of noise specs such as ['symmetric:0.4', 'pairflip:0.4'], got {type(specs).__name__}"
        ) from None
    if not items:
        raise ValueError("specs is empty; pass at least one noise spec, e.g. ['symmetric:0.4']")
    out = []
    for item in items:
        if isinstance(item, (str, NoiseSpec)):
            spec, own = item, {}
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], dict):
            spec, own = item
        else:
            raise ValueError(f"each entry of specs must be a spec string or a (spec, options dict) pair, got {item!r}")
        out.append((parse_noise_spec(spec), dict(own)))
    return out

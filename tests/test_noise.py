"""Tests for lnlkit.noise: realised rates, structure, RNG recipes, validation and CIFAR-N files."""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import truncnorm

from lnlkit.noise import (
    NOISE_KINDS,
    NoiseSpec,
    NoisyLabels,
    inject_noise,
    load_cifarn_labels,
    parse_noise_spec,
    transition_from_labels,
)

N = 50_000


def balanced_labels(n: int, C: int, seed: int = 0) -> np.ndarray:
    """Shuffled labels with (almost) equal class counts."""
    return np.random.RandomState(seed).permutation(np.arange(n) % C).astype(np.int64)


@pytest.fixture(scope="module")
def y10() -> np.ndarray:
    return balanced_labels(N, 10)


@pytest.fixture(scope="module")
def y100() -> np.ndarray:
    return balanced_labels(N, 100, seed=1)


# ---------------------------------------------------------------------------------------------
# Spec parsing
# ---------------------------------------------------------------------------------------------


def test_noise_kinds_lists_every_spec_name():
    assert set(NOISE_KINDS) == {
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
    }


@pytest.mark.parametrize(
    "text, canonical",
    [
        (" Symmetric:0.40 ", "symmetric:0.4"),
        ("symmetric-inclusive:.5", "symmetric-inclusive:0.5"),
        ("pairflip:1", "pairflip:1"),
        ("none", "none"),
        ("clean", "clean"),
        ("openset:0.2+symmetric:0.4", "openset:0.2+symmetric:0.4"),
        ("openset:0.2 + pairflip:0.45", "openset:0.2+pairflip:0.45"),
        ("cifar10n:worst", "cifar10n:worst"),
        ("cifar100n:noisy", "cifar100n:noisy"),
    ],
)
def test_parse_canonical(text, canonical):
    parsed = parse_noise_spec(text)
    assert isinstance(parsed, NoiseSpec)
    assert str(parsed) == canonical
    assert str(parse_noise_spec(canonical)) == canonical


def test_parse_fields():
    p = parse_noise_spec("openset:0.2+pairflip:0.45")
    assert (p.kind, p.open_ratio, p.closed.kind, p.closed.rate) == ("openset", 0.2, "pairflip", 0.45)
    assert parse_noise_spec("cifar10n:rand2").key == "rand2"
    assert parse_noise_spec("instance:0.3").rate == 0.3


@pytest.mark.parametrize(
    "bad, match",
    [
        ("symetric:0.4", r"unknown noise kind 'symetric'.*valid kinds: none, clean, symmetric.*Did you mean 'symm"),
        ("gaussian:0.4", r"unknown noise kind 'gaussian'.*valid kinds"),
        ("symmetric", r"needs an argument, e\.g\. 'symmetric:0\.4'"),
        ("symmetric:", r"needs an argument"),
        ("none:0.3", r"takes no argument"),
        ("symmetric:0.4:1", r"malformed noise spec"),
        ("symmetric+pairflip:0.4", r"malformed noise spec"),
        ("openset:0.2", r"openset:<O>\+<closed spec>"),
        ("openset:0.2+cifar10n:worst", r"must be a synthetic closed-set kind"),
        ("openset:0.2+openset:0.1+none", r"must be a synthetic closed-set kind"),
        ("openset:1+none", r"open-set ratio must be < 1"),
        ("symmetric:abc", r"'abc'.*is not a number"),
        ("symmetric:nan", r"finite number"),
        ("symmetric:-0.1", r"must be in \[0, 1\], got -0\.1"),
        ("pairflip:1.5", r"must be in \[0, 1\], got 1\.5"),
        ("symmetric:40", r"must be in \[0, 1\].*write 0\.4 for 40%"),
        ("cifar10n:worse", r"unknown CIFAR-10N label set 'worse'.*aggre, worst"),
        ("cifar100n:aggre", r"unknown CIFAR-100N label set 'aggre'.*noisy, clean"),
        ("", r"empty noise spec"),
    ],
)
def test_parse_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_noise_spec(bad)


def test_parse_iterates_kind_arg_pairs():
    assert list(parse_noise_spec("symmetric:0.4")) == [("symmetric", 0.4)]
    assert list(parse_noise_spec("openset:0.2+pairflip:0.45")) == [("openset", 0.2), ("pairflip", 0.45)]
    assert list(parse_noise_spec("cifar10n:worst")) == [("cifar10n", "worst")]
    assert [k for k, _ in parse_noise_spec("none")] == ["none"]


def test_parse_rejects_non_string():
    with pytest.raises(TypeError, match="must be a string"):
        parse_noise_spec(0.4)


# ---------------------------------------------------------------------------------------------
# Result object, transition matrix
# ---------------------------------------------------------------------------------------------


def test_transition_from_labels_by_hand():
    true = np.array([0, 0, 0, 0, 1, 1, 2])
    noisy = np.array([0, 0, 1, 2, 1, 0, 2])
    T = transition_from_labels(true, noisy, 4)
    expected = np.array(
        [[0.5, 0.25, 0.25, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]  # class 3: no samples
    )
    np.testing.assert_allclose(T, expected)
    assert T.dtype == np.float64
    with pytest.raises(ValueError, match="differ in length"):
        transition_from_labels(true, noisy[:-1], 4)
    with pytest.raises(ValueError, match=r"found values 5"):
        transition_from_labels(true, np.array([0, 0, 1, 2, 1, 0, 5]), 4)


CLOSED_SPECS_10 = [
    "none",
    "symmetric:0.4",
    "symmetric-inclusive:0.5",
    "pairflip:0.45",
    "asym-cifar10:0.4",
    "asym-cifar10-bidirectional:0.4",
    "asym-cifar100-block5:0.4",
    "openset:0.2+symmetric:0.4",
    "openset:0.2+symmetric-inclusive:0.4",
]


@pytest.mark.parametrize("spec", CLOSED_SPECS_10)
def test_result_contract(spec, y10):
    r = inject_noise(y10, spec, 10, seed=3)
    assert isinstance(r, NoisyLabels)
    assert r.labels.dtype == np.int64 and r.labels.shape == (N,)
    assert r.labels.min() >= 0 and r.labels.max() < r.num_classes
    assert r.is_noisy.dtype == bool
    np.testing.assert_array_equal(r.is_noisy, r.labels != y10)
    assert r.realized_rate == pytest.approx(r.is_noisy.mean())
    assert r.transition.shape == (10, 10) and r.transition.dtype == np.float64
    np.testing.assert_allclose(r.transition.sum(axis=1), 1.0)
    np.testing.assert_array_equal(r.transition, transition_from_labels(y10, r.labels, 10))
    assert r.spec == str(parse_noise_spec(spec))
    json.dumps(r.info)  # JSON-serialisable
    assert r.info["kind"] == parse_noise_spec(spec).kind and r.info["seed"] == 3


def test_transition_rows_of_absent_classes_are_zero():
    y = balanced_labels(5000, 6)
    y[y == 4] = 0  # class 4 has no samples
    r = inject_noise(y, "symmetric:0.3", 6, seed=0)
    np.testing.assert_array_equal(r.transition[4], 0.0)
    rows = np.array([0, 1, 2, 3, 5])
    np.testing.assert_allclose(r.transition[rows].sum(axis=1), 1.0)
    assert (r.labels != 4).any()  # absent classes can still be given as noisy labels


def target_symmetric(C, R):
    T = np.full((C, C), R / (C - 1))
    np.fill_diagonal(T, 1 - R)
    return T


def target_pairflip(C, R):
    T = np.zeros((C, C))
    for i in range(C):
        T[i, i] = 1 - R
        T[i, (i + 1) % C] = R
    return T


@pytest.mark.parametrize(
    "spec, target",
    [
        ("symmetric:0.4", target_symmetric(4, 0.4)),
        ("pairflip:0.3", target_pairflip(4, 0.3)),
        ("symmetric-inclusive:0.6", 0.4 * np.eye(4) + 0.6 / 4),
    ],
)
def test_empirical_transition_matches_target(spec, target):
    """Statistical test: 100k samples over 4 classes, empirical T within 0.01 of the target."""
    y = balanced_labels(100_000, 4, seed=7)
    r = inject_noise(y, spec, 4, seed=11)
    assert np.abs(r.transition - target).max() < 0.01


# ---------------------------------------------------------------------------------------------
# Realised rates and structure
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("R", [0.2, 0.5, 0.8])
def test_symmetric_exclusive_rate(R, y10):
    r = inject_noise(y10, f"symmetric:{R}", 10, seed=0)
    assert abs(r.realized_rate - R) < 0.01
    assert r.nominal_rate == R
    # flips spread over all other classes: each off-diagonal entry near R / 9
    off = r.transition[~np.eye(10, dtype=bool)]
    assert np.abs(off - R / 9).max() < 0.015


def test_symmetric_exact_recipe_count(y10):
    r = inject_noise(y10, "symmetric:0.37", 10, seed=5, recipe="exact")
    assert r.is_noisy.sum() == int(0.37 * N)
    off = r.transition[~np.eye(10, dtype=bool)]
    assert np.abs(off - 0.37 / 9).max() < 0.015
    assert r.info["options"]["recipe"] == "exact"
    assert not np.array_equal(r.labels, inject_noise(y10, "symmetric:0.37", 10, seed=5).labels)


@pytest.mark.parametrize("C", [10, 100])
def test_symmetric_inclusive_rate(C, y10, y100):
    y = y10 if C == 10 else y100
    r = inject_noise(y, "symmetric-inclusive:0.4", C, seed=123)
    assert abs(r.realized_rate - 0.4 * (1 - 1 / C)) < 0.01


def test_pairflip_structure(y10):
    r = inject_noise(y10, "pairflip:0.45", 10, seed=0)
    flipped = r.is_noisy
    np.testing.assert_array_equal(r.labels[flipped], (y10[flipped] + 1) % 10)
    assert abs(r.realized_rate - 0.45) < 0.01
    assert r.transition[9, 0] == pytest.approx(0.45, abs=0.02)  # last class wraps to 0


def test_asym_cifar10_structure(y10):
    r = inject_noise(y10, "asym-cifar10:0.4", 10, seed=123)
    targets = {2: 0, 3: 5, 4: 7, 5: 3, 9: 1}  # bird->airplane, cat<->dog, deer->horse, truck->automobile
    flipped = r.is_noisy
    assert set(np.unique(y10[flipped]).tolist()) == set(targets)
    expected = np.array([targets[int(c)] for c in y10[flipped]])
    np.testing.assert_array_equal(r.labels[flipped], expected)
    assert abs(r.realized_rate - 0.2) < 0.01
    for c in targets:  # ~R of each source class
        assert abs(r.transition[c, targets[c]] - 0.4) < 0.02
    assert r.info["num_selected"] == int(0.4 * N)


def test_asym_cifar10_bidirectional_exact_count(y10):
    r = inject_noise(y10, "asym-cifar10-bidirectional:0.3", 10, seed=0)
    assert r.is_noisy.sum() == int(0.3 * N)
    pairs = {0: 2, 2: 0, 1: 9, 9: 1, 3: 5, 5: 3, 4: 7, 7: 4, 6: 8, 8: 6}
    expected = np.array([pairs[int(c)] for c in y10[r.is_noisy]])
    np.testing.assert_array_equal(r.labels[r.is_noisy], expected)


def test_block5_nextclass_structure(y100):
    r = inject_noise(y100, "asym-cifar100-block5:0.4", 100, seed=0)
    f = r.is_noisy
    np.testing.assert_array_equal(r.labels[f] // 5, y100[f] // 5)  # flips stay inside the block
    np.testing.assert_array_equal(r.labels[f], (y100[f] // 5) * 5 + (y100[f] % 5 + 1) % 5)
    assert abs(r.realized_rate - 0.4) < 0.01
    assert r.info["block5_rule"] == "nextclass"


def test_block5_randompair_structure(y100):
    r = inject_noise(y100, "asym-cifar100-block5:0.4", 100, seed=2, block5_rule="randompair")
    f = r.is_noisy
    np.testing.assert_array_equal(r.labels[f] // 5, y100[f] // 5)
    for a, b in r.info["pairs"]:
        assert a // 5 == b // 5 and a != b
    swapped = {a: b for a, b in r.info["pairs"]} | {b: a for a, b in r.info["pairs"]}
    assert set(np.unique(y100[f]).tolist()) <= set(swapped)
    np.testing.assert_array_equal(r.labels[f], [swapped[int(c)] for c in y100[f]])
    assert abs(r.realized_rate - 0.4 * 2 / 5) < 0.01


def test_superclass_structure(y100):
    # a scrambled fine -> coarse assignment (20 superclasses of 5), as in real CIFAR-100
    perm = np.random.RandomState(0).permutation(100)
    coarse_of_fine = np.empty(100, dtype=np.int64)
    coarse_of_fine[perm] = np.arange(100) // 5
    coarse = coarse_of_fine[y100]
    r = inject_noise(y100, "asym-cifar100-superclass:0.4", 100, seed=0, coarse_labels=coarse)
    f = r.is_noisy
    np.testing.assert_array_equal(coarse_of_fine[r.labels[f]], coarse[f])  # same superclass
    for c in range(100):
        members = np.sort(np.flatnonzero(coarse_of_fine == coarse_of_fine[c]))
        nxt = members[(np.searchsorted(members, c) + 1) % len(members)]
        got = np.unique(r.labels[f & (y100 == c)])
        np.testing.assert_array_equal(got, [nxt])
    assert abs(r.realized_rate - 0.4) < 0.01


def test_superclass_accepts_coarse_names_and_rejects_inconsistent():
    y = balanced_labels(4000, 4)
    names = np.array(["vehicle", "animal"])[y // 2]
    r = inject_noise(y, "asym-cifar100-superclass:0.4", 4, seed=0, coarse_labels=names)
    np.testing.assert_array_equal(r.labels[r.is_noisy], y[r.is_noisy] ^ 1)  # 0<->1, 2<->3
    bad = names.copy()
    bad[np.flatnonzero(y == 0)[0]] = "animal"
    with pytest.raises(ValueError, match="coarse_labels are inconsistent: fine class 0"):
        inject_noise(y, "asym-cifar100-superclass:0.5", 4, coarse_labels=bad)


def test_rate_zero_and_one():
    y = balanced_labels(5000, 10)
    for spec in ["symmetric:0", "pairflip:0", "symmetric-inclusive:0", "asym-cifar10:0", "none"]:
        r = inject_noise(y, spec, 10)
        assert r.realized_rate == 0.0
        np.testing.assert_array_equal(r.labels, y)
    with pytest.warns(UserWarning, match="no longer the most likely label"):
        r = inject_noise(y, "symmetric:1", 10)
    assert r.realized_rate == 1.0


def test_identifiability_warning_only_when_needed():
    y = balanced_labels(5000, 10)
    with pytest.warns(UserWarning, match="class 0 keeps its label with probability 0.5"):
        inject_noise(y, "pairflip:0.5", 10)
    with pytest.warns(UserWarning):
        inject_noise(y, "symmetric:0.9", 10)  # 0.1 kept vs 0.1 to each other class
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inject_noise(y, "pairflip:0.45", 10)
        inject_noise(y, "symmetric:0.8", 10)
        inject_noise(y, "symmetric-inclusive:0.9", 10)
        inject_noise(y, "asym-cifar10:0.4", 10)


# ---------------------------------------------------------------------------------------------
# Determinism and RNG recipes
# ---------------------------------------------------------------------------------------------

DETERMINISM_CASES = [
    ("symmetric:0.4", {}),
    ("symmetric:0.4", {"recipe": "exact"}),
    ("symmetric-inclusive:0.4", {}),
    ("pairflip:0.4", {}),
    ("asym-cifar10:0.4", {}),
    ("asym-cifar10-bidirectional:0.4", {}),
    ("asym-cifar100-block5:0.4", {}),
    ("asym-cifar100-block5:0.4", {"block5_rule": "randompair"}),
    ("asym-cifar100-superclass:0.4", {"coarse_labels": "coarse"}),
    ("instance:0.4", {"features": "features"}),
    ("openset:0.2+symmetric:0.4", {}),
    ("openset:0.2+symmetric-inclusive:0.4", {}),
]


@pytest.mark.parametrize("spec, kw", DETERMINISM_CASES)
def test_determinism(spec, kw):
    y = balanced_labels(3000, 10)
    rs = np.random.RandomState(0)
    sides = {"coarse": y // 5, "features": rs.randint(0, 256, size=(3000, 4, 4, 3)).astype(np.uint8)}
    kw = {k: sides[v] if isinstance(v, str) and v in sides else v for k, v in kw.items()}
    a = inject_noise(y, spec, 10, seed=4, **kw)
    b = inject_noise(y, spec, 10, seed=4, **kw)
    c = inject_noise(y, spec, 10, seed=5, **kw)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    json.dumps(a.info)


def test_global_rng_states_untouched():
    y = balanced_labels(2000, 10)
    py_state, np_state = random.getstate(), np.random.get_state()
    for spec in ["symmetric:0.4", "symmetric-inclusive:0.4", "asym-cifar10:0.4", "pairflip:0.2"]:
        inject_noise(y, spec, 10, seed=1)
    inject_noise(y, "instance:0.3", 10, seed=1, features=np.ones((2000, 5)) * np.arange(5))
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[1].tolist() == np_state[1].tolist() and after[2] == np_state[2]


def official_python_random_recipe(y, r, C, mode, seed=123):
    """Independent re-statement of DivideMix's ``dataloader_cifar.py`` recipe with the GLOBAL random module."""
    transition = {0: 0, 2: 0, 4: 7, 7: 7, 1: 1, 9: 1, 3: 5, 5: 3, 6: 6, 8: 8}
    saved = random.getstate()
    try:
        random.seed(seed)
        n = len(y)
        idx = list(range(n))
        random.shuffle(idx)
        noise_idx = set(idx[: int(r * n)])
        out = []
        for i in range(n):
            if i in noise_idx:
                out.append(random.randint(0, C - 1) if mode == "sym" else transition[int(y[i])])
            else:
                out.append(int(y[i]))
        return np.array(out)
    finally:
        random.setstate(saved)


@pytest.mark.parametrize("C, r", [(10, 0.5), (100, 0.8), (10, 0.2)])
def test_symmetric_inclusive_is_bit_exact(C, r, y10, y100):
    y = y10 if C == 10 else y100
    expected = official_python_random_recipe(y, r, C, "sym")
    got = inject_noise(y, f"symmetric-inclusive:{r}", C, seed=123)
    np.testing.assert_array_equal(got.labels, expected)
    if (C, r) == (10, 0.5):
        assert abs(got.realized_rate - 0.45) < 0.01  # nominal 0.5 on 10 classes realises ~45%


def test_asym_cifar10_is_bit_exact(y10):
    expected = official_python_random_recipe(y10, 0.4, 10, "asym")
    np.testing.assert_array_equal(inject_noise(y10, "asym-cifar10:0.4", 10, seed=123).labels, expected)


def multinomial_sampler(y, P, seed):
    """Independent re-statement of the Co-mining / Me-Momentum sampler (``noisy_util.py``): one RandomState,
    multinomial(1, P[y_i], 1) per sample in dataset order."""
    flipper = np.random.RandomState(seed)
    out = np.empty_like(y)
    for i, c in enumerate(y):
        out[i] = np.flatnonzero(flipper.multinomial(1, P[c], 1)[0] == 1)[0]
    return out


@pytest.mark.parametrize(
    "spec, P, seed",
    [
        ("symmetric:0.4", target_symmetric(10, 0.4), 0),
        ("pairflip:0.45", target_pairflip(10, 0.45), 1),
    ],
)
def test_multinomial_recipe_stream(spec, P, seed):
    y = balanced_labels(8000, 10)
    np.testing.assert_array_equal(inject_noise(y, spec, 10, seed=seed).labels, multinomial_sampler(y, P, seed))


def test_block5_nextclass_stream():
    y = balanced_labels(5000, 20)
    P = 0.7 * np.eye(20)
    for i in range(20):
        P[i, 5 * (i // 5) + (i % 5 + 1) % 5] = 0.3
    expected = multinomial_sampler(y, P, 0)
    np.testing.assert_array_equal(inject_noise(y, "asym-cifar100-block5:0.3", 20, seed=0).labels, expected)


# ---------------------------------------------------------------------------------------------
# Instance-dependent noise (Xia et al. 2020 as Me-Momentum)
# ---------------------------------------------------------------------------------------------


def raw_images(n, d=48, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=(n, d)).astype(np.uint8)


@pytest.mark.parametrize("R", [0.2, 0.4])
def test_instance_rate(R):
    y = balanced_labels(20_000, 10)
    r = inject_noise(y, f"instance:{R}", 10, seed=1, features=raw_images(20_000))
    a, b = (0 - R) / 0.1, (1 - R) / 0.1
    mean_q = truncnorm.mean(a, b, loc=R, scale=0.1)  # 0.2055 for R = 0.2
    assert abs(r.info["mean_flip_probability"] - mean_q) < 0.005
    assert abs(r.realized_rate - r.info["mean_flip_probability"]) < 0.01
    assert abs(r.realized_rate - R) < 0.015
    np.testing.assert_array_equal(r.is_noisy, r.labels != y)
    assert r.labels.min() >= 0 and r.labels.max() < 10


def me_momentum_instance_reference(y, X, C, R, seed, std=0.1):
    """Independent per-sample re-statement of Me-Momentum's instance noise with the GLOBAL NumPy RNG."""
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        q = truncnorm((0 - R) / std, (1 - R) / std, loc=R, scale=std).rvs(len(y))
        W = np.random.randn(C, X.shape[1], C).astype(np.float32)
        out = []
        for i in range(len(y)):
            a = X[i].astype(np.float32) @ W[y[i]]
            a[y[i]] = -np.inf
            e = np.exp(a - a.max())
            p = np.float32(q[i]) * (e / e.sum())
            p[y[i]] += np.float32(1 - q[i])
            out.append(np.random.choice(C, p=p))
        return np.array(out)
    finally:
        np.random.set_state(saved)


def test_instance_matches_per_sample_reference():
    y = balanced_labels(1500, 5)
    X = np.random.RandomState(3).rand(1500, 12).astype(np.float32)  # small logits: spread probabilities
    expected = me_momentum_instance_reference(y, X, 5, 0.4, seed=1)
    got = inject_noise(y, "instance:0.4", 5, seed=1, features=X)
    assert (got.labels == expected).mean() > 0.999  # float32 round-off may move a rare near-tie


def test_instance_raw_inputs_give_one_hot_flips():
    """Raw pixel logits are huge (sd ~ ||x||), so softmax is one-hot except in rare near-ties: a
    flipped sample goes to the argmax class of its projection, and identical images with the
    same label (almost) all flip to the same class.  Unit-norm inputs spread the flips."""
    base = raw_images(150, d=48, seed=4)
    reps = 80
    X = np.repeat(base, reps, axis=0)
    y = np.repeat(np.arange(150) % 10, reps)
    group = np.repeat(np.arange(150), reps)
    raw = inject_noise(y, "instance:0.4", 10, seed=0, features=X)
    norm = inject_noise(y, "instance:0.4", 10, seed=0, features=X, normalize_inputs=True)
    assert not np.array_equal(raw.labels, norm.labels)
    assert norm.info["normalize_inputs"] is True and raw.info["normalize_inputs"] is False

    def distinct_targets(res):
        return [len(np.unique(res.labels[(group == g) & res.is_noisy])) for g in range(150)]

    raw_counts, norm_counts = distinct_targets(raw), distinct_targets(norm)
    assert np.mean(np.array(raw_counts) == 1) >= 0.95  # measured: 149 of 150 groups
    assert np.mean(np.array(norm_counts) >= 4) >= 0.9  # measured: all 150 groups


def test_instance_accepts_image_shaped_features():
    y = balanced_labels(500, 10)
    imgs = raw_images(500, d=27).reshape(500, 3, 3, 3)
    a = inject_noise(y, "instance:0.3", 10, seed=2, features=imgs)
    b = inject_noise(y, "instance:0.3", 10, seed=2, features=imgs.reshape(500, -1))
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.info["feature_dim"] == 27


# ---------------------------------------------------------------------------------------------
# Open set
# ---------------------------------------------------------------------------------------------


def test_openset_symmetric(y10):
    r = inject_noise(y10, "openset:0.2+symmetric:0.4", 10, seed=0)
    assert r.num_classes == 8
    assert r.labels.max() < 8
    np.testing.assert_array_equal(r.ood_mask, y10 >= 8)
    assert r.is_noisy[r.ood_mask].all()
    freq = np.bincount(r.labels[r.ood_mask], minlength=8) / r.ood_mask.sum()
    assert np.abs(freq - 1 / 8).max() < 0.015  # open-set samples: uniform over the known classes
    assert abs(r.realized_rate - (0.2 + 0.8 * 0.4)) < 0.01
    assert r.nominal_rate == pytest.approx(0.52)
    assert r.transition.shape == (10, 10)
    np.testing.assert_array_equal(r.transition[:, 8:], 0.0)
    np.testing.assert_allclose(r.transition[8:, :8], 1 / 8, atol=0.02)
    np.testing.assert_allclose(r.transition[:8, :8], target_symmetric(8, 0.4), atol=0.02)
    assert r.info["known_classes"] == 8 and r.info["open_classes"] == [8, 9]
    assert abs(r.info["closed_realized_rate"] - 0.4) < 0.01


def test_openset_follows_single_rng_recipe():
    """Co-mining cifar80no: one RandomState(seed), one multinomial per sample over the full C x C matrix."""
    y = balanced_labels(6000, 10)
    P = np.zeros((10, 10))
    P[:8, :8] = target_pairflip(8, 0.3)
    P[8:, :8] = 1 / 8
    expected = multinomial_sampler(y, P, 0)
    np.testing.assert_array_equal(inject_noise(y, "openset:0.2+pairflip:0.3", 10, seed=0).labels, expected)


def test_openset_zero_ratio_equals_closed_spec(y10):
    a = inject_noise(y10, "openset:0+symmetric:0.4", 10, seed=2)
    b = inject_noise(y10, "symmetric:0.4", 10, seed=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.num_classes == 10 and not a.ood_mask.any()


def test_openset_with_other_closed_kinds(y10):
    r = inject_noise(y10, "openset:0.2+symmetric-inclusive:0.5", 10, seed=1)
    assert r.num_classes == 8 and r.labels.max() < 8
    assert abs(r.info["closed_realized_rate"] - 0.5 * (1 - 1 / 8)) < 0.01
    freq = np.bincount(r.labels[r.ood_mask], minlength=8) / r.ood_mask.sum()
    assert np.abs(freq - 1 / 8).max() < 0.015
    y = balanced_labels(3000, 12)
    feats = raw_images(3000, d=16)
    r = inject_noise(y, "openset:0.2+instance:0.3", 12, seed=0, features=feats)  # C_k = 12 - 2 = 10
    assert r.num_classes == 10 and r.labels.max() < 10
    r = inject_noise(y, "openset:0.2+asym-cifar10:0.4", 12, seed=0)
    np.testing.assert_array_equal(r.ood_mask, y >= 10)


def test_openset_floor_is_robust_to_round_off():
    y = balanced_labels(2000, 100)
    assert inject_noise(y, "openset:0.29+none", 100).num_classes == 71  # 0.29 * 100 = 28.999...


# ---------------------------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------------------------


def test_validation_errors():
    y = balanced_labels(100, 10)
    with pytest.raises(ValueError, match=r"1-D array of class indices.*got shape \(10, 10\)"):
        inject_noise(y.reshape(10, 10), "symmetric:0.2", 10)
    with pytest.raises(ValueError, match=r"integer class indices, got dtype float64"):
        inject_noise(y.astype(float), "symmetric:0.2", 10)
    with pytest.raises(ValueError, match=r"\[0, 8\); found values 8, 9 in 20 sample"):
        inject_noise(y, "symmetric:0.2", 8)
    with pytest.raises(ValueError, match=r"found values -1"):
        inject_noise(np.r_[y, -1], "symmetric:0.2", 10)
    with pytest.raises(ValueError, match="empty"):
        inject_noise(np.array([], dtype=np.int64), "symmetric:0.2", 10)
    with pytest.raises(ValueError, match="num_classes must be at least 2, got 1"):
        inject_noise(np.zeros(5, dtype=int), "symmetric:0.2", 1)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        inject_noise(y, "symmetric:0.2", 10.0)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*32\)"):
        inject_noise(y, "symmetric:0.2", 10, seed=-1)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        inject_noise(y, "symmetric:1.2", 10)
    with pytest.raises(ValueError, match="unknown noise kind"):
        inject_noise(y, "uniform:0.2", 10)


def test_side_input_errors():
    y = balanced_labels(100, 10)
    with pytest.raises(ValueError, match=r"features must have one row per label \(100\), got 99 rows"):
        inject_noise(y, "instance:0.2", 10, features=np.zeros((99, 4)))
    with pytest.raises(ValueError, match=r"coarse_labels must have one row per label \(100\), got 50 rows"):
        inject_noise(y, "asym-cifar100-superclass:0.2", 10, coarse_labels=np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="instance noise needs features="):
        inject_noise(y, "instance:0.2", 10)
    with pytest.raises(ValueError, match="asym-cifar100-superclass needs coarse_labels="):
        inject_noise(y, "asym-cifar100-superclass:0.2", 10)


def test_kind_specific_errors():
    y100 = balanced_labels(500, 100)
    with pytest.raises(ValueError, match=r"asym-cifar10 is defined for the 10 CIFAR-10 classes, got num_classes=100"):
        inject_noise(y100, "asym-cifar10:0.4", 100)
    with pytest.raises(ValueError, match=r"asym-cifar10-bidirectional is defined for the 10 CIFAR-10 classes"):
        inject_noise(y100, "asym-cifar10-bidirectional:0.4", 100)
    with pytest.raises(ValueError, match=r"multiple of 5.*got 12"):
        inject_noise(balanced_labels(100, 12), "asym-cifar100-block5:0.4", 12)
    y = balanced_labels(100, 10)
    with pytest.raises(ValueError, match=r"leaves 1 known class.*at least 2 known classes"):
        inject_noise(y, "openset:0.9+symmetric:0.2", 10)
    with pytest.raises(ValueError, match=r"multiple of 5.*got 8"):  # C_k = 8 for the block-5 rule
        inject_noise(y, "openset:0.2+asym-cifar100-block5:0.2", 10)


def test_option_errors():
    y = balanced_labels(100, 10)
    msg = r"unexpected keyword argument 'noise_std'.*'instance'.*normalize_inputs, instance_std"
    with pytest.raises(TypeError, match=msg):
        inject_noise(y, "instance:0.2", 10, features=np.ones((100, 3)), noise_std=0.2)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'block5_rule' for noise kind 'symmetric'"):
        inject_noise(y, "symmetric:0.2", 10, block5_rule="randompair")
    with pytest.raises(TypeError, match=r"'recipe' for noise kind 'pairflip' \(options of this kind: none\)"):
        inject_noise(y, "pairflip:0.2", 10, recipe="exact")
    with pytest.raises(ValueError, match="recipe must be 'multinomial' or 'exact'"):
        inject_noise(y, "symmetric:0.2", 10, recipe="prune4rel")
    with pytest.raises(ValueError, match="block5_rule must be"):
        inject_noise(y, "asym-cifar100-block5:0.2", 10, block5_rule="next")
    with pytest.raises(ValueError, match="instance_std must be a positive number"):
        inject_noise(y, "instance:0.2", 10, features=np.ones((100, 3)), instance_std=0)
    # options of the closed kind pass through open set
    r = inject_noise(y, "openset:0.2+symmetric:0.5", 10, recipe="exact")
    assert r.info["options"] == {"recipe": "exact"}


# ---------------------------------------------------------------------------------------------
# CIFAR-N (real files when ../shared is present)
# ---------------------------------------------------------------------------------------------


def cifarn_dir() -> Path:
    env = os.environ.get("LNLKIT_CIFARN_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-n"


def cifarn_file(name: str) -> Path:
    path = cifarn_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} not found in {cifarn_dir()} (set LNLKIT_CIFARN_DIR)")
    return path


@pytest.fixture(scope="module")
def c10n():
    path = cifarn_file("CIFAR-10_human.pt")
    _, clean = load_cifarn_labels(path, "clean")
    return path, clean


@pytest.fixture(scope="module")
def c100n():
    path = cifarn_file("CIFAR-100_human.pt")
    _, clean = load_cifarn_labels(path, "clean")
    return path, clean


@pytest.mark.parametrize(
    "key, rate",
    [("aggre", 0.0901), ("worst", 0.4021), ("rand1", 0.1723), ("rand2", 0.1812), ("rand3", 0.1764), ("clean", 0.0)],
)
def test_cifar10n_rates(key, rate, c10n):
    path, clean = c10n
    r = inject_noise(clean, f"cifar10n:{key}", 10, cifarn_file=path)
    assert abs(r.realized_rate - rate) < 0.0001  # 0.01 percentage points
    assert r.nominal_rate is None and r.num_classes == 10 and r.labels.shape == (50_000,)
    np.testing.assert_array_equal(r.is_noisy, r.labels != clean)
    np.testing.assert_allclose(r.transition.sum(axis=1), 1.0)
    json.dumps(r.info)


def test_cifar100n_rates(c100n):
    path, clean = c100n
    r = inject_noise(clean, "cifar100n:noisy", 100, cifarn_file=path)
    assert abs(r.realized_rate - 0.4020) < 0.0001
    assert inject_noise(clean, "cifar100n:clean", 100, cifarn_file=path.parent).realized_rate == 0.0  # folder works


def test_cifarn_loader_keys(c10n):
    path, clean = c10n
    noisy_name, _ = load_cifarn_labels(path, "worst")
    noisy_key, clean2 = load_cifarn_labels(path, "worse_label", expected_clean=clean)
    np.testing.assert_array_equal(noisy_name, noisy_key)
    np.testing.assert_array_equal(clean, clean2)
    assert noisy_name.dtype == np.int64
    with pytest.raises(ValueError, match="'noisy' is a CIFAR-100N label set"):
        load_cifarn_labels(path, "noisy")


def test_cifarn_mismatched_images(c10n):
    path, clean = c10n
    shuffled = np.random.RandomState(0).permutation(clean)
    with pytest.raises(ValueError, match="mismatch.*does not match the images.*order"):
        inject_noise(shuffled, "cifar10n:aggre", 10, cifarn_file=path)
    with pytest.raises(ValueError, match="has 50000 labels, the images 1000"):
        inject_noise(clean[:1000], "cifar10n:aggre", 10, cifarn_file=path)


def test_cifarn_wrong_file_or_classes(c10n, c100n):
    path100, clean100 = c100n
    path10, clean10 = c10n
    with pytest.raises(ValueError, match=r"CIFAR-100N label file.*cifar10n needs CIFAR-10_human\.pt"):
        inject_noise(clean10, "cifar10n:aggre", 10, cifarn_file=path100)
    with pytest.raises(ValueError, match=r"CIFAR-10N label file.*cifar100n needs CIFAR-100_human\.pt"):
        inject_noise(clean100, "cifar100n:noisy", 100, cifarn_file=path10)
    with pytest.raises(ValueError, match="cifar100n labels have 100 classes, but num_classes=10"):
        inject_noise(clean10, "cifar100n:noisy", 10, cifarn_file=path100)


def test_cifarn_missing_file(tmp_path):
    y = balanced_labels(100, 10)
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10_human\.pt.*github\.com/UCSC-REAL/cifar-10-100n"):
        inject_noise(y, "cifar10n:worst", 10)
    y100 = balanced_labels(200, 100)
    with pytest.raises(FileNotFoundError, match=r"CIFAR-100_human\.pt; not found at .*nowhere.*UCSC-REAL"):
        inject_noise(y100, "cifar100n:noisy", 100, cifarn_file=tmp_path / "nowhere" / "CIFAR-100_human.pt")
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10_human\.pt"):
        inject_noise(y, "cifar10n:aggre", 10, cifarn_file=tmp_path)  # empty folder

"""ProMix: the pieces on tiny tensors, the official-code switches, presets, robustness and short runs end to end."""

import copy
import dataclasses
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fakedata import write_cifar10, write_cifar100, write_cifarn
from methodtest import CE_SYM40_SEED0_LAST, method_context
from PIL import Image, ImageOps

import lnlkit
from lnlkit.methods.promix import (
    ProMix,
    ProMixConfig,
    class_wise_small_loss_selection,
    debiased_probs,
    label_guessing_by_agreement,
    matched_high_confidence,
    negative_entropy_clamped,
)
from lnlkit.train.augment import RANDOM_AUGMENT_OPS, RandomAugment, _apply_op, cutout_random_size
from lnlkit.train.evaluate import accuracy, predict
from lnlkit.train.loader import stream_numpy_generator
from lnlkit.train.losses import ema_prior, fmix_mask, logit_adjust, negative_entropy

CIFAR_SYNTH = [
    "cifar10-sym20",
    "cifar10-sym50",
    "cifar10-sym80",
    "cifar10-sym90",
    "cifar10-asym40",
    "cifar100-sym20",
    "cifar100-sym50",
    "cifar100-sym80",
    "cifar100-sym90",
]
CIFAR_N = ["cifar10n-aggre", "cifar10n-rand1", "cifar10n-rand2", "cifar10n-rand3", "cifar10n-worst", "cifar100n-noisy"]
PAPER_PRESETS = CIFAR_SYNTH + CIFAR_N


pytestmark = pytest.mark.usefixtures("one_thread")


def _short(**kw):
    """The digits preset cut to one warm-up epoch and SSL epochs (the algorithm's settings unchanged)."""
    kw = {"epochs": 2, "warm_up": 1, "checkpoint_every": 100, **kw}
    return lnlkit.get_method("promix", preset="digits", **kw)


def _step(method, ctx, css, epoch=20, n=64, lga_on=False, w=1.0, beta=0.1):
    loader = ctx.data.loader(n, augment=[method.weak, method.strong], drop_last=True, stream="test")
    batch = next(iter(loader.epoch(epoch)))
    out = method.ssl_step(
        ctx, batch, css(batch), w, beta, lga_on, stream_numpy_generator(0, epoch, "t"), ctx.generator(epoch, "t")
    )
    return batch, out


def _finite_params(method):
    return all(bool(torch.isfinite(p).all()) for net in method.networks() for p in net.parameters())


# ---------------------------------------------------------------------------------------------- CSS / MHCS / LGA
def test_css_balanced_quota_takes_the_smallest_losses_per_class():
    labels = np.array([0] * 10 + [1] * 4 + [2] * 6)
    losses = np.random.default_rng(0).random(20)
    mask = class_wise_small_loss_selection(losses, labels, rho=0.5, num_classes=4)  # class 3 is empty
    quota = math.ceil(0.5 * 20 / 4)  # 3: the balanced size N/C, not |S_j|
    for j, size in ((0, 10), (1, 4), (2, 6)):
        idx = np.flatnonzero(labels == j)
        assert mask[idx].sum() == min(quota, size)
        chosen = idx[mask[idx]]
        assert losses[chosen].max() < np.delete(losses[idx], np.flatnonzero(mask[idx])).min()
    # a tiny rho still keeps one sample per non-empty class; rho = 1 keeps min(⌈N/C⌉, |S_j|)
    assert class_wise_small_loss_selection(losses, labels, 0.0, 4).sum() == 3
    assert class_wise_small_loss_selection(losses, labels, 1.0, 4).sum() == 5 + 4 + 5
    # the ranking is what matters: min-max normalised losses select the same samples
    norm = (losses - losses.min()) / np.ptp(losses)
    np.testing.assert_array_equal(class_wise_small_loss_selection(norm, labels, 0.5, 4), mask)


def test_css_per_class_quota_and_errors():
    labels = np.array([0] * 10 + [1] * 4)
    losses = np.arange(14, dtype=float)[::-1]
    mask = class_wise_small_loss_selection(losses, labels, 0.5, 2, quota="per_class")
    assert mask[:10].sum() == 5 and mask[10:].sum() == 2  # ⌈ρ·|S_j|⌉
    assert mask[5:10].all() and mask[12:].all()  # the smallest losses (the list is descending)
    assert class_wise_small_loss_selection(losses, labels, 0.5, 2).tolist().count(True) == 4 + 4  # balanced: ⌈7/2⌉=4
    with pytest.raises(ValueError, match="quota"):
        class_wise_small_loss_selection(losses, labels, 0.5, 2, quota="global")
    with pytest.raises(ValueError, match="rho"):
        class_wise_small_loss_selection(losses, labels, 1.5, 2)


def test_mhcs_is_probability_of_the_given_label_above_tau():
    probs = torch.tensor([[0.995, 0.005], [0.6, 0.4], [0.2, 0.8], [0.999, 0.001]])
    labels = torch.tensor([0, 0, 1, 1])
    assert matched_high_confidence(probs, labels, 0.99).tolist() == [True, False, False, False]
    assert matched_high_confidence(probs, labels, 0.5).tolist() == [True, True, True, False]
    assert matched_high_confidence(probs, labels, 0.995).tolist() == [False, False, False, False]  # strict


def test_lga_adds_only_agreeing_confident_samples_up_to_the_cap():
    b = 10
    pa = torch.full((b, 3), 0.005)
    pb = pa.clone()
    conf = torch.tensor([0.99, 0.995, 0.999, 0.992, 0.5, 0.999, 0.999, 0.999, 0.999, 0.999])
    pa[:, 0], pb[:, 0] = conf, conf
    pb[3, 0], pb[3, 1] = 0.005, 0.99  # sample 3: the networks disagree
    pa[4, 0], pb[4, 0] = 0.5, 0.5  # sample 4: not confident
    selected = torch.tensor([False] * 5 + [True] * 5)
    added = label_guessing_by_agreement(pa, pb, selected, tau=0.98, threshold=0.9)
    # cap = ⌊0.9·10⌋ − 5 = 4; candidates 0, 1, 2 (3 disagrees, 4 is unsure) -> all three, never a selected one
    assert added.tolist() == [True, True, True] + [False] * 7
    added = label_guessing_by_agreement(pa, pb, torch.tensor([False] * 3 + [True] * 7), tau=0.98)
    # cap = 9 − 7 = 2 but no candidate left among 0..2? all three are candidates: the two most confident win
    assert added.tolist() == [False, True, True] + [False] * 7
    full = torch.tensor([False] + [True] * 9)  # |L|/B = 0.9 >= threshold: nothing added
    assert not label_guessing_by_agreement(pa, pb, full, tau=0.98).any()
    assert not label_guessing_by_agreement(pa[:0], pb[:0], selected[:0], tau=0.98).any()


def test_logit_adjustment_and_debiased_pseudo_labels():
    z = torch.tensor([[1.0, 2.0, 0.5]])
    prior = torch.tensor([0.5, 0.3, 0.2])
    torch.testing.assert_close(logit_adjust(z, prior, 0.8), z + 0.8 * prior.log())
    q = debiased_probs(z, prior, 0.8)
    torch.testing.assert_close(q, torch.softmax(z - 0.8 * prior.log(), 1))
    assert q[0, 2] > torch.softmax(z, 1)[0, 2]  # the rare class gains
    torch.testing.assert_close(debiased_probs(z, torch.full((3,), 1 / 3), 0.8), torch.softmax(z, 1))


def test_ema_prior_stays_on_the_simplex_and_ignores_empty_sets():
    prior = torch.full((4,), 0.25)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        probs = torch.rand(8, 4, generator=g).softmax(1)
        new = ema_prior(prior, probs, 0.9)
        torch.testing.assert_close(new, 0.9 * prior + 0.1 * probs.mean(0))
        prior = new
        assert abs(float(prior.sum()) - 1.0) < 1e-5 and bool((prior > 0).all())
    assert ema_prior(prior, torch.empty(0, 4), 0.9) is prior
    with pytest.raises(ValueError):
        ema_prior(prior, probs, 1.5)


def test_fmix_mask_is_hard_with_the_right_area_and_low_frequency():
    g = torch.Generator().manual_seed(0)
    for lam in (0.0, 0.3, 0.71, 1.0):
        m = fmix_mask(lam, (32, 32), 3.0, g)
        assert m.shape == (32, 32) and set(m.unique().tolist()) <= {0.0, 1.0}
        assert int(m.sum()) == round(lam * 1024)
    m = fmix_mask(0.5, (32, 32), 3.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(m, fmix_mask(0.5, (32, 32), 3.0, torch.Generator().manual_seed(1)))
    # a blob, not salt and pepper: most horizontal neighbours agree (about half would for random pixels)
    assert float((m[:, 1:] == m[:, :-1]).float().mean()) > 0.85
    with pytest.raises(ValueError):
        fmix_mask(1.5, (4, 4))


# ---------------------------------------------------------------------------------------------- strong view
def _pil_op(img: Image.Image, name: str) -> Image.Image:
    return {"Equalize": ImageOps.equalize, "AutoContrast": ImageOps.autocontrast}[name](img)


@pytest.mark.parametrize("name", ["Equalize", "AutoContrast"])
def test_histogram_ops_match_pil(name):
    rng = np.random.default_rng(0)
    arr = (rng.beta(2, 5, size=(12, 12, 3)) * 200 + 20).astype(np.uint8)  # a skewed, low-contrast image
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    ours = (_apply_op(name, x, torch.zeros(1))[0].permute(1, 2, 0) * 255).round().numpy()
    ref = np.asarray(_pil_op(Image.fromarray(arr), name)).astype(float)
    assert np.abs(ours - ref).max() <= 1.0


def test_pixel_ops_follow_their_definitions():
    x = torch.rand(3, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    v = torch.tensor([0.5, 0.05, 0.95])
    torch.testing.assert_close(_apply_op("Brightness", x, v), x * v.view(-1, 1, 1, 1))
    sol = _apply_op("Solarize", x, torch.tensor([0.0, 128.0, 256.0]))
    torch.testing.assert_close(sol[0], 1 - x[0])
    torch.testing.assert_close(sol[2], x[2])
    post = _apply_op("Posterize", x, torch.tensor([4.0, 5.5, 7.9]))
    levels = (post * 255).round()
    assert bool((levels[0] % 16 == 0).all()) and bool((levels[1] % 8 == 0).all()) and bool((levels[2] % 2 == 0).all())
    ident = _apply_op("Rotate", x, torch.zeros(3))
    torch.testing.assert_close(ident, x)  # a zero rotation is the identity (nearest sampling on the pixel grid)
    moved = _apply_op("TranslateX", x, torch.full((3,), 0.34))
    assert bool((moved[..., -2:] == 0).all())  # shifted by 2 pixels: black comes in from the border


def test_cutout_random_size_bounds_and_fill():
    x = torch.ones(200, 3, 16, 16)
    out = cutout_random_size(x, 0.5, torch.tensor([0.2, 0.3, 0.4]), torch.Generator().manual_seed(0))
    cut = out[:, 0] != 1.0
    assert int(cut.sum((1, 2)).max()) <= 8 * 8 and cut.any()
    assert bool((out[:, 1][cut] == 0.3).all())
    assert torch.equal(cutout_random_size(x, 0.0, 0.0), x)


def test_random_augment_is_deterministic_on_normalised_batches():
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.247, 0.243, 0.261])
    raw = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = (raw - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    aug = RandomAugment(mean, std)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(2)))
    back = a * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    assert float(back.min()) >= -1e-5 and float(back.max()) <= 1 + 1e-5  # stays a valid image
    none = RandomAugment(mean, std, n_ops=0, cutout_max_fraction=0.0)
    torch.testing.assert_close(none(x, torch.Generator()), x, atol=1e-5, rtol=0)
    assert len(RANDOM_AUGMENT_OPS) == 14
    with pytest.raises(ValueError):
        RandomAugment(mean, std, n_ops=-1)


# ---------------------------------------------------------------------------------------------- schedules
def test_schedules_of_the_official_code():
    m = lnlkit.get_method("promix", preset="cifar10-sym50")
    assert m.num_epochs() == 601 and m.phase(9) == "warmup" and m.phase(10) == "ssl"
    assert m.learning_rate(0) == pytest.approx(0.05) and m.learning_rate(600) == pytest.approx(5e-5)
    assert m.learning_rate(300) == pytest.approx(5e-5 + (0.05 - 5e-5) / 2)
    assert m.ramp(10) == pytest.approx(0.2) and m.ramp(50) == 1.0 and m.ramp(0) == 0.0  # counts the warm-up
    assert lnlkit.get_method("promix", preset="cifar100-sym50").ramp(30) == pytest.approx(0.6)
    assert m.unlabelled_weight(50) == pytest.approx(0.05) and m.unlabelled_weight(99) == pytest.approx(0.099)
    assert m.unlabelled_weight(100) == 0.0 and m.unlabelled_weight(400) == 0.0
    assert not m.lga_active(350) and m.lga_active(351) and m.lga_active(600)
    assert m.selection_ratio(0) == m.selection_ratio(600) == 0.5  # rho_start = rho_end
    ramped = lnlkit.get_method("promix", rho=0.8, rho_end=0.4)
    assert ramped.selection_ratio(25) == pytest.approx(0.6)


def _official_beta(epoch, warmup_ep, debias_pl):
    """``Train_promix.py``'s λ_u, written out: ``0.1·linear_rampup2(e, 2·warmup_ep)`` if ``debias_pl`` else 1, then
    zeroed from ``e >= 2·warmup_ep`` while it is below 1."""
    beta = 0.1 * min(epoch / (2 * warmup_ep), 1.0) if debias_pl else 1.0
    return 0.0 if (epoch >= 2 * warmup_ep and beta < 1) else beta


def test_beta_is_one_for_the_whole_run_without_pseudo_label_debiasing():
    m = lnlkit.get_method("promix", preset="cifar10-sym50", debias_pl=0.0)
    assert [m.unlabelled_weight(e) for e in (0, 5, 99, 100, 300, 600)] == [1.0] * 6


@pytest.mark.parametrize(
    "epochs, rampup, debias_pl",
    [(600, 50.0, 0.8), (300, 50.0, 0.5), (300, 20.0, 0.8), (120, 7.0, 0.8), (300, 20.0, 0.0)],
)
def test_lga_window_and_beta_follow_the_run_length(epochs, rampup, debias_pl):
    m = lnlkit.get_method("promix", preset="cifar10-sym50", epochs=epochs, rampup_length=rampup, debias_pl=debias_pl)
    for e in range(epochs + 1):
        assert m.unlabelled_weight(e) == pytest.approx(_official_beta(e, rampup, debias_pl), abs=1e-12), e
        assert m.lga_active(e) == (e > epochs - 250), e  # the official start_expand = 250: the last 250 epochs
    assert m.lga_active(epochs)  # e.g. --epochs 300 still runs LGA (from epoch 51 on)


# ---------------------------------------------------------------------------------------------- switches
@pytest.mark.parametrize("off", [True, False])
def test_switch_pseudo_head_unlabelled_off(off):
    m = lnlkit.get_method("promix", pseudo_head_unlabeled_off=off)
    assert m.unlabelled_weight(99) == pytest.approx(0.099)
    assert m.unlabelled_weight(100) == (0.0 if off else pytest.approx(0.1))
    assert m.unlabelled_weight(500) == (0.0 if off else pytest.approx(0.1))
    custom = lnlkit.get_method("promix", pseudo_head_unlabeled_off=off, pl_rampup=30.0)
    assert custom.unlabelled_weight(15) == pytest.approx(0.05)
    assert custom.unlabelled_weight(30) == (0.0 if off else pytest.approx(0.1))


@pytest.mark.parametrize("start_expand", [250, 100, None])
def test_switch_start_expand(start_expand):
    m = lnlkit.get_method("promix", start_expand=start_expand)
    first = None if start_expand is None else 600 - start_expand + 1
    assert [m.lga_active(e) for e in range(601)] == [first is not None and e >= first for e in range(601)]


@pytest.mark.parametrize("fixed", [True, False])
def test_switch_negentropy_clamp(small_digits, fixed):
    z = torch.tensor([[-2.0, 1.0, 0.5], [3.0, -1.0, -1.0]])
    p = z.softmax(1)
    torch.testing.assert_close(negative_entropy(z), (p * p.log()).sum(1).mean())
    pc = z.clamp_min(1e-12).softmax(1)
    torch.testing.assert_close(negative_entropy_clamped(z), (pc * pc.log()).sum(1).mean())
    assert not torch.isclose(negative_entropy(z), negative_entropy_clamped(z))
    # the warm-up adds the chosen penalty under asymmetric noise
    method = _short(asym_penalty=True, fix_negentropy_clamp=fixed)
    ctx = method_context(method, small_digits.with_noise("pairflip:0.4", seed=0))
    calls = []
    import lnlkit.methods.promix as pm

    real = {"negative_entropy": pm.negative_entropy, "negative_entropy_clamped": pm.negative_entropy_clamped}
    for name, fn in real.items():
        setattr(pm, name, lambda logits, fn=fn, name=name: calls.append(name) or fn(logits))
    try:
        record, _ = method.warm_up(ctx, 0)
    finally:
        for name, fn in real.items():
            setattr(pm, name, fn)
    assert set(calls) == {"negative_entropy" if fixed else "negative_entropy_clamped"}
    assert len(calls) == 2 * record["steps"] and math.isfinite(record["penalty"]) and record["penalty"] < 0


@pytest.mark.parametrize("quota", ["balanced", "per_class"])
def test_switch_css_quota(small_digits, quota):
    method = _short(css_quota=quota)
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    ctx = method_context(method, noisy)
    mask, loss, score = method.css(ctx, 5, 0)
    counts = np.bincount(noisy.labels[mask], minlength=10)
    sizes = np.bincount(noisy.labels, minlength=10)
    expected = np.minimum(math.ceil(0.5 * 400 / 10) if quota == "balanced" else np.ceil(0.5 * sizes), sizes)
    np.testing.assert_array_equal(counts, expected)
    assert loss.min() == 0.0 and loss.max() == 1.0 and ((score >= 0) & (score <= 1)).all()


@pytest.mark.parametrize("after", [None, 3])
def test_switch_css_partition_from_predictions(small_digits, after):
    method = _short(css_partition_from_predictions_after_epoch=after)
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    ctx = method_context(method, noisy)
    pred = torch.as_tensor((noisy.labels + 1) % 10)  # predictions that disagree with every given label
    losses = np.random.default_rng(0).random(400).astype(np.float32)
    method.per_sample_losses = lambda ctx, net: (losses, np.zeros(400, np.float32), pred)
    for epoch in (2, 3):
        mask, _, _ = method.css(ctx, epoch, 0)
        by_pred = after is not None and epoch >= after
        part = pred.numpy() if by_pred else noisy.labels
        np.testing.assert_array_equal(mask, class_wise_small_loss_selection(losses, part, 0.5, 10))


# ---------------------------------------------------------------------------------------------- one SSL step
def test_ssl_step_selection_targets_and_priors(small_digits):
    method = _short(tau=0.0, lga_threshold=0.9)  # tau 0: every sample passes MHCS
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    prior_u = method.prior_u.clone()
    batch, out = _step(method, ctx, lambda b: torch.zeros(2, len(b.y), dtype=torch.bool))
    assert out["mhcs"].all() and not out["lga"].any()
    assert torch.equal(out["target"][0], batch.y) and torch.equal(out["target"][1], batch.y)
    assert torch.equal(method.prior_u, prior_u)  # empty unselected set: prior untouched (no NaN)
    assert float(out["losses"]["loss_u"]) == 0.0 and _finite_params(method)
    assert torch.allclose(method.prior.sum(1), torch.ones(2)) and not torch.equal(method.prior, prior_u)


def test_lga_targets_are_the_networks_debiased_prediction(small_digits):
    method = _short(tau=0.0)  # tau 0: every unselected sample is an LGA candidate when the networks agree
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    import lnlkit.methods.promix as pm

    real = pm.matched_high_confidence
    pm.matched_high_confidence = lambda probs, labels, tau: torch.zeros(len(labels), dtype=torch.bool)  # no MHCS
    try:
        css = lambda b: (torch.arange(len(b.y)) < 16).expand(2, -1).clone()  # noqa: E731  the first 16 selected
        method.prior[0] = torch.linspace(1, 2, 10) / torch.linspace(1, 2, 10).sum()
        prior = method.prior.clone()
        batch, out = _step(method, ctx, css, lga_on=True)
    finally:
        pm.matched_high_confidence = real
    cap = math.floor(0.9 * 64) - 16
    for k in range(2):
        assert 0 < int(out["lga"][k].sum()) <= cap and not out["lga"][k, :16].any()
    # targets: the given label for the selected samples, -1 outside the clean set and LGA (the LGA targets
    # themselves are pinned by test_ssl_step_terms_match_the_official_formulas)
    t = out["target"][0]
    assert torch.equal(t[:16], batch.y[:16])
    assert bool((t[~(out["lga"][0] | (torch.arange(64) < 16))] == -1).all())
    assert not torch.equal(method.prior, prior)


# ---------------------------------------------------------------------------------------------- the step, term by term
class _TwoHeadLinear(torch.nn.Module):
    """A linear network with ProMix's two heads on the flattened image: the step's terms can be written out."""

    def __init__(self, d, c, gen):
        super().__init__()
        self.fc = torch.nn.Linear(d, c)
        self.pseudo_head = torch.nn.Linear(d, c)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)

    def forward_heads(self, x):
        f = x.flatten(1)
        return self.fc(f), self.pseudo_head(f), f


# plain primary-head logits on the weak view, per sample: (net 1, net 2), C = 4.  "sure c" gives class c
# p = e^8 / (e^8 + 3) = 0.999 > τ, "unsure c" p = e^3 / (e^3 + 3) = 0.87 < τ (τ = 0.99)
def _sure(c, v=8.0):
    z = [0.0] * 4
    z[c] = v
    return z


def _unsure(c):
    return _sure(c, 3.0)


_CASES = [  # (given label, net-1 logits, net-2 logits)
    (0, _sure(0), _sure(0)),
    (1, _sure(1), _sure(1)),
    (2, _sure(2), _sure(2)),
    (3, _sure(3), _sure(3)),  # MHCS both
    (1, _sure(1), _unsure(1)),  # 4: MHCS of net 1 only
    (2, _unsure(2), _sure(2)),  # 5: MHCS of net 2 only
    (0, _sure(1, 8.0), _sure(1, 8.5)),
    (1, _sure(2, 9.0), _sure(2, 9.5)),  # 6, 7: noisy, both sure of another class
    (2, _sure(3, 10.0), _sure(3, 10.0)),
    (3, _sure(0, 7.0), _sure(0, 7.5)),  # 8, 9: LGA candidates, ranked
    # 10: noisy (given 2), both sure of class 0 (p = 0.9933) with class 1 second; net 1's skewed prior π_1 turns its
    # debiased guess to class 1: LGA target 1, plain argmax 0, given label 2 all differ
    (2, [8.0, 3.0, -4.0, -4.0], [8.0, 3.0, -4.0, -4.0]),
    (0, _sure(1), _sure(2)),  # 11: noisy, the networks disagree: never LGA
    (3, _unsure(0), _unsure(1)),
    (0, _unsure(2), _unsure(3)),
    (1, _unsure(3), _unsure(0)),
    (2, _unsure(1), _unsure(1)),
]
_CSS = [[0, 1, 12], [2, 3, 11, 12, 13, 14, 15]]  # each network's CSS picks (12-15: noisy samples CSS let through)


def _ce_soft(z, t):
    return -(t * z.log_softmax(1)).sum(1).mean()


def _expected_step(nets, x_w, x_s, y, css, prior, prior_u, draws, cfg, w, beta):
    """ProMix's SSL iteration written out from the paper and the official ``Train_promix.py`` (own arithmetic, no
    lnlkit helper): selections, targets, every loss term, the total and the updated priors."""
    b, c = len(y), prior.shape[1]
    given = torch.nn.functional.one_hot(y, c).float()
    heads_w = [net.forward_heads(x_w) for net in nets]
    heads_s = [net.forward_heads(x_s) for net in nets]
    p = [h[0].detach().softmax(1) for h in heads_w]
    conf = [pk.max(1).values for pk in p]
    agree = p[0].argmax(1) == p[1].argmax(1)
    exp = {"mhcs": [], "lga": [], "target": [], "terms": [], "prior": [], "prior_u": []}
    total = 0.0
    for k in range(2):
        mhcs = p[k][torch.arange(b), y] > cfg.tau
        base = css[k] | mhcs
        lga = torch.zeros(b, dtype=torch.bool)
        if base.sum() / b < cfg.lga_threshold:
            cand = [i for i in range(b) if not base[i] and conf[0][i] > cfg.tau and conf[1][i] > cfg.tau and agree[i]]
            cand.sort(key=lambda i: -float(conf[0][i] + conf[1][i]) / 2)
            lga[cand[: int(cfg.lga_threshold * b) - int(base.sum())]] = True
        sel = base | lga
        guess = (heads_w[k][0].detach() - cfg.debias_pl * prior[k].log()).softmax(1).argmax(1)
        target = torch.where(base[:, None], given, torch.nn.functional.one_hot(guess, c).float())
        t = target[sel]
        la = lambda z, pi: z + cfg.debias_output * pi.log()  # noqa: E731  logit adjustment
        terms = {}
        for h, head in ((0, "primary"), (1, "pseudo")):
            d = draws[k][head]
            ce = _ce_soft(la(heads_w[k][h][sel], prior[k]), t)
            cr = _ce_soft(la(heads_s[k][h][sel], prior[k]), t)  # the strong view
            xl = x_w[sel]
            lam, perm = d["lam"], d["perm"]
            mixed = nets[k].forward_heads(lam * xl + (1 - lam) * xl[perm])[h]
            mix = _ce_soft(la(mixed, prior[k]), lam * t + (1 - lam) * t[perm])
            lf, m, pf = d["lam_fmix"], d["mask"], d["perm_fmix"]
            zf = la(nets[k].forward_heads(m * xl + (1 - m) * xl[pf])[h], prior[k])
            yt = t.argmax(1)
            fmix = lf * _ce_soft(zf, given_of(yt, c)) + (1 - lf) * _ce_soft(zf, given_of(yt[pf], c))
            terms[head] = {"ce": ce, "cr": cr, "mix": mix, "fmix": fmix}
            total = total + ce + w * (cr + mix + fmix)
        u = ~sel
        q = (heads_w[k][0].detach() - cfg.debias_pl * prior_u[k].log()).softmax(1)[u]  # debiased with π_k,u
        r = q ** (1 / cfg.temperature)
        r = r / r.sum(1, keepdim=True)
        l_u = _ce_soft(heads_w[k][1][u] + cfg.debias_output * prior_u[k].log(), r) + w * _ce_soft(
            heads_s[k][1][u] + cfg.debias_output * prior_u[k].log(), r
        )
        terms["unlabelled"] = l_u
        total = total + beta * l_u
        for key, val in (
            ("mhcs", mhcs),
            ("lga", lga),
            ("target", torch.where(sel, target.argmax(1), -1)),
            ("terms", terms),
            ("prior", cfg.bias_m * prior[k] + (1 - cfg.bias_m) * p[k][sel].mean(0)),
            ("prior_u", cfg.bias_m * prior_u[k] + (1 - cfg.bias_m) * p[k][u].mean(0)),
        ):
            exp[key].append(val)
    exp["total"] = total
    return exp


def given_of(labels, c):
    return torch.nn.functional.one_hot(labels, c).float()


def test_ssl_step_terms_match_the_official_formulas():
    c, b, w, beta = 4, len(_CASES), 0.6, 0.07
    method = lnlkit.get_method("promix", preset="digits", tau=0.99, bias_m=0.9)
    cfg = method.config
    gen = torch.Generator().manual_seed(0)
    nets = [_TwoHeadLinear(16, c, gen) for _ in range(2)]
    # inputs that give each network exactly the designed weak-view logits (the two heads see the same 16 pixels)
    y = torch.tensor([case[0] for case in _CASES])
    z = torch.tensor([case[1] + case[2] for case in _CASES], dtype=torch.float64)  # (B, 2C)
    wcat = torch.cat([nets[0].fc.weight, nets[1].fc.weight]).double()
    bcat = torch.cat([nets[0].fc.bias, nets[1].fc.bias]).double()
    x_w = (torch.linalg.pinv(wcat) @ (z - bcat).T).T.float().reshape(b, 1, 4, 4).detach()
    x_s = x_w + torch.randn(x_w.shape, generator=gen)  # a different (strong) view
    css = torch.zeros(2, b, dtype=torch.bool)
    for k in range(2):
        css[k, _CSS[k]] = True
    prior = torch.tensor([[0.997, 0.001, 0.001, 0.001], [0.4, 0.3, 0.2, 0.1]])
    prior_u = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.05, 0.6, 0.1]])
    method.nets = nets
    method.optimizer = torch.optim.SGD(
        [p for n in nets for p in n.parameters()], lr=0.1, momentum=0.9, weight_decay=5e-4
    )
    method.prior, method.prior_u = prior.clone(), prior_u.clone()
    before = [copy.deepcopy(n) for n in nets]
    ctx = SimpleNamespace(num_classes=c, device=torch.device("cpu"))
    batch = SimpleNamespace(views=(x_w, x_s), y=y, index=torch.arange(b))
    out = method.ssl_step(ctx, batch, css, w, beta, True, np.random.default_rng(0), torch.Generator().manual_seed(1))

    draws = [{head: out["terms"][k][head]["draws"] for head in ("primary", "pseudo")} for k in range(2)]
    for k in range(2):
        for head in ("primary", "pseudo"):
            d = draws[k][head]
            n_sel = len(d["perm"])
            assert d["lam"] >= 0.5 and sorted(d["perm"].tolist()) == list(range(n_sel))  # folded λ, a permutation
            assert int(d["mask"].sum()) == round(d["lam_fmix"] * 16) and set(d["mask"].unique().tolist()) <= {0.0, 1.0}
    exp = _expected_step(before, x_w, x_s, y, css, prior, prior_u, draws, cfg, w, beta)

    # the designed selections came out (the premises of the comparisons below)
    assert exp["mhcs"][0][4] and not exp["mhcs"][1][4] and exp["mhcs"][1][5] and not exp["mhcs"][0][5]
    assert exp["lga"][0][[6, 7, 8, 9, 10]].all() and int(exp["lga"][1].sum()) == 14 - 10  # net 2: capped at 4
    assert exp["target"][0][10] == 1 and exp["target"][0][6] == 1 and not exp["lga"][1][10]
    for k in range(2):
        assert torch.equal(out["mhcs"][k], exp["mhcs"][k]), k
        assert torch.equal(out["lga"][k], exp["lga"][k]), k
        assert torch.equal(out["target"][k], exp["target"][k]), k
        for head in ("primary", "pseudo"):
            for term in ("ce", "cr", "mix", "fmix"):
                torch.testing.assert_close(
                    out["terms"][k][head][term], exp["terms"][k][head][term].detach(), msg=f"net {k + 1} {head} {term}"
                )
        torch.testing.assert_close(out["terms"][k]["unlabelled"], exp["terms"][k]["unlabelled"].detach())
        torch.testing.assert_close(method.prior[k], exp["prior"][k])
        torch.testing.assert_close(method.prior_u[k], exp["prior_u"][k])
    torch.testing.assert_close(out["losses"]["loss"], exp["total"].detach())
    # one SGD step on the gradient of that total (first step: the momentum buffer is the gradient + weight decay)
    exp["total"].backward()
    for new, old in zip((p for n in nets for p in n.parameters()), (p for n in before for p in n.parameters())):
        torch.testing.assert_close(new.detach(), old.detach() - 0.1 * (old.grad + 5e-4 * old.detach()))


@pytest.mark.parametrize("epoch", [1, 2])
def test_ssl_epoch_feeds_each_step_the_schedules_and_its_networks_css(small_digits, epoch):
    method = _short(epochs=3, start_expand=2)  # digits: w ramp 5 epochs, so β ramps over 10; LGA for e > 1
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    css = np.stack([method.css(ctx, epoch, k)[0] for k in range(2)])  # what each network's CSS picks this epoch
    assert (css[0] != css[1]).any()  # the networks differ, so a swap would show
    seen = []
    real = method.ssl_step

    def spy(ctx, batch, css_batch, w, beta, lga_on, rng, gen):
        seen.append((batch.index.clone(), css_batch.clone(), w, beta, lga_on))
        return real(ctx, batch, css_batch, w, beta, lga_on, rng, gen)

    method.ssl_step = spy
    record, signals = method.ssl_epoch(ctx, epoch)
    assert len(seen) == record["steps"] == 400 // 128
    for index, css_batch, w, beta, lga_on in seen:
        assert torch.equal(css_batch, torch.as_tensor(css[:, index.numpy()]))
        assert w == pytest.approx(min(epoch / 5, 1.0)) and lga_on == (epoch > 1)
        assert beta == pytest.approx(_official_beta(epoch, 5.0, 0.8))
    np.testing.assert_array_equal(signals["selected_css"], css[0])
    np.testing.assert_array_equal(signals["selected_css_net2"], css[1])


# ---------------------------------------------------------------------------------------------- presets
def test_presets_follow_the_spec_table():
    for name in PAPER_PRESETS + ["digits"]:
        assert name in ProMix.PRESETS, name
        build = ProMix.PRESETS[name]
        cfg = build()
        cfg.validate()
        assert isinstance(cfg, ProMixConfig), name
        if name != "digits":  # the docstring states the preset's own values
            assert f"rho {cfg.rho:g}" in build.__doc__ and f"tau {cfg.tau:g}" in build.__doc__, name
    table = {  # setting: (rho, tau, warm-up, α, β_pl)
        "cifar10-sym20": (0.7, 0.99, 10, 0.8, 0.8),
        "cifar10-sym50": (0.5, 0.99, 10, 0.8, 0.8),
        "cifar10-asym40": (0.5, 0.99, 10, 0.8, 0.8),
        "cifar100-sym20": (0.7, 0.95, 30, 0.5, 0.5),
        "cifar100-sym50": (0.5, 0.95, 30, 0.5, 0.5),
        "cifar10n-worst": (0.5, 0.99, 10, 0.8, 0.8),
        "cifar10n-aggre": (0.5, 0.99, 10, 0.8, 0.8),
        "cifar100n-noisy": (0.5, 0.95, 30, 0.5, 0.5),
    }
    for name, values in table.items():
        c = ProMix.PRESETS[name]()
        assert (c.rho, c.tau, c.warm_up, c.debias_output, c.debias_pl) == values, name
        assert (c.model, c.epochs, c.batch_size, c.lr, c.rampup_length, c.start_expand, c.bias_m) == (
            "resnet18",
            600,
            256,
            0.05,
            50.0,
            250,
            0.9999,
        )
        assert (c.pl_weight, c.pl_rampup, c.pseudo_head_unlabeled_off) == (0.1, None, True)
        assert c.asym_penalty == (name == "cifar10-asym40")
        assert c.augment_order == ("crop_flip" if name.startswith("cifar100") else "flip_crop")
    for name in ("cifar10-sym80", "cifar10-sym90", "cifar100-sym80", "cifar100-sym90"):
        assert "NOT PUBLISHED" in ProMix.PRESETS[name].__doc__, name
    assert "UNVERIFIED" in ProMix.PRESETS["cifar10n-rand2"].__doc__
    # the digits preset only changes scale: the algorithm's constants are CIFAR-10 sym 50%'s
    d, c = ProMix.PRESETS["digits"](), ProMix.PRESETS["cifar10-sym50"]()
    for key in (
        "rho",
        "tau",
        "debias_output",
        "debias_pl",
        "temperature",
        "lga_threshold",
        "mixup_alpha",
        "fmix_alpha",
        "fmix_decay_power",
        "pl_weight",
        "lr",
        "min_lr_factor",
        "css_quota",
        "fix_negentropy_clamp",
    ):
        assert getattr(d, key) == getattr(c, key), key
    assert d.start_expand / d.epochs == pytest.approx(c.start_expand / c.epochs, abs=0.01)
    # the notebook's switch comparison: digits plus the warm-up penalty, intended and as officially coded
    fixed, faithful = ProMix.PRESETS["digits-penalty"](), ProMix.PRESETS["digits-penalty-faithful"]()
    assert (
        fixed.asym_penalty
        and faithful.asym_penalty
        and fixed.fix_negentropy_clamp
        and not faithful.fix_negentropy_clamp
    )
    assert dataclasses.replace(fixed, asym_penalty=False) == d
    digits = lnlkit.get_method("promix", preset="digits")
    assert digits.unlabelled_ramp_length() / d.epochs == pytest.approx(1 / 6)  # 10 of 60, as 100 of 600


def _fake_paper_data(preset, root, monkeypatch):
    monkeypatch.delenv("LNLKIT_CIFARN_DIR", raising=False)
    s = ProMix.SETTINGS[preset]
    if s["dataset"] == "cifar10":
        write_cifar10(root, per_batch=2, n_test=2)
    else:
        write_cifar100(root, n_train=10, n_test=2)
    ds = lnlkit.load_dataset(s["dataset"], root=root, normalization="promix")
    if s["noise"].startswith("cifar"):
        write_cifarn(
            root / ("CIFAR-100_human.pt" if "100" in s["noise"] else "CIFAR-10_human.pt"),
            ds.y_train,
            "100" in s["noise"],
        )
    return ds.with_noise(s["noise"], seed=0)


def _check_short_paper_run(run):
    assert run.complete and [r["phase"] for r in run.history] == ["warmup", "ssl"]
    last = run.history[-1]
    assert last["steps"] == 2 and last["lga_active"] and {"test_acc_net2", "test_acc_ap_net1", "loss_fmix"} <= set(last)
    assert run.signals["selected_css"].shape == (1, 10) and math.isfinite(last["loss"])


def test_paper_preset_with_its_resnet18(tmp_path, monkeypatch):
    data = _fake_paper_data("cifar10-asym40", tmp_path / "data", monkeypatch)
    method = lnlkit.get_method(
        "promix",
        preset="cifar10-asym40",
        epochs=1,
        warm_up=1,
        batch_size=4,
        eval_batch_size=16,
        start_expand=1,
        record_train_loss=False,
        checkpoint_every=100,
    )
    run = method.fit(data, out=tmp_path / "r", progress=False)
    _check_short_paper_run(run)
    assert run.config["hyperparameters"]["model"] == "resnet18" and math.isfinite(run.history[0]["penalty"])
    assert all(net.has_second_head for net in method.nets)


# ---------------------------------------------------------------------------------------------- end to end
def test_run_records_the_three_selections_and_acc_mean(small_digits, tmp_path):
    run = _short(epochs=3, start_expand=2).fit(
        small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    method_batch = run.config["hyperparameters"]["batch_size"]
    hist, sig = run.history, run.signals
    assert [r["phase"] for r in hist] == ["warmup", "ssl", "ssl", "ssl"]
    assert not hist[1]["lga_active"] and hist[2]["lga_active"]
    for key in (
        "selected",
        "selected_css",
        "selected_mhcs",
        "guessed_lga",
        "relabel",
        "loss",
        "score",
        "selected_net2",
        "loss_net2",
        "clean_score",
        "clean_score_net2",
    ):
        assert sig[key].shape == (4, 400), key
    for row in (1, 2, 3):
        sel, css = (sig[k][row].astype(bool) for k in ("selected", "selected_css"))
        relabel = sig["relabel"][row].astype(int)
        lga = sig["guessed_lga"][row].astype(bool)
        # the primary head's target: the given label in the clean set, -1 outside it and outside LGA; CSS samples
        # that drop_last left out of this epoch's batches were never trained on (-1 too)
        unseen = relabel == -1
        assert not (lga & sel).any() and (relabel[sel & ~unseen] == run.labels[sel & ~unseen]).all()
        assert unseen[~(sel | lga)].all() and (sel & unseen).sum() <= 400 % method_batch
        assert hist[row]["n_selected"] == sel.sum() and hist[row]["n_css"] == css.sum()
        # clean_score (higher = cleaner) is what CSS ranks on: in every given class, each CSS pick scores at least
        # as high as every sample it left out
        score = sig["clean_score"][row].astype(float)
        for j in range(10):
            in_j = run.labels == j
            assert score[in_j & css].min() >= score[in_j & ~css].max(), (row, j)
    assert sig["guessed_lga"][1].sum() == 0  # LGA only once it is active
    assert {"sel_precision", "sel_precision_css", "sel_precision_mhcs", "sel_precision_net2"} <= set(hist[2])
    assert not sig["selected"][0].any()  # no selection in warm-up, only the loss signal
    assert np.isfinite(sig["loss"][0].astype(float)).all()
    assert run.result["reported_as"] == "ensemble_acc_last" and run.result["reported"] == hist[-1]["test_acc"]


def test_acc_mean_is_the_mean_of_the_primary_heads(small_digits):
    method = _short()
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    record = method.evaluate(ctx)
    z = [predict(net, ctx.data, "test") for net in method.nets]
    a = [predict(net, ctx.data, "test", forward=lambda m, x: m.forward_heads(x)[1]) for net in method.nets]
    assert record["test_acc"] == accuracy((z[0] + z[1]) / 2, ctx.data.y_test)
    assert record["test_acc_net2"] == accuracy(z[1], ctx.data.y_test)
    assert record["test_acc_ap_net1"] == accuracy(a[0], ctx.data.y_test)


def _auroc(score, positive):
    """Mann-Whitney AUROC of ``score`` for the ``positive`` samples (ties count one half)."""
    pos, neg = score[positive], score[~positive]
    return float(
        ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    )


def test_promix_on_digits_selects_clean_samples(digits, tmp_path):
    # 6 epochs, seed 0 measured on this kit's CPU runs: precision 0.999, recall 0.82, clean_score AUROC 0.993 / 0.997
    # (seeds 0-2: Acc Mean 94.2 / 96.2 / 97.3).  The bars sit well clear of these, so any processor passes: the
    # selection bars, and the accuracy bar of the acceptance criterion (15 points over CE's last epoch)
    run = lnlkit.get_method("promix", preset="digits", epochs=6, checkpoint_every=100).fit(
        digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    assert run.result["sel_precision"] >= 0.95 and run.result["sel_recall"] >= 0.7, run.result
    assert run.result["reported"] >= CE_SYM40_SEED0_LAST + 15.0, run.result
    clean = ~run.is_noisy  # reporting only
    for key in ("clean_score", "clean_score_net2"):
        assert _auroc(run.signals[key][-1].astype(float), clean) >= 0.95, key


def _cifarn_dir():
    env = os.environ.get("LNLKIT_CIFARN_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data" / "cifar-n").is_dir():
            return parent / "shared" / "data" / "cifar-n"
    return None


def test_cifarn_presets_name_real_label_sets():
    folder = _cifarn_dir()
    if folder is None:
        pytest.skip("CIFAR-N label files not found (set LNLKIT_CIFARN_DIR)")
    from lnlkit.noise import load_cifarn_labels

    for name in CIFAR_N:
        kind, _, key = ProMix.SETTINGS[name]["noise"].partition(":")
        noisy, clean = load_cifarn_labels(folder, key, dataset=kind)
        assert len(noisy) == 50_000 and 0.05 < float(np.mean(noisy != clean)) < 0.45, name

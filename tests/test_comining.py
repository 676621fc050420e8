"""Co-mining: the pieces on tiny tensors, the official-code switches, presets, and short runs end to end."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fakedata import write_web_fg
from methodtest import CE_SYM40_SEED0_LAST, DEFAULT_THREADS, method_context

import lnlkit
from lnlkit.methods.comining import (
    CoMining,
    CoMiningConfig,
    FeatureBank,
    forget_rate,
    forget_rate_from_noise,
    kreciprocal_soft_labels,
    partition,
    relabel_gate,
    symmetric_kl_bits,
    triplet_loss,
)

PAPER_PRESETS = ["cifar10nc", "cifar100nc", "cifar80no", "web-bird", "web-car", "web-aircraft"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _short(**kw):
    """The digits preset cut to one warm-up epoch and one or two main epochs (algorithm unchanged)."""
    kw = {"epochs": 2, "warmup_epochs": 1, "checkpoint_every": 100, "bank_size": 128, **kw}
    return lnlkit.get_method("comining", preset="digits", **kw)


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


# ---------------------------------------------------------------------------------------------- pieces
def test_forget_rate_formula_and_noise_specs():
    assert forget_rate(0.4, 0.2) == pytest.approx(0.52)  # cifar80no, ρ_c = 0.4
    assert forget_rate(0.4) == pytest.approx(0.4) and forget_rate(0.0, 0.0) == 0.0
    for rho in (0.2, 0.5, 0.8):
        assert forget_rate(rho, 0.2) == pytest.approx(0.2 + 0.8 * rho)
    assert forget_rate_from_noise("openset:0.2+symmetric:0.4") == pytest.approx(0.52)
    assert forget_rate_from_noise("pairflip:0.45") == pytest.approx(0.45)
    assert forget_rate_from_noise("none") == 0.0
    assert forget_rate_from_noise("openset:0.2+none") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="forget_rate"):
        forget_rate_from_noise("cifar10n:worst")
    with pytest.raises(ValueError):
        forget_rate(1.2)
    m = lnlkit.get_method("comining", forget_rate=0.25)
    assert m.forget_rate("symmetric:0.8") == 0.25  # a fixed rate (web) wins over the spec
    assert lnlkit.get_method("comining", closeset_ratio=0.5, open_ratio=0.2).forget_rate(None) == pytest.approx(0.6)
    assert lnlkit.get_method("comining", open_ratio=0.5).forget_rate("symmetric:0.2") == pytest.approx(0.6)


def test_symmetric_kl_in_bits():
    p = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.3, 0.7]])
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.7, 0.3]])
    expected = [(a * np.log2(a / b) + b * np.log2(b / a)).sum() for a, b in zip(p.numpy(), q.numpy())]
    torch.testing.assert_close(symmetric_kl_bits(p, q), torch.tensor(expected, dtype=torch.float32))
    assert symmetric_kl_bits(p, q)[0] == 0.0
    # a probability that underflowed to 0: the official unclamped form gives NaN, the clamp keeps it finite
    hard = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert not torch.isfinite(symmetric_kl_bits(*hard, clamp=None)).all()
    assert torch.isfinite(symmetric_kl_bits(*hard, clamp=1e-8)).all()


@pytest.mark.parametrize("relabel_slice", ["faithful", "intended"])
def test_partition_sizes_and_order(relabel_slice):
    score = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 1.0])  # order: 1 5 3 7 2 8 4 6 0 9
    clean, high, cand = partition(score, 0.3, 0.5, relabel_slice)
    assert clean.tolist() == [1, 5, 3, 7, 2, 8, 4]  # ⌊10 · 0.7⌋ = 7 smallest
    assert high.tolist() == [1, 5, 3]  # ⌊7 · 0.5⌋ = 3
    if relabel_slice == "intended":  # the large-score part
        assert cand.tolist() == [6, 0, 9]
    else:  # official: everything but the ⌊10 · 0.3⌋ = 3 smallest (clean samples included)
        assert cand.tolist() == [7, 2, 8, 4, 6, 0, 9]
    # the two slices coincide at r = 0.5; r = 0 leaves no intended candidate but all samples for the official slice
    assert torch.equal(partition(score, 0.5, 0.5, "faithful")[2], partition(score, 0.5, 0.5, "intended")[2])
    assert len(partition(score, 0.0, 0.5, "intended")[2]) == 0 and len(partition(score, 0.0, 0.5, "faithful")[2]) == 10
    # cifar80no's r = 0.52 on a batch of 128: 61 clean, 30 high-confidence
    c, h, d = partition(torch.rand(128, generator=torch.Generator().manual_seed(0)), 0.52, 0.5, relabel_slice)
    assert (len(c), len(h), len(d)) == (61, 30, 67 if relabel_slice == "intended" else 62)
    with pytest.raises(ValueError, match="relabel_slice"):
        partition(score, 0.3, 0.5, "middle")


def _bank_for_triplet():
    # anchor 0 (label 0) along e0; bank: three label-0 entries at decreasing similarity, two label-1 entries
    anchors = _unit([1.0, 0.0, 0.0])
    bank = _unit([1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    labels = torch.tensor([0, 0, 0, 1, 1])
    return anchors, torch.tensor([0]), bank, labels


def test_triplet_faithful_is_zero_at_margin_zero_and_negative_only_otherwise():
    anchors, y, bank, labels = _bank_for_triplet()
    assert triplet_loss(anchors, y, bank, labels, 0.0, (0, 2), (0, 2), "faithful").item() == 0.0
    # with m = 0.4 the positive window holds the zeros of the two other-label entries: s⁺ = 0
    sims = (anchors @ bank.T + 1)[0]
    s_neg = sims[[3, 4]].mean()  # the two negatives (all of them)
    expected = 0.4 * (s_neg - 0.0 + 1)
    torch.testing.assert_close(triplet_loss(anchors, y, bank, labels, 0.4, (0, 2), (0, 2), "faithful"), expected)
    # it does not depend on the positives at all
    moved = bank.clone()
    moved[2] = _unit([0.0, -1.0, 0.0])[0]
    torch.testing.assert_close(triplet_loss(anchors, y, moved, labels, 0.4, (0, 2), (0, 2), "faithful"), expected)


def test_triplet_corrected_uses_the_hardest_positives_and_negatives():
    anchors, y, bank, labels = _bank_for_triplet()
    sims = (anchors @ bank.T + 1)[0]
    s_pos = sims[[2, 1]].mean()  # the two least similar same-label entries
    s_neg = sims[[3, 4]].mean()
    for m in (0.0, 0.4, 2.0):
        expected = torch.clamp(s_neg - s_pos + m, min=0)
        torch.testing.assert_close(triplet_loss(anchors, y, bank, labels, m, (0, 2), (0, 2), "corrected"), expected)
    assert triplet_loss(anchors, y, bank, labels, 2.0, (0, 2), (0, 2), "corrected") > 0
    # gradients reach the anchors
    a = anchors.clone().requires_grad_(True)
    triplet_loss(a, y, bank, labels, 2.0, (0, 2), (0, 2), "corrected").backward()
    assert a.grad.abs().sum() > 0
    # an anchor without positives in the bank (label 2) is skipped; an empty bank gives 0
    two = torch.cat([anchors, anchors])
    torch.testing.assert_close(
        triplet_loss(two, torch.tensor([0, 2]), bank, labels, 2.0, (0, 2), (0, 2), "corrected"),
        torch.clamp(s_neg - s_pos + 2.0, min=0),
    )
    assert triplet_loss(anchors, y, bank[:0], labels[:0], 0.4, mode="corrected").item() == 0.0
    with pytest.raises(ValueError, match="triplet_mode"):
        triplet_loss(anchors, y, bank, labels, 0.4, mode="soft")


def test_kreciprocal_soft_labels_reciprocity_and_fallback():
    # bank: a tight cluster of class 0 near e0, a tight cluster of class 1 near e1, one class-2 entry near e0
    bank = _unit([1, 0.0], [1, 0.05], [1, -0.05], [0.0, 1], [0.05, 1], [-0.05, 1], [1, 0.2])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    queries = _unit([1, 0.1], [0.02, 1])
    soft, recip = kreciprocal_soft_labels(queries, bank, labels, k1=3, num_classes=4)
    assert soft.shape == (2, 4) and recip.shape == (2, 3)
    torch.testing.assert_close(soft.sum(1), torch.ones(2))
    # brute force: the 3 nearest entries and whether the query is among each one's 3 nearest in queries ∪ bank
    gallery = torch.cat([queries, bank])
    for q in range(2):
        d = ((bank - queries[q]) ** 2).sum(1)
        nn = d.argsort()[:3]
        rec = []
        for j in nn:
            dj = ((gallery - bank[j]) ** 2).sum(1)
            rec.append(bool(dj[q] <= dj.sort().values[2]))
        assert recip[q].tolist() == rec
        w = torch.tensor(rec, dtype=torch.float32) if any(rec) else torch.ones(3)
        expected = (F.one_hot(labels[nn], 4).float() * w[:, None]).sum(0) / w.sum()
        torch.testing.assert_close(soft[q], expected)
    assert soft[1].argmax() == 1 and soft[1, 1] == 1.0  # inside class 1's cluster
    # no reciprocal neighbour: a far query whose neighbours all have closer entries -> plain kNN vote
    far = _unit([-1, -1.0])
    soft_far, rec_far = kreciprocal_soft_labels(far, bank, labels, k1=2, num_classes=4)
    assert not rec_far.any()
    nn = ((bank - far[0]) ** 2).sum(1).argsort()[:2]
    torch.testing.assert_close(soft_far[0], F.one_hot(labels[nn], 4).float().mean(0))
    # an empty bank: zero rows, which the gate rejects
    empty, _ = kreciprocal_soft_labels(queries, bank[:0], labels[:0], 3, 4)
    assert empty.shape == (2, 4) and empty.sum() == 0


def test_relabel_gate_needs_both_peaks_and_agreement():
    a = torch.tensor([[0.6, 0.4, 0.0], [0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.0, 0.0, 0.0]])
    b = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.9, 0.1], [0.3, 0.0, 0.7], [0.0, 0.0, 0.0]])
    keep, target = relabel_gate(a, b, 0.6)
    assert keep.tolist() == [True, False, True, False]  # row 1: argmax 0 vs 1; row 3: empty soft labels
    torch.testing.assert_close(target, (a + b) / 2)
    assert relabel_gate(a, b, 0.65)[0].tolist() == [False, False, True, False]  # row 0's weak peak is 0.6
    assert relabel_gate(a[:0], b[:0], 0.5)[0].shape == (0,)


def test_feature_bank_fifo_and_wraparound():
    bank = FeatureBank(5)
    assert len(bank) == 0 and bank.contents()[0].shape[0] == 0
    bank.push(torch.ones(3, 2), torch.tensor([0, 1, 2]))
    assert len(bank) == 3 and bank.ptr == 3 and bank.contents()[1].tolist() == [0, 1, 2]
    bank.push(2 * torch.ones(3, 2), torch.tensor([3, 4, 5]))  # 3 + 3 > 5: the last 3 slots, pointer back to 0
    assert bank.ptr == 0 and len(bank) == 5 and bank.contents()[1].tolist() == [0, 1, 3, 4, 5]
    bank.push(3 * torch.ones(2, 2), torch.tensor([6, 7]))
    assert bank.ptr == 2 and bank.contents()[1].tolist() == [6, 7, 3, 4, 5]
    bank.push(torch.zeros(7, 2), torch.arange(7))  # more than the capacity: the newest 5
    assert bank.contents()[1].tolist() == [2, 3, 4, 5, 6]
    again = FeatureBank(5)
    again.load_state_dict(bank.state_dict(), torch.device("cpu"))
    assert torch.equal(again.contents()[1], bank.contents()[1]) and again.ptr == bank.ptr
    with pytest.raises(ValueError):
        FeatureBank(0)


# ---------------------------------------------------------------------------------------------- one step
def test_step_partitions_and_banks(small_digits):
    method = _short(relabel_slice="intended")
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    ctx = method_context(method, noisy)
    x = ctx.data.train_inputs(torch.arange(32))
    y = ctx.data.labels[:32]
    out = method.train_step(ctx, x, x, y, warmup=True)
    assert len(method.banks[0]) == 32 and len(method.banks[1]) == 32  # warm-up pushes everything
    out = method.train_step(ctx, x, x, y, warmup=False)
    assert int(out["selected"].sum()) == 19 and int(out["high_conf"].sum()) == 9 and int(out["candidate"].sum()) == 13
    assert not (out["selected"] & out["candidate"]).any()  # intended slice: disjoint
    assert len(method.banks[0]) == 41  # + the 9 high-confidence samples
    assert out["keep"].shape == (13,) and out["target"].shape == (13, 10)
    assert all(math.isfinite(float(v)) for v in out["terms"].values())


# ---------------------------------------------------------------------------------------------- one step, term by term
def _expected_comining_terms(net, x1, x2, y, banks, cfg, rate, num_classes):
    """Co-mining's loss on one batch after the warm-up, written out from the official ``algorithm/comining.py``
    (``train``), ``common/triplet.py`` and ``common/reranking.py`` formulas, independently of lnlkit's helpers.
    Returns the terms (tensors with gradients reaching ``net``) and the relabel decision."""
    C, n = num_classes, len(y)
    f1, f2 = net.embed(x1), net.embed(x2)
    z1, z2 = net.classify(f1), net.classify(f2)
    h1, h2 = f1 / f1.norm(dim=1, keepdim=True), f2 / f2.norm(dim=1, keepdim=True)
    eps = cfg.epsilon
    t = torch.full((n, C), eps / (C - 1))
    t[torch.arange(n), y] = 1.0 - eps
    ce = [-(t * torch.log(torch.softmax(z, 1))).sum(1) for z in (z1, z2)]
    cls = 0.5 * ce[0] + 0.5 * ce[1]
    p1, p2 = torch.softmax(z1, 1), torch.softmax(z2, 1)
    kl12 = (p1 * (torch.log2(p1) - torch.log2(p2))).sum(1)
    kl21 = (p2 * (torch.log2(p2) - torch.log2(p1))).sum(1)
    skl = 0.5 * (kl12 + kl21) + 0.5 * (kl21 + kl12)
    score = (cls + cfg.w_pc * skl).detach()
    order = sorted(range(n), key=lambda i: float(score[i]))
    clean = order[: int(n * (1 - rate))]
    high = order[: int(n * (1 - rate) * cfg.er)]
    cand = order[int(n * rate) :]  # the official slice
    loss_cls, loss_pc = cls[clean].mean(), skl[clean].mean()

    def triplet(h, bank):
        feats, labels = bank
        lo_p, hi_p = cfg.pos_window
        lo_n, hi_n = cfg.neg_window
        per_anchor = []
        for a in high:
            sim = h[a] @ feats.T + 1.0
            same = (labels == y[a]).float()
            if cfg.triplet_mode == "faithful":  # windows over sim·mask, zeros included; margin as the target
                s_pos = torch.sort(sim * same).values[lo_p:hi_p].mean()
                s_neg = torch.sort(sim * (1 - same), descending=True).values[lo_n:hi_n].mean()
                per_anchor.append(torch.relu(cfg.margin * (s_neg - s_pos) + cfg.margin))
            else:
                s_pos = torch.sort(sim[same == 1]).values[lo_p:hi_p].mean()
                s_neg = torch.sort(sim[same == 0], descending=True).values[lo_n:hi_n].mean()
                per_anchor.append(torch.relu(s_neg - s_pos + cfg.margin))
        return torch.stack(per_anchor).mean()

    loss_tri = 0.5 * (triplet(h1, banks[0]) + triplet(h2, banks[1]))

    def soft_labels(h, bank):
        feats, labels = bank
        q = h[cand].detach()
        gallery = torch.cat([q, feats])
        rows = []
        for i in range(len(q)):
            d = ((feats - q[i]) ** 2).sum(1)
            nearest = torch.argsort(d)[: cfg.k1].tolist()
            recip = []
            for j in nearest:
                dj = ((gallery - feats[j]) ** 2).sum(1)
                recip.append(i in torch.argsort(dj)[: cfg.k1].tolist())  # q is among j's k1 nearest
            voters = [j for j, r in zip(nearest, recip) if r] or nearest
            rows.append(torch.bincount(labels[voters], minlength=C).float() / len(voters))
        return torch.stack(rows)

    s1, s2 = soft_labels(h1, banks[0]), soft_labels(h2, banks[1])
    keep = (s1.max(1).values >= cfg.sigma) & (s2.max(1).values >= cfg.sigma) & (s1.argmax(1) == s2.argmax(1))
    target = (s1 + s2) / 2
    kept = torch.tensor(cand)[keep]
    re1 = -(target[keep] * torch.log_softmax(z1[kept], 1)).sum(1)
    re2 = -(target[keep] * torch.log_softmax(z2[kept], 1)).sum(1)
    loss_re = (0.5 * re1 + 0.5 * re2).mean()
    loss = loss_cls + cfg.w_pc * loss_pc + cfg.w_tri * loss_tri + cfg.w_re * loss_re
    terms = {"loss_cls": loss_cls, "loss_pc": loss_pc, "loss_tri": loss_tri, "loss_re": loss_re, "loss": loss}
    in_batch_order = torch.argsort(torch.tensor(cand))
    return terms, {
        "clean": sorted(clean),
        "high": sorted(high),
        "cand": sorted(cand),
        "keep": keep[in_batch_order],
        "target": target[in_batch_order],
        "soft": (s1, s2),
        "cls": cls,
        "skl": skl,
        "high_by_score": high,
    }


@pytest.mark.parametrize("triplet_mode", ["faithful", "corrected"])
def test_step_terms_and_gradient_match_the_official_loss(small_digits, triplet_mode):
    # the paper preset's switches with the web margin (the faithful triplet is not identically 0) and the corrected
    # triplet; two different views; each view's bank holds different samples, so a swapped bank changes the targets
    method = _short(triplet_mode=triplet_mode, margin=0.4, w_re=1.0)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    cfg, C = method.config, ctx.num_classes
    g = torch.Generator().manual_seed(0)
    idx = torch.arange(32)
    x1 = ctx.data.train_inputs(idx)
    x2 = torch.roll(x1, 1, dims=-1) + 0.5 * torch.randn(x1.shape, generator=g)
    y = ctx.data.labels[idx]
    with torch.no_grad():
        method.net.eval()
        for bank, view, rows in (
            (method.banks[0], lambda x: x, range(32, 112)),
            (method.banks[1], lambda x: torch.roll(x, 1, dims=-1), range(72, 152)),
        ):
            rows = torch.tensor(list(rows))
            bank.push(F.normalize(method.net.embed(view(ctx.data.train_inputs(rows))), dim=1), ctx.data.labels[rows])
        method.net.train()
    banks = [tuple(t.clone() for t in b.contents()) for b in method.banks]
    reference = copy.deepcopy(method.net)
    expected, parts = _expected_comining_terms(reference, x1, x2, y, banks, cfg, method.rate, C)
    expected["loss"].backward()

    out = method.train_step(ctx, x1, x2, y, warmup=False)
    # the fixture exercises every term: distinct views, relabelled candidates, a non-zero triplet term
    assert float(parts["skl"].detach().max()) > 1e-2 and 0 < int(parts["keep"].sum()) < len(parts["cand"])
    assert float(expected["loss_tri"].detach()) > 0 and float(expected["loss_re"].detach()) > 0
    for key in ("loss_cls", "loss_pc", "loss_tri", "loss_re", "loss"):
        torch.testing.assert_close(out["terms"][key], expected[key].detach(), rtol=1e-5, atol=1e-6, msg=key)
    # the partition and the relabelling decisions
    assert torch.nonzero(out["selected"]).flatten().tolist() == parts["clean"]
    assert torch.nonzero(out["high_conf"]).flatten().tolist() == parts["high"]
    assert torch.nonzero(out["candidate"]).flatten().tolist() == parts["cand"]
    assert out["keep"].tolist() == parts["keep"].tolist()
    torch.testing.assert_close(out["target"], parts["target"])
    # what was back-propagated is that loss: the gradient of every parameter
    for (name, p), q in zip(method.net.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    # the banks grew by the high-confidence features of their own view
    h1 = F.normalize(reference.embed(x1), dim=1).detach()
    hi = torch.tensor(parts["high_by_score"])
    torch.testing.assert_close(method.banks[0].contents()[0][-len(hi) :], h1[hi], rtol=1e-4, atol=1e-6)
    assert method.banks[0].contents()[1][-len(hi) :].tolist() == y[hi].tolist()
    # sensitivity of the fixture: the other view's bank would give other soft labels
    swapped = _expected_comining_terms(reference, x1, x2, y, banks[::-1], cfg, method.rate, C)[1]
    assert not torch.equal(swapped["soft"][0], parts["soft"][0])


def test_warmup_step_is_two_view_smoothed_ce_on_all_samples(small_digits):
    method = _short()
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    x1 = ctx.data.train_inputs(torch.arange(16))
    x2 = x1 + 0.5 * torch.randn(x1.shape, generator=torch.Generator().manual_seed(1))
    y = ctx.data.labels[:16]
    reference = copy.deepcopy(method.net)
    C, eps = ctx.num_classes, method.config.epsilon
    t = torch.full((16, C), eps / (C - 1))
    t[torch.arange(16), y] = 1 - eps
    expected = sum(
        0.5 * -(t * torch.log_softmax(reference.classify(reference.embed(x)), 1)).sum(1).mean() for x in (x1, x2)
    )
    expected.backward()
    out = method.train_step(ctx, x1, x2, y, warmup=True)
    torch.testing.assert_close(out["terms"]["loss"], expected.detach())
    for p, q in zip(method.net.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)
    # every sample goes into the bank of its own view
    for bank, x in zip(method.banks, (x1, x2)):
        torch.testing.assert_close(
            bank.contents()[0], F.normalize(reference.embed(x), dim=1).detach(), rtol=1e-4, atol=1e-6
        )


# ---------------------------------------------------------------------------------------------- switches
@pytest.mark.parametrize("relabel_slice", ["faithful", "intended"])
def test_switch_relabel_slice_in_a_run(small_digits, relabel_slice, tmp_path):
    run = _short(relabel_slice=relabel_slice, epochs=2).fit(
        small_digits.with_noise("symmetric:0.3", seed=0), out=tmp_path / "r", progress=False
    )
    sig = run.signals
    sel, cand = sig["selected"][-1], sig["candidate"][-1]
    if relabel_slice == "intended":
        assert not (sel & cand).any() and (sel | cand).all()
    else:  # r = 0.3 < 0.5: the official candidates include most of the clean set
        assert (sel & cand).sum() > 0.5 * sel.sum() and cand.sum() > sel.sum()
    rejected, relabel = sig["rejected"][-1], sig["relabel"][-1]
    assert ((relabel >= 0) | rejected == cand).all()
    # the clean score (higher = cleaner) is the negated ranking score and already ranks clean samples higher
    np.testing.assert_array_equal(sig["clean_score"], -sig["score"])
    clean, noisy = sig["clean_score"][-1][~run.is_noisy], sig["clean_score"][-1][run.is_noisy]
    assert (clean[:, None] > noisy[None, :]).mean() > 0.7


@pytest.mark.parametrize("mode", ["faithful", "corrected"])
def test_switch_triplet_mode_in_a_run(small_digits, mode, tmp_path):
    run = _short(triplet_mode=mode, margin=0.0).fit(
        small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    tri = [r["loss_tri"] for r in run.history if r["phase"] == "train"]
    if mode == "faithful":  # CIFAR's m = 0: the official triplet term is inert
        assert tri and all(t == 0.0 for t in tri)
    else:
        assert tri and all(t > 0.0 for t in tri)


@pytest.mark.parametrize("backbone", ["resnet18_halved_residual", "resnet50_torchvision"])
def test_switch_web_backbone(backbone, tmp_path):
    root = write_web_fg(tmp_path / "webfg", "web-bird")
    with pytest.warns(UserWarning, match="expected 200"):
        data = lnlkit.load_dataset("web-bird", root=root, resize=36, crop=32)
    method = lnlkit.get_method("comining", preset="web-bird", web_backbone=backbone)
    ctx = method_context(method, data.with_noise("none"))
    if backbone == "resnet18_halved_residual":
        assert type(method.net).__name__ == "CifarResNet" and method.net.halved_residual
        assert method.net.stem_type == "imagenet" and method.net.fc.in_features == 512
    else:
        assert type(method.net).__name__ == "TorchvisionResNet50" and method.net.fc.in_features == 2048
    assert method.rate == 0.25 and ctx.num_classes == 3


# ---------------------------------------------------------------------------------------------- presets
def test_presets_construct_and_document_their_sources():
    for name in PAPER_PRESETS + ["digits"]:
        assert name in CoMining.PRESETS
    for name, build in CoMining.PRESETS.items():
        cfg = build()
        cfg.validate()
        assert isinstance(cfg, CoMiningConfig) and build.__doc__, name
        if not name.startswith("digits-"):
            assert (cfg.relabel_slice, cfg.triplet_mode) == ("faithful", "faithful"), name
    # the faithful-vs-fixed variants of the digits preset differ from it only in the switches
    base = CoMining.PRESETS["digits"]()
    for name, switches in (
        ("digits-intended-slice", ("intended", "faithful")),
        ("digits-corrected-triplet", ("faithful", "corrected")),
        ("digits-fixed", ("intended", "corrected")),
    ):
        cfg = CoMining.PRESETS[name]()
        assert (cfg.relabel_slice, cfg.triplet_mode) == switches
        cfg.relabel_slice, cfg.triplet_mode = base.relabel_slice, base.triplet_mode
        assert cfg == base
    c = CoMining.PRESETS["cifar10nc"]()
    assert (c.model, c.epochs, c.batch_size, c.optimizer, c.lr, c.weight_decay, c.decay_start) == (
        "cnn7",
        200,
        128,
        "adam",
        1e-3,
        0.0,
        80,
    )
    assert (c.w_pc, c.w_tri, c.w_re, c.margin, c.sigma, c.k1, c.bank_size, c.epsilon, c.er) == (
        1.0,
        3.0,
        0.01,
        0.0,
        0.15,
        15,
        4096,
        0.5,
        0.5,
    )
    w = CoMining.PRESETS["web-car"]()
    assert (w.web_backbone, w.optimizer, w.batch_size, w.epochs, w.w_pc, w.margin, w.sigma, w.forget_rate) == (
        "resnet18_halved_residual",
        "sgd",
        25,
        60,
        0.3,
        0.4,
        0.5,
        0.25,
    )
    assert "UNVERIFIED" in CoMining.PRESETS["web-car"].__doc__
    assert "UNVERIFIED" not in CoMining.PRESETS["web-bird"].__doc__
    # the general default follows the paper's intent; the digits preset only changes scale
    d, g = CoMiningConfig(), CoMining.PRESETS["digits"]()
    assert (d.relabel_slice, d.triplet_mode) == ("intended", "corrected")
    assert (g.w_pc, g.w_tri, g.w_re, g.margin, g.sigma, g.k1, g.epsilon, g.er, g.lr) == (
        c.w_pc,
        c.w_tri,
        c.w_re,
        c.margin,
        c.sigma,
        c.k1,
        c.epsilon,
        c.er,
        c.lr,
    )


# ---------------------------------------------------------------------------------------------- robustness
# ---------------------------------------------------------------------------------------------- end to end
def test_open_set_run_records_rejections(small_digits, tmp_path):
    data = small_digits.with_noise("openset:0.2+symmetric:0.2", seed=0)
    run = _short(epochs=3).fit(data, out=tmp_path / "r", progress=False)
    assert run.result["forget_rate"] == pytest.approx(0.36)
    assert run.ood_mask is not None and run.ood_mask.sum() > 0
    last = run.history[-1]
    rejected = run.signals["rejected"][-1]
    assert last["n_rejected"] == int(rejected.sum())
    assert last["ood_precision"] == pytest.approx(run.ood_mask[rejected].mean())
    assert last["ood_recall"] == pytest.approx(rejected[run.ood_mask].mean())
    relabel = run.signals["relabel"][-1]
    assert ((relabel >= -1) & (relabel < 8)).all()  # 8 known classes
    assert run.history[0]["phase"] == "warmup" and "ood_precision" not in run.history[0]


def test_digits_run_reports_the_last10_mean(digits, tmp_path):
    run = lnlkit.get_method("comining", preset="digits", epochs=12, checkpoint_every=100).fit(
        digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    accs = [r["test_acc"] for r in run.history]
    assert run.result["reported_as"] == "mean_last10"
    assert run.result["reported"] == pytest.approx(np.mean(accs[-10:]))
    assert run.result["reported_std"] == pytest.approx(np.std(accs[-10:]))
    # margins that hold on any processor: one epoch's accuracy swings by points (91.8-99.1 after epoch 1 here), the
    # 10-epoch mean (96.1) and the selection precision (0.956) much less
    assert run.result["reported"] >= 85.0 and run.result["sel_precision"] >= 0.9, run.result
    sig = run.signals
    assert sig["score"].shape == (12, 1347) and sig["epoch"].tolist() == list(range(12))
    warm = run.config["hyperparameters"]["warmup_epochs"]
    assert [r["phase"] for r in run.history] == ["warmup"] * warm + ["train"] * (12 - warm)
    assert not sig["selected"][:warm].any() and sig["selected"][warm:].any(axis=1).all()
    assert run.history[-1]["beta1"] == 0.9 and run.history[-1]["loss_tri"] == 0.0


@pytest.mark.slow
def test_comining_digits_preset_clears_ce_at_symmetric_40(digits, tmp_path):
    # the full digits preset on one seed (50 epochs: about 1.5 minutes on one core of the shared 2-core machine).
    # Only margins that hold on any processor (CPU float paths differ, so one seed's trajectory does too): at least
    # 15 points above CE's last epoch (measured: 99.3 against 66.9) and a selection precision well above what the
    # loss-ablated mutants reach (0.97 measured; 0.90 with the classification term over all samples and the
    # consistency and relabel terms dropped).  The thin criterion, above CE's best epoch, is checked over three
    # seeds by bench/digits_grid.py.
    before = torch.get_num_threads()
    torch.set_num_threads(DEFAULT_THREADS)
    try:
        run = lnlkit.get_method("comining", preset="digits").fit(
            digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
        )
    finally:
        torch.set_num_threads(before)
    res = run.result
    assert res["status"] == "complete" and res["epochs_done"] == 50
    assert res["reported"] >= CE_SYM40_SEED0_LAST + 15.0, res
    assert res["sel_precision"] >= 0.93, res

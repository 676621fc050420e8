"""SOP/SOP+ and Prune4ReL: the pieces on tiny tensors, the switches, presets on fake data, robustness and resume."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from methodtest import interrupt_then_resume

import lnlkit
from lnlkit.methods.prune4rel import (
    confidence_scores,
    forgetting_selection,
    glister_gains,
    glister_selection,
    grand_scores,
    greedy_neighborhood_confidence,
    kcenter_greedy_selection,
    moderate_selection,
    similarity_weights,
    small_loss_selection,
    uncertainty_selection,
    uniform_selection,
)
from lnlkit.methods.sop import class_balance_loss, consistency_loss, sop_losses
from lnlkit.presets.prune4rel import PRESETS

BASELINES = ["uniform", "smallloss", "uncertainty", "forgetting", "grand", "moderate", "kcentergreedy", "glister"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small_digits():
    """300 training / 100 test images of the embedded digits (smaller than conftest's, which this overrides)."""
    ds = lnlkit.load_dataset("digits")
    return lnlkit.Dataset.from_arrays(
        ds.x_train[:300],
        ds.y_train[:300],
        ds.x_test[:100],
        ds.y_test[:100],
        name="digits",
        num_classes=10,
        mean=ds.mean,
        std=ds.std,
        pixel_scale=16.0,
        clean_labels=True,
    )


def _short(method="prune4rel", preset="digits", **kw):
    defaults = {"epochs": 2, "checkpoint_every": 100}
    if method != "sop":
        defaults["warmup_epochs"] = 1
    return lnlkit.get_method(method, preset=preset, **{**defaults, **kw})


# ---------------------------------------------------------------------------------------------- reference greedy
def _dense_greedy(emb, conf, labels, budget, tau, eta, balance, gain="self"):
    """Reference greedy with a dense n×n matrix, following the official ``k_neighbor_confidence_greedy`` rule.

    Balance: pick i targets the class at position ``i mod K`` of the list of K classes still available.  When that
    class has nothing left to pick it is dropped from the list (the very first drop records that class's initial
    size as ``min_balance``) and the target is recomputed with the same formula; each time the recomputed target
    already holds more than 1.5·min_balance picks, balance ends, but only from the following pick: this pick is
    still the best candidate of the target class.  No test is made on turns without a drop.
    """
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = 0.5 + 0.5 * e @ e.T
    w = s * (s > tau)
    n, C = len(conf), int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=C)
    left = sizes.copy()
    nc, sel, order = np.zeros(n), np.zeros(n, bool), []
    classes, stop_balance, min_size = list(range(C)), not balance, None
    for i in range(budget):
        if gain == "self":
            g = np.tanh((nc + conf) / eta) - np.tanh(nc / eta)
        else:
            g = np.array([np.sum(np.tanh((nc + w[:, j] * conf[j]) / eta) - np.tanh(nc / eta)) for j in range(n)])
        g[sel] = -1
        if stop_balance:
            p = int(np.argmax(g))
        else:
            target = classes[i % len(classes)]
            while left[target] == 0:
                if len(classes) == C:
                    min_size = sizes[target]
                classes.remove(target)
                target = classes[i % len(classes)]
                if sizes[target] - left[target] > 1.5 * min_size:
                    stop_balance = True
            members = np.flatnonzero(labels == target)
            p = int(members[np.argmax(g[members])])
            left[target] -= 1
        sel[p] = True
        order.append(p)
        nc += w[:, p] * conf[p]
    return np.array(order, dtype=np.int64), nc


# ---------------------------------------------------------------------------------------------- similarity, confidence
def test_cossim_is_rescaled_with_a_strict_threshold():
    a = torch.tensor([[1.0, 0.0]])
    cos = torch.tensor([1.0, 0.95, 0.9, 0.0, -1.0])
    b = torch.stack([cos, torch.sqrt(1 - cos**2)], 1)
    w = similarity_weights(a, b, "cossim", tau=0.975)[0]
    # 0.5 + 0.5·cos; τ = 0.975 keeps cos > 0.95 only (strict), and the weight is the similarity itself
    torch.testing.assert_close(w, torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))
    w = similarity_weights(a, b, "cossim", tau=0.95)[0]
    torch.testing.assert_close(w, torch.tensor([1.0, 0.975, 0.0, 0.0, 0.0]))
    w = similarity_weights(a, b, "cossim", tau=0.0)[0]
    torch.testing.assert_close(w, torch.tensor([1.0, 0.975, 0.95, 0.5, 0.0]))


def test_euclidean_weights():
    a, b = torch.zeros(1, 2), torch.tensor([[0.0, 0.0], [0.9, 0.0], [20.0, 0.0]])
    w = similarity_weights(a, b, "euclidean")[0]
    torch.testing.assert_close(w, torch.tensor([9.9, 1.0 - 0.1, 0.0]))
    with pytest.raises(ValueError, match="metric"):
        similarity_weights(a, b, "manhattan")


def test_confidence_scores():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    torch.testing.assert_close(confidence_scores(p, "LeastConfidence"), torch.tensor([0.7, 0.4]))
    torch.testing.assert_close(confidence_scores(p, "Margin"), torch.tensor([0.5, 0.0]))
    ent = -(p * p.log()).sum(1)
    torch.testing.assert_close(confidence_scores(p, "Entropy"), ent)
    with pytest.raises(ValueError):
        confidence_scores(p, "Variance")


# ---------------------------------------------------------------------------------------------- the greedy
def _toy():
    """Two tight 2-D clusters per class direction; class 0 along +x, class 1 along +y."""
    emb = np.array([[1, 0], [1, 0.01], [1, -0.01], [1, 0.2], [0, 1], [0.01, 1], [0.3, 1], [-0.3, 1]], float)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    conf = np.array([0.5, 0.9, 0.8, 0.6, 0.7, 0.95, 0.3, 0.4])
    return emb, conf, labels


def test_first_pick_is_the_most_confident_and_budget_is_exact():
    emb, conf, labels = _toy()
    r = greedy_neighborhood_confidence(emb, conf, labels, 5, balance=False)
    assert r.order[0] == int(np.argmax(conf)) and r.gains[0] == pytest.approx(np.tanh(conf.max()))
    assert len(r.order) == 5 and len(set(r.order.tolist())) == 5
    assert len(greedy_neighborhood_confidence(emb, conf, labels, 100, balance=False).order) == 8  # clipped to N
    assert len(greedy_neighborhood_confidence(emb, conf, labels, 0).order) == 0


def test_neighbourhood_coverage_spreads_the_picks():
    emb, conf, labels = _toy()
    # η small: a covered neighbourhood saturates tanh, so the next pick of class 0 leaves the 3-point cluster
    r = greedy_neighborhood_confidence(emb, conf, labels, 4, tau=0.975, eta=0.1, balance=True)
    assert r.order.tolist()[:2] == [1, 5]  # round-robin from class 0: best of class 0, then best of class 1
    assert r.order[2] == 3  # 0 and 2 are neighbours of 1 (cos > 0.95): their gain collapsed, 3 is not
    # NC of the neighbours of the first pick grew by w·c
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    assert r.nc[0] >= (0.5 + 0.5 * e[0] @ e[1]) * conf[1] - 1e-6
    # τ = 1: no neighbours at all, the greedy is a confidence ranking within the round-robin
    r = greedy_neighborhood_confidence(emb, conf, labels, 4, tau=1.0, eta=0.1, balance=True)
    assert r.order.tolist() == [1, 5, 2, 4]


@pytest.mark.parametrize("balance", [True, False])
@pytest.mark.parametrize("gain", ["self", "neighborhood"])
def test_matches_the_dense_reference(balance, gain):
    rng = np.random.default_rng(3)
    for trial in range(9):
        n, C = int(rng.integers(20, 60)), int(rng.integers(2, 4))
        labels = np.minimum(rng.integers(0, C, n), rng.integers(0, C, n)) if trial % 2 else rng.integers(0, C, n)
        if trial >= 6:  # a small class, a middle one and a large one: classes run out, balance switches off
            C = 4
            labels = rng.permutation(np.repeat(np.arange(C), [3, 6, 15, 16]))
            n = len(labels)
        emb = rng.normal(size=(C, 3))[labels] + rng.normal(size=(n, 3)) * 0.4
        conf = rng.uniform(0, 1, n).round(1)  # ties on purpose
        budget = int(rng.integers(1, n))
        ref, ref_nc = _dense_greedy(emb, conf, labels, budget, 0.9, 0.5, balance, gain)
        got = greedy_neighborhood_confidence(
            torch.tensor(emb),
            conf,
            labels,
            budget,
            0.9,
            0.5,
            "cossim",
            balance,
            gain,
            block=7,
            batch=int(rng.integers(1, 9)),
            num_classes=C,
        )
        np.testing.assert_array_equal(got.order, ref)
        np.testing.assert_allclose(got.nc, ref_nc, atol=1e-5)


def test_balance_stays_on_when_no_second_class_runs_out():
    # classes of 2, 10, 10 samples, no neighbours; class 2 is the most confident.  Class 0 runs out at pick 6
    # (min_balance 2) while class 1 holds 2 picks; no other class runs out, so the rule is never checked again and
    # the round-robin goes on: 2 / 5 / 5 for 12 picks (checking every turn would switch off at pick 10 and give
    # the last picks to class 2)
    labels = np.array([0] * 2 + [1] * 10 + [2] * 10)
    conf = np.concatenate([[0.5, 0.5], np.linspace(0.1, 0.2, 10), np.linspace(0.8, 0.9, 10)])
    r = greedy_neighborhood_confidence(np.eye(22), conf, labels, 12, tau=0.99, balance=True)
    assert np.bincount(labels[r.order], minlength=3).tolist() == [2, 5, 5]
    assert r.min_balance == 2 and r.balance_off_at is None
    np.testing.assert_array_equal(r.order, _dense_greedy(np.eye(22), conf, labels, 12, 0.99, 1.0, True)[0])


def test_balance_switches_off_at_the_next_class_to_run_out():
    # sizes 2 / 4 / 20 / 20: class 0 runs out at pick 8 (min_balance 2; class 3 then holds 2 picks: no switch);
    # class 1 runs out at pick 15, whose target becomes class 3 with 5 > 3 picks: balance ends, but pick 15 itself
    # is still class 3's.  From pick 16 on, the most confident class (2) takes everything.
    labels = np.array([0] * 2 + [1] * 4 + [2] * 20 + [3] * 20)
    conf = np.concatenate([[0.5, 0.5], np.full(4, 0.3), np.linspace(0.8, 0.9, 20), np.linspace(0.1, 0.2, 20)])
    r = greedy_neighborhood_confidence(np.eye(46), conf, labels, 20, tau=0.99, balance=True)
    assert labels[r.order[15]] == 3 and set(labels[r.order[16:]].tolist()) == {2}
    assert np.bincount(labels[r.order], minlength=4).tolist() == [2, 4, 8, 6]
    assert r.min_balance == 2 and r.balance_off_at == 16
    np.testing.assert_array_equal(r.order, _dense_greedy(np.eye(46), conf, labels, 20, 0.99, 1.0, True)[0])


def test_self_and_neighborhood_gain_agree_without_neighbours_and_differ_with_them():
    _, conf, labels = _toy()
    emb = np.eye(8)  # orthogonal: every point is only its own neighbour (0.5 + 0.5·0 = 0.5 < τ)
    a = greedy_neighborhood_confidence(emb, conf, labels, 6, tau=0.975, gain="self", balance=False)
    b = greedy_neighborhood_confidence(emb, conf, labels, 6, tau=0.975, gain="neighborhood", balance=False)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.order, np.argsort(-conf, kind="stable")[:6])
    # a point with many moderately confident neighbours wins the exact gain but not the self gain
    emb2 = np.array([[1, 0], [1, 0.01], [1, -0.01], [1, 0.02], [0, 1]], float)
    conf2 = np.array([0.6, 0.6, 0.6, 0.6, 0.7])
    s = greedy_neighborhood_confidence(emb2, conf2, None, 1, tau=0.975, gain="self", balance=False)
    x = greedy_neighborhood_confidence(emb2, conf2, None, 1, tau=0.975, gain="neighborhood", balance=False)
    assert s.order[0] == 4 and x.order[0] in (0, 1, 2, 3)


def test_greedy_blocks_do_not_change_the_result_and_validate_inputs():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 8)).astype(np.float32)
    emb[250:] = emb[:250] + 0.05 * rng.normal(size=(250, 8))  # near-duplicates: many neighbours
    conf, labels = rng.uniform(size=500), rng.integers(0, 5, 500)
    a = greedy_neighborhood_confidence(emb, conf, labels, 120, tau=0.95, block=64, batch=1)
    b = greedy_neighborhood_confidence(emb, conf, labels, 120, tau=0.95, block=100000, batch=256)
    np.testing.assert_array_equal(a.order, b.order)
    assert a.similarity_rows == 120 == b.similarity_rows  # one row per pick: no n×n matrix
    with pytest.raises(ValueError, match="confidence"):
        greedy_neighborhood_confidence(emb, -conf, labels, 10)
    with pytest.raises(ValueError, match="labels"):
        greedy_neighborhood_confidence(emb, conf, None, 10, balance=True)


# ---------------------------------------------------------------------------------------------- SOP losses
def test_sop_gradients_reach_the_right_parameters():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    u = torch.full((6, 1), 0.3, requires_grad=True)
    v = torch.full((6, 3), 0.2, requires_grad=True)
    ce, mse, _ = sop_losses(net(x), y, u, v, 3)
    # L_CE: θ and u, never v (V is detached there)
    g_theta, g_u, g_v = torch.autograd.grad(ce, [net.weight, u, v], allow_unused=True, retain_graph=True)
    assert g_theta.abs().sum() > 0 and g_u.abs().sum() > 0 and (g_v is None or g_v.abs().sum() == 0)
    # L_MSE: u and v, never θ (the network term is a one-hot of the argmax)
    g_theta, g_u, g_v = torch.autograd.grad(mse, [net.weight, u, v], allow_unused=True)
    assert (g_theta is None or g_theta.abs().sum() == 0) and g_u.abs().sum() > 0 and g_v.abs().sum() > 0
    # the values: with u = v = 0 the corrected prediction is the softmax and L_MSE counts the misfits
    z = net(x).detach()
    ce0, mse0, p = sop_losses(z, y, torch.zeros(6, 1), torch.zeros(6, 3), 3)
    torch.testing.assert_close(ce0, F.cross_entropy(z, y), atol=1e-3, rtol=1e-3)
    assert mse0.item() == pytest.approx(2.0 * (z.argmax(1) != y).float().mean().item())


def test_sop_u_absorbs_a_wrong_label():
    # a confident prediction of class 1 for a sample labelled 0: U (on the label) and V (on class 1) grow
    logits = torch.tensor([[-5.0, 5.0, -5.0]])
    u = torch.full((1, 1), 1e-3, requires_grad=True)
    v = torch.full((1, 3), 1e-3, requires_grad=True)
    opt = torch.optim.SGD([u, v], lr=1.0)
    for _ in range(200):
        ce, mse, _ = sop_losses(logits, torch.tensor([0]), u, v, 3)
        opt.zero_grad()
        (ce + mse).backward()
        opt.step()
    assert u.item() ** 2 > 0.5 and v[0, 1].item() ** 2 > 0.5 and v[0, 2].item() ** 2 < 0.1


def test_consistency_uses_a_detached_weak_target_and_balance_the_batch_mean():
    zw = torch.randn(4, 3, requires_grad=True)
    zs = torch.randn(4, 3, requires_grad=True)
    loss = consistency_loss(zw, zs)
    gw, gs = torch.autograd.grad(loss, [zw, zs], allow_unused=True)
    assert gw is None and gs.abs().sum() > 0
    ref = F.kl_div(F.log_softmax(zs, 1), F.softmax(zw, 1), reduction="batchmean")
    torch.testing.assert_close(loss, ref)
    assert consistency_loss(zw, zw).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    assert class_balance_loss(p).item() == pytest.approx(-math.log(0.5))
    q = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    assert class_balance_loss(q).item() > class_balance_loss(p).item()  # an unbalanced batch mean costs more
    assert class_balance_loss(p[:0]).item() == 0.0


# ---------------------------------------------------------------------------------------------- baselines
def test_baseline_selections():
    rng = np.random.default_rng(0)
    assert np.array_equal(
        uniform_selection(10, 4, np.random.default_rng(1)), uniform_selection(10, 4, np.random.default_rng(1))
    )
    assert len(set(uniform_selection(10, 4, rng).tolist())) == 4
    assert small_loss_selection(np.array([0.5, 0.1, 0.3, 0.1]), 2).tolist() == [1, 3]
    counts = np.array([3, 0, 1, 5, 2, 2])
    assert forgetting_selection(counts, np.array([0, 0, 0, 1, 1, 1]), 2).tolist() == [0, 3]


def test_uncertainty_margin_is_on_probabilities_over_all_classes():
    # three classes: the logit margin and the probability margin rank these rows differently
    z = np.array([[0.6, 0.0, 0.0], [3.0, 2.5, -5.0], [2.0, 0.0, 0.0]])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    top = np.sort(p, 1)
    margin = top[:, -1] - top[:, -2]  # 0.215, 0.245, 0.681: keeps row 0
    logit_margin = z.max(1) - np.sort(z, 1)[:, -2]  # 0.6, 0.5, 2.0: would keep row 1
    assert int(np.argmin(margin)) != int(np.argmin(logit_margin))
    assert uncertainty_selection(z, 1, "Margin").tolist() == [int(np.argmin(margin))]
    assert uncertainty_selection(z, 2, "Margin").tolist() == sorted(np.argsort(margin)[:2].tolist())
    # LeastConfidence: the official code ranks the largest raw output (logit); Entropy: the highest entropy is kept
    assert uncertainty_selection(z, 1, "LeastConfidence").tolist() == [int(np.argmin(z.max(1)))]
    ent = -(p * np.log(p + 1e-6)).sum(1)
    assert uncertainty_selection(z, 1, "Entropy").tolist() == [int(np.argmax(ent))]
    # the method's default is Margin without balance, and balance=True is refused (the official branch crashes)
    m = lnlkit.get_method("prune:uncertainty", preset="digits")
    assert m.config.uncertainty == "Margin" and m.config.balance is False
    for sel in ("uniform", "uncertainty", "grand", "moderate", "glister"):
        with pytest.raises(ValueError, match="balance"):
            lnlkit.get_method(f"prune:{sel}", balance=True)


def test_grand_is_the_last_layer_gradient_norm():
    torch.manual_seed(0)
    fc = torch.nn.Linear(5, 3)
    h, y = torch.randn(4, 5), torch.tensor([0, 2, 1, 1])
    ours = grand_scores(fc(h), h, y)
    for i in range(4):
        gw, gb = torch.autograd.grad(F.cross_entropy(fc(h[i : i + 1]), y[i : i + 1]), [fc.weight, fc.bias])
        assert ours[i].item() == pytest.approx(torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum()).item(), rel=1e-5)


def test_grand_scales_each_score_by_its_batch_as_a_mean_reduced_loss():
    # 5 samples in evaluation batches of 2: [0, 1], [2, 3], [4]; each score is the last-layer gradient norm of
    # its batch's mean CE taken with respect to that sample's own output
    torch.manual_seed(1)
    fc = torch.nn.Linear(4, 3)
    h, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    ours = grand_scores(fc(h), h, y, batch_size=2)
    for start in (0, 2, 4):
        rows = list(range(start, min(start + 2, 5)))
        z = fc(h[rows]).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(z, y[rows]), z)  # mean over the batch
        for k, i in enumerate(rows):
            expect = g[k].norm() * torch.sqrt(h[i].pow(2).sum() + 1.0)
            assert ours[i].item() == pytest.approx(expect.item(), rel=1e-5)


def test_moderate_keeps_one_global_band_of_distances_to_each_class_median():
    # class 0 is tight (distances 0..4.5), class 1 spread out (distances 0..13.5): a band per class would keep 4 of
    # each; the official global band keeps the 8 middle distances of all 20, whatever their class
    feats = np.concatenate([np.arange(10.0), 100 + np.arange(10.0) * 3])[:, None]
    labels = np.array([0] * 10 + [1] * 10)
    kept = moderate_selection(feats, labels, 0.4)
    med = np.array([np.median(feats[labels == c, 0]) for c in (0, 1)])
    dist = np.abs(feats[:, 0] - med[labels])
    expect = np.sort(np.argsort(dist, kind="stable")[round(20 * 0.3) : round(20 * 0.7)])
    assert kept.tolist() == expect.tolist()
    assert np.bincount(labels[kept], minlength=2).tolist() != [4, 4]


def test_kcenter_greedy_takes_the_farthest_point_each_time():
    x = np.array([[0.0, 0], [1, 0], [10, 0], [10, 1], [5, 5], [0, 9]])
    got = kcenter_greedy_selection(x, 4, np.random.default_rng(0))
    first = int(np.random.default_rng(0).integers(0, 6))
    chosen = [first]
    for _ in range(3):  # farthest from its nearest chosen centre, written out
        d = np.array([min(np.linalg.norm(x[i] - x[c]) for c in chosen) for i in range(6)])
        d[chosen] = -1
        chosen.append(int(np.argmax(d)))
    assert got.tolist() == sorted(chosen) and len(set(chosen)) == 4


def test_glister_gain_is_the_dot_product_with_the_mean_last_layer_gradient():
    torch.manual_seed(2)
    fc = torch.nn.Linear(4, 3)
    h, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    gains = glister_gains(fc(h), h, y, batch_size=2)
    grads = []
    for i in range(5):
        size = 2 if i < 4 else 1  # batches [0, 1], [2, 3], [4]; the loss is each batch's mean
        fc.zero_grad()
        # the official code feeds the softmax probabilities to CrossEntropyLoss (a second softmax inside)
        (F.cross_entropy(fc(h[i : i + 1]).softmax(1), y[i : i + 1]) / size).backward()
        grads.append(torch.cat([fc.bias.grad.flatten(), fc.weight.grad.flatten()]).double())
    g = torch.stack(grads)
    expect = g @ g.mean(0)
    torch.testing.assert_close(gains, expect, rtol=1e-6, atol=1e-9)
    assert glister_selection(gains.numpy(), 2, "lazy").tolist() == sorted(torch.argsort(-expect)[:2].tolist())


def _stochastic_greedy_reference(gains, budget, rng, epsilon=0.9):
    """DeepCore's StochasticGreedy over fixed gains, written out: sample size max(round(-ln ε · n / budget), 1);
    each pick draws that many of the not yet selected samples without replacement, keeps the largest gain."""
    n = len(gains)
    size = max(round(-math.log(epsilon) * n / budget), 1)
    selected = np.zeros(n, dtype=bool)
    for i in range(budget):
        draw = rng.choice(np.arange(n)[~selected], size=min(size, n - i), replace=False)
        selected[draw[int(np.argmax(gains[draw]))]] = True
    return np.flatnonzero(selected), size


@pytest.mark.parametrize("n, budget, size", [(50, 10, 1), (200, 5, 4)])
def test_glister_runs_the_official_stochastic_greedy(n, budget, size):
    # f = 0.2: -ln 0.9 · 5 = 0.53 -> one candidate per pick, a random subset; f = 0.025: round(4.21) = 4 candidates
    gains = np.random.default_rng(7).normal(size=n)
    expect, s = _stochastic_greedy_reference(gains, budget, np.random.default_rng(3))
    assert s == size
    got = glister_selection(gains, budget, "stochastic", np.random.default_rng(3))
    assert got.tolist() == expect.tolist() and len(got) == budget
    # not the lazy greedy's top-k (kit vs official Jaccard 0.087 on the audit's run)
    assert got.tolist() != sorted(np.argsort(-gains)[:budget].tolist())


@pytest.mark.parametrize("greedy", ["stochastic", "lazy"])
def test_glister_presets_follow_the_official_greedy(small_digits, greedy):
    from lnlkit.presets.prune4rel import GLISTER_PRESETS
    from lnlkit.train.loader import stream_numpy_generator

    assert all(b().glister_greedy == "stochastic" and b().glister_epsilon == 0.9 for b in GLISTER_PRESETS.values())
    m = _short("prune:glister", ratio=0.3, glister_greedy=greedy)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    m.train_epoch(ctx, 0)
    subset, signals = m.select(ctx, 1)
    gains = signals["score"]
    if greedy == "stochastic":
        expect, _ = _stochastic_greedy_reference(gains, 90, stream_numpy_generator(0, 1, "prune4rel/glister"))
    else:
        expect = np.sort(np.argsort(-gains, kind="stable")[:90])
    assert subset.tolist() == expect.tolist()


# ------------------------------------------------------------------------------------------ config, presets, registry
def test_preset_values():
    assert PRESETS["cifar10n-dividemix"]().eta == 100.0 and PRESETS["cifar100n-sop"]().tau == 0.95


def test_schedule_and_net2_milestone_switch():
    m = lnlkit.get_method("prune4rel", preset="cifar10n-sop")
    assert m.num_epochs() == 310 and m.learning_rate(0) == 0.02
    assert m.learning_rate(10) == pytest.approx(0.0001 + 0.5 * (0.02 - 0.0001) * (1 + math.cos(math.pi * 10 / 300)))
    faithful = lnlkit.get_method("prune4rel", preset="clothing1m-dividemix")
    assert faithful.learning_rate(6) == pytest.approx(0.0002) and faithful.learning_rate(6, net2=True) == 0.002
    fixed = lnlkit.get_method("prune4rel", preset="clothing1m-dividemix", faithful_net2_milestone=False)
    assert fixed.learning_rate(6, net2=True) == pytest.approx(0.0002)


# ---------------------------------------------------------------------------------------------- the pipeline
def test_prune4rel_pipeline_on_digits_records_every_stage(small_digits, tmp_path):
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    run = _short(ratio=0.3).fit(noisy, out=tmp_path / "r", progress=False)
    assert [r["phase"] for r in run.history] == ["warmup", "train", "train"]
    n_sel = round(0.3 * 300)
    assert all(r["n_selected"] == n_sel for r in run.history[1:])
    sel = run.signals["selected"]
    assert not sel[0].any() and sel[1].sum() == n_sel and np.array_equal(sel[1], sel[2])
    assert np.isfinite(run.signals["score"][1].astype(float)).all()  # confidence of the selection epoch
    # the noise ratio inside S is what the recorder reports as 1 − selection precision
    is_noisy = np.load(tmp_path / "r" / "noise.npz")["is_noisy"]
    assert run.result["sel_precision"] == pytest.approx(1 - is_noisy[sel[2]].mean())
    assert run.result["reported_as"] == "test_acc_last" and run.result["reported"] == run.history[-1]["test_acc"]
    # balanced selection: class counts within one of each other (the learner's freshness: test_..._is_fresh)
    assert (
        "class_counts_min" in run.history[1]
        and run.history[1]["class_counts_max"] - run.history[1]["class_counts_min"] <= 1
    )


def test_sop_trains_only_on_the_subset_and_keeps_full_size_tables(small_digits):
    from lnlkit.methods.base import Context
    from lnlkit.train.loader import DeviceData

    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    m = _short("sop")
    data = DeviceData(noisy, torch.device("cpu"), 0)
    ctx = Context(
        data=data,
        device=torch.device("cpu"),
        seed=0,
        num_classes=10,
        n_train=300,
        in_channels=1,
        input_shape=data.input_shape,
        default_model="small_cnn",
        dataset_name="digits",
    )
    m.setup(ctx)
    m.train_indices = np.arange(0, 300, 3)
    u0, v0 = m.u.detach().clone(), m.v.detach().clone()
    out = m.train_epoch(ctx, 0)
    moved = (m.u.detach() != u0).any(1) | (m.v.detach() != v0).any(1)
    assert m.u.shape == (300, 1) and m.v.shape == (300, 10)
    assert set(np.flatnonzero(moved.numpy())) <= set(range(0, 300, 3)) and moved.sum() > 50
    assert out.record["steps"] == math.ceil(100 / m.config.batch_size)


@pytest.mark.parametrize("view", ["strong", "weak", "clean"])
def test_switch_score_view(small_digits, view):
    m = _short(score_view=view)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    a = m.score_pass(ctx, 1, view)[1]
    b = m.score_pass(ctx, 2, view)[1]
    clean = m.score_pass(ctx, 1, "clean")[1]
    if view == "clean":  # the test transform: no randomness
        torch.testing.assert_close(a, b)
    else:  # one random augmentation per image, drawn per epoch (the official strong view makes selection stochastic)
        assert not torch.allclose(a, b) and not torch.allclose(a, clean)


def _ctx(method, noisy, seed=0):
    from lnlkit.methods.base import Context
    from lnlkit.train.loader import DeviceData

    torch.manual_seed(seed)
    data = DeviceData(noisy, torch.device("cpu"), seed)
    ctx = Context(
        data=data,
        device=torch.device("cpu"),
        seed=seed,
        num_classes=noisy.num_classes,
        n_train=len(noisy.labels),
        in_channels=data.input_shape[0],
        input_shape=data.input_shape,
        default_model=noisy.dataset.default_model,
        dataset_name=noisy.name,
    )
    method.setup(ctx)
    return ctx


@pytest.mark.parametrize("faithful", [True, False])
def test_switch_dividemix_subset_warmup(small_digits, tmp_path, faithful):
    run = _short(
        preset="digits-dividemix", epochs=2, ratio=0.5, faithful_subset_no_warmup=faithful, subset_warm_up=1
    ).fit(small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False)
    assert [r["stage"] for r in run.history] == ["warmup", "subset", "subset"]
    gmm = run.signals["clean_prob_learner"]  # DivideMix's GMM posterior, only inside S
    sel = run.signals["selected"][-1]
    if faithful:  # official: the very first subset epoch fits a GMM on the fresh networks' losses
        assert "loss_x" in run.history[1] and np.isfinite(gmm[1][sel].astype(float)).all()
        assert np.isnan(gmm[1][~sel].astype(float)).all()
    else:  # fixed: one CE warm-up epoch on S first, then SSL
        assert "loss_x" not in run.history[1] and "loss_x" in run.history[2]
    assert all(math.isfinite(r["test_acc"]) for r in run.history)


@pytest.mark.parametrize("method", ["prune4rel", "prune:smallloss", "prune:uniform"])
def test_the_selectors_score_is_the_runs_clean_score_to_the_end(small_digits, tmp_path, method):
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    run = _short(method, epochs=3, ratio=0.3).fit(noisy, out=tmp_path / "r", progress=False)
    clean = noisy.labels == noisy.dataset.y_train
    if method == "prune:uniform":  # no score: no AUROC (its SOP learner's u outside S was never trained)
        assert "sel_auroc" not in run.result and "clean_score" not in run.signals
        assert "sel_auroc_learner" in run.history[-1]
        return
    score = run.signals["clean_score"]
    selection = 1  # the first epoch after the one warm-up epoch
    assert np.isnan(score[0].astype(float)).all()  # the warm-up has no selection score
    for epoch in range(selection, len(run.history)):
        np.testing.assert_array_equal(score[epoch], score[selection])
        # the AUROC of that score against the true mask, written out: P(score of a clean > score of a noisy)
        pos, neg = score[epoch][clean].astype(float), score[epoch][~clean].astype(float)
        pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        # (signals.npz keeps float16, the recorder scored the float32 values: rounding merges a few near-ties)
        assert run.history[epoch]["sel_auroc"] == pytest.approx(pairs, abs=2e-3)
    assert run.result["sel_auroc"] == pytest.approx(run.history[-1]["sel_auroc"]) and run.result["sel_auroc"] != 0.5
    # a run resumed after the selection epoch keeps the selector's score (the checkpoint carries it)
    resumed = interrupt_then_resume(
        lambda **kw: _short(method, epochs=3, ratio=0.3, **kw), noisy, tmp_path / "resumed", crash_after_epoch=2
    )
    np.testing.assert_array_equal(resumed.signals["clean_score"][-1], score[-1])
    assert resumed.result["sel_auroc"] == run.result["sel_auroc"]


# ---------------------------------------------------------------------------------------------- robustness
def test_a_class_without_samples_and_degenerate_embeddings():
    # class 2 has no sample (balance skips it), and identical embeddings make everyone everyone's neighbour
    labels = np.array([0, 0, 1, 1, 3, 3])
    r = greedy_neighborhood_confidence(np.ones((6, 4)), np.full(6, 0.5), labels, 4, num_classes=4)
    assert len(set(r.order.tolist())) == 4 and np.isfinite(r.nc).all() and r.min_balance == 0
    z = greedy_neighborhood_confidence(np.zeros((5, 3)), np.zeros(5), None, 3, balance=False)  # zero vectors
    assert len(z.order) == 3 and np.isfinite(z.nc).all()


# ---------------------------------------------------------------------------------------------- resume
# ---------------------------------------------------------------------------------------------- presets on fake data


def test_prune4rel_presets_train_the_sop_presets():
    from lnlkit.presets.sop import PRESETS as SOP_PRESET_BUILDERS

    for p4r, sop in (("cifar10n-sop", "cifar10n"), ("cifar100n-sop", "cifar100n")):
        method = lnlkit.get_method("prune4rel", preset=p4r)
        learner = method._make_learner_config("subset")
        expected = SOP_PRESET_BUILDERS[sop]()
        for key in (
            "lr",
            "momentum",
            "weight_decay",
            "nesterov",
            "lr_min",
            "lr_u",
            "lr_v",
            "rc",
            "rb",
            "model",
            "batch_size",
            "epochs",
            "strong_cutout",
            "crop_padding",
            "flip",
        ):
            assert getattr(learner, key) == getattr(expected, key), (p4r, key)


# ---------------------------------------------------------------------------------------------- digits criterion
# CE (``ce`` preset ``digits``) at symmetric:0.4 over seeds 0-2: best epoch 95.93 %, last 67.33 % (issue numbers).
CE_SYM40_BEST, CE_SYM40_LAST = 95.93, 67.33


@pytest.mark.slow
def test_sop_plus_digits_beats_ce_at_symmetric_40(digits, tmp_path):
    # the digits preset on a third of its schedule (the full 60 epochs take 2.5-5 min on the shared CPU; the
    # full grid is bench/prune4rel_digits.py).  Only a margin that holds on any processor is asserted here (15
    # points over CE's last epoch); "above CE's best epoch" is a thin margin, checked over three seeds in the grid
    run = lnlkit.get_method("sop", preset="digits", epochs=20, record_signals_every=5).fit(
        digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    res = run.result
    assert res["status"] == "complete" and res["epochs_done"] == 20
    assert res["reported"] >= CE_SYM40_LAST + 15.0, res


# ------------------------------------------------------------------------------------------ baselines in the pipeline
def test_forgetting_counts_events_on_every_training_minibatch(small_digits):
    m = _short("prune:forgetting", warmup_epochs=2, ratio=0.3)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    net = m.learner.networks()[0]
    forwards = []
    handle = net.register_forward_hook(
        lambda mod, inp, out: forwards.append((mod.training, inp[0].detach(), out.detach().float()))
    )
    # the expected count, written out: a sample forgets when its training-batch prediction on the given label is
    # wrong after having been right the previous time it was trained on (never right before its first batch)
    last, events, batches = np.zeros(300, bool), np.zeros(300, np.int64), []
    install = m.learner.batch_callback

    def spy(idx, logits, y):
        training, x, out = forwards[-1]
        k = len(idx)
        assert training and torch.equal(logits, out[:k])  # the train-mode output of the weak half
        assert not torch.allclose(x[:k], ctx.data.train_inputs(idx))  # an augmented view, not the clean image
        i, ok = idx.numpy(), (logits.argmax(1) == y).numpy()
        events[i] += last[i] & ~ok
        last[i] = ok
        batches.append(k)
        install(idx, logits, y)

    m.learner.batch_callback = spy
    for epoch in range(2):
        m.train_epoch(ctx, epoch)
    handle.remove()
    assert len(batches) == 2 * math.ceil(300 / m.config.batch_size)
    assert events.sum() > 0 and np.array_equal(m.forgetting_counts(), events)
    subset, _ = m.select(ctx, 2)
    assert subset.tolist() == forgetting_selection(events, ctx.data.labels.numpy(), 90).tolist()


def test_uniform_has_no_warmup_and_best_accuracy_comes_from_the_subset_stage(small_digits, tmp_path):
    run = _short("prune:uniform", epochs=2, warmup_epochs=3, ratio=0.3).fit(
        small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "u", progress=False
    )
    assert [r["stage"] for r in run.history] == ["subset", "subset"]
    assert run.result["best_epoch"] in (0, 1)
    # the best epoch is taken over the epochs on S only: a warm-up epoch on all data does not count
    history = [
        {"epoch": 0, "stage": "warmup", "test_acc": 45.0},
        {"epoch": 1, "stage": "warmup", "test_acc": 50.0},
        {"epoch": 2, "stage": "subset", "test_acc": 13.0},
        {"epoch": 3, "stage": "subset", "test_acc": 20.0},
        {"epoch": 4, "stage": "subset", "test_acc": 18.0},
    ]
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    for method in ("prune4rel", "prune:grand"):
        result = lnlkit.get_method(method)._result(history, noisy, "complete", 1.0)
        assert (result["test_acc_best"], result["best_epoch"], result["test_acc_last"]) == (20.0, 3, 18.0)
    result = lnlkit.get_method("sop")._result(history, noisy, "complete", 1.0)  # other methods: every epoch
    assert (result["test_acc_best"], result["best_epoch"]) == (50.0, 1)


def test_ce_learner_is_plain_cross_entropy_on_the_subset(small_digits, tmp_path):
    m = _short(learner="ce", warmup_epochs=1, ratio=0.3)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    m.train_epoch(ctx, 0)
    m.train_epoch(ctx, 1)
    learner = m.learner
    assert type(learner).__name__ == "_SubsetCE" and len(learner.train_indices) == 90
    # one more epoch, checked against plain CE steps replayed on a copy from the same batches
    import copy as _copy

    ref = _copy.deepcopy(learner.net).train()
    ref_opt = torch.optim.SGD(
        ref.parameters(), lr=learner.learning_rate(2), momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    ref_opt.load_state_dict(_copy.deepcopy(learner.optimizer.state_dict()))  # its buffers, not shared
    for g in ref_opt.param_groups:
        g["lr"] = learner.learning_rate(2)
    loader = ctx.data.loader(
        m.config.batch_size, indices=learner.train_indices, augment=learner.weak, stream="ce/train"
    )
    for batch in loader.epoch(2):
        assert set(batch.index.tolist()) <= set(learner.train_indices.tolist())
        ref_opt.zero_grad()
        F.cross_entropy(ref(batch.x), batch.y).backward()
        ref_opt.step()
    m.train_epoch(ctx, 2)
    for a, b in zip(ref.parameters(), learner.net.parameters()):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------------------- the algorithm pinned
@pytest.mark.parametrize("gain", ["self", "neighborhood"])
def test_the_gain_switch_reaches_the_selection(small_digits, gain):
    m = _short(gain=gain, tau=0.9, ratio=0.2)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    m.train_epoch(ctx, 0)
    logits, emb = m.score_pass(ctx, 1, "strong")  # the same random view the selection at epoch 1 draws
    conf = confidence_scores(logits.softmax(1), "LeastConfidence")
    expect = {
        g: np.sort(
            greedy_neighborhood_confidence(
                emb, conf, ctx.data.labels, 60, 0.9, 1.0, "cossim", True, g, num_classes=10
            ).order
        )
        for g in ("self", "neighborhood")
    }
    assert not np.array_equal(expect["self"], expect["neighborhood"])  # the switch matters on this data
    subset, signals = m.select(ctx, 1)
    np.testing.assert_array_equal(subset, expect[gain])
    np.testing.assert_array_equal(signals["clean_score"], conf.numpy())  # the greedy's confidence, higher = cleaner


def test_the_score_view_applies_cutout():
    # constant images whose pixel value is not the mean: after normalisation only Cutout (or a padded border, off
    # here) zeroes whole squares; whatever base view the score pass uses, each image must carry one
    x = np.full((12, 3, 32, 32), 200, dtype=np.uint8)
    y = np.arange(12) % 3
    ds = lnlkit.Dataset.from_arrays(
        x,
        y,
        x[:3],
        y[:3],
        name="const",
        num_classes=3,
        mean=[0.3137] * 3,
        std=[0.25] * 3,
        pixel_scale=255.0,
        clean_labels=True,
    )
    m = lnlkit.get_method(
        "prune4rel", preset="digits", model="small_cnn", crop_padding=0, strong_cutout=16, warmup_epochs=1, epochs=1
    )
    ctx = _ctx(m, ds.with_noise("none"))
    net = m.learner.networks()[0]
    seen = []
    embed = net.embed
    net.embed = lambda inp: (seen.append(inp.detach().clone()), embed(inp))[1]
    m.score_pass(ctx, 1, m.config.score_view)
    zero = (torch.cat(seen) == 0).all(1)  # (N, H, W): pixels zeroed in every channel
    per_image = zero.flatten(1).sum(1)
    # every image has its Cutout square (≥ 8×8 when clipped at a corner); no upper bound, since a geometric
    # AutoAugment op may also fill some pixels with the mean
    assert (per_image >= 64).all(), per_image
    assert len({tuple(z.flatten().tolist()) for z in zero}) > 1  # the square moves from image to image
    seen.clear()
    m.score_pass(ctx, 1, "clean")
    assert not (torch.cat(seen) == 0).any()


def _tiny_sop(small_digits, **kw):
    """SOP on 64 digits with a linear network, batch 32 (two steps an epoch), for step-level checks."""
    m = _short("sop", **kw)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    torch.manual_seed(5)
    m.net = _Linear(ctx.input_shape, 10)
    cfg = m.config
    m.optimizer = torch.optim.SGD(
        m.net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
    )
    m.train_indices = np.arange(64)
    return m, ctx


class _Linear(torch.nn.Module):
    """BatchNorm (no affine) then a linear layer: the batch statistics show whether both views share one forward."""

    def __init__(self, shape, classes):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(int(np.prod(shape)), affine=False)
        self.fc = torch.nn.Linear(int(np.prod(shape)), classes)

    def forward(self, x):
        return self.fc(self.bn(x.flatten(1)))


def _sop_plus_terms(z_w, z_s, y, u, v, C):
    """SOP+'s four terms written out from the paper's formulas (independently of lnlkit.methods.sop)."""
    Y = F.one_hot(y, C).float()
    U = (u**2 * Y).clamp(0, 1)
    V = (v**2 * (1 - Y)).clamp(0, 1)
    p = torch.softmax(z_w, 1) + U - V.detach()
    p = p.clamp_min(1e-4)
    p = (p / p.sum(1, keepdim=True)).clamp(1e-4, 1.0)
    ce = -(Y * p.log()).sum(1).mean()
    hard = F.one_hot(z_w.detach().argmax(1), C).float()
    mse = ((hard + U - V - Y) ** 2).sum(1).mean()
    pw = torch.softmax(z_w.detach(), 1)
    kl = (pw * (pw.log() - torch.log_softmax(z_s, 1))).sum(1).mean()
    bal = -torch.log(p.mean(0).clamp(1e-4, 1.0)).mean()
    return ce, mse, kl, bal


def test_sop_plus_step_matches_the_formulas_term_by_term(small_digits):
    m, ctx = _tiny_sop(small_digits, batch_size=64)
    cfg = m.config
    # the two views the step draws (same generator stream as the step), checked to differ
    loader = ctx.data.loader(cfg.batch_size, indices=m.train_indices, augment=[m.weak, m.strong], stream="sop/train")
    (batch,) = list(loader.epoch(0))
    xw, xs = batch.views
    assert not torch.equal(xw, xs)
    W0, b0 = m.net.fc.weight.detach().clone(), m.net.fc.bias.detach().clone()
    idx = batch.index
    with torch.no_grad():  # give u, v a non-trivial start so every term is exercised
        m.u[idx] = 0.3
        m.v[idx] = 0.2
    u = torch.full((64, 1), 0.3, requires_grad=True)
    v = torch.full((64, 10), 0.2, requires_grad=True)
    W, b = W0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    x = torch.cat([xw, xs]).flatten(1)  # one forward of [weak; strong]: BatchNorm statistics over both halves
    z = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) @ W.T + b
    ce, mse, kl, bal = _sop_plus_terms(z[:64], z[64:], batch.y, u, v, 10)
    out = m.train_epoch(ctx, 0)
    rec = out.record
    for key, value in (("loss_ce", ce), ("loss_mse", mse), ("loss_cons", kl), ("loss_bal", bal)):
        assert rec[key] == pytest.approx(value.item(), rel=1e-4, abs=1e-6), key
    total = ce + mse + cfg.rc * kl + cfg.rb * bal
    assert rec["loss"] == pytest.approx(total.item(), rel=1e-4)
    # u and v take one plain SGD step at their own constant rates; the network one Nesterov step (first step:
    # the momentum buffer is the gradient with weight decay, the update (1 + momentum) times it)
    gu, gv, gW, gb = torch.autograd.grad(total, [u, v, W, b])
    for p0, g, p1 in ((W0, gW, m.net.fc.weight), (b0, gb, m.net.fc.bias)):
        d = g + cfg.weight_decay * p0
        torch.testing.assert_close(p1.detach(), p0 - cfg.lr * (1 + cfg.momentum) * d, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(m.u.detach()[idx], (u - cfg.lr_u * gu).detach(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(m.v.detach()[idx], (v - cfg.lr_v * gv).detach(), rtol=1e-4, atol=1e-6)


def test_u_and_v_have_no_momentum_and_no_schedule(small_digits):
    # two epochs of two steps each, at an epoch where the network's cosine rate is well below its start: every step
    # of u and v must be exactly −lr_u·grad / −lr_v·grad of that step (no momentum carried, no schedule applied)
    m, ctx = _tiny_sop(small_digits, batch_size=32, epochs=4)
    cfg = m.config
    steps = []
    real_step = m.opt_u.step

    def spy_step(*a, **k):
        steps.append((m.u.detach().clone(), m.u.grad.detach().clone(), m.v.detach().clone(), m.v.grad.detach().clone()))
        return real_step(*a, **k)

    m.opt_u.step = spy_step
    for epoch in (2, 3):
        m.train_epoch(ctx, epoch)
        assert m.learning_rate(epoch) < 0.9 * cfg.lr
    # the value before step k+1 is the value after step k (v steps right after u, before the next batch)
    for (u0, gu, v0, gv), nxt in zip(steps, steps[1:] + [(m.u.detach(), None, m.v.detach(), None)]):
        torch.testing.assert_close(nxt[0], u0 - cfg.lr_u * gu, rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(nxt[2], v0 - cfg.lr_v * gv, rtol=1e-5, atol=1e-9)
    assert len(steps) == 4


def test_the_learner_on_the_subset_is_fresh(small_digits):
    m = _short(warmup_epochs=1, ratio=0.3)
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    warm = m.learner
    init_u = warm.u.detach().clone()
    m.train_epoch(ctx, 0)
    warm_u = warm.u.detach().clone()
    built = []
    make = m._make_learner

    def spy(ctx_, stage):
        learner = make(ctx_, stage)
        built.append(
            (stage, [p.detach().clone() for p in learner.networks()[0].parameters()], learner.u.detach().clone())
        )
        return learner

    m._make_learner = spy
    m.train_epoch(ctx, 1)  # selection, then the first epoch on S
    assert [b[0] for b in built] == ["subset"] and m.learner is not warm
    _, params0, u0 = built[0]
    # its networks start from a fresh initialisation (not the warm-up weights), its optimiser starts empty ...
    torch.manual_seed(ctx.seed * 1000 + 1)
    fresh = ctx.build_model(m.config.model)
    for a, b in zip(params0, fresh.parameters()):
        torch.testing.assert_close(a, b.detach())
    assert any(not torch.allclose(a, b) for a, b in zip(params0, warm.networks()[0].parameters()))
    # ... and its u/v tables are fresh too: samples outside S keep their initial values, which the warm-up moved
    outside = np.setdiff1d(np.arange(300), m.subset)
    assert not torch.equal(warm_u[outside], init_u[outside])
    assert torch.equal(m.learner.u.detach()[outside], init_u[outside]) and torch.equal(u0, init_u)


@pytest.mark.parametrize("last_network", [True, False])
def test_forgetting_with_dividemix_keeps_the_last_networks_events(small_digits, last_network):
    # DivideMix's warm-up trains net1 for an epoch, then net2; the official hook sees every batch of both, in turn,
    # but its before_run resets the counters when each network's warm-up starts: only net2's events survive
    m = _short(
        "prune:forgetting",
        preset="digits-dividemix",
        warmup_epochs=2,
        ratio=0.3,
        faithful_forgetting_last_network=last_network,
    )
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    nets = m.learner.networks()
    calls, outputs = [], []
    hooks = [
        net.register_forward_hook(lambda mod, inp, out, k=k: outputs.append((k, mod.training, out.detach())))
        for k, net in enumerate(nets)
    ]
    install = m.learner.batch_callback
    # the official counters, written out per network: an event when the prediction on the given label turns from
    # right (the last time this network saw the sample) to wrong; last_acc starts at 0
    last, events = np.zeros((2, 300), bool), np.zeros((2, 300), np.int64)

    def spy(idx, logits, y, k):
        net, training, out = outputs[-1]
        assert net == k and training and torch.equal(logits, out.float())
        i, ok = idx.numpy(), (logits.argmax(1) == y).numpy()
        events[k, i] += last[k, i] & ~ok
        last[k, i] = ok
        calls.append(k)
        install(idx, logits, y, k)

    m.learner.batch_callback = spy
    for epoch in range(2):
        m.train_epoch(ctx, epoch)
    for h in hooks:
        h.remove()
    per_net = math.ceil(300 / m.config.batch_size)  # Prune4ReL warms DivideMix up at batch B
    assert calls == ([0] * per_net + [1] * per_net) * 2
    assert events[1].sum() > 0
    expect = events[1] if last_network else events.sum(0)
    assert np.array_equal(m.forgetting_counts(), expect)
    subset, signals = m.select(ctx, 2)
    assert np.array_equal(signals["score"], expect.astype(np.float32))
    assert subset.tolist() == forgetting_selection(expect, ctx.data.labels.numpy(), 90).tolist()


def test_forgetting_ties_follow_the_official_reversed_argsort():
    counts = np.array([1, 1, 1, 0, 2, 2, 0, 0])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # official: per class, c_indx[np.argsort(events[c_indx])[::-1][:budget]] on the float32 counters
    expect = []
    for c in (0, 1):
        idx = np.flatnonzero(labels == c)
        expect += idx[np.argsort(counts.astype(np.float32)[idx])[::-1][:2]].tolist()
    assert forgetting_selection(counts, labels, 4).tolist() == sorted(expect)
    assert forgetting_selection(counts, labels, 4, "official").tolist() == sorted(expect)
    assert forgetting_selection(counts, labels, 4, "lowest_index").tolist() == [0, 1, 4, 5]


def test_baseline_scores_in_the_pipeline(small_digits):
    # GraNd and Uncertainty on the warm-up model's clean view, as the methods run them: GraNd's norms divided by
    # the size of their evaluation batch (300 = 9 × 32 + 12), Uncertainty's default Margin on probabilities
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    for method in ("prune:grand", "prune:uncertainty"):
        m = _short(method, ratio=0.2)
        ctx = _ctx(m, noisy)
        m.train_epoch(ctx, 0)
        logits, emb = m.score_pass(ctx, 1, "clean")
        p = logits.softmax(1)
        if method == "prune:grand":
            onehot = F.one_hot(ctx.data.labels, 10).float()
            norm = (p - onehot).norm(dim=1) * torch.sqrt(emb.pow(2).sum(1) + 1)
            size = torch.tensor([32.0] * 288 + [12.0] * 12)
            expect = (norm / size).numpy()
            order = -1.0  # the largest norms are kept
        else:
            top = p.topk(2, dim=1).values
            expect = (top[:, 0] - top[:, 1]).double().numpy()
            order = 1.0  # the smallest margins are kept
        subset, signals = m.select(ctx, 1)
        np.testing.assert_allclose(signals["score"], expect, rtol=1e-5, atol=1e-7)
        # the subset from the recorded scores (exact ties at the boundary cannot flip between machines)
        np.testing.assert_array_equal(subset, np.sort(np.argsort(order * signals["score"], kind="stable")[:60]))


# ------------------------------------------------------------------------------ official batch sizes (issue 23 #6)
@pytest.mark.parametrize("faithful", [True, False])
def test_dividemix_learner_warms_up_at_batch_b(small_digits, faithful):
    # official RobustCore warm-up: each network one epoch through the ``train`` loader at args.batch_size = B;
    # DivideMix's own warm-up (faithful_warmup_batch=False) doubles it.  300 samples, B = 64.
    m = _short("prune4rel", preset="digits-dividemix", warmup_epochs=1, faithful_warmup_batch=faithful)
    assert m.config.batch_size == 64
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    seen = {0: [], 1: []}
    hooks = [
        net.register_forward_hook(lambda mod, inp, out, k=k: seen[k].append(len(inp[0])) if mod.training else None)
        for k, net in enumerate(m.learner.networks())
    ]
    m.train_epoch(ctx, 0)
    for h in hooks:
        h.remove()
    expected = [64, 64, 64, 64, 44] if faithful else [128, 128, 44]
    assert seen[0] == expected and seen[1] == expected


@pytest.mark.parametrize("feature_batch", [None, 1024])
def test_moderate_features_use_train_mode_batchnorm_over_batches_of_b(small_digits, feature_batch):
    # official Moderate: the extractor is never put in eval mode and reads the ``eval_train`` loader, whose batch is
    # args.batch_size (B = 32 here: 300 = 9 × 32 + 12); moderate_feature_batch=1024 gives the kit's earlier one batch
    m = _short("prune:moderate", ratio=0.3, moderate_feature_batch=feature_batch)
    assert m.config.batch_size == 32
    ctx = _ctx(m, small_digits.with_noise("symmetric:0.4", seed=0))
    m.train_epoch(ctx, 0)
    net = m.learner.networks()[0]
    bn = next(mod for mod in net.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm))
    calls = []  # the hook travels into score_pass's train-mode copy of the network
    handle = bn.register_forward_hook(lambda mod, inp, out: calls.append((mod.training, len(inp[0]))))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    m.select(ctx, 1)
    handle.remove()
    expected = [32] * 9 + [12] if feature_batch is None else [300]
    assert [b for training, b in calls if training] == expected
    # the learner's own network keeps its running statistics
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())

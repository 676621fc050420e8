"""Me-Momentum: the loop decisions on mocked validation sequences, the pieces on tiny tensors, the official-code
switches, presets on fake data in the papers' formats, robustness, resume inside the nested loops, digits."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from methodtest import interrupt_then_resume, method_context

import lnlkit
from lnlkit.analysis import confident_set_rounds, round_changes
from lnlkit.methods import get_method
from lnlkit.methods.base import EpochOutput, Method, MethodConfig
from lnlkit.methods.me_momentum import (
    LoopState,
    MeMomentum,
    MeMomentumConfig,
    advance_noisy_val,
    advance_per_class,
    clothing_class_weights,
    confident_mask,
    early_stopping_step,
    per_class_scores,
)
from lnlkit.train.evaluate import class_balanced_accuracy, per_class_recall_precision, predict
from lnlkit.train.loader import random_holdout

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(**kw):
    """The digits preset with a tiny schedule (the algorithm unchanged): phase A ≤ 2 epochs, rounds of 2 epochs."""
    kw = {
        "max_phase_a_epochs": 2,
        "round_epochs": 2,
        "max_inner_rounds": 3,
        "outer_loops": 2,
        "checkpoint_every": 100,
        **kw,
    }
    return get_method("mememomentum", preset="digits", **kw)


def _finite(method):
    return all(bool(torch.isfinite(p).all()) for p in method.net.parameters())


def _drive(values, cfg, advance=advance_noisy_val):
    """Run the control flow over a mocked validation sequence; returns the visited (state, events) pairs."""
    state = LoopState(phase="round", round=1) if advance is advance_per_class else LoopState()
    visited = []
    for v in values:
        if state.phase == "done":
            break
        new, ev = advance(state, v, cfg)
        visited.append((state, ev))
        state = new
    return visited, state


# ---------------------------------------------------------------------------------------------- loop decisions
def test_margin_rule_stops_after_twenty_stale_epochs():
    best, margin, stale = 50.0, 0.0, 0
    while True:
        improved, best, margin, stop = early_stopping_step(40.0, best, margin)
        assert not improved and best == 50.0
        stale += 1
        if stop:
            break
    assert stale == 20 and margin > 2  # 0.1 accumulated 20 times is 2.0000000000000004 (official float behaviour)
    # a gain must beat best + 0.1·k after k stale epochs; a counting epoch resets the margin
    improved, best, margin, _ = early_stopping_step(50.25, 50.0, 0.3)
    assert (improved, best, margin) == (False, 50.0, pytest.approx(0.4))
    improved, best, margin, stop = early_stopping_step(50.31, 50.0, 0.3)
    assert (improved, best, margin, stop) == (True, 50.31, 0.0, False)
    assert early_stopping_step(50.0, 50.0, 0.0)[0] is False  # equal is not better


def test_phase_a_ends_by_margin_or_length_and_best_carries_into_the_rounds():
    cfg = MeMomentumConfig(max_phase_a_epochs=100, round_epochs=3, max_inner_rounds=19, outer_loops=1)
    seq = [10.0, 20.0] + [19.0] * 20 + [19.5, 19.9, 20.0]  # phase A stops after 22 epochs; round 1 never beats 20
    visited, state = _drive(seq, cfg)
    phases = [s.phase for s, _ in visited]
    assert phases[:22] == ["phase_a"] * 22 and visited[21][1].phase_a_stopped and phases[22] == "round"
    saves = [ev.save_best for _, ev in visited]
    assert saves[:2] == [True, True] and not any(saves[2:])  # best_val = 20 carried over: 19.5 … 20.0 never save
    assert not any(ev.new_global_best for _, ev in visited)  # phase A never sets the reported number
    # round 1 still "improves" (last_round = 0), so round 2 runs
    assert visited[-1][1].round_ended and visited[-1][1].round_improved and state.round == 2
    short = MeMomentumConfig(max_phase_a_epochs=3)
    visited, state = _drive([10.0, 20.0, 30.0], short)
    assert state.phase == "round" and not visited[-1][1].phase_a_stopped  # ended by its length limit


def test_rounds_stop_at_the_first_non_improving_round_and_all_outer_loops_run():
    cfg = MeMomentumConfig(max_phase_a_epochs=1, round_epochs=2, max_inner_rounds=19, outer_loops=3)
    # outer 0: phase A 50; round 1 60 (improves); round 2 70 (improves); round 3 65, 69 (no) -> outer 1
    # outer 1: phase A 40 (best starts over); round 1 45, 41; round 2 44, 44 (no) -> outer 2
    # outer 2: phase A 30; round 1 80 (new global best), round 2 10, 10 (no) -> done
    seq = [50, 55, 60, 70, 62, 65, 69, 40, 45, 41, 44, 44, 30, 80, 20, 10, 10, 99, 99]
    visited, state = _drive([float(v) for v in seq], cfg)
    assert state.phase == "done" and len(visited) == 17
    rounds = [(s.outer, s.phase, s.round) for s, _ in visited]
    assert rounds[:7] == [
        (0, "phase_a", 0),
        (0, "round", 1),
        (0, "round", 1),
        (0, "round", 2),
        (0, "round", 2),
        (0, "round", 3),
        (0, "round", 3),
    ]
    assert rounds[7] == (1, "phase_a", 0) and visited[7][0].best_val == 0.0 and visited[7][0].margin == 0.0
    assert rounds[12] == (2, "phase_a", 0)
    globals_ = [i for i, (_, ev) in enumerate(visited) if ev.new_global_best]
    assert globals_ == [1, 2, 3, 13]  # 55, 60, 70, then 80 in outer 2; outer 1's 45 is no global best
    ended = [(i, ev.round_improved) for i, (_, ev) in enumerate(visited) if ev.round_ended]
    assert ended == [(2, True), (4, True), (6, False), (9, True), (11, False), (14, True), (16, False)]
    assert [i for i, (_, ev) in enumerate(visited) if ev.outer_ended] == [6, 11, 16]


def test_inner_rounds_are_capped():
    cfg = MeMomentumConfig(max_phase_a_epochs=1, round_epochs=1, max_inner_rounds=4, outer_loops=1)
    visited, state = _drive([float(v) for v in range(1, 20)], cfg)  # every round improves
    assert state.phase == "done" and [s.round for s, _ in visited] == [0, 1, 2, 3, 4]


def test_per_class_schedule_is_fixed():
    cfg = MeMomentumConfig(variant="per_class", outer_loops=3, max_inner_rounds=6, round_epochs=5)
    visited, state = _drive([float(v % 7) for v in range(200)], cfg, advance_per_class)
    assert state.phase == "done" and len(visited) == 90
    assert {s.phase for s, _ in visited} == {"round"}
    assert [s.outer_epoch for s, _ in visited[:31]] == list(range(30)) + [0]  # lr epoch counts within an outer loop
    assert [i for i, (_, ev) in enumerate(visited) if ev.new_global_best] == [1, 2, 3, 4, 5, 6]
    m = MeMomentum(dataclasses.replace(cfg, round_milestones=(10, 20), lr=0.005))
    lrs = [m.learning_rate(s) for s, _ in visited[:31]]
    assert lrs[9] == 0.005 and lrs[10] == pytest.approx(5e-4) and lrs[20] == pytest.approx(5e-5) and lrs[30] == 0.005


def test_round_learning_rate_restarts_every_round():
    m = get_method("mememomentum", preset="cifar10")
    assert m.learning_rate(LoopState(phase="phase_a", step=70)) == 0.01
    assert [m.learning_rate(LoopState(phase="round", round=2, step=e)) for e in (0, 39, 40, 79, 80)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 1e-4]
    )
    assert m.max_epochs() == 3 * (100 + 19 * 100) and m.num_epochs() == m.max_epochs()
    assert get_method("mememomentum", preset="cifar10", epochs=7).num_epochs() == 7


def test_reported_metric_is_test_at_the_last_global_best_with_a_fallback():
    m = MeMomentum()
    hist = [
        {"val_acc": 60.0, "test_acc": 70.0, "new_global_best": False},  # phase A: never a global best
        {"val_acc": 55.0, "test_acc": 80.0, "new_global_best": True},
        {"val_acc": 58.0, "test_acc": 85.0, "new_global_best": True},
        {"val_acc": 57.0, "test_acc": 90.0, "new_global_best": False},
    ]
    assert m.reported_metric(hist) == 85.0  # not the best test (90), not phase A's higher val (60)
    # no round ever set a global best (the official script would report 0): test at the best val of any epoch
    for r in hist:
        r["new_global_best"] = False
    assert m.reported_metric(hist) == 70.0
    hist[3]["val_acc"] = 60.0  # ties: the first epoch that reached it
    assert m.reported_metric(hist) == 70.0
    assert math.isnan(m.reported_metric([]))


# ---------------------------------------------------------------------------------------------- pieces
def test_class_balanced_accuracy_and_per_class_scores():
    labels = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    pred = torch.tensor([0, 0, 0, 1, 1, 0, 2])
    # per class: 3/4, 1/1, 1/2 -> mean 0.75; plain accuracy would be 5/7
    assert class_balanced_accuracy(pred, labels, 4) == pytest.approx(75.0)  # class 3 absent: left out
    recall, precision = per_class_recall_precision(pred, labels, 4)
    assert recall.tolist() == pytest.approx([0.75, 1.0, 0.5, 0.0])
    assert precision.tolist() == pytest.approx([0.75, 0.5, 1.0, 0.0])
    assert per_class_scores(pred, labels, 4, 0.45).tolist() == pytest.approx(
        [0.75, 0.45 + 0.55 * 0.5, 0.45 * 0.5 + 0.55, 0.0]
    )
    assert class_balanced_accuracy(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), 3) == 0.0


def test_clothing_class_weights():
    train = torch.tensor([0] * 6 + [1] * 3 + [2] * 3)  # mean 4 -> 4/6, 4/3, 4/3
    val = torch.tensor([0, 0, 1, 2, 2, 2])  # mean 2 -> 2/2, 1/2, 3/2
    w = clothing_class_weights(train, val, 3)
    assert w.tolist() == pytest.approx([4 / 6 * 1.0, 4 / 3 * 0.5, 4 / 3 * 1.5])
    empty = clothing_class_weights(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]), 3)
    assert torch.isfinite(empty).all() and empty[2] == 0.0  # a class with no training sample


def test_confident_mask_and_holdout():
    assert confident_mask(torch.tensor([1, 2, 0]), torch.tensor([1, 0, 0])).tolist() == [True, False, True]
    with pytest.raises(ValueError):
        confident_mask(torch.tensor([1]), torch.tensor([1, 2]))
    train, val = random_holdout(1347, 0.1, seed=3)
    assert len(train) == 1212 and len(val) == 135 and not set(train) & set(val)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(1347))
    np.testing.assert_array_equal(train, np.sort(np.random.RandomState(3).choice(1347, 1212, replace=False)))
    assert not np.array_equal(random_holdout(1347, 0.1, seed=4)[0], train)


# ---------------------------------------------------------------------------------------------- base driver
class _Stopper(Method):
    """A do-nothing method whose schedule ends after ``stop_after`` epochs (tests the base's early finish)."""

    name = "stopper"
    Config = MethodConfig
    stop_after = 3

    def setup(self, ctx):
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        self.done = 0

    def train_epoch(self, ctx, epoch):
        self.done += 1
        return EpochOutput({"phase": "x"}, {"selected": np.ones(ctx.n_train, dtype=bool)})

    def networks(self):
        return [self.net]

    def state_dict(self):
        return {"done": self.done}

    def load_state_dict(self, state):
        self.done = state["done"]

    def finished(self):
        return self.done >= self.stop_after


def test_driver_stops_when_the_method_finishes(small_digits, tmp_path):
    data = small_digits.with_noise("symmetric:0.4", seed=0)
    run = _Stopper(MethodConfig(epochs=10, checkpoint_every=100)).fit(data, out=tmp_path / "r", progress=False)
    assert run.complete and run.result["epochs_done"] == 3 and run.result["epochs_total"] == 10
    assert run.signals["epoch"].tolist() == [0, 1, 2]  # the early last epoch is recorded as a last epoch
    # a checkpoint written at the finishing epoch, resumed before result.json said "complete": no extra epoch
    (tmp_path / "r" / "result.json").unlink()
    again = _Stopper(MethodConfig(epochs=10, checkpoint_every=100)).fit(
        data, out=tmp_path / "r", progress=False, resume=True
    )
    assert [r["epoch"] for r in again.history] == [0, 1, 2] and again.complete


# ---------------------------------------------------------------------------------------------- switches
def _loader_spy(ctx):
    calls = []
    orig = ctx.data.loader

    def spy(batch_size, indices=None, augment=None, labels=None, shuffle=True, drop_last=False, stream="train"):
        calls.append((stream, augment, shuffle))
        return orig(batch_size, indices, augment, labels, shuffle, drop_last, stream)

    ctx.data.loader = spy
    return calls


@pytest.mark.parametrize("transform", ["train", "test"])
def test_switch_extract_transform(small_digits, transform):
    method = _tiny(extract_transform=transform, lr=0.05)
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    ctx = method_context(method, noisy)
    for e in range(3):  # a network that predicts more than one class
        method.train_on_set(ctx, e)
    calls = _loader_spy(ctx)
    chosen = method.extract_confident_set(ctx, epoch=5)
    ((stream, augment, shuffle),) = calls
    assert stream == "extract" and not shuffle
    calls.clear()
    pool = method.train_pool
    plain = predict(method.net, ctx.data, "train")[pool].argmax(1)
    plain_set = pool[plain == ctx.data.labels[pool]]
    if transform == "test":
        assert augment is None and torch.equal(chosen, plain_set)
    else:  # official: predicted on randomly cropped images, so the set differs from the clean-image one
        assert augment is method.augment and augment.crop_padding == 1
        assert not torch.equal(chosen, plain_set)
        assert torch.equal(chosen, method.extract_confident_set(ctx, epoch=5))  # deterministic per epoch


@pytest.mark.parametrize("transform", ["train", "test"])
def test_switch_val_transform(small_digits, transform):
    method = _tiny(val_transform=transform, lr=0.05)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    for e in range(3):
        method.train_on_set(ctx, e)
    calls = _loader_spy(ctx)
    accs = [method.noisy_validation_accuracy(ctx, epoch=e) for e in (1, 2, 3)]
    assert [c[0] for c in calls] == ["val"] * 3 and all((c[1] is not None) == (transform == "train") for c in calls)
    val = method.val_idx
    plain = class_balanced_accuracy(predict(method.net, ctx.data, "train")[val].argmax(1), ctx.data.labels[val], 10)
    assert all(a == round(a, 2) for a in accs)
    if transform == "test":
        assert accs == [round(plain, 2)] * 3
    else:  # a different random crop every epoch moves the (rounded) accuracy
        assert len(set(accs)) > 1


@pytest.mark.parametrize("padding", [0, 1])
def test_switch_stem_padding(padding):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20, 3, 32, 32), dtype=np.uint8)
    y = np.arange(20) % 10
    ds = lnlkit.Dataset.from_arrays(x, y, x[:4], y[:4], name="cifar-like", clean_labels=True)
    method = get_method("mememomentum", preset="cifar10", stem_padding=padding, batch_size=8)
    ctx = method_context(method, ds.with_noise("none"))
    shapes = []
    method.net.conv1.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[-2:])))
    method.net.eval()
    method.net(ctx.data.train_inputs(torch.arange(2)))
    assert shapes == [(30, 30) if padding == 0 else (32, 32)]
    # a fresh network of a later outer loop keeps the stem and differs from the first one
    fresh = method.fresh_network(ctx, outer=1)
    assert fresh.conv1.padding == (padding, padding)
    assert not torch.equal(fresh.conv1.weight, method.net.conv1.weight)
    assert torch.equal(fresh.conv1.weight, method.fresh_network(ctx, outer=1).conv1.weight)


def _stale_epochs_to_stop(cfg):
    """Stale epochs after which phase A stops, from the control flow itself (a best of 50, then nothing better)."""
    visited, _ = _drive([50.0] + [40.0] * cfg.max_phase_a_epochs, cfg)
    stops = [i for i, (_, ev) in enumerate(visited) if ev.phase_a_stopped]
    return stops[0] if stops else None


def test_digits_phase_a_scales_the_official_stopping_rule():
    official, digits = MeMomentum.PRESETS["cifar10"](), MeMomentum.PRESETS["digits"]()
    assert (official.max_phase_a_epochs, _stale_epochs_to_stop(official)) == (100, 20)
    # the same proportion of the phase's length, and reachable before the length limit
    assert digits.max_phase_a_epochs == 20 and _stale_epochs_to_stop(digits) == 4
    # a late gain restarts the count; phase A then ends by the margin rule, not by its length
    seq = [50.0, 40.0, 40.0, 40.0, 51.0, 40.0, 40.0, 40.0, 40.0, 99.0]
    visited, state = _drive(seq, digits)
    assert [ev.save_best for _, ev in visited[:5]] == [True, False, False, False, True]
    assert visited[8][1].phase_a_stopped and len([s for s, _ in visited if s.phase == "phase_a"]) == 9
    assert visited[9][0].phase == "round" and visited[9][0].best_val == 51.0  # the best carries into round 1


@pytest.mark.parametrize("spelling", ["ResNet18", " resnet34 ", "RESNET18"])
def test_stem_padding_applies_whatever_the_spelling(spelling):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(8, 3, 32, 32), dtype=np.uint8)
    ds = lnlkit.Dataset.from_arrays(x, np.arange(8) % 4, x[:2], np.arange(2), name="cifar-like", clean_labels=True)
    for padding in (0, 1):
        method = get_method("mememomentum", model=spelling, stem_padding=padding, batch_size=4)
        ctx = method_context(method, ds.with_noise("none"))
        assert method.net.conv1.padding == (padding, padding), (spelling, padding)
        assert method.fresh_network(ctx, outer=1).conv1.padding == (padding, padding)


# ---------------------------------------------------------------------------------------------- round and restart
def _spy_training(method):
    """Record the weights and the optimiser as ``train_on_set`` finds them (i.e. after the epoch's start)."""
    seen = {}
    train = method.train_on_set

    def spy(ctx, epoch):
        seen["weights"] = {k: v.detach().clone() for k, v in method.net.state_dict().items()}
        seen["momentum_buffers"] = len(method.optimizer.state)
        params = [p for group in method.optimizer.param_groups for p in group["params"]]
        seen["optimises_the_net"] = len(params) == len(list(method.net.parameters())) and all(
            a is b for a, b in zip(params, method.net.parameters())
        )
        return train(ctx, epoch)

    method.train_on_set = spy
    return seen


def _same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_round_starts_from_latest_with_a_fresh_optimiser(small_digits):
    method = _tiny()  # phase A of 2 epochs, rounds of 2
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    for epoch in range(2):
        method.train_epoch(ctx, epoch)
    assert method.loop.phase == "round" and method.loop.step == 0 and len(method.optimizer.state) > 0
    # a "latest" that differs from the current weights in every tensor
    latest = {k: v.clone() for k, v in method.fresh_network(ctx, outer=7).state_dict().items()}
    method.best_state = latest
    seen = _spy_training(method)
    method.train_epoch(ctx, 2)
    assert _same_weights(seen["weights"], latest)  # reloaded
    assert seen["momentum_buffers"] == 0 and seen["optimises_the_net"]  # a new SGD, no momentum carried over
    # the next round again: momentum from round 1 is dropped, "latest" reloaded
    method.train_epoch(ctx, 3)
    assert method.loop.round == 2 and method.loop.step == 0 and len(method.optimizer.state) > 0
    latest = {k: v.clone() for k, v in method.fresh_network(ctx, outer=8).state_dict().items()}
    method.best_state = latest
    method.train_epoch(ctx, 4)
    assert _same_weights(seen["weights"], latest) and seen["momentum_buffers"] == 0


def test_latest_is_saved_only_when_validation_improves(small_digits):
    method = _tiny(max_phase_a_epochs=4)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    # phase A: 50, 49, 50.05 (within the margin of 0.1 grown by the stale epoch), 52; round 1: 51 (below the
    # carried best), 53
    vals = iter([50.0, 49.0, 50.05, 52.0, 51.0, 53.0])
    method.noisy_validation_accuracy = lambda ctx, epoch: next(vals)
    saved = []
    for epoch in range(6):
        before = method.best_state
        method.train_epoch(ctx, epoch)
        now = {k: v.detach() for k, v in method.net.state_dict().items()}
        saved.append(method.best_state is not before)
        if saved[-1]:
            assert _same_weights(method.best_state, now)
            assert all(v.data_ptr() != now[k].data_ptr() for k, v in method.best_state.items())  # a copy
        else:
            assert not _same_weights(method.best_state, now)
    assert saved == [True, False, False, True, False, True]


def test_outer_loops_after_the_first_start_from_a_fresh_network(small_digits):
    method = _tiny()
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    first = {k: v.clone() for k, v in method.net.state_dict().items()}
    assert _same_weights(first, method.fresh_network(ctx, outer=0).state_dict())
    for epoch in range(3):
        method.train_epoch(ctx, epoch)
    confident = method.train_set.clone()
    method.loop = LoopState(outer=1, phase="phase_a")  # the next outer loop begins
    seen = _spy_training(method)
    out = method.train_epoch(ctx, 3)
    fresh = method.fresh_network(ctx, outer=1).state_dict()
    assert _same_weights(seen["weights"], fresh) and not _same_weights(fresh, first)
    assert seen["momentum_buffers"] == 0 and seen["optimises_the_net"]
    assert torch.equal(method.train_set, confident) and out.record["n_train_set"] == len(confident)


# ---------------------------------------------------------------------------------------------- validation
def test_per_class_variant_needs_a_validation_set(small_digits):
    method = get_method("mememomentum", preset="digits", variant="per_class")
    with pytest.raises(ValueError, match="clean validation set"):
        method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))


# ---------------------------------------------------------------------------------------------- presets
def test_presets_construct_and_document():
    for name in ("mnist", "cifar10", "cifar100", "clothing1m", "digits"):
        cfg = MeMomentum.PRESETS[name]()
        cfg.validate()
        assert MeMomentum.PRESETS[name].__doc__
    p = {n: MeMomentum.PRESETS[n]() for n in MeMomentum.PRESETS}
    assert (p["mnist"].model, p["cifar10"].model, p["cifar100"].model, p["clothing1m"].model) == (
        "lenet",
        "resnet18",
        "resnet34",
        "resnet50_tv",
    )
    for n in ("mnist", "cifar10", "cifar100"):
        c = p[n]
        assert (
            c.variant,
            c.lr,
            c.momentum,
            c.weight_decay,
            c.batch_size,
            c.outer_loops,
            c.max_inner_rounds,
            c.round_epochs,
            c.round_milestones,
            c.max_phase_a_epochs,
            c.stem_padding,
        ) == ("noisy_val", 0.01, 0.9, 1e-4, 128, 3, 19, 100, (40, 80), 100, 0)
        assert (c.margin_step, c.margin_limit, c.val_fraction) == (0.1, 2.0, 0.1)
    assert (p["cifar10"].extract_transform, p["cifar10"].val_transform) == ("train", "train")
    cl = p["clothing1m"]
    assert (
        cl.variant,
        cl.lr,
        cl.weight_decay,
        cl.batch_size,
        cl.outer_loops,
        cl.max_inner_rounds,
        cl.round_epochs,
        cl.round_milestones,
        cl.beta,
        cl.class_weighted,
    ) == ("per_class", 0.005, 1e-3, 32, 3, 6, 5, (10, 20), 0.45, True)
    assert get_method("mememomentum", preset="clothing1m").max_epochs() == 90
    d = p["digits"]  # scale only: the algorithm's constants are the paper's
    assert (
        d.lr,
        d.momentum,
        d.weight_decay,
        d.margin_step,
        d.outer_loops,
        d.max_inner_rounds,
        d.val_fraction,
        d.extract_transform,
        d.val_transform,
    ) == (0.01, 0.9, 1e-4, 0.1, 3, 19, 0.1, "train", "train")
    fixed = p["digits-fixed"]
    assert (fixed.extract_transform, fixed.val_transform) == ("test", "test")
    assert dataclasses.replace(fixed, extract_transform="train", val_transform="train") == d


# ---------------------------------------------------------------------------------------------- per-class variant
def _with_val(ds, n_val=100):
    full = lnlkit.load_dataset("digits")
    return dataclasses.replace(ds, x_val=full.x_test[-n_val:], y_val=full.y_test[-n_val:])


def test_per_class_rebuild_uses_each_class_best_model(small_digits):
    method = get_method(
        "mememomentum",
        preset="digits",
        variant="per_class",
        round_epochs=1,
        max_inner_rounds=2,
        outer_loops=2,
        class_weighted=True,
        extract_transform="test",
        val_transform="test",
    )
    ctx = method_context(method, _with_val(small_digits).with_noise("symmetric:0.4", seed=0))
    labels = ctx.data.labels
    out0 = method.train_epoch(ctx, 0)
    assert out0.record["n_class_improved"] == 10  # the first epoch of an outer loop improves every class
    snapshot = method.class_keep.clone()
    expected = predict(method.net, ctx.data, "train").argmax(1) == labels
    assert torch.equal(snapshot, expected)
    out1 = method.train_epoch(ctx, 1)  # round 2: the set is rebuilt from the per-class bests
    assert out1.record["n_extracted"] == int(snapshot.sum())
    w = method.class_weights
    assert w is not None and torch.isfinite(w).all()
    out2 = method.train_epoch(ctx, 2)  # a new outer loop: fresh network, per-class bests start over
    assert out2.record["outer"] == 1 and out2.record["round"] == 1 and out2.record["n_class_improved"] == 10


# ---------------------------------------------------------------------------------------------- robustness
def test_class_weighted_loss_with_zero_weight_classes(small_digits):
    # a clean validation set without classes 5-9: their weights are 0, a batch of them gives loss 0, not NaN
    ds = _with_val(small_digits, 100)
    keep = ds.y_val < 5
    ds = dataclasses.replace(ds, x_val=ds.x_val[keep], y_val=ds.y_val[keep])
    method = get_method(
        "mememomentum",
        preset="digits",
        variant="per_class",
        class_weighted=True,
        round_epochs=1,
        max_inner_rounds=1,
        outer_loops=1,
        batch_size=2,
    )
    ctx = method_context(method, ds.with_noise("symmetric:0.4", seed=0))
    assert (method.class_weights[5:] == 0).all()
    out = method.train_epoch(ctx, 0)
    assert math.isfinite(out.record["loss"]) and _finite(method)


# ---------------------------------------------------------------------------------------------- end to end
def test_run_records_the_nested_loops(small_digits, tmp_path):
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    run = _tiny().fit(noisy, out=tmp_path / "r", progress=False)
    hist = run.history
    assert run.complete and run.result["epochs_done"] == len(hist) <= run.result["epochs_total"]
    assert hist[0]["phase"] == "phase_a" and hist[-1]["outer"] == 1 and hist[-1]["outer_ended"]
    assert {r["round"] for r in hist if r["outer"] == 0 and r["phase"] == "round"} >= {1, 2}  # at least 2 rounds
    starts = [r for r in hist if r["phase"] == "round" and r["epoch_in_phase"] == 0]
    assert all("n_extracted" in r and r["n_train_set"] == r["n_extracted"] for r in starts)
    # outer 1's phase A trains on the last confident set of outer 0
    last_set = [r for r in hist if r["outer"] == 0][-1]["n_train_set"]
    assert [r for r in hist if r["outer"] == 1][0]["n_train_set"] == last_set
    best = [r for r in hist if r["new_global_best"]][-1]
    assert run.result["reported"] == best["test_acc"] and best["phase"] == "round"
    assert best["val_acc"] == max(r["val_acc"] for r in hist if r["phase"] == "round")
    sig = run.signals
    assert sig["epoch"].tolist() == [r["epoch"] for r in hist]
    for key in ("loss", "confidence", "pred", "selected", "holdout", "clean_score"):
        assert sig[key].shape == (len(hist), 400), key
    # the clean score is the margin of the given label: positive exactly where the prediction is the given label,
    # at most the given label's probability, and it ranks the truly clean samples above the noisy ones
    given = np.asarray(noisy.noise.labels)
    np.testing.assert_array_equal(sig["clean_score"] > 0, sig["pred"] == given[None, :])
    assert (sig["clean_score"] <= sig["confidence"] + 1e-6).all() and (sig["clean_score"] >= -1).all()
    auroc = [(row[~run.is_noisy][:, None] > row[run.is_noisy][None, :]).mean() for row in sig["clean_score"]]
    assert max(auroc) > 0.65, auroc  # this tiny schedule barely trains; the digits run below checks it properly
    assert not (sig["selected"] & sig["holdout"]).any() and sig["holdout"].sum(1).tolist() == [40] * len(hist)
    first = hist.index(starts[0])
    assert (
        sig["selected"][first].sum() == starts[0]["n_extracted"]
        and hist[first]["sel_precision"] > hist[0]["sel_precision"]
    )
    # the analysis helpers of the notebook agree with the history and the true mask
    table = confident_set_rounds(run)
    assert len(table) == len(starts) and table["size"].tolist() == [r["n_extracted"] for r in starts]
    assert table["added"].tolist() == [r["n_added"] for r in starts]
    assert table["dropped"].tolist() == [r["n_dropped"] for r in starts]
    clean = ~run.is_noisy
    row0 = table.iloc[0]
    assert row0["truly_clean"] == int((sig["selected"][first] & clean).sum())
    assert row0["precision"] == pytest.approx(hist[first]["sel_precision"])
    assert row0["recall"] == pytest.approx(row0["truly_clean"] / int((clean & ~sig["holdout"][first]).sum()))
    ch = round_changes(run, starts[1]["outer"], starts[1]["round"])
    second = hist.index(starts[1])
    np.testing.assert_array_equal(ch["added"], np.flatnonzero(sig["selected"][second] & ~sig["selected"][second - 1]))
    assert table.iloc[1]["added_clean"] == int(clean[ch["added"]].sum())
    with pytest.raises(ValueError, match="no recorded extraction"):
        round_changes(run, 5, 1)
    # the recorded hold-out is the official split of the training seed, and replaying the margin rule on each phase
    # A's recorded validation accuracies reproduces the run's decisions (what notebook 13 shows)
    hp = run.config["hyperparameters"]
    _, val_idx = random_holdout(len(noisy.labels), hp["val_fraction"], run.config["seed"])
    np.testing.assert_array_equal(np.flatnonzero(sig["holdout"][-1]), val_idx)
    for outer in sorted({r["outer"] for r in hist}):
        phase_a = [r for r in hist if r["outer"] == outer and r["phase"] == "phase_a"]
        best = margin = 0.0
        for r in phase_a:
            improved, best, margin, _ = early_stopping_step(
                r["val_acc"], best, margin, hp["margin_step"], hp["margin_limit"]
            )
            assert (improved, best) == (r["saved_best"], r["best_val"]), (outer, r["epoch"])


@pytest.fixture(scope="module")
def uninterrupted(small_digits, tmp_path_factory):
    data = small_digits.with_noise("pairflip:0.3", seed=1)
    run = _tiny(checkpoint_every=1).fit(data, out=tmp_path_factory.mktemp("full") / "r", progress=False)
    return data, run


@pytest.mark.parametrize("where", ["phase_a", "round_start", "mid_round", "second_outer"])
def test_resume_inside_the_nested_loops(uninterrupted, tmp_path, where):
    data, full = uninterrupted
    hist = full.history
    pick = {
        "phase_a": lambda r: r["phase"] == "phase_a" and r["outer"] == 0,
        "round_start": lambda r: r["phase"] == "round" and r["round"] == 2 and r["epoch_in_phase"] == 0,
        "mid_round": lambda r: r["phase"] == "round" and r["round"] == 2 and r["epoch_in_phase"] == 1,
        "second_outer": lambda r: r["outer"] == 1 and r["phase"] == "round",
    }[where]
    crash_at = next(r["epoch"] for r in hist if pick(r))

    resumed = interrupt_then_resume(_tiny, data, tmp_path / "cut", crash_after_epoch=crash_at)
    for key in (
        "phase",
        "outer",
        "round",
        "epoch_in_phase",
        "loss",
        "val_acc",
        "test_acc",
        "n_train_set",
        "sel_precision",
        "new_global_best",
    ):
        assert [r.get(key) for r in resumed.history] == [r.get(key) for r in hist], key
    for key in ("selected", "loss", "pred"):
        np.testing.assert_array_equal(resumed.signals[key], full.signals[key])
    for key in ("reported", "test_acc_last", "epochs_done", "status"):
        assert resumed.result[key] == full.result[key]


def test_digits_short_schedule_selects_clean_samples(digits, tmp_path):
    # one outer loop of the digits preset with shorter rounds: the confident set is already far cleaner than the
    # noisy set and the reported accuracy far above chance
    run = get_method(
        "mememomentum",
        preset="digits",
        outer_loops=1,
        max_phase_a_epochs=10,
        round_epochs=5,
        round_milestones=(2, 4),
        checkpoint_every=100,
    ).fit(digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False)
    res = run.result
    score = run.signals["clean_score"][-1].astype(float)  # the clean score separates clean from noisy samples
    assert (score[~run.is_noisy][:, None] > score[run.is_noisy][None, :]).mean() > 0.9
    assert res["sel_precision"] >= 0.93 and res["sel_recall"] >= 0.6, res
    assert res["reported"] >= 85.0, res


# CE (``ce`` preset ``digits``) on digits with symmetric:0.4, seeds 0-2, measured on this kit's CPU runs: last epoch
# 67.33 % (mean; best epoch 95.93 %, the bench's criterion); seed 0 alone: last 66.9 % (tests/test_ce_acceptance.py).
CE_SYM40_LAST_MEAN = 67.33


@pytest.mark.slow
def test_digits_preset_clears_ce_at_symmetric_40(digits, tmp_path):
    # the digits preset unchanged on one seed, on the module's single thread (about 2-4 minutes on the shared 2-core
    # machine).  CPU float paths differ between processors and the method selects on 135 noisy hold-out samples, so
    # one seed moves by points: only margins that hold on any processor are asserted here (measured on an AMD EPYC:
    # reported 99.6, selection precision 0.99).  The thin criterion, above CE's best epoch, is checked over three
    # seeds by bench/digits_grid.py --method mememomentum.
    run = get_method("mememomentum", preset="digits").fit(
        digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    res = run.result
    assert res["status"] == "complete" and res["epochs_done"] < res["epochs_total"]  # ended by its own schedule
    assert res["reported"] >= CE_SYM40_LAST_MEAN + 15.0, res
    assert res["sel_precision"] >= 0.93, res
    # phase A of every outer loop ended by the margin rule or its length, and the rounds ran
    assert any(r.get("phase_a_stopped") for r in run.history), "the margin rule never fired"

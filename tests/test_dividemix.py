"""DivideMix and SMR: the pieces on tiny tensors, the official-code switches, presets, and short runs end to end."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from methodtest import CE_SYM40_SEED0_LAST, DEFAULT_THREADS, method_context
from sklearn.metrics import roc_auc_score

import lnlkit
from lnlkit.methods.dividemix import SMR, DivideMix, DivideMixConfig, SMRConfig
from lnlkit.train.evaluate import predict, predict_train_subset
from lnlkit.train.loader import DeviceData

CIFAR_SETTINGS = [
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
PAPER_PRESETS = CIFAR_SETTINGS + ["animal10n", "clothing1m", "webvision"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _short(method="dividemix", preset="digits", **kw):
    """The digits preset cut to a warm-up epoch and SSL epochs (every algorithmic setting unchanged)."""
    kw = {"epochs": 2, "warm_up": 1, "checkpoint_every": 100, **kw}
    return lnlkit.get_method(method, preset=preset, **kw)


def _finite_params(method):
    return all(bool(torch.isfinite(p).all()) for net in method.networks() for p in net.parameters())


# ---------------------------------------------------------------------------------------------- pieces
def test_lambda_u_ramp():
    m = lnlkit.get_method("smr", preset="cifar10-sym50")  # warm-up 10, λu = 25, ramp 16
    assert m.unlabelled_weight(10.0) == 0.0 and m.unlabelled_weight(5.0) == 0.0
    assert m.unlabelled_weight(18.0) == pytest.approx(12.5)
    assert m.unlabelled_weight(26.0) == 25.0 and m.unlabelled_weight(200.0) == 25.0
    m100 = lnlkit.get_method("dividemix", preset="cifar100-sym50")  # warm-up 30, λu = 150
    assert m100.unlabelled_weight(30.0) == 0.0 and m100.unlabelled_weight(46.0) == 150.0


def test_phases_and_recalibration_epochs():
    smr10 = lnlkit.get_method("smr", preset="cifar10-sym50")
    assert smr10.num_epochs() == 301  # e = 0 … 300 inclusive
    assert smr10.recalibration_epochs() == list(range(29, 300, 30)) and len(smr10.recalibration_epochs()) == 10
    smr100 = lnlkit.get_method("smr", preset="cifar100-sym50")
    assert smr100.recalibration_epochs() == list(range(59, 300, 30)) and smr100.phase(29) == "warmup"
    assert lnlkit.get_method("smr", preset="animal10n").recalibration_epochs() == list(range(44, 200, 15))
    assert lnlkit.get_method("smr", preset="clothing1m").recalibration_epochs() == list(range(9, 81, 10))
    assert lnlkit.get_method("smr", preset="webvision").recalibration_epochs() == list(range(14, 121, 15))
    dm = lnlkit.get_method("dividemix", preset="cifar10-sym50")
    assert dm.recalibration_epochs() == [] and dm.phase(9) == "warmup" and dm.phase(10) == "ssl"
    assert [smr10.phase(e) for e in (9, 10, 28, 29, 30)] == ["warmup", "ssl", "ssl", "recal", "ssl"]


def test_predict_train_subset_matches_the_full_pass(small_digits):
    data = DeviceData(small_digits.with_noise("none"), torch.device("cpu"))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    idx = torch.tensor([5, 0, 399, 17])
    torch.testing.assert_close(predict_train_subset(net, data, idx, batch_size=3), predict(net, data, "train")[idx])


# ---------------------------------------------------------------------------------------------- one step, by hand
# The expected values below are DivideMix's / SMR's formulas (official ``Train_cifar.py``: co-guessing, co-refinement,
# MixMatch, SemiLoss, the uniform prior, ``linear_rampup``; SMR's ``warmup`` / ``warmup2``) written out with plain
# tensor operations; they never call the method's helpers.
class FixedBeta:
    """Stands in for the NumPy generator of λ: every Beta draw returns ``value`` (and the call is logged)."""

    def __init__(self, value):
        self.value, self.calls = value, []

    def beta(self, a, b):
        self.calls.append((a, b))
        return self.value


def _softmax(z):
    e = torch.exp(z - z.max(1, keepdim=True).values)
    return e / e.sum(1, keepdim=True)


def _log_softmax(z):
    return (
        z - z.max(1, keepdim=True).values - torch.log(torch.exp(z - z.max(1, keepdim=True).values).sum(1, keepdim=True))
    )


def _sharpen_by_hand(p, T):
    q = p ** (1.0 / T)
    return q / q.sum(1, keepdim=True)


def _tiny_net(seed, d=6, c=10):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, 12), torch.nn.BatchNorm1d(12), torch.nn.ReLU(), torch.nn.Linear(12, c))
    with torch.no_grad():  # confident enough that sharpening and co-refinement matter
        net[3].weight.mul_(4.0)
    return net


def _step_update_check(net_before, net_after, expected_loss, lr):
    """The SGD step the method took (plain SGD, lr ``lr``) is the gradient step of ``expected_loss``."""
    net_before.zero_grad()
    expected_loss.backward()
    for (name, p0), p1 in zip(net_before.named_parameters(), net_after.parameters()):
        torch.testing.assert_close(p1.detach(), (p0 - lr * p0.grad).detach(), rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("case", ["faithful", "eval_guess", "labelled_only", "labelled_only_fixed"])
def test_ssl_step_matches_the_dividemix_formulas(small_digits, case):
    kw = {
        "faithful": {},
        "eval_guess": dict(faithful_train_mode_guess=False),
        "labelled_only": dict(lambda_u=0.0, labelled_only=True),
        "labelled_only_fixed": dict(lambda_u=0.0, labelled_only=True, faithful_lambda_u0_mixing=False),
    }[case]
    method = _short(temperature=0.5 if case == "faithful" else 0.7, **kw)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    C, T, B, U, lr, lambda_u = (
        10,
        method.config.temperature,
        4,
        3,
        0.5,
        (2.5 if case in ("faithful", "eval_guess") else 0.0),
    )
    method.nets = [_tiny_net(1), _tiny_net(2)]
    method.optimizers = [torch.optim.SGD(net.parameters(), lr=lr) for net in method.nets]
    g = torch.Generator().manual_seed(3)
    x1 = torch.randn(B, 6, generator=g)
    x2 = x1 + 0.5 * torch.randn(B, 6, generator=g)  # two *different* views
    u1 = torch.randn(U, 6, generator=g)
    u2 = u1 + 0.5 * torch.randn(U, 6, generator=g)
    labels = torch.tensor([3, 0, 7, 3])
    w = torch.tensor([0.9, 0.2, 0.6, 0.75])
    net0, partner0 = copy.deepcopy(method.nets[0]), copy.deepcopy(method.nets[1])
    partner_before = copy.deepcopy(method.nets[1].state_dict())

    rng = FixedBeta(0.3)  # λ = max(0.3, 0.7) = 0.7
    terms = method.ssl_step(ctx, 0, x1, x2, labels, w, u1, u2, lambda_u, rng, torch.Generator().manual_seed(11))

    # co-refinement and co-guessing (no gradient; the trained net in train mode officially, the partner in eval mode)
    net0.train(case != "eval_guess")
    partner0.eval()
    with torch.no_grad():
        p_x = (_softmax(net0(x1)) + _softmax(net0(x2))) / 2
        y = torch.eye(C)[labels]
        targets_x = _sharpen_by_hand(w[:, None] * y + (1 - w[:, None]) * p_x, T)
        p_u = (_softmax(net0(u1)) + _softmax(net0(u2)) + _softmax(partner0(u1)) + _softmax(partner0(u2))) / 4
        targets_u = _sharpen_by_hand(p_u, T)
    torch.testing.assert_close(terms["targets_x"], targets_x)
    torch.testing.assert_close(terms["targets_u"], targets_u)
    # MixMatch with λ' = max(λ, 1 − λ), partners from all 2B + 2U rows (λu = 0 fixed variant: the 2B labelled rows)
    assert rng.calls == [(method.config.alpha, method.config.alpha)]
    lam = 0.7
    rows = 2 * B if case == "labelled_only_fixed" else 2 * B + 2 * U
    perm = torch.randperm(rows, generator=torch.Generator().manual_seed(11))
    inputs = torch.cat([x1, x2, u1, u2])[:rows]
    targets = torch.cat([targets_x, targets_x, targets_u, targets_u])[:rows]
    mixed_x, mixed_t = lam * inputs + (1 - lam) * inputs[perm], lam * targets + (1 - lam) * targets[perm]
    if case.startswith("labelled_only"):
        mixed_x, mixed_t = mixed_x[: 2 * B], mixed_t[: 2 * B]
    net0.train()
    logits = net0(mixed_x)
    loss_x = -(mixed_t[: 2 * B] * _log_softmax(logits[: 2 * B])).sum(1).mean()
    loss_u = ((_softmax(logits[2 * B :]) - mixed_t[2 * B :]) ** 2).mean() if len(logits) > 2 * B else torch.tensor(0.0)
    mean_pred = _softmax(logits).mean(0)
    penalty = (torch.full((C,), 1 / C) * torch.log((1 / C) / mean_pred)).sum()
    loss = loss_x + lambda_u * loss_u + penalty
    for key, value in (("loss_x", loss_x), ("loss_u", loss_u), ("penalty", penalty), ("loss", loss)):
        torch.testing.assert_close(terms[key], value.detach(), msg=key)
    assert float(loss_u.detach()) > 0 if case in ("faithful", "eval_guess") else float(terms["loss_u"]) == 0.0
    _step_update_check(net0, method.nets[0], loss, lr)  # the update is the gradient of that loss, penalty included
    for key, value in method.nets[1].state_dict().items():  # the partner only guesses
        assert torch.equal(value, partner_before[key]), key


def test_train_ssl_feeds_each_step_its_batch_weights_and_ramp(small_digits):
    # the epoch loop around the step: w looked up by sample index, given labels, two different views, and
    # λu = λu_max · clip((e + i / num_iter − warm_up) / rampup, 0, 1) with num_iter = n_labelled // B + 1
    method = _short(warm_up=1, rampup_length=3.0)
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    ctx = method_context(method, noisy)
    n = 400
    prob = torch.where(torch.arange(n) % 3 == 0, 0.2, 0.5 + (torch.arange(n) + 1) / 1000)  # unique per labelled sample
    seen = []

    def spy(ctx, k, x1, x2, labels, w, u1, u2, lambda_u, rng, gen):
        seen.append((x1.clone(), x2.clone(), labels.clone(), w.clone(), len(u1), lambda_u))
        return {key: torch.zeros(()) for key in ("loss", "loss_x", "loss_u", "penalty")}

    method.ssl_step = spy
    epoch = 2
    out = method.train_ssl(ctx, epoch, k=0, pool=torch.arange(n), prob=prob)
    n_labelled, B = int((prob > 0.5).sum()), method.config.batch_size
    num_iter = n_labelled // B + 1
    assert out["steps"] == len(seen) == math.ceil(n_labelled / B)
    given = torch.as_tensor(noisy.labels)
    for i, (x1, x2, labels, w, n_u, lambda_u) in enumerate(seen):
        idx = torch.round((w - 0.5) * 1000).long() - 1
        assert bool((w > 0.5).all()) and torch.equal(labels, given[idx])
        assert not torch.equal(x1, x2) and n_u > 0  # two different views; an unlabelled batch every step
        assert lambda_u == pytest.approx(25.0 * min(max((epoch + i / num_iter - 1) / 3.0, 0.0), 1.0))
    assert len({i for s in seen for i in (torch.round((s[3] - 0.5) * 1000).long() - 1).tolist()}) == n_labelled


class _StopAfterOneStep(Exception):
    pass


@pytest.mark.parametrize(
    "case", ["smr_warmup", "dividemix_warmup", "dividemix_warmup_asym", "smr_recal", "smr_recal_subset"]
)
def test_supervised_steps_use_the_loss_of_their_phase(small_digits, case):
    # SMR's warm-up: CE of the mixed input against both labels (official ``warmup``, ``soft_mix_warm = True``);
    # DivideMix's: CE (+ Σ p log p under asymmetric noise); SMR's recalibration: plain CE, even with the penalty on
    # (official ``warmup2``).  Each phase runs through ``train_epoch``; its first step is compared with the formula.
    method_name, epoch = {
        "smr_warmup": ("smr", 0),
        "dividemix_warmup": ("dividemix", 0),
        "dividemix_warmup_asym": ("dividemix", 0),
        "smr_recal": ("smr", 2),
        "smr_recal_subset": ("smr", 2),
    }[case]
    method = _short(
        method_name,
        epochs=4,
        recal_period=3 if method_name == "smr" else None,
        asym_penalty=case in ("dividemix_warmup_asym", "smr_recal", "smr_recal_subset"),
        epoch_subset=200 if case == "smr_recal_subset" else None,
    )
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    assert method.phase(epoch) == ("recal" if case.startswith("smr_recal") else "warmup")
    lr, captured = 0.5, {}
    real_step = method.supervised_step

    def first_step(ctx, net, opt, x, y, loss_kind, rng, gen):
        captured.update(net0=copy.deepcopy(net), x=x.clone(), y=y.clone(), rng=FixedBeta(0.2))
        captured["terms"] = real_step(
            ctx,
            net,
            torch.optim.SGD(net.parameters(), lr=lr),
            x,
            y,
            loss_kind,
            captured["rng"],
            torch.Generator().manual_seed(5),
        )
        captured["net"] = net
        raise _StopAfterOneStep

    method.supervised_step = first_step
    with pytest.raises(_StopAfterOneStep):
        method.train_epoch(ctx, epoch)
    net0, x, y = captured["net0"], captured["x"], captured["y"]
    # warm-up and CIFAR recalibration batches are 2B; the Clothing1M (epoch-sample) recalibration runs on the
    # official evaluation loader, at batch B
    assert len(x) == (1 if case == "smr_recal_subset" else 2) * method.config.batch_size
    net0.train()
    onehot = torch.eye(10)[y]
    if case == "smr_warmup":
        lam = 0.8  # max(0.2, 0.8)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(5))
        logits = net0(lam * x + (1 - lam) * x[perm])
        loss = -((lam * onehot + (1 - lam) * onehot[perm]) * _log_softmax(logits)).sum(1).mean()
        assert captured["rng"].calls == [(method.config.alpha, method.config.alpha)]
    else:
        logits = net0(x)
        loss = -(onehot * _log_softmax(logits)).sum(1).mean()
        if case == "dividemix_warmup_asym":
            p = _softmax(logits)
            loss = loss + (p * torch.log(p)).sum(1).mean()
    torch.testing.assert_close(captured["terms"]["loss"], loss.detach())
    _step_update_check(net0, captured["net"], loss, lr)


# ---------------------------------------------------------------------------------------------- co-divide
def test_gmm_posterior_is_the_low_loss_component(small_digits):
    method = _short()
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    losses = np.concatenate(
        [np.random.default_rng(0).normal(0.1, 0.03, 300), np.random.default_rng(1).normal(0.8, 0.05, 100)]
    ).astype(np.float32)
    method.normalised_losses = lambda ctx, net, pool: losses
    prob, gmm_input = method.clean_probability(ctx, 0, torch.arange(400))
    assert prob[:300].min() > 0.9 and prob[300:].max() < 0.1


def test_loss_history_averages_the_last_five_epochs(small_digits):
    method = _short(loss_history=5)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    rng = np.random.default_rng(0)
    vectors = [rng.random(400).astype(np.float32) for _ in range(7)]
    for i, v in enumerate(vectors):
        method.normalised_losses = lambda ctx, net, pool, v=v: v
        _, gmm_input = method.clean_probability(ctx, 1, torch.arange(400))
        np.testing.assert_allclose(gmm_input, np.mean(vectors[max(0, i - 4) : i + 1], axis=0), rtol=1e-6)
    assert len(method.loss_buffers[1]) == 5 and method.loss_buffers[0] == []
    # without averaging nothing is kept
    plain = _short()
    ctx = method_context(plain, small_digits.with_noise("symmetric:0.4", seed=0))
    plain.normalised_losses = lambda ctx, net, pool: vectors[0]
    plain.clean_probability(ctx, 0, torch.arange(400))
    assert plain.loss_buffers == [[], []]


def test_co_divide_trains_each_network_on_the_other_partition(small_digits):
    method = _short()
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    calls = []
    probs = {0: torch.full((400,), 0.9), 1: torch.full((400,), 0.1)}

    def clean_probability(ctx, k, pool):
        calls.append(("divide", k))
        return probs[k], np.zeros(400, dtype=np.float32)

    def train_ssl(ctx, epoch, k, pool, prob):
        calls.append(("train", k, float(prob[0])))
        return {
            "sums": {key: torch.zeros(()) for key in ("loss", "loss_x", "loss_u", "penalty")},
            "steps": 1,
            "lambda_u": 0.0,
        }

    method.clean_probability, method.train_ssl = clean_probability, train_ssl
    record, signals = method.ssl_epoch(ctx, 1)
    # both partitions first, then net1 on net2's (prob 0.1), then net2 on net1's (prob 0.9)
    assert calls == [("divide", 0), ("divide", 1), ("train", 0, pytest.approx(0.1)), ("train", 1, pytest.approx(0.9))]
    assert signals["selected"].all() and not signals["selected_net2"].any()  # "selected" = net1's partition
    assert record["n_selected"] == 400 and record["n_selected_net2"] == 0


# ---------------------------------------------------------------------------------------------- edge cases
# ---------------------------------------------------------------------------------------------- switches
def _forward_log(net):
    log = []
    net.register_forward_pre_hook(lambda mod, args: log.append((torch.is_grad_enabled(), mod.training, len(args[0]))))
    return log


@pytest.mark.parametrize("faithful", [True, False])
def test_switch_train_mode_guess(small_digits, faithful):
    method = _short(faithful_train_mode_guess=faithful)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    log, partner_log = _forward_log(method.nets[0]), _forward_log(method.nets[1])
    bn = next(m for m in method.nets[0].modules() if isinstance(m, torch.nn.BatchNorm2d))
    prob = (torch.arange(400) % 2).float()  # 200 labelled, 200 unlabelled
    method.train_ssl(ctx, 1, k=0, pool=torch.arange(400), prob=prob)
    guesses = [mode for grad, mode, _ in log if not grad]
    assert len(guesses) == 4 * len([1 for grad, _, _ in log if grad])  # x1, x2, u1, u2 per step
    assert all(mode == faithful for mode in guesses)  # official: train mode (BN statistics move)
    assert all(not mode for grad, mode, _ in partner_log) and all(not grad for grad, _, _ in partner_log)
    assert all(mode for grad, mode, _ in log if grad)  # the mixed batch is always a train-mode forward
    # BN running statistics see 4 no-grad forwards + 1 mixed forward per step (faithful) or only the mixed one
    steps = math.ceil(200 / method.config.batch_size)
    assert int(bn.num_batches_tracked) == (5 if faithful else 1) * steps


@pytest.mark.parametrize("faithful", [True, False])
def test_switch_lambda_u0_mixing(small_digits, faithful):
    method = _short(lambda_u=0.0, labelled_only=True, faithful_lambda_u0_mixing=faithful)
    ctx = method_context(method, small_digits.with_noise("symmetric:0.4", seed=0))
    log, partner_log = _forward_log(method.nets[0]), _forward_log(method.nets[1])
    mixed = []
    orig = lnlkit.methods.dividemix.mixup

    def spy(x, t, lam, perm):
        mixed.append(perm.clone())
        return orig(x, t, lam, perm)

    lnlkit.methods.dividemix.mixup = spy
    try:
        out = method.train_ssl(ctx, 1, k=0, pool=torch.arange(400), prob=(torch.arange(400) % 2).float())
    finally:
        lnlkit.methods.dividemix.mixup = orig
    assert out["lambda_u"] == 0.0 and float(out["sums"]["loss_u"]) == 0.0
    sizes = [n for grad, _, n in log if grad]  # the mixed forward: only the 2B labelled rows in both settings
    assert len(sizes) == len(mixed) == out["steps"] > 0
    if faithful:  # official: partners drawn from all rows, so unlabelled inputs (and guessed targets) leak in
        assert all(len(p) > n for p, n in zip(mixed, sizes))
        assert any(bool((p[:n] >= n).any()) for p, n in zip(mixed, sizes))
        assert len(partner_log) == len(sizes)  # co-guessing still runs
    else:  # fixed: partners among the labelled rows only, and no unlabelled batch is drawn at all
        assert all(sorted(p.tolist()) == list(range(n)) for p, n in zip(mixed, sizes))
        assert partner_log == [] and len([1 for grad, _, _ in log if not grad]) == 2 * len(sizes)


# ---------------------------------------------------------------------------------------------- presets
def test_presets_construct_and_document_their_sources():
    for cls in (DivideMix, SMR):
        for name in PAPER_PRESETS + ["digits"]:
            assert name in cls.PRESETS, (cls.name, name)
        assert issubclass(SMR, DivideMix)  # SMR is DivideMix with its own warm-up, recalibration and presets
        for name, build in cls.PRESETS.items():
            cfg = build()
            cfg.validate()
            assert isinstance(cfg, SMRConfig if cls is SMR else DivideMixConfig)
            assert build.__doc__ and len(build.__doc__) > 80, (cls.name, name)
    smr, dm = SMR.PRESETS, DivideMix.PRESETS
    assert "UNVERIFIED" in smr["cifar10-sym80"].__doc__ and "SMR README" in smr["cifar10-sym50"].__doc__
    assert "VGG-19-BN" in smr["animal10n"].__doc__ and "InceptionResNetV2" in smr["webvision"].__doc__
    c = smr["cifar10-sym50"]()
    assert (c.batch_size, c.warmup_loss, c.recal_period, c.lambda_u, c.model) == (
        128,
        "mixup",
        30,
        25.0,
        "preact_resnet18",
    )
    d = dm["cifar10-sym50"]()
    assert (d.batch_size, d.warmup_loss, d.recal_period, d.asym_penalty) == (64, "ce", None, False)
    assert dm["cifar10-asym40"]().asym_penalty and dm["cifar10-asym40"]().lambda_u == 0.0
    assert not smr["cifar10-asym40"]().asym_penalty
    for p in ("cifar10-sym90", "cifar100-sym90"):
        assert smr[p]().loss_history == 5 and smr[p]().p_threshold == 0.6
    assert smr["cifar10-sym50"]().loss_history == 1
    assert (smr["cifar100-sym50"]().lambda_u, smr["cifar100-sym50"]().warm_up) == (150.0, 30)
    cl = smr["clothing1m"]()
    assert (cl.model, cl.batch_size, cl.alpha, cl.labelled_only, cl.epoch_subset) == (
        "resnet50_tv",
        32,
        0.5,
        True,
        32000,
    )
    assert dm["clothing1m"]().asym_penalty  # DivideMix's Clothing1M warm-up always adds the penalty
    assert lnlkit.get_method("smr", preset="animal10n").learning_rate(139) == 0.01
    assert lnlkit.get_method("smr", preset="animal10n").learning_rate(140) == pytest.approx(1e-4)
    assert lnlkit.get_method("smr", preset="webvision").learning_rate(80) == pytest.approx(1e-4)
    assert lnlkit.get_method("dividemix", preset="webvision").num_epochs() == 81
    # the ablation of SMR's paper is reachable from presets alone
    assert (dm["digits-mixup-warmup"]().warmup_loss, dm["digits-mixup-warmup"]().recal_period) == ("mixup", None)
    assert (dm["digits-recal"]().warmup_loss, dm["digits-recal"]().recal_period) == ("ce", smr["digits"]().recal_period)
    assert (dm["digits"]().warmup_loss, dm["digits"]().recal_period) == ("ce", None)
    assert smr["digits"]().warmup_loss == "mixup"
    # the digits preset only changes scale: the algorithm's constants are CIFAR's
    g = smr["digits"]()
    assert (g.alpha, g.temperature, g.p_threshold, g.lambda_u, g.model) == (4.0, 0.5, 0.5, 25.0, "small_cnn")


# ---------------------------------------------------------------------------------------------- end to end
def test_smr_run_on_digits_records_every_phase(small_digits, tmp_path):
    run = _short("smr", epochs=4, recal_period=3).fit(
        small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    hist = run.history
    assert [r["phase"] for r in hist] == ["warmup", "ssl", "recal", "ssl", "ssl"]
    assert run.result["reported_as"] == "ensemble_acc_last" and run.result["reported"] == hist[-1]["test_acc"]
    assert run.result["test_acc_best"] == max(r["test_acc"] for r in hist)
    for r in hist:
        assert {"lr", "loss", "test_acc", "test_acc_net1", "test_acc_net2"} <= set(r)
    for r in (hist[1], hist[3]):
        assert {
            "loss_x",
            "loss_u",
            "penalty",
            "lambda_u",
            "n_selected",
            "n_selected_net2",
            "sel_precision",
            "sel_precision_net2",
            "sel_auroc",
            "sel_auroc_net2",
        } <= set(r)
    assert not any("sel_auroc" in r for r in (hist[0], hist[2]))  # no GMM in warm-up / recalibration
    assert hist[1]["lambda_u"] < hist[3]["lambda_u"] <= 25.0
    sig = run.signals
    assert sig["epoch"].tolist() == [0, 1, 2, 3, 4]
    for key in ("loss", "loss_net2"):  # recorded in every phase (warm-up and recalibration: for the plots)
        assert np.isfinite(sig[key].astype(float)).all() and sig[key].shape == (5, 400)
    assert np.isnan(sig["clean_prob"][[0, 2]].astype(float)).all()  # no GMM in warm-up / recalibration
    assert not sig["selected"][[0, 2]].any() and sig["selected"][1].any()
    np.testing.assert_array_equal(sig["selected"][3], sig["clean_prob"][3].astype(float) > 0.5)


def test_dividemix_on_digits_selects_clean_samples(digits, tmp_path):
    data = digits.with_noise("symmetric:0.4", seed=0)
    run = lnlkit.get_method("dividemix", preset="digits", epochs=6, checkpoint_every=100).fit(
        data, out=tmp_path / "r", progress=False
    )
    # measured (seed 0): precision 0.997, recall 0.961, AUROC 0.999, 97.1 %; the bars leave room for other processors
    assert run.result["sel_precision"] >= 0.95 and run.result["sel_recall"] >= 0.8, run.result
    assert run.result["sel_auroc"] >= 0.95 and run.result["reported"] >= 90.0, run.result
    res = json.loads((tmp_path / "r" / "result.json").read_text())
    assert res["test_acc_net1_last"] == run.history[-1]["test_acc_net1"]


def test_sel_auroc_every_epoch_signals_only_on_recorded_epochs(small_digits, tmp_path):
    # the AUROC of each network's clean posterior against the true clean mask (DivideMix's official log has it) is
    # in the history of every SSL epoch, also those whose per-sample signals are not stored
    method = _short(epochs=2, record_signals_every=2, record_train_loss=False)
    emitted = {}
    train_epoch = method.train_epoch

    def spy(ctx, epoch):
        out = train_epoch(ctx, epoch)
        emitted[epoch] = {k: v.copy() for k, v in out.signals.items() if k.startswith("clean_prob")}
        return out

    method.train_epoch = spy
    run = method.fit(small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False)
    # epoch 0 (warm-up, no loss recording) has no signals; epoch 1's are not stored, but its metrics are recorded
    assert run.signals["epoch"].tolist() == [2]
    clean = ~run.is_noisy
    for r in run.history[1:]:
        for suffix in ("", "_net2"):
            prob = emitted[r["epoch"]]["clean_prob" + suffix]
            assert r["sel_auroc" + suffix] == pytest.approx(roc_auc_score(clean, prob), abs=1e-9)
        assert "sel_precision" in r
    assert "sel_auroc" not in run.history[0]  # warm-up: no clean probability
    assert run.result["sel_auroc"] == run.history[-1]["sel_auroc"]
    table = lnlkit.results_table(run.path)
    assert table["sel_auroc"].tolist() == [run.result["sel_auroc"]]


def test_epoch_subset_partitions_a_class_balanced_sample_per_network(small_digits, tmp_path):
    # the Clothing1M recipe on digits: each network divides its own class-balanced sample of 200 images per epoch
    run = _short("smr", epochs=3, recal_period=3, epoch_subset=200).fit(
        small_digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
    )
    assert [r["phase"] for r in run.history] == ["warmup", "ssl", "recal", "ssl"]
    sig = run.signals
    for row in (1, 3):
        seen = [np.isfinite(sig[key][row].astype(float)) for key in ("clean_prob", "clean_prob_net2")]
        assert [int(s.sum()) for s in seen] == [200, 200] and not np.array_equal(seen[0], seen[1])
        labels = run.labels[seen[0]]
        assert np.bincount(labels, minlength=10).max() <= 20  # at most 200 / 10 per given class
    assert run.history[1]["steps"] > 0 and math.isfinite(run.history[2]["loss"])


def test_train_subset_passes_on_image_files(tmp_path):
    # the per-epoch Clothing1M sample is read with the test transform, in the given order, from image files too
    from fakedata import write_clothing_official

    write_clothing_official(tmp_path / "clothing1m")
    ds = lnlkit.load_dataset("clothing1m", root=tmp_path / "clothing1m", resize=40, crop=32)
    data = DeviceData(ds.with_noise("none"), torch.device("cpu"), num_workers=0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 14))
    idx = torch.tensor([4, 1, 5])
    torch.testing.assert_close(predict_train_subset(net, data, idx, batch_size=2), predict(net, data, "train")[idx])
    assert [i.tolist() for i, _ in data.iter_train_subset(idx, 2)] == [[4, 1], [5]]


@pytest.mark.slow
def test_smr_digits_preset_beats_ce_at_symmetric_40(digits, tmp_path):
    # one seed of the acceptance setting, asserting only margins that hold on any processor (CPU float paths differ
    # between machines and a single seed moves by points): at least 15 points above CE's last epoch, and a selection
    # precision well clear of the 0.95 bar.  The thin criterion (above CE's best epoch) is judged over three seeds
    # by bench/digits_grid.py.  About a minute on an idle 2-core CPU with both threads.
    before = torch.get_num_threads()
    torch.set_num_threads(DEFAULT_THREADS)
    try:
        run = lnlkit.get_method("smr", preset="digits").fit(
            digits.with_noise("symmetric:0.4", seed=0), out=tmp_path / "r", progress=False
        )
    finally:
        torch.set_num_threads(before)
    res = run.result
    assert res["status"] == "complete" and res["epochs_done"] == 61
    assert res["reported"] >= CE_SYM40_SEED0_LAST + 15.0, res
    assert res["sel_precision"] >= 0.95 and res["sel_auroc"] >= 0.95, res

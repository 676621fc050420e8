"""``lnlkit.train.losses``: the shared losses, mixing and sharpening on tiny tensors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lnlkit.train import losses
from lnlkit.train.loader import stream_numpy_generator
from lnlkit.train.losses import mixup_cross_entropy, mixup_lambda, sharpen, smooth_one_hot_exclusive


def test_soft_cross_entropy_matches_hard_ce_and_smoothing():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    onehot = losses.one_hot(y, 4)
    assert torch.allclose(losses.soft_cross_entropy(logits, onehot), F.cross_entropy(logits, y))
    assert torch.allclose(
        losses.soft_cross_entropy(logits, losses.smooth_labels(onehot, 0.1)),
        F.cross_entropy(logits, y, label_smoothing=0.1),
    )
    assert losses.soft_cross_entropy(logits, onehot, reduction="none").shape == (6,)
    assert losses.soft_cross_entropy(logits[:0], onehot[:0]).item() == 0.0  # empty batch: no NaN


def test_mixup_and_logit_adjust():
    x = torch.arange(4.0).reshape(4, 1)
    t = torch.eye(4)
    perm = torch.tensor([1, 0, 3, 2])
    xm, tm = losses.mixup(x, t, 0.75, perm)
    assert torch.allclose(xm[:, 0], torch.tensor([0.25, 0.75, 2.25, 2.75]))
    assert torch.allclose(tm.sum(1), torch.ones(4)) and tm[0, 0] == 0.75 and tm[0, 1] == 0.25
    prior = torch.tensor([0.5, 0.25, 0.25])
    z = torch.zeros(2, 3)
    assert torch.allclose(losses.logit_adjust(z, prior), torch.log(prior).expand(2, 3))


def test_symmetric_kl_and_penalties():
    a = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    assert losses.symmetric_kl(a, a).abs().item() < 1e-6
    b = a.flip(1)
    assert losses.symmetric_kl(a, b).item() == pytest.approx(losses.symmetric_kl(b, a).item(), rel=1e-5)
    assert losses.symmetric_kl(a, b).item() > 0
    uniform = torch.zeros(4, 5)
    assert losses.negative_entropy(uniform).item() == pytest.approx(-math.log(5), rel=1e-5)
    assert losses.uniform_prior_penalty(uniform).abs().item() < 1e-6
    collapsed = torch.tensor([[10.0, 0, 0]] * 4)
    assert losses.uniform_prior_penalty(collapsed).item() > 1.0


def test_exclusive_label_smoothing():
    t = smooth_one_hot_exclusive(torch.tensor([2, 0]), 5, 0.5)
    torch.testing.assert_close(t.sum(1), torch.ones(2))
    assert t[0, 2] == 0.5 and t[0, 0] == pytest.approx(0.125) and t[1, 0] == 0.5
    assert torch.equal(smooth_one_hot_exclusive(torch.tensor([1]), 3, 0.0), torch.tensor([[0.0, 1.0, 0.0]]))


def test_sharpen():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    q = sharpen(p, 0.5)
    assert torch.allclose(q.sum(1), torch.ones(2))
    assert torch.allclose(q, p**2 / (p**2).sum(1, keepdim=True))
    assert torch.equal(q.argmax(1), p.argmax(1)) and bool((q.max(1).values > p.max(1).values).all())
    assert torch.allclose(sharpen(p, 1.0), p)
    with pytest.raises(ValueError):
        sharpen(p, 0.0)


def test_mixup_lambda_is_at_least_half_and_deterministic():
    lams = [mixup_lambda(stream_numpy_generator(0, 3, "s"), 4.0)] + [
        mixup_lambda(g, a) for a in (0.5, 4.0) for g in [np.random.default_rng(1)] for _ in range(500)
    ]
    assert min(lams) >= 0.5 and max(lams) <= 1.0
    assert np.mean(lams[-500:]) < np.mean(lams[1:501])  # Beta(4, 4) concentrates at 0.5, Beta(0.5, 0.5) at 0 / 1
    assert lams[0] == mixup_lambda(stream_numpy_generator(0, 3, "s"), 4.0)
    assert lams[0] != mixup_lambda(stream_numpy_generator(0, 4, "s"), 4.0)


def test_mixup_cross_entropy_is_the_soft_target_loss_of_the_mixed_labels():
    # SMR's warm-up loss in the form of its mixed targets: -Σ_c (λ 1[a] + (1 − λ) 1[b])_c log softmax(z)_c
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    a, b = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([2, 2, 0, 1, 1])
    log_p = logits - torch.log(torch.exp(logits).sum(1, keepdim=True))
    for lam in (0.7, 1.0):
        mixed = lam * torch.eye(3)[a] + (1 - lam) * torch.eye(3)[b]
        torch.testing.assert_close(mixup_cross_entropy(logits, a, b, lam), -(mixed * log_p).sum(1).mean())

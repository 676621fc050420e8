"""Losses shared by the methods: soft-target CE, mixup, label smoothing, logit adjustment, symmetric KL,
confidence penalties.  All return scalars averaged over the batch unless ``reduction="none"``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "soft_cross_entropy",
    "one_hot",
    "smooth_labels",
    "smooth_one_hot_exclusive",
    "mixup",
    "logit_adjust",
    "symmetric_kl",
    "negative_entropy",
    "uniform_prior_penalty",
    "sharpen",
    "mixup_cross_entropy",
    "mixup_lambda",
    "fmix_mask",
    "ema_prior",
]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Float one-hot targets ``(B, C)`` of integer labels ``(B,)``."""
    return F.one_hot(labels, num_classes).float()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``-Σ_c t_c log softmax(z)_c`` for soft targets ``t`` (B, C) and logits ``z`` (B, C)."""
    loss = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean() if len(loss) else logits.sum() * 0.0


def smooth_labels(targets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Label smoothing: ``(1 - ε) t + ε / C``."""
    return (1.0 - epsilon) * targets + epsilon / targets.shape[1]


def smooth_one_hot_exclusive(labels: torch.Tensor, num_classes: int, epsilon: float) -> torch.Tensor:
    """Label smoothing that spreads ``ε`` over the *other* classes: ``1 − ε`` on the label, ``ε / (C − 1)`` elsewhere
    (Co-mining's ``--epsilon``; :func:`smooth_labels` instead adds ``ε / C`` to every class).

    Parameters
    ----------
    labels : Tensor int64 (B,)
    num_classes : int
        ``C >= 2``.
    epsilon : float

    Returns
    -------
    Tensor float32 (B, C), rows summing to 1
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    off = epsilon / (num_classes - 1)
    out = torch.full((len(labels), num_classes), off, device=labels.device)
    return out.scatter_(1, labels.view(-1, 1), 1.0 - epsilon)


def mixup(x: torch.Tensor, targets: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each sample with ``perm``-th partner: ``λ x + (1 − λ) x[perm]`` and the same for the targets.

    Parameters
    ----------
    x : Tensor (B, ...)
    targets : Tensor (B, C)
    lam : float
    perm : Tensor int64 (B,)
    """
    return lam * x + (1.0 - lam) * x[perm], lam * targets + (1.0 - lam) * targets[perm]


def logit_adjust(logits: torch.Tensor, prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Logit adjustment (Menon et al. 2021): ``z + τ log π``, ``prior`` (C,) a class distribution."""
    return logits + tau * torch.log(prior.clamp_min(1e-12))


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``KL(p_a ‖ p_b) + KL(p_b ‖ p_a)`` between the softmax distributions of two logit batches."""
    log_pa, log_pb = F.log_softmax(logits_a, 1), F.log_softmax(logits_b, 1)
    kl = (log_pa.exp() * (log_pa - log_pb)).sum(1) + (log_pb.exp() * (log_pb - log_pa)).sum(1)
    return kl if reduction == "none" else kl.mean()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean of ``Σ p log p`` (the confidence penalty DivideMix/ProMix add in warm-up under asymmetric noise)."""
    p = logits.softmax(1)
    return (p * torch.log(p.clamp_min(1e-12))).sum(1).mean()


def uniform_prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """``Σ_c π_c log(π_c / p̄_c)`` with π uniform and p̄ the batch-mean prediction (DivideMix's regulariser)."""
    c = logits.shape[1]
    prior = torch.full((c,), 1.0 / c, device=logits.device)
    mean_pred = logits.softmax(1).mean(0)
    return (prior * torch.log(prior / mean_pred.clamp_min(1e-12))).sum()


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Temperature sharpening (MixMatch, DivideMix): ``p^(1/T)`` renormalised over classes, for ``probs`` (B, C).

    ``T < 1`` makes the distribution more peaked, ``T = 1`` leaves it unchanged.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    p = probs.pow(1.0 / temperature)
    return p / p.sum(1, keepdim=True).clamp_min(1e-12)


def mixup_cross_entropy(
    logits: torch.Tensor, labels_a: torch.Tensor, labels_b: torch.Tensor, lam: float
) -> torch.Tensor:
    """Two-label mixup loss ``λ CE(z, y_a) + (1 − λ) CE(z, y_b)`` for integer labels ``y_a``, ``y_b`` (B,)."""
    return lam * F.cross_entropy(logits, labels_a) + (1.0 - lam) * F.cross_entropy(logits, labels_b)


def mixup_lambda(rng, alpha: float) -> float:
    """Mixup coefficient ``λ ~ Beta(α, α)`` folded to ``λ ← max(λ, 1 − λ)`` (MixMatch/DivideMix).

    So ``λ >= 0.5`` and each mixed sample stays closer to its first input.  ``rng`` is a NumPy ``Generator``.
    """
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam)


def fmix_mask(
    lam: float,
    shape: tuple[int, int],
    decay_power: float = 3.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A hard FMix mask (Harris et al. 2020): low-frequency Fourier noise thresholded so that a fraction ``lam`` of
    the pixels is 1.

    A complex Gaussian spectrum is scaled by ``1 / f^decay_power`` (frequencies below ``1 / max(H, W)`` count as
    that), transformed back to the image plane, and the ``round(lam · H · W)`` largest values become 1 (a hard mask:
    FMix's ``max_soft = 0``).  Mix two images with ``m · x + (1 − m) · x[perm]``.

    Parameters
    ----------
    lam : float
        Fraction of ones, in [0, 1] (FMix draws it from Beta(α, α); ProMix uses α = 1).
    shape : (int, int)
        ``(H, W)``.
    decay_power : float
        Spectral decay (3 in ProMix); larger values give smoother, blobbier masks.
    generator : torch.Generator, optional
        On ``device``.

    Returns
    -------
    Tensor float32, shape (H, W), values in {0, 1}
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    h, w = int(shape[0]), int(shape[1])
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    freq = torch.sqrt(fx**2 + fy**2).clamp_min(1.0 / max(h, w))
    scale = 1.0 / freq**decay_power
    re = torch.randn(freq.shape, device=device, generator=generator)
    im = torch.randn(freq.shape, device=device, generator=generator)
    grey = torch.fft.irfft2(torch.complex(re * scale, im * scale), s=(h, w))
    n_ones = int(round(lam * h * w))
    mask = torch.zeros(h * w, device=device)
    if n_ones:
        mask[torch.argsort(grey.reshape(-1), descending=True, stable=True)[:n_ones]] = 1.0
    return mask.reshape(h, w)


def ema_prior(prior: torch.Tensor, probs: torch.Tensor, momentum: float) -> torch.Tensor:
    """Exponential moving average of a class prior: ``m · π + (1 − m) · mean_i p_i``.

    ProMix's debiasing keeps one per network and subset (``Train_promix.py``).  An empty ``probs`` leaves the prior
    unchanged (the official code would average over nothing and poison the prior with NaN).

    Parameters
    ----------
    prior : Tensor (C,)
        Current prior (on the simplex).
    probs : Tensor (n, C)
        Predicted class distributions of the samples of this step (n may be 0).
    momentum : float
        ``m`` in [0, 1] (0.9999 in ProMix).

    Returns
    -------
    Tensor (C,), still on the simplex
    """
    if not 0.0 <= momentum <= 1.0 or math.isnan(momentum):
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if len(probs) == 0:
        return prior
    return momentum * prior + (1.0 - momentum) * probs.detach().float().mean(0)

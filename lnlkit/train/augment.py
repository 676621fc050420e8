"""Whole-batch image augmentation on the device (no per-sample Python).

All functions take a float batch ``(B, C, H, W)`` on any device and a ``torch.Generator`` on that device, so the
draws are reproducible and a resumed run replays them exactly.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["random_crop", "random_flip", "cutout", "cutout_random_size", "random_affine", "random_colour", "Augment",
           "StrongAugment", "RandomAugment", "RANDOM_AUGMENT_OPS"]


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None,
                fill: float = 0.0) -> torch.Tensor:
    """Random crop of the original size after zero padding (``RandomCrop(size, padding)``).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
    padding : int
        Pixels of ``fill`` added on every side before cropping.

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, value=fill)
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # (B, H)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # gather (B, H, W) windows for every channel at once
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Horizontal flip of each image with probability ``p``."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None, fill: float = 0.0) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): one ``size × size`` square per image, centre uniform over the image,
    clipped at the borders, set to ``fill``."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), device=x.device, generator=generator)
    cx = torch.randint(0, w, (b,), device=x.device, generator=generator)
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= (cy - size // 2)[:, None]) & (ys < (cy - size // 2 + size)[:, None])  # (B, H)
    in_x = (xs >= (cx - size // 2)[:, None]) & (xs < (cx - size // 2 + size)[:, None])  # (B, W)
    mask = in_y[:, :, None] & in_x[:, None, :]
    return x.masked_fill(mask[:, None], fill)


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, magnitude: float = 1.0,
                  p: float = 0.5, max_rotate: float = 30.0, max_shear: float = 0.3,
                  max_translate: float = 0.3) -> torch.Tensor:
    """Per-image random rotation, shear and translation in one resampling (RandAugment's geometric ops, batched).

    Each of the three transforms is applied to an image independently with probability ``p``, with a uniform
    strength in ``[-max, max] · magnitude`` (degrees for the rotation, shear factor, fraction of the image size for
    the translation).  Pixels moved in from outside are zero (the mean in normalised space).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
    magnitude : float
        Scales every range (0 gives the identity).

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    b = x.shape[0]
    if b == 0 or magnitude <= 0:
        return x

    def draw(limit: float) -> torch.Tensor:
        on = torch.rand(b, device=x.device, generator=generator) < p
        value = (torch.rand(b, device=x.device, generator=generator) * 2 - 1) * limit * magnitude
        return torch.where(on, value, torch.zeros_like(value))

    angle = draw(max_rotate) * (torch.pi / 180.0)
    shear_x, shear_y = draw(max_shear), draw(max_shear)
    tx, ty = draw(max_translate) * 2, draw(max_translate) * 2  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle), torch.sin(angle)
    # rotation @ shear, as a (B, 2, 3) matrix mapping output to input coordinates
    a11, a12 = cos - sin * shear_y, cos * shear_x - sin
    a21, a22 = sin + cos * shear_y, sin * shear_x + cos
    theta = torch.stack([torch.stack([a11, a12, tx], 1), torch.stack([a21, a22, ty], 1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_colour(x: torch.Tensor, generator: torch.Generator | None = None, magnitude: float = 1.0,
                  p: float = 0.5, max_factor: float = 0.9) -> torch.Tensor:
    """Per-image random brightness and contrast (RandAugment's colour ops, batched, on normalised inputs).

    Contrast scales each image around its own mean, brightness around zero (the data-set mean); each applies with
    probability ``p`` and a factor uniform in ``[1 - max_factor·magnitude, 1 + max_factor·magnitude]``.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    b = x.shape[0]
    if b == 0 or magnitude <= 0:
        return x

    def factor() -> torch.Tensor:
        on = torch.rand(b, device=x.device, generator=generator) < p
        f = 1 + (torch.rand(b, device=x.device, generator=generator) * 2 - 1) * max_factor * magnitude
        return torch.where(on, f, torch.ones_like(f)).to(x.dtype)[:, None, None, None]

    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    return x * factor()


class Augment:
    """A fixed weak augmentation: random crop with padding, then horizontal flip, then optional cutout.

    Applied to the *normalised* batch, with zero padding/fill; zero in normalised space is the data mean, which
    differs slightly from the official codes' black padding of the raw image (measured to make no difference in
    accuracy on CIFAR by airbench-style trainers; noted here so nobody is surprised).

    Parameters
    ----------
    crop_padding : int
        0 disables the crop.
    flip : bool
    cutout_size : int
        0 disables cutout.
    order : {"crop_flip", "flip_crop"}
        The official codes differ (ProMix flips first); flip and crop commute in distribution, the order only
        matters for bit-level replay.
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True, cutout_size: int = 0, order: str = "crop_flip"):
        if order not in ("crop_flip", "flip_crop"):
            raise ValueError(f"order must be 'crop_flip' or 'flip_crop', got {order!r}")
        self.crop_padding, self.flip, self.cutout_size, self.order = int(crop_padding), bool(flip), int(cutout_size), order

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.order == "flip_crop" and self.flip:
            x = random_flip(x, generator)
        x = random_crop(x, self.crop_padding, generator)
        if self.order == "crop_flip" and self.flip:
            x = random_flip(x, generator)
        return cutout(x, self.cutout_size, generator)

    def __repr__(self) -> str:
        return (f"Augment(crop_padding={self.crop_padding}, flip={self.flip}, cutout_size={self.cutout_size}, "
                f"order={self.order!r})")


class StrongAugment(Augment):
    """A strong augmentation computed on the device: the weak one, then random affine and colour ops, then cutout.

    A batched stand-in for the per-image PIL policies of the official codes (AutoAugment's CIFAR-10 policy,
    RandAugment): per image, a rotation/shear/translation and brightness/contrast changes, each with probability
    ``p``, with strengths scaled by ``magnitude`` (see :func:`random_affine`, :func:`random_colour`).

    Parameters
    ----------
    crop_padding, flip, order
        The weak part (:class:`Augment`).
    magnitude : float
        Strength of the affine and colour ops (1.0: up to 30 degrees, shear 0.3, 30% shift, factors 0.1-1.9).
    p : float
        Probability of each op.
    cutout_size : int
        Side of the cutout square applied last (0 disables it).
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True, magnitude: float = 0.5, p: float = 0.5,
                 cutout_size: int = 0, order: str = "crop_flip"):
        super().__init__(crop_padding, flip, 0, order)
        if magnitude < 0 or not 0.0 <= p <= 1.0:
            raise ValueError(f"magnitude must be >= 0 and p in [0, 1], got {magnitude}, {p}")
        self.magnitude, self.p, self.strong_cutout = float(magnitude), float(p), int(cutout_size)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = super().__call__(x, generator)
        x = random_affine(x, generator, self.magnitude, self.p)
        x = random_colour(x, generator, self.magnitude, self.p)
        return cutout(x, self.strong_cutout, generator)

    def __repr__(self) -> str:
        return (f"StrongAugment(crop_padding={self.crop_padding}, flip={self.flip}, magnitude={self.magnitude}, "
                f"p={self.p}, cutout_size={self.strong_cutout})")


# ------------------------------------------------------------------------------------ ProMix's "RandomAugment"
# The 14 operations of ProMix's strong view (official ``randaug.py``) with their magnitude ranges.  Each image gets
# ``n_ops`` of them, drawn uniformly *with replacement*, each with a magnitude drawn uniformly from its range (the
# ``m`` argument of the official class is ignored by its code, so it is absent here).
RANDOM_AUGMENT_OPS: dict[str, tuple[float, float] | None] = {
    "AutoContrast": None, "Equalize": None, "Identity": None,
    "Brightness": (0.05, 0.95), "Color": (0.05, 0.95), "Contrast": (0.05, 0.95), "Sharpness": (0.05, 0.95),
    "Posterize": (4.0, 8.0), "Rotate": (-30.0, 30.0), "ShearX": (-0.3, 0.3), "ShearY": (-0.3, 0.3),
    "Solarize": (0.0, 256.0), "TranslateX": (-0.3, 0.3), "TranslateY": (-0.3, 0.3),
}
_OP_NAMES = tuple(RANDOM_AUGMENT_OPS)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma (PIL's ``convert("L")``) of a [0, 1] batch ``(B, C, H, W)`` -> ``(B, 1, H, W)``."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageEnhance``: ``degenerate + factor · (x − degenerate)``, clipped to [0, 1]; ``factor`` (B,)."""
    return (degenerate + factor.view(-1, 1, 1, 1) * (x - degenerate)).clamp(0.0, 1.0)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), x)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.equalize`` per image and channel, on 256 levels (vectorised histogram and LUT)."""
    b, c, h, w = x.shape
    q = (x * 255.0).round().clamp(0, 255).long().reshape(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device, dtype=torch.float32)
    hist.scatter_add_(1, q, torch.ones_like(q, dtype=torch.float32))
    # PIL: step = (number of pixels − count of the last non-empty bin) // 255; identity when step == 0
    last = 255 - torch.argmax((hist.flip(1) > 0).float(), dim=1)
    step = torch.div(hist.sum(1) - hist.gather(1, last[:, None]).squeeze(1), 255, rounding_mode="floor")
    before = hist.cumsum(1) - hist  # pixels in lower bins
    lut = torch.div(before + torch.div(step, 2, rounding_mode="floor")[:, None], step.clamp_min(1)[:, None],
                    rounding_mode="floor").clamp(max=255)
    out = lut.gather(1, q) / 255.0
    out = torch.where((step > 0)[:, None], out, q.float() / 255.0)
    return out.reshape(b, c, h, w).to(x.dtype)


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageFilter.SMOOTH`` (3×3 kernel 1 1 1 / 1 5 1 / 1 1 1, /13) with the border pixels kept."""
    c = x.shape[1]
    k = torch.ones(3, 3, device=x.device, dtype=x.dtype)
    k[1, 1] = 5.0
    k = (k / 13.0).expand(c, 1, 3, 3)
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = F.conv2d(x, k, groups=c)
    return out


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour affine warp (PIL's default resampling) with black outside; ``theta`` (B, 2, 3) maps output
    to input coordinates in [-1, 1]."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _apply_op(name: str, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One RandomAugment op on a [0, 1] batch ``x`` (B, C, H, W) with per-image magnitudes ``v`` (B,)."""
    if name == "Identity":
        return x
    if name == "AutoContrast":
        return _autocontrast(x)
    if name == "Equalize":
        return _equalize(x)
    if name == "Brightness":
        return _blend(torch.zeros_like(x), x, v)
    if name == "Color":
        return _blend(_gray(x).expand_as(x), x, v)
    if name == "Contrast":
        return _blend(_gray(x).mean((1, 2, 3), keepdim=True).expand_as(x), x, v)
    if name == "Sharpness":
        return _blend(_smooth(x), x, v)
    if name == "Posterize":
        shift = (2.0 ** (8 - v.floor().clamp(1, 8))).view(-1, 1, 1, 1)  # keep the top int(v) bits
        return (torch.floor((x * 255.0).round() / shift) * shift / 255.0).to(x.dtype)
    if name == "Solarize":
        return torch.where(x * 255.0 >= v.view(-1, 1, 1, 1), 1.0 - x, x)
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=torch.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    v = v.float()
    if name == "Rotate":
        rad = v * (math.pi / 180.0)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(rad), -torch.sin(rad)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(rad), torch.cos(rad)
    elif name == "ShearX":  # input x = x + v·y, about the top-left corner as PIL's affine transform
        theta[:, 0, 1], theta[:, 0, 2] = v, v
    elif name == "ShearY":
        theta[:, 1, 0], theta[:, 1, 2] = v, v
    elif name == "TranslateX":  # v is a fraction of the image width; [-1, 1] spans the width twice
        theta[:, 0, 2] = 2.0 * v
    elif name == "TranslateY":
        theta[:, 1, 2] = 2.0 * v
    else:  # pragma: no cover - the op table and this function are kept in sync
        raise ValueError(f"unknown RandomAugment op {name!r}")
    return _affine(x, theta)


def cutout_random_size(x: torch.Tensor, max_fraction: float, fill: torch.Tensor | float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """ProMix's Cutout: per image a square of side ``u · W`` with ``u ~ U(0, max_fraction)``, its centre uniform over
    the image, clipped at the borders, set to ``fill``.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
    max_fraction : float
        Largest side as a fraction of the image width (0.5 in ProMix).
    fill : Tensor (C,) or float
        Fill value in the space of ``x``.

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    b, c, h, w = x.shape
    side = torch.rand(b, device=x.device, generator=generator) * max_fraction * w
    cx = torch.rand(b, device=x.device, generator=generator) * w
    cy = torch.rand(b, device=x.device, generator=generator) * h
    x0 = (cx - side / 2).clamp_min(0).floor()
    y0 = (cy - side / 2).clamp_min(0).floor()
    x1 = (x0 + side).clamp(max=w)
    y1 = (y0 + side).clamp(max=h)
    xs = torch.arange(w, device=x.device, dtype=torch.float32)[None]
    ys = torch.arange(h, device=x.device, dtype=torch.float32)[None]
    in_x = (xs >= x0[:, None]) & (xs < x1[:, None])  # (B, W)
    in_y = (ys >= y0[:, None]) & (ys < y1[:, None])  # (B, H)
    mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (B, 1, H, W)
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return torch.where(mask, fill_t.expand(1, c, 1, 1) if fill_t.shape[1] == 1 else fill_t, x)


class RandomAugment:
    """ProMix's strong augmentation as a batched tensor transform on the device: ``n_ops`` random operations per
    image (``RANDOM_AUGMENT_OPS``, drawn with replacement, uniform magnitudes), then Cutout (side ``u·W``,
    ``u ~ U(0, 0.5)``, fill (125, 123, 114)), then the weak augmentation ``then`` (official ``randaug.py``).

    The official transform works on PIL images before normalisation; here the normalised batch is mapped back to
    pixel values in [0, 1] with ``mean``/``std``, transformed, and normalised again, so it composes with the
    device loader.  Geometric ops use nearest-neighbour sampling with black outside (PIL's defaults).

    Parameters
    ----------
    mean, std : sequence of float or Tensor (C,)
        The normalisation of the batches (``DeviceData.mean`` / ``.std``).
    n_ops : int
        Operations per image (3 in ProMix).
    cutout_max_fraction : float
        Largest Cutout side as a fraction of the width (0.5; 0 disables Cutout).
    cutout_fill : sequence of float
        Cutout colour in 0–255 pixel values; images with another channel count than 3 use the mean of it.
    then : Augment, optional
        The weak augmentation applied last (ProMix: the weak transform of the data set).
    """

    def __init__(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor, n_ops: int = 3,
                 cutout_max_fraction: float = 0.5, cutout_fill: Sequence[float] = (125.0, 123.0, 114.0),
                 then: Augment | None = None):
        if not isinstance(n_ops, int) or n_ops < 0:
            raise ValueError(f"n_ops must be a non-negative integer, got {n_ops!r}")
        if not 0.0 <= cutout_max_fraction <= 1.0:
            raise ValueError(f"cutout_max_fraction must be in [0, 1], got {cutout_max_fraction}")
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        self.n_ops, self.cutout_max_fraction, self.then = n_ops, float(cutout_max_fraction), then
        self.cutout_fill = torch.as_tensor(cutout_fill, dtype=torch.float32) / 255.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, c = x.shape[:2]
        mean = self.mean.to(x.device).view(1, -1, 1, 1)
        std = self.std.to(x.device).view(1, -1, 1, 1)
        px = (x.float() * std + mean).clamp(0.0, 1.0).contiguous()
        for _ in range(self.n_ops):
            op = torch.randint(0, len(_OP_NAMES), (b,), device=x.device, generator=generator)
            u = torch.rand(b, device=x.device, generator=generator)
            for k, name in enumerate(_OP_NAMES):
                idx = torch.nonzero(op == k).squeeze(1)
                if len(idx) == 0 or name == "Identity":
                    continue
                lo, hi = RANDOM_AUGMENT_OPS[name] or (0.0, 0.0)
                px[idx] = _apply_op(name, px[idx], lo + (hi - lo) * u[idx])
        if self.cutout_max_fraction > 0:
            fill = self.cutout_fill if c == 3 else self.cutout_fill.mean().reshape(1)
            px = cutout_random_size(px, self.cutout_max_fraction, fill.to(x.device), generator)
        out = ((px - mean) / std).to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last):
            out = out.contiguous(memory_format=torch.channels_last)
        return self.then(out, generator) if self.then is not None else out

    def __repr__(self) -> str:
        return (f"RandomAugment(n_ops={self.n_ops}, cutout_max_fraction={self.cutout_max_fraction}, "
                f"then={self.then!r})")

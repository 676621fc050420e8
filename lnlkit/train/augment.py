"""Whole-batch image augmentation on the device (no per-sample Python).

All functions take a float batch ``(B, C, H, W)`` on any device and a ``torch.Generator`` on that device, so the
draws are reproducible and a resumed run replays them exactly.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "random_crop",
    "random_flip",
    "cutout",
    "cutout_random_size",
    "random_affine",
    "random_colour",
    "Augment",
    "StrongAugment",
    "RandomAugment",
    "RANDOM_AUGMENT_OPS",
    "AutoAugment",
    "RandAugment",
    "Compose",
    "apply_op",
    "op_magnitude",
    "POLICY_OPS",
    "CIFAR10_POLICIES",
    "RANDAUGMENT_OPS",
    "AUGMENT_VARIANTS",
    "comining_strong_view",
    "sop_strong_view",
    "COMINING_STRONG_VIEWS",
    "SOP_STRONG_VIEWS",
]


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator | None = None, fill: float | torch.Tensor = 0.0
) -> torch.Tensor:
    """Random crop of the original size after padding (``RandomCrop(size, padding)``).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
    padding : int
        Pixels of ``fill`` added on every side before cropping.
    fill : float or Tensor (C,)
        The padding's value, one per channel if a tensor (e.g. ``-mean/std``: black in normalised space).

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    if isinstance(fill, torch.Tensor):
        padded = fill.to(x.device, x.dtype).view(1, c, 1, 1).repeat(b, 1, h + 2 * padding, w + 2 * padding)
        padded[:, :, padding : padding + h, padding : padding + w] = x
    else:
        padded = F.pad(x, (padding,) * 4, value=fill)
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None]  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None]  # (B, W)
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


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    magnitude: float = 1.0,
    p: float = 0.5,
    max_rotate: float = 30.0,
    max_shear: float = 0.3,
    max_translate: float = 0.3,
) -> torch.Tensor:
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


def random_colour(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    magnitude: float = 1.0,
    p: float = 0.5,
    max_factor: float = 0.9,
) -> torch.Tensor:
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

    Applied to the *normalised* batch, with zero padding/fill by default; zero in normalised space is the data
    mean, which differs slightly from the official codes' black padding of the raw image (measured to make no
    difference in accuracy on CIFAR by airbench-style trainers; noted here so nobody is surprised).  Where a policy
    follows the crop and sees the padding (Co-mining's strong view), ``fill=-mean/std`` pads black as officially.

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
    fill : float or sequence of float (C,)
        The crop padding's value in normalised space, one per channel if a sequence.
    """

    def __init__(
        self,
        crop_padding: int = 4,
        flip: bool = True,
        cutout_size: int = 0,
        order: str = "crop_flip",
        fill: float | Sequence[float] | torch.Tensor = 0.0,
    ):
        if order not in ("crop_flip", "flip_crop"):
            raise ValueError(f"order must be 'crop_flip' or 'flip_crop', got {order!r}")
        self.crop_padding, self.flip, self.cutout_size, self.order = (
            int(crop_padding),
            bool(flip),
            int(cutout_size),
            order,
        )
        self.fill = fill if isinstance(fill, (int, float)) else torch.as_tensor(fill, dtype=torch.float32).flatten()

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.order == "flip_crop" and self.flip:
            x = random_flip(x, generator)
        x = random_crop(x, self.crop_padding, generator, self.fill)
        if self.order == "crop_flip" and self.flip:
            x = random_flip(x, generator)
        return cutout(x, self.cutout_size, generator)

    def __repr__(self) -> str:
        return (
            f"Augment(crop_padding={self.crop_padding}, flip={self.flip}, cutout_size={self.cutout_size}, "
            f"order={self.order!r}"
            + ("" if isinstance(self.fill, (int, float)) else f", fill={[round(v, 4) for v in self.fill.tolist()]}")
            + ")"
        )


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

    def __init__(
        self,
        crop_padding: int = 4,
        flip: bool = True,
        magnitude: float = 0.5,
        p: float = 0.5,
        cutout_size: int = 0,
        order: str = "crop_flip",
    ):
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
        return (
            f"StrongAugment(crop_padding={self.crop_padding}, flip={self.flip}, magnitude={self.magnitude}, "
            f"p={self.p}, cutout_size={self.strong_cutout})"
        )


# ------------------------------------------------------------------------------------ ProMix's "RandomAugment"
# The 14 operations of ProMix's strong view (official ``randaug.py``) with their magnitude ranges.  Each image gets
# ``n_ops`` of them, drawn uniformly *with replacement*, each with a magnitude drawn uniformly from its range (the
# ``m`` argument of the official class is ignored by its code, so it is absent here).
RANDOM_AUGMENT_OPS: dict[str, tuple[float, float] | None] = {
    "AutoContrast": None,
    "Equalize": None,
    "Identity": None,
    "Brightness": (0.05, 0.95),
    "Color": (0.05, 0.95),
    "Contrast": (0.05, 0.95),
    "Sharpness": (0.05, 0.95),
    "Posterize": (4.0, 8.0),
    "Rotate": (-30.0, 30.0),
    "ShearX": (-0.3, 0.3),
    "ShearY": (-0.3, 0.3),
    "Solarize": (0.0, 256.0),
    "TranslateX": (-0.3, 0.3),
    "TranslateY": (-0.3, 0.3),
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
    lut = torch.div(
        before + torch.div(step, 2, rounding_mode="floor")[:, None], step.clamp_min(1)[:, None], rounding_mode="floor"
    ).clamp(max=255)
    out = lut.gather(1, q) / 255.0
    out = torch.where((step > 0)[:, None], out, q.float() / 255.0)
    return out.reshape(b, c, h, w).to(x.dtype)


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageFilter.SMOOTH`` (3×3 kernel 1 1 1 / 1 5 1 / 1 1 1, /13) with the border pixels kept."""
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        return x
    # (3×3 box sum + 4 × centre) / 13; a pooling pass is much cheaper than a grouped convolution on the CPU
    box = F.avg_pool2d(x, 3, stride=1) * 9.0
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = (box + 4.0 * x[:, :, 1:-1, 1:-1]) / 13.0
    return out


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour affine warp (PIL's default resampling) with black outside; ``theta`` (B, 2, 3) maps output
    to input coordinates in [-1, 1]."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _pil_gray_levels(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert("L")`` on 256 levels: ``(R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16`` of a [0, 1] batch whose
    values are levels, as [0, 1] values (B, 1, H, W)."""
    if x.shape[1] != 3:
        return x
    q = (x.double() * 255.0).round()
    w = torch.tensor([19595.0, 38470.0, 7471.0], device=x.device, dtype=q.dtype).view(1, 3, 1, 1)
    return (torch.floor(((q * w).sum(1, keepdim=True) + 32768.0) / 65536.0) / 255.0).to(x.dtype)


def _apply_op(name: str, x: torch.Tensor, v: torch.Tensor, pil_levels: bool = False) -> torch.Tensor:
    """One RandomAugment op on a [0, 1] batch ``x`` (B, C, H, W) with per-image magnitudes ``v`` (B,).

    ``pil_levels``: the enhancement ops' degenerate images are uint8 images in PIL (its grey conversion, the
    rounded grey mean of Contrast, the rounded SMOOTH filter of Sharpness), so they are put on the 256 levels as
    PIL computes them (the PIL-based policy variants); otherwise they stay in float (torchvision's float kernels).
    """
    if name == "Identity":
        return x
    if name == "AutoContrast":
        return _autocontrast(x)
    if name == "Equalize":
        return _equalize(x)
    if name == "Brightness":
        return _blend(torch.zeros_like(x), x, v)
    if name == "Color":
        grey = _pil_gray_levels(x) if pil_levels else _gray(x)
        return _blend(grey.expand_as(x), x, v)
    if name == "Contrast":
        if pil_levels:  # ImageEnhance.Contrast: int(mean of the "L" image + 0.5)
            mean = torch.floor(_pil_gray_levels(x).double().mean((1, 2, 3), keepdim=True) * 255.0 + 0.5) / 255.0
            return _blend(mean.to(x.dtype).expand_as(x), x, v)
        return _blend(_gray(x).mean((1, 2, 3), keepdim=True).expand_as(x), x, v)
    if name == "Sharpness":
        smooth = _smooth(x)
        if pil_levels:  # PIL's 3×3 filter rounds its output to the nearest level
            smooth = torch.floor(smooth * 255.0 + 0.5) / 255.0
        return _blend(smooth, x, v)
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


def cutout_random_size(
    x: torch.Tensor, max_fraction: float, fill: torch.Tensor | float, generator: torch.Generator | None = None
) -> torch.Tensor:
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

    def __init__(
        self,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        n_ops: int = 3,
        cutout_max_fraction: float = 0.5,
        cutout_fill: Sequence[float] = (125.0, 123.0, 114.0),
        then: Augment | None = None,
    ):
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
        return f"RandomAugment(n_ops={self.n_ops}, cutout_max_fraction={self.cutout_max_fraction}, then={self.then!r})"


# ------------------------------------------------------------------------ AutoAugment and RandAugment, batched
# Each image draws its own sub-policy (AutoAugment) or its own ops (RandAugment); the batch is then processed op by
# op, each op applied at once to the images that drew it.  Three published implementations differ in magnitudes,
# fill and a few table entries, so each policy takes a ``variant``:
#
# * ``"torchvision"``: ``torchvision.transforms.v2.AutoAugment(AutoAugmentPolicy.CIFAR10)`` / ``RandAugment``.
# * ``"deepvoltaire"``: the PyPI package ``randaugment==1.0.2`` (a copy of DeepVoltaire's AutoAugment), which the
#   official Co-mining ``common/builder.py`` imports (``CIFAR10Policy``, ``RandAugment``).  Against torchvision:
#   geometric ops fill with grey 128; shears resample with PIL's affine bicubic (a = -1, :func:`_shear_pil_bicubic`);
#   Rotate always turns counter-clockwise (no random
#   sign); Solarize thresholds are ``linspace(256, 0, 10)``; translations are not truncated to whole pixels;
#   sub-policy 16 applies its second Equalize with p = 0.8 (torchvision: 0.6).  Its RandAugment is not the paper's:
#   two ops, each drawn from 15 (Cutout and Invert included, Identity not), each with a magnitude index uniform in
#   1..9 and applied with probability 0.5.
# * ``"fastaa"``: the Fast-AutoAugment archive's ``autoaug_paper_cifar10`` that the official Prune4ReL
#   (``deepcore/datasets/augmentations.py``, ``augmentation_archive.py``) and SOP code use.  It keeps the
#   TensorFlow reference magnitudes: level ``l`` of 10 gives shear ``0.03·l``, translation ``l`` pixels, rotation
#   ``int(3·l)`` degrees (all with a random sign), Posterize to ``4 − int(0.4·l)`` bits, Solarize at
#   ``256 − int(25.6·l)``, and enhancement factors ``0.1 + 0.18·l`` *without* a random sign; black fill; nearest
#   resampling.  Its table gives sub-policy 13's Color level 6 (torchvision: 8).

POLICY_OPS: tuple[str, ...] = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
    "Invert",
    "Cutout",
)
_GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
AUGMENT_VARIANTS = ("torchvision", "deepvoltaire", "fastaa")

# (op, probability, level) pairs of the 25 CIFAR-10 sub-policies of the AutoAugment paper, as torchvision lists them
_CIFAR10_TORCHVISION: tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...] = (
    (("Invert", 0.1, 7), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, 5), ("Equalize", 0.5, 1)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, 3)),
    (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
    (("Equalize", 0.2, 8), ("Equalize", 0.6, 4)),
    (("Color", 0.9, 9), ("Equalize", 0.6, 6)),
    (("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, 8), ("Invert", 0.1, 3)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 1)),
)


def _with_entry(table, k: int, slot: int, entry: tuple[str, float, int]):
    rows = [list(r) for r in table]
    rows[k][slot] = entry
    return tuple(tuple(r) for r in rows)


CIFAR10_POLICIES: dict[str, tuple] = {
    "torchvision": _CIFAR10_TORCHVISION,
    "deepvoltaire": _with_entry(_CIFAR10_TORCHVISION, 16, 1, ("Equalize", 0.8, 4)),
    "fastaa": _with_entry(_CIFAR10_TORCHVISION, 13, 1, ("Color", 0.2, 6)),
}

# RandAugment's op lists: torchvision's 14 and the 15 of ``randaugment==1.0.2`` (its order)
RANDAUGMENT_OPS: dict[str, tuple[str, ...]] = {
    "torchvision": (
        "Identity",
        "ShearX",
        "ShearY",
        "TranslateX",
        "TranslateY",
        "Rotate",
        "Brightness",
        "Color",
        "Contrast",
        "Sharpness",
        "Posterize",
        "Solarize",
        "AutoContrast",
        "Equalize",
    ),
    "deepvoltaire": (
        "Invert",
        "Cutout",
        "Sharpness",
        "AutoContrast",
        "Posterize",
        "ShearX",
        "TranslateX",
        "TranslateY",
        "ShearY",
        "Rotate",
        "Equalize",
        "Contrast",
        "Color",
        "Solarize",
        "Brightness",
    ),
}


def op_magnitude(variant: str, op: str, level: int, height: int, width: int, num_bins: int = 10) -> tuple[float, bool]:
    """The magnitude of ``op`` at magnitude index ``level`` in one implementation, and whether it takes a random sign.

    Units are those of :func:`apply_op` (shear factor, pixels, degrees counter-clockwise, enhancement factor,
    bits kept, threshold in 0-255 levels, Cutout side in pixels).  ``num_bins`` is torchvision's bin count
    (10 for AutoAugment, 31 for RandAugment); the other variants use 10 bins (``deepvoltaire``) or levels 0-10
    (``fastaa``).
    """
    if variant not in AUGMENT_VARIANTS:
        raise ValueError(f"variant must be one of {AUGMENT_VARIANTS}, got {variant!r}")
    if op in ("Identity", "AutoContrast", "Equalize", "Invert"):
        return 0.0, False
    if variant == "fastaa":  # float_parameter(l, m) = l·m/10, int_parameter = int(...) as the TF reference
        if op in ("ShearX", "ShearY"):
            return level * 0.3 / 10, True
        if op in ("TranslateX", "TranslateY"):  # the archive's TranslateXAbs/YAbs: level pixels
            return float(level), True
        if op == "Rotate":
            return float(int(level * 30 / 10)), True
        if op == "Posterize":  # the archive's Posterize2
            return float(4 - int(level * 4 / 10)), False
        if op == "Solarize":
            return float(256 - int(level * 256 / 10)), False
        if op in ("Brightness", "Color", "Contrast", "Sharpness"):
            return level * 1.8 / 10 + 0.1, False
        raise ValueError(f"op {op!r} is not in the fastaa CIFAR-10 policy")
    n = num_bins - 1
    frac = level / n
    if op in ("ShearX", "ShearY"):
        return 0.3 * frac, True
    if op in ("TranslateX", "TranslateY"):
        size = width if op == "TranslateX" else height
        t = 150.0 / 331.0 * size * frac
        return (float(int(t)) if variant == "torchvision" else t), True  # torchvision truncates to whole pixels
    if op == "Rotate":
        return 30.0 * frac, variant == "torchvision"
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return 0.9 * frac, True  # the factor is 1 ± this
    if op == "Posterize":
        return float(round(8 - level / (n / 4))), False
    if op == "Solarize":
        return (255.0 * (1 - frac) if variant == "torchvision" else 256.0 * (1 - frac)), False
    if op == "Cutout" and variant == "deepvoltaire":
        return float(round(20 * frac)), False
    raise ValueError(f"op {op!r} has no magnitude in variant {variant!r}")


def _geometric_theta(name: str, v: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 2, 3) ``affine_grid`` matrices for a per-image geometric op, built in pixel coordinates (origin at the
    top-left corner of the image, as PIL's ``transform`` and torchvision's ``affine(center=[0, 0])``) and mapping
    output to input positions."""
    b = v.shape[0]
    dt = torch.float32 if v.device.type == "mps" else torch.float64  # MPS has no float64
    v = v.to(dt)
    a = torch.zeros(b, 2, 2, dtype=dt, device=v.device)
    a[:, 0, 0] = a[:, 1, 1] = 1.0
    t = torch.zeros(b, 2, dtype=dt, device=v.device)
    if name == "ShearX":  # input x = x + v·y (PIL's (1, v, 0, 0, 1, 0))
        a[:, 0, 1] = v
    elif name == "ShearY":
        a[:, 1, 0] = v
    elif name == "TranslateX":  # v > 0 moves the content right by v pixels
        t[:, 0] = -v
    elif name == "TranslateY":
        t[:, 1] = -v
    elif name == "Rotate":  # v degrees counter-clockwise on screen about the image centre
        rad = v * (math.pi / 180.0)
        cos, sin = torch.cos(rad), torch.sin(rad)
        a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1] = cos, -sin, sin, cos
        c = torch.tensor([w / 2.0, h / 2.0], dtype=dt, device=v.device)
        t = c - (a @ c)
    else:  # pragma: no cover
        raise ValueError(name)
    # pixel position p = D (n + 1) with D = diag(W/2, H/2): theta = [D⁻¹ A D | D⁻¹ (A D 1 + t) − 1]
    d = torch.tensor([w / 2.0, h / 2.0], dtype=dt, device=v.device)
    lin = a * d[None, None, :] / d[None, :, None]
    off = ((a @ d) + t) / d - 1.0
    return torch.cat([lin, off[:, :, None]], 2).float()


def _warp(x: torch.Tensor, theta: torch.Tensor, fill: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Resample ``x`` (B, C, H, W) with ``theta``; positions outside the image take ``fill`` (C,) or black."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    if mode != "nearest":
        # PIL's filters: the kernel repeats the edge pixels near the border; only output pixels whose source lies
        # outside the image take the fill
        img = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)
        inside = ((grid >= -1.0) & (grid < 1.0)).all(-1)[:, None]
        f = torch.zeros(1, device=x.device, dtype=x.dtype) if fill is None else fill.to(x.device, x.dtype)
        return torch.where(inside, img, f.view(1, -1, 1, 1).expand_as(img))
    if fill is None or not bool((fill != 0).any()):
        return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    # as torchvision: warp a ones channel along to know which output pixels came from inside the image
    ones = torch.ones_like(x[:, :1])
    out = F.grid_sample(torch.cat([x, ones], 1), grid, mode=mode, padding_mode="zeros", align_corners=False)
    img, mask = out[:, :-1], out[:, -1:]
    f = fill.to(x.device, x.dtype).view(1, -1, 1, 1)
    return torch.where(mask < 0.5, f.expand_as(img), img)


def _cubic_weight(t: torch.Tensor, a: float) -> torch.Tensor:
    """The cubic convolution kernel with parameter ``a`` (Keys 1981) at offsets ``t``."""
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def _shear_pil_bicubic(x: torch.Tensor, name: str, v: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
    """ShearX/ShearY as PIL's ``Image.transform(AFFINE, BICUBIC)``: input x = x + v·y about the top-left corner.

    A shear moves pixels along one axis only, so each output pixel interpolates four neighbours of one row
    (column), with PIL's affine kernel, the cubic convolution with a = -1 (its ``Geometry.c``; resizing uses -0.5,
    torch -0.75), the neighbours clamped at the image's edge; pixels whose source lies outside the image take
    ``fill`` (C,) or black.  Measured against Pillow on noise images: equal after PIL's truncation to uint8.
    """
    if name == "ShearY":  # the same along the other axis
        return _shear_pil_bicubic(x.transpose(2, 3), "ShearX", v, fill).transpose(2, 3)
    b, c, h, w = x.shape
    dt = torch.float32 if x.device.type == "mps" else torch.float64
    cols = torch.arange(w, device=x.device, dtype=dt) + 0.5
    rows = torch.arange(h, device=x.device, dtype=dt) + 0.5
    src = cols[None, None, :] + v.to(dt)[:, None, None] * rows[None, :, None]  # (B, H, W), pixel edges at integers
    inside = (src >= 0) & (src < w)
    pos = src - 0.5  # in pixel-centre units
    left = pos.floor()
    frac = pos - left
    out = torch.zeros(b, c, h, w, device=x.device, dtype=dt)
    for k in (-1, 0, 1, 2):
        idx = (left + k).clamp(0, w - 1).long()[:, None].expand(b, c, h, w)
        out += torch.gather(x.to(dt), 3, idx) * _cubic_weight(frac - k, -1.0)[:, None]
    f = torch.zeros(c, device=x.device, dtype=dt) if fill is None else fill.to(x.device, dt)
    return torch.where(inside[:, None], out, f.view(1, -1, 1, 1)).to(x.dtype)


def _cutout_pixels(
    x: torch.Tensor, side: torch.Tensor, fill: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """``randaugment==1.0.2``'s Cutout: a square ``[c − s//2, c + s//2)`` around a uniform integer centre, clipped,
    set to ``fill`` (C,)."""
    b, c, h, w = x.shape
    cy = torch.randint(0, h, (b,), device=x.device, generator=generator)
    cx = torch.randint(0, w, (b,), device=x.device, generator=generator)
    half = torch.div(side.long(), 2, rounding_mode="floor")
    ys = torch.arange(h, device=x.device)[None]
    xs = torch.arange(w, device=x.device)[None]
    in_y = (ys >= (cy - half)[:, None]) & (ys < (cy + half)[:, None])
    in_x = (xs >= (cx - half)[:, None]) & (xs < (cx + half)[:, None])
    mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]
    return torch.where(mask, fill.to(x.device, x.dtype).view(1, -1, 1, 1).expand(1, c, 1, 1), x)


def apply_op(
    name: str,
    x: torch.Tensor,
    v: torch.Tensor,
    fill: torch.Tensor | Sequence[float] | None = None,
    interpolation: str = "nearest",
    generator: torch.Generator | None = None,
    pil_levels: bool = False,
) -> torch.Tensor:
    """One AutoAugment/RandAugment op on a batch of images in [0, 1], each image with its own magnitude.

    Parameters
    ----------
    name : str
        One of :data:`POLICY_OPS`.
    x : Tensor, shape (B, C, H, W)
        Pixel values in [0, 1] (level ``k`` of 255 is ``k / 255``).
    v : Tensor, shape (B,)
        Signed magnitudes: shear factor (input x = x + v·y, about the top-left corner), translation in pixels
        (positive: right/down), rotation in degrees counter-clockwise about the centre, enhancement factor
        (Brightness/Color/Contrast/Sharpness, PIL's ``ImageEnhance``), bits kept (Posterize), threshold in levels
        0-255 (Solarize inverts levels ``>= v``), square side in pixels (Cutout); ignored by the others.
    fill : Tensor or sequence (C,), optional
        Colour in [0, 1] of pixels moved in from outside (geometric ops) and of the Cutout square; black if None.
    interpolation : {"nearest", "bilinear", "bicubic", "pil_bicubic"}
        Resampling of the geometric ops; ``"bicubic"`` is torch's kernel (a = -0.75), ``"pil_bicubic"`` (ShearX/Y
        only) PIL's affine resampler's (a = -1, see :func:`_shear_pil_bicubic`).
    generator : torch.Generator, optional
        Draws Cutout's position.
    pil_levels : bool
        Color / Contrast / Sharpness build their degenerate image on the 256 levels as PIL does (the PIL-based
        variants ``deepvoltaire`` and ``fastaa``); otherwise in float, as torchvision.

    Returns
    -------
    Tensor, shape (B, C, H, W), in [0, 1]

    Notes
    -----
    Color on a one-channel image is the identity (the grey image of a grey image is itself), as in PIL and
    torchvision.
    """
    if name not in POLICY_OPS:
        raise ValueError(f"unknown op {name!r}; expected one of {POLICY_OPS}")
    b, c, h, w = x.shape
    if b == 0 or name == "Identity":
        return x
    v = torch.as_tensor(v, device=x.device).reshape(-1)
    fill_t = None if fill is None else torch.as_tensor(fill, dtype=torch.float32, device=x.device).reshape(-1)
    if fill_t is not None and fill_t.numel() != c:
        fill_t = fill_t.mean().expand(c) if fill_t.numel() > 1 else fill_t.expand(c)
    if name in _GEOMETRIC:
        if interpolation == "pil_bicubic":
            if name not in ("ShearX", "ShearY"):
                raise ValueError(f"interpolation 'pil_bicubic' is for ShearX/ShearY only, got {name!r}")
            return _shear_pil_bicubic(x, name, v, fill_t).clamp(0.0, 1.0)
        mode = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}.get(interpolation)
        if mode is None:
            raise ValueError(f"interpolation must be nearest, bilinear, bicubic or pil_bicubic, got {interpolation!r}")
        return _warp(x, _geometric_theta(name, v, h, w), fill_t, mode).clamp(0.0, 1.0)
    if name == "Invert":
        return 1.0 - x
    if name == "Cutout":
        return _cutout_pixels(x, v, fill_t if fill_t is not None else torch.zeros(c, device=x.device), generator)
    if name == "Posterize":
        shift = (2.0 ** (8 - v.float().floor().clamp(0, 8))).view(-1, 1, 1, 1).to(x.dtype)
        return torch.floor((x * 255.0).round() / shift) * shift / 255.0
    if name == "Solarize":
        return torch.where((x * 255.0).round() >= v.view(-1, 1, 1, 1).to(x.dtype), 1.0 - x, x)
    # AutoContrast, Equalize, Brightness, Color, Contrast, Sharpness
    return _apply_op(name, x, v.to(x.dtype), pil_levels)


_OFF_LEVEL = {"Brightness", "Color", "Contrast", "Sharpness", "AutoContrast"}  # ops whose output leaves the levels


def _quantise(px: torch.Tensor) -> torch.Tensor:
    """Back onto the 256 levels, as the per-image pipelines store every intermediate image as uint8, by truncation:
    PIL's ``ImageEnhance`` blend and ``ImageOps.autocontrast`` LUT and its affine bicubic resampler cast their float
    results to uint8 without rounding, as do torchvision's uint8 kernels (the 1e-3 keeps a float32 value meant to be
    exactly on a level from falling to the one below)."""
    return (px * 255.0 + 1e-3).floor() / 255.0


class _PolicyBase:
    """Shared parts of the batched policies: normalised <-> pixel mapping and op-grouped application."""

    variant: str
    interpolations: dict[str, str]

    def __init__(self, mean, std, variant: str, fill: Sequence[float] | None):
        if variant not in AUGMENT_VARIANTS:
            raise ValueError(f"variant must be one of {AUGMENT_VARIANTS}, got {variant!r}")
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if self.mean.numel() != self.std.numel() or bool((self.std <= 0).any()):
            raise ValueError("mean and std must have one entry per channel and std > 0")
        self.variant = variant
        if fill is None:  # the implementations' own default fill
            fill = (128.0, 128.0, 128.0) if variant == "deepvoltaire" else (0.0, 0.0, 0.0)
        self.fill = torch.as_tensor(fill, dtype=torch.float32).reshape(-1) / 255.0
        # randaugment==1.0.2 shears with PIL's affine BICUBIC, whose cubic kernel has a = -1 (not torch's -0.75)
        self.interpolations = {"ShearX": "pil_bicubic", "ShearY": "pil_bicubic"} if variant == "deepvoltaire" else {}
        self.cutout_fill = torch.tensor([125.0, 122.0, 113.0]) / 255.0  # randaugment==1.0.2's Cutout colour

    def _to_pixels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        if self.mean.numel() not in (1, c):
            raise ValueError(f"mean/std have {self.mean.numel()} channels, the batch {c}")
        mean = self.mean.to(x.device).view(1, -1, 1, 1)
        std = self.std.to(x.device).view(1, -1, 1, 1)
        # no rounding here: the ops that compare or bin levels (Posterize, Solarize, Equalize) round themselves
        return (x.float() * std + mean).clamp(0.0, 1.0), mean, std

    @staticmethod
    def _from_pixels(px: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        out = ((px - mean) / std).to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last):
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def _apply_slot(
        self,
        px: torch.Tensor,
        op: torch.Tensor,
        value: torch.Tensor,
        applied: torch.Tensor,
        names: Sequence[str],
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Apply op ``names[op[i]]`` with magnitude ``value[i]`` to every image ``i`` with ``applied[i]``, one
        batched call per op, in place (each image is in one group at most)."""
        for k, name in enumerate(names):
            idx = torch.nonzero(applied & (op == k)).squeeze(1)
            if len(idx) == 0 or name == "Identity":
                continue
            fill = self.cutout_fill if name == "Cutout" else self.fill
            interp = self.interpolations.get(name, "nearest")
            out = apply_op(name, px[idx], value[idx], fill, interp, generator, self.variant != "torchvision")
            if name in _OFF_LEVEL or interp != "nearest":  # the other ops map levels to levels
                out = _quantise(out)
            px[idx] = out
        return px


class AutoAugment(_PolicyBase):
    """AutoAugment's CIFAR-10 policy on normalised device batches, a sub-policy drawn per image.

    Each image draws one of the 25 sub-policies uniformly; each of its two ops is applied with the op's probability,
    at its fixed magnitude level, with a random sign where the implementation draws one.  The normalised batch is
    mapped back to pixel values with ``mean``/``std``, transformed on 256 levels, and normalised again.

    Parameters
    ----------
    mean, std : sequence of float or Tensor (C,)
        The normalisation of the batches.
    policy : {"cifar10"}
    variant : {"torchvision", "deepvoltaire", "fastaa"}
        Whose magnitudes, fill and table (module comment above): torchvision's v2 ``AutoAugment``; the
        ``randaugment==1.0.2`` ``CIFAR10Policy`` of the official Co-mining code; the Fast-AutoAugment archive's
        ``autoaug_paper_cifar10`` of the official Prune4ReL and SOP code.
    fill : sequence of float, optional
        Fill of the geometric ops in 0-255 levels (default: the variant's, black or grey 128).
    """

    def __init__(
        self, mean, std, policy: str = "cifar10", variant: str = "torchvision", fill: Sequence[float] | None = None
    ):
        if policy != "cifar10":
            raise ValueError(f"only the 'cifar10' policy is implemented, got {policy!r}")
        super().__init__(mean, std, variant, fill)
        self.policy = policy
        self.table = CIFAR10_POLICIES[variant]
        self.names = tuple(sorted({e[0] for sub in self.table for e in sub}))
        self.op = torch.tensor([[self.names.index(e[0]) for e in sub] for sub in self.table])  # (25, 2)
        self.prob = torch.tensor([[e[1] for e in sub] for sub in self.table], dtype=torch.float32)
        # randaugment==1.0.2 applies an op when u < p; torchvision and the archive when u <= p
        self.strict = variant == "deepvoltaire"

    def magnitudes(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unsigned magnitude and random-sign flag of each sub-policy op, both (25, 2)."""
        vals = [[op_magnitude(self.variant, e[0], e[2], height, width) for e in sub] for sub in self.table]
        return (
            torch.tensor([[m for m, _ in r] for r in vals], dtype=torch.float32),
            torch.tensor([[s for _, s in r] for r in vals]),
        )

    def apply(
        self,
        px: torch.Tensor,
        sub_policy: torch.Tensor,
        applied: torch.Tensor,
        negative: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Apply chosen sub-policies to pixel images (the deterministic part of :meth:`__call__`).

        Parameters
        ----------
        px : Tensor, shape (B, C, H, W), values on the 256 levels in [0, 1]
        sub_policy : LongTensor, shape (B,)
            Index of each image's sub-policy in ``self.table``.
        applied, negative : BoolTensor, shape (B, 2)
            Whether each of the two ops runs, and whether its magnitude is negated (only where the op is signed).

        Returns
        -------
        Tensor, shape (B, C, H, W)
        """
        h, w = px.shape[-2:]
        mag, signed = self.magnitudes(h, w)
        dev = px.device
        px = px.clone()
        sub_policy = sub_policy.to(dev)
        for slot in range(2):
            m = mag[:, slot].to(dev)[sub_policy]
            flip = negative[:, slot].to(dev) & signed[:, slot].to(dev)[sub_policy]
            value = torch.where(flip, -m, m)
            op = self.op[:, slot].to(dev)[sub_policy]
            if self.variant != "fastaa":  # the factor of the enhancement ops is 1 ± magnitude
                enh = torch.tensor(
                    [n in ("Brightness", "Color", "Contrast", "Sharpness") for n in self.names], device=dev
                )[op]
                value = torch.where(enh, 1.0 + value, value)
            px = self._apply_slot(px, op, value, applied[:, slot].to(dev), self.names, generator)
        return px

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b = x.shape[0]
        if b == 0:
            return x
        px, mean, std = self._to_pixels(x)
        sub = torch.randint(0, len(self.table), (b,), device=x.device, generator=generator)
        u = torch.rand(b, 2, device=x.device, generator=generator)
        p = self.prob.to(x.device)[sub]
        applied = (u < p) if self.strict else (u <= p)
        negative = torch.rand(b, 2, device=x.device, generator=generator) < 0.5
        return self._from_pixels(self.apply(px, sub, applied, negative, generator), x, mean, std)

    def __repr__(self) -> str:
        return f"AutoAugment(policy={self.policy!r}, variant={self.variant!r})"


class RandAugment(_PolicyBase):
    """RandAugment on normalised device batches, ops drawn per image.

    ``variant="torchvision"``: as ``torchvision.transforms.v2.RandAugment(num_ops, magnitude, num_magnitude_bins)``:
    ``num_ops`` ops per image drawn uniformly (with replacement) from its 14, each always applied at magnitude index
    ``magnitude`` of ``num_magnitude_bins``, with a random sign where signed.  ``variant="deepvoltaire"``: as the
    ``RandAugment()`` of ``randaugment==1.0.2`` (official Co-mining web sets): two ops from its 15 (Cutout and Invert
    included), each with a magnitude index uniform in 1..9 and applied with probability 0.5; ``num_ops`` must be 2
    and ``magnitude`` is not used.

    Parameters
    ----------
    mean, std : sequence of float or Tensor (C,)
    num_ops : int
    magnitude : int
    num_magnitude_bins : int
    variant : {"torchvision", "deepvoltaire"}
    fill : sequence of float, optional
        Fill of the geometric ops in 0-255 levels (default: the variant's).
    """

    def __init__(
        self,
        mean,
        std,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        variant: str = "torchvision",
        fill: Sequence[float] | None = None,
    ):
        if variant not in RANDAUGMENT_OPS:
            raise ValueError(f"variant must be one of {tuple(RANDAUGMENT_OPS)}, got {variant!r}")
        if not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"num_ops must be a non-negative integer, got {num_ops!r}")
        if not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"magnitude must be in [0, {num_magnitude_bins}), got {magnitude}")
        if variant == "deepvoltaire" and num_ops != 2:
            raise ValueError("the randaugment==1.0.2 RandAugment applies exactly 2 ops")
        super().__init__(mean, std, variant, fill)
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, int(magnitude), int(num_magnitude_bins)
        self.names = RANDAUGMENT_OPS[variant]
        self.levels = (self.magnitude,) if variant == "torchvision" else tuple(range(1, 10))
        self.apply_prob = 1.0 if variant == "torchvision" else 0.5

    def magnitudes(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unsigned magnitude (n_ops, n_levels) over ``self.levels`` and random-sign flag (n_ops,) of each op."""
        bins = self.num_magnitude_bins if self.variant == "torchvision" else 10
        vals = [[op_magnitude(self.variant, n, lv, height, width, bins) for lv in self.levels] for n in self.names]
        return (
            torch.tensor([[m for m, _ in r] for r in vals], dtype=torch.float32),
            torch.tensor([r[0][1] for r in vals]),
        )

    def apply(
        self,
        px: torch.Tensor,
        ops: torch.Tensor,
        levels: torch.Tensor,
        applied: torch.Tensor,
        negative: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Apply chosen ops to pixel images (the deterministic part of :meth:`__call__`).

        Parameters
        ----------
        px : Tensor, shape (B, C, H, W), values on the 256 levels in [0, 1]
        ops, levels : LongTensor, shape (B, K)
            Op index into ``self.names`` and level index into ``self.levels`` of each image's ``K`` ops.
        applied, negative : BoolTensor, shape (B, K)

        Returns
        -------
        Tensor, shape (B, C, H, W)
        """
        h, w = px.shape[-2:]
        mag, signed = self.magnitudes(h, w)
        dev = px.device
        px = px.clone()
        mag, signed = mag.to(dev), signed.to(dev)
        enh = torch.tensor([n in ("Brightness", "Color", "Contrast", "Sharpness") for n in self.names], device=dev)
        for k in range(ops.shape[1]):
            op, lv = ops[:, k].to(dev), levels[:, k].to(dev)
            m = mag[op, lv]
            value = torch.where(negative[:, k].to(dev) & signed[op], -m, m)
            value = torch.where(enh[op], 1.0 + value, value)
            px = self._apply_slot(px, op, value, applied[:, k].to(dev), self.names, generator)
        return px

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b = x.shape[0]
        if b == 0 or self.num_ops == 0:
            return x
        px, mean, std = self._to_pixels(x)
        k, dev = self.num_ops, x.device
        ops = torch.randint(0, len(self.names), (b, k), device=dev, generator=generator)
        levels = torch.randint(0, len(self.levels), (b, k), device=dev, generator=generator)
        applied = torch.rand(b, k, device=dev, generator=generator) < self.apply_prob
        negative = torch.rand(b, k, device=dev, generator=generator) < 0.5
        return self._from_pixels(self.apply(px, ops, levels, applied, negative, generator), x, mean, std)

    def __repr__(self) -> str:
        return (
            f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
            f"num_magnitude_bins={self.num_magnitude_bins}, variant={self.variant!r})"
        )


class Compose:
    """Device augmentations applied in order, sharing one generator (e.g. crop/flip, then a policy).

    Parameters
    ----------
    steps : sequence of callables ``(x, generator) -> x``
    """

    def __init__(self, *steps):
        if not steps or not all(callable(s) for s in steps):
            raise ValueError("Compose needs one or more callables (x, generator) -> x")
        self.steps = tuple(steps)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for step in self.steps:
            x = step(x, generator)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(map(repr, self.steps)) + ")"


# ------------------------------------------------------------------------------------ the methods' strong views
COMINING_STRONG_VIEWS = ("autoaugment", "randaugment", "autoaugment_torchvision", "randaugment_torchvision", "mild")
SOP_STRONG_VIEWS = ("autoaugment", "autoaugment_torchvision", "mild")


def comining_strong_view(
    kind: str,
    mean,
    std,
    crop_padding: int,
    flip: bool,
    mild_magnitude: float = 0.5,
    mild_cutout: int = 0,
    black_padding: bool = True,
):
    """Co-mining's strong view (official ``common/builder.py``): crop + flip, then the policy, on normalised batches.

    The official crop pads the PIL image black before the policy runs, so the policy sees the black border (it moves
    AutoContrast's and Equalize's histograms and Contrast's mean): with ``black_padding`` (official) the crop pads
    with ``-mean/std``, black in normalised space; ``False`` pads with 0, the data mean (the kit's earlier view).

    Parameters
    ----------
    kind : {"autoaugment", "randaugment", "autoaugment_torchvision", "randaugment_torchvision", "mild"}
        ``"autoaugment"``: the CIFAR view, ``randaugment==1.0.2``'s ``CIFAR10Policy``; ``"randaugment"``: the web
        view, that package's ``RandAugment()``; the ``_torchvision`` kinds use torchvision's magnitudes instead
        (RandAugment with 2 ops at magnitude 9); ``"mild"``: lnlkit's earlier :class:`StrongAugment`.
    mean, std : the batches' normalisation (C,)
    crop_padding, flip : the crop/flip part (the web sets crop in the loader: padding 0)
    mild_magnitude, mild_cutout : :class:`StrongAugment`'s settings for ``"mild"``
    black_padding : bool
        Pad the crop black before a policy (not used by ``"mild"``).
    """
    if kind not in COMINING_STRONG_VIEWS:
        raise ValueError(f"strong_view must be one of {COMINING_STRONG_VIEWS}, got {kind!r}")
    if kind == "mild":
        return StrongAugment(crop_padding, flip, mild_magnitude, cutout_size=mild_cutout)
    variant = "torchvision" if kind.endswith("_torchvision") else "deepvoltaire"
    policy = (
        AutoAugment(mean, std, "cifar10", variant)
        if kind.startswith("autoaugment")
        else RandAugment(mean, std, 2, 9, variant=variant)
    )
    fill = -torch.as_tensor(mean, dtype=torch.float32) / torch.as_tensor(std, dtype=torch.float32)
    return Compose(Augment(crop_padding, flip, fill=fill if black_padding else 0.0), policy)


def sop_strong_view(kind: str, mean, std, crop_padding: int, flip: bool, cutout_size: int):
    """SOP+'s consistency view and Prune4ReL's score view (official Prune4ReL ``deepcore/datasets/cifar10.py``,
    ``train_strong_transform``): AutoAugment's CIFAR-10 policy, then flip, crop, and Cutout (``CutoutDefault(16)``,
    zero in normalised space, after normalisation).

    Parameters
    ----------
    kind : {"autoaugment", "autoaugment_torchvision", "mild"}
        ``"autoaugment"``: the Fast-AutoAugment archive's ``autoaug_paper_cifar10`` the official code uses;
        ``"autoaugment_torchvision"``: torchvision's magnitudes; ``"mild"``: lnlkit's earlier crop + flip + Cutout.
    mean, std : the batches' normalisation (C,)
    crop_padding, flip, cutout_size : the crop/flip/Cutout part
    """
    if kind not in SOP_STRONG_VIEWS:
        raise ValueError(f"strong_view must be one of {SOP_STRONG_VIEWS}, got {kind!r}")
    if kind == "mild":
        return Augment(crop_padding, flip, cutout_size)
    variant = "torchvision" if kind == "autoaugment_torchvision" else "fastaa"
    return Compose(AutoAugment(mean, std, "cifar10", variant), Augment(crop_padding, flip, cutout_size, "flip_crop"))

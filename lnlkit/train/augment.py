"""Whole-batch image augmentation on the device (no per-sample Python).

All functions take a float batch ``(B, C, H, W)`` on any device and a ``torch.Generator`` on that device, so the
draws are reproducible and a resumed run replays them exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["random_crop", "random_flip", "cutout", "random_affine", "random_colour", "Augment", "StrongAugment"]


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

"""Whole-batch image augmentation on the device (no per-sample Python).

All functions take a float batch ``(B, C, H, W)`` on any device and a ``torch.Generator`` on that device, so the
draws are reproducible and a resumed run replays them exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["random_crop", "random_flip", "cutout", "Augment"]


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

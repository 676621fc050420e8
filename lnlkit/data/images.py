"""A worker-based loader for data sets stored as image files (Clothing1M, WebVision, Web-*).

The workers only decode and crop, as the official Clothing1M, WebVision and web fine-grained loaders do
(``Resize(s)`` then ``RandomCrop(c)`` / ``CenterCrop(c)``): each sample is read with PIL, converted to RGB, resized
so that its *shorter* side is ``files.resize`` with the aspect ratio kept (the longer side ``int(resize · long /
short)``, bilinear), cropped to ``files.crop × files.crop`` (a random crop plus a random horizontal flip for
training, the centre crop for evaluation) and returned as a uint8 tensor ``(3, crop, crop)``.  With ``views=k`` a
training sample is decoded once and cropped ``k`` times independently (the official loaders call the transform once
per view).  Normalisation and any further augmentation happen on the training device on whole batches (the device
loader), as for in-memory data.

Randomness: the crop offset and the flip are drawn with ``torch``'s RNG inside the worker.  PyTorch seeds each
worker from the loader's generator, so ``make_file_loader(..., seed=s)`` gives the same order and the same crops
for the same ``seed`` and ``num_workers`` (with ``num_workers=0`` they come from the global torch RNG).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from lnlkit.data.dataset import ImageFiles

__all__ = ["ImageFileDataset", "make_file_loader", "decode_image", "crop_image", "resized_size"]


def resized_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """``(width, height)`` after resizing the shorter side to ``resize`` with the aspect ratio kept (the longer side
    truncated, as torchvision's ``Resize(int)``)."""
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


def decode_image(path: str, resize: int) -> np.ndarray:
    """Decode one image file to RGB with its shorter side resized to ``resize`` (aspect ratio kept).

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        ``min(H, W) == resize``.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            size = resized_size(im.size[0], im.size[1], resize)
            if im.size != size:
                im = im.resize(size, Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except OSError as exc:  # FileNotFoundError included
        raise OSError(f"cannot read image {path}: {exc}") from exc


def crop_image(img: np.ndarray, crop: int, train: bool) -> np.ndarray:
    """One ``crop × crop`` crop of a decoded ``(H, W, 3)`` image, as a CHW uint8 array.

    Training: a uniform random offset and a horizontal flip with probability 1/2 (torch's RNG); evaluation: the
    centre crop (offsets ``round((H − crop) / 2)``, ``round((W − crop) / 2)``, as ``CenterCrop``).
    """
    h, w = img.shape[:2]
    if train:
        top = int(torch.randint(0, h - crop + 1, ()))
        left = int(torch.randint(0, w - crop + 1, ()))
        flip = bool(torch.rand(()) < 0.5)
    else:
        top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
        flip = False
    out = img[top : top + crop, left : left + crop]
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


class ImageFileDataset(torch.utils.data.Dataset):
    """Samples of an :class:`ImageFiles` list as ``(uint8 tensor (3, crop, crop), label, index)``, or with
    ``views=k > 1`` ``(uint8 tensor (k, 3, crop, crop), label, index)`` holding k independent crops.

    Parameters
    ----------
    files : ImageFiles
    labels : array-like of int, shape (N,)
        Label returned with each image (e.g. the noisy training labels).
    train : bool
        Random crop (no padding) and random horizontal flip when True; centre crop when False.
    views : int
        Crops per sample (each with its own random offset and flip).
    """

    def __init__(self, files: ImageFiles, labels: Any, train: bool, views: int = 1) -> None:
        if not isinstance(files, ImageFiles):
            raise TypeError(f"files must be an ImageFiles list, got {type(files).__name__}")
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != len(files):
            raise ValueError(f"{len(files)} image files but {len(self.labels)} labels; they must match")
        if not 0 < files.crop <= files.resize:
            raise ValueError(f"crop ({files.crop}) must be positive and at most resize ({files.resize})")
        if not isinstance(views, (int, np.integer)) or views < 1:
            raise ValueError(f"views must be a positive integer, got {views!r}")
        self.files = files
        self.train = bool(train)
        self.views = int(views)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        index = int(index)
        img = decode_image(self.files.paths[index], self.files.resize)
        crops = [crop_image(img, self.files.crop, self.train) for _ in range(self.views)]
        x = torch.from_numpy(crops[0] if self.views == 1 else np.stack(crops))
        return x, int(self.labels[index]), index


def make_file_loader(
    files: ImageFiles,
    labels: Any,
    batch_size: int,
    train: bool,
    num_workers: int | None = None,
    seed: int = 0,
    order: Any = None,
    views: int = 1,
) -> torch.utils.data.DataLoader:
    """A :class:`torch.utils.data.DataLoader` over image files.

    Parameters
    ----------
    files : ImageFiles
    labels : array-like of int, shape (N,)
    batch_size : int
    train : bool
        Shuffle and augment (random crop + flip) when True; fixed order and centre crop when False.  The last
        incomplete batch is kept in both cases.
    num_workers : int, optional
        Decoding processes; default ``min(8, os.cpu_count())``.  Workers are persistent when > 0.
    seed : int
        Seeds the shuffling and the workers' augmentation RNG.
    order : array-like of int, optional
        Visit exactly these samples in this order (no shuffling): the device loader passes each epoch's
        permutation, or a selected subset.  Workers are then not persistent, since the loader lives one epoch.
    views : int
        Independent crops per sample (two-view methods); images then come as ``(B, views, 3, crop, crop)``.

    Returns
    -------
    DataLoader
        Batches ``(images uint8 (B, 3, crop, crop), labels int64 (B,), indices int64 (B,))``; pinned memory when
        CUDA is available.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers is None:
        num_workers = min(8, os.cpu_count() or 1)
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    sampler = None if order is None else [int(i) for i in np.asarray(order).reshape(-1)]
    return torch.utils.data.DataLoader(
        ImageFileDataset(files, labels, train, views),
        batch_size=int(batch_size),
        shuffle=bool(train) and sampler is None,
        sampler=sampler,
        num_workers=int(num_workers),
        persistent_workers=num_workers > 0 and sampler is None,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
        drop_last=False,
    )

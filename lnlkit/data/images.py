"""A worker-based loader for data sets stored as image files (Clothing1M, WebVision, Web-*).

The workers only decode and crop: each sample is read with PIL, converted to RGB, resized to
``files.resize × files.resize``, cropped to ``files.crop × files.crop`` (a random crop plus a random horizontal flip
for training, the centre crop for evaluation) and returned as a uint8 tensor ``(3, crop, crop)``.  Normalisation and
any further augmentation happen on the training device on whole batches (the device loader), as for in-memory data.

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

__all__ = ["ImageFileDataset", "make_file_loader", "decode_image"]


def decode_image(path: str, resize: int) -> np.ndarray:
    """Decode one image file to RGB, resized to ``resize × resize``; uint8 array ``(resize, resize, 3)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (resize, resize):
                im = im.resize((resize, resize), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except OSError as exc:  # FileNotFoundError included
        raise OSError(f"cannot read image {path}: {exc}") from exc


class ImageFileDataset(torch.utils.data.Dataset):
    """Samples of an :class:`ImageFiles` list as ``(uint8 tensor (3, crop, crop), label, index)``.

    Parameters
    ----------
    files : ImageFiles
    labels : array-like of int, shape (N,)
        Label returned with each image (e.g. the noisy training labels).
    train : bool
        Random crop (no padding) and random horizontal flip when True; centre crop when False.
    """

    def __init__(self, files: ImageFiles, labels: Any, train: bool) -> None:
        if not isinstance(files, ImageFiles):
            raise TypeError(f"files must be an ImageFiles list, got {type(files).__name__}")
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != len(files):
            raise ValueError(f"{len(files)} image files but {len(self.labels)} labels; they must match")
        if not 0 < files.crop <= files.resize:
            raise ValueError(f"crop ({files.crop}) must be positive and at most resize ({files.resize})")
        self.files = files
        self.train = bool(train)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        index = int(index)
        img = decode_image(self.files.paths[index], self.files.resize)
        size, crop = self.files.resize, self.files.crop
        if self.train:
            top, left = (int(v) for v in torch.randint(0, size - crop + 1, (2,)))
            flip = bool(torch.rand(()) < 0.5)
        else:
            top = left = (size - crop) // 2
            flip = False
        img = img[top:top + crop, left:left + crop]
        if flip:
            img = img[:, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return x, int(self.labels[index]), index


def make_file_loader(
    files: ImageFiles, labels: Any, batch_size: int, train: bool, num_workers: int | None = None, seed: int = 0,
    order: Any = None,
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
        ImageFileDataset(files, labels, train), batch_size=int(batch_size), shuffle=bool(train) and sampler is None,
        sampler=sampler, num_workers=int(num_workers), persistent_workers=num_workers > 0 and sampler is None,
        pin_memory=torch.cuda.is_available(), generator=generator, drop_last=False,
    )

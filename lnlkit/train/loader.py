"""The device loader: training data kept as tensors on the device, shuffled and augmented in whole batches.

`DeviceData` is the only view of a noisy data set that a method's training code receives.  It carries the inputs,
the *given* labels and the test split, and deliberately **not** the true noise mask (that stays with the recorder,
for reporting).  In-memory data sets are normalised once and stored on the device; image-file data sets
(Clothing1M, WebVision, ...) are decoded by worker processes and normalised/augmented on the device per batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from lnlkit.data.dataset import NoisyDataset
from lnlkit.train.augment import Augment

__all__ = [
    "Batch",
    "DeviceData",
    "DeviceLoader",
    "stream_generator",
    "stream_seed",
    "stream_numpy_generator",
    "class_balanced_subset",
    "random_holdout",
]


@dataclass
class Batch:
    """One training batch.

    Attributes
    ----------
    index : Tensor of int64, shape (B,)
        Positions of the samples in the training set (for per-sample buffers).
    views : tuple of Tensor, each (B, ...)
        One augmented view per augmentation the loader was asked for (``views[0]`` is ``x``).
    y : Tensor of int64, shape (B,)
        Given (noisy) labels.
    """

    index: torch.Tensor
    views: tuple[torch.Tensor, ...]
    y: torch.Tensor

    @property
    def x(self) -> torch.Tensor:
        return self.views[0]


def stream_generator(device: torch.device, seed: int, epoch: int, stream: str) -> torch.Generator:
    """A generator seeded by (seed, epoch, stream name).

    Every epoch's shuffling and augmentation depends only on these three values, so a run resumed at an epoch
    boundary replays exactly the batches of an uninterrupted run without storing loader state.
    """
    gen = torch.Generator(device=device)
    gen.manual_seed(stream_seed(seed, epoch, stream))
    return gen


def stream_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from the run's seed and a stream's name parts (e.g. ``(epoch, "train")`` or
    ``("network/outer2",)``): the first 8 bytes of SHA-256 of ``"seed/name/..."``.

    Seeding from names, not from a global random state, makes a draw depend only on what it is for, so a resumed
    run replays it exactly.
    """
    digest = hashlib.sha256("/".join(str(part) for part in (seed, *names)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def stream_numpy_generator(seed: int, epoch: int, stream: str) -> np.random.Generator:
    """A NumPy generator seeded by (seed, epoch, stream name), for draws torch cannot make from a generator
    (e.g. mixup's Beta-distributed λ).  Like :func:`stream_generator` it never touches a global random state, so a
    run resumed at an epoch boundary replays the same draws."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{stream}/numpy".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def class_balanced_subset(
    labels: torch.Tensor, num_samples: int, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Indices of a random subset with at most ``num_samples / C`` samples of each given label.

    The recipe of DivideMix/SMR's Clothing1M loaders: visit the samples in a random order and keep a sample while
    its class has fewer than ``num_samples / C`` kept and fewer than ``num_samples`` are kept in all
    (vectorised here; no per-sample Python).

    Parameters
    ----------
    labels : Tensor int64 (N,)
        Given labels.
    num_samples : int
    num_classes : int
    generator : torch.Generator, optional
        On the labels' device.

    Returns
    -------
    Tensor int64 (M,), M <= num_samples, in the visiting order (on the labels' device).
    """
    n = len(labels)
    order = torch.randperm(n, device=labels.device, generator=generator)
    visited = labels[order]
    # rank of each visited sample among the earlier visited samples of its class
    by_class = torch.argsort(visited, stable=True)
    counts = torch.bincount(visited, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(by_class)
    rank[by_class] = torch.arange(n, device=labels.device) - starts[visited[by_class]]
    keep = rank < num_samples / num_classes
    keep &= torch.cumsum(keep.long(), 0) <= num_samples
    return order[keep]


def random_holdout(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into a training part and a held-out validation part at random.

    The recipe of Me-Momentum's ``--data_percent``: ``np.random.seed(seed)``, then ``int(n · (1 − val_fraction))``
    training indices drawn without replacement (a legacy ``RandomState(seed)`` here, the same stream, without
    touching NumPy's global state); the rest is held out.

    Returns
    -------
    train, val : ndarray int64, sorted, disjoint, together ``range(n)``
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_train = int(n * (1.0 - val_fraction))
    train = np.sort(np.random.RandomState(seed).choice(n, n_train, replace=False)).astype(np.int64)
    keep = np.ones(n, dtype=bool)
    keep[train] = False
    return train, np.flatnonzero(keep).astype(np.int64)


class DeviceLoader:
    """Iterate over (a subset of) the training set in shuffled, augmented batches.

    Use ``loader.epoch(e)`` to get the batches of epoch ``e``; the order and augmentation depend only on
    ``(seed, e, stream)``.

    Parameters
    ----------
    data : DeviceData
    batch_size : int
    indices : array-like of int, optional
        Restrict to these training samples (e.g. a selected clean subset).
    augment : Augment or sequence of Augment or None
        One augmentation per view; ``None`` gives a single un-augmented view.
    labels : Tensor, optional
        Labels to return instead of the data's given labels (e.g. relabelled targets), shape (N,).
    shuffle, drop_last : bool
        Without ``drop_last``, a last batch that would hold a single sample (``len(indices) % batch_size == 1``) is
        folded into the batch before it (``batch_size + 1`` samples): BatchNorm cannot train on one sample.
    stream : str
        Name of the random stream, so two loaders in one epoch draw independently.
    """

    def __init__(
        self,
        data: "DeviceData",
        batch_size: int,
        indices: Sequence[int] | np.ndarray | torch.Tensor | None = None,
        augment: Augment | Sequence[Augment | None] | None = None,
        labels: torch.Tensor | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        stream: str = "train",
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data, self.batch_size, self.shuffle, self.drop_last, self.stream = (
            data,
            int(batch_size),
            shuffle,
            drop_last,
            stream,
        )
        if indices is None:
            self.indices = torch.arange(data.n_train, device=data.device)
        else:
            self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=data.device)
        self.augments: tuple[Augment | None, ...] = tuple(augment) if isinstance(augment, (list, tuple)) else (augment,)
        self.labels = data.labels if labels is None else labels.to(data.device)

    def __len__(self) -> int:
        n = len(self.indices)
        if self.drop_last or self._folds_lone_sample():
            return n // self.batch_size
        return -(-n // self.batch_size)

    def _folds_lone_sample(self) -> bool:
        # A trailing batch of one sample would crash BatchNorm in training mode ("Expected more than 1 value per
        # channel"): it joins the batch before it instead, so that batch has batch_size + 1 samples.
        n = len(self.indices)
        return not self.drop_last and self.batch_size > 1 and n > 1 and n % self.batch_size == 1

    def _bounds(self, k: int) -> tuple[int, int]:
        """Start and end of batch ``k`` in the epoch's order (the last batch absorbs a lone trailing sample)."""
        start, end = k * self.batch_size, (k + 1) * self.batch_size
        if k == len(self) - 1 and self._folds_lone_sample():
            end += 1
        return start, end

    def epoch(self, epoch: int) -> Iterator[Batch]:
        gen = stream_generator(self.data.device, self.data.seed, epoch, self.stream)
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(len(order), device=order.device, generator=gen)]
        if not self.data.in_memory:
            yield from self._file_epoch(order, gen)
            return
        for k in range(len(self)):
            start, end = self._bounds(k)
            idx = order[start:end]
            yield self._batch(idx, self.data.train_inputs(idx), gen)

    def _batch(self, idx: torch.Tensor, x: torch.Tensor | tuple[torch.Tensor, ...], gen: torch.Generator) -> Batch:
        # x: one batch shared by every view (in memory), or one independently cropped batch per view (image files)
        xs = x if isinstance(x, tuple) else (x,) * len(self.augments)
        views = tuple(aug(xv, gen) if aug is not None else xv for aug, xv in zip(self.augments, xs))
        return Batch(index=idx, views=views, y=self.labels[idx])

    def _file_epoch(self, order: torch.Tensor, gen: torch.Generator) -> Iterator[Batch]:
        # Image files: workers decode, resize and random-crop, one independent crop per view (as the official loaders
        # call their transform once per view); the device normalises and applies the rest.
        worker_seed = int(torch.randint(0, 2**31 - 1, (1,), device=order.device, generator=gen))
        held = None  # with a lone trailing sample, the second-to-last batch waits to absorb it
        views = len(self.augments)
        for n, (x, idx) in enumerate(
            self.data.file_batches(order.cpu().numpy(), self.batch_size, True, worker_seed, views=views)
        ):
            if self.drop_last and n >= len(self):
                break
            if self._folds_lone_sample() and n >= len(self) - 1:
                if held is None:
                    held = (x, idx)
                    continue
                if isinstance(x, tuple):  # one crop per view
                    x = tuple(torch.cat([a, b]) for a, b in zip(held[0], x))
                else:
                    x = torch.cat([held[0], x])
                idx = torch.cat([held[1], idx])
            yield self._batch(idx, x, gen)


class DeviceData:
    """Training and test data of a :class:`NoisyDataset`, prepared for a device.

    Parameters
    ----------
    noisy : NoisyDataset
    device : torch.device
    seed : int
        Seed of every loader stream made from this object.
    storage_dtype : torch.dtype, optional
        Dtype in which in-memory inputs are kept on the device (float16 halves GPU memory; batches are
        returned as float32). Default float32 on CPU, float16 on CUDA.
    channels_last : bool
        Return image batches in channels-last memory format (faster convolutions on CUDA).

    Attributes
    ----------
    labels : Tensor int64 (N,)
        The given (noisy) labels.  The true noise mask is intentionally absent.
    n_train, num_classes : int
    has_val : bool
        Whether the data set has a clean validation split (Clothing1M, mini-WebVision); then ``y_val`` holds its
        labels (Tensor int64 (N_val,)) and ``iter_split("val", ...)`` its inputs; otherwise ``y_val`` is None.
    """

    def __init__(
        self,
        noisy: NoisyDataset,
        device: torch.device,
        seed: int = 0,
        storage_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        num_workers: int | None = None,
    ):
        ds = noisy.dataset
        self.device, self.seed, self.num_classes = device, int(seed), noisy.num_classes
        self.n_train = len(noisy.labels)
        self.labels = torch.as_tensor(noisy.labels, dtype=torch.long, device=device)
        self.y_test = torch.as_tensor(noisy.y_test, dtype=torch.long, device=device)
        self.channels_last = channels_last and ds.is_image and device.type == "cuda"
        self.storage_dtype = storage_dtype or (torch.float16 if device.type == "cuda" else torch.float32)
        self.is_image = ds.is_image
        self.num_workers = num_workers
        shape = (1, -1, 1, 1) if ds.is_image else (1, -1)
        self._mean = torch.tensor(ds.mean, dtype=torch.float32, device=device).reshape(shape)
        self._std = torch.tensor(ds.std, dtype=torch.float32, device=device).reshape(shape)
        self._scale = float(ds.pixel_scale)
        self.in_memory = ds.in_memory
        self.has_val = ds.x_val is not None
        self.y_val = torch.as_tensor(ds.y_val, dtype=torch.long, device=device) if self.has_val else None
        if self.in_memory:
            self._x_train = self._to_device(ds.x_train)
            self._x_test = self._to_device(noisy.x_test)
            self._x_val = self._to_device(ds.x_val) if self.has_val else None
        else:
            self._files_train, self._files_test = ds.x_train, noisy.x_test
            self._files_val = ds.x_val
        self.input_shape = tuple(ds.input_shape) if ds.in_memory else (3, ds.x_train.crop, ds.x_train.crop)

    # -------------------------------------------------------------- normalisation
    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.to(self.device, torch.float32) / self._scale - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        out = torch.empty((len(x),) + tuple(x.shape[1:]), dtype=self.storage_dtype, device=self.device)
        for start in range(0, len(x), 8192):  # chunked so the float32 copy never holds the whole set
            out[start : start + 8192] = self._normalise(torch.as_tensor(x[start : start + 8192])).to(self.storage_dtype)
        return out

    @property
    def mean(self) -> torch.Tensor:
        """Per-channel (or per-feature) normalisation mean, shape (C,), on the device."""
        return self._mean.reshape(-1)

    @property
    def std(self) -> torch.Tensor:
        """Per-channel (or per-feature) normalisation std, shape (C,), on the device."""
        return self._std.reshape(-1)

    # -------------------------------------------------------------- access
    def train_inputs(self, index: torch.Tensor) -> torch.Tensor:
        """Normalised, un-augmented in-memory training inputs of the given samples, float32 ``(B, ...)``."""
        x = self._x_train[index].float()
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def file_batches(
        self, order: np.ndarray, batch_size: int, train: bool, seed: int, split: str = "train", views: int = 1
    ) -> Iterator[tuple[torch.Tensor | tuple[torch.Tensor, ...], torch.Tensor]]:
        """Decode image files of ``split`` in ``order`` with worker processes: yields normalised ``(x, index)``;
        with ``views > 1``, ``x`` is a tuple of ``views`` batches ``(B, 3, crop, crop)``, independently cropped."""
        from lnlkit.data.images import make_file_loader

        files = {"train": self._files_train, "test": self._files_test, "val": self._files_val}[split]
        labels = np.zeros(len(files), dtype=np.int64)  # labels travel on the device, not through the workers
        for x, _, idx in make_file_loader(
            files, labels, batch_size, train=train, order=order, num_workers=self.num_workers, seed=seed, views=views
        ):
            if views == 1:
                yield self._normalise(x), idx.to(self.device)
            else:
                yield tuple(self._normalise(x[:, v]) for v in range(views)), idx.to(self.device)

    def iter_train_subset(
        self, indices: torch.Tensor | np.ndarray, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Un-augmented (test-transform) inputs of the training samples ``indices``, in that order: yields
        ``(index, x)``."""
        indices = torch.as_tensor(
            np.asarray(indices.cpu() if torch.is_tensor(indices) else indices, dtype=np.int64), device=self.device
        )
        if not self.in_memory:
            for x, idx in self.file_batches(indices.cpu().numpy(), batch_size, train=False, seed=0):
                yield idx, x
            return
        for start in range(0, len(indices), batch_size):
            idx = indices[start : start + batch_size]
            yield idx, self.train_inputs(idx)

    def loader(
        self,
        batch_size: int,
        indices=None,
        augment=None,
        labels=None,
        shuffle: bool = True,
        drop_last: bool = False,
        stream: str = "train",
    ) -> DeviceLoader:
        """A :class:`DeviceLoader` over (a subset of) the training set."""
        return DeviceLoader(self, batch_size, indices, augment, labels, shuffle, drop_last, stream)

    def iter_split(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Un-augmented inputs of ``split`` ("train", "test", or "val" where ``has_val``) in order: yields
        ``(index, x)``."""
        if split not in ("train", "test", "val"):
            raise ValueError(f"split must be 'train', 'test' or 'val', got {split!r}")
        if split == "val" and not self.has_val:
            raise ValueError("this data set has no validation split (Dataset.x_val is None)")
        n = {"train": self.n_train, "test": len(self.y_test), "val": len(self.y_val) if self.has_val else 0}[split]
        if not self.in_memory:
            for x, idx in self.file_batches(np.arange(n), batch_size, train=False, seed=0, split=split):
                yield idx, x
            return
        source = {"train": self._x_train, "test": self._x_test, "val": self._x_val}[split]
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n), device=self.device)
            x = source[idx].float()
            yield idx, (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)

"""Data sets: the embedded digits, CIFAR-10/100 (+ CIFAR-N labels) and the real-noise web data sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lnlkit.data.dataset import Dataset, DatasetNotFoundError, ImageFiles, NoisyDataset, check_labels

__all__ = [
    "Dataset", "NoisyDataset", "ImageFiles", "DatasetNotFoundError", "check_labels", "load_dataset", "DATASETS",
    "default_data_root",
]


def default_data_root() -> Path:
    """Where loaders look when no ``root`` is given: ``$LNLKIT_DATA`` or ``./data``."""
    return Path(os.environ.get("LNLKIT_DATA", "data"))


def _digits(root: Path | None, **kw: Any) -> Dataset:
    from lnlkit.data.digits import load_digits_dataset

    if kw:
        raise TypeError(f"load_dataset('digits') takes no options, got {sorted(kw)}")
    return load_digits_dataset()


def _lazy(module: str, function: str, **fixed: Any) -> Callable[..., Dataset]:
    def load(root: Path | None, **kw: Any) -> Dataset:
        import importlib

        loader = getattr(importlib.import_module(f"lnlkit.data.{module}"), function)
        return loader(root if root is not None else default_data_root(), **fixed, **kw)

    return load


# name -> loader(root, **kw)
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": _digits,
    "cifar10": _lazy("cifar", "load_cifar", num_classes=10),
    "cifar100": _lazy("cifar", "load_cifar", num_classes=100),
    "clothing1m": _lazy("web", "load_clothing1m"),
    "webvision": _lazy("web", "load_webvision"),
    "animal10n": _lazy("web", "load_animal10n"),
    "web-bird": _lazy("web", "load_webfg", subset="web-bird"),
    "web-car": _lazy("web", "load_webfg", subset="web-car"),
    "web-aircraft": _lazy("web", "load_webfg", subset="web-aircraft"),
}


def load_dataset(name: str = "digits", root: str | os.PathLike | None = None, **kw: Any) -> Dataset:
    """Load a data set by name from a local folder (nothing is downloaded).

    Parameters
    ----------
    name : str
        One of ``digits`` (embedded, offline, the default), ``cifar10``, ``cifar100``, ``clothing1m``,
        ``webvision``, ``animal10n``, ``web-bird``, ``web-car``, ``web-aircraft``.
    root : path, optional
        Folder holding the data set (see each loader for the layout).  Defaults to ``$LNLKIT_DATA`` or ``./data``.
    **kw
        Loader options.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name.
    DatasetNotFoundError
        When the files are not where the loader looked; the message names the path, the expected files and where
        to download them.
    """
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} or use Dataset.from_arrays")
    return DATASETS[key](Path(root) if root is not None else None, **kw)

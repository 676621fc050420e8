"""Data sets: the embedded digits, CIFAR-10/100 (+ CIFAR-N labels), the real-noise web data sets and the user's own
data (:func:`load_folder`, :func:`load_table`, :meth:`Dataset.from_arrays`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lnlkit.data.dataset import Dataset, DatasetNotFoundError, ImageFiles, NoisyDataset, check_labels
from lnlkit.data.user import load_folder, load_table

__all__ = [
    "Dataset",
    "NoisyDataset",
    "ImageFiles",
    "DatasetNotFoundError",
    "check_labels",
    "load_dataset",
    "load_folder",
    "load_table",
    "DATASETS",
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


def load_dataset(name: str = "digits", root: str | os.PathLike | None = None, method: Any = None, **kw: Any) -> Dataset:
    """Load a data set by name from a local folder (nothing is downloaded).

    Pass ``method=`` (a configured method, e.g. ``get_method("promix", preset=...)``, or a method name) to get the
    data set with that method's data pipeline (its official normalisation, or the config's ``normalization``):
    this is how ``lnlkit run``, the notebooks and ``lnlkit reproduce`` load data.  ``Method.fit`` applies the same
    pipeline to a data set loaded without it (with a warning when the statistics change).

    Parameters
    ----------
    name : str
        One of ``digits`` (embedded, offline, the default), ``cifar10``, ``cifar100``, ``clothing1m``,
        ``webvision``, ``animal10n``, ``web-bird``, ``web-car``, ``web-aircraft``.
    root : path, optional
        Folder holding the data set (see each loader for the layout).  Defaults to ``$LNLKIT_DATA`` or ``./data``.
    method : Method or str, optional
        Apply this method's data pipeline (see :mod:`lnlkit.data.pipeline`).
    **kw
        Loader options (with ``method=``, ``normalization=`` is not accepted: the method decides).

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
        raise ValueError(
            f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} "
            "or use load_folder, load_table or Dataset.from_arrays"
        )
    if method is not None and "normalization" in kw:
        raise TypeError(
            "load_dataset: pass either method= (its pipeline decides the normalisation) or "
            "normalization=, not both; set the method's config field normalization instead"
        )
    data = DATASETS[key](Path(root) if root is not None else None, **kw)
    if method is None:
        return data
    from lnlkit.data.pipeline import apply_normalization

    if isinstance(method, str):
        from lnlkit.methods import method_class

        return apply_normalization(data, method_class(method).data_pipeline, strict=False)
    requested, strict = method.normalization_request()
    return apply_normalization(data, requested, strict=strict)

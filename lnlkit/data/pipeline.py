"""Each method's data pipeline: the input normalisation its official code uses on each data set.

The official codes normalise the same data set differently (CIFAR-10: DivideMix/SMR/Me-Momentum divide by the std
(0.2023, 0.1994, 0.2010), ProMix by (0.247, 0.243, 0.261), Co-mining uses ImageNet statistics; Clothing1M: SMR its
own statistics, Me-Momentum ImageNet's).  A method names the pipeline it follows (``Method.data_pipeline``) and a
config may override it (``normalization``); :func:`resolve_normalization` turns that into the mean/std of the data
set at hand, and :func:`apply_normalization` returns the data set carrying them.  Inputs stay raw (uint8 images
divided by ``pixel_scale``); the device loader normalises, so changing the statistics is exact and costs nothing.

Names per data set (aliases in brackets):

* ``cifar10`` / ``cifar100``: ``dividemix`` (default; ``smr``, ``mememomentum``, ``me-momentum``, ``ce``),
  ``promix``, ``comining`` (``imagenet``), ``prune4rel`` (``sop``) — see :mod:`lnlkit.data.cifar`.
* ``clothing1m`` and ``animal10n``: ``smr`` (default; ``dividemix``, ``ce``: the Clothing1M statistics of SMR's
  loader), ``imagenet`` (``mememomentum``, ``me-momentum``: official ``Clothing.py``).
* ``webvision``, ``web-bird``, ``web-car``, ``web-aircraft``: ``imagenet`` only.

Other data sets (the digits, ``Dataset.from_arrays``) keep their own statistics: a method's pipeline does not apply
to them, and asking for a named normalisation explicitly gives a warning.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from lnlkit.data.dataset import Dataset, NoisyDataset

__all__ = ["KEEP", "normalization_names", "resolve_normalization", "apply_normalization", "pipeline_record"]

#: ``normalization="dataset"``: keep the statistics the Dataset carries
KEEP = "dataset"

_CIFAR_ALIASES = {
    "smr": "dividemix",
    "mememomentum": "dividemix",
    "me-momentum": "dividemix",
    "ce": "dividemix",
    "imagenet": "comining",
    "sop": "prune4rel",
}
_PHOTO_ALIASES = {"dividemix": "smr", "ce": "smr", "mememomentum": "imagenet", "me-momentum": "imagenet"}
_WEB_ALIASES = {
    name: "imagenet"
    for name in ("dividemix", "smr", "ce", "comining", "mememomentum", "me-momentum", "prune4rel", "sop", "promix")
}


def _family(dataset: Dataset) -> str | None:
    """The normalisation table a data set uses: only data sets read by lnlkit's loaders (they record the name of
    their normalisation in ``extras["normalization"]``) have one."""
    if "normalization" not in dataset.extras:
        return None
    name = dataset.name.lower()
    if name in ("cifar10", "cifar100"):
        return "cifar"
    if name in ("clothing1m", "animal10n"):
        return "photo"
    if name in ("webvision", "web-bird", "web-car", "web-aircraft"):
        return "web"
    return None


def _table(
    family: str, num_classes: int
) -> tuple[dict[str, tuple[tuple[float, ...], tuple[float, ...]]], dict[str, str], str]:
    from lnlkit.data.web import CLOTHING1M_MEAN, CLOTHING1M_STD, IMAGENET_MEAN, IMAGENET_STD

    imagenet = (IMAGENET_MEAN, IMAGENET_STD)
    if family == "cifar":
        from lnlkit.data.cifar import CIFAR_NORMALIZATION

        return {k: v[num_classes] for k, v in CIFAR_NORMALIZATION.items()}, _CIFAR_ALIASES, "dividemix"
    if family == "photo":
        return {"smr": (CLOTHING1M_MEAN, CLOTHING1M_STD), "imagenet": imagenet}, _PHOTO_ALIASES, "smr"
    return {"imagenet": imagenet}, _WEB_ALIASES, "imagenet"


def normalization_names(dataset: Dataset) -> list[str]:
    """The normalisation names (aliases excluded) lnlkit knows for ``dataset``; empty when it has no table."""
    family = _family(dataset)
    return [] if family is None else list(_table(family, dataset.num_classes)[0])


def resolve_normalization(
    dataset: Dataset, requested: str | None, strict: bool = True
) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """The normalisation ``requested`` means for ``dataset``.

    Parameters
    ----------
    dataset : Dataset
    requested : str or None
        A name (see the module docstring), ``"dataset"`` (keep the Dataset's statistics) or None (the data set's
        default).
    strict : bool
        True for a name the user asked for: an unknown name raises and a name that does not apply to this data set
        warns.  False for a method's own pipeline name: a data set without that name gets its default, silently.

    Returns
    -------
    name : str
        The canonical name (``"dataset"`` when the Dataset's own statistics are kept).
    mean, std : tuple of float, one per channel (or feature)

    Raises
    ------
    ValueError
        For an unknown name with ``strict`` on a data set that has a table.
    """
    own = (dataset.extras.get("normalization", KEEP), dataset.mean, dataset.std)
    key = None if requested is None else str(requested).lower().replace("_", "-")
    if key == KEEP:
        return own
    family = _family(dataset)
    if family is None:
        if key is not None and strict:
            warnings.warn(
                f"normalization={requested!r} names an official pipeline, but {dataset.name!r} is not a data set "
                f"lnlkit's loaders read (it has no table of official statistics); its own mean/std are used",
                UserWarning,
                stacklevel=3,
            )
        return own
    table, aliases, default = _table(family, dataset.num_classes)
    if key is None:
        key = default
    key = aliases.get(key, key)
    if key not in table:
        if strict:
            raise ValueError(
                f"unknown normalization {requested!r} for {dataset.name}; choose one of "
                f"{', '.join(table)} (aliases: {', '.join(sorted(aliases))}) or {KEEP!r} (keep the loaded statistics)"
            )
        key = default
    mean, std = table[key]
    return key, tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=0, atol=1e-9))


def apply_normalization(
    data: Dataset | NoisyDataset,
    requested: str | None,
    strict: bool = True,
    warn: bool = False,
    who: str = "the method",
    stacklevel: int = 3,
) -> Dataset | NoisyDataset:
    """``data`` carrying the statistics of ``requested`` (a new object when they change; inputs are shared).

    Parameters
    ----------
    data : Dataset or NoisyDataset
    requested, strict
        As in :func:`resolve_normalization`.
    warn : bool
        Warn when the statistics change (the driver does, for a data set loaded by hand with another pipeline).
    who : str
        Named in the warning (e.g. ``"the promix preset"``).
    stacklevel : int
        The warning's ``stacklevel`` (3: the caller of this function's caller).

    Returns
    -------
    Dataset or NoisyDataset
        Same type as ``data``; ``extras["normalization"]`` names the statistics.
    """
    ds = data.dataset if isinstance(data, NoisyDataset) else data
    if not isinstance(ds, Dataset):
        raise TypeError(f"expected a Dataset or NoisyDataset, got {type(data).__name__}")
    key, mean, std = resolve_normalization(ds, requested, strict)
    if _same(mean, ds.mean) and _same(std, ds.std):
        return data
    if warn:
        warnings.warn(
            f"{ds.name} was loaded with the {ds.extras.get('normalization', 'own')!r} normalisation, but {who} "
            f"uses {key!r} (mean {mean}, std {std}): re-normalised for this run. Load the data with "
            f"lnlkit.load_dataset({ds.name!r}, method=...) to get it directly, or set normalization='dataset' to "
            f"keep the loaded statistics",
            UserWarning,
            stacklevel=stacklevel,
        )
    new = dataclasses.replace(ds, mean=mean, std=std, extras={**ds.extras, "normalization": key})
    if isinstance(data, NoisyDataset):
        return NoisyDataset(new, data.noise, data.seed)
    return new


def pipeline_record(dataset: Dataset) -> dict[str, Any]:
    """The data-side settings of a run, for ``config.json``: normalisation name and statistics, pixel scale and,
    for image files, the decoding recipe."""
    rec: dict[str, Any] = {
        "normalization": dataset.extras.get("normalization", KEEP),
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        "pixel_scale": dataset.pixel_scale,
    }
    from lnlkit.data.dataset import ImageFiles

    if isinstance(dataset.x_train, ImageFiles):
        rec.update(
            resize=dataset.x_train.resize,
            resize_mode="shorter-side",
            crop=dataset.x_train.crop,
            views="independent crops",
        )
    return rec

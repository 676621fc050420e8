"""CIFAR-10 and CIFAR-100 read from the official "python version" pickle files (nothing is downloaded).

Layout (docs/datasets.md#cifar-10-and-cifar-100)::

    <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta
    <root>/cifar-100-python/train, test, meta

``root`` may be the parent folder shown above or the batches folder itself.  The five CIFAR-10 training batches
are concatenated in the order 1…5, rows in file order: this is the order the CIFAR-N label files and the official
noise recipes refer to (and torchvision's order).

The images are returned as uint8 ``(N, 3, 32, 32)`` (the pickle rows are the R, G and B planes one after the other,
so a plain reshape gives CHW) with ``pixel_scale=255``; the device loader divides by 255 and normalises with the
``mean``/``std`` of the chosen normalisation (list below, docs/datasets.md#cifar-normalisation).

Normalisations (``normalization=``), mean / std after division by 255:

* ``"dividemix"`` (default) — DivideMix, SMR and Me-Momentum.
  CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010); CIFAR-100 (0.507, 0.487, 0.441) / (0.267, 0.256,
  0.276).
* ``"promix"`` — ProMix.  CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.247, 0.243, 0.261); CIFAR-100 as ``"dividemix"``.
* ``"comining"`` — Co-mining: ImageNet statistics (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) for both.
* ``"prune4rel"`` — Prune4ReL.  CIFAR-10 as ``"dividemix"``; CIFAR-100 (0.5071, 0.4865, 0.4409) / (0.2673,
  0.2564, 0.2762).

Aliases: ``"smr"`` and ``"mememomentum"`` mean ``"dividemix"``; ``"imagenet"`` means ``"comining"``.

The pickle files are unpickled with Python's :mod:`pickle` (``encoding="latin1"``); only load files you trust.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from lnlkit.data.dataset import Dataset, DatasetNotFoundError

__all__ = ["load_cifar", "CIFAR_NORMALIZATION", "CIFAR10_CLASSES", "CIFAR_URL"]

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

_C10_MEAN = (0.4914, 0.4822, 0.4465)
_C100_MEAN = (0.507, 0.487, 0.441)
_C100_STD = (0.267, 0.256, 0.276)
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

#: normalisation name -> {num_classes: (mean, std)}  (docs/datasets.md#cifar-normalisation)
CIFAR_NORMALIZATION: dict[str, dict[int, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "dividemix": {10: (_C10_MEAN, (0.2023, 0.1994, 0.2010)), 100: (_C100_MEAN, _C100_STD)},
    "promix": {10: (_C10_MEAN, (0.247, 0.243, 0.261)), 100: (_C100_MEAN, _C100_STD)},
    "comining": {10: _IMAGENET, 100: _IMAGENET},
    "prune4rel": {
        10: (_C10_MEAN, (0.2023, 0.1994, 0.2010)),
        100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    },
}
_ALIASES = {"smr": "dividemix", "mememomentum": "dividemix", "me-momentum": "dividemix", "imagenet": "comining"}

# per data set: folder name, training files, test file, label key, meta file, class-name key, archive name
_LAYOUT = {
    10: dict(
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test="test_batch",
        label_key="labels",
        meta="batches.meta",
        names_key="label_names",
        archive="cifar-10-python.tar.gz",
        name="cifar10",
    ),
    100: dict(
        folder="cifar-100-python",
        train=["train"],
        test="test",
        label_key="fine_labels",
        meta="meta",
        names_key="fine_label_names",
        archive="cifar-100-python.tar.gz",
        name="cifar100",
    ),
}


def _normalization(name: str, num_classes: int) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    key = str(name).lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in CIFAR_NORMALIZATION:
        raise ValueError(
            f"unknown CIFAR normalization {name!r}; choose one of {', '.join(CIFAR_NORMALIZATION)} "
            f"(aliases: {', '.join(_ALIASES)})"
        )
    mean, std = CIFAR_NORMALIZATION[key][num_classes]
    return key, mean, std


def _find_folder(root: Path, layout: dict) -> Path:
    """Return the batches folder: ``root`` itself or ``root/<folder>``."""
    root = Path(root).expanduser()
    first = layout["train"][0]
    for cand in (root, root / layout["folder"]):
        if (cand / first).is_file():
            return cand
    expected = layout["train"] + [layout["test"]]
    hint = ""
    for base in (root, root.parent):
        if (base / layout["archive"]).is_file():
            hint = f" Found the archive {base / layout['archive']}: extract it with `tar xzf {layout['archive']}`."
            break
    raise DatasetNotFoundError(
        f"{layout['name'].upper().replace('CIFAR', 'CIFAR-')} not found: looked in {root} and "
        f"{root / layout['folder']}. Expected the folder {layout['folder']}/ holding the pickle files "
        f'{", ".join(expected)} (pass root= as that folder or its parent).{hint} Download the "python version" '
        f"({layout['archive']}) from {CIFAR_URL} and extract it; lnlkit never downloads data."
    )


def _unpickle(path: Path) -> Any:
    if not path.is_file():
        raise DatasetNotFoundError(
            f'CIFAR file {path} is missing (the folder {path.parent} is incomplete). Re-extract the "python '
            f'version" archive from {CIFAR_URL}.'
        )
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as exc:  # truncated / not a pickle / garbage
        raise ValueError(
            f"cannot read the CIFAR pickle file {path}: it is corrupt or truncated ({type(exc).__name__}: {exc}). "
            f'Re-download the "python version" from {CIFAR_URL} and extract it again.'
        ) from exc


def _read_batch(path: Path, label_keys: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    d = _unpickle(path)
    if not isinstance(d, dict) or "data" not in d:
        raise ValueError(
            f"CIFAR file {path} is not a CIFAR batch: expected a dict with key 'data' and "
            f"{', '.join(repr(k) for k in label_keys)}"
        )
    missing = [k for k in label_keys if k not in d]
    if missing:
        raise ValueError(
            f"CIFAR file {path} lacks the key(s) {', '.join(map(repr, missing))} (has {sorted(d)}); "
            "is this the right data set (CIFAR-10 vs CIFAR-100)?"
        )
    data = np.asarray(d["data"])
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"CIFAR file {path}: 'data' must have shape (N, 3072), got {data.shape}")
    if data.dtype != np.uint8:
        if data.size and (not np.issubdtype(data.dtype, np.integer) or data.min() < 0 or data.max() > 255):
            raise ValueError(f"CIFAR file {path}: 'data' must hold uint8 pixel values, got dtype {data.dtype}")
        data = data.astype(np.uint8)
    labels = []
    for k in label_keys:
        lab = np.asarray(d[k])
        if lab.ndim != 1 or len(lab) != len(data):
            raise ValueError(f"CIFAR file {path}: {len(data)} images but '{k}' has shape {lab.shape}")
        if lab.size and not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"CIFAR file {path}: '{k}' must be integers, got dtype {lab.dtype}")
        labels.append(lab.astype(np.int64))
    return data, labels


def _cifarn_dirs(folder: Path, root: Path) -> list[str]:
    dirs: list[Path] = []
    env = os.environ.get("LNLKIT_CIFARN_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs += [folder, folder.parent, root]
    out: list[str] = []
    for d in dirs:
        if str(d) not in out:
            out.append(str(d))
    return out


def load_cifar(root: Path, num_classes: int, normalization: str = "dividemix", **kw: Any) -> Dataset:
    """Load CIFAR-10 or CIFAR-100 from the official python pickle files.

    Parameters
    ----------
    root : pathlib.Path
        The folder holding ``cifar-10-batches-py/`` (``cifar-100-python/``) or that folder itself.
    num_classes : {10, 100}
    normalization : str
        ``"dividemix"`` (default; also SMR and Me-Momentum), ``"promix"``, ``"comining"`` (ImageNet statistics)
        or ``"prune4rel"``: the mean/std of that method's official code (see the module docstring).

    Returns
    -------
    Dataset
        ``name`` ``"cifar10"``/``"cifar100"``; ``x_train`` uint8 ``(N, 3, 32, 32)`` in the official pickle order
        (batches 1…5), ``x_test`` uint8 ``(N_test, 3, 32, 32)``, ``pixel_scale=255``; ``extras`` holds
        ``normalization`` (its name), ``cifarn_dirs`` (folders searched for ``CIFAR-10_human.pt`` /
        ``CIFAR-100_human.pt``: ``$LNLKIT_CIFARN_DIR`` if set, the batches folder, its parent and ``root``) and,
        for CIFAR-100, ``coarse_labels``, ``coarse_labels_test`` and ``coarse_class_names`` (when the meta file
        has them).

    Raises
    ------
    DatasetNotFoundError
        When the folder or one of its files is missing.
    ValueError
        For a corrupt pickle file (the message names it) or inconsistent contents.

    Notes
    -----
    Sizes are not hard-coded (so tests can use tiny fake pickles): each file's labels must match its rows, and
    when the meta file declares ``num_cases_per_batch`` every CIFAR-10 training batch must have that many rows.
    """
    if kw:
        raise TypeError(f"load_cifar() got unexpected option(s) {sorted(kw)}; it accepts 'normalization'")
    if num_classes not in _LAYOUT:
        raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes!r}")
    layout = _LAYOUT[num_classes]
    norm_name, mean, std = _normalization(normalization, num_classes)
    root = Path(root).expanduser()
    folder = _find_folder(root, layout)

    # Check every file is there before reading any, so the error lists them all.
    missing = [f for f in layout["train"] + [layout["test"]] if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f'{folder} is incomplete: missing {", ".join(missing)}. Re-extract the "python version" archive '
            f"({layout['archive']}) from {CIFAR_URL}."
        )

    meta: dict = {}
    if (folder / layout["meta"]).is_file():
        m = _unpickle(folder / layout["meta"])
        if not isinstance(m, dict):
            raise ValueError(f"CIFAR meta file {folder / layout['meta']} is not a dict; it is corrupt")
        meta = m

    label_keys = [layout["label_key"]] + (["coarse_labels"] if num_classes == 100 else [])
    xs, ys, coarse = [], [], []
    per_batch = meta.get("num_cases_per_batch") if num_classes == 10 else None
    for fname in layout["train"]:
        data, labels = _read_batch(folder / fname, label_keys)
        if per_batch is not None and len(data) != int(per_batch):
            raise ValueError(
                f"CIFAR file {folder / fname} has {len(data)} rows but {layout['meta']} declares "
                f"num_cases_per_batch={per_batch}; the file is truncated or from another release"
            )
        xs.append(data)
        ys.append(labels[0])
        if num_classes == 100:
            coarse.append(labels[1])
    x_test, test_labels = _read_batch(folder / layout["test"], label_keys)

    x_train = np.concatenate(xs).reshape(-1, 3, 32, 32)
    x_test = x_test.reshape(-1, 3, 32, 32)

    names = meta.get(layout["names_key"])
    if names is not None and len(names) == num_classes:
        class_names = [str(n) for n in names]
    elif num_classes == 10:
        class_names = list(CIFAR10_CLASSES)
    else:
        class_names = [str(i) for i in range(num_classes)]

    extras: dict[str, Any] = {"normalization": norm_name, "cifarn_dirs": _cifarn_dirs(folder, root)}
    if num_classes == 100:
        extras["coarse_labels"] = np.concatenate(coarse)
        extras["coarse_labels_test"] = test_labels[1]
        if "coarse_label_names" in meta:
            extras["coarse_class_names"] = [str(n) for n in meta["coarse_label_names"]]

    return Dataset(
        name=layout["name"],
        x_train=x_train,
        y_train=np.concatenate(ys),
        x_test=x_test,
        y_test=test_labels[0],
        num_classes=num_classes,
        class_names=class_names,
        mean=mean,
        std=std,
        pixel_scale=255.0,
        clean_train_known=True,
        root=folder,
        extras=extras,
        default_model="preact_resnet18",
    )

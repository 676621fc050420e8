"""The user's own data: a folder of images (one sub-folder per class, or a ``path,label`` CSV) and a CSV table.

The labels are taken as given: they may be wrong and their truth is unknown, so every loader here returns
``clean_train_known=False`` (a method trains on them with noise ``"none"``; nothing can be measured against a
truth).  There is no test split unless ``holdout=`` splits one off the training samples, whose labels are then the
given ones too (see :meth:`lnlkit.data.Dataset.from_arrays`).

Unreadable files are never dropped silently: :func:`load_folder` opens every image once with PIL, skips those it
cannot read, warns with their count and lists them in ``extras["skipped"]``.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lnlkit.data.dataset import Dataset, ImageFiles, _check_train_classes, _stratified_holdout

__all__ = ["load_folder", "load_table", "write_image_folder", "IN_MEMORY_MAX_SIDE"]

#: images whose side (after ``image_size``) is at most this are held in memory as uint8 arrays
IN_MEMORY_MAX_SIDE = 64
#: PIL modes that hold one grey channel (16-bit and float ones are brought to 0..255 first)
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _shown(items: Sequence[Any], k: int = 3) -> str:
    return ", ".join(str(v) for v in items[:k]) + (" ..." if len(items) > k else "")


def _lines(rows: Sequence[int]) -> str:
    """CSV line numbers of 0-based data rows (line 1 is the header)."""
    return f"line{'s' if len(rows) > 1 else ''} {_shown([r + 2 for r in rows], 5)}"


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


# ---------------------------------------------------------------------------------------------------- listing
def _list_class_folders(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """Files of ``root/<class>/**`` (classes and files sorted, hidden ones skipped): class names, paths, labels."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class folders; expected one sub-folder of images per class (or pass csv=)")
    if len(classes) < 2:
        raise ValueError(f"{root} has a single class folder ({classes[0]!r}); a classifier needs at least 2 classes")
    paths: list[Path] = []
    labels: list[int] = []
    for k, c in enumerate(classes):
        files = []
        for dirpath, dirnames, filenames in os.walk(root / c, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # prune hidden folders, walk in order
            files += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
        if not files:
            raise ValueError(f"class folder {c!r} in {root} is empty; remove it or add its images")
        paths += sorted(files)
        labels += [k] * len(files)
    return classes, paths, labels


def _read_path_csv(csv: Path) -> tuple[list[Path], list[str], np.ndarray, list[str] | None]:
    """A ``path,label`` CSV: absolute paths, the paths as written, labels (ints or class indices), class names."""
    import pandas as pd

    if not csv.is_file():
        raise ValueError(f"CSV file {csv} does not exist")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise ValueError(
            f"{csv.name} must have the header columns path,label; missing {', '.join(missing)} "
            f"(found: {', '.join(table.columns) or 'none'})"
        )
    if table.empty:
        raise ValueError(f"{csv.name} has no rows")
    given = [p.strip() for p in table["path"]]
    labels = [v.strip() for v in table["label"]]
    empty = [i for i, v in enumerate(labels) if not v]
    if empty:
        raise ValueError(f"{csv.name} has {len(empty)} row(s) without a label ({_lines(empty)})")
    base = csv.parent
    absolute = [Path(p) if Path(p).is_absolute() else base / p for p in given]
    absent = [i for i, (g, p) in enumerate(zip(given, absolute)) if not g or not p.is_file()]
    if absent:
        raise ValueError(
            f"{csv.name} lists {len(absent)} path(s) that are not files (relative to {base}): "
            f"{_shown([repr(given[i]) for i in absent])} ({_lines(absent)})"
        )
    seen: dict[str, int] = {}
    for i, g in enumerate(given):
        if g in seen:
            raise ValueError(f"{csv.name} lists the path {g!r} more than once ({_lines([seen[g], i])})")
        seen[g] = i
    if all(v.lstrip("-").isdigit() for v in labels):  # integer labels keep their values
        return absolute, given, np.asarray([int(v) for v in labels], dtype=np.int64), None
    names = sorted(set(labels))
    index = {c: i for i, c in enumerate(names)}
    return absolute, given, np.asarray([index[v] for v in labels], dtype=np.int64), names


# ---------------------------------------------------------------------------------------------------- decoding
def _grey8(im: Any) -> Any:
    """A grey-family PIL image as 8-bit ``L``: 16-bit and integer images scaled from 0..65535, float clipped."""
    from PIL import Image

    if im.mode in ("1", "L", "LA", "La"):
        return im.convert("L")
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.clip(arr, 0, 255)
    else:  # 'I;16*' and 'I' (how PIL opens 16-bit PNGs): convert("L") would clip them, not scale them
        arr = np.clip(arr.astype(np.float64), 0, 65535) / 257.0
    return Image.fromarray(np.round(arr).astype(np.uint8), "L")


def _open(path: Path, decode: Callable[[tuple[int, int]], bool], grey: bool | None, image_size: int | None) -> dict:
    """Open one image with PIL, once: its size and mode, and, when ``decode(size)``, its pixels (uint8
    ``(C, H, W)``: C=1 for a grey image unless ``grey`` is False, C=3 otherwise unless ``grey`` is True, resized to
    ``image_size`` when given); or the reason it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            size, mode = im.size, im.mode
            if not decode(size):
                im.verify()  # checks the file's structure without decoding all of it
                return {"size": size, "mode": mode}
            is_grey = mode in _GREY_MODES
            if grey is True or (grey is None and is_grey):
                out = _grey8(im) if is_grey else im.convert("L")
            else:
                out = _grey8(im).convert("RGB") if is_grey else im.convert("RGB")
            if image_size is not None and out.size != (image_size, image_size):
                out = out.resize((image_size, image_size), Image.BILINEAR)
            arr = np.asarray(out, dtype=np.uint8)
            return {"size": size, "mode": mode, "pixels": arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)}
    except Exception as exc:  # PIL raises many types for broken files (OSError, SyntaxError, ValueError, ...)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _scan(paths: Sequence[Path], in_memory: bool | None, grey: bool | None, image_size: int | None) -> list[dict]:
    """Open every image once (in threads: PIL decodes outside the GIL), decoding those that may be held in memory.

    With neither ``in_memory`` nor ``image_size`` given, a small image is decoded as soon as it is open, so no file
    is opened twice; should a larger one turn up, the data set goes to files and those pixels are dropped.
    """
    if in_memory is not None:
        decode = lambda size: bool(in_memory)  # noqa: E731
    elif image_size is not None:
        decode = lambda size: image_size <= IN_MEMORY_MAX_SIDE  # noqa: E731
    else:
        decode = lambda size: max(size) <= IN_MEMORY_MAX_SIDE  # noqa: E731
    workers = max(1, min(8, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda p: _open(p, decode, grey, image_size), paths))


# ---------------------------------------------------------------------------------------------------- loaders
def load_folder(
    root: str | os.PathLike,
    *,
    image_size: int | None = None,
    grey: bool | None = None,
    holdout: float | None = None,
    seed: int = 0,
    in_memory: bool | None = None,
    csv: str | os.PathLike | None = None,
) -> Dataset:
    """Load the user's own labelled images, labels taken as given (possibly wrong, truth unknown).

    Layouts:

    * ``root/<class>/**/<image>``: one sub-folder per class (classes are the sorted folder names), images of any
      format PIL reads, searched recursively in sorted order; hidden files and folders are skipped; or
    * ``csv=PATH`` (or ``root`` itself a ``.csv`` file): a CSV with the header ``path,label``; paths relative to the
      CSV's folder (or absolute); labels are class names (sorted to indices) or integer class indices.

    Every file is opened once with PIL.  One that cannot be read (corrupt, not an image) is skipped: a warning gives
    their count and the first few, and ``extras["skipped"]`` lists them all as ``{"path", "reason"}``.

    Parameters
    ----------
    root : path
        The class folders' parent, or a ``path,label`` CSV file.
    image_size : int, optional
        In memory: resize every image to ``image_size × image_size`` (bilinear, aspect ratio not kept).  As files:
        the crop side (and the shorter side is resized to ``round(image_size · 256 / 224)`` first).
    grey : bool, optional
        Force one grey channel (True) or three RGB channels (False); by default grey when every image is
        greyscale.  In memory only (image files are decoded to RGB).
    holdout : float in (0, 1), optional
        Split this class-stratified random fraction off as the test split (labels as given).
    seed : int
        Seed of the holdout split.
    in_memory : bool, optional
        By default the images are decoded into memory when their side (``image_size`` if given, else the largest
        image side) is at most 64 pixels, and read from the files otherwise.
    csv : path, optional
        A ``path,label`` CSV to read instead of class folders.

    Returns
    -------
    Dataset
        ``name`` = the folder's name, ``clean_train_known=False``.  In memory: ``x_train`` uint8 ``(N, C, H, W)``
        with mean/std estimated on it; otherwise :class:`ImageFiles` (resize 256 / crop 224 by default, ImageNet
        mean/std).  ``sample_ids`` are the paths relative to ``root`` (or as written in the CSV); ``extras`` holds
        ``test_split``, ``holdout_index``, ``sample_ids`` and ``skipped``.

    Raises
    ------
    ValueError
        A missing root, no or a single class folder, an empty class folder, a CSV without the ``path`` / ``label``
        columns, with missing labels or with paths that are not files; a class all of whose files are unreadable;
        images of different sizes in memory without ``image_size``.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise ValueError(f"{root} does not exist")
    if csv is None and root.is_file():
        if root.suffix.lower() != ".csv":
            raise ValueError(f"{root} is a file; pass a folder of class sub-folders or a path,label .csv file")
        csv = root
    if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if csv is not None:
        csv = Path(csv).expanduser()
        name = (root.parent if root.is_file() else root).name
        paths, ids, labels_all, class_names = _read_path_csv(csv)
        if class_names is None:
            class_names = [str(i) for i in range(int(labels_all.max()) + 1)]
    else:
        name = root.name
        class_names, paths, label_list = _list_class_folders(root)
        ids = [p.relative_to(root).as_posix() for p in paths]
        labels_all = np.asarray(label_list, dtype=np.int64)
    if labels_all.min() < 0:
        raise ValueError(f"integer labels must be >= 0, found {int(labels_all.min())}")

    scanned = _scan(paths, in_memory, grey, image_size)
    skipped = [{"path": str(p), "reason": s["error"]} for p, s in zip(paths, scanned) if "error" in s]
    if skipped:
        warnings.warn(
            f"{name}: skipped {len(skipped)} unreadable file(s) of {len(paths)}: "
            f"{_shown([s['path'] for s in skipped])} (all listed in dataset.extras['skipped'])",
            UserWarning,
            stacklevel=2,
        )
    ok = [i for i, s in enumerate(scanned) if "error" not in s]
    labels = labels_all[ok]
    lost = [c for c in np.unique(labels_all) if not np.any(labels == c)]
    if lost:
        raise ValueError(f"{name}: class {class_names[lost[0]]!r} has no readable image (its files were all skipped)")
    ids = [ids[i] for i in ok]
    sizes = [scanned[i]["size"] for i in ok]
    if in_memory is None:
        in_memory = (image_size if image_size is not None else max(max(s) for s in sizes)) <= IN_MEMORY_MAX_SIDE
    extras: dict[str, Any] = {"skipped": skipped, "source": str(csv) if csv is not None else str(root)}

    if in_memory:
        if image_size is None and len(set(sizes)) > 1:
            shown = ", ".join(f"{w}x{h}" for w, h in sorted(set(sizes))[:4])
            raise ValueError(
                f"{name}: images of different sizes ({shown}{' ...' if len(set(sizes)) > 4 else ''}); pass "
                "image_size= to resize them all to one square size"
            )
        ok_pixels = [scanned[i]["pixels"] for i in ok]  # in memory means every readable image was decoded
        channels = 3 if grey is False else max(p.shape[0] for p in ok_pixels)
        # a colour image makes the whole set RGB: grey ones are replicated to three channels (as PIL's L -> RGB)
        x = np.stack([np.repeat(p, channels, axis=0) if p.shape[0] < channels else p for p in ok_pixels])
        ds = Dataset.from_arrays(
            x, labels, name=name, class_names=class_names, holdout=holdout, seed=seed, sample_ids=ids
        )
        ds.root = root if root.is_dir() else root.parent
        ds.extras.update(extras)
        return ds

    if grey:
        raise ValueError("grey=True needs the images in memory (in_memory=True); image files are decoded to RGB")
    crop = image_size if image_size is not None else 224
    resize = round(image_size * 256 / 224) if image_size is not None else 256
    files = ImageFiles(paths=tuple(str(paths[i]) for i in ok), resize=resize, crop=crop)
    _check_train_classes(labels, class_names, name)
    extras["test_split"] = "none"
    test_files, test_labels = None, None
    if holdout is not None:
        if not (isinstance(holdout, (float, int)) and 0.0 < holdout < 1.0):
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
        held = _stratified_holdout(labels, float(holdout), seed)
        keep = np.setdiff1d(np.arange(len(labels)), held)
        test_files, test_labels = files.subset(held), labels[held]
        files, labels, ids = files.subset(keep), labels[keep], [ids[i] for i in keep]
        extras.update(test_split="holdout", holdout_index=held)
    extras["sample_ids"] = ids
    return Dataset(
        name=name,
        x_train=files,
        y_train=labels,
        x_test=test_files,
        y_test=test_labels,
        num_classes=len(class_names),
        class_names=list(class_names),
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        pixel_scale=255.0,
        clean_train_known=False,
        root=root if root.is_dir() else root.parent,
        extras=extras,
    )


def load_table(
    csv_path: str | os.PathLike,
    *,
    label: str,
    features: Sequence[str] | None = None,
    id_column: str | None = None,
    holdout: float | None = None,
    seed: int = 0,
) -> Dataset:
    """Load the user's own table of features and labels, labels taken as given (possibly wrong, truth unknown).

    Parameters
    ----------
    csv_path : path
        A CSV file with a header row.
    label : str
        The label column: class names (sorted to indices) or integer class indices.
    features : sequence of str, optional
        The feature columns (numeric); by default every numeric column other than ``label`` and ``id_column`` (a
        non-numeric one is then an error: drop it or pass ``features=``).
    id_column : str, optional
        A column of sample ids; by default the row numbers ``"0"``, ``"1"``, ...
    holdout : float in (0, 1), optional
        Split this class-stratified random fraction off as the test split (labels as given).
    seed : int
        Seed of the holdout split.

    Returns
    -------
    Dataset
        ``name`` = the file's stem; ``x_train`` float32 ``(N, D)`` (standardised by the estimated per-feature mean
        and std), ``clean_train_known=False``; ``extras["feature_names"]`` the columns used.

    Raises
    ------
    ValueError
        Missing columns, non-numeric feature columns, NaN or infinite features, missing labels.
    """
    import pandas as pd

    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise ValueError(f"CSV file {path} does not exist")
    table = pd.read_csv(path)
    columns = [str(c) for c in table.columns]
    table.columns = columns
    wanted = [label] + ([id_column] if id_column is not None else []) + list(features or [])
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise ValueError(f"{path.name} has no column(s) {', '.join(map(repr, absent))} (found: {', '.join(columns)})")
    if features is None:
        features = [c for c in columns if c not in (label, id_column)]
        explain = "; exclude them by passing features= the columns to use"
    else:
        features = list(features)
        explain = ""
    if not features:
        raise ValueError(f"{path.name} has no feature column besides {label!r}")
    text = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise ValueError(f"{path.name}: non-numeric feature column(s) {', '.join(map(repr, text))}{explain}")
    x = table[features].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [features[j] for j in np.flatnonzero(bad.any(axis=0))]
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
            f"{path.name}: NaN or infinite values in column(s) {', '.join(map(repr, cols))}, {rows.size} row(s) "
            f"(first: row {rows[0]}, {_lines(rows[:1])}); drop or impute them"
        )
    y = table[label]
    missing = np.flatnonzero(y.isna().to_numpy() | y.astype(str).str.strip().eq("").to_numpy())
    if missing.size:
        raise ValueError(
            f"{path.name}: {missing.size} row(s) without a label in column {label!r}: rows "
            f"{_shown(list(missing), 5)} ({_lines(list(missing))})"
        )
    if pd.api.types.is_bool_dtype(y) or not (
        pd.api.types.is_integer_dtype(y) or (pd.api.types.is_float_dtype(y) and np.all(y == np.round(y)))
    ):
        labels = y.astype(str).str.strip().to_numpy(dtype=object)  # class names
    else:
        labels = y.to_numpy().astype(np.int64)
    ids = table[id_column].astype(str).tolist() if id_column is not None else None
    ds = Dataset.from_arrays(x.astype(np.float32), labels, name=path.stem, holdout=holdout, seed=seed, sample_ids=ids)
    ds.root = path.parent
    ds.extras.update(feature_names=list(features), source=str(path))
    return ds


def write_image_folder(
    images: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    root: str | os.PathLike,
    pixel_scale: float = 255.0,
    prefix: str = "img",
) -> list[str]:
    """Write images as PNG files into ``root/<class name>/<prefix>_<index>.png``, the layout :func:`load_folder`
    reads (e.g. to hand the kit's demo data to ``lnlkit detect``, or to export a corrected folder).

    Parameters
    ----------
    images : ndarray (N, C, H, W) or (N, H, W)
        C = 1 (grey) or 3 (RGB); values in ``[0, pixel_scale]``.
    labels : sequence of int (N,)
        Class index of each image (its folder).
    class_names : sequence of str
    root : path
    pixel_scale : float
        What a full-intensity pixel is (255 for uint8, 16 for the digits); pixels are scaled to 0..255.
    prefix : str

    Returns
    -------
    list of str
        The written paths relative to ``root``, in the images' order.
    """
    from PIL import Image

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3, got shape {np.shape(images)}")
    labels = np.asarray(labels)
    if len(labels) != len(x):
        raise ValueError(f"{len(x)} images but {len(labels)} labels")
    root = Path(root)
    pixels = np.clip(np.round(x.astype(np.float64) * (255.0 / pixel_scale)), 0, 255).astype(np.uint8)
    width = max(4, len(str(len(x) - 1)))
    written = []
    for i, (img, c) in enumerate(zip(pixels, labels)):
        rel = f"{class_names[int(c)]}/{prefix}_{i:0{width}d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        grey = img.shape[0] == 1
        Image.fromarray(img[0] if grey else img.transpose(1, 2, 0), "L" if grey else "RGB").save(root / rel)
        written.append(rel)
    return written

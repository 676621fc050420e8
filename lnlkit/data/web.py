"""Real-noise data sets read from local folders: Clothing1M, mini-WebVision, Animal-10N and Web-Bird/Car/Aircraft.

Nothing is downloaded; a missing data set raises :class:`~lnlkit.data.dataset.DatasetNotFoundError` naming the path
looked in, the expected files and where to get them.  Their training labels are the noisy web labels, so every
loader returns ``clean_train_known=False``.

Clothing1M, mini-WebVision and the Web-* sets are returned as :class:`~lnlkit.data.dataset.ImageFiles` (paths,
decoded on demand by :func:`lnlkit.data.images.make_file_loader`); only the list files are parsed at load time.
Animal-10N (64×64 images) is small enough to be decoded once into memory.

Each loader accepts ``root`` as the data set's own folder or as a parent folder holding it under a conventional name
(e.g. ``data/clothing1m``), so ``load_dataset(name)`` works with the default data root ``./data``:

================ =========================================================================
data set          sub-folder names tried below ``root``
================ =========================================================================
clothing1m        ``clothing1m``, ``Clothing1M``, ``clothing1M``, ``Clothing-1M``
webvision         ``webvision``, ``WebVision``, ``mini-webvision``, ``miniwebvision``
animal10n         ``animal10n``, ``Animal-10N``, ``animal-10n``, ``Animal10N``
web-bird, ...     ``<subset>``, ``datasets/<subset>``
================ =========================================================================

List files ("path label" per line) are parsed strictly: a line without a label, with a non-integer label or with a
label out of range raises ``ValueError`` naming the file and the line number.  Blank lines are skipped.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lnlkit.data.dataset import Dataset, DatasetNotFoundError, ImageFiles

__all__ = [
    "load_clothing1m",
    "load_webvision",
    "load_animal10n",
    "load_webfg",
    "CLOTHING1M_CLASSES",
    "WEBFG_SUBSETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CLOTHING1M_MEAN",
    "CLOTHING1M_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLOTHING1M_MEAN = (0.6959, 0.6537, 0.6371)
CLOTHING1M_STD = (0.3113, 0.3192, 0.3214)

CLOTHING1M_CLASSES = [
    "T-Shirt",
    "Shirt",
    "Knitwear",
    "Chiffon",
    "Sweater",
    "Hoodie",
    "Windbreaker",
    "Jacket",
    "Down Coat",
    "Suit",
    "Shawl",
    "Dress",
    "Vest",
    "Underwear",
]
#: subset -> expected number of classes (Co-mining README)
WEBFG_SUBSETS = {"web-bird": 200, "web-car": 196, "web-aircraft": 100}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

CLOTHING1M_URL = "by request from the authors, see https://github.com/Cysu/noisy_label"
WEBVISION_URL = "https://data.vision.ee.ethz.ch/cvl/webvision/download.html"
ANIMAL10N_URL = "https://dm.kaist.ac.kr/datasets/animal-10n/"
WEBFG_URL = "https://wsnfg-sh.oss-cn-shanghai.aliyuncs.com/{subset}.tar.gz (archives listed in the Co-mining README)"


# ---------------------------------------------------------------------------------------------------------- helpers
def _locate(root: Path, markers: Sequence[str], subdirs: Sequence[str]) -> tuple[Path | None, list[Path]]:
    """First of ``root``, ``root/<subdir>`` ... that contains one of ``markers``; also return the folders tried."""
    tried = [root] + [root / s for s in subdirs]
    for cand in tried:
        if any((cand / m).exists() for m in markers):
            return cand, tried
    return None, tried


def _not_found(what: str, tried: Sequence[Path], expected: str, download: str) -> DatasetNotFoundError:
    where = ", ".join(str(p) for p in tried)
    return DatasetNotFoundError(
        f"{what} not found: looked in {where}. Expected {expected}. Download: {download}. "
        "Pass root= as the folder holding the data (lnlkit never downloads data)."
    )


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """(line number, stripped line) of a text list, blank lines skipped."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield n, line


def _parse_label(path: Path, n: int, token: str, line: str, num_classes: int | None) -> int:
    try:
        lab = int(token)
    except ValueError:
        raise ValueError(f"{path}, line {n}: label {token!r} is not an integer (line: {line!r})") from None
    if lab < 0 or (num_classes is not None and lab >= num_classes):
        hi = "" if num_classes is None else f", {num_classes}"
        raise ValueError(f"{path}, line {n}: label {lab} is out of range [0{hi}) (line: {line!r})")
    return lab


def _read_labelled_list(
    path: Path, num_classes: int | None, keep_below: int | None = None
) -> tuple[list[str], np.ndarray]:
    """Parse "relpath label" lines.  ``keep_below``: keep only labels below it (others are valid but dropped)."""
    rels: list[str] = []
    labels: list[int] = []
    for n, line in _lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}, line {n}: expected 'path label', got {line!r} (missing label)")
        lab = _parse_label(path, n, parts[1], line, num_classes)
        if keep_below is not None and lab >= keep_below:
            continue
        rels.append(parts[0])
        labels.append(lab)
    return rels, np.asarray(labels, dtype=np.int64)


def _read_kv(path: Path, num_classes: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, line in _lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}, line {n}: expected 'path label', got {line!r} (missing label)")
        out[parts[0]] = _parse_label(path, n, parts[1], line, num_classes)
    return out


def _keys_with_labels(key_list: Path, kv: dict[str, int], kv_path: Path) -> tuple[list[str], np.ndarray]:
    rels: list[str] = []
    labels: list[int] = []
    for n, line in _lines(key_list):
        key = line.split()[0]
        lab = kv.get(key)
        if lab is None:
            raise ValueError(f"{key_list}, line {n}: image {key!r} has no label in {kv_path}")
        rels.append(key)
        labels.append(lab)
    return rels, np.asarray(labels, dtype=np.int64)


PathMap = Callable[[str], str]


def _path_map(base: Path, strip: str = "", add: str = "") -> PathMap:
    """Map a list entry to a file path: ``base/add/entry`` with the prefix ``strip`` removed from the entry."""
    prefix = str(base / add) if add else str(base)
    prefix = prefix.rstrip(os.sep) + os.sep
    n = len(strip)
    if strip:
        return lambda r: prefix + (r[n:] if r.startswith(strip) else r)
    return lambda r: prefix + r


def _resolve_images(
    what: str, first: str | None, maps: Sequence[tuple[str, PathMap]], check: bool, download: str
) -> PathMap:
    """Pick the first candidate layout under which the first listed image exists."""
    if first is None or not check:
        return maps[0][1]
    for _, m in maps:
        if os.path.isfile(m(first)):
            return m
    tried = "; ".join(f"{m(first)} ({desc})" for desc, m in maps)
    raise DatasetNotFoundError(
        f"{what}: the list files were found but the first listed image {first!r} is not on disk; tried {tried}. "
        f"Extract the image archives under the data set folder (download: {download}), or pass "
        "check_images=False to load the lists only."
    )


def _image_files(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder``, sorted (recursively in ``os.walk`` order with sorted names, like ImageFolder)."""
    if not recursive:
        return sorted(
            (Path(e.path) for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)),
            key=lambda p: p.name,
        )
    out: list[Path] = []
    for dirpath, _, filenames in sorted(os.walk(folder, followlinks=True)):
        out += [Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return out


# ------------------------------------------------------------------------------------------------------- Clothing1M
def load_clothing1m(
    root: Path, resize: int = 256, crop: int = 224, test_split: str = "test", check_images: bool = True
) -> Dataset:
    """Load Clothing1M (14 classes, ≈ 1M noisy training images) as image files.

    Two layouts are accepted (docs/datasets.md#clothing1m):

    1. The official release::

           root/annotations/noisy_train_key_list.txt   image paths of the noisy training set (one per line)
           root/annotations/noisy_label_kv.txt         "path label" for every noisily labelled image
           root/annotations/clean_val_key_list.txt     clean validation paths (14,313)
           root/annotations/clean_test_key_list.txt    clean test paths (10,526)
           root/annotations/clean_label_kv.txt         "path label" for the clean labels
           root/images/0/00/xxx.jpg ...                images, at the paths the lists give relative to root

       The five text files may also sit directly in ``root`` (DivideMix-style).  Images are looked up at
       ``root/<path>``; when that does not exist, ``root/<path without "images/">`` (DivideMix keeps the image
       folders directly in root) is tried, judged from the first listed training image.
    2. The Prune4ReL lists, used when ``annotations/`` is absent::

           root/noisy_train.txt      "path label" lines (noisy training set)
           root/clean_val.txt        "path label" lines (clean validation set)
           root/clean_test.txt       optional (lnlkit extension): "path label" lines of the clean test set

       Prune4ReL's "test" set is the clean *validation* list: pass ``test_split="val"`` to reproduce it.

    Parameters
    ----------
    root : pathlib.Path
    resize, crop : int
        Shorter side after decoding (aspect ratio kept) and crop side (SMR: Resize 256 → RandomCrop 224).
    test_split : {"test", "val"}
        Which clean split becomes ``x_test``/``y_test`` (recorded in ``extras["test_split"]``); the other one, when
        present, becomes ``x_val``/``y_val``.
    check_images : bool
        Check that the first listed training image exists (no other image is opened at load time).

    Returns
    -------
    Dataset
        ``name="clothing1m"``, ``x_train``/``x_test``/``x_val`` :class:`ImageFiles`, ``y_train`` the noisy labels,
        ``clean_train_known=False``, the Clothing1M normalisation of SMR, ``pixel_scale=255``.
    """
    if test_split not in ("test", "val"):
        raise ValueError(f"test_split must be 'test' or 'val', got {test_split!r}")
    root = Path(root).expanduser()
    C = len(CLOTHING1M_CLASSES)
    markers = ["annotations/noisy_train_key_list.txt", "noisy_train_key_list.txt", "noisy_train.txt"]
    base, tried = _locate(root, markers, ["clothing1m", "Clothing1M", "clothing1M", "Clothing-1M"])
    expected = (
        "annotations/noisy_train_key_list.txt, noisy_label_kv.txt, clean_val_key_list.txt, clean_test_key_list.txt "
        "and clean_label_kv.txt (official layout; the .txt files may also sit directly in the folder) with the "
        "images at the listed paths (images/0/00/xxx.jpg ...), or the Prune4ReL lists noisy_train.txt and "
        "clean_val.txt ('path label' lines)"
    )
    if base is None:
        raise _not_found("Clothing1M", tried, expected, CLOTHING1M_URL)

    ann = next((d for d in (base / "annotations", base) if (d / "noisy_train_key_list.txt").is_file()), None)
    splits: dict[str, tuple[list[str], np.ndarray]] = {}
    files: dict[str, str] = {}
    if ann is not None:
        layout = "official"
        need = ["noisy_label_kv.txt", "clean_label_kv.txt", f"clean_{test_split}_key_list.txt"]
        missing = [f for f in need if not (ann / f).is_file()]
        if missing:
            raise _not_found(
                f"Clothing1M (official layout in {ann}: missing {', '.join(missing)})", [ann], expected, CLOTHING1M_URL
            )
        noisy_kv = _read_kv(ann / "noisy_label_kv.txt", C)
        splits["train"] = _keys_with_labels(ann / "noisy_train_key_list.txt", noisy_kv, ann / "noisy_label_kv.txt")
        del noisy_kv
        clean_kv = _read_kv(ann / "clean_label_kv.txt", C)
        for s in ("val", "test"):
            f = ann / f"clean_{s}_key_list.txt"
            if f.is_file():
                splits[s] = _keys_with_labels(f, clean_kv, ann / "clean_label_kv.txt")
                files[s] = str(f)
        files["train"] = str(ann / "noisy_train_key_list.txt")
    else:
        layout = "prune4rel"
        lists = {"train": base / "noisy_train.txt", "val": base / "clean_val.txt", "test": base / "clean_test.txt"}
        if not lists["train"].is_file():
            raise _not_found("Clothing1M", [base], expected, CLOTHING1M_URL)
        if not lists[test_split].is_file():
            hint = (
                " Prune4ReL evaluates on the clean validation list: pass test_split='val'."
                if test_split == "test" and lists["val"].is_file()
                else ""
            )
            raise DatasetNotFoundError(
                f"Clothing1M (Prune4ReL layout in {base}): the {test_split} list {lists[test_split]} is missing.{hint}"
            )
        for s, f in lists.items():
            if f.is_file():
                splits[s] = _read_labelled_list(f, C)
                files[s] = str(f)

    first = splits["train"][0][0] if splits["train"][0] else None
    maps = [(f"relative to {base}", _path_map(base))]
    if first is not None and first.startswith("images/"):
        maps.append((f"relative to {base}, without 'images/'", _path_map(base, strip="images/")))
    else:
        maps.append((f"relative to {base / 'images'}", _path_map(base, add="images")))
    to_path = _resolve_images("Clothing1M", first, maps, check_images, CLOTHING1M_URL)

    def files_of(split: str) -> ImageFiles:
        return ImageFiles(paths=tuple(map(to_path, splits[split][0])), resize=resize, crop=crop)

    val_split = "val" if test_split == "test" else "test"
    has_val = val_split in splits
    return Dataset(
        name="clothing1m",
        x_train=files_of("train"),
        y_train=splits["train"][1],
        x_test=files_of(test_split),
        y_test=splits[test_split][1],
        num_classes=C,
        class_names=list(CLOTHING1M_CLASSES),
        mean=CLOTHING1M_MEAN,
        std=CLOTHING1M_STD,
        pixel_scale=255.0,
        clean_train_known=False,
        root=base,
        x_val=files_of(val_split) if has_val else None,
        y_val=splits[val_split][1] if has_val else None,
        extras={
            "normalization": "smr",
            "layout": layout,
            "test_split": test_split,
            "val_split": val_split if has_val else None,
            "list_files": files,
        },
    )


# ---------------------------------------------------------------------------------------------------- mini-WebVision
def _read_synsets(path: Path) -> list[tuple[str, str]]:
    """(synset id, readable name) per line of ``info/synsets.txt`` ("n01440764 tench, Tinca tinca")."""
    out = []
    for _, line in _lines(path):
        parts = line.split(None, 1)
        name = parts[1].split(",")[0].strip() if len(parts) > 1 else parts[0]
        out.append((parts[0], name or parts[0]))
    return out


def load_webvision(
    root: Path,
    num_classes: int = 50,
    resize: int = 320,
    crop: int = 299,
    imagenet_root: str | os.PathLike | None = None,
    check_images: bool = True,
) -> Dataset:
    """Load mini-WebVision: the Google subset of WebVision 1.0 restricted to the first ``num_classes`` classes.

    Layout (docs/datasets.md#mini-webvision)::

        root/info/train_filelist_google.txt   "google/q0001/xxx.jpg label" lines; kept when label < num_classes
        root/google/q0001/xxx.jpg ...         training images, at the listed paths relative to root
        root/info/val_filelist.txt            "name label" lines of the WebVision validation set (the test split)
        root/val_images_256/<name>            validation images; ``root/val_images/<name>`` and ``root/<name>``
                                              are also accepted (official codes differ; judged from the first entry)
        root/info/synsets.txt                 optional: one "synset name" line per class, in label order

    The ImageNet (ILSVRC-2012) validation images of the same synsets become ``x_val``/``y_val`` when
    ``imagenet_root`` is given; assumed layout ``imagenet_root/<synset>/*.JPEG`` (or ``imagenet_root/val/<synset>``),
    with the synset of class ``i`` read from line ``i`` of ``root/info/synsets.txt``.

    Parameters
    ----------
    root : pathlib.Path
    num_classes : int
        First classes kept (50 for mini-WebVision).
    resize, crop : int
        SMR: Resize 320 → crop 299.
    imagenet_root : path, optional
    check_images : bool
        Check that the first training and validation images exist.

    Returns
    -------
    Dataset
        ``name="webvision"``, :class:`ImageFiles` inputs, noisy ``y_train``, ``clean_train_known=False``, ImageNet
        normalisation; ``extras["val_name"]`` is ``"imagenet_val"`` when ``x_val`` is set.
    """
    if not isinstance(num_classes, (int, np.integer)) or not 2 <= num_classes <= 1000:
        raise ValueError(f"num_classes must be an integer in [2, 1000] (50 for mini-WebVision), got {num_classes!r}")
    root = Path(root).expanduser()
    base, tried = _locate(
        root, ["info/train_filelist_google.txt"], ["webvision", "WebVision", "mini-webvision", "miniwebvision"]
    )
    expected = (
        "info/train_filelist_google.txt and info/val_filelist.txt with the Google training images "
        "(google/q0001/...) and the validation images (val_images_256/) of WebVision 1.0"
    )
    if base is None:
        raise _not_found("WebVision", tried, expected, WEBVISION_URL)
    info = base / "info"
    if not (info / "val_filelist.txt").is_file():
        raise _not_found(f"WebVision validation list ({info / 'val_filelist.txt'})", [base], expected, WEBVISION_URL)
    tr_rel, y_tr = _read_labelled_list(info / "train_filelist_google.txt", 1000, keep_below=num_classes)
    va_rel, y_va = _read_labelled_list(info / "val_filelist.txt", 1000, keep_below=num_classes)
    if not tr_rel:
        raise ValueError(f"{info / 'train_filelist_google.txt'} has no image with a label below {num_classes}")
    if not va_rel:
        raise ValueError(f"{info / 'val_filelist.txt'} has no image with a label below {num_classes}")

    tr_map = _resolve_images(
        "WebVision training images", tr_rel[0], [(f"relative to {base}", _path_map(base))], check_images, WEBVISION_URL
    )
    va_map = _resolve_images(
        "WebVision validation images",
        va_rel[0],
        [
            (f"in {base / d}" if d else f"relative to {base}", _path_map(base, add=d))
            for d in ("val_images_256", "val_images", "")
        ],
        check_images,
        WEBVISION_URL,
    )

    synsets = _read_synsets(info / "synsets.txt") if (info / "synsets.txt").is_file() else []
    if synsets and len(synsets) < num_classes:
        raise ValueError(f"{info / 'synsets.txt'} lists {len(synsets)} synsets, fewer than num_classes={num_classes}")
    class_names = [name for _, name in synsets[:num_classes]] if synsets else []
    if len(set(class_names)) != len(class_names):  # duplicate readable names: fall back to the synset ids
        class_names = [s for s, _ in synsets[:num_classes]]

    x_val = y_val = None
    extras: dict[str, Any] = {
        "normalization": "imagenet",
        "val_name": None,
        "list_files": {"train": str(info / "train_filelist_google.txt"), "test": str(info / "val_filelist.txt")},
    }
    if imagenet_root is not None:
        ir = Path(imagenet_root).expanduser()
        if not synsets:
            raise DatasetNotFoundError(
                f"imagenet_root was given but {info / 'synsets.txt'} (the synset of each WebVision class, one per "
                f"line, in label order) is missing; it ships with WebVision 1.0 ({WEBVISION_URL})"
            )
        wanted = [s for s, _ in synsets[:num_classes]]
        if not (ir / wanted[0]).is_dir() and (ir / "val" / wanted[0]).is_dir():
            ir = ir / "val"
        absent = [s for s in wanted if not (ir / s).is_dir()]
        if absent:
            raise DatasetNotFoundError(
                f"ImageNet validation images not found: {len(absent)} of the {num_classes} synset folders are "
                f"missing in {ir} (e.g. {', '.join(absent[:5])}). Expected imagenet_root/<synset>/*.JPEG with the "
                "ILSVRC-2012 validation images sorted into synset folders (https://image-net.org/download.php)."
            )
        paths, labels = [], []
        for c, s in enumerate(wanted):
            imgs = _image_files(ir / s, recursive=False)
            paths += [str(p) for p in imgs]
            labels += [c] * len(imgs)
        x_val = ImageFiles(paths=tuple(paths), resize=resize, crop=crop)
        y_val = np.asarray(labels, dtype=np.int64)
        extras["val_name"] = "imagenet_val"
        extras["imagenet_root"] = str(ir)

    return Dataset(
        name="webvision",
        x_train=ImageFiles(paths=tuple(map(tr_map, tr_rel)), resize=resize, crop=crop),
        y_train=y_tr,
        x_test=ImageFiles(paths=tuple(map(va_map, va_rel)), resize=resize, crop=crop),
        y_test=y_va,
        num_classes=int(num_classes),
        class_names=class_names,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        pixel_scale=255.0,
        clean_train_known=False,
        root=base,
        x_val=x_val,
        y_val=y_val,
        extras=extras,
    )


# -------------------------------------------------------------------------------------------------------- Animal-10N
def _decode_fixed(path: Path, size: int) -> tuple[np.ndarray, bool]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            resized = im.size != (size, size)
            if resized:
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1), resized
    except OSError as exc:
        raise OSError(f"cannot decode image {path}: {exc}") from exc


def _load_folder_in_memory(files: list[Path], size: int, num_workers: int) -> tuple[np.ndarray, int]:
    out = np.empty((len(files), 3, size, size), dtype=np.uint8)
    n_resized = 0

    def work(i: int) -> bool:
        out[i], r = _decode_fixed(files[i], size)
        return r

    if num_workers <= 1 or len(files) < 64:
        n_resized = sum(work(i) for i in range(len(files)))
    else:  # PIL decodes outside the GIL, so threads help
        with ThreadPoolExecutor(max_workers=num_workers) as ex:
            n_resized = sum(ex.map(work, range(len(files)), chunksize=256))
    return out, n_resized


def _animal_labels(files: list[Path]) -> np.ndarray:
    labels = np.empty(len(files), dtype=np.int64)
    for i, p in enumerate(files):
        if not p.name[:1].isdigit():
            raise ValueError(
                f"Animal-10N file {p}: the label is the first character of the file name and must be a digit 0-9"
            )
        labels[i] = int(p.name[0])
    return labels


def load_animal10n(root: Path, normalization: str = "smr", num_workers: int | None = None) -> Dataset:
    """Load Animal-10N (10 classes, 64×64 images) into memory.

    Layout (docs/datasets.md#animal-10n)::

        root/training/<label>_<...>.jpg   (or .png); the label is the first character of the file name
        root/testing/<label>_<...>.jpg

    All images are decoded once into uint8 arrays ``(N, 3, 64, 64)`` (≈ 50,000 × 12 KB ≈ 600 MB for the training
    set), so training runs from memory like CIFAR.  Files are taken in sorted name order.  An image of another
    size is resized to 64×64 (with a warning).

    Parameters
    ----------
    root : pathlib.Path
    normalization : {"smr", "imagenet"}
        ``"smr"`` (default): the Clothing1M statistics that SMR's official code uses for Animal-10N (a quirk of
        that code, kept for faithfulness); ``"imagenet"``: ImageNet statistics.
    num_workers : int, optional
        Decoding threads (default ``min(8, os.cpu_count())``).

    Returns
    -------
    Dataset
        ``name="animal10n"``, ``clean_train_known=False``, class names ``"0"`` … ``"9"`` (the file-name labels).
    """
    norm = str(normalization).lower()
    if norm not in ("smr", "imagenet"):
        raise ValueError(
            f"normalization must be 'smr' (Clothing1M statistics, as SMR) or 'imagenet', got {normalization!r}"
        )
    mean, std = (CLOTHING1M_MEAN, CLOTHING1M_STD) if norm == "smr" else (IMAGENET_MEAN, IMAGENET_STD)
    root = Path(root).expanduser()
    base, tried = _locate(root, ["training"], ["animal10n", "Animal-10N", "animal-10n", "Animal10N"])
    expected = (
        "the folders training/ and testing/ holding the 64×64 images, each file name starting with its "
        "label digit (e.g. training/3_01234.jpg)"
    )
    if base is None or not (base / "testing").is_dir():
        raise _not_found("Animal-10N", tried if base is None else [base], expected, ANIMAL10N_URL)
    workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
    arrays, labels = {}, {}
    resized = 0
    for split in ("training", "testing"):
        files = _image_files(base / split, recursive=False)
        if not files:
            raise _not_found(f"Animal-10N images in {base / split}", [base / split], expected, ANIMAL10N_URL)
        labels[split] = _animal_labels(files)
        arrays[split], r = _load_folder_in_memory(files, 64, workers)
        resized += r
    if resized:
        warnings.warn(f"Animal-10N: {resized} image(s) were not 64×64 and were resized to 64×64", stacklevel=2)
    return Dataset(
        name="animal10n",
        x_train=arrays["training"],
        y_train=labels["training"],
        x_test=arrays["testing"],
        y_test=labels["testing"],
        num_classes=10,
        class_names=[str(i) for i in range(10)],
        mean=mean,
        std=std,
        pixel_scale=255.0,
        clean_train_known=False,
        root=base,
        extras={"normalization": norm},
    )


# ------------------------------------------------------------------------------------------- Web-Bird / Car / Aircraft
def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir())


def load_webfg(root: Path, subset: str, resize: int = 512, crop: int = 448) -> Dataset:
    """Load one WebFG-496 subset (Co-mining): ``web-bird`` (200 classes), ``web-car`` (196), ``web-aircraft`` (100).

    Layout (docs/datasets.md#web-bird-web-car-web-aircraft)::

        root/<subset>/train/<class>/*.jpg    web-crawled (noisy) training images
        root/<subset>/val/<class>/*.jpg      clean test images

    ``root`` may also be the subset folder itself or a folder holding ``datasets/<subset>``.  ``tval/`` is accepted
    in place of ``val/`` (the Co-mining README shows it for web-aircraft; its code reads ``val``).  Classes are the
    sorted training sub-folder names (ImageFolder order); images are listed recursively in sorted order.  A class
    count other than the expected one only warns.

    Parameters
    ----------
    root : pathlib.Path
    subset : {"web-bird", "web-car", "web-aircraft"}
    resize, crop : int
        Co-mining: Resize 512 (shorter side, aspect kept) → crop 448.

    Returns
    -------
    Dataset
        ``name=subset``, :class:`ImageFiles` inputs, ``clean_train_known=False``, ImageNet normalisation.
    """
    if subset not in WEBFG_SUBSETS:
        raise ValueError(f"subset must be one of {', '.join(WEBFG_SUBSETS)}, got {subset!r}")
    root = Path(root).expanduser()
    tried = [root / subset, root / "datasets" / subset, root]
    base = next((d for d in tried if (d / "train").is_dir()), None)
    expected = f"{subset}/train/<class>/*.jpg and {subset}/val/<class>/*.jpg"
    if base is None:
        raise _not_found(subset, tried, expected, WEBFG_URL.format(subset=subset))
    val_dir = next((base / v for v in ("val", "tval") if (base / v).is_dir()), None)
    if val_dir is None:
        raise _not_found(f"{subset} test images ({base / 'val'})", [base], expected, WEBFG_URL.format(subset=subset))

    classes = _class_dirs(base / "train")
    if not classes:
        raise _not_found(
            f"{subset} class folders in {base / 'train'}", [base / "train"], expected, WEBFG_URL.format(subset=subset)
        )
    if len(classes) != WEBFG_SUBSETS[subset]:
        warnings.warn(
            f"{subset}: found {len(classes)} class folders in {base / 'train'}, expected {WEBFG_SUBSETS[subset]}",
            stacklevel=2,
        )
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in _class_dirs(val_dir) if c not in index]
    if unknown:
        raise ValueError(f"{val_dir} has class folder(s) not in {base / 'train'}: {', '.join(unknown[:5])}")

    def read(folder: Path, split: str) -> tuple[ImageFiles, np.ndarray]:
        paths: list[str] = []
        labels: list[int] = []
        for c in _class_dirs(folder):
            imgs = _image_files(folder / c, recursive=True)
            if not imgs and split == "train":
                raise ValueError(f"{subset}: the class folder {folder / c} holds no image")
            paths += [str(p) for p in imgs]
            labels += [index[c]] * len(imgs)
        return ImageFiles(paths=tuple(paths), resize=resize, crop=crop), np.asarray(labels, dtype=np.int64)

    x_tr, y_tr = read(base / "train", "train")
    x_te, y_te = read(val_dir, "test")
    return Dataset(
        name=subset,
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        num_classes=len(classes),
        class_names=classes,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        pixel_scale=255.0,
        clean_train_known=False,
        root=base,
        extras={"normalization": "imagenet", "test_folder": str(val_dir)},
    )

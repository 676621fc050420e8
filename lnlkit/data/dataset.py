"""The `Dataset` and `NoisyDataset` containers every loader returns and every method trains on.

A `Dataset` holds the train and test inputs with their labels, the number of classes, the class names and the
normalisation the inputs need.  Inputs are either

* an in-memory array: images ``(N, C, H, W)`` (uint8 or float, divided by ``pixel_scale`` before normalisation) or
  flat features ``(N, D)``; these are moved to the training device once and augmented there in whole batches; or
* an :class:`ImageFiles` list of image paths (Clothing1M, WebVision, ...), decoded by a worker-based loader.

``y_train`` are the *given* training labels.  For data sets with synthetic noise they are the clean labels and noise
is injected with :meth:`Dataset.with_noise`; for real-noise data sets (Clothing1M, WebVision, Animal-10N, Web-*)
they are already noisy and ``clean_train_known`` is False.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["Dataset", "NoisyDataset", "ImageFiles", "DatasetNotFoundError", "check_labels"]


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not on disk where the loader looked (lnlkit never downloads data)."""


@dataclass(frozen=True)
class ImageFiles:
    """Image files on disk, decoded on demand by a worker-based loader.

    Parameters
    ----------
    paths : sequence of str
        One path per sample, in data set order.
    resize : int
        When decoded, an image's shorter side is resized to ``resize`` pixels, the aspect ratio kept (the official
        codes' ``Resize(256)`` / ``Resize(512)``, before cropping).
    crop : int
        Side of the square crop the network sees (random crop in training, centre crop in evaluation).
    """

    paths: tuple[str, ...]
    resize: int = 256
    crop: int = 224

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of the decoded, cropped batch of all samples: ``(N, 3, crop, crop)``."""
        return (len(self.paths), 3, self.crop, self.crop)

    def subset(self, index: np.ndarray) -> "ImageFiles":
        return dataclasses.replace(self, paths=tuple(self.paths[i] for i in np.asarray(index)))


def check_labels(labels: Any, num_classes: int, what: str = "labels") -> np.ndarray:
    """Validate integer class labels and return them as an int64 array.

    Parameters
    ----------
    labels : array-like, shape (N,)
    num_classes : int
    what : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{what} must be integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = arr[(arr < 0) | (arr >= num_classes)]
        if bad.size:
            shown = ", ".join(str(v) for v in np.unique(bad)[:5])
            raise ValueError(
                f"{what} must lie in [0, {num_classes}) for num_classes={num_classes}; found {shown}"
                f"{' ...' if np.unique(bad).size > 5 else ''}. Pass the right num_classes or remap the labels."
            )
    return arr


def _as_inputs(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 3:  # (N, H, W) grey images
        arr = arr[:, None]
    if arr.ndim not in (2, 4):
        raise ValueError(
            f"{what} must be images of shape (N, C, H, W) (or (N, H, W)) or flat features of shape (N, D); "
            f"got shape {arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and len(arr) and not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
        raise ValueError(
            f"{what} contains NaN or infinite values in {bad.size} of {len(arr)} rows (first: row {bad[0]}); "
            "drop or impute those rows"
        )
    return arr


def _missing_rows(y: np.ndarray) -> np.ndarray:
    """Rows of a label array that hold no label: None, NaN or an empty (blank) string."""
    if np.issubdtype(y.dtype, np.floating):
        return np.flatnonzero(np.isnan(y))
    if y.dtype.kind in "OUS":
        missing = [
            v is None
            or type(v).__name__ in ("NAType", "NaTType")  # pandas' missing values, without importing pandas
            or (isinstance(v, (float, np.floating)) and np.isnan(v))
            or (isinstance(v, (str, bytes, np.str_, np.bytes_)) and not str(v).strip())
            for v in y.tolist()
        ]
        return np.flatnonzero(np.asarray(missing, dtype=bool))
    return np.empty(0, dtype=np.int64)


def _is_integer_like(y: np.ndarray) -> bool:
    """Whether labels are class indices (integers, or an object array of Python/NumPy integers), not names."""
    if np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating):
        return True
    if y.dtype == object:
        return all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in y.tolist())
    return False


def _encode_labels(
    splits: Sequence[tuple[np.ndarray, str]], class_names: Sequence[str] | None
) -> tuple[list[np.ndarray], list[str] | None]:
    """Map named labels (strings or other non-integer hashables) to class indices.

    Parameters
    ----------
    splits : sequence of (labels (N,), what)
        The label arrays of each split, with the name used in error messages.
    class_names : sequence of str, optional
        The class names in index order; by default the sorted unique label values (as str) over all splits.

    Returns
    -------
    labels : list of numpy.ndarray of int64
        One ``(N,)`` array per split (integer labels are returned as given, for :func:`check_labels`).
    class_names : list of str or None
        None when every split holds integer labels.
    """
    for y, what in splits:
        if y.ndim != 1:
            raise ValueError(f"{what} must be a 1-D array of labels, got shape {y.shape}")
        missing = _missing_rows(y)
        if missing.size:
            raise ValueError(
                f"{what} has {missing.size} missing label(s) (None, NaN or empty; first: row {missing[0]}); "
                "drop those rows or label them"
            )
    if all(_is_integer_like(y) for y, _ in splits):
        # an object array of Python ints (e.g. from a list mixing int types) becomes int64 for check_labels
        return [y.astype(np.int64) if y.dtype == object else y for y, _ in splits], None
    as_str = [np.asarray([str(v) for v in y.tolist()], dtype=object) for y, _ in splits]
    if class_names is None:
        names = sorted({v for y in as_str for v in y})
    else:
        names = [str(c) for c in class_names]
        if len(set(names)) != len(names):
            raise ValueError("class_names must be unique")
    index = {c: i for i, c in enumerate(names)}
    out = []
    for y, (_, what) in zip(as_str, splits):
        unknown = sorted({v for v in y if v not in index})
        if unknown:
            shown = ", ".join(repr(v) for v in unknown[:5])
            raise ValueError(f"{what} has label(s) not among class_names: {shown}{' ...' if len(unknown) > 5 else ''}")
        out.append(np.fromiter((index[v] for v in y), dtype=np.int64, count=len(y)))
    return out, names


def _check_train_classes(labels: np.ndarray, class_names: Sequence[str], name: str) -> None:
    """Raise unless the training labels ``(N,)`` hold at least two classes; warn for a class of a single sample
    (it can be learnt but hardly judged: any sample-selection method sees it alone)."""
    present = np.unique(labels)
    if present.size < 2:
        which = f" ({class_names[present[0]]!r})" if present.size == 1 and present[0] < len(class_names) else ""
        raise ValueError(
            f"{name}: the training labels hold {present.size} class{'es' if present.size != 1 else ''}{which}; "
            "a classifier needs at least 2"
        )
    counts = np.bincount(labels, minlength=len(class_names))
    lone = [class_names[c] if c < len(class_names) else str(c) for c in np.flatnonzero(counts == 1)]
    if lone:
        warnings.warn(
            f"{name}: class(es) {', '.join(map(repr, lone[:5]))}{' ...' if len(lone) > 5 else ''} have a single "
            "training sample",
            UserWarning,
            stacklevel=3,
        )


def _stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified random ``fraction`` of the samples, sorted.

    Each class gives ``round(fraction · n_c)`` samples but always keeps at least one for training (so a class of a
    single sample stays in training).

    Returns
    -------
    numpy.ndarray of int64, shape (N_holdout,)
    """
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = min(int(round(fraction * len(members))), len(members) - 1)
        if take > 0:
            picked.append(rng.permutation(members)[:take])
    if not picked:
        raise ValueError(
            f"holdout={fraction} holds out no sample of {len(labels)} (each class keeps at least one training "
            "sample); pass a larger fraction"
        )
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _empty_like(x: Any) -> Any:
    """An empty split with the per-sample shape (and type) of ``x``."""
    if isinstance(x, ImageFiles):
        return dataclasses.replace(x, paths=())
    return np.empty((0,) + tuple(x.shape[1:]), dtype=x.dtype)


@dataclass
class Dataset:
    """A labelled classification data set with a train and a test split.

    Attributes
    ----------
    name : str
        Identifier (``"digits"``, ``"cifar10"``, ...).
    x_train, x_test : numpy.ndarray or ImageFiles
        Images ``(N, C, H, W)``, flat features ``(N, D)`` or image files.
    y_train : numpy.ndarray of int64, shape (N_train,)
        Given training labels: clean for synthetic-noise data sets, noisy for real-noise ones.
    y_test : numpy.ndarray of int64, shape (N_test,)
        Test labels: clean for the benchmarks; the given labels of held-out rows for ``from_arrays(holdout=...)``.
        ``N_test`` may be 0 (no test split, see :attr:`has_test`).
    num_classes : int
    class_names : list of str
    mean, std : tuple of float
        Per-channel (images) or per-feature (flat inputs) normalisation, applied after dividing by
        ``pixel_scale``.
    pixel_scale : float
        Inputs are divided by this first (255 for uint8 images, 16 for the digits, 1 for floats).
    clean_train_known : bool
        Whether ``y_train`` are the true labels (False for real-noise data sets).
    root : pathlib.Path or None
        Folder the data set was read from (used to find side files such as the CIFAR-N labels).
    x_val, y_val : optional
        A clean validation split where the data set has one (Clothing1M, mini-WebVision's ImageNet val).
    extras : dict
        Data-set specific side information, e.g. ``coarse_labels`` of CIFAR-100; for the user's own data
        ``test_split`` (``"given"``, ``"holdout"`` or ``"none"``), ``holdout_index``, ``sample_ids`` and ``skipped``.
    default_model : str
        Model the ``auto`` presets build for this data set.
    """

    name: str
    x_train: Any
    y_train: np.ndarray
    x_test: Any
    y_test: np.ndarray
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    pixel_scale: float = 1.0
    clean_train_known: bool = True
    root: Path | None = None
    x_val: Any = None
    y_val: np.ndarray | None = None
    extras: dict = field(default_factory=dict)
    default_model: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {self.num_classes!r}")
        self.num_classes = int(self.num_classes)
        if not isinstance(self.x_train, ImageFiles):
            self.x_train = _as_inputs(self.x_train, "x_train")
        # no test split (the user's own data): an empty one with the training inputs' per-sample shape, so every
        # consumer can still iterate it
        if self.x_test is None or (not isinstance(self.x_test, ImageFiles) and np.size(self.x_test) == 0):
            self.x_test = _empty_like(self.x_train)
        if self.y_test is None:
            self.y_test = np.empty(0, dtype=np.int64)
        if not isinstance(self.x_test, ImageFiles):
            self.x_test = _as_inputs(self.x_test, "x_test")
        self.y_train = check_labels(self.y_train, self.num_classes, "y_train")
        self.y_test = check_labels(self.y_test, self.num_classes, "y_test")
        for x, y, split in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            if len(x) != len(y):
                raise ValueError(f"x_{split} has {len(x)} samples but y_{split} has {len(y)} labels; they must match")
        if not isinstance(self.x_train, ImageFiles) and not isinstance(self.x_test, ImageFiles):
            if self.x_train.shape[1:] != self.x_test.shape[1:]:
                raise ValueError(
                    f"train and test inputs have different shapes per sample: {self.x_train.shape[1:]} vs "
                    f"{self.x_test.shape[1:]}"
                )
        if self.x_val is not None:
            if self.y_val is None or len(self.x_val) != len(self.y_val):
                raise ValueError("x_val and y_val must both be given and have the same length")
            self.y_val = check_labels(self.y_val, self.num_classes, "y_val")
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} entries for {self.num_classes} classes")
        self.mean = tuple(float(v) for v in np.atleast_1d(self.mean))
        self.std = tuple(float(v) for v in np.atleast_1d(self.std))
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        if self.default_model == "auto":
            self.default_model = self._guess_model()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        x_train: Any,
        y_train: Any,
        x_test: Any = None,
        y_test: Any = None,
        *,
        name: str = "custom",
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        pixel_scale: float | None = None,
        clean_labels: bool = False,
        holdout: float | None = None,
        seed: int = 0,
        sample_ids: Sequence[str] | None = None,
    ) -> "Dataset":
        """Wrap the user's own arrays.

        Parameters
        ----------
        x_train, x_test : array-like
            Images ``(N, C, H, W)`` or ``(N, H, W)``, or flat features ``(N, D)`` (these get an MLP by default).
            The test split is optional.
        y_train, y_test : array-like, shape (N,)
            Integer class indices, or class names (strings or other non-integer values, mapped to the indices of
            ``class_names``).  None, NaN or an empty string is a missing label (an error).
        num_classes : int, optional
            Defaults to ``len(class_names)`` when given, else ``max(label) + 1`` over both splits.
        class_names : sequence of str, optional
            Names in index order; with named labels every label must be among them.  By default the sorted unique
            named labels, or ``"0"``, ``"1"``, ... for integer labels.
        mean, std : sequence of float, optional
            Normalisation; by default estimated on the training inputs (per channel for images, per feature for
            flat inputs) after division by ``pixel_scale``.
        pixel_scale : float, optional
            Defaults to 255 for uint8 inputs and 1 otherwise.
        clean_labels : bool
            False (default): ``y_train`` are the labels as given, possibly wrong, their truth unknown
            (``clean_train_known=False``; :meth:`with_noise` accepts only ``"none"``).  True: they are the true
            labels of a benchmark, into which :meth:`with_noise` injects synthetic noise.
        holdout : float in (0, 1), optional
            Split this class-stratified random fraction of the training samples off as the test split (its labels
            are the given ones).  Not with ``x_test``.
        seed : int
            Seed of the holdout split.
        sample_ids : sequence of str, optional
            One unique id per training sample (before any holdout); defaults to the row positions ``"0"``, ...

        Returns
        -------
        Dataset
            ``extras["test_split"]`` is ``"given"``, ``"holdout"`` or ``"none"`` (an empty test split, see
            :attr:`has_test`); ``extras["holdout_index"]`` the held-out rows of ``x_train``;
            ``extras["sample_ids"]`` the ids of the training samples kept.

        Raises
        ------
        ValueError
            For malformed inputs, missing labels or fewer than two classes in ``y_train``.  A class with a single
            training sample only warns.
        """
        xtr = _as_inputs(x_train, "x_train")
        if (x_test is None) != (y_test is None):
            raise ValueError("pass both x_test and y_test, or neither (no test split)")
        if x_test is not None and holdout is not None:
            raise ValueError("pass either a test split (x_test, y_test) or holdout=, not both")
        if holdout is not None and not (isinstance(holdout, (float, int)) and 0.0 < holdout < 1.0):
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
        xte = _as_inputs(x_test, "x_test") if x_test is not None else None
        ytr_raw = np.asarray(y_train)
        splits = [(ytr_raw, "y_train")] + ([(np.asarray(y_test), "y_test")] if y_test is not None else [])
        encoded, named = _encode_labels(splits, class_names)
        ytr_raw = encoded[0]
        yte_raw = encoded[1] if y_test is not None else None
        if named is not None:
            class_names = named
        if num_classes is None:
            if class_names is not None:
                num_classes = len(class_names)
            else:
                both = np.concatenate([np.ravel(y) for y in encoded])
                if both.size == 0 or not np.issubdtype(both.dtype, np.number):
                    raise ValueError("cannot infer num_classes from empty or non-numeric labels; pass num_classes")
                num_classes = int(np.max(both)) + 1
        ytr = check_labels(ytr_raw, int(num_classes), "y_train")
        if len(xtr) != len(ytr):
            raise ValueError(f"x_train has {len(xtr)} samples but y_train has {len(ytr)} labels; they must match")
        _check_train_classes(
            ytr, list(class_names) if class_names is not None else [str(i) for i in range(int(num_classes))], name
        )
        if sample_ids is None:
            ids = [str(i) for i in range(len(ytr))]
        else:
            ids = [str(v) for v in sample_ids]
            if len(ids) != len(ytr):
                raise ValueError(f"sample_ids has {len(ids)} entries for {len(ytr)} training samples")
            if len(set(ids)) != len(ids):
                dup = next(v for v, n in zip(*np.unique(ids, return_counts=True)) if n > 1)
                raise ValueError(f"sample_ids must be unique; {dup!r} appears more than once")
        extras: dict[str, Any] = {"test_split": "given" if xte is not None else "none"}
        if holdout is not None:
            held = _stratified_holdout(ytr, float(holdout), seed)
            keep = np.setdiff1d(np.arange(len(ytr)), held)
            xte, yte_raw = xtr[held], ytr[held]
            xtr, ytr = xtr[keep], ytr[keep]
            ids = [ids[i] for i in keep]
            extras.update(test_split="holdout", holdout_index=held)
        extras["sample_ids"] = ids
        if pixel_scale is None:
            pixel_scale = 255.0 if xtr.dtype == np.uint8 else 1.0
        if mean is None or std is None:
            scaled = xtr.astype(np.float64) / pixel_scale
            axes = (0, 2, 3) if scaled.ndim == 4 else (0,)
            est_mean, est_std = scaled.mean(axis=axes), scaled.std(axis=axes)
            mean = est_mean if mean is None else mean
            std = np.where(est_std > 1e-8, est_std, 1.0) if std is None else std
        return cls(
            name=name,
            x_train=xtr,
            y_train=ytr,
            x_test=xte,
            y_test=yte_raw,
            num_classes=int(num_classes),
            class_names=list(class_names) if class_names is not None else [],
            mean=tuple(np.ravel(mean)),
            std=tuple(np.ravel(std)),
            pixel_scale=float(pixel_scale),
            clean_train_known=bool(clean_labels),
            extras=extras,
        )

    # ------------------------------------------------------------------ properties
    @property
    def is_image(self) -> bool:
        return isinstance(self.x_train, ImageFiles) or self.x_train.ndim == 4

    @property
    def in_memory(self) -> bool:
        return not isinstance(self.x_train, ImageFiles)

    @property
    def has_test(self) -> bool:
        """Whether there is a test split (the user's own data may come without one)."""
        return len(self.y_test) > 0

    def with_test(self, test: "Dataset") -> "Dataset":
        """This data set with ``test``'s training samples as its test split (e.g. a second folder of images).

        Parameters
        ----------
        test : Dataset
            Same classes (names, in order) and the same input shape per sample.

        Raises
        ------
        ValueError
            When the classes or the input shapes differ.
        """
        if [str(c) for c in test.class_names] != [str(c) for c in self.class_names]:
            raise ValueError(f"the test split's classes {test.class_names} differ from {self.class_names}")
        if self.in_memory != test.in_memory or (self.in_memory and self.input_shape != test.input_shape):
            raise ValueError("the test split's inputs differ in kind or shape from the training inputs")
        extras = {**self.extras, "test_split": "given"}
        return dataclasses.replace(self, x_test=test.x_train, y_test=test.y_train, extras=extras)

    @property
    def sample_ids(self) -> np.ndarray:
        """One id per training sample, str ``(N_train,)``: ``extras["sample_ids"]`` where the loader recorded them,
        else the image paths of a file data set, else the row positions ``"0"``, ``"1"``, ..."""
        if "sample_ids" in self.extras:
            return np.asarray(self.extras["sample_ids"], dtype=str)
        if isinstance(self.x_train, ImageFiles):
            return np.asarray(self.x_train.paths, dtype=str)
        return np.arange(len(self.y_train)).astype(str)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one network input: ``(C, H, W)`` or ``(D,)``."""
        return tuple(self.x_train.shape[1:])

    def _guess_model(self) -> str:
        if not self.is_image:
            return "mlp"
        side = self.input_shape[-1]
        if side <= 16:
            return "small_cnn"
        if side <= 64:
            return "preact_resnet18"
        return "resnet50_tv"

    def raw_features(self) -> np.ndarray:
        """Training inputs as raw, unnormalised float32 vectors ``(N, D)``, images flattened in HWC order.

        This is what the instance-dependent noise generator of Xia et al. (2020) projects (Me-Momentum feeds raw
        pixel values, not normalised ones).
        """
        if not self.in_memory:
            raise ValueError(
                f"instance-dependent noise needs the training images in memory; {self.name} is read from image files"
            )
        x = self.x_train
        if x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)
        return x.reshape(len(x), -1).astype(np.float32)

    def __repr__(self) -> str:
        shape = "files" if not self.in_memory else "x".join(str(s) for s in self.input_shape)
        classes = str(self.num_classes)
        if self.class_names != [str(i) for i in range(self.num_classes)]:  # only names that say more than indices
            shown = ", ".join(self.class_names[:6]) + (", ..." if self.num_classes > 6 else "")
            classes += f" ({shown})"
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, classes={classes}, "
            f"input={shape}, clean_train_known={self.clean_train_known})"
        )

    # ------------------------------------------------------------------ noise
    def with_noise(self, spec: str = "none", seed: int = 0, **options: Any) -> "NoisyDataset":
        """Inject label noise into the training labels and return the pair.

        Parameters
        ----------
        spec : str
            A noise spec of :func:`lnlkit.inject_noise` (``"symmetric:0.4"``, ``"cifar10n:worst"``, ...), or
            ``"none"``.  Real-noise data sets (``clean_train_known=False``) accept only ``"none"``: their labels
            are already noisy.
        seed : int
            Seed of the injector.
        **options
            Passed on to :func:`lnlkit.inject_noise`.
        """
        from lnlkit.noise import NoisyLabels, inject_noise, parse_noise_spec

        if not self.clean_train_known:
            if spec not in ("none", "real", "clean"):
                raise ValueError(
                    f"{self.name}'s training labels are taken as given (real label noise, clean labels unknown), "
                    f"so synthetic noise {spec!r} cannot be injected; use noise 'none', or pass clean_labels=True "
                    "to from_arrays to inject synthetic noise into labels you trust"
                )
            noise = NoisyLabels(
                labels=self.y_train.copy(),
                is_noisy=None,
                transition=None,
                realized_rate=None,
                spec="none",
                num_classes=self.num_classes,
                nominal_rate=None,
                ood_mask=None,
                info={"kind": "real", "note": f"real-world noise of {self.name}; clean labels unknown"},
            )
            return NoisyDataset(self, noise, seed)
        kinds = [k for k, _ in parse_noise_spec(spec)]
        kw: dict[str, Any] = dict(options)
        if "instance" in kinds:
            kw.setdefault("features", self.raw_features())
        if "asym-cifar100-superclass" in kinds:
            if "coarse_labels" not in self.extras:
                raise ValueError(
                    f"asym-cifar100-superclass needs the true coarse labels, which {self.name} does not carry; "
                    "load CIFAR-100 with load_dataset('cifar100')"
                )
            kw.setdefault("coarse_labels", self.extras["coarse_labels"])
        if any(k.startswith("cifar10n") or k.startswith("cifar100n") for k in kinds):
            kw.setdefault("cifarn_file", self._cifarn_file(kinds))
        noise = inject_noise(self.y_train, spec, self.num_classes, seed=seed, **kw)
        return NoisyDataset(self, noise, seed)

    def _cifarn_file(self, kinds: list[str]) -> Path:
        fname = "CIFAR-100_human.pt" if any(k.startswith("cifar100n") for k in kinds) else "CIFAR-10_human.pt"
        candidates = [Path(p) / fname for p in self.extras.get("cifarn_dirs", [])]
        if self.root is not None:
            candidates += [self.root / fname, self.root.parent / fname]
        for c in candidates:
            if c.is_file():
                return c
        return candidates[0] if candidates else Path(fname)


@dataclass
class NoisyDataset:
    """A :class:`Dataset` together with the noisy training labels a method trains on.

    For open-set noise the label space shrinks to the known classes: ``num_classes`` is the number of known
    classes and the test split is filtered to them (``test_index`` says which test samples were kept).

    Attributes
    ----------
    dataset : Dataset
    noise : lnlkit.noise.NoisyLabels
    seed : int
        Seed the noise was drawn with.
    """

    dataset: Dataset
    noise: Any
    seed: int = 0
    test_index: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if len(self.noise.labels) != len(self.dataset.y_train):
            raise ValueError(
                f"noisy labels ({len(self.noise.labels)}) and training samples ({len(self.dataset.y_train)}) differ"
            )
        self.test_index = np.flatnonzero(self.dataset.y_test < self.num_classes)

    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def num_classes(self) -> int:
        return int(self.noise.num_classes)

    @property
    def labels(self) -> np.ndarray:
        """Given (noisy) training labels, int64 ``(N,)``: the only labels a method may train on."""
        return self.noise.labels

    @property
    def x_train(self) -> Any:
        return self.dataset.x_train

    @property
    def x_test(self) -> Any:
        x = self.dataset.x_test
        if len(self.test_index) == len(self.dataset.y_test):
            return x
        return x.subset(self.test_index) if isinstance(x, ImageFiles) else x[self.test_index]

    @property
    def y_test(self) -> np.ndarray:
        return self.dataset.y_test[self.test_index]

    @property
    def is_noisy(self) -> np.ndarray | None:
        """True noise mask ``(N,)`` — for reporting only; no method may read it to train."""
        return self.noise.is_noisy

    def __repr__(self) -> str:
        rate = self.noise.realized_rate
        rate_s = "unknown" if rate is None else f"{rate:.3f}"
        return f"NoisyDataset({self.dataset!r}, noise={self.noise.spec!r}, realised_rate={rate_s}, seed={self.seed})"

"""Which of *my* labels are wrong?  The kit's methods as label-error finders on the user's own data.

:func:`find_label_issues` trains each requested method (``auto`` preset, :mod:`lnlkit.presets.auto`) on the given
labels, one run folder per method and seed (resumed, skipped when complete), and reads back what the method itself
believes about each sample:

1. **its clean score** (higher = cleaner), the last recorded epoch's ``clean_score`` / ``clean_prob`` signal,
   averaged over the method's networks: DivideMix's and SMR's GMM clean posterior, ProMix's ``1 - loss`` that its
   clean-sample selection ranks, Co-mining's negated noise score, Me-Momentum's margin of the given label (what its
   confident set thresholds), SOP+'s ``1 - u²``; cleanlab's self-confidence on out-of-sample probabilities;
2. **its own decision** (``flag_<method>``): not in the method's clean set (DivideMix/SMR: posterior <= 0.5 for
   both networks' majority, ProMix: outside CSS ∪ MHCS, Co-mining: outside its clean set, Me-Momentum: outside its
   confident set), SOP+'s implied label differs from the given one, cleanlab's confident-learning filter;
3. **its class probabilities** on the un-augmented training inputs from its final networks (a run's checkpoint).

Then, per sample: the **consensus** score is the mean over methods of each method's *rank percentile* (ranks, not raw
scores, because the scores live on different scales: a posterior, a margin, a negated loss), so every method weighs
the same and a saturated score (many posteriors at 1.0) cannot dominate; ``rank`` 1 is the most suspicious sample;
``is_issue`` is a majority vote of the methods' own decisions (more than half of them flag the sample); the
**suggested label** is the arg-max of the methods' mean class probabilities.

The true noise mask never enters: the data are reduced to their given labels first (:func:`given_labels`, which
also drops the noise spec, so no method can read a nominal rate); :func:`evaluate_detection` scores a ranking against
a truth the caller holds, after the fact.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lnlkit.data.dataset import Dataset, ImageFiles, NoisyDataset
from lnlkit.runs import run_folder

__all__ = [
    "DETECT_METHODS",
    "DETECT_COLUMNS",
    "SMOKE_OVERRIDES",
    "CLEANLAB",
    "given_labels",
    "find_label_issues",
    "method_detection",
    "cleanlab_detection",
    "consensus_score",
    "detection_summary",
    "write_detection",
    "evaluate_detection",
    "MethodDetection",
]

# the methods find_label_issues runs by default: the five papers' selecting methods and SOP+ (Prune4ReL prunes to a
# budget rather than judging every sample; CE has no clean score beyond its loss)
DETECT_METHODS: tuple[str, ...] = ("dividemix", "smr", "promix", "comining", "mememomentum", "sop")
CLEANLAB = "cleanlab"
# Co-mining needs the noise rate as an input; it runs after the others and takes their estimate
_NEEDS_RATE = ("comining",)
# a few epochs per method (their auto presets, shortened): notebook 20 and the tests at smoke size
SMOKE_OVERRIDES: dict[str, dict[str, Any]] = {
    "dividemix": {"epochs": 6, "warm_up": 2},
    "smr": {"epochs": 6, "warm_up": 2},
    "promix": {"epochs": 6, "warm_up": 2, "start_expand": 3},
    "comining": {"epochs": 6, "warmup_epochs": 2},
    "mememomentum": {
        "outer_loops": 1,
        "max_phase_a_epochs": 3,
        "round_epochs": 2,
        "round_milestones": (1,),
        "max_inner_rounds": 1,
    },
    "sop": {"epochs": 20},
    "cleanlab": {"epochs": 8},
}
# the columns of label_issues.csv, in order (score_<m> and flag_<m> per method are inserted before "consensus")
DETECT_COLUMNS = ("sample_id", "given_label", "given_class", "suggested_label", "suggested_class", "suggested_prob")


# ---------------------------------------------------------------------------------------------------- the data
def given_labels(data: Dataset | NoisyDataset) -> NoisyDataset:
    """``data`` with its given training labels only: no true noise mask, no clean labels, no noise spec.

    Parameters
    ----------
    data : Dataset or NoisyDataset
        A ``NoisyDataset`` (e.g. digits with injected noise, for a benchmark) keeps its noisy labels as the given
        ones; its truth stays with the caller.

    Returns
    -------
    NoisyDataset
        Over a ``Dataset`` with ``clean_train_known=False`` and ``y_train`` = the given labels; spec ``"none"``.
    """
    if isinstance(data, NoisyDataset):
        given = np.asarray(data.labels)
        dataset = data.dataset
        if data.num_classes != dataset.num_classes:
            raise ValueError(
                "open-set noise shrinks the label space; detect on a data set whose given labels use every class"
            )
    elif isinstance(data, Dataset):
        given, dataset = np.asarray(data.y_train), data
    else:
        raise TypeError(f"expected a Dataset or NoisyDataset, got {type(data).__name__}")
    extras = {k: v for k, v in dataset.extras.items() if k not in ("coarse_labels",)}
    stripped = dataclasses.replace(dataset, y_train=given.copy(), clean_train_known=False, extras=extras)
    return stripped.with_noise("none")


def _sample_ids(dataset: Dataset) -> np.ndarray:
    ids = getattr(dataset, "sample_ids", None)
    if ids is not None:
        return np.asarray(ids, dtype=str)
    if isinstance(dataset.x_train, ImageFiles):
        return np.asarray(dataset.x_train.paths, dtype=str)
    return np.arange(len(dataset.y_train)).astype(str)


# ---------------------------------------------------------------------------------------------------- one method
@dataclass
class MethodDetection:
    """What one method (over its seeds) says about each sample.

    Attributes
    ----------
    method : str
    score : ndarray float64 (N,)
        Its clean score, higher = cleaner (mean over seeds; NaN where it scored nothing).
    flagged : ndarray bool (N,)
        Its own decision that the label is wrong (majority over seeds).
    probs : ndarray float32 (N, C)
        Class probabilities of its final networks on the training inputs (mean over networks and seeds).
    runs : list of Path
        Its run folders.
    """

    method: str
    score: np.ndarray
    flagged: np.ndarray
    probs: np.ndarray
    runs: list


def _last_signals(run: Any) -> dict[str, np.ndarray]:
    """The per-sample signals of the run's last recorded epoch, as float64 / bool / int arrays."""
    signals = run.signals
    if not signals:
        raise ValueError(f"{run.path} recorded no per-sample signals")
    return {k: v[-1] for k, v in signals.items() if k != "epoch"}


def _network_mean(signals: dict[str, np.ndarray], base: str) -> np.ndarray | None:
    """Mean over the networks' ``base`` / ``base_net2`` ... signals (NaN-aware), or None when absent."""
    keys = [k for k in signals if k == base or (k.startswith(base + "_net") and k[len(base) + 4 :].isdigit())]
    if not keys:
        return None
    return _nanmean_keep(np.stack([np.asarray(signals[k], dtype=np.float64) for k in sorted(keys)]))


def _nanmean_keep(stack: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN where every entry is NaN (without numpy's warning)."""
    out = np.full(stack.shape[1], np.nan)
    seen = np.isfinite(stack).any(axis=0)
    out[seen] = np.nanmean(stack[:, seen], axis=0)
    return out


def clean_score_of(signals: dict[str, np.ndarray]) -> np.ndarray:
    """A run's clean score (higher = cleaner) from its last signals: ``clean_score``, else ``clean_prob``, else the
    negated per-sample loss (small-loss), averaged over networks.

    Parameters
    ----------
    signals : dict of ndarray (N,)

    Returns
    -------
    ndarray float64 (N,)
    """
    for base in ("clean_score", "clean_prob"):
        score = _network_mean(signals, base)
        if score is not None:
            return score
    loss = _network_mean(signals, "loss")
    if loss is None:
        raise ValueError("the run has no clean score, clean probability or loss signal to rank samples by")
    return -loss


def own_flags(signals: dict[str, np.ndarray], given: np.ndarray) -> np.ndarray:
    """A run's own decision that a label is wrong, from its last signals.

    * a ``selected`` clean set (per network): flagged when not selected by a majority of the networks
      (a tie counts as selected); samples a method held out of training (Me-Momentum's noisy validation split,
      ``holdout``) are judged by its extraction rule instead, the prediction against the given label (``pred``);
    * else a ``relabel`` signal (SOP+'s implied label): flagged where it differs from the given label;
    * else a ``pred`` signal: flagged where the network's prediction differs from the given label.

    Returns
    -------
    ndarray bool (N,)
    """
    selected = _network_mean(signals, "selected")
    if selected is not None:
        flagged = ~(np.nan_to_num(selected, nan=1.0) >= 0.5)
        if "holdout" in signals and "pred" in signals:  # never in the training set, so never "selected"
            held = np.asarray(signals["holdout"], dtype=bool)
            flagged[held] = np.asarray(signals["pred"]).astype(np.int64)[held] != given[held]
        return flagged
    for base in ("relabel", "pred"):
        if base in signals:
            target = np.asarray(signals[base]).astype(np.int64)
            return (target >= 0) & (target != given)
    raise ValueError("the run has no selection, relabelling or prediction signal to decide with")


def _train_probs(method: Any, data: NoisyDataset, out: Path, device: str) -> np.ndarray:
    """Softmax of the run's final networks over the un-augmented training inputs, averaged over networks."""
    import torch

    from lnlkit.train.driver import restore_trained
    from lnlkit.train.evaluate import predict

    ctx = restore_trained(method, data, out, device)
    cfg = method.config
    with torch.no_grad():
        probs = [
            predict(net, ctx.data, "train", cfg.eval_batch_size, cfg.evaluation_precision).softmax(1)
            for net in method.networks()
        ]
    return torch.stack(probs).mean(0).cpu().numpy().astype(np.float32)


def configure(name: str, data: NoisyDataset, preset: str = "auto", **overrides: Any):
    """``name`` configured for ``data``: the ``auto`` preset (sized to the data) or a named one, ``overrides`` on top.

    Returns
    -------
    Method
    """
    from lnlkit.methods import get_method
    from lnlkit.presets.auto import auto_method

    if preset == "auto":
        return auto_method(name, data, **overrides)
    return get_method(name, preset, **overrides)


def method_detection(
    name: str,
    data: Dataset | NoisyDataset,
    seeds: Sequence[int] = (0,),
    runs_root: str | os.PathLike | None = None,
    preset: str = "auto",
    device: str = "auto",
    progress: bool | Callable = True,
    overrides: dict | None = None,
) -> MethodDetection:
    """Train ``name`` on the given labels of ``data`` for each seed (resuming its run folders) and read back its
    clean score, its own decision and its class probabilities.

    Parameters
    ----------
    name : str
        A method of ``lnlkit.list_methods()``.
    data : Dataset or NoisyDataset
        Reduced to its given labels first (:func:`given_labels`).
    seeds : sequence of int
        Training seeds.
    runs_root : path, optional
        Runs go to ``runs_root/<method>/<data name>_given_s<seed>`` (a temporary folder when omitted).
    preset : str
        ``"auto"`` (default) or a preset name of the method.
    overrides : dict, optional
        Config fields set on top of the preset.

    Returns
    -------
    MethodDetection
    """
    import tempfile

    data = given_labels(data)
    given = np.asarray(data.labels)
    root = Path(runs_root) if runs_root is not None else Path(tempfile.mkdtemp(prefix="lnlkit-detect-"))
    scores, flags, probs, runs = [], [], [], []
    for seed in seeds:
        method = configure(name, data, preset, **(overrides or {}))
        out = run_folder(root, name, data.name, "given", seed)
        run = method.fit(data, out=out, device=device, resume=True, progress=progress, seed=int(seed))
        signals = _last_signals(run)
        scores.append(clean_score_of(signals))
        flags.append(own_flags(signals, given))
        probs.append(_train_probs(configure(name, data, preset, **(overrides or {})), data, out, device))
        runs.append(Path(out))
    with np.errstate(invalid="ignore"):
        score = _nanmean_keep(np.stack(scores))
    flagged = np.mean(np.stack(flags), axis=0) > 0.5
    return MethodDetection(name, score, flagged, np.mean(np.stack(probs), axis=0), runs)


# ---------------------------------------------------------------------------------------------------- cleanlab
def _require_cleanlab():
    try:
        import cleanlab  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "the cleanlab comparison needs cleanlab: pip install 'lnlkit[compare]' (or pip install cleanlab)"
        ) from err


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each sample ``(N,)`` in ``0..folds-1``: each class's samples shuffled (seeded) and dealt round-robin,
    so every fold holds about ``1/folds`` of every class.

    Raises
    ------
    ValueError
        When ``folds < 2`` or there are fewer samples than folds.
    """
    labels = np.asarray(labels)
    if folds < 2 or len(labels) < folds:
        raise ValueError(f"need 2 <= folds <= number of samples, got folds={folds} for {len(labels)} samples")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)  # the next class starts where this one stopped, so small classes spread over folds
    return fold


def _subset(x: Any, index: np.ndarray) -> Any:
    return x.subset(index) if isinstance(x, ImageFiles) else x[index]


def out_of_sample_probs(
    data: Dataset | NoisyDataset,
    seed: int = 0,
    folds: int = 5,
    runs_root: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool | Callable = True,
    overrides: dict | None = None,
) -> np.ndarray:
    """K-fold out-of-sample class probabilities from the kit's CE, as cleanlab recommends: for each fold, CE
    (the ``auto`` preset sized for the *whole* data set: the same network, epochs and augmentation as the kit's CE
    run) trains on the other folds and predicts the held-out one.

    Returns
    -------
    ndarray float32 (N, C)
    """
    import tempfile

    import torch

    from lnlkit.presets.auto import auto_config
    from lnlkit.train.evaluate import predict

    data = given_labels(data)
    dataset, given = data.dataset, np.asarray(data.labels)
    config, _ = auto_config("ce", data)
    config = dataclasses.replace(config, **(overrides or {}))
    fold = stratified_folds(given, folds, seed)
    root = Path(runs_root) if runs_root is not None else Path(tempfile.mkdtemp(prefix="lnlkit-cleanlab-"))
    probs = np.zeros((len(given), data.num_classes), dtype=np.float32)
    for k in range(folds):
        train_idx, held_idx = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        part = dataclasses.replace(
            dataset,
            name=f"{dataset.name}-fold{k}of{folds}",
            x_train=_subset(dataset.x_train, train_idx),
            y_train=given[train_idx],
            x_test=_subset(dataset.x_train, held_idx),
            y_test=given[held_idx],  # given labels: the fold's "test accuracy" is agreement with them, unused
            x_val=None,
            y_val=None,
            extras={},
        ).with_noise("none")
        method = _ce(config)
        out = run_folder(root, CLEANLAB, dataset.name, f"fold{k}of{folds}", seed)
        method.fit(part, out=out, device=device, resume=True, progress=progress, seed=int(seed))
        method = _ce(config)
        from lnlkit.train.driver import restore_trained

        ctx = restore_trained(method, part, out, device)
        with torch.no_grad():
            logits = predict(method.networks()[0], ctx.data, "test", config.eval_batch_size)
        probs[held_idx] = logits.softmax(1).cpu().numpy()
    return probs


def _ce(config: Any):
    from lnlkit.methods import method_class

    return method_class("ce")(dataclasses.replace(config), preset="auto")


def cleanlab_detection(
    data: Dataset | NoisyDataset,
    seeds: Sequence[int] = (0,),
    runs_root: str | os.PathLike | None = None,
    folds: int = 5,
    device: str = "auto",
    progress: bool | Callable = True,
    overrides: dict | None = None,
) -> MethodDetection:
    """cleanlab's confident learning on the kit's K-fold CE probabilities (:func:`out_of_sample_probs`).

    Score: ``cleanlab.rank.get_label_quality_scores`` (self-confidence, higher = cleaner); decision:
    ``cleanlab.filter.find_label_issues`` (prune by noise rate); probabilities: the out-of-sample ones.  Several
    seeds: mean probabilities over seeds (each its own folds), then cleanlab once on them.

    Returns
    -------
    MethodDetection
    """
    _require_cleanlab()
    from cleanlab.filter import find_label_issues as cl_find_label_issues
    from cleanlab.rank import get_label_quality_scores

    data = given_labels(data)
    given = np.asarray(data.labels)
    probs = np.mean(
        [out_of_sample_probs(data, s, folds, runs_root, device, progress, overrides) for s in seeds], axis=0
    ).astype(np.float32)
    probs = probs / probs.sum(1, keepdims=True)
    score = get_label_quality_scores(given, probs).astype(np.float64)
    flagged = np.asarray(cl_find_label_issues(given, probs), dtype=bool)
    runs = sorted(Path(runs_root).glob(f"{CLEANLAB}/*")) if runs_root is not None else []
    return MethodDetection(CLEANLAB, score, flagged, probs, runs)


# ---------------------------------------------------------------------------------------------------- consensus
def rank_percentile(score: np.ndarray) -> np.ndarray:
    """Each sample's rank percentile in ``(0, 1]`` by ``score`` (higher score = higher percentile; ties share their
    average rank; NaN scores sit at 0.5, undecided).

    Returns
    -------
    ndarray float64 (N,)
    """
    s = np.asarray(score, dtype=np.float64)
    out = np.full(len(s), 0.5)
    ok = np.isfinite(s)
    n = int(ok.sum())
    if n:
        v = s[ok]
        order = np.argsort(v, kind="stable")
        _, first, count = np.unique(v[order], return_index=True, return_counts=True)
        ranks = np.empty(n)
        ranks[order] = np.repeat(first + (count + 1) / 2.0, count)
        out[ok] = ranks / n
    return out


def consensus_score(scores: dict[str, np.ndarray]) -> np.ndarray:
    """The methods' consensus clean score ``(N,)``: the mean of their rank percentiles (higher = cleaner).

    Parameters
    ----------
    scores : dict of method -> ndarray (N,)
        Each method's clean score, higher = cleaner, on its own scale.
    """
    if not scores:
        raise ValueError("no method scores to form a consensus from")
    return np.mean([rank_percentile(s) for s in scores.values()], axis=0)


def detection_summary(frame: Any, num_classes: int, class_names: Sequence[str]) -> dict[str, Any]:
    """Counts per given class, the estimated noise rate and the estimated transition matrix of a detection.

    The matrix counts each sample once, row = its estimated true class (the suggested label where ``is_issue``,
    else the given label), column = its given label, and normalises rows (rows sum to 1; an empty row is 0).

    Returns
    -------
    dict
        ``n_samples``, ``n_issues``, ``estimated_noise_rate``, ``per_class`` (list of dicts: class, given, issues,
        issue_rate), ``transition`` (C x C list), ``transition_counts`` (C x C list).
    """
    given = frame["given_label"].to_numpy()
    issue = frame["is_issue"].to_numpy(dtype=bool)
    true_est = np.where(issue, frame["suggested_label"].to_numpy(), given)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true_est, given), 1)
    rows = counts.sum(1, keepdims=True)
    transition = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    per_class = []
    for c in range(num_classes):
        n_c = int((given == c).sum())
        k_c = int((issue & (given == c)).sum())
        per_class.append(
            {"class": str(class_names[c]), "given": n_c, "issues": k_c, "issue_rate": k_c / n_c if n_c else None}
        )
    return {
        "n_samples": int(len(given)),
        "n_issues": int(issue.sum()),
        "estimated_noise_rate": float(issue.mean()) if len(issue) else 0.0,
        "per_class": per_class,
        "transition": transition.round(6).tolist(),
        "transition_counts": counts.tolist(),
    }


def assemble(
    detections: Sequence[MethodDetection], data: NoisyDataset, sample_ids: np.ndarray, class_names: Sequence[str]
):
    """The label-issue table from the methods' detections (see :func:`find_label_issues` for its columns)."""
    import pandas as pd

    given = np.asarray(data.labels)
    names = np.asarray([str(c) for c in class_names])
    probs = np.mean([d.probs for d in detections], axis=0)
    suggested = probs.argmax(1)
    frame = pd.DataFrame(
        {
            "sample_id": sample_ids,
            "given_label": given,
            "given_class": names[given],
            "suggested_label": suggested,
            "suggested_class": names[suggested],
            "suggested_prob": probs[np.arange(len(given)), suggested].round(4),
        }
    )
    for d in detections:
        frame[f"score_{d.method}"] = d.score
    for d in detections:
        frame[f"flag_{d.method}"] = d.flagged
    frame["consensus"] = consensus_score({d.method: d.score for d in detections})
    votes = np.sum([d.flagged for d in detections], axis=0)
    frame["n_flags"] = votes
    frame["is_issue"] = votes > len(detections) / 2.0
    order = np.lexsort((np.arange(len(given)), frame["consensus"].to_numpy()))  # ascending consensus, stable
    rank = np.empty(len(given), dtype=np.int64)
    rank[order] = np.arange(1, len(given) + 1)
    frame["rank"] = rank
    frame = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    frame.attrs["methods"] = [d.method for d in detections]
    frame.attrs["summary"] = detection_summary(frame, data.num_classes, class_names)
    frame.attrs["runs"] = {d.method: [str(r) for r in d.runs] for d in detections}
    return frame


def find_label_issues(
    data: Dataset | NoisyDataset,
    methods: Iterable[str] = DETECT_METHODS,
    seeds: Sequence[int] = (0,),
    out: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool | Callable = True,
    preset: str = "auto",
    overrides: dict[str, dict] | None = None,
    folds: int = 5,
    runs_root: str | os.PathLike | None = None,
    train_only: bool = False,
):
    """Find the training samples whose given labels look wrong, with each method and their consensus.

    Parameters
    ----------
    data : Dataset or NoisyDataset
        The user's data (``lnlkit.load_folder``, ``lnlkit.load_table``, ``Dataset.from_arrays``); a
        ``NoisyDataset`` is reduced to its given labels (its truth is never read).
    methods : iterable of str
        Kit methods (default :data:`DETECT_METHODS`) and/or ``"cleanlab"`` (confident learning on the kit's K-fold
        CE probabilities; needs ``pip install 'lnlkit[compare]'``).
    seeds : sequence of int
        Training seeds; each method's score is its mean over seeds.
    out : path, optional
        Folder of the run folders (``out/runs/<method>/...``, resumed and skipped when complete) and, written at the
        end, ``label_issues.csv``, ``label_summary.json`` and ``label_transition.csv``.  A temporary folder when
        omitted (nothing written besides the runs).
    device : {"auto", "cpu", "cuda"}
    progress : bool or callable
        Each run's progress bar (see ``Method.fit``).
    preset : str
        ``"auto"`` (default) or a preset every method has.
    overrides : dict, optional
        Per method, config fields on top of the preset, e.g. ``{"dividemix": {"epochs": 30}}``.
    folds : int
        Folds of cleanlab's out-of-sample probabilities.
    runs_root : path, optional
        Where the run folders go (default ``out/runs``).
    train_only : bool
        Train the runs and return the frame without writing the files (a batch job's part).

    Returns
    -------
    pandas.DataFrame
        One row per training sample, most suspicious first: ``sample_id`` (row index, file path or id column),
        ``given_label`` / ``given_class``, ``suggested_label`` / ``suggested_class`` / ``suggested_prob`` (arg-max of
        the methods' mean class probabilities), ``score_<method>`` (its clean score, higher = cleaner, on its own
        scale), ``flag_<method>`` (its own decision), ``consensus`` (mean rank percentile, in (0, 1], higher =
        cleaner), ``n_flags``, ``is_issue`` (flagged by more than half of the methods) and ``rank`` (1 = lowest
        consensus).  ``frame.attrs["summary"]``: :func:`detection_summary`; ``frame.attrs["runs"]``: the run
        folders.
    """
    methods = [str(m).lower() for m in methods]
    if not methods:
        raise ValueError("pass at least one method")
    if len(set(methods)) != len(methods):
        raise ValueError(f"a method is named twice in {methods}")
    from lnlkit.methods import method_class

    for m in methods:
        if m != CLEANLAB:
            method_class(m)  # unknown names fail before any training
    if CLEANLAB in methods:
        _require_cleanlab()
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("pass at least one seed")
    overrides = {k.lower(): dict(v) for k, v in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(methods))
    if unknown:
        raise ValueError(f"overrides for method(s) not run: {', '.join(unknown)}")
    dataset = data.dataset if isinstance(data, NoisyDataset) else data
    sample_ids = _sample_ids(dataset)
    given = given_labels(data)
    if runs_root is None and out is not None:
        runs_root = Path(out) / "runs"
    # Co-mining needs the noise rate: it runs last and takes the other methods' median flagged fraction
    ordered = [m for m in methods if m not in _NEEDS_RATE] + [m for m in methods if m in _NEEDS_RATE]
    detections: list[MethodDetection] = []
    seconds: dict[str, float] = {}
    for name in ordered:
        extra = dict(overrides.get(name, {}))
        start = time.perf_counter()
        if name == CLEANLAB:
            detections.append(cleanlab_detection(given, seeds, runs_root, folds, device, progress, extra))
            seconds[name] = time.perf_counter() - start
            continue
        if name in _NEEDS_RATE and "forget_rate" not in extra and "closeset_ratio" not in extra:
            if not detections:
                raise ValueError(
                    f"{name} needs the noise rate (forget_rate); set it in overrides={{'{name}': "
                    "{'forget_rate': r}} or run it with other methods, whose estimate it then uses"
                )
            extra["forget_rate"] = float(np.clip(np.median([d.flagged.mean() for d in detections]), 0.0, 0.95))
        detections.append(method_detection(name, given, seeds, runs_root, preset, device, progress, extra))
        seconds[name] = time.perf_counter() - start
    by_name = {d.method: d for d in detections}
    frame = assemble([by_name[m] for m in methods], given, sample_ids, dataset.class_names)
    frame.attrs["seconds"] = seconds  # wall seconds per method in this call (a resumed run counts only the rest)
    frame.attrs["skipped"] = list(dataset.extras.get("skipped", []))  # unreadable files the loader left out
    if out is not None and not train_only:
        write_detection(frame, out)
    return frame


def write_detection(frame: Any, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``label_issues.csv`` (the frame), ``label_summary.json`` (its summary, methods and runs) and
    ``label_transition.csv`` (the estimated transition matrix with class names) to ``out``, atomically.

    Returns
    -------
    dict of str -> Path
    """
    import pandas as pd

    from lnlkit.train.recorder import atomic_write_bytes, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = frame.attrs.get("summary", {})
    paths = {
        "issues": out / "label_issues.csv",
        "summary": out / "label_summary.json",
        "transition": out / "label_transition.csv",
    }
    atomic_write_bytes(paths["issues"], frame.to_csv(index=False, float_format="%.6g").encode())
    extra = {key: frame.attrs.get(key) for key in ("methods", "runs", "seconds", "skipped")}
    write_json(paths["summary"], {**summary, **extra})
    names = [row["class"] for row in summary.get("per_class", [])]
    if names:
        matrix = pd.DataFrame(summary["transition"], index=names, columns=names)
        matrix.index.name = "estimated_true \\ given"
        atomic_write_bytes(paths["transition"], matrix.to_csv(float_format="%.4f").encode())
    return paths


# ---------------------------------------------------------------------------------------------------- evaluation
def evaluate_detection(frame: Any, is_noisy: np.ndarray, sample_order: np.ndarray | None = None) -> dict[str, Any]:
    """Score a detection against a known truth (benchmarks only; the truth never reaches the detection).

    Parameters
    ----------
    frame : DataFrame
        From :func:`find_label_issues` (any row order: rows are matched by ``sample_id`` through ``sample_order``,
        or by the original position when ``sample_id`` holds row indices).
    is_noisy : ndarray bool (N,)
        True noise mask, in the data set's sample order.
    sample_order : ndarray of str (N,), optional
        The data set's sample ids in order (default: ``"0".."N-1"``).

    Returns
    -------
    dict
        Per score column (each ``score_<method>`` and ``consensus``): ``auroc`` of the score for the clean class,
        ``precision_at_k`` / ``recall_at_k`` at ``k`` = the true number of noisy labels (the k lowest scores);
        per decision (each ``flag_<method>`` and ``is_issue``): ``flag_precision`` / ``flag_recall``.
    """
    from lnlkit.train.recorder import auroc

    is_noisy = np.asarray(is_noisy, dtype=bool)
    ids = np.arange(len(is_noisy)).astype(str) if sample_order is None else np.asarray(sample_order, dtype=str)
    position = {s: i for i, s in enumerate(ids)}
    idx = np.asarray([position[str(s)] for s in frame["sample_id"]])
    truth = is_noisy[idx]
    k = int(truth.sum())
    out: dict[str, Any] = {"n": int(len(truth)), "n_noisy": k}
    for col in [c for c in frame.columns if c.startswith("score_")] + ["consensus"]:
        score = frame[col].to_numpy(dtype=np.float64)
        name = "consensus" if col == "consensus" else col[len("score_") :]
        top = np.argsort(np.nan_to_num(score, nan=np.inf), kind="stable")[:k]
        hits = int(truth[top].sum())
        out[name] = {
            "auroc": auroc(score, ~truth),
            "precision_at_k": hits / k if k else float("nan"),
            "recall_at_k": hits / k if k else float("nan"),
        }
    for col in [c for c in frame.columns if c.startswith("flag_")] + ["is_issue"]:
        flag = frame[col].to_numpy(dtype=bool)
        name = "consensus" if col == "is_issue" else col[len("flag_") :]
        entry = out.setdefault(name, {})
        entry["flag_precision"] = float(truth[flag].mean()) if flag.any() else float("nan")
        entry["flag_recall"] = float(flag[truth].mean()) if k else float("nan")
        entry["n_flagged"] = int(flag.sum())
    return out


# ---------------------------------------------------------------------------------------------------- the CLI's data
def load_detect_data(
    spec: str,
    label: str | None = None,
    root: str | os.PathLike | None = None,
    noise: str = "none",
    seed: int = 0,
    holdout: float | None = None,
    id_column: str | None = None,
) -> Dataset | NoisyDataset:
    """The data ``lnlkit detect DATA`` names.

    * a folder: :func:`lnlkit.load_folder` (one sub-folder per class);
    * a ``.csv`` file with ``label``: :func:`lnlkit.load_table` (numeric columns as features, ``id_column`` the
      sample ids); without ``label``:
      a ``path,label`` list of images (:func:`lnlkit.load_folder` with ``csv=``);
    * a registered data set name (``digits``, ``cifar10``, ...): :func:`lnlkit.load_dataset`; ``noise`` then may
      inject synthetic noise for a benchmark (the truth stays out of the detection).

    Raises
    ------
    ValueError
        When ``spec`` is neither an existing path nor a data set name, or ``noise`` is given for the user's files.
    """
    from lnlkit.data import DATASETS, load_dataset

    path = Path(spec)
    user = path.exists()
    if user and noise not in ("none", "", None):
        raise ValueError("--noise injects synthetic noise into a benchmark data set; your own data keep their labels")
    if path.is_dir():
        from lnlkit.data.user import load_folder

        return load_folder(path, holdout=holdout, seed=seed)
    if path.is_file() and path.suffix.lower() == ".csv":
        from lnlkit.data.user import load_folder, load_table

        if label is not None:
            return load_table(path, label=label, id_column=id_column, holdout=holdout, seed=seed)
        return load_folder(path.parent, csv=path, holdout=holdout, seed=seed)
    if user:
        raise ValueError(f"{spec}: expected a folder of class sub-folders or a .csv file")
    if str(spec).lower() not in DATASETS:
        raise ValueError(
            f"{spec!r} is neither an existing folder or .csv file nor a data set name ({', '.join(DATASETS)})"
        )
    return load_dataset(spec, root).with_noise(noise or "none", seed=seed)


# ---------------------------------------------------------------------------------------------------- the batch
def run_detect_batch(
    argv: Sequence[str],
    sets: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    data: Dataset | NoisyDataset,
    out: str | os.PathLike,
    folds: int = 5,
    forget_rate: Callable[[], float] | None = None,
    devices: str | Sequence[str] | None = None,
    executor: str = "local",
    slurm: Any = None,
    echo: Callable[[str], None] = print,
) -> list:
    """Train the runs of a detection as batch jobs (one ``lnlkit detect --train-only`` process per method and seed,
    :class:`lnlkit.reproduce.CommandJob`) on device slots or SLURM, skipping complete runs; methods that need the
    noise rate (Co-mining) run in a second stage with ``forget_rate()``.

    Parameters
    ----------
    argv : sequence of str
        The ``lnlkit detect`` arguments naming the data and the output (repeated in every job).
    sets : sequence of str
        The ``--set METHOD.KEY=VALUE`` items; each job gets its own method's.
    forget_rate : callable, optional
        Called after the first stage: the noise-rate estimate handed to the second stage.

    Returns
    -------
    list of JobOutcome
    """
    from lnlkit import reproduce as rp

    name = given_labels(data).name
    runs_root = Path(out) / "runs"

    def job(method: str, seed: int, extra: Sequence[str] = ()) -> Any:
        if method == CLEANLAB:
            runs = tuple(run_folder(runs_root, CLEANLAB, name, f"fold{k}of{folds}", seed) for k in range(folds))
        else:
            runs = (run_folder(runs_root, method, name, "given", seed),)
        own = [x for item in sets if item.split(".", 1)[0].lower() == method for x in ("--set", item)]
        command = ["detect", *argv, *own, *extra, "--methods", method, "--seeds", str(seed), "--train-only", "--quiet"]
        params = {"argv": command, "device": "auto"}
        return rp.CommandJob(f"detect/{method}/s{seed}", params, runs, Path(out) / "logs" / f"{method}_s{seed}.log")

    slots = rp._check_executor(executor, devices, None, slurm) or ["cpu"]
    outcomes: list = []
    first = [m for m in methods if m not in _NEEDS_RATE]
    second = [m for m in methods if m in _NEEDS_RATE]
    for stage, extra in ((first, ()), (second, None)):
        if not stage:
            continue
        if extra is None:
            rate = forget_rate() if forget_rate is not None else None
            extra = [] if rate is None else [item for m in stage for item in ("--set", f"{m}.forget_rate={rate!r}")]
        todo = [job(m, s, extra) for m in stage for s in seeds]
        for j in todo:
            if j.is_complete():
                echo(f"skip  {j.name} (complete)")
        todo = [j for j in todo if not j.is_complete()]
        if not todo:
            continue
        if executor == "slurm":
            rp._run_slurm(todo, rp.default_notebooks_dir(), slurm, None, Path(out), echo, outcomes)
        else:
            rp._run_pool(todo, rp.default_notebooks_dir(), rp._job_env(1), None, slots, echo, outcomes)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            break
    return outcomes

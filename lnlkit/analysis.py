"""Analyses of finished runs that use the truth (the true noise mask, the true labels) — for reporting only.

The methods never see the truth; these functions read a run folder afterwards and measure what a method did against
it, for the notebooks and :mod:`lnlkit.plots`.

Me-Momentum (``lnlkit.methods.me_momentum``): :func:`confident_set_rounds` lists every extraction of the confident
set with how many of its members are truly clean, and :func:`round_changes` says which samples one extraction added
and dropped.
"""

from __future__ import annotations

import numpy as np

from lnlkit.runs import RunResult

__all__ = ["confident_set_rounds", "round_changes"]


# ---------------------------------------------------------------------------------------------------- Me-Momentum
def _round_rows(run: RunResult) -> list[tuple[int, int, int, int]]:
    """(outer, round, epoch, signal row) of every recorded epoch that started an inner round with an extraction."""
    sig_epochs = [int(e) for e in run.signals.get("epoch", [])]
    rows = []
    for r in run.history:
        if r.get("phase") == "round" and r.get("epoch_in_phase") == 0 and "n_extracted" in r:
            if int(r["epoch"]) in sig_epochs:
                rows.append((int(r["outer"]), int(r["round"]), int(r["epoch"]), sig_epochs.index(int(r["epoch"]))))
    return rows


def round_changes(run: RunResult, outer: int, round: int) -> dict[str, np.ndarray]:
    """What the extraction at the start of inner round ``round`` of outer loop ``outer`` changed (analysis only:
    uses the recorded signals and, for the caller's plots, the true noise mask of the run folder).

    Parameters
    ----------
    run : RunResult
        A Me-Momentum run folder with signals recorded at every epoch (``record_signals_every=1``).

    Returns
    -------
    dict
        ``selected`` bool (N,): the extracted set; ``before`` bool (N,): the training set just before;
        ``added`` / ``dropped`` int64 indices; ``confidence_before`` float (N,): the probability the network of the
        epoch before gave each sample's label (NaN if not recorded) — the "hard" samples a round adds have low
        values.
    """
    rows = {(o, r): (epoch, row) for o, r, epoch, row in _round_rows(run)}
    if (outer, round) not in rows:
        raise ValueError(f"no recorded extraction for outer loop {outer}, round {round}; recorded: {sorted(rows)}")
    epoch, row = rows[(outer, round)]
    if row == 0:
        raise ValueError("the extraction epoch is the first recorded epoch: nothing to compare with")
    sig = run.signals
    selected = np.asarray(sig["selected"][row], dtype=bool)
    before = np.asarray(sig["selected"][row - 1], dtype=bool)
    conf = (
        np.asarray(sig["confidence"][row - 1], dtype=np.float64)
        if "confidence" in sig
        else np.full(len(selected), np.nan)
    )
    return {
        "selected": selected,
        "before": before,
        "added": np.flatnonzero(selected & ~before),
        "dropped": np.flatnonzero(before & ~selected),
        "confidence_before": conf,
        "epoch": epoch,
    }


def confident_set_rounds(run: RunResult):
    """The confident set round by round: one row per recorded extraction.

    Returns
    -------
    pandas.DataFrame
        ``outer``, ``round``, ``epoch``, ``size``, ``truly_clean`` (members whose given label is the true one),
        ``precision``, ``recall`` (of the clean training-pool samples), ``added``, ``added_clean``, ``dropped``,
        ``dropped_clean``, ``median_confidence_added`` / ``median_confidence_kept`` (the previous epoch's
        probability of the given label), ``best_val`` of the round.
    """
    import pandas as pd

    is_noisy = None if run.is_noisy is None or len(run.is_noisy) == 0 else np.asarray(run.is_noisy, dtype=bool)
    holdout = run.signals.get("holdout")
    out = []
    for outer, rnd, epoch, row in _round_rows(run):
        if row == 0:
            continue
        ch = round_changes(run, outer, rnd)
        sel = ch["selected"]
        pool = ~np.asarray(holdout[row], dtype=bool) if holdout is not None else np.ones(len(sel), dtype=bool)
        rec = {
            "outer": outer,
            "round": rnd,
            "epoch": epoch,
            "size": int(sel.sum()),
            "added": len(ch["added"]),
            "dropped": len(ch["dropped"]),
        }
        if is_noisy is not None:
            clean = ~is_noisy
            rec.update(
                truly_clean=int((sel & clean).sum()),
                precision=float((sel & clean).sum() / max(sel.sum(), 1)),
                recall=float((sel & clean).sum() / max((clean & pool).sum(), 1)),
                added_clean=int(clean[ch["added"]].sum()),
                dropped_clean=int(clean[ch["dropped"]].sum()),
            )
        kept = sel & ch["before"]
        conf = ch["confidence_before"]
        rec["median_confidence_added"] = float(np.median(conf[ch["added"]])) if len(ch["added"]) else float("nan")
        rec["median_confidence_kept"] = float(np.median(conf[kept])) if kept.any() else float("nan")
        ends = [
            r for r in run.history if r.get("outer") == outer and r.get("round") == rnd and r.get("phase") == "round"
        ]
        rec["best_val"] = ends[-1].get("best_val") if ends else None
        out.append(rec)
    return pd.DataFrame(out)

"""bf16 against fp32 autocast on the CPU: every method's digits preset over noise settings × seeds (prints markdown).

    python bench/precision_digits.py [--methods ce dividemix ...] [--noises symmetric:0.4 pairflip:0.4]
                                     [--seeds 0 1 2] [--precisions fp32 bf16] [--jobs 2]
                                     [--out runs/precision-digits] [--set key=value ...]

Each run is one process with one torch thread (CPU results depend on the thread count); ``--jobs`` runs that many
at once.  Run folders are ``<out>/<method>+<precision>/digits_<noise>_s<seed>``; complete ones are read back, not
rerun, so an interrupted measurement resumes.  ``--set`` overrides apply to every method (e.g. ``--set epochs=2`` for
a smoke test).

Columns: the reported test accuracy (the method's ``reported_as``), the final selection precision and recall (where
the method selects samples), each as mean ± std over the seeds; on the bf16 rows the difference of the means
bf16 − fp32 and, in brackets, the seed-to-seed std pooled over both precisions, so a difference well inside the
bracket is no difference at this number of seeds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np

DEFAULT_METHODS = ["ce", "dividemix", "smr", "promix", "comining", "mememomentum", "sop", "prune4rel"]
METRICS = ("reported", "sel_precision", "sel_recall")


def run_one(job: tuple[str, str, int, str, str, list[str]]) -> tuple[str, str, int, str, dict]:
    """Train (or read back) one run; returns its key and the metrics of ``result.json``."""
    method, noise, seed, precision, out_root, overrides = job
    import torch

    torch.set_num_threads(1)
    import lnlkit
    from lnlkit.methods import method_class, parse_overrides
    from lnlkit.reproduce import run_folder

    out = run_folder(out_root, method, "digits", noise, seed, variant=precision)
    result_file = out / "result.json"
    if not (result_file.exists() and json.loads(result_file.read_text()).get("status") == "complete"):
        over = parse_overrides(method_class(method).Config, overrides)
        over["precision"] = precision
        data = lnlkit.load_dataset("digits").with_noise(noise, seed=seed)
        lnlkit.get_method(method, preset="digits", **over).fit(data, out=out, device="cpu", resume=True, progress=False)
    result = json.loads(result_file.read_text())
    return method, noise, seed, precision, {k: result.get(k) for k in METRICS}


def _stats(values: list) -> tuple[float, float]:
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    if len(arr) == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def _fmt(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f}"


def table(results: dict, methods: list[str], noises: list[str], precisions: list[str]) -> str:
    """The markdown table of ``results[(method, noise, seed, precision)] = metrics``."""
    digits = {"reported": 2, "sel_precision": 3, "sel_recall": 3}
    head = ["method", "noise", "precision", "seeds", "reported", "sel. precision", "sel. recall"]
    base = precisions[0]
    head += [f"Δ {m} vs {base} (pooled seed std)" for m in ("reported", "sel. prec.", "sel. rec.")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        for noise in noises:
            stats = {}
            for prec in precisions:
                rows = [v for (m, n, s, p), v in sorted(results.items()) if (m, n, p) == (method, noise, prec)]
                stats[prec] = {k: _stats([r[k] for r in rows]) for k in METRICS}
                cells = [method, noise, prec, str(len(rows))]
                cells += [_fmt(*stats[prec][k], digits[k]) for k in METRICS]
                if prec == base or base not in stats:
                    cells += [""] * 3
                else:
                    for k in METRICS:
                        (m1, s1), (m0, s0) = stats[prec][k], stats[base][k]
                        if not (np.isfinite(m1) and np.isfinite(m0)):
                            cells.append("–")
                            continue
                        pooled = np.sqrt((s0**2 + s1**2) / 2) if np.isfinite(s0) and np.isfinite(s1) else np.nan
                        cells.append(f"{m1 - m0:+.{digits[k]}f} ({pooled:.{digits[k]}f})")
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--noises", nargs="+", default=["symmetric:0.4", "pairflip:0.4"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one process and one torch thread each")
    parser.add_argument("--out", default="runs/precision-digits")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--table", default=None, help="also write the markdown table to this file")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    jobs = [
        (m, n, s, p, args.out, args.overrides)
        for m in args.methods
        for n in args.noises
        for s in args.seeds
        for p in args.precisions
    ]
    results = {}
    if args.jobs == 1:
        done = map(run_one, jobs)
    else:
        pool = mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1)
        done = pool.imap_unordered(run_one, jobs)
    for i, (m, n, s, p, metrics) in enumerate(done, 1):
        results[(m, n, s, p)] = metrics
        print(
            f"[{i}/{len(jobs)}] {m} {n} seed {s} {p}: " + ", ".join(f"{k} {v}" for k, v in metrics.items()), flush=True
        )
    if args.jobs > 1:
        pool.close()
        pool.join()
    text = table(results, args.methods, args.noises, args.precisions)
    print(text)
    if args.table:
        Path(args.table).write_text(text + "\n")


if __name__ == "__main__":
    main()

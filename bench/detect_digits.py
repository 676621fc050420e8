"""Label-error detection on the digits: every kit method, their consensus and cleanlab (same network), measured.

Each cell (input kind, noise setting, seed) runs ``lnlkit.find_label_issues`` on the digits' *given* noisy labels
(the truth is kept here and used only by ``evaluate_detection`` afterwards), in its own process with one torch
thread, and writes ``<out>/cells/<input>_<noise>_s<seed>.json``; a rerun skips the cells done.  Then the table:
AUROC of each score against the true noise mask, precision@k (k = the true number of noisy labels; recall@k is the
same number at this k), precision / recall of the flagged set, and wall seconds, mean ± std over the seeds done.

    python bench/detect_digits.py                      # 3 seeds, images and flat features, 2 processes
    python bench/detect_digits.py --seeds 0 --inputs images --jobs 1
    python bench/detect_digits.py --table-only         # tabulate the cells written so far

``make detect-bench`` runs the first line; the table goes to ``<out>/detect_digits.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

NOISES = ("symmetric:0.2", "symmetric:0.5", "symmetric:0.8", "pairflip:0.4", "instance:0.4")
INPUTS = ("images", "flat")
METHODS = ("dividemix", "smr", "promix", "comining", "mememomentum", "sop", "cleanlab")
ROOT = Path(__file__).resolve().parent


def digits_input(kind: str):
    """The embedded digits as 8x8 images or as the 64 flat features (per-feature standardised)."""
    import lnlkit

    digits = lnlkit.load_dataset("digits")
    if kind == "images":
        return digits
    flat_train = digits.x_train.reshape(len(digits.x_train), -1)
    scaled = flat_train / digits.pixel_scale
    std = scaled.std(0)
    return dataclasses.replace(
        digits,
        name="digits-flat",
        x_train=flat_train,
        x_test=digits.x_test.reshape(len(digits.x_test), -1),
        mean=tuple(scaled.mean(0)),
        std=tuple(np.where(std > 1e-8, std, 1.0)),
        default_model="auto",
    )


def cell_name(kind: str, noise: str, seed: int) -> str:
    return f"{kind}_{noise.replace(':', '-')}_s{seed}"


def run_cell(kind: str, noise: str, seed: int, out: Path, methods: list[str], rescore: dict | None = None) -> dict:
    """One cell, in this process: detection on the given labels, then its evaluation against the truth.

    ``rescore``: the cell's earlier result; its runs are complete and only read back (after a change to how scores
    or decisions are read), Co-mining at the forget rate it was trained with, the earlier wall seconds kept."""
    from lnlkit.detect import evaluate_detection, find_label_issues

    noisy = digits_input(kind).with_noise(noise, seed=seed)
    folder = out / "runs" / cell_name(kind, noise, seed)
    if rescore is not None:
        frame = _reread(noisy, folder, methods, seed)
        return {**rescore, "metrics": evaluate_detection(frame, noisy.is_noisy), "rescored": True}
    start = time.perf_counter()
    frame = find_label_issues(noisy, methods=methods, seeds=(seed,), out=folder, device="cpu", progress=False)
    wall = time.perf_counter() - start
    metrics = evaluate_detection(frame, noisy.is_noisy)  # the truth, after the fact
    return {
        "input": kind,
        "noise": noise,
        "seed": seed,
        "realized_rate": noisy.noise.realized_rate,
        "metrics": metrics,
        "seconds": frame.attrs["seconds"],
        "wall_s": wall,
    }


def _by_input(out: Path):
    """Per input kind with cells done: (kind, its cells, the noise settings done, the score names)."""
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    for kind in INPUTS:
        mine = [c for c in cells if c["input"] == kind]
        if mine:
            noises = [n for n in NOISES if any(c["noise"] == n for c in mine)]
            yield kind, mine, noises, [m for m in (*METHODS, "consensus") if m in mine[0]["metrics"]]


def _reread(noisy, folder: Path, methods: list[str], seed: int):
    """The detection table from a cell's complete runs, read back without ``fit`` (whose resume check refuses a run
    whose config has gained a field since, e.g. a new switch that does not change what was trained)."""
    import lnlkit
    from lnlkit import detect
    from lnlkit.runs import run_folder

    data = detect.given_labels(noisy)
    found = []
    for name in methods:
        if name == "cleanlab":
            found.append(detect.cleanlab_detection(data, (seed,), folder / "runs", device="cpu", progress=False))
            continue
        out = run_folder(folder / "runs", name, data.name, "given", seed)
        run = lnlkit.load_run(out)
        trained = run.config["hyperparameters"]
        signals = detect._last_signals(run)
        method = (
            detect.configure(name, data, "auto", forget_rate=trained["forget_rate"])
            if name == "comining"
            else (detect.configure(name, data, "auto"))
        )
        probs = detect._train_probs(method, data, out, "cpu")
        score, flags = detect.clean_score_of(signals), detect.own_flags(signals, data.labels)
        found.append(detect.MethodDetection(name, score, flags, probs, [out]))
    return detect.assemble(found, data, data.dataset.sample_ids, data.dataset.class_names)


def tabulate(out: Path) -> str:
    lines = []
    for kind, mine, noises, names in _by_input(out):
        for metric, label in (
            ("auroc", "AUROC"),
            ("precision_at_k", "precision@k (k = true number of noisy labels; = recall@k)"),
            ("flag_precision", "precision of the flagged set"),
            ("flag_recall", "recall of the flagged set"),
            ("seconds", "wall seconds (one torch thread)"),
        ):
            lines.append(f"\n**{kind}: {label}**, mean ± std over seeds (n = seeds done)\n")
            lines.append("| Method | " + " | ".join(noises) + " |")
            lines.append("|---|" + ":---:|" * len(noises))
            for name in names:
                row = []
                for noise in noises:
                    vals = []
                    for c in mine:
                        if c["noise"] != noise:
                            continue
                        if metric == "seconds":
                            v = c["wall_s"] if name == "consensus" else c["seconds"].get(name)
                        else:
                            v = c["metrics"].get(name, {}).get(metric)
                        if v is not None:
                            vals.append(float(v))
                    if not vals:
                        row.append("—")
                    elif metric == "seconds":
                        row.append(f"{np.mean(vals):.0f}")
                    else:
                        row.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f} (n={len(vals)})")
                lines.append(f"| {'all (consensus)' if name == 'consensus' else name} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def summary_table(out: Path) -> str:
    """The README's table: per input kind, each method's AUROC / precision@k (mean over the seeds done), the
    consensus and cleanlab; the best kit score of each column in bold, and the wall seconds per cell."""
    short = {"symmetric:0.2": "Sym. 20%", "symmetric:0.5": "Sym. 50%", "symmetric:0.8": "Sym. 80%"}
    short.update({"pairflip:0.4": "Pair 40%", "instance:0.4": "Inst. 40%"})
    lines = []
    for kind, mine, noises, names in _by_input(out):
        seeds = {n: sorted(c["seed"] for c in mine if c["noise"] == n) for n in noises}

        def mean(name: str, noise: str, metric: str) -> float:
            return float(np.mean([c["metrics"][name][metric] for c in mine if c["noise"] == noise]))

        ns = ", ".join(f"{short[n]}: {len(seeds[n])}" for n in noises)
        lines.append(f"\n**Digits, {kind}** — AUROC / precision@k, mean over seeds ({ns})\n")
        lines.append("| Method | " + " | ".join(short[n] for n in noises) + " |")
        lines.append("|---|" + ":---:|" * len(noises))
        kit = [m for m in names if m != "cleanlab"]
        best = {
            n: (max(mean(m, n, "auroc") for m in kit), max(mean(m, n, "precision_at_k") for m in kit)) for n in noises
        }
        for name in names:
            row = []
            for n in noises:
                a, p = mean(name, n, "auroc"), mean(name, n, "precision_at_k")
                fa = f"**{a:.3f}**" if name != "cleanlab" and a == best[n][0] else f"{a:.3f}"
                fp = f"**{p:.3f}**" if name != "cleanlab" and p == best[n][1] else f"{p:.3f}"
                row.append(f"{fa} / {fp}")
            label = {"consensus": "consensus of the six", "cleanlab": "cleanlab (same CE network, 5 folds)"}.get(
                name, name
            )
            lines.append(f"| {label} | " + " | ".join(row) + " |")
        secs = []
        for n in noises:
            kit_s = np.mean(
                [sum(v for m, v in c["seconds"].items() if m != "cleanlab") for c in mine if c["noise"] == n]
            )
            cl_s = np.mean([c["seconds"].get("cleanlab", np.nan) for c in mine if c["noise"] == n])
            secs.append(f"{kit_s:.0f} / {cl_s:.0f}")
        lines.append("| wall s: six methods / cleanlab | " + " | ".join(secs) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=INPUTS)
    parser.add_argument("--noises", nargs="+", default=list(NOISES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "results" / "detect"))
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--rescore", action="store_true", help="re-read the complete cells' runs and re-evaluate")
    parser.add_argument("--cell", nargs=3, metavar=("INPUT", "NOISE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.cell:
        kind, noise, seed = args.cell[0], args.cell[1], int(args.cell[2])
        path = out / "cells" / f"{cell_name(kind, noise, seed)}.json"
        earlier = json.loads(path.read_text()) if args.rescore and path.exists() else None
        result = run_cell(kind, noise, seed, out, args.methods, earlier)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, path)
        return 0
    if not args.table_only:
        todo = [
            (kind, noise, seed)
            for seed in args.seeds
            for kind in args.inputs
            for noise in args.noises
            if (out / "cells" / f"{cell_name(kind, noise, seed)}.json").exists() == args.rescore
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

        def one(cell):
            kind, noise, seed = cell
            log = out / "logs" / f"{cell_name(kind, noise, seed)}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, __file__, "--out", str(out), "--methods", *args.methods, "--cell", kind, noise]
            cmd += [str(seed), *(["--rescore"] if args.rescore else [])]
            with open(log, "wb") as fh:
                code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
            print(f"{'ok' if code == 0 else 'FAILED'} {cell_name(kind, noise, seed)} (log {log})", flush=True)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(one, todo))
    table = (summary_table(out) + tabulate(out)) if (out / "cells").is_dir() else "no cells yet\n"
    (out / "detect_digits.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

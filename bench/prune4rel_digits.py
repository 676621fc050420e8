"""The issue-8 digits grid: SOP+ on all data (symmetric:0.4, pairflip:0.4) and Prune4ReL vs Uniform with SOP+ as
re-labeller at symmetric:0.4, selection ratios 0.2 and 0.4, seeds 0, 1, 2 (one process, one thread; prints a table).

    OMP_NUM_THREADS=1 python bench/prune4rel_digits.py [--out runs/issue8] [--only sop prune4rel prune:uniform]

Runs are kept in ``--out`` and resumed (a complete run is not retrained), so the table can be re-printed at once.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import lnlkit
from lnlkit.reproduce import run_folder

GRID = [("sop", noise, None) for noise in ("symmetric:0.4", "pairflip:0.4")] + [
    (m, "symmetric:0.4", r) for r in (0.2, 0.4) for m in ("prune4rel", "prune:uniform")
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/issue8")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--ratios", type=float, nargs="+", default=None, help="only these selection ratios")
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits = lnlkit.load_dataset("digits")
    rows = []
    for method, noise, ratio in GRID:
        if args.only and method not in args.only:
            continue
        if args.ratios and ratio is not None and ratio not in args.ratios:
            continue
        for seed in args.seeds:
            overrides = {} if ratio is None else {"ratio": ratio}
            variant = None if ratio is None else f"f{ratio}"
            out = run_folder(args.out, method.replace(":", "-"), "digits", noise, seed, variant=variant)
            run = lnlkit.get_method(method, preset="digits", **overrides).fit(
                digits.with_noise(noise, seed=seed), out=out, resume=True, progress=False
            )
            r = run.result
            rows.append(
                dict(
                    method=method,
                    noise=noise,
                    ratio=ratio,
                    seed=seed,
                    reported=r["reported"],
                    best=r["test_acc_best"],
                    sel_precision=r.get("sel_precision"),
                    sel_recall=r.get("sel_recall"),
                    wall_s=r["wall_s"],
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    print("\n| method | noise | f | seed | reported (last) | best | S precision | S recall | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["method"], r["noise"], r["ratio"]) for r in rows}, key=lambda k: (k[1], str(k[2]), k[0]))

    def fmt(v, d=2):
        return "" if v is None else f"{v:.{d}f}"

    for key in keys:
        group = [r for r in rows if (r["method"], r["noise"], r["ratio"]) == key]
        for r in group:
            print(
                f"| {r['method']} | {r['noise']} | {r['ratio'] or 1.0} | {r['seed']} | {fmt(r['reported'])} | "
                f"{fmt(r['best'])} | {fmt(r['sel_precision'], 3)} | {fmt(r['sel_recall'], 3)} | {r['wall_s']:.0f} |"
            )

        def mean(k, group=group):
            return float(np.mean([r[k] for r in group])) if all(r[k] is not None for r in group) else None

        print(
            f"| **{key[0]}** | {key[1]} | {key[2] or 1.0} | mean | **{fmt(mean('reported'))}** | "
            f"{fmt(mean('best'))} | {fmt(mean('sel_precision'), 3)} | {fmt(mean('sel_recall'), 3)} | "
            f"{fmt(mean('wall_s'), 0)} |"
        )


if __name__ == "__main__":
    main()

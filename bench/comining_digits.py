"""Co-mining's digits results: the ``digits`` preset over seeds and noise settings, one run at a time (prints a table).

    python bench/comining_digits.py [--noises symmetric:0.4 pairflip:0.4 openset:0.2+symmetric:0.2] [--seeds 0 1 2]
                                    [--out runs/comining-digits] [--threads 1]

Each run writes its run folder under ``--out`` (resumed when complete).  Columns: the reported number (mean test
accuracy over the last 10 epochs), best and last epoch, the final clean-set selection precision/recall, the share of
rejected samples that are truly open-set (``ood_precision``) or mislabelled (``rej_noisy_precision``), the recall of
open-set samples among the rejected, and the wall time of the run.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import lnlkit
from lnlkit.reproduce import run_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noises", nargs="+", default=["symmetric:0.4", "pairflip:0.4", "openset:0.2+symmetric:0.2"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="runs/comining-digits")
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], help="key=value overrides of the preset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from lnlkit.methods import parse_overrides
    from lnlkit.methods.comining import CoMiningConfig

    overrides = parse_overrides(CoMiningConfig, args.set)
    digits = lnlkit.load_dataset("digits")
    rows = []
    for noise in args.noises:
        for seed in args.seeds:
            out = run_folder(args.out, "comining", "digits", noise, seed)
            t0 = time.perf_counter()
            run = lnlkit.get_method("comining", preset=args.preset, **overrides).fit(
                digits.with_noise(noise, seed=seed), out=out, resume=True, progress=False)
            last = run.history[-1]
            rows.append(dict(noise=noise, seed=seed, reported=run.result["reported"],
                             std=run.result.get("reported_std"), best=run.result["test_acc_best"],
                             last=run.result["test_acc_last"], prec=run.result.get("sel_precision"),
                             rec=run.result.get("sel_recall"), ood_prec=last.get("ood_precision"),
                             ood_rec=last.get("ood_recall"), rej_noisy=last.get("rej_noisy_precision"),
                             relabel_acc=last.get("relabel_acc"), wall=run.result["wall_s"],
                             here=time.perf_counter() - t0))
            print(rows[-1], flush=True)

    def fmt(v, d=2):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"

    print("\n| noise | seed | reported (mean last 10) | ± | best | last | sel. precision | sel. recall | "
          "OOD precision | OOD recall | rejected mislabelled | relabel acc | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for noise in args.noises:
        sub = [r for r in rows if r["noise"] == noise]
        for r in sub + [{"seed": "mean", **{k: (float(np.mean([s[k] for s in sub if s[k] is not None]))
                                               if any(s[k] is not None for s in sub) else None)
                                           for k in ("reported", "std", "best", "last", "prec", "rec", "ood_prec",
                                                     "ood_rec", "rej_noisy", "relabel_acc", "wall")}}]:
            print(f"| {noise} | {r['seed']} | {fmt(r['reported'])} | {fmt(r['std'])} | {fmt(r['best'])} | "
                  f"{fmt(r['last'])} | {fmt(r['prec'], 3)} | {fmt(r['rec'], 3)} | {fmt(r['ood_prec'], 3)} | "
                  f"{fmt(r['ood_rec'], 3)} | {fmt(r['rej_noisy'], 3)} | {fmt(r['relabel_acc'], 3)} | "
                  f"{fmt(r['wall'], 0)} |")


if __name__ == "__main__":
    main()

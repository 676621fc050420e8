"""ProMix's acceptance grid on the embedded digits: the ``digits`` preset, seeds 0-2, symmetric:0.4 and pairflip:0.4,
one run at a time on one CPU thread (prints a table; asserts nothing).

    python bench/promix_digits.py [--out /tmp/promix-digits] [--seeds 0 1 2] [--noises symmetric:0.4 pairflip:0.4]

Run folders go to ``--out`` (resumed when present); the table gives, per run, the reported accuracy (Acc Mean of the
last epoch), the best epoch's, the final selection precision/recall of network 1 (CSS ∪ MHCS), the number of samples
LGA relabelled in the last epoch and the wall time, then the mean per noise setting.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import lnlkit
from lnlkit.reproduce import run_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp/promix-digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--noises", nargs="+", default=["symmetric:0.4", "pairflip:0.4"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = lnlkit.load_dataset("digits")
    rows = []
    for noise in args.noises:
        for seed in args.seeds:
            t0 = time.perf_counter()
            run = lnlkit.get_method("promix", preset="digits").fit(
                data.with_noise(noise, seed=seed), out=run_folder(args.out, "promix", "digits", noise, seed),
                progress=False, resume=True)
            res = run.result
            rows.append((noise, seed, res["reported"], res["test_acc_best"], res.get("sel_precision"),
                         res.get("sel_recall"), run.history[-1].get("n_lga", 0), res["wall_s"],
                         time.perf_counter() - t0))
            print(*rows[-1], flush=True)
    print()
    print("| noise | seed | reported (Acc Mean, last) | best | sel. precision | sel. recall | LGA (last epoch) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for noise, seed, rep, best, prec, rec, lga, wall, _ in rows:
        print(f"| {noise} | {seed} | {rep:.2f} | {best:.2f} | {prec:.3f} | {rec:.3f} | {lga} | {wall:.0f} |")
    for noise in args.noises:
        sel = [r for r in rows if r[0] == noise]
        mean = lambda i: float(np.mean([r[i] for r in sel]))  # noqa: E731
        print(f"| {noise} | mean | {mean(2):.2f} | {mean(3):.2f} | {mean(4):.3f} | {mean(5):.3f} | | {mean(7):.0f} |")


if __name__ == "__main__":
    main()

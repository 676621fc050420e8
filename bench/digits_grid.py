"""A method's digits preset over noise settings x seeds: the acceptance table of a method issue (prints markdown).

    python bench/digits_grid.py --method mememomentum [--noises symmetric:0.4 pairflip:0.4 instance:0.4]
                                [--seeds 0 1 2] [--out runs/digits-grid] [--set key=value ...]

One process, one run at a time; each run folder is kept under ``--out`` (complete runs are reused, so an
interrupted grid resumes).  Columns: the reported test accuracy (``reported_as``), the best and last epoch, the final
selection precision / recall where the method selects samples, epochs run and wall seconds (measured in the run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lnlkit
from lnlkit.methods import method_class, parse_overrides
from lnlkit.reproduce import run_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="mememomentum")
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--noises", nargs="+", default=["symmetric:0.4", "pairflip:0.4", "instance:0.4"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="runs/digits-grid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = parse_overrides(method_class(args.method).Config, args.overrides)
    data = lnlkit.load_dataset("digits")

    print("| noise | seed | reported | best | last | sel. precision | sel. recall | epochs | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for noise in args.noises:
        rows = []
        for seed in args.seeds:
            method = lnlkit.get_method(args.method, preset=args.preset, **overrides)
            start = time.perf_counter()
            run = method.fit(data.with_noise(noise, seed=seed), out=run_folder(args.out, args.method, "digits", noise,
                                                                              seed), device=args.device,
                             resume=True, progress=False)
            res = run.result
            rows.append([res["reported"], res["test_acc_best"], res["test_acc_last"],
                         res.get("sel_precision", np.nan), res.get("sel_recall", np.nan), res["epochs_done"],
                         res["wall_s"]])
            print(f"| {noise} | {seed} | " + " | ".join(
                f"{v:.3f}" if i in (3, 4) else (f"{v:d}" if i == 5 else f"{v:.2f}") for i, v in enumerate(rows[-1]))
                + f" |  <!-- {time.perf_counter() - start:.0f} s this call -->", flush=True)
        table = np.array(rows, dtype=float)
        mean = np.array([np.nanmean(col) if np.isfinite(col).any() else np.nan for col in table.T])
        print(f"| {noise} | mean | {mean[0]:.2f} | {mean[1]:.2f} | {mean[2]:.2f} | {mean[3]:.3f} | {mean[4]:.3f} | "
              f"{mean[5]:.0f} | {mean[6]:.0f} |", flush=True)


if __name__ == "__main__":
    main()

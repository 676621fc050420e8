"""A method's digits preset over noise settings x seeds: the acceptance table of a method issue (prints markdown).

    python bench/digits_grid.py --method NAME [--preset digits] [--noises NOISE ...]
                                [--seeds 0 1 2] [--out runs/digits-grid] [--set key=value ...] [--threads 1]
                                [--extra ood_precision ood_recall ...]

The default noises are the method's acceptance grid: ``symmetric:0.4`` and ``pairflip:0.4``, except Me-Momentum
(``symmetric:0.4`` and ``instance:0.4``, the noise types of its README examples; pass ``--noises pairflip:0.4`` for
its pair-flip row).  Examples: ``--method promix``; ``--method comining --noises openset:0.2+symmetric:0.2 --extra
ood_precision ood_recall``; ``--method mememomentum --noises pairflip:0.4``.

One process, one run at a time; each run folder is kept under ``--out`` (complete runs are reused, so an
interrupted grid resumes).  Columns: the reported test accuracy (``reported_as``), the best and last epoch, the final
selection precision / recall where the method selects samples, epochs run and wall seconds (measured in the run).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import lnlkit
from lnlkit.methods import method_class, parse_overrides
from lnlkit.reproduce import run_folder

DEFAULT_NOISES = ["symmetric:0.4", "pairflip:0.4"]
# methods whose acceptance grid differs from the default (keyed by the registry name)
ACCEPTANCE_NOISES = {"mememomentum": ["symmetric:0.4", "instance:0.4"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True)
    parser.add_argument("--preset", default="digits")
    parser.add_argument(
        "--noises", nargs="+", default=None, help="default: the method's acceptance grid (ACCEPTANCE_NOISES)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="runs/digits-grid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU results depend on it)")
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        help="more columns: keys of result.json or of the last epoch's record, e.g. ood_precision",
    )
    args = parser.parse_args()
    if args.noises is None:
        args.noises = ACCEPTANCE_NOISES.get(method_class(args.method).name, DEFAULT_NOISES)
    torch.set_num_threads(args.threads)
    overrides = parse_overrides(method_class(args.method).Config, args.overrides)
    data = lnlkit.load_dataset("digits")

    print(
        "| noise | seed | reported | best | last | sel. precision | sel. recall | epochs | wall s |"
        + "".join(f" {key} |" for key in args.extra)
    )
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(args.extra))
    variant = None if args.preset == "digits" else args.preset
    formats = ["{:.2f}"] * 3 + ["{:.3f}"] * 2 + ["{:.0f}", "{:.1f}"] + ["{:.3f}"] * len(args.extra)
    for noise in args.noises:
        rows = []
        for seed in args.seeds:
            method = lnlkit.get_method(args.method, preset=args.preset, **overrides)
            out = run_folder(args.out, args.method, "digits", noise, seed, variant=variant)
            run = method.fit(
                data.with_noise(noise, seed=seed), out=out, device=args.device, resume=True, progress=False
            )
            res, last = run.result, run.history[-1]
            values = [
                res["reported"],
                res["test_acc_best"],
                res["test_acc_last"],
                res.get("sel_precision"),
                res.get("sel_recall"),
                res["epochs_done"],
                res["wall_s"],
            ]
            values += [res.get(key, last.get(key)) for key in args.extra]
            rows.append([np.nan if v is None else float(v) for v in values])
            print(
                f"| {noise} | {seed} | " + " | ".join(f.format(v) for f, v in zip(formats, rows[-1])) + " |", flush=True
            )
        table = np.array(rows, dtype=float)
        mean = [np.nanmean(col) if np.isfinite(col).any() else np.nan for col in table.T]
        print(f"| {noise} | mean | " + " | ".join(f.format(v) for f, v in zip(formats, mean)) + " |", flush=True)


if __name__ == "__main__":
    main()

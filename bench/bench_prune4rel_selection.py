"""Scaling of Prune4ReL's greedy neighbourhood-confidence selection (prints a table; asserts nothing).

    python bench/bench_prune4rel_selection.py [--n 50000 200000 1000000] [--dim 512] [--ratio 0.2]
                                              [--device cpu] [--index auto|dense|cells]

Synthetic embeddings: ``n`` points in ``--dim`` dimensions around ``n / 50`` random cluster centres (10 classes, one
class per cluster), spread so that about half of a cluster's pairs are neighbours at τ = 0.975 (cos > 0.95);
confidences uniform in [0.5, 1].  Thousands of mutually orthogonal small clusters are the hard case for the cell
index (its cells must shrink to about one cluster before they prune), so these timings are on the pessimistic side
for a trained network's features.  Each size runs in its own process, so the peak resident memory it reports is that
size's own (``ru_maxrss``), next to the memory an n×n float32 similarity matrix would need.  The greedy never forms
that matrix: ``dense`` computes the similarity rows of the picks in column blocks (O(B·n·d)); ``cells`` (the CPU
default from 20k samples on) compares a pick only with the cells that can hold a neighbour.  "pairs compared" is
the fraction of the B·n similarities the dense index computes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _one(n: int, dim: int, ratio: float, device: str, index: str, seed: int = 0) -> dict:
    import numpy as np
    import torch

    from lnlkit.methods.prune4rel import greedy_neighborhood_confidence

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    gen = torch.Generator().manual_seed(seed)
    clusters = max(1, n // 50)
    centres = torch.randn(clusters, dim, generator=gen)
    assign = torch.randint(0, clusters, (n,), generator=gen)
    emb = torch.empty(n, dim)
    for start in range(0, n, 65536):  # chunked, so generation itself never needs more than the embeddings
        a = assign[start : start + 65536]
        emb[start : start + 65536] = centres[a] + 0.2 * torch.randn(len(a), dim, generator=gen)
    labels = (assign % 10).numpy()
    conf = (0.5 + 0.5 * torch.rand(n, generator=gen)).numpy()
    emb = emb.to(device)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = greedy_neighborhood_confidence(
        emb, conf, labels, int(round(ratio * n)), tau=0.975, eta=1.0, balance=True, num_classes=10, index=index
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {
        "n": n,
        "dim": dim,
        "budget": int(round(ratio * n)),
        "picked": int(len(result.order)),
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": base / 1024,
        "embeddings_mb": n * dim * 4 / 2**20,
        "dense_nxn_mb": n * n * 4 / 2**20,
        "mean_nc": float(np.mean(result.nc)),
        "device": device,
        "index": index,
        "pairs_fraction": result.pairs_compared / max(1, len(result.order) * n),
    }
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--index", default="auto", choices=["auto", "dense", "cells"])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_one(args.child, args.dim, args.ratio, args.device, args.index)), flush=True)
        return
    print(
        f"# greedy selection, f = {args.ratio}, d = {args.dim}, device {args.device}, index {args.index}, "
        f"{platform.processor() or platform.machine()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(
        "| n | picks | seconds | pairs compared | peak RSS (MB) | RSS before greedy (MB) | embeddings (MB) | "
        "dense n×n (MB) |" + (" peak GPU (MB) |" if args.device.startswith("cuda") else "")
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|" if args.device.startswith("cuda") else ""))
    for n in args.n:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--dim",
                str(args.dim),
                "--ratio",
                str(args.ratio),
                "--device",
                args.device,
                "--index",
                args.index,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"| {n} | failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode} |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"| {n:,} | {r['picked']:,} | {r['seconds']:.1f} | {100 * r['pairs_fraction']:.3f}% "
            f"| {r['peak_rss_mb']:.0f} | "
            f"{r['rss_before_mb']:.0f} | "
            f"{r['embeddings_mb']:.0f} | {r['dense_nxn_mb']:,.0f} |"
            + (f" {r['peak_gpu_mb']:.0f} |" if "peak_gpu_mb" in r else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()

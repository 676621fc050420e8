"""The CPU benchmark suite behind ``make bench``: writes ``bench/results/<machine>-<date>.md`` (asserts nothing).

    python bench/run_suite.py [--out-dir bench/results] [--threads 1]

Runs, one torch thread each (``OMP_NUM_THREADS=1``):

1. ``bench_cost.py``: every method's digits epoch per phase against its forward/backward-pass ideal (about a minute
   on an idle 2-core machine);
2. ``bench_augment.py`` at batch 256: the batched AutoAugment / RandAugment against torchvision per image;
3. ``bench_prune4rel_selection.py`` at n = 20,000, d = 128: Prune4ReL's greedy selection.

The file is written atomically (a temporary file renamed into place) with a header naming the torch version, the
thread count, the CPU and the load average before and after (what else was running).  ``<machine>`` is a slug of
the CPU model and core count, ``<date>`` the day (YYYY-MM-DD); a second run on the same day replaces the file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = (
    ("Cost per epoch against the ideal", ["bench_cost.py"]),
    ("Batched augmentation policies", ["bench_augment.py", "--device", "cpu", "--batch", "256", "--repeats", "3"]),
    ("Prune4ReL greedy selection", ["bench_prune4rel_selection.py", "--n", "20000", "--dim", "128"]),
)


def load_average() -> str:
    try:
        one, five, fifteen, running, _ = Path("/proc/loadavg").read_text().split()
        return f"{one} / {five} / {fifteen} (1 / 5 / 15 min; {running} runnable / all tasks)"
    except (OSError, ValueError):
        return " / ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import torch
    from bench_cost import cpu_model, machine_slug

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    root = HERE.parent
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    before = load_average()
    t0 = time.perf_counter()
    sections = []
    for title, cmd in SUITE:
        extra = ["--threads", str(args.threads)] if cmd[0] in ("bench_cost.py", "bench_augment.py") else []
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HERE / cmd[0]), *cmd[1:], *extra], env=env, cwd=root, capture_output=True, text=True
        )
        body = (
            proc.stdout.strip()
            if proc.returncode == 0
            else f"FAILED ({proc.returncode}):\n\n```\n{proc.stderr[-3000:]}\n```"
        )
        sections.append(
            f"## {title}\n\n`python bench/{' '.join(cmd + extra)}` ({time.perf_counter() - t:.0f} s)\n\n{body}\n"
        )
        print(f"{title}: {time.perf_counter() - t:.0f} s", flush=True)
    today = datetime.date.today().isoformat()
    header = [
        f"# lnlkit CPU benchmarks, {today}",
        "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores",
        f"- torch {torch.__version__}, {args.threads} thread(s) per benchmark (OMP_NUM_THREADS={args.threads})",
        f"- load average before: {before}",
        f"- load average after: {load_average()}",
        f"- suite wall time: {time.perf_counter() - t0:.0f} s",
        "",
        "Timings on a machine shared with other work move with its load: compare files by their ratios "
        "(x ideal, x CE epoch) more than by seconds.",
        "",
    ]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{machine_slug()}-{today}.md"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out_dir)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(header) + "\n" + "\n".join(sections))
    os.replace(tmp, target)
    print(target)


if __name__ == "__main__":
    main()

"""One-command GPU check: every method's CIFAR preset on CIFAR-shaped synthetic tensors (prints and writes markdown).

    python bench/gpu_check.py [--device cuda] [--n 50000] [--epochs 2] [--max-steps 60] [--method-budget 45]
                              [--total-budget 480] [--methods ce dividemix ...] [--compare-steps 8]
                              [--set KEY=VALUE ...] [--out-dir bench/results]

(``bench/gpu_check.sh`` installs the package when it is not importable and runs this on CUDA.)

For each method, its CIFAR preset (the one ``bench/bench_methods.py`` maps: DivideMix's CIFAR-10 settings, Co-mining's
``cifar10nc``, the CIFAR-10N presets of SOP+ and Prune4ReL) with its paper backbone runs a short schedule (one
warm-up epoch where the method has one, then ``--epochs`` epochs of its main phase) on ``--n`` random uint8 images of
3 × 32 × 32 (10 classes, 40% symmetric noise, 10,000 test images) built with ``Dataset.from_arrays``.  Every
training loader epoch stops after ``--max-steps`` batches, or earlier once the method has spent its time budget, so
the whole check fits ten minutes on one H100/H200 (a method's training budget shrinks when the ones before it ran
long); the table reports the batches measured against the full count.  A method that fails is listed under
"Failed" and the check goes on (exit status 1).

Columns, per method and phase (median over the phase's epochs after its first where it has more than one):

* ``s/epoch``: the full epoch's seconds, estimated: the time inside the training loops scaled by full / measured
  batches, plus the time outside them (per-sample evaluation pass, test pass, selection), which always runs in full;
* ``img/s``: training images drawn from the loaders per second of that full epoch;
* ``× ideal``: the epoch's seconds over its ideal cost, i.e. the network passes it makes times one measured pass of
  the same network: every forward with autograd on counts as one forward+backward pass at the training batch size,
  every forward without autograd as one inference pass at the evaluation batch size.  The passes are counted on the
  networks themselves (a hook on the first layer counts the images of every forward: per network, per view, the
  per-sample and the test passes), so the ratio is what the method spends beyond its passes (augmentation,
  mixing, mixture fits, data movement, Python);
* ``fb/img`` and ``f/img``: those counted passes per training image drawn, for checking against the algorithm;
* ``peak GiB``: ``torch.cuda.max_memory_allocated`` over the method's run (CUDA only).

Then each method's first ``--compare-steps`` training losses (the scalars ``backward`` is called on) from the same
seed in fp32 and in bf16 autocast, and their largest absolute difference.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_methods, when run from elsewhere

from bench_methods import CIFAR_PRESETS, WARMUP_FIELDS, _short  # noqa: E402

import lnlkit  # noqa: E402
from lnlkit.data import Dataset  # noqa: E402
from lnlkit.methods import method_class, parse_overrides  # noqa: E402
from lnlkit.methods.base import Context  # noqa: E402
from lnlkit.train.loader import DeviceLoader  # noqa: E402

METHODS = ["ce", "dividemix", "smr", "promix", "comining", "mememomentum", "sop", "prune4rel"]
COLUMNS = [
    "method",
    "preset",
    "model",
    "batch",
    "phase",
    "epochs",
    "batches measured / full",
    "s/epoch",
    "img/s",
    "× ideal",
    "fb/img",
    "f/img",
    "peak GiB",
]
COMPARE_COLUMNS = ["method", "steps", "fp32 first losses", "bf16 first losses", "max abs diff", "max rel diff"]


def cifar_preset(method: str) -> str:
    """The CIFAR preset of ``method`` that ``bench/bench_methods.py`` measures."""
    cls = method_class(method)
    preset = (
        cls.preset_for("cifar10", "symmetric-inclusive:0.5")
        or CIFAR_PRESETS.get(method)
        or next((p for p in ("cifar10", "cifar10nc") if p in cls.PRESETS), None)
    )
    if preset is None:
        raise ValueError(f"{method} has no CIFAR preset")
    return preset


def cifar_shaped(n: int, n_test: int = 10_000, seed: int = 0):
    """``n`` random CIFAR-shaped training images (uint8, 3 × 32 × 32, 10 classes) with 40% symmetric noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    xt = rng.integers(0, 256, size=(n_test, 3, 32, 32), dtype=np.uint8)
    yt = rng.integers(0, 10, size=n_test)
    return Dataset.from_arrays(x, y, xt, yt, name="cifar-shaped", num_classes=10, clean_labels=True).with_noise(
        "symmetric:0.4", seed=0
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Probe:
    """Caps and measures the training loops and counts network passes while installed (a context manager).

    Every shuffled ``DeviceLoader.epoch`` (a training loop) stops after ``max_steps`` batches, or after one
    batch once ``deadline``
    (``time.perf_counter``) has passed.  The time from a loader's first batch to the end of the loop (the first
    loader that stops) is loop time; an interval that a cap ended is scaled by that loader's full / measured batches.
    """

    def __init__(self, device: torch.device, max_steps: int, deadline: float):
        self.device, self.max_steps, self.deadline = device, max_steps, deadline
        self.nets: list[nn.Module] = []
        self.reset()

    def reset(self) -> None:
        self.in_loop, self.t_start = False, 0.0
        self.c = defaultdict(float)  # loop_s, loop_s_full, img, img_full, steps, steps_full, {loop,out}_{fb,f}

    # -- patches
    def __enter__(self) -> "Probe":
        self._epoch, self._build = DeviceLoader.epoch, Context.build_model
        probe = self

        def epoch(loader, e):
            if not loader.shuffle:  # an in-order prediction pass over a pool (Me-Momentum): never cut short
                yield from probe._epoch(loader, e)
                return
            measured = 0
            for batch in probe._epoch(loader, e):
                if not probe.in_loop:
                    _sync(probe.device)
                    probe.in_loop, probe.t_start = True, time.perf_counter()
                probe.c["img"] += len(batch.index)
                measured += 1
                yield batch
                if measured >= probe.max_steps or time.perf_counter() > probe.deadline:
                    break
            if probe.in_loop:  # the loop this loader drove ends here
                _sync(probe.device)
                seconds = time.perf_counter() - probe.t_start
                scale = len(loader) / max(measured, 1)
                probe.c["loop_s"] += seconds
                probe.c["loop_s_full"] += seconds * scale
                probe.c["steps"] += measured
                probe.c["steps_full"] += len(loader)
                probe.in_loop = False

        def build_model(ctx, *args, **kw):
            net = probe._build(ctx, *args, **kw)
            first = next(m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
            first.register_forward_hook(probe._count)
            probe.nets.append(net)
            return net

        DeviceLoader.epoch, Context.build_model = epoch, build_model
        return self

    def __exit__(self, *exc) -> None:
        DeviceLoader.epoch, Context.build_model = self._epoch, self._build

    def _count(self, module, inputs, output) -> None:
        where = "loop" if self.in_loop else "out"
        self.c[f"{where}_{'fb' if torch.is_grad_enabled() else 'f'}"] += inputs[0].shape[0]

    def take(self) -> dict[str, float]:
        """This epoch's counters (and start the next epoch's)."""
        out = dict(self.c)
        out["scale"] = (out.get("loop_s_full", 0.0) / out["loop_s"]) if out.get("loop_s") else 1.0
        self.c = defaultdict(float)
        return out


def unit_costs(
    net: nn.Module, batch: int, eval_batch: int, device: torch.device, channels_last: bool, reps: int
) -> tuple[float, float]:
    """Seconds per image of one forward+backward+SGD step at ``batch`` and one inference pass at ``eval_batch``."""
    net = copy.deepcopy(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.0, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device)
    xe = torch.randn(eval_batch, 3, 32, 32, device=device)
    if channels_last and device.type == "cuda":
        x, xe = x.contiguous(memory_format=torch.channels_last), xe.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def logits(out):
        return (out[0] if isinstance(out, (tuple, list)) else out).float()

    def step():
        opt.zero_grad(set_to_none=True)
        out = logits(net(x))
        F.cross_entropy(out[:, : min(out.shape[1], 10)], y).backward()
        opt.step()

    def timed(fn) -> float:
        for _ in range(2):
            fn()
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        _sync(device)
        return (time.perf_counter() - t) / reps

    net.train()
    fb = timed(step) / batch
    net.eval()
    with torch.no_grad():
        f = timed(lambda: net(xe)) / eval_batch
    return fb, f


def measure(
    method: str, data, device: torch.device, epochs: int, max_steps: int, budget: float, reps: int, overrides: dict
) -> list[dict]:
    """Rows (one per phase) of ``method``'s CIFAR preset on ``data``."""
    preset = cifar_preset(method)
    config = method_class(method).PRESETS[preset]()
    m = _short(method, preset, epochs, **overrides)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epochs_seen: list[tuple[dict, dict]] = []
    t0 = time.perf_counter()
    with Probe(device, max_steps, deadline=t0 + budget) as probe, tempfile.TemporaryDirectory() as tmp:
        m.fit(
            data,
            out=tmp,
            device=str(device),
            progress=False,
            callbacks=[lambda record: epochs_seen.append((record, probe.take()))],
        )
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    fb_cost, f_cost = unit_costs(
        m.networks()[0], m.config.batch_size, m.config.eval_batch_size, device, m.config.channels_last, reps
    )
    by_phase: dict[str, list[dict]] = defaultdict(list)
    for record, c in epochs_seen:
        wall = record["wall_s"]
        scale = c["scale"]
        full_s = wall - c.get("loop_s", 0.0) + c.get("loop_s_full", 0.0)
        ideal_full = (
            (c.get("loop_fb", 0) * fb_cost + c.get("loop_f", 0) * f_cost) * scale
            + c.get("out_fb", 0) * fb_cost
            + c.get("out_f", 0) * f_cost
        )
        img = c.get("img", 0)
        by_phase[record.get("phase", "train")].append(
            {
                "s": full_s,
                "img_s": img * scale / full_s if full_s > 0 else float("nan"),
                "ratio": full_s / ideal_full if ideal_full > 0 else float("nan"),
                "fb": (c.get("loop_fb", 0) + c.get("out_fb", 0) / scale) / img if img else float("nan"),
                "f": (c.get("loop_f", 0) + c.get("out_f", 0) / scale) / img if img else float("nan"),
                "steps": int(c.get("steps", 0)),
                "steps_full": int(c.get("steps_full", 0)),
            }
        )
    rows = []
    for phase, eps in by_phase.items():
        kept = eps[1:] if len(eps) > 1 else eps  # a phase's first epoch pays allocation and autotuning
        med = {k: float(np.median([e[k] for e in kept])) for k in ("s", "img_s", "ratio", "fb", "f")}
        rows.append(
            {
                "method": method,
                "preset": preset,
                "model": config.model,
                "batch": m.config.batch_size,
                "phase": phase,
                "epochs": len(eps),
                "batches measured / full": f"{sum(e['steps'] for e in kept)} / {sum(e['steps_full'] for e in kept)}",
                "s/epoch": f"{med['s']:.2f}",
                "img/s": f"{med['img_s']:.0f}",
                "× ideal": f"{med['ratio']:.2f}",
                "fb/img": f"{med['fb']:.2f}",
                "f/img": f"{med['f']:.2f}",
                "peak GiB": "–" if np.isnan(peak) else f"{peak:.2f}",
            }
        )
    return rows


def first_losses(method: str, data, device: torch.device, precision: str, steps: int, overrides: dict) -> list[float]:
    """The first ``steps`` scalar losses ``backward`` is called on, one epoch of ``method``'s CIFAR preset."""
    losses: list[float] = []
    original = torch.Tensor.backward

    def backward(self, *args, **kw):
        if len(losses) < steps and self.numel() == 1:
            losses.append(float(self.detach().float()))
        return original(self, *args, **kw)

    preset = cifar_preset(method)
    config = method_class(method).PRESETS[preset]()
    warm = {f: 1 for f in WARMUP_FIELDS[:] if hasattr(config, f)}
    warm = dict(list(warm.items())[:1])  # one epoch, the warm-up's where the method has one
    m = lnlkit.get_method(method, preset=preset, epochs=1, **{**overrides, "precision": precision}, **warm)
    torch.Tensor.backward = backward
    try:
        with Probe(device, steps, deadline=float("inf")), tempfile.TemporaryDirectory() as tmp:
            m.fit(data, out=tmp, device=str(device), progress=False)
    finally:
        torch.Tensor.backward = original
    return losses


def compare_row(method: str, data, device: torch.device, steps: int, overrides: dict) -> dict:
    a = first_losses(method, data, device, "fp32", steps, overrides)
    b = first_losses(method, data, device, "bf16", steps, overrides)
    k = min(len(a), len(b))
    diff = np.abs(np.array(a[:k]) - np.array(b[:k]))
    rel = diff / np.maximum(np.abs(np.array(a[:k])), 1e-12)
    return {
        "method": method,
        "steps": k,
        "fp32 first losses": " ".join(f"{v:.4f}" for v in a[:3]),
        "bf16 first losses": " ".join(f"{v:.4f}" for v in b[:3]),
        "max abs diff": f"{diff.max():.2e}" if k else "–",
        "max rel diff": f"{rel.max():.2e}" if k else "–",
    }


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def device_label(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu-{platform.machine()}"
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--n", type=int, default=50_000, help="synthetic training images")
    parser.add_argument("--n-test", type=int, default=10_000, help="synthetic test images")
    parser.add_argument("--epochs", type=int, default=2, help="main-phase epochs per method (after one warm-up)")
    parser.add_argument("--max-steps", type=int, default=60, help="batches per training loader epoch")
    parser.add_argument(
        "--method-budget",
        type=float,
        default=45.0,
        help="seconds of training per method; loaders stop after one batch once it is spent",
    )
    parser.add_argument(
        "--total-budget",
        type=float,
        default=480.0,
        help="seconds the whole check aims at; later methods get less training time when it runs low",
    )
    parser.add_argument("--compare-steps", type=int, default=8, help="first steps compared, fp32 against bf16")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions of the unit passes")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every method (e.g. batch_size=16 for a CPU smoke test)",
    )
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {METHODS}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"gpu_check: --device {args.device} but torch {torch.__version__} sees no CUDA GPU here; "
            "run on a GPU machine, or pass --device cpu --n 512 for a smoke test",
            file=sys.stderr,
        )
        return 2
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    reps = args.reps or (20 if device.type == "cuda" else 2)
    label = device_label(device)
    head = (
        f"# GPU check: {label}, {datetime.date.today().isoformat()}\n\n"
        f"lnlkit {lnlkit.__version__}, torch {torch.__version__}, {args.n} × 3 × 32 × 32 synthetic images "
        f"({args.n_test} test), one warm-up epoch + {args.epochs} main epochs, at most {args.max_steps} batches "
        f"per training loader epoch and {args.method_budget:.0f} s of training per method"
        + (f"; overrides {' '.join(args.set)}" if args.set else "")
        + ".\n"
    )
    print(head, flush=True)
    t_start = time.perf_counter()
    data = cifar_shaped(args.n, args.n_test)
    rows, compare, failed = [], [], []
    for k, method in enumerate(args.methods):
        t = time.perf_counter()
        # the training budget shrinks when earlier methods ran long, so the whole check keeps to --total-budget
        # (about half of a method's time goes to its evaluation passes, the unit passes and the fp32/bf16 runs)
        left = args.total_budget - (t - t_start)
        budget = max(1.0, min(args.method_budget, 0.5 * left / (len(args.methods) - k)))
        try:
            over = parse_overrides(method_class(method).Config, args.set)
            rows += measure(method, data, device, args.epochs, args.max_steps, budget, reps, over)
            compare.append(compare_row(method, data, device, args.compare_steps, over))
        except Exception as err:  # one broken method must not cost the others' figures
            print(f"{method}: FAILED: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            failed.append(f"- {method}: {type(err).__name__}: {err}")
            continue
        print(f"{method}: {time.perf_counter() - t:.0f} s (training budget {budget:.0f} s)", flush=True)
    text = (
        head
        + "\n## Epoch cost\n\n"
        + markdown(rows, COLUMNS)
        + "\n\n## fp32 against bf16: first training losses\n\n"
        + markdown(compare, COMPARE_COLUMNS)
        + f"\n\nTotal {time.perf_counter() - t_start:.0f} s.\n"
        + ("\n## Failed\n\n" + "\n".join(failed) + "\n" if failed else "")
    )
    path = Path(args.out_dir) / f"{label}-{datetime.date.today().isoformat()}.md"
    write_atomic(path, text)
    print("\n" + text)
    print(f"written to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Epoch cost of every method on the embedded digits against its ideal (prints a markdown table; asserts nothing).

    python bench/bench_cost.py [--methods ce dividemix ...] [--epochs 3] [--threads 1] [--out FILE.md]

For each method on its ``digits`` preset, on the CPU with ``--threads`` torch threads (default one), a short schedule
(three warm-up epochs where the method has a warm-up, then ``--epochs`` epochs of its main phase; SMR: up to its
first recalibration epoch) runs into a temporary folder.  Per phase the table gives:

* **wall s / epoch** and **CPU s / epoch**: median wall and process CPU seconds between the ends of consecutive
  epochs (training, test evaluation, per-sample signals, the recorder and the checkpoint: everything a run pays per
  epoch); the first epoch of a phase is left out when the phase has more than one.  With one thread the CPU seconds
  are the wall time the epoch takes on an idle core, and other work on a shared machine does not inflate them, so the
  ratios and estimates below use them (unit costs are CPU seconds too).
* **passes**: samples through a network per epoch, ``fwd+bwd`` (a training forward with its backward) and ``fwd``
  (no-grad forwards: per-sample evaluation passes, co-guessing, the test pass), from the pass table ``PASSES`` below,
  which counts them from the algorithm.  The counts are checked against the code: every network's first layer
  carries a forward hook during the run and the table's ``hooked`` column says whether the hook counts agree
  (``tests/test_bench_passes.py`` checks the same for every method).
* **ideal s / epoch**: ``fwd+bwd samples × t_step + fwd samples × t_fwd``, where ``t_step`` is the measured seconds
  per sample of one training step (forward, cross-entropy, backward, optimiser step) of the same network at the
  phase's training batch, and ``t_fwd`` the seconds per sample of a no-grad eval-mode forward at the evaluation batch
  (1,024), both on pre-made tensors of the digits shape with the same thread count.
* **× ideal** and **× CE**: CPU s / epoch over the ideal, and over one epoch of CE's ``digits`` preset.
* **run s**: the whole ``digits`` run on one thread, estimated as the epochs of each phase in the preset's schedule
  times its CPU s / epoch plus the run-folder write of an epoch half-way through the run (Me-Momentum's schedule
  ends early: its upper bound, and the length its digits runs take).

A ratio to the ideal well above 1 means time spent outside the passes (augmentation, GMM fits, selection, Python
per batch, the run folder); the digits network is tiny (a step of 32 samples costs about a millisecond), so fixed
per-batch and per-epoch costs weigh more than on CIFAR.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# methods whose schedule ends early: (epochs of a typical digits run, what the kit's digits runs took)
TYPICAL_EPOCHS = {"mememomentum": (120, "94-151 epochs (early stopping)")}
METHODS = ("ce", "dividemix", "smr", "promix", "comining", "mememomentum", "sop", "prune4rel", "prune:uniform")
EVAL_BATCH = 1024


# ---------------------------------------------------------------------------------------------- loader arithmetic
def batch_sizes(n: int, batch: int, drop_last: bool = False) -> list[int]:
    """Batch sizes of one pass of a ``DeviceLoader`` over ``n`` samples (a lone trailing sample joins the batch
    before it; ``drop_last`` drops the partial batch)."""
    if n <= 0:
        return []
    if drop_last:
        return [batch] * (n // batch)
    sizes = [batch] * (n // batch)
    rest = n % batch
    if rest == 1 and batch > 1 and n > 1:
        sizes[-1] += 1
    elif rest:
        sizes.append(rest)
    return sizes


def cycled_sizes(n: int, batch: int, steps: int) -> list[int]:
    """Sizes of the first ``steps`` batches of a loader over ``n`` samples restarted whenever it runs out (DivideMix's
    unlabelled loader)."""
    one = batch_sizes(n, batch)
    if not one:
        return [0] * steps
    return [one[i % len(one)] for i in range(steps)]


# ---------------------------------------------------------------------------------------------- the pass table
@dataclass
class EpochInfo:
    """What a pass formula may read about one epoch: the config, sizes, the epoch's record and signals."""

    cfg: object
    n: int  # training samples
    n_test: int
    epoch: int
    record: dict
    signals: dict


@dataclass
class Passes:
    fwd_bwd: int  # samples through a training forward + backward
    fwd: int  # samples through a no-grad forward
    train_batch: int  # the batch of the training forwards (for the unit cost)


def _ce(e: EpochInfo) -> Passes:
    return Passes(e.n, e.n + e.n_test, e.cfg.batch_size)


def _dividemix(e: EpochInfo) -> Passes:
    n, b = e.n, e.cfg.batch_size
    if e.record["phase"] in ("warmup", "recal"):
        # each net one epoch at batch 2B (CE or mixup CE: one forward), then both nets' loss signals
        return Passes(2 * n, 2 * n + 2 * e.n_test, 2 * b)
    fb = fwd = 0
    for k in range(2):  # net k trains on the other net's labelled set
        labelled = int(e.record["n_selected_net2" if k == 0 else "n_selected"])
        xs = batch_sizes(labelled, b)
        us = cycled_sizes(n - labelled, b, len(xs))
        fb += sum(2 * x + 2 * u for x, u in zip(xs, us))  # one forward of the mixed [x1, x2, u1, u2]
        fwd += sum(2 * x + 4 * u for x, u in zip(xs, us))  # co-refinement (net, 2 views), co-guessing (2 nets, 2 views)
    fwd += 2 * n  # each net's per-sample loss pass for its GMM
    return Passes(fb, fwd + 2 * e.n_test, 4 * b)


def _promix(e: EpochInfo) -> Passes:
    n, b = e.n, e.cfg.batch_size
    if e.record["phase"] == "warmup":
        return Passes(2 * n, 2 * n + 2 * e.n_test, b)  # both nets on the same batch; signals: 2 loss passes
    steps = n // b  # drop_last
    fb = 0
    for suffix in ("", "_net2"):
        clean = int((np.asarray(e.signals["relabel" + suffix]) >= 0).sum())  # CSS ∪ MHCS ∪ LGA, seen samples
        fb += 2 * steps * b + 4 * clean  # weak + strong views; mixup + FMix on the clean set, for each of 2 heads
    return Passes(fb, 2 * n + 2 * e.n_test, b)  # CSS: each net's loss pass; test: both heads in one forward


def _comining(e: EpochInfo) -> Passes:
    return Passes(2 * e.n, e.n_test, e.cfg.batch_size)  # two views, separate forwards; no per-sample pass


def _memomentum(e: EpochInfo) -> Passes:
    cfg, n = e.cfg, e.n
    n_val = n - int(n * (1.0 - cfg.val_fraction))
    fwd = n_val + n + e.n_test  # noisy-validation pass, per-sample signals, test
    if e.record["phase"] == "round" and e.record["epoch_in_phase"] == 0:
        fwd += n - n_val  # a round's first epoch extracts the confident set over the training pool
    return Passes(int(e.record["n_train_set"]), fwd, cfg.batch_size)


def _sop(e: EpochInfo) -> Passes:
    return Passes(2 * e.n, e.n + e.n_test, 2 * e.cfg.batch_size)  # one forward of [weak; strong]


def _prune(e: EpochInfo) -> Passes:
    cfg, n = e.cfg, e.n
    if e.record["phase"] == "warmup":
        return _sop(e)
    subset = int(e.record["n_selected"])
    fwd = n + e.n_test
    warm = 0 if cfg.selector == "uniform" else cfg.warmup_epochs
    if e.epoch == warm and cfg.selector != "uniform":
        fwd += n  # the selection epoch: the warm-up model's score pass (strong view) over every sample
    return Passes(2 * subset, fwd, 2 * cfg.batch_size)


# method -> (formula in words, per phase; the function)
PASSES: dict[str, tuple[dict[str, str], Callable[[EpochInfo], Passes]]] = {
    "ce": ({"train": "1 net: N fwd+bwd (B) + N eval pass + test"}, _ce),
    "dividemix": (
        {
            "warmup": "2 nets x N fwd+bwd (2B) + 2 x N loss-signal pass + 2 x test",
            "ssl": "2 nets x sum over steps (2x + 2u fwd+bwd on the mixed batch, 4B; 2x + 4u no-grad for co-refinement/"
            "co-guessing) + 2 x N GMM loss pass + 2 x test (x, u: labelled/unlabelled batch sizes)",
        },
        _dividemix,
    ),
    "promix": (
        {
            "warmup": "2 nets x N fwd+bwd (B) + 2 x N loss-signal pass + 2 x test",
            "ssl": "2 nets x (2 views x (N // B) x B + 4 x |clean| (mixup + FMix, 2 heads)) fwd+bwd + 2 x N CSS loss "
            "pass + 2 x test",
        },
        _promix,
    ),
    "comining": (
        {"warmup": "1 net x 2 views x N fwd+bwd (B) + test", "train": "1 net x 2 views x N fwd+bwd (B) + test"},
        _comining,
    ),
    "mememomentum": (
        {
            "phase_a": "|train set| fwd+bwd (B) + |val| val pass + N signal pass + test",
            "round": "|train set| fwd+bwd (B) + |val| + N + test (+ |pool| extraction on a round's first epoch)",
        },
        _memomentum,
    ),
    "sop": ({"train": "1 net x N x [weak; strong] fwd+bwd (2B) + N signal pass + test"}, _sop),
    "prune4rel": (
        {
            "warmup": "SOP+ on all: 2N fwd+bwd (2B) + N + test",
            "train": "SOP+ on S: 2|S| fwd+bwd (2B) + N signal pass + test (+ N score pass on the selection epoch)",
        },
        _prune,
    ),
    "prune:uniform": ({"train": "SOP+ on S: 2|S| fwd+bwd (2B) + N signal pass + test"}, _prune),
}
PASSES["smr"] = (
    {**PASSES["dividemix"][0], "recal": "2 nets x N fwd+bwd (2B) + 2 x N loss-signal pass + 2 x test"},
    _dividemix,
)


# ---------------------------------------------------------------------------------------------- counting passes
class PassCounter:
    """Forward hooks on the first layer of every network a method builds: samples seen with grad on / off."""

    def __init__(self) -> None:
        self.fwd_bwd = 0
        self.fwd = 0

    def hook(self, module: nn.Module, inputs, output) -> None:
        n = int(inputs[0].shape[0])
        if torch.is_grad_enabled():
            self.fwd_bwd += n
        else:
            self.fwd += n

    def attach(self, net: nn.Module) -> nn.Module:
        first = next(m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
        first.register_forward_hook(self.hook)
        return net


@dataclass
class EpochLog:
    epoch: int
    phase: str
    end: float  # perf_counter at the end of the epoch (after the checkpoint of the previous one)
    cpu_end: float  # process_time then
    fwd_bwd: int
    fwd: int
    record: dict
    signals: dict


def short_method(method: str, main_epochs: int):
    """The method's ``digits`` preset with three warm-up epochs (where it has one) and ``main_epochs`` main epochs;
    SMR runs to its first recalibration epoch and one SSL epoch after it."""
    import lnlkit
    from lnlkit.methods import method_class

    cfg = method_class(method).PRESETS["digits"]()
    over: dict = {}
    for field in ("warm_up", "warmup_epochs", "max_phase_a_epochs"):
        if hasattr(cfg, field) and not (method == "prune:uniform" and field == "warmup_epochs"):
            over[field] = 3  # the median of a phase skips its first epoch (allocation, imports): two remain
            break
    warm = 3 if over else 0
    epochs = warm + main_epochs
    if getattr(cfg, "recal_period", None):
        epochs = max(epochs, cfg.recal_period)  # epoch recal_period - 1 recalibrates (its 0-based index)
    if method == "mememomentum":
        epochs = cfg.epochs  # its schedule is set by phase A and the rounds; max_phase_a_epochs=1 shortens it
        over["outer_loops"] = 1
        over["max_inner_rounds"] = 1
        over["round_epochs"] = main_epochs
    elif method.startswith("prune"):
        epochs = main_epochs  # Prune4ReL's `epochs` counts the epochs after the warm-up
    return lnlkit.get_method(method, preset="digits", epochs=epochs, **over)


def run_counted(method_obj, data, out: str) -> list[EpochLog]:
    """Fit ``method_obj`` on ``data`` (CPU) with pass counters; one ``EpochLog`` per epoch."""
    from lnlkit.train.context import Context

    counter = PassCounter()
    build = Context.build_model
    logs: list[EpochLog] = []
    outputs: dict[int, object] = {}
    train_epoch = method_obj.train_epoch

    def counted_build(self, *args, **kw):
        return counter.attach(build(self, *args, **kw))

    def recording_train_epoch(ctx, epoch):
        out = train_epoch(ctx, epoch)
        outputs[epoch] = out
        return out

    last = [0, 0]

    def callback(record: dict) -> None:
        e = int(record["epoch"])
        out = outputs.pop(e)
        logs.append(
            EpochLog(
                e,
                record.get("phase", "train"),
                time.perf_counter(),
                time.process_time(),
                counter.fwd_bwd - last[0],
                counter.fwd - last[1],
                dict(record),
                out.signals,
            )
        )
        last[:] = [counter.fwd_bwd, counter.fwd]

    method_obj.train_epoch = recording_train_epoch
    Context.build_model = counted_build
    try:
        method_obj.fit(data, out=out, device="cpu", callbacks=[callback], progress=False, seed=0)
    finally:
        Context.build_model = build
        del method_obj.train_epoch
    return logs


def table_passes(method: str, method_obj, log: EpochLog, n: int, n_test: int) -> Passes:
    """The pass table's count for one logged epoch."""
    info = EpochInfo(method_obj.config, n, n_test, log.epoch, log.record, log.signals)
    return PASSES[method][1](info)


# ---------------------------------------------------------------------------------------------- unit costs
def unit_costs(net: nn.Module, shape: tuple[int, ...], train_batch: int, classes: int, repeats: int = 30):
    """Seconds per sample of a training step at ``train_batch`` and of a no-grad eval forward at ``EVAL_BATCH``,
    on pre-made tensors (median over ``repeats`` steps / passes)."""
    net = copy.deepcopy(net)
    for m in net.modules():  # the copy must not count in the method's pass counter
        m._forward_hooks.clear()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((train_batch, *shape), generator=gen)
    y = torch.randint(0, classes, (train_batch,), generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    net.train()
    times = []
    for i in range(repeats + 3):
        t0 = time.process_time()
        loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.process_time() - t0)
    t_step = statistics.median(times) / train_batch
    xe = torch.randn((EVAL_BATCH, *shape), generator=gen)
    net.eval()
    times = []
    with torch.no_grad():
        for i in range(max(repeats // 3, 5) + 2):
            t0 = time.process_time()
            net(xe)
            if i >= 2:
                times.append(time.process_time() - t0)
    return t_step, statistics.median(times) / EVAL_BATCH


# ---------------------------------------------------------------------------------------------- the benchmark
def phase_epochs(method: str) -> dict[str, int]:
    """Epochs of each phase in the method's full ``digits`` schedule (Me-Momentum: its upper bound)."""
    from lnlkit.methods import method_class

    m = method_class(method)(method_class(method).PRESETS["digits"](), preset="digits")
    cfg = m.config
    total = m.num_epochs()
    if hasattr(m, "phase") and method in ("dividemix", "smr"):
        out: dict[str, int] = defaultdict(int)
        for e in range(total):
            out[m.phase(e)] += 1
        return dict(out)
    if method == "promix":
        return {"warmup": cfg.warm_up, "ssl": total - cfg.warm_up}
    if method == "comining":
        return {"warmup": cfg.warmup_epochs, "train": total - cfg.warmup_epochs}
    if method == "mememomentum":
        a = cfg.outer_loops * cfg.max_phase_a_epochs
        return {"phase_a": a, "round": total - a}
    if method.startswith("prune"):
        w = m.warmup_epochs
        return {"warmup": w, "train": total - w} if w else {"train": total}
    return {"train": total}


def measure(method: str, data, main_epochs: int) -> list[dict]:
    """Rows of the cost table for one method."""
    obj = short_method(method, main_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        logs = run_counted(obj, data, tmp)
    n, n_test = len(data.labels), len(data.y_test)
    shape = tuple(data.dataset.input_shape)
    by_phase: dict[str, list[tuple[float, float, EpochLog]]] = defaultdict(list)
    prev, cprev = t0, c0
    for log in logs:
        by_phase[log.phase].append((log.end - prev, log.cpu_end - cprev, log))
        prev, cprev = log.end, log.cpu_end
    net = obj.networks()[0]
    units: dict[int, tuple[float, float]] = {}
    rows = []
    formulas = PASSES[method][0]
    total = TYPICAL_EPOCHS[method][0] if method in TYPICAL_EPOCHS else sum(phase_epochs(method).values())
    flush_mid = folder_seconds(method, data, logs[-1].signals, max(total // 2, 1))
    for phase, items in by_phase.items():
        keep = items[1:] if len(items) > 1 else items
        seconds = statistics.median(s for s, _, _ in keep)
        cpu = statistics.median(c for _, c, _ in keep)
        counted = [table_passes(method, obj, log, n, n_test) for _, _, log in keep]
        agree = all(p.fwd_bwd == log.fwd_bwd and p.fwd == log.fwd for p, (_, _, log) in zip(counted, keep))
        fb = statistics.median(p.fwd_bwd for p in counted)
        fw = statistics.median(p.fwd for p in counted)
        tb = counted[0].train_batch
        if tb not in units:
            units[tb] = unit_costs(net, shape, tb, data.num_classes)
        t_step, t_fwd = units[tb]
        ideal = fb * t_step + fw * t_fwd
        rows.append(
            {
                "method": method,
                "phase": phase,
                "s_epoch": seconds,
                "cpu_epoch": cpu,
                "fwd_bwd": fb,
                "fwd": fw,
                "train_batch": tb,
                "ideal": ideal,
                "x_ideal": cpu / ideal,
                "hooked": "yes" if agree else f"no ({keep[0][2].fwd_bwd}, {keep[0][2].fwd})",
                "formula": formulas.get(phase, "?"),
                "flush_mid": flush_mid,
            }
        )
    return rows


def folder_seconds(method: str, data, signals: dict, records: int) -> float:
    """Seconds of one ``RunRecorder.flush`` (history.jsonl + signals.npz rewritten whole, as after every epoch) once
    ``records`` epochs of ``signals`` are stored: the run-folder cost of an epoch half-way through a full run, which
    the short schedules do not reach."""
    from lnlkit.train.recorder import RunRecorder

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        rec = RunRecorder(tmp, data.noise)
        for e in range(records):
            # float signals move a little every epoch in a real run; identical rows would compress for free
            moved = {
                k: (v * (1 + 1e-2 * rng.standard_normal(v.shape))).astype(v.dtype)
                if np.issubdtype(np.asarray(v).dtype, np.floating)
                else v
                for k, v in signals.items()
            }
            rec.log_epoch({"epoch": e, "phase": "train", "loss": 0.0}, moved, store=True)
        t0 = time.process_time()
        rec.flush()
        return time.process_time() - t0


def machine_slug() -> str:
    """A short slug of the CPU model and core count, e.g. ``amd-epyc-9454-2c``."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1]
                    break
    except OSError:
        pass
    drop = {"processor", "cpu", "core", "with", "radeon", "graphics", "(r)", "(tm)", "64-core", "48-core"}
    words = [w for w in model.lower().replace("@", " ").split() if w not in drop and not w.endswith("ghz")]
    slug = "-".join("".join(c for c in w if c.isalnum()) for w in words[:4]).strip("-")
    return f"{slug or 'cpu'}-{os.cpu_count()}c"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Work a method does per epoch beyond its network passes: why a phase can sit above 1.5x its ideal, and what would
# close the gap (printed under the table for every phase above that bound).
BEYOND_PASSES: dict[tuple[str, str], str] = {
    ("comining", "train"): "per step, a k-reciprocal neighbour search of each view over the 512-entry feature bank "
    "and the triplet loss's sorts (about 0.2 CPU s per digits epoch), algorithm work rather than overhead; sharing "
    "one distance matrix between them would change the float results. A GPU (the search is one batched matrix "
    "product) or a smaller `bank_size` would close it.",
}
ABOVE_IDEAL = 1.5  # the cost a phase may reach against its ideal before the table says why


def render(rows: list[dict], threads: int, main_epochs: int) -> str:
    ce = next((r["cpu_epoch"] for r in rows if r["method"] == "ce"), float("nan"))
    lines = [
        f"Epoch cost on the embedded digits (N = 1,347 training, 450 test images), each method's `digits` preset, "
        f"{threads} torch thread(s), CPU; short schedules ({main_epochs} main-phase epochs). "
        "Passes in samples per epoch; ideal = fwd+bwd x t_step(train batch) + fwd x t_fwd(batch 1024). "
        "`hooked`: the pass table agrees with forward-hook counts of the run. The ratios and estimates use the "
        "process's CPU seconds (one thread: the wall time of an otherwise idle core), which other work on the machine "
        "does not inflate; wall s / epoch is what this run saw.",
        "",
        "| method | phase | wall s / epoch | CPU s / epoch | fwd+bwd | fwd | train batch | ideal s / epoch | x ideal "
        "| x CE epoch | hooked |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['phase']} | {r['s_epoch']:.3f} | {r['cpu_epoch']:.3f} | {r['fwd_bwd']:,.0f} | "
            f"{r['fwd']:,.0f} | {r['train_batch']} | {r['ideal']:.3f} | {r['x_ideal']:.2f} | {r['cpu_epoch'] / ce:.2f} "
            f"| {r['hooked']} |"
        )
    above = [r for r in rows if r["x_ideal"] > ABOVE_IDEAL]
    if above:
        lines += ["", f"Phases above {ABOVE_IDEAL}x their ideal:", ""]
        for r in above:
            why = BEYOND_PASSES.get((r["method"], r["phase"]), "not explained yet: profile this phase")
            lines.append(f"- {r['method']} / {r['phase']} ({r['x_ideal']:.2f}x): {why}")
    lines += ["", "CPU time of a full `digits` run on one thread (epochs per phase x CPU s / epoch):", ""]
    lines += [
        "| method | epochs per phase | run-folder write s / epoch at mid-run | est. run s |",
        "|---|---|---|---|",
    ]
    by_method: dict[str, dict[str, float]] = defaultdict(dict)
    flush: dict[str, float] = {}
    for r in rows:
        by_method[r["method"]][r["phase"]] = r["cpu_epoch"]
        flush[r["method"]] = r["flush_mid"]
    for method, phases in by_method.items():
        counts = phase_epochs(method)
        # the short schedules' s / epoch hold a run folder of a few epochs; add the mid-run write cost
        est = sum(counts.get(p, 0) * (s + flush[method]) for p, s in phases.items())
        if any(counts.get(p, 0) and p not in phases for p in counts):
            est = float("nan")
        what = ", ".join(f"{p} {c}" for p, c in counts.items())
        shown = f"{est:.0f}"
        if method in TYPICAL_EPOCHS:  # a schedule that ends early: the bound, and the epochs runs really take
            typical, seen = TYPICAL_EPOCHS[method]
            per_epoch = statistics.mean(phases.values()) + flush[method]
            what = f"at most: {what}; digits runs take {seen}"
            shown = f"<= {est:.0f}; ~{typical * per_epoch:.0f} at {typical} epochs"
        lines.append(f"| {method} | {what} | {flush[method]:.3f} | {shown} |")
    lines += ["", "Pass formulas (N training samples, B the preset's batch):", ""]
    seen = set()
    for r in rows:
        if (r["method"], r["phase"]) not in seen:
            seen.add((r["method"], r["phase"]))
            lines.append(f"- {r['method']} / {r['phase']}: {r['formula']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--epochs", type=int, default=3, help="main-phase epochs measured per method")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import lnlkit

    data = lnlkit.load_dataset("digits").with_noise("symmetric:0.4", seed=0)
    rows = []
    for method in args.methods:
        rows += measure(method, data, args.epochs)
    text = render(rows, args.threads, args.epochs)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()

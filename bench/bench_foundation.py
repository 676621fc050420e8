"""Benchmarks of the foundation: CE epoch cost and device-loader throughput (prints tables; asserts nothing).

    python bench/bench_foundation.py [--device auto|cpu|cuda] [--cifar-batches 20]

* CE epoch on the embedded digits (small_cnn, digits preset), seconds per epoch including the per-sample pass.
* CE training steps on CIFAR-shaped synthetic tensors (50,000 × 3 × 32 × 32) with PreAct ResNet-18, batch 128:
  images per second, and the extrapolated seconds per 50k-image epoch.
* Device-loader throughput (crop + flip on whole batches) on the same tensors, images per second.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import lnlkit
from lnlkit.data import Dataset
from lnlkit.train.augment import Augment
from lnlkit.train.device import resolve_device
from lnlkit.train.loader import DeviceData


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def digits_epoch(device: str) -> float:
    data = lnlkit.load_dataset("digits").with_noise("symmetric:0.4", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        run = lnlkit.get_method("ce", preset="digits", epochs=10).fit(data, out=tmp, device=device, progress=False)
    return float(np.median([r["wall_s"] for r in run.history[1:]]))


def cifar_like(n: int = 50_000) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    return Dataset.from_arrays(
        x, y, x[:1000], y[:1000], name="cifar-like", mean=(0.5,) * 3, std=(0.25,) * 3, clean_labels=True
    )


def cifar_steps(ds: Dataset, device: torch.device, batches: int, amp: bool) -> float:
    from lnlkit.models import build_model
    from lnlkit.train.evaluate import autocast

    data = DeviceData(ds.with_noise("none"), device, seed=0, channels_last=device.type == "cuda")
    net = build_model("preact_resnet18", 10).to(device)
    if data.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    loader = data.loader(128, augment=Augment(4, True), stream="bench")
    seen, t0 = 0, None
    for step, batch in enumerate(loader.epoch(0)):
        if step == 3:  # warm-up steps excluded
            _sync(device)
            t0, seen = time.perf_counter(), 0
        if step >= batches + 3:
            break
        with autocast(device, "bf16" if amp else "fp32"):
            loss = F.cross_entropy(net(batch.x).float(), batch.y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(batch.y)
    _sync(device)
    return seen / (time.perf_counter() - t0)


def loader_throughput(ds: Dataset, device: torch.device) -> float:
    data = DeviceData(ds.with_noise("none"), device, seed=0)
    loader = data.loader(512, augment=Augment(4, True), stream="bench")
    _sync(device)
    t0, seen = time.perf_counter(), 0
    for batch in loader.epoch(0):
        seen += len(batch.y)
    _sync(device)
    return seen / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cifar-batches", type=int, default=20)
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"machine: {platform.node()} · {name} · torch {torch.__version__}")
    ds = cifar_like()
    rows = [
        ("CE digits preset, s/epoch (incl. per-sample pass)", f"{digits_epoch(str(device)):.3f}"),
        ("device loader crop+flip, images/s (50k CIFAR-shaped)", f"{loader_throughput(ds, device):,.0f}"),
    ]
    for amp in [False, True] if device.type == "cuda" else [False]:
        ips = cifar_steps(ds, device, args.cifar_batches, amp)
        rows.append((f"CE PreAct ResNet-18 train, images/s (amp={amp})", f"{ips:,.0f}"))
        rows.append((f"  → s per 50k-image epoch (amp={amp})", f"{50_000 / ips:.1f}"))
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")


if __name__ == "__main__":
    main()

"""Throughput of the batched AutoAugment / RandAugment against torchvision applied image by image (prints a markdown
table; asserts nothing).

    python bench/bench_augment.py [--device cpu|cuda|both] [--batch 512] [--repeats 3] [--threads 1]

lnlkit's policies run on normalised float batches ``(B, 3, 32, 32)`` on the device (the way the methods call them);
torchvision's ``v2.AutoAugment(AutoAugmentPolicy.CIFAR10)`` / ``v2.RandAugment()`` run on uint8 CPU tensors one image
at a time, as a data loader worker would (one worker, no decoding).  Images per second, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torchvision.transforms import v2

from lnlkit.train.augment import AutoAugment, RandAugment

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up (kernels, caches)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ours(policy, batch: int, repeats: int, device: torch.device) -> float:
    g = torch.Generator(device=device).manual_seed(0)
    raw = torch.randint(0, 256, (batch, 3, 32, 32), generator=g, device=device).float() / 255
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    x = (raw - mean) / std
    return batch / _time(lambda: policy(x, g), repeats, device)


def torchvision_per_image(transform, batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    imgs = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    return batch / _time(lambda: [transform(im) for im in imgs], repeats, torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "both"])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "both" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    policies = {
        "AutoAugment CIFAR-10 (torchvision magnitudes)": lambda: AutoAugment(MEAN, STD, variant="torchvision"),
        "AutoAugment CIFAR-10 (Prune4ReL/SOP archive)": lambda: AutoAugment(MEAN, STD, variant="fastaa"),
        "AutoAugment CIFAR-10 (Co-mining, randaugment 1.0.2)": lambda: AutoAugment(MEAN, STD, variant="deepvoltaire"),
        "RandAugment 2 ops, magnitude 9 (torchvision)": lambda: RandAugment(MEAN, STD, 2, 9),
        "RandAugment (Co-mining, randaugment 1.0.2)": lambda: RandAugment(MEAN, STD, variant="deepvoltaire"),
    }
    reference = {"AutoAugment": v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10), "RandAugment": v2.RandAugment(2, 9)}
    ref = {k: torchvision_per_image(t, args.batch, args.repeats) for k, t in reference.items()}
    name = torch.cuda.get_device_name() if "cuda" in devices else platform.processor() or platform.machine()
    print(f"batch {args.batch} x 3 x 32 x 32, {args.threads} torch thread(s), torch {torch.__version__}, {name}\n")
    print("| policy | device | lnlkit batched (img/s) | torchvision per image, CPU (img/s) | speed-up |")
    print("|---|---|---:|---:|---:|")
    for label, make in policies.items():
        base = ref["AutoAugment" if label.startswith("AutoAugment") else "RandAugment"]
        for dev in devices:
            rate = ours(make(), args.batch, args.repeats, torch.device(dev))
            print(f"| {label} | {dev} | {rate:,.0f} | {base:,.0f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    main()

"""Epoch cost of each method as a ratio to one CE epoch on the same model (prints tables; asserts nothing).

    python bench/bench_methods.py [--methods dividemix smr promix] [--device auto|cpu|cuda] [--cifar-n 2048]

Two settings per method:

* the embedded digits with the method's ``digits`` preset (small CNN);
* CIFAR-shaped synthetic tensors (``--cifar-n`` images of 3 × 32 × 32, 10 classes, 40% symmetric noise) with the
  backbone of the method's CIFAR-10 preset (PreAct ResNet-18 for DivideMix/SMR, the 7-layer CNN for Co-mining,
  plain ResNet-18 with a second head for ProMix, and for SOP+/Prune4ReL their CIFAR-10N preset), batch size as in the
  preset.  Prune4ReL's "train" epoch runs on the subset (20%) and includes the selection in its first epoch; the
  median over the main-phase epochs leaves that one-off out when there are more than one.

For each, the method runs a short schedule (one warm-up epoch where the method has a warm-up, then a few epochs of
its main phase) and the table gives the median wall seconds of an epoch per phase, including the per-sample and test
passes the method makes, and the ratio to a CE epoch (with its per-sample pass) on the same data and model.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from collections import defaultdict

import numpy as np
import torch

import lnlkit
from lnlkit.data import Dataset
from lnlkit.methods import list_methods, method_class
from lnlkit.train.device import resolve_device

WARMUP_FIELDS = ("warm_up", "warmup_epochs", "warmup", "max_phase_a_epochs")  # Me-Momentum: phase A
# methods whose CIFAR presets are CIFAR-N settings (``preset_for`` does not match synthetic noise): the CIFAR-10 one
CIFAR_PRESETS = {
    "sop": "cifar10n",
    "prune4rel": "cifar10n-sop",
    **{
        f"prune:{b}": "cifar10n-sop"
        for b in ("uniform", "smallloss", "uncertainty", "forgetting", "grand", "moderate", "kcentergreedy", "glister")
    },
}


def _short(method: str, preset: str | None, main_epochs: int, **overrides):
    """The method with one warm-up epoch (where it has one) followed by ``main_epochs`` epochs of its main phase."""
    config = method_class(method).PRESETS[preset]() if preset else method_class(method).Config()
    warm = [f for f in WARMUP_FIELDS if hasattr(config, f)]
    extra = {warm[0]: 1} if warm else {}
    return lnlkit.get_method(method, preset=preset, epochs=len(extra) + main_epochs, **extra, **overrides)


def _phase_seconds(run) -> dict[str, float]:
    by_phase = defaultdict(list)
    for record in run.history:
        by_phase[record.get("phase", "train")].append(record["wall_s"])
    # the first epoch of a phase pays one-off costs (allocation, cudnn autotuning); skip it when there are more
    return {phase: float(np.median(times[1:] if len(times) > 1 else times)) for phase, times in by_phase.items()}


def _cifar_like(n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    return Dataset.from_arrays(x, y, x[:1000], y[:1000], name="cifar-like", clean_labels=True)


def _measure(method: str, preset: str | None, data, device: str, main_epochs: int, **overrides) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        run = _short(method, preset, main_epochs, **overrides).fit(data, out=tmp, device=device, progress=False)
    return _phase_seconds(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=[m for m in list_methods() if m != "ce"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cifar-n", type=int, default=2048, help="synthetic CIFAR-shaped training images")
    parser.add_argument("--epochs", type=int, default=3, help="main-phase epochs measured per method")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(
        f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )

    digits = lnlkit.load_dataset("digits").with_noise("symmetric:0.4", seed=0)
    cifar = _cifar_like(args.cifar_n).with_noise("symmetric:0.4", seed=0)
    rows = []
    for method in args.methods:
        cls = method_class(method)
        cifar_preset = cls.preset_for("cifar10", "symmetric-inclusive:0.5")
        # methods whose CIFAR-10 preset is not named after DivideMix's settings (Co-mining: ``cifar10nc``; SOP+ and
        # Prune4ReL: CIFAR-10N presets)
        cifar_preset = (
            cifar_preset
            or CIFAR_PRESETS.get(method)
            or next((p for p in ("cifar10", "cifar10nc") if p in cls.PRESETS), None)
        )
        for setting, data, preset in (
            ("digits", digits, "digits"),
            (f"cifar-like {args.cifar_n}", cifar, cifar_preset),
        ):
            if preset is None:
                continue
            model = cls.PRESETS[preset]().model
            ce = _measure(
                "ce", "digits", data, str(device), args.epochs, model=model, batch_size=cls.PRESETS[preset]().batch_size
            )
            ce_epoch = next(iter(ce.values()))
            for phase, seconds in _measure(method, preset, data, str(device), args.epochs).items():
                rows.append((method, setting, preset, model, phase, seconds, seconds / ce_epoch, ce_epoch))

    print()
    print("| method | data | preset | model | phase | s / epoch | × CE epoch | CE s / epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for method, setting, preset, model, phase, seconds, ratio, ce_epoch in rows:
        print(f"| {method} | {setting} | {preset} | {model} | {phase} | {seconds:.2f} | {ratio:.2f} | {ce_epoch:.2f} |")


if __name__ == "__main__":
    main()

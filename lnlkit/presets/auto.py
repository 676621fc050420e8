"""The ``auto`` preset: every method sized for a data set the kit has never seen (the user's own).

A paper preset is written for one data set (CIFAR-10 at 50,000 images, Clothing1M, ...).  ``auto`` starts from the
one setting the kit has tuned for a small data set of its own, the method's ``digits`` preset at the results table's
schedule (:data:`lnlkit.reproduce.TABLE_SCHEDULES`, the digits' 1,347 training images), and sizes it for the data at
hand the way that schedule was derived from the preset:

* **network** follows the data (``model="auto"``: :attr:`lnlkit.Dataset.default_model`): flat features an MLP,
  images up to 16 px the digits' ``small_cnn``, up to 64 px PreAct ResNet-18, larger images (and image files) a
  ResNet-50 that starts from ImageNet weights when ``weights_path`` is given;
* **schedule**: every setting counted in epochs (the epochs, warm-ups, LR milestones and decay start, SMR's
  recalibration period, ProMix's label-guessing start and ramp, Me-Momentum's phase and round lengths, Co-mining's
  warm-up and decay start) is multiplied by ``s(N) = clip(sqrt(1347 / N), 1/3, 3)`` (rounded, at least 1): a larger
  data set takes more optimisation steps per epoch and needs fewer epochs, a smaller one more (at N <= 150 the
  digits preset's own, three times longer schedule);
* **batch**: the preset's, halved until the data hold at least four batches (never below 8);
* **augmentation**: images up to 16 px keep the digits' crop padding 1 and no flip; larger images take the
  method's CIFAR recipe (its config's defaults: crop padding 4, flips, its official strong view).

The algorithm and its constants (thresholds, loss weights, temperatures, momenta) never change.  Methods that
need the noise rate as an input (Co-mining's forget rate) cannot read it from user data: set it
(``forget_rate=...``) or let :func:`lnlkit.find_label_issues` estimate it from the other methods.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["AUTO_REFERENCE_N", "AUTO_EPOCH_FIELDS", "schedule_factor", "scale_schedule", "auto_config", "auto_method"]

# training samples of the embedded digits, on which the results table's schedules were set
AUTO_REFERENCE_N = 1347

_PRUNE_FIELDS = ("epochs",)  # Prune4ReL and its baselines keep their warm-up, as the results table does
# per method: the settings counted in epochs (scaled by s(N)); ints, tuples of ints (milestones) or floats (ramps)
AUTO_EPOCH_FIELDS: dict[str, tuple[str, ...]] = {
    "ce": ("epochs", "lr_milestones"),
    "dividemix": ("epochs", "warm_up", "lr_milestones"),
    "smr": ("epochs", "warm_up", "lr_milestones", "recal_period"),
    "promix": ("epochs", "warm_up", "start_expand", "rampup_length"),
    "comining": ("epochs", "warmup_epochs", "decay_start"),
    "mememomentum": ("max_phase_a_epochs", "round_epochs", "round_milestones"),
    "sop": ("epochs", "lr_milestones"),
    "prune4rel": _PRUNE_FIELDS,
}

_MIN_SAMPLES = 16  # fewer cannot fill two batches of the smallest batch size
_MIN_BATCH = 8


def schedule_factor(n_train: int) -> float:
    """``s(N) = clip(sqrt(1347 / N), 1/3, 3)``: how ``auto`` scales the results table's schedule for ``N`` samples.

    Parameters
    ----------
    n_train : int
        Training samples.

    Returns
    -------
    float
    """
    if n_train < 1:
        raise ValueError(f"n_train must be positive, got {n_train}")
    return float(min(3.0, max(1.0 / 3.0, math.sqrt(AUTO_REFERENCE_N / n_train))))


def _scaled(value: Any, factor: float) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(sorted({max(1, int(round(v * factor))) for v in value}))
    if isinstance(value, int):
        return max(1, int(round(value * factor)))
    return max(1.0, round(float(value) * factor, 1))


def scale_schedule(method: str, config: Any, factor: float) -> Any:
    """A copy of ``config`` with the method's epoch-counted settings (:data:`AUTO_EPOCH_FIELDS`) times ``factor``.

    Integers round (at least 1), milestone tuples round and drop duplicates and any at or past the last epoch, ramp
    lengths (floats) round to one decimal (at least 1); a warm-up is kept shorter than the run.

    Parameters
    ----------
    method : str
        A method name (``prune:*`` baselines use Prune4ReL's fields).
    config : MethodConfig
    factor : float
    """
    key = "prune4rel" if method.startswith("prune") else method
    changes = {name: _scaled(getattr(config, name), factor) for name in AUTO_EPOCH_FIELDS.get(key, ())}
    epochs = changes.get("epochs", getattr(config, "epochs", 0))
    if epochs:
        for name in ("lr_milestones",):
            if name in changes:
                changes[name] = tuple(m for m in changes[name] if m < epochs)
        for name in ("warm_up", "warmup_epochs", "start_expand", "decay_start"):
            if changes.get(name) is not None and changes[name] >= epochs:
                changes[name] = max(1, epochs - 1)
    if "round_milestones" in changes and "round_epochs" in changes:
        changes["round_milestones"] = tuple(m for m in changes["round_milestones"] if m < changes["round_epochs"])
    return dataclasses.replace(config, **changes)


def _table_schedules() -> dict[str, dict[str, Any]]:
    from lnlkit.reproduce import TABLE_SCHEDULES  # the batch module is heavy; only a configured method needs it

    return TABLE_SCHEDULES


def auto_config(method: str, data: Any) -> tuple[Any, dict[str, Any]]:
    """The ``auto`` configuration of ``method`` for ``data``, and what it chose (for ``config.json`` and the docs).

    Parameters
    ----------
    method : str
        A method name (``lnlkit.list_methods()``).
    data : Dataset or NoisyDataset

    Returns
    -------
    config : MethodConfig
    choices : dict
        ``n_train``, ``schedule_factor``, ``model``, ``batch_size`` and the scaled epoch-counted settings.

    Raises
    ------
    ValueError
        For a method without a digits preset, or fewer than 16 training samples.
    """
    from lnlkit.data.dataset import NoisyDataset
    from lnlkit.methods import method_class

    dataset = data.dataset if isinstance(data, NoisyDataset) else data
    cls = method_class(method)
    if "digits" not in cls.PRESETS:
        raise ValueError(f"{cls.name} has no small-data preset to size automatically; pass a preset by name")
    n = len(dataset.y_train)
    if n < _MIN_SAMPLES:
        raise ValueError(f"{n} training samples are too few to train a network; need at least {_MIN_SAMPLES}")
    config = dataclasses.replace(cls.PRESETS["digits"](), **_table_schedules().get(cls.name, {}))
    factor = schedule_factor(n)
    config = scale_schedule(cls.name, config, factor)
    batch = int(config.batch_size)
    while batch > _MIN_BATCH and n < 4 * batch:
        batch //= 2
    changes: dict[str, Any] = {"batch_size": batch, "model": "auto"}
    if getattr(config, "model_width", None) is not None and dataset.default_model not in ("small_cnn", "mlp"):
        changes["model_width"] = None  # a width of the digits' small CNN; other networks keep their own
    small = dataset.is_image and dataset.in_memory and dataset.input_shape[-1] <= 16
    if dataset.is_image and not small:  # natural images: the method's CIFAR recipe of augmentation
        defaults = cls.Config()
        for name in ("crop_padding", "flip", "strong_view"):
            if hasattr(config, name):
                changes[name] = getattr(defaults, name)
    config = dataclasses.replace(config, **changes)
    config.validate()
    fields = AUTO_EPOCH_FIELDS.get("prune4rel" if cls.name.startswith("prune") else cls.name, ())
    choices = {
        "n_train": n,
        "schedule_factor": round(factor, 4),
        "model": dataset.default_model,
        "batch_size": batch,
        **{name: getattr(config, name) for name in fields},
    }
    return config, choices


def auto_method(method: str, data: Any, **overrides: Any):
    """``method`` configured by the ``auto`` preset for ``data``, with ``overrides`` on top.

    Parameters
    ----------
    method : str
    data : Dataset or NoisyDataset
    **overrides
        Config fields to set after sizing (they win), e.g. ``epochs=5`` or ``weights_path=...``.

    Returns
    -------
    Method
        With ``preset="auto"``; ``method.auto_choices`` holds what ``auto`` picked.
    """
    from lnlkit.methods import method_class, with_overrides

    cls = method_class(method)
    config, choices = auto_config(method, data)
    built = cls(with_overrides(cls, config, overrides), preset="auto")
    built.auto_choices = choices
    return built

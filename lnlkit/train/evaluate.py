"""Evaluation passes: predictions over a split, per-sample training losses, test and ensemble accuracy."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from lnlkit.train.device import autocast
from lnlkit.train.loader import DeviceData

__all__ = [
    "autocast",
    "predict",
    "predict_train_subset",
    "per_sample_pass",
    "accuracy",
    "class_balanced_accuracy",
    "per_class_recall_precision",
    "evaluate_test",
    "PerSample",
]


@torch.no_grad()
def predict(
    model: nn.Module,
    data: DeviceData,
    split: str = "test",
    batch_size: int = 1024,
    precision: str = "fp32",
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Logits of ``model`` over a whole split, in order, in eval mode (the model's mode is restored).

    Parameters
    ----------
    model : nn.Module
    data : DeviceData
    split : {"train", "test", "val"}
        ``"val"`` only where the data set has a validation split (``data.has_val``).
    precision : {"fp32", "bf16", "fp16"}
        Autocast of the forward passes (see :func:`lnlkit.train.device.autocast`).
    forward : callable, optional
        ``forward(model, x) -> logits``; defaults to ``model(x)`` (use it to read a second head).

    Returns
    -------
    Tensor float32, shape (N_split, C), on the data's device
    """
    was_training = model.training
    model.eval()
    outs = []
    try:
        for _, x in data.iter_split(split, batch_size):
            with autocast(data.device, precision):
                out = model(x) if forward is None else forward(model, x)
            outs.append(out.float())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0, data.num_classes, device=data.device)


@torch.no_grad()
def predict_train_subset(
    model: nn.Module, data: DeviceData, indices: torch.Tensor, batch_size: int = 1024, precision: str = "fp32"
) -> torch.Tensor:
    """Logits of ``model`` for the training samples ``indices``, un-augmented, in eval mode, in the given order.

    Like :func:`predict` on the training split, for a subset (e.g. the per-epoch Clothing1M sample of DivideMix).

    Returns
    -------
    Tensor float32, shape (len(indices), C), on the data's device
    """
    was_training = model.training
    model.eval()
    outs = []
    try:
        for _, x in data.iter_train_subset(indices, batch_size):
            with autocast(data.device, precision):
                outs.append(model(x).float())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0, data.num_classes, device=data.device)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in percent. ``logits`` (N, C), ``targets`` (N,)."""
    if len(targets) == 0:
        return float("nan")
    return float((logits.argmax(1) == targets).float().mean().item() * 100.0)


def class_balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean over classes of the per-class accuracy (recall), in percent.

    Classes without any sample in ``labels`` are left out of the mean (0.0 when ``labels`` is empty).

    Parameters
    ----------
    pred, labels : Tensor int64 (N,)
        Predicted and reference classes.
    num_classes : int

    Returns
    -------
    float
    """
    recall, _ = per_class_recall_precision(pred, labels, num_classes)
    present = torch.bincount(labels.cpu(), minlength=num_classes) > 0
    return float(recall[present].mean().item() * 100.0) if bool(present.any()) else 0.0


def per_class_recall_precision(
    pred: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class recall and precision from predictions and reference labels.

    Parameters
    ----------
    pred, labels : Tensor int64 (N,)
    num_classes : int

    Returns
    -------
    recall, precision : Tensor float32 (C,), on the CPU
        An undefined value (no sample of the class, or the class never predicted) is 0.
    """
    if pred.shape != labels.shape:
        raise ValueError(f"pred and labels must have the same shape, got {tuple(pred.shape)} and {tuple(labels.shape)}")
    pred, labels = pred.cpu().long(), labels.cpu().long()
    hits = torch.bincount(labels[pred == labels], minlength=num_classes).float()
    support = torch.bincount(labels, minlength=num_classes).float()
    predicted = torch.bincount(pred, minlength=num_classes).float()
    recall = torch.where(support > 0, hits / support.clamp_min(1.0), torch.zeros_like(hits))
    precision = torch.where(predicted > 0, hits / predicted.clamp_min(1.0), torch.zeros_like(hits))
    return recall, precision


class PerSample:
    """Result of :func:`per_sample_pass`: ``loss`` (N,), ``logits`` (N, C), ``probs`` (N, C), all on the device."""

    def __init__(self, logits: torch.Tensor, labels: torch.Tensor):
        self.logits = logits
        self.loss = F.cross_entropy(logits, labels, reduction="none")
        self.probs = logits.softmax(1)

    @property
    def pred(self) -> torch.Tensor:
        return self.logits.argmax(1)


def per_sample_pass(
    model: nn.Module,
    data: DeviceData,
    labels: torch.Tensor | None = None,
    batch_size: int = 1024,
    precision: str = "fp32",
) -> PerSample:
    """Per-sample cross-entropy of every training sample against its given label (eval mode, no augmentation).

    This is the pass the sample-selection methods fit their GMMs on, and what the recorder stores as the loss
    signal.

    Returns
    -------
    PerSample with ``loss`` of shape (N_train,)
    """
    logits = predict(model, data, "train", batch_size, precision)
    return PerSample(logits, data.labels if labels is None else labels)


def evaluate_test(
    models: Sequence[nn.Module] | nn.Module,
    data: DeviceData,
    batch_size: int = 1024,
    precision: str = "fp32",
    ensemble: str = "logits",
) -> dict[str, float]:
    """Test accuracy of each network and of their ensemble.

    Parameters
    ----------
    models : a module or a sequence of modules
    ensemble : {"logits", "probs"}
        Average the networks' logits (DivideMix, ProMix) or their softmax outputs.

    Returns
    -------
    dict
        ``{"test_acc": ...}`` for one network; ``{"test_acc_net1": ..., "test_acc_net2": ..., "test_acc": ensemble}``
        for several. Accuracies in percent.
    """
    if isinstance(models, nn.Module):
        models = [models]
    logits = [predict(m, data, "test", batch_size, precision) for m in models]
    if len(logits) == 1:
        return {"test_acc": accuracy(logits[0], data.y_test)}
    out = {f"test_acc_net{i + 1}": accuracy(lg, data.y_test) for i, lg in enumerate(logits)}
    if ensemble not in ("logits", "probs"):
        raise ValueError(f"ensemble must be 'logits' or 'probs', got {ensemble!r}")
    stack = torch.stack(logits) if ensemble == "logits" else torch.stack([lg.softmax(1) for lg in logits])
    out["test_acc"] = accuracy(stack.mean(0), data.y_test)
    return out

"""The :class:`Context` the driver hands a method's hooks: the data on the device, the seed, the data's shape, and
the driver's bookkeeping a method may ask about (which epochs record per-sample signals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from lnlkit.train.loader import DeviceData, stream_generator

__all__ = ["Context"]


@dataclass
class Context:
    """What a method's hooks may use.  Note: no true noise mask here — only the given labels."""

    data: DeviceData
    device: torch.device
    seed: int
    num_classes: int
    n_train: int
    in_channels: int
    input_shape: tuple
    default_model: str
    dataset_name: str
    progress: Any = None  # the progress bar, for per-step postfixes
    # the noise spec string the user asked for (e.g. "openset:0.2+symmetric:0.4"): the *nominal* setting, which some
    # official codes take as an argument (Co-mining's forget rate); never the realised noise mask
    noise_spec: str | None = None
    # the driver's signal-recording rule (see records_signals); the driver fills these in, a Context made by hand
    # records every epoch
    record_signals_every: int = 1
    total_epochs: int | None = None
    finished: Callable[[], bool] | None = None

    def records_signals(self, epoch: int) -> bool:
        """Whether the driver stores the per-sample signals of epoch ``epoch``: the last epoch (``total_epochs - 1``
        or the epoch after which the method's schedule has ``finished``) and every ``record_signals_every``-th.

        A method asks this to skip per-sample passes whose results would be dropped.
        """
        last = (self.total_epochs is not None and epoch == self.total_epochs - 1) or (
            self.finished is not None and self.finished()
        )
        return last or epoch % self.record_signals_every == 0

    def build_model(self, name: str = "auto", weights_path: str | None = None, **kw: Any) -> nn.Module:
        """Build a registry model sized for this data (``"auto"``: the data set's default), on the device; flat
        features get an MLP in place of an image network (:func:`lnlkit.models.build_model_for_input`).

        ``weights_path`` (a local ImageNet weights file) goes to the model only when set, so a config's
        ``weights_path=None`` reaches no builder.
        """
        from lnlkit.models import build_model_for_input

        if weights_path:
            kw["weights_path"] = weights_path
        # flat features get an MLP whatever image network the preset names (see build_model_for_input)
        name = self.default_model if name == "auto" else name
        net = build_model_for_input(name, self.num_classes, self.input_shape, **kw).to(self.device)
        return net.to(memory_format=torch.channels_last) if self.data.channels_last else net

    def generator(self, epoch: int, stream: str) -> torch.Generator:
        """A reproducible per-(epoch, stream) generator on the device (see ``stream_generator``)."""
        return stream_generator(self.device, self.seed, epoch, stream)

"""Presets: each paper setting's hyperparameters, with its source, one module per method file.

A preset is a function that returns a filled-in config dataclass; its docstring says where every value comes from
(paper table, official script, README, issue thread) and how the kit reads it, including what is UNVERIFIED or
a deviation.  ``lnlkit/presets/<method>.py`` holds the presets of ``lnlkit/methods/<method>.py``:

=============== ============================================================
``ce``          CE baseline
``dividemix``   DivideMix and SMR (``PRESETS`` and ``SMR_PRESETS``)
``promix``      ProMix
``comining``    Co-mining
``me_momentum`` Me-Momentum
``sop``         SOP / SOP+
``prune4rel``   Prune4ReL and the pruning baselines (``UNIFORM_PRESETS``, ...)
=============== ============================================================

How the two halves meet.  A presets module imports its method's config dataclass, so the method module cannot
import its presets module while it is being imported (that would be an import cycle).  The method class therefore
names its table with :class:`PresetTable`, a class attribute that imports the presets module the first time
``Method.PRESETS`` is read::

    class DivideMix(Method):
        PRESETS = PresetTable("lnlkit.presets.dividemix")

``Method.PRESETS``, ``Method.preset_for`` and ``get_method(name, preset=...)`` work as before, whichever module is
imported first.  This package's ``__init__`` imports no method module, so ``lnlkit.methods.*`` may import it.

To add a preset, add a function to the method's presets module that returns its config, write its source and
reading in the docstring, and list it in that module's ``PRESETS`` dict.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["PresetTable"]


class PresetTable:
    """Class attribute standing for the ``attr`` dict of the module ``module``, imported on first read.

    Parameters
    ----------
    module : str
        Dotted name of the presets module, e.g. ``"lnlkit.presets.dividemix"``.
    attr : str
        Name of the dict ``{preset name: () -> config}`` in that module (default ``"PRESETS"``).
    """

    def __init__(self, module: str, attr: str = "PRESETS"):
        self.module, self.attr = module, attr

    def __get__(self, obj: Any, owner: type | None = None) -> dict[str, Callable[[], Any]]:
        return getattr(importlib.import_module(self.module), self.attr)

    def __repr__(self) -> str:
        return f"PresetTable({self.module!r}, {self.attr!r})"

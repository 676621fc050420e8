"""lnlkit: a research kit for learning with noisy labels.

The public API (see the README and docs/run_folder.md):

>>> import lnlkit
>>> data = lnlkit.load_dataset("digits").with_noise("symmetric:0.4", seed=0)
>>> run = lnlkit.get_method("ce", preset="digits").fit(data, out="runs/ce-sym40-s0")
>>> lnlkit.results_table("runs/")
"""

from lnlkit._version import __version__  # noqa: E402
from lnlkit.data import Dataset, DatasetNotFoundError, NoisyDataset, load_dataset, load_folder, load_table  # noqa: E402
from lnlkit.detect import find_label_issues  # noqa: E402
from lnlkit.methods import get_method, list_methods  # noqa: E402
from lnlkit.noise import NoisyLabels, inject_noise, noise_summary  # noqa: E402
from lnlkit.presets.auto import auto_method  # noqa: E402
from lnlkit.runs import RunResult, load_run, results_table  # noqa: E402

__all__ = [
    "__version__",
    "Dataset",
    "NoisyDataset",
    "DatasetNotFoundError",
    "load_dataset",
    "load_folder",
    "load_table",
    "inject_noise",
    "NoisyLabels",
    "noise_summary",
    "get_method",
    "list_methods",
    "load_run",
    "results_table",
    "RunResult",
    "find_label_issues",
    "auto_method",
]

"""Pieces shared by the method test modules (``test_dividemix``, ``test_promix``, ``test_comining``, ...)."""

import torch

from lnlkit.methods.base import Context
from lnlkit.train.loader import DeviceData

# CE (``ce`` preset ``digits``) on digits with symmetric:0.4, seed 0, measured on this kit's CPU runs: best epoch
# 95.1 %, last epoch 66.9 % (see tests/test_criteria.py for the CE run itself).  The methods' acceptance criterion:
# above CE's best epoch and at least 15 points above its last.
CE_SYM40_SEED0_BEST, CE_SYM40_SEED0_LAST = 95.1, 66.9

# torch's thread count when the test session started (the method modules run single-threaded, see conftest.py)
DEFAULT_THREADS = torch.get_num_threads()


def method_context(method, noisy, seed: int = 0) -> Context:
    """The CPU Context the driver would give ``method`` (its ``setup`` included), without running ``fit``."""
    dev = torch.device("cpu")
    torch.manual_seed(seed)
    data = DeviceData(noisy, dev, seed)
    ctx = Context(data=data, device=dev, seed=seed, num_classes=noisy.num_classes, n_train=len(noisy.labels),
                  in_channels=data.input_shape[0], input_shape=data.input_shape,
                  default_model=noisy.dataset.default_model, dataset_name=noisy.name, noise_spec=noisy.noise.spec)
    method.setup(ctx)
    return ctx

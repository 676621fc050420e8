"""``lnlkit.train.device``: device resolution and RNG state round trips."""

import random

import numpy as np
import pytest
import torch

from lnlkit.train.device import resolve_device, rng_state, seed_everything, set_rng_state


def test_device_and_rng_helpers():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    seed_everything(5)
    state = rng_state()
    a = (torch.rand(3), np.random.rand(), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]

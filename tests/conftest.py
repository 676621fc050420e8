import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def digits():
    from lnlkit.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
    """400 training / 150 test images of the embedded digits: short method runs stay around a second."""
    from lnlkit.data import Dataset

    ds = digits
    return Dataset.from_arrays(
        ds.x_train[:400],
        ds.y_train[:400],
        ds.x_test[:150],
        ds.y_test[:150],
        name="digits",
        num_classes=10,
        mean=ds.mean,
        std=ds.std,
        pixel_scale=16.0,
        clean_labels=True,
    )


@pytest.fixture(scope="module")
def one_thread():
    """Run a module single-threaded (restored afterwards): on a busy 2-core machine OpenMP's spinning threads make
    small-batch CPU forwards many times slower than one thread.  Use ``pytestmark = pytest.mark.usefixtures(...)``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

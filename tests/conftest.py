import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def digits():
    from lnlkit.data import load_dataset

    return load_dataset("digits")

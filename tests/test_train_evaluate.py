"""``lnlkit.train.evaluate``: per-sample passes, predictions and ensembles."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lnlkit.data import Dataset
from lnlkit.train.evaluate import evaluate_test, per_sample_pass, predict
from lnlkit.train.loader import DeviceData


class _Fixed(nn.Module):
    """Logits are a fixed function of the first input value (for exact evaluation checks)."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.as_tensor(table, dtype=torch.float32)

    def forward(self, x):
        return self.table[x.reshape(len(x), -1)[:, 0].round().long()]


def test_predict_per_sample_and_ensemble():
    x = np.arange(6, dtype=np.float32).reshape(6, 1)
    y = np.array([0, 1, 0, 1, 0, 1])
    ds = Dataset.from_arrays(x, y, x, y, mean=[0.0], std=[1.0], num_classes=2, clean_labels=True)
    data = DeviceData(ds.with_noise("none"), torch.device("cpu"))
    good = _Fixed([[9.0, 0], [0, 9.0]] * 3)  # always right, and more confident than `half`
    half = _Fixed([[5.0, 0], [5.0, 0]] * 3)  # always predicts 0
    assert predict(good, data, "test", batch_size=4).shape == (6, 2)
    ps = per_sample_pass(half, data, batch_size=4)
    assert torch.allclose(ps.loss[0], F.cross_entropy(torch.tensor([[5.0, 0]]), torch.tensor([0])))
    assert ps.loss[1] > ps.loss[0] and ps.pred.tolist() == [0] * 6
    res = evaluate_test([good, half], data, batch_size=4)
    assert res["test_acc_net1"] == 100.0 and res["test_acc_net2"] == 50.0 and res["test_acc"] == 100.0
    assert evaluate_test(half, data) == {"test_acc": 50.0}

"""``lnlkit.train.loader``: sampling helpers of the device loader."""

import torch

from lnlkit.train.loader import class_balanced_subset


def test_class_balanced_subset():
    labels = torch.tensor([0] * 50 + [1] * 5 + [2] * 45)
    idx = class_balanced_subset(labels, 30, 3, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels[idx], minlength=3).tolist()
    assert counts == [10, 5, 10] and len(set(idx.tolist())) == len(idx)  # at most 30 / 3 per class, no repeats
    again = class_balanced_subset(labels, 30, 3, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    assert len(class_balanced_subset(labels, 12, 3, torch.Generator().manual_seed(1))) == 12

"""The embedded data set: scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download).

Split: a fixed stratified split, 75% train / 25% test (``train_test_split(test_size=0.25, stratify=y,
random_state=0)``), i.e. 1,347 training and 450 test images.  The split is part of the data set, not of the
experiment seed, so results across seeds and methods are always measured on the same test images.
"""

from __future__ import annotations

import numpy as np

from lnlkit.data.dataset import Dataset

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def load_digits_dataset() -> Dataset:
    """Load the embedded digits data set.

    Returns
    -------
    Dataset
        ``x_train`` uint8 ``(1347, 1, 8, 8)`` and ``x_test`` ``(450, 1, 8, 8)`` with pixel values 0..16
        (``pixel_scale=16``), normalised with the training-set mean and standard deviation.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    scaled = x_tr.astype(np.float64) / 16.0
    return Dataset(
        name="digits",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        mean=(float(scaled.mean()),),
        std=(float(scaled.std()),),
        pixel_scale=16.0,
        default_model="small_cnn",
    )

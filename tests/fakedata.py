"""Writers of tiny fake data sets in their official on-disk layouts, shared by the tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_rows(start: int, n: int) -> np.ndarray:
    """Rows whose R plane is the global row index, G plane 255 - index, B plane the pixel position mod 256."""
    g = np.arange(start, start + n)
    data = np.empty((n, 3072), dtype=np.uint8)
    data[:, :1024] = (g % 256)[:, None]
    data[:, 1024:2048] = (255 - g % 256)[:, None]
    data[:, 2048:] = (np.arange(1024) % 256)[None, :]
    return data


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 10, meta: bool = True) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(5):
        start = b * per_batch
        _pickle(
            folder / f"data_batch_{b + 1}",
            {
                "batch_label": f"training batch {b + 1} of 5",
                "data": _cifar_rows(start, per_batch),
                "labels": [int(i % 10) for i in range(start, start + per_batch)],
                "filenames": [f"img{i}.png" for i in range(start, start + per_batch)],
            },
        )
    _pickle(folder / "test_batch", {"data": _cifar_rows(1000, n_test), "labels": [(i * 3) % 10 for i in range(n_test)]})
    if meta:
        _pickle(
            folder / "batches.meta",
            {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": per_batch, "num_vis": 3072},
        )
    return folder


def write_cifar100(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = [(i * 7) % 100 for i in range(n_train)]
    fine_te = [(i * 11) % 100 for i in range(n_test)]
    _pickle(
        folder / "train",
        {"data": _cifar_rows(0, n_train), "fine_labels": fine, "coarse_labels": [f // 5 for f in fine]},
    )
    _pickle(
        folder / "test",
        {"data": _cifar_rows(0, n_test), "fine_labels": fine_te, "coarse_labels": [f // 5 for f in fine_te]},
    )
    _pickle(
        folder / "meta",
        {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": [f"coarse{i}" for i in range(20)]},
    )
    return folder


def write_image(path: Path, size=(8, 8), color=(10, 20, 30), array: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if array is not None else Image.new("RGB", size, color)
    img.save(path)


def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def write_clothing_official(root: Path, annotations: bool = True, images_prefix: bool = True) -> dict:
    """6 noisy training images, 3 clean val, 2 clean test (all with 'images/...' keys)."""
    keys = {
        s: [f"images/{i % 2}/0{i % 3}/{s}{i}.jpg" for i in range(n)] for s, n in (("train", 6), ("val", 3), ("test", 2))
    }
    ann = root / "annotations" if annotations else root
    noisy = {k: (i * 5) % 14 for i, k in enumerate(keys["train"])}
    clean = {k: i % 14 for i, k in enumerate(keys["val"] + keys["test"])}
    extra_noisy = {"images/9/99/not_in_train.jpg": 13}
    write_lines(ann / "noisy_label_kv.txt", [f"{k} {v}" for k, v in {**noisy, **extra_noisy}.items()])
    write_lines(ann / "noisy_train_key_list.txt", keys["train"])
    write_lines(ann / "clean_label_kv.txt", [f"{k} {v}" for k, v in clean.items()])
    write_lines(ann / "clean_val_key_list.txt", keys["val"])
    write_lines(ann / "clean_test_key_list.txt", keys["test"])
    for k in keys["train"] + keys["val"] + keys["test"]:
        write_image(root / (k if images_prefix else k[len("images/") :]))
    return {"keys": keys, "noisy": noisy, "clean": clean}


# ------------------------------------------------------------------------------------------------------------ CIFAR


def write_cifarn(path: Path, clean, c100: bool = False) -> Path:
    """A fake CIFAR-N label file (``torch.save`` of the official dict): every noisy label set is the clean label
    plus a random 0 or 1 (mod the class count), drawn from a fixed seed."""
    import torch

    clean = np.asarray(clean)
    k = 100 if c100 else 10
    rng = np.random.default_rng(0)
    noisy = lambda: (clean + rng.integers(0, 2, len(clean))) % k  # noqa: E731
    keys = (
        ("noisy_label",) if c100 else ("aggre_label", "worse_label", "random_label1", "random_label2", "random_label3")
    )
    obj = {"clean_label": clean, **{key: noisy() for key in keys}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def write_web_fg(root: Path, subset: str, classes=("a", "b", "c"), per_class: int = 3, size: int = 40) -> Path:
    """A tiny web-fine-grained tree ``root/<subset>/{train,val}/<class>/*.jpg`` of random RGB images."""
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            write_image(
                root / subset / "train" / c / f"{i}.jpg", array=rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            )
        write_image(root / subset / "val" / c / "t.jpg", array=rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return root

"""Engine test fixtures: one torch thread (the machine is shared), tiny real-format dataset files."""

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An idx ubyte file exactly as MNIST ships it (magic 0x0000 08 ndim, big-endian dims, bytes)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw += array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        Path(str(path) + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def make_mnist_files(
    root: Path, folder: str = "MNIST", n_train: int = 200, n_test: int = 50, compress: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent synthetic 28x28 images (learnable), in torchvision's layout root/<folder>/raw."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    out = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose row encodes the class
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 250
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)
        out.append((images, labels))
    return out[0]


def make_cifar_files(
    root: Path, per_batch: int = 20, n_test: int = 30, as_archive: bool = False, seed: int = 0
) -> np.ndarray:
    """CIFAR-10 python pickle batches (data uint8 N x 3072, labels list), optionally as the .tar.gz."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    first = None
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as f:
            pickle.dump(
                {"batch_label": name, "labels": labels, "data": data, "filenames": [f"{i}.png" for i in range(n)]}, f
            )
        if first is None:
            first = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(
            {
                "label_names": [
                    "airplane",
                    "automobile",
                    "bird",
                    "cat",
                    "deer",
                    "dog",
                    "frog",
                    "horse",
                    "ship",
                    "truck",
                ],
                "num_cases_per_batch": per_batch,
                "num_vis": 3072,
            },
            f,
        )
    if as_archive:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    return first

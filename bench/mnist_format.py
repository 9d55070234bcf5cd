"""Synthetic MNIST-sized data written as the real MNIST idx files (what torchvision.datasets.MNIST reads).

Each class is a fixed random 28x28 pattern, blended with a distractor, shifted, plus noise, so a model learns it
(accuracy is a sanity check, not a benchmark). Used by bench_training.py and bench_iterative.py.
"""

import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.tobytes())


def make_images(n: int, rng: np.random.Generator, prototypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 10, n).astype(np.uint8)
    # the class pattern at 60 %, a distractor (another class's pattern) at 40 %
    images = (prototypes[labels] * 0.6 + prototypes[rng.integers(0, 10, n)] * 0.4).astype(np.int16)
    shifts = rng.integers(-2, 3, (n, 2))
    for dy in range(-2, 3):  # vectorised random shift: group the images by their shift
        for dx in range(-2, 3):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            images[sel] = np.roll(images[sel], (dy, dx), axis=(1, 2))
    images += rng.integers(0, 140, images.shape, dtype=np.int16)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_mnist(root: Path, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """Write root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte; return root."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    prototypes = np.where(rng.random((10, 28, 28)) < 0.15, 200, 0).astype(np.uint8)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = make_images(n, rng, prototypes)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return Path(root)

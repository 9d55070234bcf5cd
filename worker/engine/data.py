"""Datasets as whole tensors on the training device: no DataLoader, batches are taken by index.

- digits: scikit-learn's load_digits (1797 8x8 images, built in), scaled to [0, 1], a fixed stratified
  train/test split (test = 360 images, random_state 0).
- mnist, fashion_mnist: torchvision.datasets.MNIST / FashionMNIST over the idx files under DATA_DIR/MNIST/raw
  and DATA_DIR/FashionMNIST/raw (a .gz without its plain file is extracted first, as torchvision's download
  does); cifar10: the python pickle batches under DATA_DIR/cifar-10-batches-py (or the
  cifar-10-python.tar.gz archive beside it, extracted on first use), read here (see read_cifar_batches).
  Missing files are downloaded through torchvision.datasets when the network allows; otherwise
  DatasetMissing names the directory and the files expected.

Every dataset is normalised per channel with fixed constants (digits: from its training images).
Conv models need 32x32 inputs: `image_size=32` zero-pads images that are at most 8 pixels smaller
(MNIST 28x28 -> 32x32, the classic LeNet-5 choice that keeps digits at their native scale) and
resizes smaller ones bilinearly (digits 8x8 -> 32x32). Padding happens before normalisation, so it
has the background value.
"""

from __future__ import annotations

import pickle
import socket
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.spec import DATASETS

# Per-channel mean and std of the training images in [0, 1] (the usual published values).
NORMALISATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]
DOWNLOAD_TIMEOUT_S = 15  # per connection attempt; a blocked network fails after a mirror or two


class DatasetMissing(ValueError):
    """The dataset's files are not in the data directory and could not be downloaded."""


@dataclass
class Split:
    x: torch.Tensor  # float32 (N, C, H, W), normalised, on the device
    y: torch.Tensor  # int64 (N,), on the device

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    name: str = ""
    num_classes: int = 10
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    @property
    def pad_value(self) -> torch.Tensor:
        """The normalised value of a black pixel, per channel (what augmentation pads with)."""
        mean = torch.tensor(self.mean, dtype=torch.float32)
        std = torch.tensor(self.std, dtype=torch.float32)
        return (-mean / std).to(self.train.x.device)


# ---------------------------------------------------------------- readers of the real file formats


def _idx_missing(raw_dir: Path) -> list[str]:
    """The idx files torchvision.datasets.MNIST reads that are not there; a .gz beside a missing file
    is extracted (torchvision reads only the plain files)."""
    from torchvision.datasets.utils import extract_archive

    missing = []
    for stem in (stem for pair in IDX_FILES.values() for stem in pair):
        if not (raw_dir / stem).is_file() and (raw_dir / f"{stem}.gz").is_file():
            extract_archive(str(raw_dir / f"{stem}.gz"), str(raw_dir))
        if not (raw_dir / stem).is_file():
            missing.append(stem)
    return missing


def _cifar_missing(data_dir: Path) -> list[str]:
    folder = data_dir / CIFAR_FOLDER
    missing = [n for n in CIFAR_TRAIN + CIFAR_TEST if not (folder / n).is_file()]
    if missing and (data_dir / CIFAR_ARCHIVE).is_file():
        with tarfile.open(data_dir / CIFAR_ARCHIVE, "r:gz") as tar:
            tar.extractall(data_dir, filter="data")
        missing = [n for n in CIFAR_TRAIN + CIFAR_TEST if not (folder / n).is_file()]
    return missing


def read_cifar_batches(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python pickle batches. Not torchvision.datasets.CIFAR10: it md5-checks every batch file
    against the published ones (even with download=False) and refuses any other CIFAR-format files."""
    xs, ys = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry["labels"], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _download(name: str, data_dir: Path) -> None:
    """Fetch a dataset through torchvision.datasets; errors are swallowed (the caller re-checks files)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            _torchvision_class(name)(str(data_dir), train=train, download=True)
    except Exception:  # no network, a mirror down, a full disk: reported as missing files below
        pass
    finally:
        socket.setdefaulttimeout(previous)


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]


def _missing_error(name: str, where: Path, files: list[str]) -> DatasetMissing:
    return DatasetMissing(
        f"{name}: files missing in {where} and the download failed: expected {', '.join(files)}"
        + (
            " (plain or .gz idx files, as torchvision.datasets stores them)"
            if name in IDX_FOLDERS
            else f" (python pickle batches, or {CIFAR_ARCHIVE} in {where.parent})"
        )
    )


def _load_raw(name: str, data_dir: Path, download: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images uint8 N,C,H,W; train labels; test images; test labels) from the files."""
    if name in IDX_FOLDERS:
        raw_dir = data_dir / IDX_FOLDERS[name] / "raw"
        if _idx_missing(raw_dir) and download:
            _download(name, data_dir)
        missing = _idx_missing(raw_dir)
        if missing:
            raise _missing_error(name, raw_dir, missing)
        out = []
        for train in (True, False):
            split = _torchvision_class(name)(str(data_dir), train=train, download=False)
            out += [split.data[:, None].numpy(), split.targets.numpy().astype(np.int64)]
        return tuple(out)
    if name == "cifar10":
        if _cifar_missing(data_dir) and download:
            _download(name, data_dir)
        missing = _cifar_missing(data_dir)
        if missing:
            raise _missing_error(name, data_dir / CIFAR_FOLDER, missing)
        return (
            *read_cifar_batches(data_dir / CIFAR_FOLDER, CIFAR_TRAIN),
            *read_cifar_batches(data_dir / CIFAR_FOLDER, CIFAR_TEST),
        )
    raise ValueError(f"dataset: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # 0..16 -> [0, 1]
    return train_test_split(
        images, digits.target.astype(np.int64), test_size=360, random_state=0, stratify=digits.target
    )


# ---------------------------------------------------------------- the public entry points


def fit_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (small difference) or bilinearly resize (large) images in [0, 1] to size x size."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h <= size and w <= size and size - h <= 8 and size - w <= 8:
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(x, (left, size - w - left, top, size - h - top))
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def load_dataset(
    name: str,
    data_dir: Path | str,
    device: torch.device | str,
    val_fraction: float,
    seed: int,
    *,
    image_size: int | None = None,
    download: bool = True,
) -> Splits:
    """Load a dataset onto `device` as normalised tensors, with `val_fraction` of the training images held
    out (a permutation seeded by `seed`) to select checkpoints. `image_size` pads/resizes (see module doc)."""
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    if not 0 < val_fraction < 1:
        raise ValueError("train.val_fraction: must be between 0 and 1 (exclusive)")
    if name == "digits":
        x_train, x_test, y_train, y_test = _digits()
        x_train, x_test = torch.from_numpy(x_train), torch.from_numpy(x_test)
        mean = tuple(float(v) for v in x_train.mean(dim=(0, 2, 3)))
        std = tuple(float(v) for v in x_train.std(dim=(0, 2, 3)))
    else:
        xt, y_train, xs, y_test = _load_raw(name, Path(data_dir), download)
        x_train = torch.from_numpy(np.ascontiguousarray(xt)).float().div_(255)
        x_test = torch.from_numpy(np.ascontiguousarray(xs)).float().div_(255)
        mean, std = NORMALISATION[name]

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        if image_size is not None:
            x = fit_size(x, image_size)
        m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
        return ((x - m) / s).contiguous()

    y_train_t = torch.as_tensor(y_train, dtype=torch.int64)
    order = torch.randperm(len(y_train_t), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(val_fraction * len(order))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train = prepare(x_train)
    y_train_t = y_train_t.to(x_train.device)
    val_idx, train_idx = val_idx.to(x_train.device), train_idx.to(x_train.device)
    return Splits(
        train=Split(x_train[train_idx], y_train_t[train_idx]),
        val=Split(x_train[val_idx], y_train_t[val_idx]),
        test=Split(prepare(x_test), torch.as_tensor(y_test, dtype=torch.int64).to(x_train.device)),
        name=name,
        num_classes=int(DATASETS[name]["classes"]),
        mean=tuple(mean),
        std=tuple(std),
    )


def augment_batch(
    x: torch.Tensor, pad_value: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4
) -> torch.Tensor:
    """CIFAR augmentation on a batch already on the device: random crop after padding by `pad`, and a
    random horizontal flip, each drawn per image."""
    n, c, h, w = x.shape
    padded = pad_value.view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad : pad + h, pad : pad + w] = x
    dev = x.device
    off_y = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    off_x = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + off_x[:, None]  # (n, w): flip = read backwards
    rows = torch.arange(h, device=dev) + off_y[:, None]  # (n, h)
    return padded[
        torch.arange(n, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]

"""Datasets as whole tensors on the training device (batches taken by index), or streamed from image files
through a DataLoader when they do not fit the memory budget.

- digits: scikit-learn's load_digits (1797 8x8 images, built in), scaled to [0, 1], a fixed stratified
  train/test split (test = 360 images, random_state 0).
- mnist, fashion_mnist: torchvision.datasets.MNIST / FashionMNIST over the idx files under DATA_DIR/MNIST/raw
  and DATA_DIR/FashionMNIST/raw (a .gz without its plain file is extracted first, as torchvision's download
  does); cifar10: the python pickle batches under DATA_DIR/cifar-10-batches-py (or the
  cifar-10-python.tar.gz archive beside it, extracted on first use), read here (see read_cifar_batches).
  cifar100: the pickles under DATA_DIR/cifar-100-python (train, test; fine labels) or its archive;
  svhn: train_32x32.mat and test_32x32.mat under DATA_DIR/svhn (read with scipy.io.loadmat, label 10 = digit 0).
  Missing files are downloaded through torchvision.datasets when the network allows; otherwise
  DatasetMissing names the directory and the files expected.
- imagefolder:NAME: DATA_DIR/NAME/train/CLASS/*.png|jpg|jpeg|bmp|webp and DATA_DIR/NAME/test/CLASS/... (classes =
  the train folder's subfolders, sorted). Images are decoded with Pillow to the size of the first training
  image (others resized to it) and to grey (1 channel) when the first image is grey, else RGB; the per-channel
  mean and std come from up to 2000 training images.

Memory: a dataset whose float32 tensors fit PRUNELAB_DATA_MEMORY_GB (default 4) is held whole on the device
(Split). A larger image folder streams (StreamSplit): a DataLoader with worker processes decodes each batch,
pinned memory and non-blocking copies on CUDA, normalisation on the device. Both give `batches()`, so the
training loop checks for cancellation and reports progress per batch either way.

Every dataset is normalised per channel with fixed constants (digits: from its training images).
Conv models need 32x32 inputs: `image_size=32` zero-pads images that are at most 8 pixels smaller
(MNIST 28x28 -> 32x32, the classic LeNet-5 choice that keeps digits at their native scale) and
resizes smaller ones bilinearly (digits 8x8 -> 32x32). Padding happens before normalisation, so it
has the background value.
"""

from __future__ import annotations

import os
import pickle
import socket
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.spec import DATASETS, IMAGEFOLDER

# Per-channel mean and std of the training images in [0, 1] (the usual published values).
NORMALISATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
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
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
SVHN_FOLDER = "svhn"
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
DOWNLOAD_TIMEOUT_S = 15  # per connection attempt; a blocked network fails after a mirror or two
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
STAT_IMAGES = 2000  # training images the mean and std of an image folder are computed from
DEFAULT_MEMORY_GB = 4.0


def memory_budget_bytes() -> int:
    """PRUNELAB_DATA_MEMORY_GB: the most a dataset may take held whole on the device (float32 tensors)."""
    return int(float(os.environ.get("PRUNELAB_DATA_MEMORY_GB", DEFAULT_MEMORY_GB)) * 2**30)


def loader_workers() -> int:
    """DataLoader worker processes: none inside a daemonic process (a Celery prefork child may not fork)."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 0
    return min(8, max(1, (os.cpu_count() or 2) - 1))


class DatasetMissing(ValueError):
    """The dataset's files are not in the data directory and could not be downloaded."""


@dataclass
class Split:
    x: torch.Tensor  # float32 (N, C, H, W), normalised, on the device
    y: torch.Tensor  # int64 (N,), on the device

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple]:
        """(x, y) batches; shuffled by a permutation drawn from `generator` (on the split's device) if given."""
        n = len(self)
        if generator is None:
            for start in range(0, n, batch_size):
                yield self.x[start : start + batch_size], self.y[start : start + batch_size]
            return
        order = torch.randperm(n, generator=generator, device=self.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.x[idx], self.y[idx]


class _ImageFiles(torch.utils.data.Dataset):
    """Image files decoded to uint8 (C, H, W) tensors of one size, with their labels."""

    def __init__(self, files: list[Path], labels: list[int], channels: int, size: tuple[int, int]):
        self.files, self.labels, self.channels, self.size = files, labels, channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.files[i]) as image:
            image = image.convert("L" if self.channels == 1 else "RGB")
            if image.size != (self.size[1], self.size[0]):
                image = image.resize((self.size[1], self.size[0]), Image.BILINEAR)
            array = np.array(image, dtype=np.uint8)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array)), self.labels[i]


class StreamSplit:
    """A split read from image files batch by batch (DataLoader workers decode, the device normalises)."""

    def __init__(self, files: _ImageFiles, mean, std, device, workers: int | None = None):
        self.files = files
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        self.workers = loader_workers() if workers is None else workers

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.files.channels, *self.files.size)

    @property
    def y(self) -> torch.Tensor:
        return torch.as_tensor(self.files.labels, dtype=torch.int64, device=self.device)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple]:
        order = None
        if generator is not None:  # the DataLoader shuffles on the CPU: seed it from the caller's generator
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            order = torch.Generator().manual_seed(seed)
        loader = torch.utils.data.DataLoader(
            self.files,
            batch_size=batch_size,
            shuffle=order is not None,
            generator=order,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if self.workers else None,
        )
        for x, y in loader:
            x = x.to(self.device, non_blocking=True).float().div_(255)
            yield (x - self.mean) / self.std, y.to(self.device, non_blocking=True)


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    name: str = ""
    num_classes: int = 10
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)

    classes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.train.shape

    @property
    def pad_value(self) -> torch.Tensor:
        """The normalised value of a black pixel, per channel (what augmentation pads with)."""
        mean = torch.tensor(self.mean, dtype=torch.float32)
        std = torch.tensor(self.std, dtype=torch.float32)
        return (-mean / std).to(self.train.device)


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


def _cifar100_missing(data_dir: Path) -> list[str]:
    folder = data_dir / CIFAR100_FOLDER
    missing = [n for n in ("train", "test") if not (folder / n).is_file()]
    if missing and (data_dir / CIFAR100_ARCHIVE).is_file():
        with tarfile.open(data_dir / CIFAR100_ARCHIVE, "r:gz") as tar:
            tar.extractall(data_dir, filter="data")
        missing = [n for n in ("train", "test") if not (folder / n).is_file()]
    return missing


def read_cifar100(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-100 python pickle (train or test) with its 100 fine labels (not torchvision.datasets.CIFAR100:
    it md5-checks the files)."""
    with open(folder / name, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    return np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(entry["fine_labels"], np.int64)


def read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An SVHN .mat file (X: 32x32x3xN uint8, y: Nx1 with 10 for the digit 0), read as torchvision.datasets.SVHN
    does but without its md5 check."""
    import scipy.io as sio

    mat = sio.loadmat(str(path))
    labels = mat["y"].astype(np.int64).squeeze(1)
    labels[labels == 10] = 0
    return np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1))), labels


def _download(name: str, data_dir: Path) -> None:
    """Fetch a dataset through torchvision.datasets; errors are swallowed (the caller re-checks files)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if name == "svhn":
            for split in SVHN_FILES:
                _torchvision_class(name)(str(data_dir / SVHN_FOLDER), split=split, download=True)
            return
        for train in (True, False):
            _torchvision_class(name)(str(data_dir), train=train, download=True)
    except Exception:  # no network, a mirror down, a full disk: reported as missing files below
        pass
    finally:
        socket.setdefaulttimeout(previous)


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {
        "mnist": tvd.MNIST,
        "fashion_mnist": tvd.FashionMNIST,
        "cifar10": tvd.CIFAR10,
        "cifar100": tvd.CIFAR100,
        "svhn": tvd.SVHN,
    }[name]


def _missing_error(name: str, where: Path, files: list[str]) -> DatasetMissing:
    what = {
        "cifar10": f" (python pickle batches, or {CIFAR_ARCHIVE} in {where.parent})",
        "cifar100": f" (python pickles, or {CIFAR100_ARCHIVE} in {where.parent})",
        "svhn": " (the .mat files of the cropped-digits format, read with scipy)",
    }.get(name, " (plain or .gz idx files, as torchvision.datasets stores them)")
    return DatasetMissing(
        f"{name}: files missing in {where} and the download failed: expected {', '.join(files)}{what}"
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
    if name == "cifar100":
        if _cifar100_missing(data_dir) and download:
            _download(name, data_dir)
        missing = _cifar100_missing(data_dir)
        if missing:
            raise _missing_error(name, data_dir / CIFAR100_FOLDER, missing)
        return (*read_cifar100(data_dir / CIFAR100_FOLDER, "train"), *read_cifar100(data_dir / CIFAR100_FOLDER, "test"))
    if name == "svhn":
        folder = data_dir / SVHN_FOLDER

        def svhn_missing() -> list[str]:
            return [f for f in SVHN_FILES.values() if not (folder / f).is_file()]

        if svhn_missing() and download:
            _download(name, data_dir)
        if svhn_missing():
            raise _missing_error(name, folder, svhn_missing())
        return (*read_svhn(folder / SVHN_FILES["train"]), *read_svhn(folder / SVHN_FILES["test"]))
    raise ValueError(f"dataset: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}, imagefolder:NAME")


# ---------------------------------------------------------------- image folders


def _class_files(folder: Path) -> dict[str, list[Path]]:
    return {
        c.name: sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        for c in sorted(folder.iterdir())
        if c.is_dir()
    }


def scan_imagefolder(root: Path) -> dict:
    """{classes, train: [(file, label)], test: [...], channels, size} of an image folder, or DatasetMissing
    naming the directory and what is expected."""
    expected = f"expected {root}/train/CLASS/*.png (or .jpg, .jpeg, .bmp, .webp) and {root}/test/CLASS/..."
    for part in ("train", "test"):
        if not (root / part).is_dir():
            raise DatasetMissing(f"{root.name}: no folder {root / part}: {expected}")
    train = _class_files(root / "train")
    classes = [c for c, files in train.items() if files]
    if len(classes) < 2:
        raise DatasetMissing(f"{root.name}: {root / 'train'} has {len(classes)} class folders with images: {expected}")
    test = _class_files(root / "test")
    stray = [c for c, files in test.items() if files and c not in classes]
    if stray:
        raise DatasetMissing(f"{root.name}: test class {stray[0]!r} has no training images in {root / 'train'}")
    index = {c: i for i, c in enumerate(classes)}
    pairs = {
        part: [(f, index[c]) for c, files in found.items() if c in index for f in files]
        for part, found in (("train", train), ("test", test))
    }
    if not pairs["test"]:
        raise DatasetMissing(f"{root.name}: no test images in {root / 'test'}: {expected}")
    from PIL import Image

    with Image.open(pairs["train"][0][0]) as first:
        channels = 1 if first.mode in ("1", "L", "I", "I;16", "F") else 3
        size = (first.height, first.width)
    return {"classes": classes, **pairs, "channels": channels, "size": size}


def _decode_all(files: _ImageFiles) -> tuple[torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(files, batch_size=256, num_workers=min(loader_workers(), 4))
    xs, ys = zip(*loader) if len(files) else ((), ())
    return torch.cat(xs), torch.cat(ys)


def _imagefolder(name: str, data_dir: Path, device, val_fraction: float, seed: int, memory_bytes: int | None):
    short = name.split(":", 1)[1]
    info = scan_imagefolder(Path(data_dir) / short)
    channels, size = info["channels"], info["size"]
    train_files, train_labels = [f for f, _ in info["train"]], [c for _, c in info["train"]]
    test_files, test_labels = [f for f, _ in info["test"]], [c for _, c in info["test"]]
    everything = _ImageFiles(train_files, train_labels, channels, size)
    sample = torch.randperm(len(everything), generator=torch.Generator().manual_seed(0))[:STAT_IMAGES]
    stats = torch.stack([everything[int(i)][0] for i in sample]).float().div_(255)
    mean = tuple(float(v) for v in stats.mean(dim=(0, 2, 3)))
    std = tuple(max(float(v), 1e-3) for v in stats.std(dim=(0, 2, 3)))

    order = torch.randperm(len(train_files), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(val_fraction * len(order))))
    parts = {"val": order[:n_val].tolist(), "train": order[n_val:].tolist()}
    budget = memory_budget_bytes() if memory_bytes is None else memory_bytes
    needed = (len(train_files) + len(test_files)) * channels * size[0] * size[1] * 4
    common = {"name": name, "num_classes": len(info["classes"]), "mean": mean, "std": std, "classes": info["classes"]}
    if needed > budget:

        def stream(idx: list[int]) -> StreamSplit:
            picked = _ImageFiles([train_files[i] for i in idx], [train_labels[i] for i in idx], channels, size)
            return StreamSplit(picked, mean, std, device)

        test = StreamSplit(_ImageFiles(test_files, test_labels, channels, size), mean, std, device)
        return Splits(train=stream(parts["train"]), val=stream(parts["val"]), test=test, **common)

    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)

    def held(files: _ImageFiles) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = _decode_all(files)
        return ((x.float().div_(255) - m) / s).to(device).contiguous(), y.to(torch.int64).to(device)

    x_train, y_train = held(everything)
    x_test, y_test = held(_ImageFiles(test_files, test_labels, channels, size))
    val_idx, train_idx = (torch.as_tensor(parts[k], device=x_train.device) for k in ("val", "train"))
    return Splits(
        train=Split(x_train[train_idx], y_train[train_idx]),
        val=Split(x_train[val_idx], y_train[val_idx]),
        test=Split(x_test, y_test),
        **common,
    )


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # 0..16 -> [0, 1]
    return train_test_split(
        images, digits.target.astype(np.int64), test_size=360, random_state=0, stratify=digits.target
    )


# ---------------------------------------------------------------- the public entry points


def _fit_normalised(x: torch.Tensor, size: int, background: torch.Tensor) -> torch.Tensor:
    """fit_size on normalised images: padding gets the normalised black (`background`)."""
    shift = background.view(1, -1, 1, 1)
    return fit_size(x - shift, size) + shift


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
    memory_bytes: int | None = None,
) -> Splits:
    """Load a dataset onto `device` as normalised tensors, with `val_fraction` of the training images held
    out (a permutation seeded by `seed`) to select checkpoints. `image_size` pads/resizes (see module doc;
    not for image folders, which torchvision models resize per batch). `memory_bytes`: the budget for holding
    an image folder whole (default PRUNELAB_DATA_MEMORY_GB)."""
    if name not in DATASETS and not IMAGEFOLDER.fullmatch(name):
        raise ValueError(f"dataset: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}, imagefolder:NAME")
    if not 0 < val_fraction < 1:
        raise ValueError("train.val_fraction: must be between 0 and 1 (exclusive)")
    if name.startswith("imagefolder:"):
        splits = _imagefolder(name, Path(data_dir), device, val_fraction, seed, memory_bytes)
        if image_size is not None and isinstance(splits.train, Split):
            for part in (splits.train, splits.val, splits.test):
                part.x = _fit_normalised(part.x, image_size, splits.pad_value)
        return splits
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

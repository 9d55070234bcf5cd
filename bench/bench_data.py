"""Data paths for image folders: held whole on the device (the dataset fits PRUNELAB_DATA_MEMORY_GB) vs streamed
through a DataLoader (worker processes decode PNGs, pinned memory on CUDA), on the same ImageFolder.

    .venv/bin/python bench/bench_data.py [--images 4000] [--size 32] [--epochs 3] [--workers N] [--device auto]
                                          [--threads N]

Writes a synthetic ImageFolder (10 classes, RGB PNGs) first. Reports, per path: the load time (decode
everything, or scan the files), images per second delivered by `batches()` (shuffled batches of 128 on the
device, normalised, no model) and images per second of a training epoch of a small CNN (the example plugin's
architecture, built in here), each the median of the epochs after the first; the ratio is held / streamed.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.engine.data import load_dataset  # noqa: E402
from worker.engine.training import TrainConfig, train  # noqa: E402

BATCH = 128


def write_folder(root: Path, n: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", max(10, n // 5))):
        for i in range(count):
            label = i % 10
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.clip(rng.integers(0, 140, (size, size, 3)) + 10 * label, 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")


def small_cnn(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes),
    )  # fmt: skip


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(data_dir: Path, device: torch.device, epochs: int, memory_bytes: int | None) -> dict:
    t0 = time.perf_counter()
    splits = load_dataset("imagefolder:bench", data_dir, device, 0.1, seed=0, memory_bytes=memory_bytes)
    load_s = time.perf_counter() - t0
    n = len(splits.train)
    deliver = []
    for epoch in range(epochs):
        gen = torch.Generator(device=device).manual_seed(epoch)
        sync(device)
        t = time.perf_counter()
        for _batch in splits.train.batches(BATCH, gen):
            pass
        sync(device)
        deliver.append(n / (time.perf_counter() - t))
    torch.manual_seed(0)
    model = small_cnn(splits.num_classes).to(device)
    cfg = TrainConfig(epochs=1, batch_size=BATCH, lr=1e-3)
    training = []
    for epoch in range(epochs):
        sync(device)
        t = time.perf_counter()
        train(model, splits, cfg, seed=epoch, keep_best=False)
        sync(device)
        training.append(n / (time.perf_counter() - t))
    later = slice(1, None) if epochs > 1 else slice(None)
    return {
        "kind": type(splits.train).__name__,
        "load_s": load_s,
        "deliver": statistics.median(deliver[later]),
        "train": statistics.median(training[later]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_folder(Path(tmp) / "bench", args.images, args.size)
        print(
            f"wrote {args.images} train PNGs of {args.size}x{args.size} in {time.perf_counter() - t:.1f} s; "
            f"device {device}, {torch.get_num_threads()} threads, batch {BATCH}"
        )
        held = measure(Path(tmp), device, args.epochs, memory_bytes=2**40)
        streamed = measure(Path(tmp), device, args.epochs, memory_bytes=0)
    print(f"{'path':<12} {'load s':>8} {'batches() img/s':>16} {'training img/s':>15}")
    for r in (held, streamed):
        print(f"{r['kind']:<12} {r['load_s']:8.2f} {r['deliver']:16.0f} {r['train']:15.0f}")
    print(f"held / streamed: batches() {held['deliver'] / streamed['deliver']:.1f}x, "
          f"training {held['train'] / streamed['train']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()

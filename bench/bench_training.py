"""Training speed: LeNet-300-100 on 60k MNIST-format images, batch 128, one epoch at a time.
Our loop (the whole dataset as tensors on the device, batches by index, worker/engine/training.py) vs
the usual torchvision.datasets.MNIST + DataLoader loop, side by side in one run (target: >= 8x).

    .venv/bin/python bench/bench_training.py [--epochs 3] [--device auto|cpu|cuda] [--threads N] [--workers 0]

Both read the same real-format idx files (synthetic images, written first), train the same model with
Adam lr 1e-3 from the same initial weights, and report per-epoch seconds (mean of the epochs after the
first, which warms up), images per second and test accuracy. Loading the files is timed separately.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mnist_format import write_mnist  # noqa: E402

from worker.engine.data import Split, Splits, load_dataset  # noqa: E402
from worker.engine.models import build_model  # noqa: E402
from worker.engine.training import TrainConfig, evaluate, train  # noqa: E402

BATCH = 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ours(root: Path, device: torch.device, epochs: int, init: dict) -> dict:
    t0 = time.perf_counter()
    splits = load_dataset("mnist", root, device, 0.1, seed=0, download=False)
    # Train on all 60k images like the DataLoader loop (no validation hold-out for this comparison).
    full = Split(torch.cat([splits.train.x, splits.val.x]), torch.cat([splits.train.y, splits.val.y]))
    splits = Splits(
        train=full, val=splits.val, test=splits.test, name="mnist", num_classes=10, mean=splits.mean, std=splits.std
    )
    sync(device)
    load_s = time.perf_counter() - t0
    model = build_model("lenet300_100", (1, 28, 28), 10).to(device)
    model.load_state_dict(init)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        train(
            model,
            splits,
            TrainConfig(epochs=1, optimizer="adam", lr=1e-3, batch_size=BATCH),
            seed=epoch,
            keep_best=False,
        )
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"load_s": load_s, "epochs": times, "images": len(full), "accuracy": evaluate(model, splits.test)[0]}


def dataloader_loop(root: Path, device: torch.device, epochs: int, init: dict, workers: int) -> dict:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    t0 = time.perf_counter()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(str(root), train=True, transform=tf, download=False)
    test_set = datasets.MNIST(str(root), train=False, transform=tf, download=False)
    loader = DataLoader(
        train_set,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    load_s = time.perf_counter() - t0
    model = build_model("lenet300_100", (1, 28, 28), 10).to(device)
    model.load_state_dict(init)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test_set, batch_size=1024):
            correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
    return {"load_s": load_s, "epochs": times, "images": len(train_set), "accuracy": correct / len(test_set)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--workers", type=int, default=0, help="DataLoader num_workers (0 = the default)")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse/write the MNIST files here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or Path(tmp)
        if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            t0 = time.perf_counter()
            write_mnist(root)
            print(f"wrote 60,000 + 10,000 MNIST-format images to {root} in {time.perf_counter() - t0:.1f} s")
        torch.manual_seed(0)
        init = build_model("lenet300_100", (1, 28, 28), 10).state_dict()
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(
            f"LeNet-300-100, batch {BATCH}, Adam, {args.epochs} epochs each, device {name}, "
            f"torch threads {args.threads}, DataLoader workers {args.workers}"
        )
        results = {
            "tensor loop (ours)": ours(root, device, args.epochs, init),
            "torchvision MNIST + DataLoader": dataloader_loop(root, device, args.epochs, init, args.workers),
        }
    base = None
    print(f"{'loop':<32}{'load s':>8}{'epoch s':>9}{'images/s':>11}{'test acc':>10}{'speedup':>9}   epochs s")
    rows = []
    for label, r in results.items():
        steady = r["epochs"][1:] or r["epochs"]
        rows.append((label, r, statistics.mean(steady)))
    base = rows[1][2]
    for label, r, epoch_s in rows:
        print(
            f"{label:<32}{r['load_s']:>8.2f}{epoch_s:>9.2f}{r['images'] / epoch_s:>11,.0f}{r['accuracy']:>10.4f}"
            f"{base / epoch_s:>8.1f}x   " + " ".join(f"{t:.2f}" for t in r["epochs"])
        )
    print(f"ratio per epoch (DataLoader / ours): {rows[1][2] / rows[0][2]:.1f}x (target >= 8x)")


if __name__ == "__main__":
    main()

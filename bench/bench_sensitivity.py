"""Per-layer sensitivity scan: the activation cache vs plain re-evaluation (target: >= 2x, same numbers).

    .venv/bin/python bench/bench_sensitivity.py [--models vgg,resnet18] [--images 1000] [--layers 3]
                                                [--sparsities 0.5,0.7,0.9] [--threads 2] [--batch 250]

Each model (worker.engine.models.build_model, random weights: the timing is what matters) is scanned
with magnitude pruning, one layer at a time to each sparsity, on --images random CIFAR-format 32x32
images (half as the validation split, half as the test split), once with the activation cache
(the unchanged part of the graph runs once per batch for all points) and once the plain way (the whole
model for every point). --layers N scans N layers spread evenly over the depth (first and last
included; 0 = all of them), so a run stays within a few minutes on a small CPU.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.engine.data import Split  # noqa: E402
from worker.engine.models import build_model, prunable_layers  # noqa: E402
from worker.engine.pruning import MagnitudePruner  # noqa: E402
from worker.engine.sensitivity import scan  # noqa: E402

METRICS = ("accuracy", "val_accuracy", "loss", "val_loss")


def spread(layers: list[str], n: int) -> list[str]:
    if n <= 0 or n >= len(layers):
        return layers
    if n == 1:
        return [layers[len(layers) // 2]]
    return [layers[round(i * (len(layers) - 1) / (n - 1))] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vgg,resnet18")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=3, help="layers per model, spread over the depth; 0 = all")
    parser.add_argument("--sparsities", default="0.5,0.7,0.9")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sparsities = [float(s) for s in args.sparsities.split(",")]
    print(
        f"torch {torch.__version__}, threads {args.threads}, device {args.device}, {args.images} images "
        f"(half val, half test), batch {args.batch}, sparsities {sparsities}"
    )
    print(f"{'model':<10}{'layers':>7}{'points':>8}{'plain s':>10}{'cached s':>10}{'speedup':>9}{'max diff':>11}")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build_model(name, (3, 32, 32), 10).to(args.device).eval()
        x = torch.randn(args.images, 3, 32, 32, device=args.device)
        y = torch.randint(0, 10, (args.images,), device=args.device)
        half = args.images // 2
        sets = {"val": Split(x[:half], y[:half]), "test": Split(x[half:], y[half:])}
        layers = spread(prunable_layers(model), args.layers)

        def pruner(m: nn.Module, layer: str) -> MagnitudePruner:
            return MagnitudePruner([layer])

        with torch.no_grad():
            model(x[: args.batch])  # warm-up
        started = time.perf_counter()
        cached = scan(model, layers, sparsities, pruner, sets, batch_size=args.batch)
        cached_s = time.perf_counter() - started
        started = time.perf_counter()
        plain = scan(model, layers, sparsities, pruner, sets, batch_size=args.batch, cache=False)
        plain_s = time.perf_counter() - started
        assert all(r["cached"] for r in cached)
        diff = max(abs(a[k] - b[k]) for a, b in zip(cached, plain) for k in METRICS)
        print(
            f"{name:<10}{len(layers):>7}{len(cached):>8}{plain_s:>10.1f}{cached_s:>10.1f}"
            f"{plain_s / cached_s:>8.2f}x{diff:>11.1e}   ({', '.join(layers)})"
        )
        if diff > 1e-6:
            raise SystemExit(f"{name}: cached and plain numbers differ by {diff}")


if __name__ == "__main__":
    main()

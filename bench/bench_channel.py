"""Channel pruning: FLOP reduction vs measured latency speedup (target: speedup / FLOP reduction >= 0.85).

    .venv/bin/python bench/bench_channel.py [--sparsity 0.5] [--batch 64] [--threads N] [--repeats 7]
                                            [--models vgg16_bn,resnet18] [--device cpu|cuda]

Each model (built by worker.engine.models.build_model, 32x32 inputs, 10 classes) is channel-pruned by
L1 over all its prunable layers to --sparsity of their weights (Torch-Pruning removes the channels), then
the dense and compact models are timed side by side (interleaved runs, median, inference mode).
"""

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.spec import MODEL_LAYERS  # noqa: E402
from worker.engine import sparse  # noqa: E402
from worker.engine.metrics import count_params, flop_counts  # noqa: E402
from worker.engine.models import build_model  # noqa: E402
from worker.engine.pruning import ChannelPruner  # noqa: E402

SHAPE = (3, 32, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sparsity",
        default="0.5,0.75",
        help="comma-separated weight sparsities (0.75 ~ half of every layer's channels)",
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; with 1 the CPU-time columns are exact even on a busy machine",
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", default="vgg16_bn,resnet18")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, threads {args.threads}, device {args.device}, batch {args.batch}; "
        f"sparsity = share of the weights of all conv/linear layers removed"
    )
    print(
        f"{'model':<10}{'sparsity':>9}{'params':>23}{'MFLOPs/sample':>20}{'FLOP red.':>11}"
        f"{'dense ms':>10}{'compact ms':>12}{'speedup':>9}{'ratio':>7}   | cpu-time: dense, compact, speedup, ratio"
    )
    for name, target in [(n, float(t)) for n in args.models.split(",") for t in args.sparsity.split(",")]:
        torch.manual_seed(0)
        model = build_model(name, SHAPE, 10).eval()
        dense = copy.deepcopy(model)
        pruner = ChannelPruner(model, MODEL_LAYERS[name], torch.zeros(1, *SHAPE), "l1")
        compact = pruner.prune(model, target, None, None).eval()
        flops_dense, _ = flop_counts(dense, SHAPE, "cpu")
        flops_compact, _ = flop_counts(compact, SHAPE, "cpu")
        dense, compact = dense.to(args.device), compact.to(args.device)
        x = torch.randn(args.batch, *SHAPE, device=args.device)
        with torch.inference_mode():
            assert compact(x).shape == dense(x).shape
        times = sparse.interleaved_times(
            {"dense": lambda: dense(x), "compact": lambda: compact(x)},
            args.device,
            repeats=args.repeats,
            budget_s=600.0,
        )
        ms = {k: v["wall"] for k, v in times.items()}
        cpu = {k: v["cpu"] for k, v in times.items()}
        reduction = flops_dense / flops_compact
        speedup = ms["dense"] / ms["compact"]
        cpu_speedup = cpu["dense"] / cpu["compact"]
        print(
            f"{name:<10}{pruner.sparsity(compact):>9.3f}{count_params(dense):>13,} ->{count_params(compact):>10,}"
            f"{flops_dense / 1e6:>10.1f} ->{flops_compact / 1e6:>7.1f}{reduction:>10.2f}x"
            f"{ms['dense']:>10.2f}{ms['compact']:>12.2f}{speedup:>8.2f}x{speedup / reduction:>7.2f}"
            f"   | {cpu['dense']:.1f}, {cpu['compact']:.1f}, {cpu_speedup:.2f}x, {cpu_speedup / reduction:.2f}",
            flush=True,
        )
    print("\nratio = measured speedup / FLOP reduction (target >= 0.85)")


if __name__ == "__main__":
    main()

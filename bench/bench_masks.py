"""Block-mask speed: an 8192 x 8192 weight with 4 x 4 blocks (target: <= 100 ms for the mask).

    .venv/bin/python bench/bench_masks.py [--size 8192] [--block 4] [--threads N] [--repeats 5]

Times (median of --repeats after one warm-up): the block scores, the block keep grid (scores +
exact-count selection), the element mask (grid expanded to 8192 x 8192), and a whole BlockPruner.prune
of a Linear layer of that size (mask + zeroing the weight), for each score.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.engine.pruning.block import BlockPruner, block_mask, block_scores, expand_blocks  # noqa: E402


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """(wall ms, this thread's CPU ms): medians after one warm-up. CPU time is not inflated by waiting
    for a busy machine's cores (exact with --threads 1)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, b = args.size, (args.block, args.block)
    weight = torch.randn(n, n)
    grid = block_mask(weight, b, 0.5)
    print(f"{n} x {n} weight, {b[0]} x {b[1]} blocks ({grid.numel():,} blocks), torch threads {args.threads}")
    print(f"{'step':<34}" + "".join(f"{s + ' wall':>15}{'cpu':>7}" for s in ("mean_abs", "l1", "l2")) + "   ms")
    rows = {
        "reference: weight.sum() (1 pass)": lambda s: weight.sum(),
        "block scores": lambda s: block_scores(weight, b, s),
        "block keep grid (scores + select)": lambda s: block_mask(weight, b, 0.5, s),
        "keep grid + element mask": lambda s: expand_blocks(block_mask(weight, b, 0.5, s), b, (n, n)),
    }
    results = {}
    for label, fn in rows.items():
        times = [median_ms(lambda s=s: fn(s), args.repeats) for s in ("mean_abs", "l1", "l2")]
        results[label] = times[0]
        print(f"{label:<34}" + "".join(f"{w:>15.1f}{c:>7.1f}" for w, c in times))
    layer = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    model = nn.Sequential(layer)

    def prune_once():
        pruner = BlockPruner(["0"], b)
        pruner.prune(model, 0.5, None, None)

    pruner = BlockPruner(["0"], b)
    pruner.prune(model, 0.5, None, None)
    whole = median_ms(prune_once, args.repeats)
    apply = median_ms(lambda: pruner.apply_masks(model), args.repeats)
    print(f"{'BlockPruner.prune (mask + zero)':<34}{whole[0]:>15.1f}{whole[1]:>7.1f}")
    print(f"{'apply_masks (after each step)':<34}{apply[0]:>15.1f}{apply[1]:>7.1f}")
    grid_ms, mask_ms = results["block keep grid (scores + select)"], results["keep grid + element mask"]
    one_pass = results["reference: weight.sum() (1 pass)"]
    print(
        f"\ntarget: block mask <= 100 ms -> keep grid {grid_ms[0]:.1f} ms wall / {grid_ms[1]:.1f} ms cpu, "
        f"element mask {mask_ms[0]:.1f} / {mask_ms[1]:.1f} ms; "
        f"= {mask_ms[1] / one_pass[1]:.1f}x the CPU time of one pass over the weight"
    )


if __name__ == "__main__":
    main()

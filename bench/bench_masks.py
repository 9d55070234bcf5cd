"""Block-mask speed: an 8192 x 8192 weight with 4 x 4 blocks (target: <= 100 ms for the mask).

    .venv/bin/python bench/bench_masks.py [--size 8192] [--block 4] [--threads N] [--repeats 5]

Times (median of --repeats after one warm-up, worker.engine.sparse.interleaved_times): the block scores,
the block keep grid (scores + exact-count selection), the element mask (grid expanded to 8192 x 8192),
and a whole BlockPruner.prune of a Linear layer of that size (mask + zeroing the weight), for each score.
Then the hand-written pieces side by side with the library route, interleaved in one run: the sampled
k-th value vs torch.kthvalue (over the block scores), and the mean_abs block scores vs F.avg_pool2d and
vs unfold + mean.
"""

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.engine.pruning.base import kth_smallest  # noqa: E402
from worker.engine.pruning.block import BlockPruner, block_mask, block_scores, expand_blocks  # noqa: E402
from worker.engine.sparse import interleaved_times  # noqa: E402


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """(wall ms, this thread's CPU ms): medians after one warm-up. CPU time is not inflated by waiting
    for the cores of a shared machine (exact with --threads 1)."""
    times = interleaved_times({"fn": fn}, "cpu", repeats, warmup=1, budget_s=600.0, inference=False)
    return times["fn"]["wall"], times["fn"]["cpu"]


def library_table(weight: torch.Tensor, block: tuple[int, int], repeats: int) -> None:
    """Ours vs the library route, each pair interleaved in one run, with the ratio."""
    scores = block_scores(weight, block, "mean_abs").reshape(-1)
    k = scores.numel() // 2
    r, c = block
    ours_scores = ("block_scores", lambda: block_scores(weight, block, "mean_abs"))
    rows = [  # (what, (ours, fn), (library route, fn))
        (
            f"k-th value of {scores.numel():,} scores",
            ("sampled kth_smallest", lambda: kth_smallest(scores, k)),
            ("torch.kthvalue", lambda: scores.kthvalue(k)),
        ),
        (
            "mean_abs block scores",
            ours_scores,
            ("F.avg_pool2d(|w|)", lambda: F.avg_pool2d(weight.abs()[None, None], block)),
        ),
        (
            "mean_abs block scores",
            ours_scores,
            ("unfold + mean", lambda: weight.abs().unfold(0, r, r).unfold(1, c, c).mean(dim=(2, 3))),
        ),
    ]
    assert torch.equal(kth_smallest(scores, k), scores.kthvalue(k).values)
    pooled = F.avg_pool2d(weight.abs()[None, None], block)[0, 0]
    assert torch.allclose(block_scores(weight, block, "mean_abs"), pooled / pooled.max(), rtol=1e-4, atol=1e-6)
    print(f"\n{'what':<34}{'ours':<22}{'wall / cpu ms':>15}{'library':>20}{'wall / cpu ms':>15}  library / ours (cpu)")
    for what, (ours, fn_ours), (lib, fn_lib) in rows:
        ms = interleaved_times({ours: fn_ours, lib: fn_lib}, "cpu", repeats, warmup=1, budget_s=600.0)
        a, b = ms[ours], ms[lib]
        print(
            f"{what:<34}{ours:<22}{a['wall']:>8.1f} /{a['cpu']:>5.1f}{lib:>20}{b['wall']:>8.1f} /{b['cpu']:>5.1f}"
            f"{b['wall'] / a['wall']:>8.2f}x ({b['cpu'] / a['cpu']:.2f}x)"
        )


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
    library_table(weight, b, args.repeats)


if __name__ == "__main__":
    main()

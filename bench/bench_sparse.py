"""Sparse inference speed: dense vs BSR vs CSR vs the form `realise` picks, measured side by side.

    .venv/bin/python bench/bench_sparse.py [--threads N] [--repeats 15] [--device cpu|cuda] [--quick]

Part 1: a 4096-wide MLP (three 4096 x 4096 Linear layers + a dense 4096 -> 10 classifier) pruned to
95 % with 16 x 16 blocks, batch 64 (target: realised >= 5x faster than dense).
Part 2: one 4096 x 4096 layer at 95 % block sparsity for blocks 4/8/16/32 and batches 1/8/64: where BSR wins.
Timings are medians of --repeats runs after warm-up, the forms of one row interleaved run by run so
load on a shared machine hits them alike; outputs are checked against dense (max abs error).
"""

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.engine import sparse  # noqa: E402
from worker.engine.pruning import BlockPruner  # noqa: E402
from worker.engine.sparse import BSRLinear, CSRLinear, model_form, realise  # noqa: E402

CLOCK = "wall"


def interleaved_ms(fns: dict, device: str, repeats: int) -> dict[str, float]:
    times = sparse.interleaved_times(fns, device, repeats=repeats, budget_s=60.0)
    return {name: t[CLOCK] for name, t in times.items()}


def swap_linears(model: nn.Module, names: list[str], make) -> nn.Module:
    out = copy.deepcopy(model)
    for name in names:
        setattr(out, name, make(getattr(model, name)))
    return out


class MLP(nn.Module):
    def __init__(self, width: int = 4096, depth: int = 3):
        super().__init__()
        self.names = [f"fc{i}" for i in range(depth)]
        for name in self.names:
            setattr(self, name, nn.Linear(width, width))
        self.out = nn.Linear(width, 10)

    def forward(self, x):
        for name in self.names:
            x = torch.relu(getattr(self, name)(x))
        return self.out(x)


def part_mlp(device: str, repeats: int, width: int, batch: int) -> None:
    torch.manual_seed(0)
    model = MLP(width).to(device).eval()
    pruner = BlockPruner(model.names, (16, 16))
    pruner.prune(model, 0.95, None, None)
    x = torch.randn(batch, width, device=device)
    bsr = swap_linears(model, model.names, lambda l: BSRLinear(l, (16, 16)))
    csr = swap_linears(model, model.names, CSRLinear)
    chosen, forms = realise(model, model.names, batch, device, (16, 16))
    models = {"dense": model, "bsr16x16": bsr, "csr": csr, f"realised ({model_form(forms)})": chosen}
    with torch.inference_mode():
        ref = model(x)
        errors = {name: float((m(x) - ref).abs().max()) for name, m in models.items()}
    ms = interleaved_ms({name: (lambda m=m: m(x)) for name, m in models.items()}, device, repeats)
    print(
        f"\nPart 1: MLP {len(model.names)} x Linear({width}, {width}) + Linear({width}, 10), 95 % sparsity in "
        f"16x16 blocks, batch {batch}, {device}"
    )
    print(f"  realise chose per layer: {forms}")
    print(f"  {'form':<22}{'ms':>10}{'speedup vs dense':>18}{'max |err|':>12}")
    for name in models:
        print(f"  {name:<22}{ms[name]:>10.3f}{ms['dense'] / ms[name]:>17.2f}x{errors[name]:>12.1e}")
    realised_name = list(models)[-1]
    print(f"  target: realised >= 5x dense -> {ms['dense'] / ms[realised_name]:.2f}x")


def part_sweep(device: str, repeats: int, width: int, blocks: list[int], batches: list[int]) -> None:
    print(f"\nPart 2: one Linear({width}, {width}) at 95 % block sparsity, {device}: speedup vs dense (ms)")
    print(f"  {'block':>6}{'batch':>7}{'dense ms':>11}{'bsr ms':>10}{'csr ms':>10}{'bsr x':>8}{'csr x':>8}  winner")
    for block in blocks:
        torch.manual_seed(0)
        layer = nn.Linear(width, width).to(device).eval()
        model = nn.Sequential(layer)
        BlockPruner(["0"], (block, block)).prune(model, 0.95, None, None)
        bsr, csr = BSRLinear(layer, (block, block)), CSRLinear(layer)
        for batch in batches:
            x = torch.randn(batch, width, device=device)
            ms = interleaved_ms(
                {"dense": lambda: layer(x), "bsr": lambda: bsr(x), "csr": lambda: csr(x)}, device, repeats
            )
            winner = min(ms, key=ms.get)
            print(
                f"  {block:>6}{batch:>7}{ms['dense']:>11.3f}{ms['bsr']:>10.3f}{ms['csr']:>10.3f}"
                f"{ms['dense'] / ms['bsr']:>7.2f}x{ms['dense'] / ms['csr']:>7.2f}x  {winner}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="width 1024, fewer repeats (a smoke run)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: this thread's CPU time, robust to a busy shared machine (use with --threads 1)",
    )
    args = parser.parse_args()
    global CLOCK
    CLOCK = args.clock
    torch.set_num_threads(args.threads)
    width = 1024 if args.quick else 4096
    repeats = 3 if args.quick else args.repeats
    print(f"torch {torch.__version__}, threads {args.threads}, device {args.device}, clock {args.clock}")
    part_mlp(args.device, repeats, width, 64)
    part_sweep(args.device, repeats, width, [4, 8, 16, 32], [1, 8, 64])


if __name__ == "__main__":
    main()

"""A whole pruning curve: 16 rounds of iterative 2x2 block pruning of LeNet-300-100 on 60k MNIST-format
images (20 % of the alive blocks of fc1/fc2 and 10 % of fc3 per round, 1 fine-tune epoch per round), with
the baseline already cached (target: <= 60 s for the 16 rounds, measurements included).

    .venv/bin/python bench/bench_iterative.py [--rounds 16] [--device auto] [--threads N] [--no-latency]

The first run_job trains the baseline into a temporary cache (timed, not counted); the second, timed
run_job finds it there and runs the 16 rounds: prune, evaluate, fine-tune, evaluate, measure sizes /
FLOPs / latency, save a checkpoint, report. Prints one row per round and the total.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mnist_format import write_mnist  # noqa: E402

from core.spec import parse_spec  # noqa: E402
from worker.engine.reporter import NullReporter  # noqa: E402
from worker.engine.runner import run_job  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--baseline-epochs", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: run_job's choice, 1 for LeNet on a CPU)"
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the per-step latency measurement")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse/write the MNIST files here")
    args = parser.parse_args()
    if args.threads:  # run_job keeps an explicit OMP_NUM_THREADS
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    spec = parse_spec(
        {
            "name": "bench-iterative",
            "model": "lenet300_100",
            "dataset": "mnist",
            "train": {"epochs": args.baseline_epochs, "optimizer": "adam", "lr": 0.001, "batch_size": 128},
            "method": {"kind": "block", "block_size": 2, "score": "mean_abs"},
            "schedule": {
                "kind": "iterative",
                "rate": 0.2,
                "layer_rates": {"fc3": 0.1},
                "rounds": args.rounds,
                "finetune_epochs": 1,
            },
            "measure": {"latency": not args.no_latency, "batch_size": 64},
            "device": args.device,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data_dir or tmp / "data"
        if not (data / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            write_mnist(data)
        first = spec.model_copy(update={"schedule": spec.schedule.model_copy(update={"rounds": 1})})
        t0 = time.perf_counter()
        run_job(first, tmp / "warm", NullReporter(), data_dir=data, cache_dir=tmp / "cache")
        print(
            f"baseline: {args.baseline_epochs} epochs trained and cached (+1 round) in {time.perf_counter() - t0:.1f} s"
        )

        t0 = time.perf_counter()
        result = run_job(spec, tmp / "out", NullReporter(), data_dir=data, cache_dir=tmp / "cache")
        total = time.perf_counter() - t0
    base = result["baseline"]
    assert base["cached"], "the baseline should have come from the cache"
    print(
        f"device {result['device']}, torch threads {args.threads or 'auto'}, latency measured: {not args.no_latency}; "
        f"baseline accuracy {base['accuracy']:.4f} (cached)"
    )
    print(
        f"{'round':>5}{'target':>9}{'sparsity':>10}{'fc1':>8}{'fc3':>8}{'acc before':>12}{'acc after':>11}"
        f"{'speedup':>9}{'seconds':>9}"
    )
    for s in result["steps"]:
        layers = {layer["name"]: layer["sparsity"] for layer in s["layers"]}
        speedup = (s.get("latency") or {}).get("speedup")
        print(
            f"{s['index'] + 1:>5}{s['target_sparsity']:>9.4f}{s['sparsity']:>10.4f}{layers['fc1']:>8.4f}"
            f"{layers['fc3']:>8.4f}{s['accuracy_before_finetune']:>12.4f}{s['accuracy']:>11.4f}"
            f"{(f'{speedup:.2f}x' if speedup else '-'):>9}{s['seconds']:>9.2f}"
        )
    steps_s = sum(s["seconds"] for s in result["steps"])
    print(
        f"total {total:.1f} s for {len(result['steps'])} rounds (target <= 60 s): steps {steps_s:.1f} s, "
        f"loading data + cached baseline + evaluation {total - steps_s:.1f} s"
    )


if __name__ == "__main__":
    main()

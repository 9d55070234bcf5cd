"""Engine step dicts as worker/engine produces them, without training: block-pruned layers with real
encoded keep grids and density grids (core/masks.py). Used by the service and team tests and by
bench/bench_api.py to fill a database quickly."""

import numpy as np

from core.masks import density_grid, encode_density, encode_grid


def make_step(
    index: int,
    layers: dict[str, tuple[int, int]] | None = None,
    sparsity: float = 0.5,
    block: tuple[int, int] = (2, 2),
    accuracy: float = 0.9,
    seed: int = 0,
    checkpoint: str | None = None,
    rng: np.random.Generator | None = None,
) -> dict:
    """One step; masks drawn from `rng`, or from a generator seeded with seed + index."""
    rng = rng if rng is not None else np.random.default_rng(seed + index)
    layer_dicts, total, nonzero = [], 0, 0
    for name, (rows, cols) in (layers or {"fc1": (300, 64), "fc2": (100, 300)}).items():
        br, bc = block
        keep = rng.random((-(-rows // br), -(-cols // bc))) >= sparsity
        mask2d = np.kron(keep, np.ones(block, dtype=bool))[:rows, :cols] if block != (1, 1) else keep
        kept = int(mask2d.sum())
        total, nonzero = total + rows * cols, nonzero + kept
        layer_dicts.append(
            {
                "name": name,
                "kind": "linear",
                "shape": [rows, cols],
                "params": rows * cols,
                "nonzero": kept,
                "sparsity": 1 - kept / (rows * cols),
                "target_sparsity": sparsity,
                "mask": {"block_shape": list(block), "grid": encode_grid(keep)},
                "density": encode_density(density_grid(mask2d)),
            }
        )
    return {
        "index": index,
        "target_sparsity": sparsity,
        "sparsity": 1 - nonzero / total,
        "accuracy": accuracy,
        "accuracy_before_finetune": accuracy - 0.03,
        "accuracy_drop": 0.03,
        "val_accuracy": accuracy,
        "loss": 0.2,
        "params_total": total,
        "params_nonzero": nonzero,
        "size_dense_bytes": total * 4,
        "size_sparse_bytes": nonzero * 4 + 1000,
        "size_compact_bytes": total * 4,
        "flops_dense": 2 * total,
        "flops_effective": 2 * nonzero,
        "latency": {
            "device": "cpu",
            "batch_size": 64,
            "dense_ms": 1.2,
            "realised_ms": 0.9,
            "speedup": 1.33,
            "form": "bsr",
        },
        "seconds": 0.5,
        "checkpoint": checkpoint or f"checkpoints/step_{index}.pt",
        "layers": layer_dicts,
    }

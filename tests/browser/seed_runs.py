"""Stored runs for page tests and bench/bench_pages.py, written through backend.store like the worker does.

Each run is a LeNet-300-100 / digits job whose steps carry real encoded masks (core.masks): nested block
keep grids that lose a share of their blocks at every step, as iterative pruning does. The figures are made
up (no training happens), but every field the engine reports is there, so the pages draw what they would
draw for a real run.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from backend import store
from backend.db import session_scope
from core.masks import density_grid, encode_density, encode_grid
from core.spec import parse_spec

LAYERS = {"fc1": (300, 64), "fc2": (100, 300), "fc3": (10, 100)}  # LeNet-300-100 on 8x8 digits
METHODS = ("block", "magnitude", "channel")


def _spec(i: int, method: str, steps: int) -> dict:
    spec = {
        "name": f"seed-{method}-{i}",
        "model": "lenet300_100",
        "dataset": "digits",
        "train": {"epochs": 2},
        "schedule": {"kind": "iterative", "rate": 0.2, "rounds": steps},
        "tags": ["bench", method],
    }
    spec["method"] = {"kind": method, **({"block_size": 2 + i % 3} if method == "block" else {})}
    return spec


def _block_shape(method: str, spec: dict, shape: tuple[int, int]) -> tuple[int, int]:
    if method == "block":
        b = spec["method"]["block_size"]
        return b, b
    if method == "channel":
        return 1, shape[1]
    return 1, 1


@cache
def _masks(method: str, block_size: int, steps: int, variant: int) -> tuple:
    """Per step: (layer dicts, nonzero weights, weights) of nested block masks. Cached: runs of the same
    method and block size share a few mask sequences, so storing 100 runs stays quick."""
    rng = np.random.default_rng(variant)
    spec = {"method": {"block_size": block_size}}
    scores = {}
    for name, shape in LAYERS.items():
        bs = _block_shape(method, spec, shape)
        grid_shape = (-(-shape[0] // bs[0]), -(-shape[1] // bs[1]))
        # A smooth importance field plus noise, so the heatmap has structure like a real mask.
        rows = np.linspace(0, 3, grid_shape[0])[:, None]
        cols = np.linspace(0, 3, grid_shape[1])[None, :]
        scores[name] = (np.sin(rows) * np.cos(cols) + rng.normal(0, 0.6, grid_shape), bs)
    out = []
    for k in range(steps):
        target = 1 - 0.8 ** (k + 1)
        layers, nonzero_sum, weights_sum = [], 0, 0
        for name, shape in LAYERS.items():
            score, bs = scores[name]
            layer_target = target if name != "fc3" else 1 - 0.9 ** (k + 1)
            keep_blocks = score > np.quantile(score, layer_target)
            keep = np.kron(keep_blocks, np.ones(bs, dtype=bool))[: shape[0], : shape[1]]
            nonzero = int(keep.sum())
            nonzero_sum += nonzero
            weights_sum += keep.size
            layers.append(
                {
                    "name": name,
                    "kind": "linear",
                    "shape": list(shape),
                    "params": keep.size,
                    "nonzero": nonzero,
                    "sparsity": 1 - nonzero / keep.size,
                    "target_sparsity": layer_target,
                    "mask": {"block_shape": list(bs), "grid": encode_grid(keep_blocks)},
                    "density": encode_density(density_grid(keep)),
                }
            )
        out.append((target, layers, nonzero_sum, weights_sum))
    return tuple(out)


def make_steps(method: str, spec: dict, steps: int, rng: np.random.Generator, baseline: float) -> list[dict]:
    """Engine-shaped step dicts with nested keep grids: step k keeps (1 - rate)^(k+1) of each layer."""
    out = []
    params_total = sum(r * c for r, c in LAYERS.values()) + 300 + 100 + 10
    variant = int(rng.integers(0, 3))
    for k, (target, layers, nonzero_sum, weights_sum) in enumerate(
        _masks(method, spec["method"].get("block_size", 1), steps, variant)
    ):
        sparsity = 1 - nonzero_sum / weights_sum
        drop_after = max(0.0, max(0.0, sparsity - 0.6) ** 2 * 0.6 + rng.normal(0, 0.003))
        accuracy = baseline - drop_after
        before = accuracy - abs(rng.normal(0.01, 0.01)) * (1 + 8 * sparsity**4)
        params_nonzero = nonzero_sum + 410
        dense_ms = 0.9 + rng.normal(0, 0.02)
        realised_ms = dense_ms * (0.35 + 0.65 * (1 - sparsity)) if method != "magnitude" else dense_ms * 1.02
        # The spread of the repeated timings (p10..p90) and the speedup's bounds, as the engine reports them.
        dense_p10, dense_p90 = dense_ms * 0.94, dense_ms * 1.09
        realised_p10, realised_p90 = realised_ms * 0.93, realised_ms * 1.1
        speedup_low, speedup_high = dense_p10 / realised_p90, dense_p90 / realised_p10
        out.append(
            {
                "index": k,
                "target_sparsity": target,
                "sparsity": sparsity,
                "accuracy": accuracy,
                "accuracy_before_finetune": before,
                "accuracy_drop": baseline - before,
                "val_accuracy": accuracy,
                "loss": 0.1 + (baseline - accuracy),
                "params_total": params_total,
                "params_nonzero": params_nonzero,
                "size_dense_bytes": params_total * 4,
                "size_sparse_bytes": int(params_nonzero * 6 + 2048),
                "size_compact_bytes": params_total * 4,
                "flops_dense": 2 * weights_sum,
                "flops_effective": 2 * nonzero_sum,
                "latency": {
                    "device": "cpu",
                    "batch_size": 64,
                    "dense_ms": dense_ms,
                    "realised_ms": realised_ms,
                    "speedup": dense_ms / realised_ms,
                    "dense_p10_ms": dense_p10,
                    "dense_p90_ms": dense_p90,
                    "realised_p10_ms": realised_p10,
                    "realised_p90_ms": realised_p90,
                    "speedup_low": speedup_low,
                    "speedup_high": speedup_high,
                    "speedup_significant": speedup_low > 1 or speedup_high < 1,
                    "form": {"block": "bsr", "magnitude": "csr", "channel": "compact"}[method],
                },
                "seconds": 0.5,
                "checkpoint": f"checkpoints/step_{k}.pt",
                "layers": [dict(layer) for layer in layers],
            }
        )
    return out


def _store_run(
    session, spec: dict, method: str, steps: int, rng: np.random.Generator, status: str, cached: bool
) -> int:
    baseline = 0.975 - rng.uniform(0, 0.02)
    step_dicts = make_steps(method, spec, steps, rng, baseline)
    if status != "succeeded":
        step_dicts = step_dicts[: steps // 2]
    first = step_dicts[0]
    job = store.create_job(session, parse_spec(spec))
    store.set_status(session, job.id, "running")
    store.set_baseline(
        session,
        job.id,
        {
            "accuracy": baseline,
            "loss": 0.1,
            "val_accuracy": baseline,
            "params_total": first["params_total"],
            "params_nonzero": first["params_total"],
            "size_dense_bytes": first["size_dense_bytes"],
            "flops": first["flops_dense"],
            "train_seconds": 1.0,
            "cached": cached,
            "device": "cpu",
            "latency": {
                **first["latency"],
                "realised_ms": first["latency"]["dense_ms"],
                "speedup": 1.0,
                "form": "dense",
            },
        },
    )
    for step in step_dicts:
        store.add_step(session, job.id, step)
    store.set_progress(session, job.id, len(step_dicts) / steps)
    error = "RuntimeError: CUDA out of memory (a made-up failure for the page tests)" if status == "failed" else None
    store.set_status(session, job.id, status, error=error)
    return job.id


def insert_runs(database_url: str, count: int, steps: int = 8, seed: int = 0) -> list[int]:
    """Store `count` finished runs (a few failed or cancelled) and return their ids."""
    rng = np.random.default_rng(seed)
    ids = []
    with session_scope(database_url) as session:  # one transaction: 100 runs store in seconds
        for i in range(count):
            method = METHODS[i % len(METHODS)]
            status = "failed" if i % 17 == 5 else "cancelled" if i % 23 == 7 else "succeeded"
            ids.append(_store_run(session, _spec(i, method, steps), method, steps, rng, status, cached=i > 0))
    return ids


def insert_named_run(
    database_url: str, name: str, *, method: str = "block", tags: tuple[str, ...] = (), steps: int = 4
) -> int:
    """Store one finished run with the given name and tags (for pages that must show user text as text)."""
    spec = {**_spec(0, method, steps), "name": name, "tags": list(tags)}
    with session_scope(database_url) as session:
        return _store_run(session, spec, method, steps, np.random.default_rng(len(name)), "succeeded", cached=True)


def conv_steps(layers: list[str], steps: int, rng: np.random.Generator, baseline: float) -> list[dict]:
    """Fine-grained magnitude steps of a conv net: every layer a small 16 x 4 x 3 x 3 kernel, masked per weight
    (out x in·kh·kw, 1 x 1 blocks), sparser layers deeper in the network as global magnitude pruning finds."""
    shape = (16, 4, 3, 3)
    cols = shape[1] * shape[2] * shape[3]
    scores = {name: rng.random((shape[0], cols)) for name in layers}
    out = []
    for k in range(steps):
        target = 1 - 0.7 ** (k + 1)
        entries, nonzero_sum = [], 0
        for depth, name in enumerate(layers):
            layer_target = min(0.98, target * (0.6 + 0.8 * depth / max(1, len(layers) - 1)))
            keep = scores[name] > np.quantile(scores[name], layer_target)
            nonzero = int(keep.sum())
            nonzero_sum += nonzero
            entries.append(
                {
                    "name": name,
                    "kind": "conv",
                    "shape": list(shape),
                    "params": keep.size,
                    "nonzero": nonzero,
                    "sparsity": 1 - nonzero / keep.size,
                    "target_sparsity": layer_target,
                    "mask": {"block_shape": [1, 1], "grid": encode_grid(keep)},
                    "density": encode_density(density_grid(keep)),
                }
            )
        weights = len(layers) * shape[0] * cols
        sparsity = 1 - nonzero_sum / weights
        accuracy = baseline - max(0.0, sparsity - 0.5) ** 2 * 0.5
        dense_ms = 4.2 + rng.normal(0, 0.05)
        realised_ms = dense_ms * 1.01
        out.append(
            {
                "index": k,
                "target_sparsity": target,
                "sparsity": sparsity,
                "accuracy": accuracy,
                "accuracy_before_finetune": accuracy - 0.02,
                "accuracy_drop": 0.02,
                "params_total": weights,
                "params_nonzero": nonzero_sum,
                "size_dense_bytes": weights * 4,
                "size_sparse_bytes": nonzero_sum * 6 + 2048,
                "size_compact_bytes": weights * 4,
                "flops_dense": 2 * weights * 64,
                "flops_effective": 2 * nonzero_sum * 64,
                # The old shape: no spread, no verdict (runs stored before the engine measured them).
                "latency": {
                    "device": "cpu",
                    "batch_size": 64,
                    "dense_ms": dense_ms,
                    "realised_ms": realised_ms,
                    "speedup": dense_ms / realised_ms,
                    "form": "csr",
                },
                "seconds": 2.0,
                "checkpoint": f"checkpoints/step_{k}.pt",
                "layers": entries,
            }
        )
    return out


def insert_conv_run(database_url: str, name: str, layers: list[str], *, steps: int = 3) -> int:
    """Store one finished ResNet-18 / CIFAR-10 fine-grained magnitude run whose steps carry `layers`."""
    spec = {
        "name": name,
        "model": "resnet18",
        "dataset": "cifar10",
        "train": {"epochs": 2},
        "method": {"kind": "magnitude", "scope": "global"},
        "schedule": {"kind": "iterative", "rate": 0.3, "rounds": steps},
        "tags": ["conv"],
    }
    rng = np.random.default_rng(len(layers))
    with session_scope(database_url) as session:
        job = store.create_job(session, parse_spec(spec))
        store.set_status(session, job.id, "running")
        step_dicts = conv_steps(layers, steps, rng, 0.93)
        store.set_baseline(
            session,
            job.id,
            {
                "accuracy": 0.93,
                "params_total": step_dicts[0]["params_total"],
                "size_dense_bytes": step_dicts[0]["size_dense_bytes"],
                "cached": True,
            },
        )
        for step in step_dicts:
            store.add_step(session, job.id, step)
        store.set_progress(session, job.id, 1.0)
        store.set_status(session, job.id, "succeeded")
        return job.id


def insert_failed_before_first_step(database_url: str, error: str) -> int:
    """A run that failed while its baseline trained: no baseline, no step, one error line."""
    spec = {**_spec(0, "block", 4), "name": "failed-before-any-step"}
    with session_scope(database_url) as session:
        job = store.create_job(session, parse_spec(spec))
        store.set_status(session, job.id, "running")
        store.set_status(session, job.id, "failed", error=error)
        return job.id

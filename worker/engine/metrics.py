"""Size, FLOPs and latency of a (pruned) model, as the step dict reports them.

- params_total / size_dense_bytes: the unpruned architecture (fp32). For channel pruning that is the
  original model, not the smaller one.
- params_nonzero: nonzero parameters of the model as it is now (all parameters, biases and BN included).
- size_sparse_bytes: the pruned layers stored in the smallest of dense, CSR and BSR (fp32 values, int32
  indices; BSR with the pruner's block when it divides the weight), everything else dense.
- size_compact_bytes: the model's own fp32 parameters (smaller than dense only after channel removal).
- flops_dense / flops_effective: per sample (batch 1), torch.utils.flop_counter.FlopCounterMode (a
  multiply-add counts 2). flops_dense is the unpruned architecture; flops_effective counts only the
  nonzero weights of masked layers (layer FLOPs x weight density), or the compact model's FLOPs.
- latency: ms of a batch through the dense model vs the realised one (sparse.realise, or the compact
  model for channel pruning), after warm-up, in inference mode, device synchronised, the two interleaved
  and repeated until each one's spread is small or the time budget ends (sparse.measure_until_stable):
  median, p10 and p90 of each, the repeat count, the speedup with its interval (dense p10 / realised p90
  .. dense p90 / realised p10), and speedup_significant only when the p10..p90 ranges do not overlap;
  speedup_label says "~1.0x (within noise)" otherwise.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from worker.engine import sparse
from worker.engine.pruning.base import MaskPruner, Pruner, find_layers, view_2d
from worker.engine.pruning.channel import ChannelPruner

FP32 = 4
INDEX = 4  # int32 indices
LATENCY_BUDGET_S = 2.0  # per measurement (dense and realised together); stops earlier once the spread is small


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


def csr_bytes(matrix: torch.Tensor) -> int:
    nnz = int(torch.count_nonzero(matrix))
    return nnz * (FP32 + INDEX) + (matrix.shape[0] + 1) * INDEX


def bsr_bytes(matrix: torch.Tensor, block: tuple[int, int]) -> int:
    """BSR storage with edge blocks padded to full blocks."""
    r, c = block
    rows, cols = matrix.shape
    grid_r, grid_c = math.ceil(rows / r), math.ceil(cols / c)
    padded = torch.nn.functional.pad(matrix != 0, (0, grid_c * c - cols, 0, grid_r * r - rows))
    blocks = int(torch.count_nonzero(padded.reshape(grid_r, r, grid_c, c).any(dim=3).any(dim=1)))
    return blocks * (r * c * FP32 + INDEX) + (grid_r + 1) * INDEX


def sparse_size_bytes(model: nn.Module, pruner: Pruner | None) -> int:
    """Pruned layers in their smallest storage (dense, CSR or BSR), the rest dense."""
    total = count_params(model) * FP32
    if not isinstance(pruner, MaskPruner):
        return total
    block = pruner.block_shape()
    for module in find_layers(model, pruner.layer_names).values():
        weight = view_2d(module.weight.detach())
        dense = weight.numel() * FP32
        options = [dense, csr_bytes(weight)]
        if block != (1, 1):
            options.append(bsr_bytes(weight, block))
        total += min(options) - dense
    return total


def flop_counts(model: nn.Module, input_shape: tuple[int, ...], device) -> tuple[int, dict[str, int]]:
    """(total FLOPs of one sample, {module name: FLOPs})."""
    was_training = model.training
    model.eval()
    prefix = type(model).__name__ + "."
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    per_module = {
        k[len(prefix) :]: sum(v.values()) for k, v in counter.get_flop_counts().items() if k.startswith(prefix)
    }
    return counter.get_total_flops(), per_module


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def measure_latency(
    model: nn.Module,
    pruner: Pruner | None,
    input_shape: tuple[int, ...],
    batch_size: int,
    device,
    budget_s: float = LATENCY_BUDGET_S,
) -> dict:
    device = torch.device(device)
    x = torch.randn(batch_size, *input_shape, device=device)
    dense = pruner.dense_reference(model) if pruner is not None else model
    dense_model = _eval_copy_on(dense, device)
    layer_forms: dict[str, str] = {}
    realised = None
    if isinstance(pruner, ChannelPruner):
        realised, form = _eval_copy_on(model, device), "compact"
    elif isinstance(pruner, MaskPruner) and pruner.masks:
        block = pruner.block_shape()
        realised, layer_forms = sparse.realise(
            model, list(pruner.masks), batch_size, device, block if block != (1, 1) else None
        )
        form = sparse.model_form(layer_forms)
        if form == "dense":
            realised = None
    fns = {"dense": lambda: dense_model(x)}
    if realised is not None:
        fns["realised"] = lambda: realised(x)
    times = sparse.measure_until_stable(fns, device, budget_s=budget_s)
    dense_t = times["dense"]
    realised_t = times.get("realised")
    label = None
    if realised_t is None:
        form, realised_t, label = "dense", dense_t, "1.00x (dense model)"
    elif form != "compact" and realised_t["median"] >= dense_t["median"]:  # the layer winners did not add up
        form, realised_t, label = "dense", dense_t, "1.00x (dense model: the sparse forms were not faster)"
        layer_forms = {n: "dense" for n in layer_forms}
    out = {
        "device": device.type,
        "batch_size": batch_size,
        "dense_ms": round(dense_t["median"], 4),
        "realised_ms": round(realised_t["median"], 4),
        "speedup": round(dense_t["median"] / realised_t["median"], 4) if realised_t["median"] else None,
        "form": form,
        "layer_forms": layer_forms,
        "dense_p10_ms": round(dense_t["p10"], 4),
        "dense_p90_ms": round(dense_t["p90"], 4),
        "realised_p10_ms": round(realised_t["p10"], 4),
        "realised_p90_ms": round(realised_t["p90"], 4),
        "repeats": min(dense_t["repeats"], realised_t["repeats"]),
        "calls_per_repeat": {name: t["calls"] for name, t in times.items()},
        **speedup_interval(dense_t, realised_t if label is None else None),
    }
    if label is not None:
        out["speedup_label"] = label
    return out


def speedup_interval(dense: dict, realised: dict | None) -> dict:
    """The speedup dense / realised with its interval from the p10..p90 ranges, and whether it is a
    real difference: only when the two ranges do not overlap (realised p90 < dense p10: faster; realised
    p10 > dense p90: slower). realised None: the dense model itself, 1.0 exactly."""
    if realised is None:
        return {"speedup_low": 1.0, "speedup_high": 1.0, "speedup_significant": False}
    low = dense["p10"] / realised["p90"] if realised["p90"] else None
    high = dense["p90"] / realised["p10"] if realised["p10"] else None
    significant = realised["p90"] < dense["p10"] or realised["p10"] > dense["p90"]
    ratio = dense["median"] / realised["median"] if realised["median"] else float("nan")
    return {
        "speedup_low": round(low, 4) if low is not None else None,
        "speedup_high": round(high, 4) if high is not None else None,
        "speedup_significant": significant,
        "speedup_label": f"{ratio:.2f}x" if significant else "~1.0x (within noise)",
    }


def _eval_copy_on(model: nn.Module, device: torch.device) -> nn.Module:
    return copy.deepcopy(model).to(device).eval()


def measure_model(
    model: nn.Module,
    pruner: Pruner | None,
    input_shape: tuple[int, ...],
    batch_size: int,
    device="cpu",
    latency: bool = True,
    latency_budget_s: float = LATENCY_BUDGET_S,
) -> dict:
    """Sizes, FLOPs and (optionally) latency of `model` as pruned by `pruner` (None: an unpruned model)."""
    input_shape = tuple(input_shape)
    dense = pruner.dense_reference(model) if pruner is not None else model
    flops_dense, _ = flop_counts(dense, input_shape, _device_of(dense))
    flops_now, per_module = flop_counts(model, input_shape, _device_of(model))
    flops_effective = flops_now
    if isinstance(pruner, MaskPruner):
        for name, module in find_layers(model, pruner.layer_names).items():
            density = float(torch.count_nonzero(module.weight)) / module.weight.numel()
            flops_effective -= per_module.get(name, 0) * (1.0 - density)
    params_total = count_params(dense)
    return {
        "params_total": params_total,
        "params_nonzero": count_nonzero(model),
        "size_dense_bytes": params_total * FP32,
        "size_sparse_bytes": sparse_size_bytes(model, pruner),
        "size_compact_bytes": count_params(model) * FP32,
        "flops_dense": int(flops_dense),
        "flops_effective": int(round(flops_effective)),
        "latency": (
            measure_latency(model, pruner, input_shape, batch_size, device, latency_budget_s) if latency else None
        ),
    }

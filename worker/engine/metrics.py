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
- latency: median ms of a batch through the dense model vs the realised one (sparse.realise, or the
  compact model for channel pruning), after warm-up, in inference mode, device synchronised.
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
    model: nn.Module, pruner: Pruner | None, input_shape: tuple[int, ...], batch_size: int, device
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
    if realised is None:
        dense_ms = sparse.time_ms(lambda: dense_model(x), device)
        form, realised_ms = "dense", dense_ms
    else:
        ms = sparse.interleaved_ms(
            {"dense": lambda: dense_model(x), "realised": lambda: realised(x)}, device, repeats=20, budget_s=4.0
        )
        dense_ms, realised_ms = ms["dense"], ms["realised"]
        if form != "compact" and realised_ms >= dense_ms:  # the layer winners did not add up: stay dense
            form, realised_ms = "dense", dense_ms
            layer_forms = {n: "dense" for n in layer_forms}
    return {
        "device": device.type,
        "batch_size": batch_size,
        "dense_ms": round(dense_ms, 4),
        "realised_ms": round(realised_ms, 4),
        "speedup": round(dense_ms / realised_ms, 4) if realised_ms else None,
        "form": form,
        "layer_forms": layer_forms,
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
        "latency": measure_latency(model, pruner, input_shape, batch_size, device) if latency else None,
    }

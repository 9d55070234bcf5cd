"""Sparse inference: Linear layers stored as BSR or CSR, and picking per layer what is really faster.

Whether a sparse form pays depends on the device, the batch size, the block size and the density: on a
CPU, BSR with 4x4 blocks at batch <= 8 can be far slower than dense, while 16x16 blocks at 95 %
sparsity are several times faster at batch 64. So `realise` times dense, CSR and BSR for every masked
Linear on the actual device and batch and keeps the fastest; if the whole realised model is not faster
than the dense one, it stays dense. Timings are medians of interleaved samples repeated until their
spread is small (measure_until_stable), so a reported difference can be told apart from noise. Conv
layers stay dense. Channel-pruned models are already compact.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

BSR_BLOCKS = ((32, 32), (16, 16), (8, 8), (4, 4))
MAX_SPARSE_DENSITY = 0.7  # above this share of nonzero weights no sparse form is tried (it cannot win)


def _quietly(convert: Callable[[], torch.Tensor]) -> torch.Tensor:
    with warnings.catch_warnings():  # "Sparse BSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return convert()


class _SparseLinear(nn.Module):
    """y = x W^T + b with W held as a sparse tensor (computed as (W @ x^T)^T)."""

    form = "sparse"

    def __init__(self, linear: nn.Linear, weight: torch.Tensor):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", weight, persistent=False)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        if self.bias is not None:
            out = torch.addmm(self.bias.unsqueeze(1), self.weight, flat.t()).t()
        else:
            out = (self.weight @ flat.t()).t()
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, form={self.form}"


class BSRLinear(_SparseLinear):
    form = "bsr"

    def __init__(self, linear: nn.Linear, blocksize: tuple[int, int] = (16, 16)):
        rows, cols = linear.weight.shape
        if rows % blocksize[0] or cols % blocksize[1]:
            raise ValueError(f"BSR block {blocksize} does not divide the weight shape {(rows, cols)}")
        if blocksize[0] != blocksize[1] and linear.weight.device.type == "cpu":
            raise ValueError(f"BSR block {blocksize}: the CPU kernels (MKL) take square blocks only")
        super().__init__(linear, _quietly(lambda: linear.weight.detach().to_sparse_bsr(tuple(blocksize))))
        self.blocksize = tuple(blocksize)


class CSRLinear(_SparseLinear):
    form = "csr"

    def __init__(self, linear: nn.Linear):
        super().__init__(linear, _quietly(lambda: linear.weight.detach().to_sparse_csr()))


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(
    fn: Callable[[], object], device: torch.device | str, repeats: int = 20, warmup: int = 3, budget_s: float = 2.0
) -> float:
    """Median wall time of fn() in ms, after warm-up, device synchronised; stops early past budget_s."""
    return interleaved_ms({"fn": fn}, device, repeats, warmup, budget_s)["fn"]


def interleaved_times(
    fns: dict[str, Callable[[], object]],
    device: torch.device | str,
    repeats: int = 10,
    warmup: int = 2,
    budget_s: float = 5.0,
    inference: bool = True,
) -> dict[str, dict[str, float]]:
    """The one timer: median ms of each fn, run in turn (a, b, c, a, b, c, ...) so that load on a shared
    machine hits every candidate alike; warm-up rounds first, device synchronised; stops early past
    budget_s (after at least 3 rounds). Returns {name: {"wall": ms, "cpu": ms}}; "cpu" is the calling
    thread's CPU time, which waiting for a busy CPU does not inflate (meaningful with
    torch.set_num_threads(1) on a CPU). inference: run under torch.inference_mode."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode() if inference else contextlib.nullcontext():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        started = time.perf_counter()
        for _ in range(repeats):
            for name, fn in fns.items():
                synchronize(device)
                t0, c0 = time.perf_counter(), time.thread_time()
                fn()
                synchronize(device)
                wall[name].append((time.perf_counter() - t0) * 1e3)
                cpu[name].append((time.thread_time() - c0) * 1e3)
            if time.perf_counter() - started > budget_s and len(wall[name]) >= 3:
                break
    return {name: {"wall": statistics.median(wall[name]), "cpu": statistics.median(cpu[name])} for name in fns}


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default 'linear' method)."""
    pos = q * (len(sorted_values) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def spread(samples: list[float]) -> dict[str, float]:
    """median, p10, p90, interquartile range relative to the median, and the number of samples."""
    values = sorted(samples)
    median = _quantile(values, 0.5)
    iqr = _quantile(values, 0.75) - _quantile(values, 0.25)
    return {
        "median": median,
        "p10": _quantile(values, 0.1),
        "p90": _quantile(values, 0.9),
        "rel_iqr": iqr / median if median > 0 else float("inf"),
        "repeats": len(values),
    }


def measure_until_stable(
    fns: dict[str, Callable[[], object]],
    device: torch.device | str,
    budget_s: float = 2.0,
    max_rel_iqr: float = 0.05,
    min_repeats: int = 30,
    min_time_s: float = 0.1,
    max_repeats: int = 1000,
    sample_s: float = 5e-5,
    warmup: int = 3,
) -> dict[str, dict[str, float]]:
    """Latency as a measurement: the candidates run in turn (a, b, a, b, ...), so that load on a shared
    machine hits them alike, until the interquartile range of every candidate is within max_rel_iqr of its
    median (after min_repeats samples each and min_time_s, so that a short quiet or busy moment of the
    machine does not decide alone), or budget_s has passed (at least 3 samples each), or
    max_repeats. A sample is one call, or the mean of `calls` back-to-back calls for a candidate faster
    than sample_s (timer overhead). Samples are kept short on purpose: on a shared CPU a longer sample is
    more often cut by the scheduler, which widens the spread without telling more about the model.
    Returns {name: spread() in ms + "calls"}. Device synchronised, in inference mode."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    calls: dict[str, int] = {}
    started = time.perf_counter()
    with torch.inference_mode():
        for name, fn in fns.items():
            for _ in range(warmup):
                fn()
            once = []
            for _ in range(3):
                synchronize(device)
                t0 = time.perf_counter()
                fn()
                synchronize(device)
                once.append(time.perf_counter() - t0)
            calls[name] = max(1, min(10_000, math.ceil(sample_s / max(min(once), 1e-7))))
        while True:
            for name, fn in fns.items():
                n = calls[name]
                synchronize(device)
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                synchronize(device)
                samples[name].append((time.perf_counter() - t0) * 1e3 / n)
            count = len(next(iter(samples.values())))
            if count >= max_repeats:
                break
            if count >= 3 and time.perf_counter() - started > budget_s:
                break
            stable_enough = count >= min_repeats and time.perf_counter() - started >= min_time_s
            if stable_enough and all(spread(s)["rel_iqr"] <= max_rel_iqr for s in samples.values()):
                break
    return {name: {**spread(s), "calls": calls[name]} for name, s in samples.items()}


def interleaved_ms(
    fns: dict[str, Callable[[], object]],
    device: torch.device | str,
    repeats: int = 10,
    warmup: int = 2,
    budget_s: float = 5.0,
) -> dict[str, float]:
    """Median wall-clock ms of each fn, interleaved (see interleaved_times)."""
    times = interleaved_times(fns, device, repeats, warmup, budget_s)
    return {name: t["wall"] for name, t in times.items()}


def bsr_blocks_for(shape: tuple[int, int], preferred: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """Square BSR block sizes that divide the weight: the pruner's block first (a rectangular r x c
    pruning block is exactly represented by g x g blocks, g = gcd(r, c)), then the standard ones."""
    candidates = []
    if preferred:
        side = math.gcd(*preferred)
        if side > 1:
            candidates.append((side, side))
    candidates += [b for b in BSR_BLOCKS if b not in candidates]
    return [b for b in candidates if shape[0] % b[0] == 0 and shape[1] % b[1] == 0]


def choose_linear_form(
    linear: nn.Linear, batch_size: int, device: torch.device | str, preferred_block: tuple[int, int] | None = None
) -> tuple[nn.Module, str, dict[str, float]]:
    """The fastest of dense / CSR / BSR for one Linear at this batch size on this device.
    Returns (module, form name, {form name: ms})."""
    weight = linear.weight.detach()
    x = torch.randn(batch_size, linear.in_features, device=weight.device)
    options: dict[str, nn.Module] = {"dense": linear}
    density = float(torch.count_nonzero(weight)) / weight.numel()
    if density <= MAX_SPARSE_DENSITY:
        candidates = {"csr": lambda: CSRLinear(linear)}
        for block in bsr_blocks_for(tuple(weight.shape), preferred_block):
            candidates[f"bsr{block[0]}x{block[1]}"] = lambda block=block: BSRLinear(linear, block)
        for name, make in candidates.items():
            try:  # a device without a kernel for a layout (or a block shape) just loses that candidate
                module = make()
                with torch.inference_mode():
                    module(x[:1])
            except (RuntimeError, NotImplementedError, ValueError):
                continue
            options[name] = module
    measured = measure_until_stable(
        {name: (lambda m=module: m(x)) for name, module in options.items()},
        device,
        budget_s=0.5,
        min_repeats=10,
        max_repeats=100,  # a choice between forms, not the reported measurement (metrics.measure_latency)
        min_time_s=0.05,
    )
    timings = {name: m["median"] for name, m in measured.items()}
    best = min(timings, key=timings.get)
    return options[best], best, timings


def realise(
    model: nn.Module,
    linear_names: list[str],
    batch_size: int,
    device: torch.device | str,
    preferred_block: tuple[int, int] | None = None,
) -> tuple[nn.Module, dict[str, str]]:
    """A copy of `model` (eval mode, on device) whose masked Linear layers use their fastest form.
    Returns (model, {layer: form}) with forms "dense", "csr" or "bsr<r>x<c>"."""
    realised = copy.deepcopy(model).to(device).eval()
    forms = {}
    for name in linear_names:
        layer = realised.get_submodule(name)
        if not isinstance(layer, nn.Linear):
            continue
        module, form, _ = choose_linear_form(layer, batch_size, device, preferred_block)
        forms[name] = form
        if form != "dense":
            realised.set_submodule(name, module)
    return realised, forms


def model_form(forms: dict[str, str]) -> str:
    """One word for a realised model: bsr if any layer is BSR, else csr if any is CSR, else dense."""
    values = list(forms.values())
    if any(v.startswith("bsr") for v in values):
        return "bsr"
    return "csr" if "csr" in values else "dense"

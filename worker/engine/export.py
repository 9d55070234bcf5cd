"""Export the model of one step of a run (what `prunelab run --out DIR` wrote: result.json + checkpoints).

- A channel-pruned model (channel, group_lasso) exports in its compact shape: the smaller dense model.
- A masked model (block, magnitude) exports with its zeros in the dense shape; beside it, FILE.safetensors
  holds the masked weights (when the safetensors package is installed: the `export` extra).
- Formats: onnx (torch.onnx's torch.export-based exporter, dynamic batch; checked with onnxruntime: outputs
  within 1e-4 of PyTorch's), torchscript (torch.jit.trace, reloaded with torch.jit.load), state_dict (a
  torch.save file with the spec, input shape, classes and the pruner's state, so rebuild_from_state_dict
  restructures a freshly built model and loads it).

torchvision and plugin models keep their input adapter (grey to 3 channels, resize per batch) in onnx and
torchscript, so the exported model takes the dataset's images as stored.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from core.spec import JobSpec

FORMATS = ("onnx", "torchscript", "state_dict")
MASK_METHODS = ("block", "magnitude")
ONNX_TOLERANCE = 1e-4


class ExportError(ValueError):
    """A bad run directory, step or format: one line naming what is wrong and what is allowed."""


def step_checkpoint(run_dir: Path, step: int) -> Path:
    """The checkpoint of 1-based step `step` of a run directory."""
    run_dir = Path(run_dir)
    result_path = run_dir / "result.json"
    if not result_path.is_file():
        raise ExportError(f"run: {run_dir} has no result.json (a directory written by `prunelab run --out`)")
    steps = json.loads(result_path.read_text()).get("steps") or []
    if not steps:
        raise ExportError(f"step: the run in {run_dir} has no steps yet")
    if not 1 <= step <= len(steps):
        raise ExportError(f"step: {step} is not a step of this run (allowed: 1 to {len(steps)})")
    path = run_dir / steps[step - 1].get("checkpoint", f"checkpoints/step_{step - 1}.pt")
    if not path.is_file():
        raise ExportError(f"step: the checkpoint of step {step} is missing: expected {path} (see keep_checkpoints)")
    return path


def load_step(run_dir: Path, step: int) -> tuple[nn.Module, dict]:
    """(model in eval mode on the CPU, checkpoint dict with the job's spec under "spec") of 1-based step `step`."""
    return load_checkpoint(step_checkpoint(run_dir, step), run_dir)


def load_checkpoint(path: Path, run_dir: Path) -> tuple[nn.Module, dict]:
    """(model in eval mode on the CPU, checkpoint dict with the job's spec under "spec") of checkpoint `path`
    of the run directory `run_dir` (a worker's job directory has no result.json: its steps are in the database)."""
    from worker.engine.runner import SPEC_FILE, load_checkpoint_model

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "spec" not in ckpt:  # one spec.json per run directory
        spec_file = Path(run_dir) / SPEC_FILE
        if not spec_file.is_file():
            raise ExportError(f"run: {run_dir} has no {SPEC_FILE} (the job's spec, written by `prunelab run --out`)")
        ckpt["spec"] = json.loads(spec_file.read_text())
    return load_checkpoint_model(path, spec=ckpt["spec"]).eval(), ckpt


def is_masked(ckpt: dict) -> bool:
    return ckpt["spec"]["method"]["kind"] in MASK_METHODS


def example_input(ckpt: dict, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, *ckpt["in_shape"], generator=torch.Generator().manual_seed(0))


ONNX_SINGLE_FILE_MAX_BYTES = 2**31 - 2**27  # protobuf's 2 GiB limit, with room for the graph


def export_onnx(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    """One self-contained .onnx file; weights above protobuf's 2 GiB limit go to FILE.data beside it."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    weight_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(out),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=weight_bytes > ONNX_SINGLE_FILE_MAX_BYTES,
            verbose=False,
        )


def export_torchscript(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the input adapter's shape checks; jit's deprecation
        traced = torch.jit.trace(model.eval(), example)
        traced.save(str(out))


def export_state_dict(model: nn.Module, ckpt: dict, out: Path) -> None:
    torch.save(
        {
            "state_dict": model.state_dict(),
            "pruner": ckpt["pruner"],
            "spec": ckpt["spec"],
            "in_shape": ckpt["in_shape"],
            "num_classes": ckpt["num_classes"],
        },
        str(out),
    )


def rebuild_from_state_dict(path: Path) -> nn.Module:
    """The model of a state_dict export: built by name, restructured by the pruner's history, weights loaded."""
    from worker.engine.models import build_model
    from worker.engine.pruning import make_pruner

    saved = torch.load(path, map_location="cpu", weights_only=True)
    spec = JobSpec.model_validate(saved["spec"])
    in_shape = tuple(saved["in_shape"])
    model = build_model(spec.model, in_shape, saved["num_classes"])
    pruner = make_pruner(spec, model, in_shape)
    pruner.load_state_dict(saved["pruner"])
    model = pruner.restructure(model)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def save_safetensors(model: nn.Module, out: Path) -> Path | None:
    """The masked weights as a safetensors file beside `out`; None when safetensors is not installed."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        return None
    path = out.with_name(out.name + ".safetensors")
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(path))
    return path


def onnx_outputs(path: Path, x: torch.Tensor) -> torch.Tensor:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def check_onnx(model: nn.Module, path: Path, x: torch.Tensor) -> float:
    """Largest absolute difference of onnxruntime's outputs from PyTorch's; ExportError above ONNX_TOLERANCE."""
    with torch.no_grad():
        expected = model.eval()(x)
    diff = float((onnx_outputs(path, x) - expected).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise ExportError(f"onnx: onnxruntime's outputs differ from PyTorch's by {diff:.3g} (> {ONNX_TOLERANCE:g})")
    return diff


def onnx_latency_ms(path: Path, x: torch.Tensor, repeats: int = 20, threads: int | None = None) -> dict:
    """onnxruntime CPU latency of one batch `x`: median and spread (min, max) of `repeats` runs after warm-up."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "runs": repeats}


def dense_vs_pruned_latency(
    model: nn.Module, ckpt: dict, pruned_onnx: Path, batch_size: int = 1, repeats: int = 20
) -> dict:
    """onnxruntime CPU latency of the unpruned architecture (exported here, same input) vs the exported step,
    measured alternately so both see the same machine load."""
    from worker.engine.models import build_model

    spec = JobSpec.model_validate(ckpt["spec"])
    dense = build_model(spec.model, tuple(ckpt["in_shape"]), ckpt["num_classes"]).eval()
    x = example_input(ckpt, batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        dense_path = Path(tmp) / "dense.onnx"
        export_onnx(dense, x, dense_path)
        dense_runs, pruned_runs = [], []
        for _ in range(repeats):
            dense_runs.append(onnx_latency_ms(dense_path, x, repeats=3)["median_ms"])
            pruned_runs.append(onnx_latency_ms(pruned_onnx, x, repeats=3)["median_ms"])
    dense_ms, pruned_ms = statistics.median(dense_runs), statistics.median(pruned_runs)
    return {
        "batch_size": batch_size,
        "dense_ms": dense_ms,
        "pruned_ms": pruned_ms,
        "speedup": dense_ms / pruned_ms if pruned_ms else float("nan"),
        "dense_spread_ms": (min(dense_runs), max(dense_runs)),
        "pruned_spread_ms": (min(pruned_runs), max(pruned_runs)),
    }


def export_step(run_dir: Path, step: int, fmt: str, out: Path) -> dict:
    """Export 1-based step `step` of `run_dir` as `fmt` to `out`. Returns what was written and checked:
    {"out", "format", "compact", "safetensors" (path or None), "onnx_max_diff" (onnx only), "params"}."""
    if fmt not in FORMATS:
        raise ExportError(f"format: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    return export_checkpoint(step_checkpoint(run_dir, step), run_dir, fmt, out)


def export_checkpoint(path: Path, run_dir: Path, fmt: str, out: Path) -> dict:
    """export_step for the checkpoint `path` of the run directory `run_dir`."""
    if fmt not in FORMATS:
        raise ExportError(f"format: unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    model, ckpt = load_checkpoint(path, run_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    x = example_input(ckpt, 2)
    report: dict = {"out": str(out), "format": fmt, "compact": not is_masked(ckpt), "safetensors": None}
    if fmt == "onnx":
        export_onnx(model, x, out)
        report["onnx_max_diff"] = check_onnx(model, out, example_input(ckpt, 3))
    elif fmt == "torchscript":
        export_torchscript(model, x, out)
    else:
        export_state_dict(model, ckpt, out)
    if is_masked(ckpt):
        path = save_safetensors(model, out)
        report["safetensors"] = str(path) if path else None
    report["params"] = sum(p.numel() for p in model.parameters())
    report["nonzero"] = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return report

"""`prunelab export RUN_DIR --step K --format onnx|torchscript|state_dict --out FILE`: one step's model."""

from __future__ import annotations

import sys
from pathlib import Path


def export_command(run_dir: Path, step: int, fmt: str, out: Path, latency: bool, batch_size: int) -> int:
    """Exit 0 after writing FILE (and FILE.safetensors for a masked model); 2 with one line on a bad argument."""
    from worker.engine.data import DatasetMissing
    from worker.engine.export import ExportError, dense_vs_pruned_latency, export_step, load_step
    from worker.engine.models import ModelUnavailable

    try:
        report = export_step(run_dir, step, fmt, out)
    except (ExportError, ModelUnavailable, DatasetMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shape = "compact (channels removed)" if report["compact"] else "dense with its zeros (masked)"
    counts = f"{report['params']} parameters, {report['nonzero']} nonzero"
    print(f"wrote {report['out']}: step {step}, {fmt}, {shape}, {counts}")
    if "onnx_max_diff" in report:
        print(f"onnxruntime matches PyTorch: largest difference {report['onnx_max_diff']:.2e}")
    if not report["compact"]:
        if report["safetensors"]:
            print(f"wrote {report['safetensors']}: the masked weights")
        else:
            print("no safetensors file: install the export extra (pip install -e '.[export]') for one")
    if latency:
        if fmt != "onnx":
            print("error: --latency: measured with onnxruntime, so only with --format onnx", file=sys.stderr)
            return 2
        model, ckpt = load_step(run_dir, step)
        lat = dense_vs_pruned_latency(model, ckpt, Path(out), batch_size)
        print(
            f"onnxruntime CPU latency, batch {lat['batch_size']}: dense {lat['dense_ms']:.3f} ms "
            f"({lat['dense_spread_ms'][0]:.3f}-{lat['dense_spread_ms'][1]:.3f}), pruned {lat['pruned_ms']:.3f} ms "
            f"({lat['pruned_spread_ms'][0]:.3f}-{lat['pruned_spread_ms'][1]:.3f}): {lat['speedup']:.2f}x"
        )
    return 0

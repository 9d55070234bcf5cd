"""Export round trips from real runs: ONNX through onnxruntime, TorchScript reloaded, state_dict into the rebuilt
model; a channel-pruned torchvision model on an image folder exports compact, a masked model with its zeros."""

import json

import pytest
import torch

from core.spec import parse_spec
from worker.engine.export import (
    ExportError,
    dense_vs_pruned_latency,
    example_input,
    export_step,
    load_step,
    onnx_outputs,
    rebuild_from_state_dict,
)
from worker.engine.runner import run_job

from .test_imagefolder import make_imagefolder

pytest.importorskip("onnxruntime")


class Quiet:
    def on_progress(self, fraction, message):
        pass

    def on_baseline(self, metrics):
        pass

    def on_step(self, step):
        pass

    def on_sensitivity(self, rows):
        pass

    def cancelled(self):
        return False


def _run(tmp_path, name, spec: dict):
    out = tmp_path / name
    result = run_job(parse_spec(spec), out, Quiet(), data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    (out / "result.json").write_text(json.dumps(result))
    return out, result


@pytest.fixture(scope="module")
def channel_run(tmp_path_factory):
    """mobilenet_v3_small from torchvision on a 16x16 image folder, 40 % channel removal."""
    tmp = tmp_path_factory.mktemp("channel")
    make_imagefolder(tmp / "data" / "shapes", classes=("a", "b"), n_train=6, n_test=2, size=(16, 16))
    spec = {
        "model": "torchvision:mobilenet_v3_small",
        "dataset": "imagefolder:shapes",
        "train": {"epochs": 1, "batch_size": 4},
        "method": {"kind": "channel"},
        "schedule": {"kind": "oneshot", "sparsities": [0.4], "finetune_epochs": 0},
        "measure": {"latency": False},
        "device": "cpu",
    }
    return _run(tmp, "run", spec)


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("masked")
    spec = {
        "model": "lenet300_100",
        "dataset": "digits",
        "train": {"epochs": 1},
        "method": {"kind": "block", "block_size": 2},
        "schedule": {"kind": "oneshot", "sparsities": [0.5, 0.75], "finetune_epochs": 0},
        "measure": {"latency": False},
        "device": "cpu",
    }
    return _run(tmp, "run", spec)


def test_channel_pruned_torchvision_run_exports_compact_onnx(channel_run, tmp_path):
    run_dir, result = channel_run
    [step] = result["steps"]
    assert step["params_nonzero"] < result["baseline"]["params_total"]
    report = export_step(run_dir, 1, "onnx", tmp_path / "m.onnx")
    assert report["compact"] and report["onnx_max_diff"] <= 1e-4 and report["safetensors"] is None
    model, ckpt = load_step(run_dir, 1)
    assert report["params"] == sum(p.numel() for p in model.parameters()) < result["baseline"]["params_total"]
    x = example_input(ckpt, 5)  # a batch size the export never saw: the batch axis is dynamic
    with torch.no_grad():
        assert torch.allclose(onnx_outputs(tmp_path / "m.onnx", x), model(x), atol=1e-4)
    latency = dense_vs_pruned_latency(model, ckpt, tmp_path / "m.onnx", batch_size=2, repeats=3)
    assert latency["dense_ms"] > 0 and latency["pruned_ms"] > 0 and latency["batch_size"] == 2


def test_torchscript_and_state_dict_round_trips(channel_run, tmp_path):
    run_dir, _ = channel_run
    model, ckpt = load_step(run_dir, 1)
    x = example_input(ckpt, 3)
    with torch.no_grad():
        expected = model(x)
    export_step(run_dir, 1, "torchscript", tmp_path / "m.pt")
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        assert torch.allclose(scripted(x), expected, atol=1e-5)
    export_step(run_dir, 1, "state_dict", tmp_path / "m.state.pt")
    rebuilt = rebuild_from_state_dict(tmp_path / "m.state.pt")
    with torch.no_grad():
        assert torch.equal(rebuilt(x), expected)


def test_masked_model_exports_with_zeros_and_safetensors(masked_run, tmp_path):
    run_dir, result = masked_run
    report = export_step(run_dir, 2, "onnx", tmp_path / "lenet.onnx")
    assert not report["compact"] and report["onnx_max_diff"] <= 1e-4
    assert report["params"] == result["baseline"]["params_total"]  # dense shape
    assert report["nonzero"] < 0.4 * report["params"]  # 75 % of the pruned weights are zeros
    safetensors = pytest.importorskip("safetensors.torch")
    weights = safetensors.load_file(report["safetensors"])
    model, _ = load_step(run_dir, 2)
    assert torch.equal(weights["fc1.weight"], model.fc1.weight)
    assert float((weights["fc1.weight"] == 0).float().mean()) > 0.7


def test_bad_step_and_format_are_one_line(masked_run, tmp_path):
    run_dir, _ = masked_run
    with pytest.raises(ExportError, match=r"step: 3 is not a step of this run \(allowed: 1 to 2\)"):
        export_step(run_dir, 3, "onnx", tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="format: unknown format 'tflite'; allowed: onnx, torchscript, state_dict"):
        export_step(run_dir, 1, "tflite", tmp_path / "x")
    with pytest.raises(ExportError, match="has no result.json"):
        export_step(tmp_path, 1, "onnx", tmp_path / "x.onnx")


def test_prunelab_export_command(masked_run, tmp_path, prunelab, prunelab_env):
    run_dir, _ = masked_run
    env = prunelab_env(tmp_path / "home")
    done = prunelab(
        "export", str(run_dir), "--step", "2", "--format", "state_dict", "--out", str(tmp_path / "s.pt"), env=env
    )
    assert done.returncode == 0, done.stderr
    assert "dense with its zeros (masked)" in done.stdout and (tmp_path / "s.pt").is_file()
    bad = prunelab(
        "export", str(run_dir), "--step", "9", "--format", "onnx", "--out", str(tmp_path / "b.onnx"), env=env
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "error: step: 9 is not a step of this run (allowed: 1 to 2)"

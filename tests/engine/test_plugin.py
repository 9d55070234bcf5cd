"""Model plugins through the entry-point group prunelab.models (the example package under examples/plugin,
installed into this environment here if it is not yet), and the worker catalog that lists them."""

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch

from core.spec import DEFAULT_LAYERS, parse_spec
from worker.engine.catalog import worker_catalog
from worker.engine.models import build_model
from worker.engine.pruning import make_pruner
from worker.engine.runner import run_job

from .test_export import Quiet
from .test_imagefolder import make_imagefolder

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "examples" / "plugin"


@pytest.fixture(scope="module", autouse=True)
def example_plugin_installed():
    if "tiny_cnn" not in {ep.name for ep in entry_points(group="prunelab.models")}:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "-e", str(PLUGIN_DIR)],
            check=True,
            timeout=300,
        )
        import importlib

        importlib.invalidate_caches()
    assert "tiny_cnn" in {ep.name for ep in entry_points(group="prunelab.models")}


def test_plugin_model_builds_with_its_default_layers():
    model = build_model("plugin:tiny_cnn", (1, 8, 8), 4)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 4)
    assert DEFAULT_LAYERS["plugin:tiny_cnn"] == ["0", "3", "6", "11"]


def test_channel_pruning_of_a_plugin_model():
    model = build_model("plugin:tiny_cnn", (3, 16, 16), 10).eval()
    spec = parse_spec(
        {
            "model": "plugin:tiny_cnn",
            "dataset": "cifar10",
            "method": {"kind": "channel"},
            "schedule": {"kind": "oneshot"},
        }
    )
    before = sum(p.numel() for p in model.parameters())
    pruner = make_pruner(spec, model, (3, 16, 16))
    pruner.prune(model, 0.5)
    assert sum(p.numel() for p in model.parameters()) < before
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 10)


def test_a_job_runs_a_plugin_model_on_an_image_folder(tmp_path):
    make_imagefolder(tmp_path / "data" / "shapes", classes=("a", "b"), n_train=6, n_test=2, size=(12, 12))
    spec = parse_spec(
        {
            "model": "plugin:tiny_cnn",
            "dataset": "imagefolder:shapes",
            "train": {"epochs": 1, "batch_size": 4},
            "method": {"kind": "magnitude"},
            "schedule": {"kind": "oneshot", "sparsities": [0.5], "finetune_epochs": 1},
            "measure": {"latency": False},
            "device": "cpu",
        }
    )
    result = run_job(spec, tmp_path / "run", Quiet(), data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    [step] = result["steps"]
    assert abs(step["sparsity"] - 0.5) < 0.02


def test_catalog_lists_plugins_torchvision_models_and_image_folders(tmp_path):
    make_imagefolder(tmp_path / "shapes", classes=("a", "b"), n_train=2, n_test=1, size=(12, 12))
    catalog = json.loads(json.dumps(worker_catalog(tmp_path)))  # plain JSON
    models = {m["name"]: m for m in catalog["models"]}
    assert models["plugin:tiny_cnn"]["label"] == "Tiny CNN, 3 conv + BN (example plugin)"
    assert models["plugin:tiny_cnn"]["default_layers"] == ["0", "3", "6", "11"]
    assert models["torchvision:vit_b_16"]["input"]["fixed"] and models["torchvision:alexnet"]["input"]["min_side"] == 63
    assert models["torchvision:resnet50"]["layers"][0] == "conv1"
    assert not models["torchvision:shufflenet_v2_x1_0"]["channel_pruning"]["supported"]
    assert models["torchvision:resnet18"]["channel_pruning"] == {"supported": True, "tested": True, "note": ""}
    assert models["lenet300_100"]["layers"] == ["fc1", "fc2", "fc3"]
    datasets = {d["name"]: d for d in catalog["datasets"]}
    assert datasets["imagefolder:shapes"]["classes"] == 2 and datasets["imagefolder:shapes"]["shape"] == [3, 12, 12]
    assert datasets["digits"]["present"] and not datasets["cifar10"]["present"]
    assert catalog["devices"][0]["device"] == "cpu"

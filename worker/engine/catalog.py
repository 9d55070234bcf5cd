"""What this worker can run, as plain JSON: worker_catalog(data_dir) -> {"models", "datasets", "devices"}.

The API never imports torch, so the models and datasets it cannot list itself (torchvision's classification
models, installed plugins, the image folders and dataset files in this worker's data directory, its devices)
come from here; the worker publishes the dict.

- models: the built-in ones, every torchvision classification model (input size needs, whether torchvision's
  pretrained weights file is in the torch hub cache, whether channel pruning can follow its structure) and
  each plugin of the entry-point group prunelab.models. Layer names come from building the model on the meta
  device (no memory, no arithmetic); a model that cannot be built there (RegNet's init reads values) is built
  on the CPU when it is small, else its layers are listed as null (known once a job builds it).
- datasets: the built-in ones with whether their files are present, and every DATA_DIR/NAME with train/ and
  test/ class folders as imagefolder:NAME.
- devices: the CPU and each CUDA device with its name and memory.

`python -m worker.engine.catalog check [NAME ...]` channel-prunes torchvision models for real (CPU, small
inputs) and prints which work and which are refused.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import torch
from torch import nn

from core.spec import DATASETS, DEFAULT_LAYERS, MODEL_LAYERS, MODELS
from worker.engine import data as data_module
from worker.engine import models as zoo
from worker.engine.pruning.channel import ChannelPruner, ChannelPruningRefused, refuse_unsupported

CPU_BUILD_MAX_PARAMS = 50_000_000  # models that cannot be built on the meta device are built on the CPU up to this
# Families whose channel removal tests/engine/test_zoo.py checks (forward, fewer parameters, a training step).
CHANNEL_TESTED = (
    "resnet18",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "regnet_y_400mf",
    "densenet121",
    "vit_b_16",
)


def _label(name: str) -> str:
    return f"{name} (torchvision)"


def _build_for_listing(name: str) -> nn.Module | None:
    full = zoo.TORCHVISION + name
    try:
        with torch.device("meta"):
            return zoo.build_model(full, (3, 32, 32), 10)
    except (NotImplementedError, RuntimeError):
        pass
    if zoo.weights_of(name).meta.get("num_params", 0) <= CPU_BUILD_MAX_PARAMS:
        return zoo.build_model(full, (3, 32, 32), 10)
    return None


@functools.lru_cache(maxsize=1)
def torchvision_models(layers: bool = True) -> tuple[dict, ...]:
    out = []
    for name in zoo.torchvision_names():
        side, fixed = zoo.input_side(name)
        pretrained_side, _ = zoo.input_side(name, pretrained=True)
        entry = {
            "name": zoo.TORCHVISION + name,
            "label": _label(name),
            "family": "torchvision",
            "input": {"min_side": side, "fixed": fixed, "pretrained_side": pretrained_side},
            "pretrained": {"file": str(zoo.weights_file(name)), "cached": zoo.weights_file(name).is_file()},
            "params": zoo.weights_of(name).meta.get("num_params"),
            "layers": None,
            "default_layers": None,
        }
        channel = {"supported": True, "tested": name in CHANNEL_TESTED, "note": ""}
        model = _build_for_listing(name) if layers else None
        if model is not None:
            entry["layers"] = MODEL_LAYERS[entry["name"]]
            entry["default_layers"] = DEFAULT_LAYERS[entry["name"]]
            try:
                refuse_unsupported(model)
            except ChannelPruningRefused as exc:
                channel = {"supported": False, "tested": True, "note": str(exc)}
        entry["channel_pruning"] = channel
        out.append(entry)
    return tuple(out)


def plugin_models() -> list[dict]:
    out = []
    for name, point in sorted(zoo.plugin_entry_points().items()):
        entry = {"name": zoo.PLUGIN + name, "label": name, "family": "plugin", "source": point.value, "layers": None}
        try:
            factory = point.load()
            entry["label"] = getattr(factory, "label", name)
            model = zoo.build_model(entry["name"], (3, 32, 32), 10)
            entry["layers"] = MODEL_LAYERS[entry["name"]]
            entry["default_layers"] = DEFAULT_LAYERS[entry["name"]]
            entry["params"] = sum(p.numel() for p in model.parameters())
        except Exception as exc:  # a broken plugin is listed with its error, never fatal to the worker
            entry["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        out.append(entry)
    return out


def builtin_models() -> list[dict]:
    return [{"name": n, **m, "layers": MODEL_LAYERS[n], "default_layers": DEFAULT_LAYERS[n]} for n, m in MODELS.items()]


def _dataset_present(name: str, data_dir: Path) -> bool:
    """Whether a built-in dataset's files are in the data directory (archives are extracted on the way)."""
    if DATASETS[name]["builtin"]:
        return True
    svhn = data_dir / data_module.SVHN_FOLDER
    checks = {
        "mnist": lambda: not data_module._idx_missing(data_dir / "MNIST" / "raw"),
        "fashion_mnist": lambda: not data_module._idx_missing(data_dir / "FashionMNIST" / "raw"),
        "cifar10": lambda: not data_module._cifar_missing(data_dir),
        "cifar100": lambda: not data_module._cifar100_missing(data_dir),
        "svhn": lambda: all((svhn / f).is_file() for f in data_module.SVHN_FILES.values()),
    }
    try:
        return checks[name]()
    except (OSError, KeyError, ValueError):
        return False


def datasets(data_dir: Path) -> list[dict]:
    data_dir = Path(data_dir)
    out = [{"name": n, **d, "present": _dataset_present(n, data_dir)} for n, d in DATASETS.items()]
    if data_dir.is_dir():
        for folder in sorted(p for p in data_dir.iterdir() if (p / "train").is_dir() and (p / "test").is_dir()):
            entry = {"name": f"imagefolder:{folder.name}", "label": f"image folder {folder.name}", "builtin": False}
            try:
                info = data_module.scan_imagefolder(folder)
                entry.update(
                    shape=[info["channels"], *info["size"]],
                    classes=len(info["classes"]),
                    class_names=info["classes"][:1000],
                    train_images=len(info["train"]),
                    test_images=len(info["test"]),
                    present=True,
                )
            except (data_module.DatasetMissing, OSError) as exc:
                entry.update(present=False, error=str(exc))
            out.append(entry)
    return out


def devices() -> list[dict]:
    out = [{"device": "cpu", "label": f"CPU ({torch.get_num_threads()} threads)"}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append({"device": "cuda", "index": i, "label": props.name, "memory_bytes": int(props.total_memory)})
    return out


def worker_catalog(data_dir: Path | str, layers: bool = True) -> dict:
    """{"models": [...], "datasets": [...], "devices": [...]}: plain JSON, what this worker can run."""
    return {
        "models": builtin_models() + list(torchvision_models(layers)) + plugin_models(),
        "datasets": datasets(Path(data_dir)),
        "devices": devices(),
    }


# ---------------------------------------------------------------- python -m worker.engine.catalog check


def check_channel(name: str, fraction: float = 0.3) -> dict:
    """Channel-prune torchvision model `name` for real on the CPU (32x32 inputs, or the model's side) with its
    default layers: forward, parameters before and after, one SGD step."""
    started = time.perf_counter()
    side, _ = zoo.input_side(name)
    shape = (3, side, side)
    try:
        model = zoo.build_model(zoo.TORCHVISION + name, shape, 10).eval()
        before = sum(p.numel() for p in model.parameters())
        pruner = ChannelPruner(model, DEFAULT_LAYERS[zoo.TORCHVISION + name], torch.zeros(1, *shape), "l1")
        pruner.prune(model, fraction)
        after = sum(p.numel() for p in model.parameters())
        model.train()
        loss = nn.functional.cross_entropy(model(torch.randn(2, *shape)), torch.tensor([0, 1]))
        loss.backward()
        result = {"result": "works" if after < before else "no channels removed", "before": before, "after": after}
    except ChannelPruningRefused as exc:
        result = {"result": "refused", "note": str(exc)}
    except Exception as exc:
        result = {"result": "fails", "note": " ".join(f"{type(exc).__name__}: {exc}".split())[:200]}
    return {"model": name, **result, "seconds": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "check":
        print("usage: python -m worker.engine.catalog check [TORCHVISION_MODEL ...]", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    names = argv[1:] or zoo.torchvision_names()
    print(f"{'model':<22} {'channel pruning':<20} {'parameters':>24} {'s':>6}  note")
    for name in names:
        r = check_channel(name)
        params = f"{r['before']} -> {r['after']}" if "before" in r else ""
        print(f"{name:<22} {r['result']:<20} {params:>24} {r['seconds']:6.1f}  {r.get('note', '')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Ready-made specs for the papers' experiments, sized for the built-in digits dataset (the form's presets).

Each reproduces one experiment of examples/*.yaml (the full-size versions on MNIST / CIFAR-10) with few
epochs, so it runs in minutes on a CPU. Presets of one model share their training settings, so they share
one cached baseline. Conv models see the 8x8 digits resized to 32x32 (see worker/engine/data.py).
"""

import json
from pathlib import Path

# Measured by bench/bench_presets.py (`prunelab run`, cold baseline cache): {name: {first_point_s, total_s,
# machine, ...}}; total_s null when the run was stopped after over_s seconds.
TIMINGS_FILE = Path(__file__).with_name("preset_timings.json")


def _seconds(s: float) -> str:
    return f"~{s:.0f} s" if s < 90 else f"~{s / 60:.0f} min"


def timing_text(timing: dict | None) -> str | None:
    """ "first point in ~X s, done in ~Y s on a 2-core CPU" from one measurement, or None."""
    if not timing or timing.get("first_point_s") is None:
        return None
    first = f"first point in {_seconds(timing['first_point_s'])}"
    if timing.get("total_s") is not None:
        rest = f"done in {_seconds(timing['total_s'])}"
    else:
        rest = f"full run > {max(1, int(timing.get('over_s', 0) // 60))} min"
    return f"{first}, {rest} on a {timing.get('machine', 'CPU')}"


def _load_timings() -> dict:
    try:
        return json.loads(TIMINGS_FILE.read_text())
    except (OSError, ValueError):
        return {}


_LENET_TRAIN = {"epochs": 20, "optimizer": "adam", "lr": 0.001, "batch_size": 64}
# Adam converges in few steps on 1,437 images where the full-size SGD recipe needs many epochs.
_CONV_TRAIN = {"epochs": 4, "optimizer": "adam", "lr": 0.001, "batch_size": 64}

_VGG_FINE_GRAINED = {
    "backbone.conv0": 0.0,
    "backbone.conv1": 0.0,
    "backbone.conv2": 0.0,
    "backbone.conv3": 0.6,
    "backbone.conv4": 0.7,
    "backbone.conv5": 0.8,
    "backbone.conv6": 0.8,
    "backbone.conv7": 0.9,
    "classifier": 0.0,
}


def _preset(name: str, label: str, model: str, train: dict, method: dict, schedule: dict, tags: list[str]) -> dict:
    return {
        "name": name,
        "label": label,
        "spec": {
            "name": name,
            "model": model,
            "dataset": "digits",
            "train": dict(train),
            "method": method,
            "schedule": schedule,
            "seed": 0,
            "tags": tags,
        },
    }


PRESETS: list[dict] = [
    # The same experiment as examples/lenet-digits-block2.yaml.
    {
        "name": "lenet-digits-block2",
        "quick": True,
        "label": "LeNet-300-100, 2x2 blocks, iterative 20 % per round (block pruning paper)",
        "spec": {
            "name": "lenet-digits-block2",
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 20, "optimizer": "adam", "lr": 0.001, "batch_size": 64},
            "method": {"kind": "block", "block_size": 2, "score": "mean_abs"},
            "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 10, "finetune_epochs": 2},
            "seed": 0,
        },
    },
    *[
        {
            **_preset(
                f"lenet-digits-block{n}-16rounds",
                f"LeNet-300-100, {n}x{n} blocks, 16 rounds, fc3 at 10 % per round (block pruning paper)",
                "lenet300_100",
                _LENET_TRAIN,
                {"kind": "block", "block_size": n, "score": "mean_abs"},
                {"kind": "iterative", "rate": 0.2, "layer_rates": {"fc3": 0.1}, "rounds": 16, "finetune_epochs": 1},
                ["seed-000", "lenet", "block"],
            ),
            "quick": True,
        }
        for n in (2, 4, 6)
    ],
    _preset(
        "vgg-digits-finegrained",
        "VGG (8 conv), fine-grained per-layer sparsities from a sensitivity scan",
        "vgg",
        _CONV_TRAIN,
        {"kind": "magnitude", "scope": "layer", "layer_sparsity": _VGG_FINE_GRAINED},
        {"kind": "oneshot", "sparsities": [0.0], "finetune_epochs": 1},
        ["seed-001", "vgg", "fine-grained"],
    ),
    _preset(
        "vgg-digits-channel",
        "VGG (8 conv), 30 % of the channels removed",
        "vgg",
        _CONV_TRAIN,
        {"kind": "channel", "importance": "l1"},
        {"kind": "oneshot", "sparsities": [0.46], "finetune_epochs": 1},
        ["seed-001", "vgg", "channel"],
    ),
    _preset(
        "vgg-digits-group-lasso",
        "VGG (8 conv), SSL group lasso (Wen et al. 2016) then filter removal",
        "vgg",
        _CONV_TRAIN,
        {"kind": "group_lasso", "strength": 0.001, "epochs": 2, "threshold": 0.01},
        {"kind": "oneshot", "sparsities": [0.3], "finetune_epochs": 1},
        ["seed-002", "vgg", "group-lasso"],
    ),
    _preset(
        "vgg-digits-magnitude-rewind",
        "VGG (8 conv), global magnitude with weight rewinding (Renda et al. 2020)",
        "vgg",
        _CONV_TRAIN,
        {"kind": "magnitude", "scope": "global"},
        {"kind": "iterative", "rate": 0.2, "rounds": 4, "after": "rewind", "rewind_epoch": 1, "finetune_epochs": 2},
        ["seed-002", "vgg", "rewind"],
    ),
    _preset(
        "resnet18-digits-oneshot",
        "ResNet-18, global magnitude one-shot 0.5 / 0.75 / 0.9",
        "resnet18",
        _CONV_TRAIN,
        {"kind": "magnitude", "scope": "global"},
        {"kind": "oneshot", "sparsities": [0.5, 0.75, 0.9], "finetune_epochs": 1},
        ["seed-003", "resnet18", "oneshot"],
    ),
    _preset(
        "resnet18-digits-iterative",
        "ResNet-18, global magnitude iterative 20 % per round to 0.91",
        "resnet18",
        _CONV_TRAIN,
        {"kind": "magnitude", "scope": "global"},
        {"kind": "iterative", "rate": 0.2, "rounds": None, "target": 0.91, "finetune_epochs": 1},
        ["seed-003", "resnet18", "iterative"],
    ),
    _preset(
        "resnet18-head-digits-block2",
        "ResNet-18 + FC head, 2x2 blocks on the head only, 16 rounds (block pruning paper)",
        "resnet18_head",
        _CONV_TRAIN,
        {"kind": "block", "block_size": 2, "layers": ["fc.0", "fc.2"]},
        {"kind": "iterative", "rate": 0.2, "rounds": 16, "finetune_epochs": 1},
        ["seed-000", "resnet18", "block"],
    ),
    # The same experiment as examples/lenet-digits-sensitivity.yaml: its page chooses per-layer sparsities.
    _preset(
        "lenet-digits-sensitivity",
        "LeNet-300-100, per-layer sensitivity analysis (each layer alone, magnitude, no fine-tuning)",
        "lenet300_100",
        _LENET_TRAIN,
        {"kind": "magnitude"},
        {"kind": "sensitivity", "sparsities": [0.3, 0.5, 0.7, 0.8, 0.9, 0.95], "max_eval_images": None},
        ["lenet", "sensitivity"],
    ),
]


def _with_timings(presets: list[dict], timings: dict) -> list[dict]:
    for preset in presets:
        text = timing_text(timings.get(preset["name"]))
        if text:
            preset["timing"] = text
            preset["label"] = f"{preset['label']} ({text})"
    return presets


_with_timings(PRESETS, _load_timings())

# Sweeps: one spec with `sweep` (core.sweep) that the form submits as one group of jobs. Kept apart from
# PRESETS, which are single jobs (`prunelab serve --example` queues those); the catalog offers both.
SWEEP_PRESETS: list[dict] = [
    # The same study as examples/lenet-digits-block-sweep.yaml.
    {
        "name": "lenet-digits-block-sweep",
        "label": "LeNet-300-100, block sizes 2..6 x 3 seeds, iterative, one group of 15 runs (block pruning paper)",
        "spec": {
            "name": "lenet-digits-block-sweep",
            "model": "lenet300_100",
            "dataset": "digits",
            "train": dict(_LENET_TRAIN),
            "method": {"kind": "block", "block_size": 2, "score": "mean_abs"},
            "schedule": {
                "kind": "iterative",
                "rate": 0.2,
                "layer_rates": {"fc3": 0.1},
                "rounds": 16,
                "finetune_epochs": 1,
            },
            "seed": 0,
            "tags": ["lenet", "block", "block-size-study"],
            "sweep": {"method.block_size": [2, 3, 4, 5, 6], "seed": [0, 1, 2]},
        },
    },
]

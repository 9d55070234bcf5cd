"""Fine-grained magnitude pruning: per-layer kthvalue targets, global L1, masks that hold, reports."""

import numpy as np
import pytest
import torch
from torch import nn

from core.masks import decode_density, decode_grid
from core.spec import parse_spec
from worker.engine.models import build_model
from worker.engine.pruning import MagnitudePruner, make_pruner


def lenet() -> nn.Module:
    torch.manual_seed(0)
    return build_model("lenet300_100", (1, 8, 8), 10)


def test_layer_scope_hits_each_target_and_prunes_the_smallest():
    model = lenet()
    original = model.fc2.weight.detach().clone()
    pruner = MagnitudePruner(["fc1", "fc2", "fc3"])
    pruner.prune(model, 0.6, {"fc3": 0.3}, None)
    report = {layer["name"]: layer for layer in pruner.layer_report(model)}
    assert report["fc1"]["sparsity"] == pytest.approx(0.6, abs=1 / report["fc1"]["params"])
    assert report["fc3"]["sparsity"] == pytest.approx(0.3, abs=1 / report["fc3"]["params"])
    assert report["fc3"]["target_sparsity"] == 0.3
    kept = original.abs()[pruner.masks["fc2"]]
    dropped = original.abs()[~pruner.masks["fc2"]]
    assert kept.min() >= dropped.max()


def test_global_scope_uses_one_threshold_across_layers():
    model = lenet()
    with torch.no_grad():
        model.fc1.weight.mul_(10)  # fc1 much larger: global pruning spares it
    pruner = MagnitudePruner(["fc1", "fc2", "fc3"], scope="global")
    pruner.prune(model, 0.5, None, None)
    report = {layer["name"]: layer["sparsity"] for layer in pruner.layer_report(model)}
    assert pruner.sparsity(model) == pytest.approx(0.5, abs=1e-4)
    assert report["fc1"] < 0.2 and report["fc2"] > 0.7
    per_layer = MagnitudePruner(["fc1", "fc2", "fc3"], scope="layer")
    other = lenet()
    per_layer.prune(other, 0.5, None, None)
    assert [layer["sparsity"] for layer in per_layer.layer_report(other)] != list(report.values())


def test_report_masks_decode_to_the_layer_shapes():
    model = lenet()
    pruner = MagnitudePruner(["fc1", "fc2"])
    pruner.prune(model, 0.75, None, None)
    for layer in pruner.layer_report(model):
        grid = decode_grid(layer["mask"]["grid"])
        assert layer["mask"]["block_shape"] == [1, 1]
        assert list(grid.shape) == layer["shape"]
        assert np.array_equal(grid, pruner.masks[layer["name"]].numpy())
        density = decode_density(layer["density"])
        assert density.shape == (min(layer["shape"][0], 256), min(layer["shape"][1], 256))
        assert density.mean() == pytest.approx(0.25, abs=0.02)
        assert layer["nonzero"] == int(grid.sum())


def test_iterative_magnitude_keeps_earlier_pruned_weights_dead():
    model = lenet()
    pruner = MagnitudePruner(["fc1"])
    pruner.prune(model, 0.2, None, None)
    first = pruner.masks["fc1"].clone()
    with torch.no_grad():
        model.fc1.weight.add_(torch.randn_like(model.fc1.weight) * first)
    pruner.prune(model, 0.36, None, None)
    assert not (pruner.masks["fc1"] & ~first).any()
    assert pruner.sparsity(model) == pytest.approx(0.36, abs=1e-4)


def test_masks_hold_with_adam_weight_decay():
    model = lenet()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.5)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    pruner = MagnitudePruner(["fc1", "fc2", "fc3"])
    pruner.prune(model, 0.9, None, None)
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        pruner.apply_masks(model)
    for name, mask in pruner.masks.items():
        assert (model.get_submodule(name).weight[~mask] == 0).all()
    assert pruner.sparsity(model) >= 0.9 - 1e-4


def test_make_pruner_reads_the_spec():
    spec = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "digits",
            "method": {"kind": "magnitude", "scope": "global", "layers": ["fc1", "fc2"]},
            "schedule": {"kind": "oneshot", "sparsities": [0.5]},
        }
    )
    pruner = make_pruner(spec, lenet())
    assert isinstance(pruner, MagnitudePruner) and pruner.scope == "global" and pruner.layer_names == ["fc1", "fc2"]
    block = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "digits",
            "method": {"kind": "block", "block_size": [2, 5], "score": "l2"},
            "schedule": {"kind": "oneshot", "sparsities": [0.5]},
        }
    )
    pruner = make_pruner(block, lenet())
    assert pruner.block == (2, 5) and pruner.score == "l2" and pruner.layer_names == ["fc1", "fc2", "fc3"]

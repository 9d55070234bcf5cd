"""Channel pruning with Torch-Pruning: physically smaller models that still run and train."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from core.masks import decode_grid
from core.spec import DEFAULT_LAYERS, MODEL_LAYERS, parse_spec
from worker.engine.models import build_model
from worker.engine.pruning import ChannelPruner, make_pruner

CIFAR = (3, 32, 32)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_one_step(model: nn.Module, shape) -> None:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # created after pruning
    x, y = torch.randn(4, *shape), torch.randint(0, 10, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", ["resnet18", "vgg"])
def test_channel_pruning_conv_models_runs_trains_and_shrinks(name):
    torch.manual_seed(0)
    model = build_model(name, CIFAR, 10)
    before = params(model)
    pruner = ChannelPruner(model, MODEL_LAYERS[name], torch.zeros(1, *CIFAR), "l1")
    model = pruner.prune(model, 0.5, None, None)
    assert pruner.sparsity(model) == pytest.approx(0.5, abs=0.03)
    assert params(model) < 0.6 * before
    out = model(torch.randn(2, *CIFAR))
    assert out.shape == (2, 10)  # the classifier's outputs are never pruned
    train_one_step(model, CIFAR)
    if name == "resnet18":  # residual additions: the convs feeding one sum keep the same channels
        for stage in (model.layer2, model.layer3, model.layer4):
            width = stage[0].conv2.out_channels
            assert stage[0].downsample[0].out_channels == width == stage[1].conv2.out_channels
            assert stage[0].bn2.num_features == width == stage[1].conv1.in_channels
        assert model.fc.out_features == 10 and model.fc.in_features == model.layer4[1].conv2.out_channels
    report = {layer["name"]: layer for layer in pruner.layer_report(model)}
    classifier = report["fc" if name == "resnet18" else "classifier"]
    assert classifier["shape"][0] == 10 and decode_grid(classifier["mask"]["grid"]).any(axis=1).all()
    # a second round removes more from the smaller model, relative to the original weights
    model = pruner.prune(model, 0.7, None, None)
    assert pruner.sparsity(model) == pytest.approx(0.7, abs=0.03)
    assert model(torch.randn(2, *CIFAR)).shape == (2, 10)


def test_report_masks_mark_removed_rows_and_columns_in_the_original_view():
    torch.manual_seed(0)
    model = build_model("vgg", CIFAR, 10)
    pruner = ChannelPruner(model, MODEL_LAYERS["vgg"], torch.zeros(1, *CIFAR), "l2")
    pruner.prune(model, 0.4, None, None)
    for layer in pruner.layer_report(model):
        module = model.get_submodule(layer["name"])
        grid = decode_grid(layer["mask"]["grid"])
        out_orig = layer["shape"][0]
        in_orig = layer["shape"][1]
        kernel = int(np.prod(layer["shape"][2:])) if len(layer["shape"]) > 2 else 1
        assert grid.shape == (out_orig, in_orig) and layer["mask"]["block_shape"] == [1, kernel]
        kept_rows, kept_cols = grid.any(axis=1), grid.any(axis=0)
        assert kept_rows.sum() == module.weight.shape[0] and kept_cols.sum() == module.weight.shape[1]
        assert layer["nonzero"] == module.weight.numel() == grid.sum() * kernel
        assert layer["current_shape"] == list(module.weight.shape)


def test_lenet_hidden_neurons_and_bn_scale_fallback():
    torch.manual_seed(0)
    model = build_model("lenet300_100", (1, 8, 8), 10)
    pruner = ChannelPruner(model, ["fc1", "fc2", "fc3"], torch.zeros(1, 1, 8, 8), "bn_scale")  # no BN: L1
    model = pruner.prune(model, 0.5, None, None)
    assert model.fc1.in_features == 64 and model.fc3.out_features == 10
    assert model.fc1.out_features < 300 and model.fc2.out_features < 100
    assert pruner.sparsity(model) == pytest.approx(0.5, abs=0.02)
    train_one_step(model, (1, 8, 8))


def test_bn_scale_ranks_by_batchnorm_gamma():
    torch.manual_seed(0)
    model = build_model("vgg", CIFAR, 10)
    with torch.no_grad():
        model.backbone.bn0.weight.copy_(torch.linspace(0.01, 1.0, 64))  # channel 0 is the weakest
    pruner = ChannelPruner(model, ["backbone.conv0"], torch.zeros(1, *CIFAR), "bn_scale")
    pruner.prune(model, 0.25, {"backbone.conv0": 0.25}, None)
    kept = pruner.keep_out["backbone.conv0"]
    removed = sorted(set(range(64)) - set(kept.tolist()))
    assert removed == list(range(len(removed))) and len(removed) == 16


def test_per_layer_targets_and_unselected_layers_keep_their_outputs():
    torch.manual_seed(0)
    model = build_model("vgg", CIFAR, 10)
    layers = ["backbone.conv1", "backbone.conv2"]
    pruner = ChannelPruner(model, layers, torch.zeros(1, *CIFAR), "l1")
    pruner.prune(model, 0.3, {"backbone.conv2": 0.6}, None)
    assert model.backbone.conv0.out_channels == 64 and model.backbone.conv3.out_channels == 256
    assert (
        model.backbone.conv2.out_channels < 256
        and model.backbone.conv3.in_channels == model.backbone.conv2.out_channels
    )
    report = {layer["name"]: layer["sparsity"] for layer in pruner.layer_report(model)}
    assert report["backbone.conv2"] == pytest.approx(0.6, abs=0.05)
    model(torch.randn(1, *CIFAR))


def test_restructure_and_rewind_load_into_the_compact_shape():
    torch.manual_seed(0)
    model = build_model("resnet18", CIFAR, 10)
    early = copy.deepcopy(model.state_dict())
    pruner = ChannelPruner(model, MODEL_LAYERS["resnet18"], torch.zeros(1, *CIFAR), "l1")
    model = pruner.prune(model, 0.3, None, None)
    model = pruner.prune(model, 0.5, None, None)
    # resume: a fresh model and a fresh pruner from the saved state reach the same shapes
    fresh = build_model("resnet18", CIFAR, 10)
    restored = ChannelPruner(fresh, MODEL_LAYERS["resnet18"], torch.zeros(1, *CIFAR), "l1")
    restored.load_state_dict(pruner.state_dict())
    fresh = restored.restructure(fresh)
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, *CIFAR)
    model.eval(), fresh.eval()
    assert torch.allclose(model(x), fresh(x), atol=1e-5)
    # rewind: the early weights of the surviving channels
    pruner.rewind(model, early)
    kept = pruner.keep_out["layer1.0.conv1"]
    assert torch.equal(
        model.layer1[0].conv1.weight.detach()[:, :],
        early["layer1.0.conv1.weight"][kept][:, pruner.keep_in["layer1.0.conv1"]],
    )


def test_make_pruner_for_channel_spec_uses_default_layers():
    spec = parse_spec(
        {
            "model": "vgg16_bn",
            "dataset": "cifar10",
            "method": {"kind": "channel"},
            "schedule": {"kind": "oneshot", "sparsities": [0.5]},
        }
    )
    model = build_model("vgg16_bn", CIFAR, 10)
    pruner = make_pruner(spec, model)
    assert isinstance(pruner, ChannelPruner) and pruner.layer_names == DEFAULT_LAYERS["vgg16_bn"]
    model = pruner.prune(model, 0.5, None, None)
    assert model(torch.randn(1, *CIFAR)).shape == (1, 10)
    assert pruner.sparsity(model) == pytest.approx(0.5, abs=0.03)

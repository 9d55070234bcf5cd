"""torchvision's classification models through the engine: every model runs at its input size, the classifier
fits the dataset, pretrained weights come from the torch hub cache, and every pruning method works on a sample
of families (channel removal: forward runs, fewer parameters, a training step; refused models say why)."""

import pytest
import torch
from torch import nn

from core.spec import DEFAULT_LAYERS, MODEL_LAYERS, parse_spec
from worker.engine.models import (
    ModelUnavailable,
    build_model,
    input_side,
    prunable_layers,
    torchvision_names,
    weights_file,
)
from worker.engine.pruning import make_pruner
from worker.engine.pruning.channel import ChannelPruner, ChannelPruningRefused

GREY = (1, 28, 28)  # MNIST-sized: torchvision models repeat the channel and resize per batch
SMALL = (3, 32, 32)


def _meta_buildable(name: str) -> bool:
    return not name.startswith("regnet_")  # RegNet's init reads tensor values: not on the meta device


@pytest.mark.parametrize("name", [n for n in torchvision_names() if _meta_buildable(n)])
def test_every_torchvision_model_runs_on_grey_28x28_images(name):
    # On the meta device: shapes only, no memory and no arithmetic, so all models fit in a test.
    with torch.device("meta"):
        model = build_model(f"torchvision:{name}", GREY, 7).eval()
        out = model(torch.zeros(2, *GREY))
    assert out.shape == (2, 7)
    assert MODEL_LAYERS[f"torchvision:{name}"] == prunable_layers(model)


def test_input_sides_say_which_models_need_more():
    assert input_side("resnet18") == (32, False)
    assert input_side("alexnet") == (63, False) and input_side("inception_v3") == (75, False)
    assert input_side("maxvit_t") == (224, True)
    assert input_side("vit_b_16", 32) == (32, True) and input_side("vit_h_14", 32) == (42, True)
    assert input_side("vit_b_16", 32, pretrained=True) == (224, True)


def test_regnet_and_a_real_forward():
    model = build_model("torchvision:regnet_x_400mf", SMALL, 5).eval()
    assert model(torch.randn(2, *SMALL)).shape == (2, 5)


def test_unknown_torchvision_model_and_plugin_are_one_line():
    with pytest.raises(ModelUnavailable, match="torchvision has no classification model 'resnet19'") as err:
        build_model("torchvision:resnet19", SMALL, 10)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelUnavailable, match="no installed package provides plugin:nothing_here"):
        build_model("plugin:nothing_here", SMALL, 10)


def test_pretrained_weights_come_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_file("resnet18")
    assert path.parent == tmp_path / "hub" / "checkpoints"
    import torchvision

    torch.manual_seed(1)
    imagenet = torchvision.models.resnet18()  # 1000 classes, as torchvision's file holds
    path.parent.mkdir(parents=True)
    torch.save(imagenet.state_dict(), path)
    model = build_model("torchvision:resnet18", SMALL, 10, pretrained=True)
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
    assert model.fc.out_features == 10 and model.fc.in_features == 512


def test_pretrained_weights_missing_offline_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # no network here: the download fails (or, where it works, this test is skipped)
    try:
        model = build_model("torchvision:squeezenet1_1", SMALL, 10, pretrained=True)
    except ModelUnavailable as exc:
        message = str(exc)
        assert "\n" not in message and str(weights_file("squeezenet1_1")) in message
        assert message.startswith("pretrained: torchvision weights for squeezenet1_1")
    else:
        assert model.classifier[1].out_channels == 10
        pytest.skip("the network allowed the download")


def test_spec_names_torchvision_models_and_checks_pretrained():
    spec = parse_spec(
        {
            "model": "torchvision:resnet50",
            "dataset": "imagefolder:flowers",
            "pretrained": True,
            "method": {"kind": "channel"},
            "schedule": {"kind": "oneshot"},
        }
    )
    assert spec.model == "torchvision:resnet50" and spec.training_key()["pretrained"] is True
    with pytest.raises(ValueError, match="pretrained: only torchvision models"):
        parse_spec(
            {
                "model": "vgg",
                "dataset": "cifar10",
                "pretrained": True,
                "method": {"kind": "channel"},
                "schedule": {"kind": "oneshot"},
            }
        )
    with pytest.raises(ValueError, match="allowed: .*torchvision:NAME, plugin:NAME"):
        parse_spec(
            {"model": "resnet50", "dataset": "cifar10", "method": {"kind": "channel"}, "schedule": {"kind": "oneshot"}}
        )


def _train_step(model: nn.Module, shape) -> float:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(2, *shape), torch.tensor([0, 1])
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return float(loss)


# (model, layers: None = the model's default set, or a prefix of layer names to keep the test fast)
FAMILIES = [
    ("resnet18", None),  # residual sums
    ("mobilenet_v2", None),  # depthwise convolutions
    ("mobilenet_v3_small", None),  # squeeze-excite, hard-swish
    ("efficientnet_b0", None),  # squeeze-excite, stochastic depth
    ("regnet_y_400mf", None),  # grouped convolutions, squeeze-excite
    ("densenet121", "features.denseblock1"),  # concatenations (one dense block: the graph is slow to walk)
    ("vit_b_16", None),  # attention: the MLP widths (the embedding stays: attention's out_proj not chosen)
]


@pytest.mark.parametrize("name, prefix", FAMILIES)
def test_channel_removal_on_torchvision_families(name, prefix):
    torch.manual_seed(0)
    model = build_model(f"torchvision:{name}", SMALL, 10).eval()
    layers = DEFAULT_LAYERS[f"torchvision:{name}"]
    if prefix:
        layers = [n for n in layers if n.startswith(prefix)]
    before = sum(p.numel() for p in model.parameters())
    pruner = ChannelPruner(model, layers, torch.zeros(1, *SMALL), "l1")
    pruner.prune(model, 0.4)
    assert sum(p.numel() for p in model.parameters()) < before
    assert model.eval()(torch.randn(2, *SMALL)).shape == (2, 10)
    assert torch.isfinite(torch.tensor(_train_step(model, SMALL)))
    # a checkpoint of the smaller model loads into a freshly built one (resume, export)
    fresh = build_model(f"torchvision:{name}", SMALL, 10)
    restored = ChannelPruner(fresh, layers, torch.zeros(1, *SMALL), "l1")
    restored.load_state_dict(pruner.state_dict())
    restored.restructure(fresh).load_state_dict(model.state_dict())


def test_vit_embedding_pruned_in_multiples_of_heads():
    model = build_model("torchvision:vit_b_16", SMALL, 10).eval()
    before = model.hidden_dim
    pruner = ChannelPruner(model, prunable_layers(model), torch.zeros(1, *SMALL), "l2")  # out_proj chosen too
    pruner.prune(model, 0.5)
    heads = model.encoder.layers[0].self_attention.num_heads
    assert model.hidden_dim < before and model.hidden_dim % heads == 0
    assert model.hidden_dim == model.encoder.layers[0].self_attention.embed_dim
    assert model(torch.randn(2, *SMALL)).shape == (2, 10)


@pytest.mark.parametrize(
    "name, layer",
    [
        ("shufflenet_v2_x0_5", "stage2.0 (InvertedResidual)"),
        ("swin_t", "features.1.0.attn"),
        ("maxvit_t", "PartitionAttentionLayer"),
    ],
)
def test_channel_pruning_refused_with_one_line(name, layer):
    model = build_model(f"torchvision:{name}", SMALL, 10)
    with pytest.raises(ChannelPruningRefused) as err:
        ChannelPruner(model, prunable_layers(model), torch.zeros(1, *SMALL), "l1")
    message = str(err.value)
    assert layer in message and "block and magnitude" in message and "\n" not in message


@pytest.mark.parametrize("kind", ["block", "magnitude"])
def test_mask_methods_on_a_torchvision_model(kind):
    model = build_model("torchvision:mobilenet_v3_small", SMALL, 10)
    spec = parse_spec(
        {
            "model": "torchvision:mobilenet_v3_small",
            "dataset": "cifar10",
            "method": {"kind": kind},
            "schedule": {"kind": "oneshot", "sparsities": [0.5]},
        }
    )
    pruner = make_pruner(spec, model, SMALL)
    pruner.prune(model, 0.5)
    pruner.apply_masks(model)
    layers = dict(model.named_modules())
    zeros = sum(int((layers[n].weight == 0).sum()) for n in spec.pruned_layers())
    total = sum(layers[n].weight.numel() for n in spec.pruned_layers())
    assert 0.45 < zeros / total < 0.55
    assert model.eval()(torch.randn(2, *SMALL)).shape == (2, 10)


def test_group_lasso_on_a_torchvision_model():
    torch.manual_seed(0)
    model = build_model("torchvision:mobilenet_v3_small", SMALL, 10)
    spec = parse_spec(
        {
            "model": "torchvision:mobilenet_v3_small",
            "dataset": "cifar10",
            "schedule": {"kind": "oneshot"},
            "method": {"kind": "group_lasso", "epochs": 1, "strength": 1e-3, "threshold": 0.05},
        }
    )
    pruner = make_pruner(spec, model, SMALL)
    penalties = []

    def train_fn(m, epochs, p):  # one regularised SGD step stands in for the epochs
        m.train()
        penalty = p.penalty(m)
        penalties.append(float(penalty))
        loss = nn.functional.cross_entropy(m(torch.randn(2, *SMALL)), torch.tensor([0, 1])) + penalty
        loss.backward()
        torch.optim.SGD(m.parameters(), lr=0.01).step()

    before = sum(p.numel() for p in model.parameters())
    pruner.prune(model, 0.3, None, train_fn)
    assert penalties and penalties[0] > 0
    assert sum(p.numel() for p in model.parameters()) < before
    assert model.eval()(torch.randn(2, *SMALL)).shape == (2, 10)

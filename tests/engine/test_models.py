import pytest
import torch
from torch import nn

from core.spec import DATASETS, MODEL_LAYERS, MODELS
from worker.engine.models import build_model, model_input_shape


@pytest.mark.parametrize("name", list(MODELS))
def test_layer_names_match_the_spec(name):
    model = build_model(name, model_input_shape(name, (3, 32, 32)), 10)
    prunable = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert prunable == MODEL_LAYERS[name]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
def test_forward_on_every_dataset_shape(name, dataset):
    in_shape = model_input_shape(name, tuple(DATASETS[dataset]["shape"]))
    model = build_model(name, in_shape, 10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, 10)


def test_lenet_fc1_takes_the_flattened_image():
    model = build_model("lenet300_100", (1, 8, 8), 10)
    assert (model.fc1.in_features, model.fc1.out_features) == (64, 300)
    assert (model.fc2.in_features, model.fc2.out_features) == (300, 100)
    assert (model.fc3.in_features, model.fc3.out_features) == (100, 10)
    assert build_model("lenet300_100", (1, 28, 28), 10).fc1.in_features == 784


def test_vgg_matches_the_seed_size():
    model = build_model("vgg", (3, 32, 32), 10)
    assert (
        sum(p.numel() for p in model.parameters()) == 9_228_362
    )  # 9.23 M parameters, as the VGG pruning experiments report
    assert isinstance(model.backbone.bn0, nn.BatchNorm2d) and isinstance(model.backbone.pool0, nn.MaxPool2d)


def test_resnet18_has_the_cifar_stem_and_head():
    model = build_model("resnet18_head", (1, 32, 32), 10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.in_channels == 1
    assert isinstance(model.maxpool, nn.Identity)
    assert [m.out_features for m in model.fc if isinstance(m, nn.Linear)] == [300, 10]


def test_unknown_model_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: lenet300_100"):
        build_model("alexnet", (3, 32, 32), 10)

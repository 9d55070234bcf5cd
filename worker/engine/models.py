"""The models a spec can name. Module names match core.spec.MODEL_LAYERS exactly.

Input shapes: LeNet-300-100 takes the dataset's images as they are (flattened, fc1 in = C*H*W).
The conv models are built for 32x32 inputs (CIFAR-sized); the data layer (worker.engine.data) pads or
resizes smaller images to 32x32 for them, so every model runs on every dataset.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from core.spec import MODELS

CONV_INPUT_SIZE = 32

VGG_CFG: dict[str, list] = {
    # the 8-layer VGG (8 conv + BN layers) of the VGG fine-grained and channel pruning experiments
    "vgg": [64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    # VGG-16's 13 conv layers; the last pool is left to the global average pool.
    "vgg16_bn": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
}


class LeNet300100(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class VGG(nn.Module):
    def __init__(self, cfg: list, in_channels: int, num_classes: int):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        conv = pool = 0
        channels = in_channels
        for item in cfg:
            if item == "M":
                layers.append((f"pool{pool}", nn.MaxPool2d(2)))
                pool += 1
                continue
            layers += [
                (f"conv{conv}", nn.Conv2d(channels, item, 3, padding=1, bias=False)),
                (f"bn{conv}", nn.BatchNorm2d(item)),
                (f"relu{conv}", nn.ReLU(inplace=True)),
            ]
            channels = item
            conv += 1
        self.backbone = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(x)
        x = x.mean(dim=(2, 3))  # global average pool
        return self.classifier(x)


def _resnet18(in_channels: int, num_classes: int, head: bool) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_classes)
    # CIFAR stem: 3x3 stride 1 and no max pool, so 32x32 inputs keep enough resolution.
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    if head:
        # the block pruning paper's ResNet-18 with an added fully connected head 512-300-classes; only the
        # head is pruned by default.
        model.fc = nn.Sequential(nn.Linear(512, 300), nn.ReLU(inplace=True), nn.Linear(300, num_classes))
    return model


def model_input_shape(name: str, dataset_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The image shape a model is fed for a dataset of `dataset_shape` (C, H, W)."""
    channels, height, width = dataset_shape
    if name == "lenet300_100":
        return (channels, height, width)
    return (channels, CONV_INPUT_SIZE, CONV_INPUT_SIZE)


def build_model(name: str, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build a model by name. `in_shape` = (C, H, W) of the images it will be fed."""
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r}; allowed: {', '.join(MODELS)}")
    channels, height, width = in_shape
    if name == "lenet300_100":
        return LeNet300100(channels * height * width, num_classes)
    if name in VGG_CFG:
        return VGG(VGG_CFG[name], channels, num_classes)
    return _resnet18(channels, num_classes, head=(name == "resnet18_head"))


def prunable_layers(model: nn.Module) -> list[str]:
    """Names of the model's Conv2d and Linear modules, in definition order."""
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

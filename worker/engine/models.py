"""The models a spec can name.

- Built in (lenet300_100, vgg, vgg16_bn, resnet18, resnet18_head): module names match core.spec.MODEL_LAYERS.
  LeNet-300-100 takes the dataset's images as they are (flattened, fc1 in = C*H*W); the conv models are built
  for 32x32 inputs and the data layer pads or resizes smaller images to 32x32 for them.
- torchvision:NAME: every classification model of torchvision.models, random init (torchvision's own init),
  or torchvision's ImageNet weights with `pretrained` (read from the torch hub cache under TORCH_HOME, downloaded
  where the network allows). The classifier is sized to the dataset's classes.
- plugin:NAME: an entry point of the group `prunelab.models` in an installed package, naming a callable
  (num_classes, in_shape) -> nn.Module; optional attributes `label` and `default_layers`.

torchvision and plugin models take the dataset's images at their stored size; an InputAdapter (a forward
pre-hook on the model) repeats a grey channel to the model's 3 and resizes each batch on the device to what
the model needs (input_side: at least 32 pixels, 63 for AlexNet, 75 for Inception-v3, exactly 224 for MaxViT,
the patch grid for ViT), so a dataset is never stored at 224x224. The hook goes with the model into
Torch-Pruning's trace, the FLOP counter and exports.
"""

from __future__ import annotations

import math
import socket
from collections import OrderedDict
from importlib.metadata import entry_points
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.spec import MODELS, register_model_layers

CONV_INPUT_SIZE = 32
TORCHVISION = "torchvision:"
PLUGIN = "plugin:"
ENTRY_POINT_GROUP = "prunelab.models"
DOWNLOAD_TIMEOUT_S = 15

# Smallest square input of torchvision models that need more than MIN_SIDE (their pooling stack would reach
# zero size); FIXED_SIDE models take exactly one size. tests/engine/test_zoo.py runs every model at its side.
MIN_SIDE = 32
MIN_INPUT = {"alexnet": 63, "inception_v3": 75}
FIXED_SIDE = {"maxvit_t": 224}

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


class ModelUnavailable(ValueError):
    """A torchvision or plugin model that is not installed here, or pretrained weights not on disk."""


# ---------------------------------------------------------------- input adaptation


class InputAdapter:
    """Forward pre-hook: a grey image becomes 3 equal channels, and a batch whose size is not what the model
    needs is resized bilinearly (on the batch's device): to exactly min_side x min_side when `fixed`, else
    only a side below `min_side` is enlarged."""

    def __init__(self, channels: int, min_side: int, fixed: bool):
        self.channels, self.min_side, self.fixed = channels, min_side, fixed

    def target(self, height: int, width: int) -> tuple[int, int]:
        if self.fixed:
            return (self.min_side, self.min_side)
        return (max(height, self.min_side), max(width, self.min_side))

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x[:, : self.channels]
        size = self.target(x.shape[-2], x.shape[-1])
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return (x, *args[1:])


def input_adapter(model: nn.Module) -> InputAdapter | None:
    return next((h for h in model._forward_pre_hooks.values() if isinstance(h, InputAdapter)), None)


# ---------------------------------------------------------------- torchvision


def torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)


def _vit_patch(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def input_side(name: str, data_side: int = MIN_SIDE, pretrained: bool = False) -> tuple[int, bool]:
    """(side, fixed) of the square input a torchvision model is fed: `fixed` means exactly that size."""
    if name.startswith("vit_"):
        if pretrained:
            return weights_of(name).meta["min_size"][0], True
        patch = _vit_patch(name)
        return math.ceil(max(data_side, MIN_SIDE) / patch) * patch, True
    if name in FIXED_SIDE:
        return FIXED_SIDE[name], True
    return MIN_INPUT.get(name, MIN_SIDE), False


def weights_of(name: str):
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def weights_file(name: str) -> Path:
    """Where torch.hub keeps the file of torchvision's default weights for `name` (TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_of(name).url).name


def _load_weights(name: str) -> dict:
    path = weights_file(name)
    if not path.is_file():
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            return weights_of(name).get_state_dict(progress=False)
        except Exception as exc:  # no network, a proxy, a full disk
            reason = " ".join(str(exc).split())[:200]
            raise ModelUnavailable(
                f"pretrained: torchvision weights for {name} are not in {path.parent} and the download failed "
                f"({reason}): expected the file {path} (put it there, or set TORCH_HOME)"
            ) from None
        finally:
            socket.setdefaulttimeout(previous)
    return torch.load(path, map_location="cpu", weights_only=True)


def replace_classifier(model: nn.Module, num_classes: int) -> str:
    """Give the model's output layer (its last Linear, else its last Conv2d) `num_classes` outputs."""
    name = output_layer(model)
    old = model.get_submodule(name)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(
            old.in_channels, num_classes, old.kernel_size, old.stride, old.padding, bias=old.bias is not None
        )
    model.set_submodule(name, new)
    return name


def output_layer(model: nn.Module) -> str:
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return (linears or [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)])[-1]


def _torchvision(name: str, in_shape: tuple[int, int, int], num_classes: int, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    if name not in torchvision_names():
        raise ModelUnavailable(
            f"model: torchvision has no classification model {name!r} (torchvision.models.list_models); "
            f"e.g. {', '.join(torchvision_names()[:8])}, ..."
        )
    side, fixed = input_side(name, max(in_shape[1:]), pretrained)
    kwargs: dict = {}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = False  # torchvision's truncated-normal init goes through scipy and takes minutes
    if name.startswith("vit_"):
        kwargs["image_size"] = side
    if pretrained:
        state = _load_weights(name)
        if name in ("googlenet", "inception_v3"):
            kwargs["aux_logits"] = True  # the weights have the auxiliary heads; dropped after loading
        model = tvm.get_model(name, weights=None, **kwargs)
        model.load_state_dict(state)
        replace_classifier(model, num_classes)
    else:
        if name in ("googlenet", "inception_v3"):
            kwargs["aux_logits"] = False
        model = tvm.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if name == "googlenet":
        model.aux_logits, model.aux1, model.aux2 = False, None, None
    if name == "inception_v3":
        model.aux_logits, model.AuxLogits = False, None
    model.register_forward_pre_hook(InputAdapter(3, side, fixed))
    return model


# ---------------------------------------------------------------- plugins


def plugin_entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _plugin(name: str, in_shape: tuple[int, int, int], num_classes: int) -> tuple[nn.Module, list[str] | None]:
    """(model, the entry point's default_layers or None)."""
    points = plugin_entry_points()
    if name not in points:
        installed = ", ".join(PLUGIN + n for n in points) or "none"
        raise ModelUnavailable(
            f"model: no installed package provides {PLUGIN}{name} (entry-point group {ENTRY_POINT_GROUP}); "
            f"installed: {installed}"
        )
    factory = points[name].load()
    model = factory(num_classes, tuple(in_shape))
    if not isinstance(model, nn.Module):
        raise ModelUnavailable(f"model: {PLUGIN}{name} returned {type(model).__name__}, not a torch.nn.Module")
    return model, getattr(factory, "default_layers", None)


# ---------------------------------------------------------------- the entry points


def model_input_shape(name: str, dataset_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The image shape a model is fed for a dataset of `dataset_shape` (C, H, W)."""
    channels, height, width = dataset_shape
    if name in ("vgg", "vgg16_bn", "resnet18", "resnet18_head"):
        return (channels, CONV_INPUT_SIZE, CONV_INPUT_SIZE)
    return (channels, height, width)


def data_image_size(name: str) -> int | None:
    """The side the data layer pads or resizes a dataset to for this model: 32 for the built-in conv models,
    None (stored as it is) for the rest (torchvision models adapt each batch themselves)."""
    return CONV_INPUT_SIZE if name in ("vgg", "vgg16_bn", "resnet18", "resnet18_head") else None


def default_layers(model: nn.Module) -> list[str]:
    """Every Conv2d and Linear except attention's output projections (nn.MultiheadAttention reads their
    weight itself; channel pruning of the embedding they share needs them named explicitly)."""
    attention = {f"{n}.out_proj" for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)}
    return [n for n in prunable_layers(model) if n not in attention]


def build_model(name: str, in_shape: tuple[int, int, int], num_classes: int, pretrained: bool = False) -> nn.Module:
    """Build a model by name. `in_shape` = (C, H, W) of the images it will be fed."""
    channels, height, width = in_shape
    if name.startswith((TORCHVISION, PLUGIN)):
        kind, short = name.split(":", 1)
        defaults = None
        if kind == "torchvision":
            model = _torchvision(short, in_shape, num_classes, pretrained)
        else:
            model, defaults = _plugin(short, in_shape, num_classes)
        register_model_layers(name, prunable_layers(model), list(defaults or default_layers(model)))
        return model
    if pretrained:
        raise ModelUnavailable(f"pretrained: only torchvision models have pretrained weights, not {name}")
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r}; allowed: {', '.join(MODELS)}, torchvision:NAME, plugin:NAME")
    if name == "lenet300_100":
        return LeNet300100(channels * height * width, num_classes)
    if name in VGG_CFG:
        return VGG(VGG_CFG[name], channels, num_classes)
    return _resnet18(channels, num_classes, head=(name == "resnet18_head"))


def prunable_layers(model: nn.Module) -> list[str]:
    """Names of the model's Conv2d and Linear modules, in definition order."""
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

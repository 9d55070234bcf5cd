"""An example PruneLab model plugin.

A plugin is any installed package with an entry point in the group `prunelab.models` naming a callable
(num_classes, in_shape) -> torch.nn.Module, where in_shape is the (channels, height, width) of the dataset's
images. Optional attributes of the callable: `label` (shown in the catalog) and `default_layers` (the layers a
method prunes when the spec names none; default: every Conv2d and Linear).
"""

from torch import nn


def tiny_cnn(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """Three 3x3 conv + BN + ReLU layers (the last with stride 2), a global average pool and a linear classifier."""
    channels = in_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )


tiny_cnn.label = "Tiny CNN, 3 conv + BN (example plugin)"
tiny_cnn.default_layers = ["0", "3", "6", "11"]

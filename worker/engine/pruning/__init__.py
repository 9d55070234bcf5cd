"""Pruning methods behind one interface (see base.Pruner); make_pruner picks one from a JobSpec.

- block: r x c blocks of the 2-D weight view, masks held through training (block.py)
- magnitude: fine-grained |w|, per layer or global (magnitude.py)
- channel: filters physically removed with Torch-Pruning (channel.py)
- group_lasso: regularised training, then filter removal (group_lasso.py)
"""

from __future__ import annotations

import torch
from torch import nn

from core.spec import DATASETS, JobSpec
from worker.engine.pruning.base import MaskPruner, Pruner, find_layers, lowest_mask, select_keep, view_2d
from worker.engine.pruning.block import BlockPruner, block_mask, block_scores, expand_blocks
from worker.engine.pruning.channel import ChannelPruner, final_classifier
from worker.engine.pruning.group_lasso import GroupLassoPruner
from worker.engine.pruning.magnitude import MagnitudePruner

__all__ = [
    "Pruner",
    "MaskPruner",
    "BlockPruner",
    "MagnitudePruner",
    "ChannelPruner",
    "GroupLassoPruner",
    "make_pruner",
    "find_layers",
    "lowest_mask",
    "select_keep",
    "view_2d",
    "block_mask",
    "block_scores",
    "expand_blocks",
    "final_classifier",
    "measure_model",
]


def measure_model(*args, **kwargs) -> dict:
    """worker.engine.metrics.measure_model (imported lazily: metrics imports this package)."""
    from worker.engine.metrics import measure_model as measure

    return measure(*args, **kwargs)


def spec_input_shape(spec: JobSpec) -> tuple[int, int, int]:
    from worker.engine.models import model_input_shape

    return model_input_shape(spec.model, tuple(DATASETS[spec.dataset]["shape"]))


def make_pruner(spec: JobSpec, model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Pruner:
    """The pruner for spec.method over spec.pruned_layers(). Channel methods trace the model with one
    example input of `input_shape` (C, H, W; default: the model's input for the spec's dataset)."""
    method = spec.method
    layers = spec.pruned_layers()
    find_layers(model, layers)  # unknown names fail here, before any work
    if method.kind == "block":
        return BlockPruner(layers, method.block_shape, method.score, method.scope)
    if method.kind == "magnitude":
        return MagnitudePruner(layers, method.scope)
    example = torch.zeros(1, *(input_shape or spec_input_shape(spec)))
    if method.kind == "channel":
        return ChannelPruner(model, layers, example, method.importance)
    if method.kind == "group_lasso":
        return GroupLassoPruner(model, layers, example, method.strength, method.epochs, method.threshold)
    raise ValueError(f"method.kind: unknown method {method.kind!r}; allowed: block, magnitude, channel, group_lasso")

"""Group-lasso structured sparsity (Wen et al. 2016, SSL), then physical filter removal.

prune() first trains `epochs` epochs through the runner's train_fn with penalty() active:
strength * sum over the selected layers' filters of ||W_f||_2 (the final classifier's rows excluded,
its outputs are never removed). The penalty drives whole filters towards zero. Then, per dependency
group, a channel's score is max over the group's output layers of ||W_f|| / (largest filter norm in
that layer); channels scoring below `threshold` are removed (physically, like channel pruning).
If a sparsity target is given and the threshold alone does not reach it, the lowest-scoring remaining
channels are removed up to it (the same uniform-ratio plan as channel pruning, with the threshold's
removals as a floor). A target already exceeded by the threshold is left exceeded.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from worker.engine.pruning.base import PRUNABLE, find_layers
from worker.engine.pruning.channel import ChannelPruner

OUT_CHANNELS = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)


def filter_norms(weight: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), ord=2, dim=1)


class GroupLassoPruner(ChannelPruner):
    method = "group_lasso"

    def __init__(
        self,
        model: nn.Module,
        layer_names: list[str],
        example_input: torch.Tensor,
        strength: float = 1e-4,
        epochs: int = 5,
        threshold: float = 1e-3,
    ):
        super().__init__(model, layer_names, example_input, importance="l2")
        self.strength = float(strength)
        self.epochs = int(epochs)
        self.threshold = float(threshold)
        self.regularising = False

    @property
    def train_epochs(self) -> int:
        return self.epochs

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        if not self.regularising:
            return None
        layers = find_layers(model, [n for n in self.layer_names if n != self.classifier])
        total = sum(filter_norms(m.weight).sum() for m in layers.values())
        return self.strength * total if layers else None

    def channel_scores(self, group) -> torch.Tensor:
        """Per channel: the largest relative filter norm over the group's output layers."""
        score = None
        for dep, idxs in group:
            target = dep.layer
            if isinstance(target, PRUNABLE) and dep.pruning_fn in OUT_CHANNELS:
                norms = filter_norms(target.weight.detach())[list(idxs)]
                relative = norms / norms.max().clamp_min(1e-12)
                score = relative if score is None else torch.maximum(score, relative)
        return score

    def prune(
        self, model: nn.Module, sparsity: float, layer_sparsity: dict[str, float] | None = None, train_fn=None
    ) -> nn.Module:
        layer_sparsity = layer_sparsity or {}
        targets = self.targets_for(sparsity, layer_sparsity)
        if self.epochs > 0:
            if train_fn is None:
                raise ValueError("group_lasso needs train_fn for its regularised epochs")
            self.regularising = True
            try:
                train_fn(model, self.epochs, self)
            finally:
                self.regularising = False
        groups = self._groups(self._tp(model), model)
        floor = {
            g.root: min(int((self.channel_scores(g.group) < self.threshold).sum()), g.channels - 1) for g in groups
        }
        self._plan(model, groups, targets, layer_sparsity, floor=floor)
        self._remove(model, groups)
        self.targets = targets
        return model

    def state_dict(self) -> dict:
        return {**super().state_dict(), "strength": self.strength, "epochs": self.epochs, "threshold": self.threshold}

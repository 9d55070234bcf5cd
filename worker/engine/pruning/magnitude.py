"""Fine-grained magnitude pruning: zero the weights of smallest |w|.

scope layer: each layer to its own target (kthvalue threshold, the per-layer map overriding the uniform
target). scope global: one threshold over all selected layers' raw |w| (seed 003's global L1 pruning),
so layers end at different sparsities. Already-zeroed weights stay pruned and count toward a target.
"""

from __future__ import annotations

import torch
from torch import nn

from worker.engine.pruning.base import MaskPruner, find_layers, lowest_mask


class MagnitudePruner(MaskPruner):
    method = "magnitude"

    def __init__(self, layer_names: list[str], scope: str = "layer"):
        super().__init__(layer_names)
        if scope not in ("layer", "global"):
            raise ValueError(f"method.scope: unknown scope {scope!r}; allowed: layer, global")
        self.scope = scope

    def prune(
        self, model: nn.Module, sparsity: float, layer_sparsity: dict[str, float] | None = None, train_fn=None
    ) -> nn.Module:
        targets = self.targets_for(sparsity, layer_sparsity)
        layers = find_layers(model, self.layer_names)
        joint = [n for n in self.layer_names if self.scope == "global" and n not in (layer_sparsity or {})]
        masks: dict[str, torch.Tensor] = {}
        for name, module in layers.items():
            if name in joint:
                continue
            weight = module.weight.detach()
            pruned = lowest_mask(weight.abs(), self.alive(name, weight), round(targets[name] * weight.numel()))
            masks[name] = ~pruned.view(weight.shape)
        if joint:
            weights = [layers[n].weight.detach() for n in joint]
            device = weights[0].device
            scores = torch.cat([w.abs().reshape(-1).to(device) for w in weights])
            alive = torch.cat([self.alive(n, w).reshape(-1).to(device) for n, w in zip(joint, weights)])
            pruned = lowest_mask(scores, alive, round(sparsity * scores.numel()))
            offset = 0
            for name, weight in zip(joint, weights):
                masks[name] = ~pruned[offset : offset + weight.numel()].view(weight.shape).to(weight.device)
                offset += weight.numel()
        self.targets = targets
        self.set_masks(model, masks)
        return model

    def state_dict(self) -> dict:
        return {**super().state_dict(), "scope": self.scope}

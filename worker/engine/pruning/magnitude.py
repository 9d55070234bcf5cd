"""Fine-grained magnitude pruning: zero the weights of smallest |w|.

scope layer: each layer to its own target (the per-layer map overriding the uniform target). scope
global: one threshold over all selected layers' raw |w| (global L1 magnitude pruning, as in the one-shot
vs iterative global magnitude pruning study), so layers end at different sparsities. Already-zeroed
weights stay pruned and count toward a target. Selection: base.select_keep.
"""

from __future__ import annotations

import torch

from worker.engine.pruning.base import MaskPruner


class MagnitudePruner(MaskPruner):
    method = "magnitude"

    def unit_scores(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.abs()

    def unit_alive(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        return self.alive(name, weight)

    def expand(self, keep: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return keep

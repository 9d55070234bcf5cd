"""Channel (filter) pruning that physically removes channels with Torch-Pruning (tp.pruner.BasePruner).

Channels are removed per dependency group: a group couples every layer whose output channels must stay
aligned (a conv and its BN, all convs feeding one residual sum) with the layers that consume them
(their input channels). A group is pruned only if all its output layers are selected layers; the final
classifier's outputs are never pruned (both: Torch-Pruning's ignored_layers).

Sparsity target = fraction of the selected layers' ORIGINAL weights removed (removing half the channels
of a middle conv removes ~75 % of its weights, since its input channels shrink too). The number of
channels to remove per group comes from a uniform channel ratio found by bisection on a cheap
simulation of the resulting layer sizes (layers named in the per-layer map get their own ratio).
Iterative rounds remove more from the already smaller model; the target stays relative to the
original weights.

The number of channels each group loses is planned here, Torch-Pruning ranks them (tp.importance) and
removes them (BasePruner.step with a per-root pruning_ratio_dict). Its round_to is not used: it is one
multiple for every group and rounds down, while the plan aligns by a group's width (channel_alignment)
and must know the rounded counts to reach a weight-sparsity target, so it hands over exact counts.
Torch-Pruning's pruning history rebuilds the smaller structure on a fresh model (restructure, on resume).

The pruner remembers which original output/input channels of each selected layer survive, so reports
show the layer in its original 2-D view with removed rows (filters) and columns (input channels).

Structures (torchvision's zoo): grouped and depthwise convolutions, squeeze-excite blocks, concatenations
(DenseNet, Inception) and residual sums are followed by Torch-Pruning's dependency graph. A group that
contains an nn.MultiheadAttention (ViT's embedding width) keeps a multiple of its heads, and ViT's
hidden_dim follows the pruned embedding. Models whose channel dependencies the graph cannot follow
(ShuffleNet-V2's channel shuffle, Swin's shifted windows, MaxViT's partitions) are refused with one
line naming the layer.
"""

from __future__ import annotations

import copy
import math

import torch
import torch_pruning as tp
from torch import nn

from worker.engine.pruning.base import PRUNABLE, Pruner, find_layers, layer_kind

IMPORTANCES = ("l1", "l2", "bn_scale")

# Layer types whose channels Torch-Pruning's dependency graph cannot follow, and why.
UNSUPPORTED = {
    "ShiftedWindowAttention": "Swin's shifted-window attention (its window partition reshapes are not traced)",
    "ShiftedWindowAttentionV2": "Swin-V2's shifted-window attention (its window partition reshapes are not traced)",
    "InvertedResidual@shufflenetv2": "ShuffleNet-V2's channel shuffle (a reshape-transpose that interleaves groups)",
    # Torch-Pruning's graph walk did not finish within 25 minutes on MaxViT-T (CPU): refused rather than hung.
    "PartitionAttentionLayer": "MaxViT's block and grid partition attention (its partition reshapes are not traced)",
}


class ChannelPruningRefused(ValueError):
    """The model (or the chosen layers) cannot lose channels: one line naming the layer and what can."""


def refuse_unsupported(model: nn.Module) -> None:
    """Raise ChannelPruningRefused for a model with a layer type the dependency graph cannot follow."""
    for name, module in model.named_modules():
        kind = type(module).__name__
        key = kind if kind in UNSUPPORTED else f"{kind}@{type(module).__module__.rsplit('.', 1)[-1]}"
        if key in UNSUPPORTED:
            raise ChannelPruningRefused(
                f"method.kind: channel pruning cannot remove channels of layer {name} ({kind}): {UNSUPPORTED[key]}; "
                "block and magnitude pruning work on every Conv2d and Linear layer of this model"
            )


def sync_attributes(model: nn.Module) -> None:
    """Attributes that torchvision's forward reads and Torch-Pruning does not update."""
    from torchvision.models.vision_transformer import VisionTransformer

    for module in model.modules():
        if isinstance(module, VisionTransformer):
            module.hidden_dim = module.conv_proj.out_channels


def channel_alignment(channels: int) -> int:
    """Conv groups keep a multiple of this many channels: conv kernels run measurably slower per FLOP on
    odd counts. Measured here (CPU time, 1 thread, batch 32, 50 % weight sparsity): speedup / FLOP
    reduction was 0.80 (VGG-16-BN) and 0.74 (ResNet-18) with no alignment, 0.79 / 0.87 with multiples
    of 8 and 0.90 / 0.98 with multiples of 16."""
    if channels >= 128:
        return 16
    return 8 if channels >= 32 else 1


def final_classifier(model: nn.Module) -> str:
    """Name of the layer whose outputs are the model's outputs: the last Linear (else the last conv)."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return (linears or convs)[-1]


def _out_channels(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def _in_channels(module: nn.Module) -> int:
    return module.in_channels if isinstance(module, nn.Conv2d) else module.in_features


class _GroupInfo:
    """A prunable dependency group: its root layer, channel count and the selected layers it shrinks."""

    def __init__(
        self, root: str, channels: int, outs: list[str], ins: list[tuple[str, float]], conv: bool, group, heads: int = 0
    ):
        self.root = root
        self.group = group  # the Torch-Pruning group with every channel (for scores)
        self.conv = conv
        self.channels = channels
        self.heads = heads  # attention heads sharing these channels: what remains must be a multiple of it
        base = channel_alignment(channels) if conv else 1
        self.align = math.lcm(base, heads) if heads else base
        self.outs = outs  # selected layers whose output channels are the group's channels
        self.ins = ins  # (selected layer, input features per group channel)
        self.remove = 0  # channels to remove this round


class ChannelPruner(Pruner):
    method = "channel"

    def __init__(self, model: nn.Module, layer_names: list[str], example_input: torch.Tensor, importance: str = "l1"):
        super().__init__(layer_names)
        refuse_unsupported(model)
        if importance not in IMPORTANCES:
            raise ValueError(f"method.importance: unknown importance {importance!r}; allowed: {', '.join(IMPORTANCES)}")
        layers = find_layers(model, layer_names)
        self.importance = importance
        self.example_input = example_input.detach().cpu()
        self.classifier = final_classifier(model)
        self.original_shapes = {n: list(m.weight.shape) for n, m in layers.items()}
        self.original_groups = {n: getattr(m, "groups", 1) for n, m in layers.items()}
        self.keep_out = {n: torch.arange(_out_channels(m)) for n, m in layers.items()}
        self.keep_in = {n: torch.arange(_in_channels(m)) for n, m in layers.items()}
        self._reference = copy.deepcopy(model).cpu().eval()
        self.history: list[list] = []  # Torch-Pruning's pruning history: [root name, out?, indices] per removal

    # --- structure -------------------------------------------------------------------------------
    def _tp(self, model: nn.Module, remove: dict[nn.Module, int] | None = None) -> tp.pruner.BasePruner:
        """A Torch-Pruning pruner over the selected layers that removes `remove[root]` channels of each
        group root's group when stepped (no ratio: nothing)."""
        device = next(model.parameters()).device
        selected = set(self.layer_names) - {self.classifier}
        ignored = [m for n, m in model.named_modules() if isinstance(m, PRUNABLE) and n not in selected]
        # (count - 0.5) / channels: Torch-Pruning keeps int(channels * (1 - ratio)), exactly channels - count
        ratios = {m: (count - 0.5) / _out_channels(m) for m, count in (remove or {}).items() if count > 0}
        was_training = model.training
        model.eval()  # tracing runs a forward pass: keep BN running statistics untouched
        try:
            with torch.enable_grad():
                return tp.pruner.BasePruner(
                    model,
                    self.example_input.to(device),
                    importance=self.channel_scores,
                    pruning_ratio=0.0,
                    pruning_ratio_dict=ratios,
                    ignored_layers=ignored,
                    root_module_types=[nn.Conv2d, nn.Linear],
                )
        finally:
            model.train(was_training)

    def _groups(self, pruner: tp.pruner.BasePruner, model: nn.Module) -> list[_GroupInfo]:
        """The prunable groups (full channel index lists) with the selected layers each one shrinks."""
        names = {m: n for n, m in model.named_modules()}
        graph = pruner.DG
        groups = []
        for group in graph.get_all_groups(
            ignored_layers=pruner.ignored_layers, root_module_types=[nn.Conv2d, nn.Linear]
        ):
            root = group[0].dep.target.module
            channels = _out_channels(root)
            outs, ins = [], []
            heads = 0
            for dep, idxs in group:
                if isinstance(dep.target.module, nn.MultiheadAttention):
                    heads = math.lcm(heads or 1, dep.target.module.num_heads)
                name = names.get(dep.target.module)
                if name not in self.keep_out:
                    continue
                if graph.is_out_channel_pruning_fn(dep.handler):
                    outs.append(name)
                elif graph.is_in_channel_pruning_fn(dep.handler):
                    ins.append((name, len(idxs) / channels))
            if channels > 1:
                conv = isinstance(root, nn.Conv2d)
                groups.append(_GroupInfo(names[root], channels, outs, ins, conv, group, heads))
        return groups

    def _layer_numels(self, model: nn.Module) -> dict[str, int]:
        return {n: m.weight.numel() for n, m in find_layers(model, self.layer_names).items()}

    def _simulate(self, model_numels: dict[str, int], model: nn.Module, groups: list[_GroupInfo]) -> dict[str, int]:
        """Weights each selected layer would keep if every group removed `group.remove` channels."""
        layers = find_layers(model, self.layer_names)
        out_kept = {n: 1.0 for n in layers}
        in_kept = {n: 1.0 for n in layers}
        for g in groups:
            for name in g.outs:
                out_kept[name] -= g.remove / g.channels
            for name, per_channel in g.ins:
                in_kept[name] -= g.remove * per_channel / _in_channels(layers[name])
        return {n: model_numels[n] * out_kept[n] * in_kept[n] for n in layers}

    def _plan(
        self,
        model: nn.Module,
        groups: list[_GroupInfo],
        targets: dict[str, float],
        layer_sparsity: dict[str, float],
        floor: dict[str, int] | None = None,
    ) -> None:
        """Set group.remove so the selected layers reach their targets (original-weight fractions).
        `floor` gives channels a group must remove whatever the target (group lasso's threshold)."""
        floor = floor or {}
        numels = self._layer_numels(model)
        original = {n: _numel(s) for n, s in self.original_shapes.items()}
        own = {g.root: next((n for n in g.outs if n in layer_sparsity), None) for g in groups}
        shared = [g for g in groups if own[g.root] is None]
        shared_layers = [n for n in self.layer_names if n not in layer_sparsity]
        shared_target = targets[shared_layers[0]] if shared_layers else 0.0

        def valid(g: _GroupInfo, remove: int) -> bool:
            return floor.get(g.root, 0) <= remove <= g.channels - 1 and (
                not g.heads or (g.channels - remove) % g.heads == 0
            )

        def set_ratio(members: list[_GroupInfo], ratio: float) -> None:
            for g in members:
                remove = round(g.channels * ratio)
                if remove and g.align > 1:
                    kept = max(g.align, round((g.channels - remove) / g.align) * g.align)
                    remove = max(0, g.channels - kept)
                remove = max(floor.get(g.root, 0), min(g.channels - 1, remove))
                if g.heads:  # a threshold's floor may break the multiple of heads: keep fewer channels
                    remove = g.channels - max(g.heads, (g.channels - remove) // g.heads * g.heads)
                g.remove = remove

        def sparsity_of(layer_names: list[str]) -> float:
            kept = self._simulate(numels, model, groups)
            total = sum(original[n] for n in layer_names)
            return 1.0 - sum(kept[n] for n in layer_names) / total if total else 0.0

        def bisect(members: list[_GroupInfo], layer_names: list[str], target: float) -> None:
            low, high = 0.0, 1.0
            set_ratio(members, low)
            if sparsity_of(layer_names) >= target:
                return
            for _ in range(40):
                mid = (low + high) / 2
                set_ratio(members, mid)
                if sparsity_of(layer_names) >= target:
                    high = mid
                else:
                    low = mid
            set_ratio(members, high)
            refine(members, layer_names, target)

        def refine(members: list[_GroupInfo], layer_names: list[str], target: float) -> None:
            # Aligned channel counts make the uniform ratio coarse: move single groups by one alignment
            # step while that brings the layers closer to the target.
            error = abs(sparsity_of(layer_names) - target)
            for _ in range(4 * len(members)):
                best = None
                for g in members:
                    for change in (g.align, -g.align):
                        before = g.remove
                        g.remove = before + change
                        if valid(g, g.remove):
                            candidate = abs(sparsity_of(layer_names) - target)
                            if candidate < error - 1e-12 and (best is None or candidate < best[0]):
                                best = (candidate, g, g.remove)
                        g.remove = before
                if best is None:
                    return
                error, g, g.remove = best

        set_ratio(groups, 0.0)
        for _ in range(3):  # the layer-map groups and the shared ratio influence each other: a few sweeps
            for g in groups:
                if own[g.root] is not None:
                    bisect([g], [own[g.root]], layer_sparsity[own[g.root]])
            if shared:
                bisect(shared, shared_layers, shared_target)

    def channel_scores(self, group) -> torch.Tensor:
        """Score per channel of a group (lower = removed first): Torch-Pruning's importance."""
        if self.importance == "bn_scale":
            score = tp.importance.BNScaleImportance(normalizer=None)(group)
            if score is not None:
                return score
        p = 2 if self.importance == "l2" else 1  # bn_scale without a BN in the group falls back to L1
        return tp.importance.GroupMagnitudeImportance(p=p, normalizer=None)(group)

    def _remove(self, model: nn.Module, groups: list[_GroupInfo]) -> None:
        """Remove the planned channels with Torch-Pruning, tracking which original channels survive."""
        modules = dict(model.named_modules())
        names = {m: n for n, m in modules.items()}
        pruner = self._tp(model, {modules[g.root]: g.remove for g in groups})
        graph = pruner.DG
        for group in pruner.step(interactive=True):
            for dep, idxs in group:
                name = names.get(dep.target.module)
                if name in self.keep_out and graph.is_out_channel_pruning_fn(dep.handler):
                    self.keep_out[name] = _drop(self.keep_out[name], idxs)
                elif name in self.keep_in and graph.is_in_channel_pruning_fn(dep.handler):
                    self.keep_in[name] = _drop(self.keep_in[name], idxs)
            group.prune()
        sync_attributes(model)
        self.history += [list(entry) for entry in pruner.pruning_history()]

    # --- the Pruner interface -------------------------------------------------------------------
    def prune(
        self, model: nn.Module, sparsity: float, layer_sparsity: dict[str, float] | None = None, train_fn=None
    ) -> nn.Module:
        layer_sparsity = layer_sparsity or {}
        targets = self.targets_for(sparsity, layer_sparsity)
        groups = self._groups(self._tp(model), model)
        self._plan(model, groups, targets, layer_sparsity)
        self._remove(model, groups)
        self.targets = targets
        return model

    def dense_reference(self, model: nn.Module) -> nn.Module:
        return self._reference

    def restructure(self, model: nn.Module) -> nn.Module:
        """Remove from a freshly built model the channels this pruner removed (Torch-Pruning's pruning
        history replayed), so a checkpoint of the smaller model loads into it."""
        if self.history:
            self._tp(model).load_pruning_history([list(entry) for entry in self.history])
            sync_attributes(model)
        return model

    def rewind(self, model: nn.Module, state: dict) -> None:
        """The unpruned state_dict cut down to the surviving channels, loaded into the compact model."""
        early = copy.deepcopy(self._reference)
        early.load_state_dict(state)
        early = self.restructure(early.to(next(model.parameters()).device))
        model.load_state_dict(early.state_dict())

    def masks_2d(self, model: nn.Module) -> dict[str, tuple[torch.Tensor, tuple[int, int]]]:
        out = {}
        for name, shape in self.original_shapes.items():
            kernel = _numel(shape[2:]) if len(shape) > 2 else 1
            groups = self.original_groups.get(name, 1)
            rows = torch.zeros(shape[0], dtype=torch.bool)
            rows[self.keep_out[name]] = True
            inputs = torch.zeros(shape[1] * groups, dtype=torch.bool)
            inputs[self.keep_in[name]] = True
            # a grouped (depthwise) conv's row sees only its group's inputs: columns = the group's inputs
            cols = inputs.view(groups, shape[1])[torch.arange(shape[0]) // (shape[0] // groups)]
            keep = (rows[:, None, None] & cols[:, :, None]).expand(shape[0], shape[1], kernel)
            out[name] = (keep.reshape(shape[0], shape[1] * kernel), (1, kernel))
        return out

    def layer_stats(self, model: nn.Module) -> list[dict]:
        stats = []
        for name, module in find_layers(model, self.layer_names).items():
            stats.append(
                {
                    "name": name,
                    "kind": layer_kind(module),
                    "shape": self.original_shapes[name],
                    "params": _numel(self.original_shapes[name]),
                    "nonzero": module.weight.numel(),
                    "current_shape": list(module.weight.shape),
                }
            )
        return stats

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "keep_out": {n: t.clone() for n, t in self.keep_out.items()},
            "keep_in": {n: t.clone() for n, t in self.keep_in.items()},
            "history": [list(entry) for entry in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.keep_out = {n: t.clone() for n, t in state["keep_out"].items()}
        self.keep_in = {n: t.clone() for n, t in state["keep_in"].items()}
        if "history" not in state:
            raise ValueError("pruner state: no pruning history (saved by an older version); run the job again")
        self.history = [list(entry) for entry in state["history"]]


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _drop(kept: torch.Tensor, positions) -> torch.Tensor:
    """Remove the entries at `positions` (indices into the current, already shrunk, dimension)."""
    keep = torch.ones(len(kept), dtype=torch.bool)
    keep[torch.as_tensor(list(positions), dtype=torch.long)] = False
    return kept[keep]

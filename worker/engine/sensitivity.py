"""Per-layer sensitivity analysis: prune ONE layer of a trained baseline at a time to each sparsity (every
other layer at its baseline weights), without fine-tuning, and measure accuracy and loss on the validation
and test splits, the weights and FLOPs removed and optionally the latency (the scan NNI's
SensitivityAnalysis runs, and the one behind the hand-picked per-layer sparsities of the VGG pruning study).

Exact speed-up for mask pruning (magnitude, block): the activation cache
    Pruning layer L by a mask changes only L's weight, so every value of the forward graph that does not
    depend on L is the same for every sparsity of L. The model is traced with torch.fx; for L the
    "changed" nodes are those that call L (or read its parameters) and everything downstream of them, and
    the "frontier" is every unchanged value a changed node uses (the input of L, residual identity
    branches, the placeholder when it is used later). One baseline pass per batch walks the graph in
    topological order; as soon as L's frontier is complete, the changed part alone runs once per sparsity
    of L from those cached values, then the walk goes on. So the unchanged part of the network runs ONCE
    per batch for all layers and sparsities together, instead of once per point. Values are freed as soon
    as no later node or layer needs them, so memory stays that of one forward pass plus the pruned weight
    copies, which are held for as many layers at once as `max_cache_bytes` allows (one baseline pass per
    such group of layers). The ops and batches are the plain model's, so the numbers equal plain
    re-evaluation (the tests check 1e-6; in practice they are bit-identical).
    In-place ops: a value an in-place op mutates is copied before it when it is still needed later. A
    graph where an in-place op mutates an aliased value (the input, a view, a value with other users) is
    not cached. Tracing failures, layers the graph does not call, and cache=False use plain re-evaluation.

Channel pruning restructures L's neighbours (the next layer's input channels, L's BatchNorm): each point
is pruned on a copy of the baseline and evaluated plainly (no cache). params_removed and flops_removed
are then the real reduction of the compact model, neighbours included.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.node import map_arg

from worker.engine.data import Split, Splits
from worker.engine.metrics import count_params, flop_counts, measure_latency
from worker.engine.pruning import MaskPruner, Pruner, find_layers, make_pruner
from worker.engine.training import EVAL_BATCH, evaluate

MAX_CACHE_BYTES = 1 << 30
SCANNABLE = ("magnitude", "block", "channel")

PrunerFactory = Callable[[nn.Module, str], Pruner]


# ---------------------------------------------------------------- pruners and evaluation sets


def pruner_factory(spec: Any, input_shape: tuple[int, ...] | None = None) -> PrunerFactory:
    """(model, layer) -> a pruner of that one layer, built by make_pruner from a JobSpec whose method is
    magnitude, block or channel (scope layer, no per-layer map)."""
    kind = spec.method.kind
    if kind not in SCANNABLE:
        raise ValueError(f"method.kind: the sensitivity scan prunes without training; allowed: {', '.join(SCANNABLE)}")

    def build(model: nn.Module, layer: str) -> Pruner:
        update: dict[str, Any] = {"layers": [layer]}
        if hasattr(spec.method, "scope"):
            update["scope"] = "layer"
        if hasattr(spec.method, "layer_sparsity"):
            update["layer_sparsity"] = None
        one_layer = spec.model_copy(update={"method": spec.method.model_copy(update=update)})
        return make_pruner(one_layer, model, input_shape)

    return build


def _sets(eval_sets: Splits | Mapping[str, Split], max_images: int | None) -> dict[str, Split]:
    if isinstance(eval_sets, Splits):
        sets = {"val": eval_sets.val, "test": eval_sets.test}
    else:
        missing = [k for k in ("val", "test") if k not in eval_sets]
        if missing:
            raise ValueError(f"eval_sets: needs the splits 'val' and 'test'; missing: {', '.join(missing)}")
        sets = {"val": eval_sets["val"], "test": eval_sets["test"]}
    if max_images is not None:
        if max_images < 1:
            raise ValueError(f"max_eval_images: must be at least 1, got {max_images}")
        sets = {k: Split(s.x[:max_images], s.y[:max_images]) for k, s in sets.items()}
    return sets


def evaluate_sets(
    model: nn.Module,
    eval_sets: Splits | Mapping[str, Split],
    max_eval_images: int | None = None,
    batch_size: int = EVAL_BATCH,
) -> dict[str, float]:
    """{accuracy, loss (test split), val_accuracy, val_loss} of a model: the baseline row of a scan."""
    sets = _sets(eval_sets, max_eval_images)
    accuracy, loss = evaluate(model, sets["test"], batch_size)
    val_accuracy, val_loss = evaluate(model, sets["val"], batch_size)
    return {"accuracy": accuracy, "loss": loss, "val_accuracy": val_accuracy, "val_loss": val_loss}


def realised_latency(input_shape: tuple[int, ...], batch_size: int = 64, device: Any = "cpu") -> Callable:
    """A latency_fn for scan(): metrics.measure_latency of the whole model with the one layer pruned
    (dense vs realised: BSR/CSR for masked layers, the compact model after channel removal)."""

    def measure(model: nn.Module, pruner: Pruner) -> dict:
        return measure_latency(model, pruner, tuple(input_shape), batch_size, device)

    return measure


# ---------------------------------------------------------------- the scan


def scan(
    model: nn.Module,
    layers: list[str],
    sparsities: list[float],
    pruner: Any,
    eval_sets: Splits | Mapping[str, Split],
    *,
    max_eval_images: int | None = None,
    batch_size: int = EVAL_BATCH,
    cache: bool = True,
    max_cache_bytes: int = MAX_CACHE_BYTES,
    latency_fn: Callable[[nn.Module, Pruner], Any] | None = None,
) -> list[dict]:
    """One row per (layer, sparsity), layers in the order given, each pruned alone from `model` (which
    is not modified):
    {layer, sparsity, accuracy, loss (test split), val_accuracy, val_loss, params_removed, flops_removed
    (per sample), latency (latency_fn(model with the layer pruned, its pruner), or None), layer_params,
    layer_flops, model_flops (the unpruned layer's weights / FLOPs, the model's FLOPs), cached (whether
    the activation cache computed it)}.

    pruner: a JobSpec (magnitude, block or channel; see pruner_factory) or a callable (model, layer) ->
    Pruner. eval_sets: Splits, or a mapping with the splits "val" and "test"; max_eval_images keeps the
    first that many images of each.
    """
    factory = pruner if callable(pruner) and not hasattr(pruner, "method") else None
    sets = _sets(eval_sets, max_eval_images)
    input_shape = tuple(sets["test"].x.shape[1:])
    if factory is None:
        factory = pruner_factory(pruner, input_shape)
    sparsities = [float(s) for s in sparsities]
    bad = [s for s in sparsities if not 0.0 <= s < 1.0]
    if not sparsities or bad:
        raise ValueError(f"sparsities: each must be in [0, 1), got {bad or 'none'}")
    if not layers:
        raise ValueError("layers: name at least one layer to scan")
    if len(set(layers)) != len(layers):
        raise ValueError("layers: each layer may be named once")
    if len(set(sparsities)) != len(sparsities):
        raise ValueError("sparsities: each sparsity may be named once")

    work = copy.deepcopy(model).eval()
    modules = find_layers(work, list(layers))
    device = modules[layers[0]].weight.device
    model_flops, layer_flops = flop_counts(work, input_shape, device)
    rows: dict[tuple[str, float], dict] = {}

    def row(layer: str, s: float, **values) -> None:
        weight = modules[layer].weight
        rows[(layer, s)] = {
            "layer": layer,
            "sparsity": s,
            "layer_params": weight.numel(),
            "layer_flops": int(layer_flops.get(layer, 0)),
            "model_flops": int(model_flops),
            **values,
        }

    def masked_points(layer: str) -> list[tuple[float, torch.Tensor]]:
        """Prune the layer to each sparsity (the row's sizes and latency); the pruned weight copies."""
        module = modules[layer]
        original = module.weight.detach().clone()
        nonzero, points = int(torch.count_nonzero(original)), []
        for s in sparsities:
            point = factory(work, layer)
            point.prune(work, s, None, None)
            removed = nonzero - int(torch.count_nonzero(module.weight))
            flops = int(round(layer_flops.get(layer, 0) * removed / original.numel()))
            latency = latency_fn(work, point) if latency_fn else None
            row(layer, s, params_removed=removed, flops_removed=flops, latency=latency)
            points.append((s, module.weight.detach().clone()))
            with torch.no_grad():
                module.weight.copy_(original)
        return points

    masked = []
    for layer in layers:
        if isinstance(factory(work, layer), MaskPruner):
            masked.append(layer)
            continue
        for s in sparsities:  # channel removal: a pruned copy per point, evaluated plainly
            pruned = copy.deepcopy(work)
            point = factory(pruned, layer)
            pruned = point.prune(pruned, s, None, None).eval()
            row(
                layer,
                s,
                params_removed=count_params(work) - count_params(pruned),
                flops_removed=int(model_flops - flop_counts(pruned, input_shape, device)[0]),
                latency=latency_fn(pruned, point) if latency_fn else None,
                **_plain_metrics(pruned, sets, batch_size),
                cached=False,
            )

    plan = _CachePlan.build(work, masked) if cache and masked else None
    cached_layers = [n for n in masked if plan is not None and n in plan.layers]
    for layer in masked:
        if layer not in cached_layers:
            _plain_masked(work, modules[layer], masked_points(layer), sets, batch_size, rows, layer)
    copy_bytes = {n: len(sparsities) * modules[n].weight.numel() * modules[n].weight.element_size() for n in masked}
    for group in _groups(cached_layers, copy_bytes, max_cache_bytes):
        points = {n: masked_points(n) for n in group}
        for key, values in plan.run(group, points, modules, sets, batch_size).items():
            rows[key].update(values, cached=True)

    order = ("layer", "sparsity", "accuracy", "val_accuracy", "loss", "val_loss", "params_removed")
    out = []
    for layer in layers:
        for s in sparsities:
            row = rows[(layer, s)]
            out.append({**{k: row[k] for k in order}, **{k: v for k, v in row.items() if k not in order}})
    return out


def _plain_metrics(model: nn.Module, sets: dict[str, Split], batch_size: int) -> dict[str, float]:
    accuracy, loss = evaluate(model, sets["test"], batch_size)
    val_accuracy, val_loss = evaluate(model, sets["val"], batch_size)
    return {"accuracy": accuracy, "loss": loss, "val_accuracy": val_accuracy, "val_loss": val_loss}


def _plain_masked(work, module, points, sets, batch_size, rows, layer) -> None:
    """Plain re-evaluation of the whole model for every sparsity of one masked layer."""
    original = module.weight.detach().clone()
    with torch.no_grad():
        for s, weight in points:
            module.weight.copy_(weight)
            rows[(layer, s)].update(_plain_metrics(work, sets, batch_size), cached=False)
        module.weight.copy_(original)


def _groups(layers: list[str], sizes: dict[str, int], max_bytes: int) -> list[list[str]]:
    """Consecutive layers whose pruned weight copies fit in max_bytes together (a layer alone always runs)."""
    groups: list[list[str]] = []
    used = 0
    for layer in layers:
        if not groups or used + sizes[layer] > max_bytes:
            groups.append([])
            used = 0
        groups[-1].append(layer)
        used += sizes[layer]
    return groups


# ---------------------------------------------------------------- the activation cache

_INPLACE_OPS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.iand, operator.ior}
_ALIAS_METHODS = {"view", "reshape", "flatten", "transpose", "permute", "expand", "narrow", "select", "squeeze"}
_ALIAS_METHODS |= {"unsqueeze", "t", "contiguous", "chunk", "split", "unbind", "detach", "to", "float", "view_as"}
_ALIAS_FUNCTIONS = {operator.getitem, torch.flatten, torch.reshape, torch.transpose, torch.squeeze, torch.unsqueeze}
_ALIAS_FUNCTIONS |= {torch.chunk, torch.split, torch.narrow, torch.permute, torch.t, torch.detach}


def _mutates(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether the node may write into its first argument."""
    if node.op == "call_module":
        return bool(getattr(gm.get_submodule(node.target), "inplace", False))
    if node.op == "call_function":
        if node.target in _INPLACE_OPS or node.kwargs.get("inplace"):
            return True
        name = getattr(node.target, "__name__", "")  # torch.relu_, torch.add_ (operator.and_ is not in place)
        return (
            name.endswith("_")
            and not name.startswith("_")
            and getattr(node.target, "__module__", "") not in ("_operator", "operator")
        )
    if node.op == "call_method":
        return node.target.endswith("_") and not node.target.startswith("__")
    return False


def _aliases(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether the node's value may share memory with another value (or is the input or a parameter)."""
    if node.op in ("placeholder", "get_attr"):
        return True
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), (nn.Identity, nn.Flatten, nn.Unflatten))
    if node.op == "call_method":
        return node.target in _ALIAS_METHODS
    if node.op == "call_function":
        return node.target in _ALIAS_FUNCTIONS
    return True


class _CachePlan:
    """The traced graph and, per layer, its changed nodes, frontier and the module running them."""

    def __init__(self, gm: fx.GraphModule, nodes: list[fx.Node]):
        self.gm = gm
        self.nodes = nodes
        self.pos = {n: i for i, n in enumerate(nodes)}
        self.layers: dict[str, dict] = {}

    @classmethod
    def build(cls, model: nn.Module, layers: list[str]) -> _CachePlan | None:
        try:
            gm = fx.symbolic_trace(model)
        except Exception:  # data-dependent control flow and the like: plain re-evaluation
            return None
        nodes = list(gm.graph.nodes)
        mutated_inputs = {}
        for node in nodes:
            if _mutates(gm, node):
                target = node.args[0] if node.args else None
                if not isinstance(target, fx.Node) or len(target.users) > 1 or _aliases(gm, target):
                    return None  # an aliased value is written in place: reordering could observe it
                mutated_inputs[node] = target
        plan = cls(gm, nodes)
        plan.mutated_inputs = mutated_inputs
        for layer in layers:
            entry = plan._layer(layer, model)
            if entry is not None:
                plan.layers[layer] = entry
        return plan if plan.layers else None

    def _layer(self, layer: str, model: nn.Module) -> dict | None:
        gm, nodes = self.gm, self.nodes
        try:
            traced = gm.get_submodule(layer)
        except AttributeError:  # the traced graph never calls the layer
            return None
        if traced is not dict(model.named_modules())[layer]:
            return None  # the traced module must share the layer with the model the pruner changes
        seeds = [
            n
            for n in nodes
            if (n.op == "call_module" and n.target == layer)
            or (n.op == "get_attr" and (n.target == layer or n.target.startswith(layer + ".")))
        ]
        if not any(n.op == "call_module" for n in seeds):
            return None
        changed: set[fx.Node] = set()
        for node in nodes:  # topological order: a node is changed when it is a seed or uses a changed node
            if node in seeds or any(a in changed for a in node.all_input_nodes):
                changed.add(node)
        output = nodes[-1]
        changed.add(output)
        frontier = [n for n in nodes if n not in changed and any(u in changed for u in n.users)]
        graph = fx.Graph()
        remap = {f: graph.placeholder(f"frontier_{i}") for i, f in enumerate(frontier)}
        for node in nodes:
            if node in changed:
                remap[node] = graph.node_copy(node, lambda a: remap[a])
        suffix = fx.GraphModule(gm, graph)
        # frontier values a changed node writes into: each sparsity gets its own copy
        copies = [i for i, f in enumerate(frontier) if any(self.mutated_inputs.get(u) is f for u in f.users)]
        run_at = max(self.pos[f] for f in frontier) if frontier else 0
        return {"frontier": frontier, "suffix": suffix, "copies": copies, "run_at": run_at}

    def run(
        self,
        group: list[str],
        points: dict[str, list[tuple[float, torch.Tensor]]],
        modules: dict[str, nn.Module],
        sets: dict[str, Split],
        batch_size: int,
    ) -> dict[tuple[str, float], dict]:
        """Accuracy and loss of every (layer, sparsity) of the group: one baseline walk per batch."""
        nodes, pos = self.nodes, self.pos
        entries = {n: self.layers[n] for n in group}
        # the baseline values needed: every frontier value and what it is computed from
        needed: set[fx.Node] = set()
        stack = [f for e in entries.values() for f in e["frontier"]]
        while stack:
            node = stack.pop()
            if node not in needed:
                needed.add(node)
                stack.extend(node.all_input_nodes)
        last_use = {n: pos[n] for n in needed}
        for node in needed:
            for user in node.users:
                if user in needed:
                    last_use[node] = max(last_use[node], pos[user])
        runs_at: dict[int, list[str]] = {}
        for name, entry in entries.items():
            runs_at.setdefault(entry["run_at"], []).append(name)
            for f in entry["frontier"]:
                last_use[f] = max(last_use[f], entry["run_at"])
        frees: dict[int, list[fx.Node]] = {}
        for node, at in last_use.items():
            frees.setdefault(at, []).append(node)

        end = max([pos[n] for n in needed] + list(runs_at))
        totals = {(n, s): {k: [0, 0.0] for k in sets} for n in group for s, _ in points[n]}
        with torch.no_grad():
            for split_name, split in sets.items():
                for start in range(0, len(split), batch_size):
                    x = split.x[start : start + batch_size]
                    y = split.y[start : start + batch_size]
                    env: dict[fx.Node, Any] = {}
                    for i, node in enumerate(nodes[: end + 1]):
                        if node in needed:
                            target = self.mutated_inputs.get(node)
                            keep = env[target].clone() if target is not None and last_use[target] > i else None
                            env[node] = self._run_node(node, env, x)
                            if keep is not None:  # the node wrote into a value still needed later
                                env[target] = keep
                        for name in runs_at.get(i, ()):
                            self._suffixes(name, entries[name], points[name], modules[name], env, y, split_name, totals)
                        for done in frees.get(i, ()):
                            env.pop(done, None)
        out = {}
        for (name, s), acc in totals.items():
            n_test, n_val = max(len(sets["test"]), 1), max(len(sets["val"]), 1)
            out[(name, s)] = {
                "accuracy": acc["test"][0] / n_test,
                "loss": acc["test"][1] / n_test,
                "val_accuracy": acc["val"][0] / n_val,
                "val_loss": acc["val"][1] / n_val,
            }
        return out

    def _run_node(self, node: fx.Node, env: dict, x: torch.Tensor) -> Any:
        if node.op == "placeholder":
            return x
        if node.op == "get_attr":
            value = self.gm
            for part in node.target.split("."):
                value = getattr(value, part)
            return value
        args = map_arg(node.args, lambda a: env[a])
        kwargs = map_arg(node.kwargs, lambda a: env[a])
        if node.op == "call_module":
            return self.gm.get_submodule(node.target)(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        raise ValueError(f"unexpected graph node {node.op}")

    @staticmethod
    def _suffixes(name, entry, points, module, env, y, split_name, totals) -> None:
        inputs = [env[f] for f in entry["frontier"]]
        original = module.weight.detach().clone()
        try:
            for s, weight in points:
                module.weight.copy_(weight)
                args = [v.clone() if i in entry["copies"] else v for i, v in enumerate(inputs)]
                logits = entry["suffix"](*args)
                total = totals[(name, s)][split_name]
                total[0] += int((logits.argmax(dim=1) == y).sum())
                total[1] += float(F.cross_entropy(logits, y, reduction="sum"))
        finally:
            module.weight.copy_(original)

"""A sensitivity job's allocation as the API and `prunelab allocate` give it (torch-free): the goal, the
per-layer map core.allocation.allocate chooses from the grid, its predictions, and a ready spec that runs it.

The ready spec keeps the sensitivity job's model, data, training, seed, device, measurement and method, and
prunes each scanned layer to its allocated sparsity (method.layer_sparsity): one-shot, or iterative
(`iterative`), where every round moves each layer the same share of the distance left to its own target.
"""

from __future__ import annotations

import math
from typing import Any

from core.allocation import FP32, allocate, parse_reduction
from core.spec import parse_spec

GOALS = ("target_sparsity", "flop_reduction", "max_drop")
GOAL_LABELS = {
    "target_sparsity": "share of the scanned layers' weights removed",
    "flop_reduction": "FLOPs of the model divided by this factor",
    "max_drop": "largest predicted drop of validation accuracy",
}
ITERATIVE = {"rate": 0.2, "rounds": 10}  # the iterative schedule's defaults
FINETUNE_EPOCHS = 2


class AllocationError(ValueError):
    """A goal that cannot be met or read: `field` (the goal), one-line message, `allowed` (the range)."""

    def __init__(self, field: str, message: str, allowed: str | None = None):
        self.field, self.message, self.allowed = field, message, allowed
        super().__init__(f"{field}: {message}")


def read_goal(target_sparsity: Any = None, flop_reduction: Any = None, max_drop: Any = None) -> tuple[str, Any]:
    """(goal name, value) from exactly one given goal; AllocationError otherwise."""
    given = {
        k: v
        for k, v in (("target_sparsity", target_sparsity), ("flop_reduction", flop_reduction), ("max_drop", max_drop))
        if v is not None
    }
    if len(given) != 1:
        named = ", ".join(given) or "none"
        raise AllocationError("goal", f"give exactly one of {', '.join(GOALS)}; got {named}", ", ".join(GOALS))
    ((name, value),) = given.items()
    if name == "flop_reduction":
        try:
            return name, parse_reduction(value)
        except ValueError as exc:
            raise AllocationError(name, str(exc).split(": ", 1)[1], "a factor of at least 1, e.g. 4 or 4x") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AllocationError(name, f"expected a number, got {value!r}") from None
    if name == "target_sparsity" and not 0.0 <= number < 1.0:
        raise AllocationError(name, f"must be in [0, 1), got {number}", "0 <= target_sparsity < 1")
    if name == "max_drop" and not 0.0 <= number <= 1.0:
        raise AllocationError(name, f"must be in [0, 1], got {number}", "0 <= max_drop <= 1")
    return name, number


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def allocation_spec(
    source: dict[str, Any],
    layer_sparsity: dict[str, float],
    *,
    iterative: bool = False,
    label: str = "",
    overall: float | None = None,
) -> dict[str, Any]:
    """A job spec (dict) that prunes each layer of `layer_sparsity` to its sparsity, from the sensitivity
    job's spec `source`; checked with parse_spec."""
    method = {k: v for k, v in source["method"].items() if k not in ("layers", "layer_sparsity")}
    if "scope" in method:
        method["scope"] = "layer"  # each layer its own target
    method["layer_sparsity"] = {n: float(s) for n, s in layer_sparsity.items()}
    if iterative:
        schedule = {
            "kind": "iterative",
            **ITERATIVE,
            "target": None,
            "after": "finetune",
            "finetune_epochs": FINETUNE_EPOCHS,
        }
    else:
        # one step; the overall sparsity is what the per-layer map gives (this number only labels it)
        shown = overall if overall is not None else max(layer_sparsity.values(), default=0.0)
        schedule = {
            "kind": "oneshot",
            "sparsities": [round(float(shown), 4)],
            "after": "finetune",
            "finetune_epochs": FINETUNE_EPOCHS,
        }
    name = f"{source.get('name', 'experiment')} · allocation {label}".strip()[:200]
    keep = ("model", "dataset", "pretrained", "train", "measure", "seed", "device", "tags")
    spec = {"name": name, **{k: source[k] for k in keep if k in source}, "method": method, "schedule": schedule}
    parse_spec(spec)  # a spec that would not run is our bug, not the user's: raise here
    return spec


def allocate_job(
    rows: list[dict[str, Any]],
    baseline: dict[str, Any],
    source_spec: dict[str, Any],
    goal: str,
    value: Any,
    *,
    iterative: bool = False,
    source_job_id: int | None = None,
) -> dict[str, Any]:
    """The allocation of a sensitivity grid for one goal: {goal, value, layers (network order: layer,
    sparsity, params, flops, drop, max_sparsity), layer_sparsity, predicted, spec, source_job_id}.
    AllocationError naming the goal and the reachable range when it cannot be met."""
    if not rows:
        raise AllocationError("job", "the sensitivity job has no grid yet")
    base_val = float(baseline["val_accuracy"])
    model_flops = max(int(r.get("model_flops") or 0) for r in rows) or None
    try:
        result = allocate(
            rows, base_val, total_flops=model_flops if goal == "flop_reduction" else None, **{goal: value}
        )
    except ValueError as exc:
        message = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
        allowed = message.split("reachable: ", 1)[1].split(" (")[0] if "reachable: " in message else None
        raise AllocationError(goal, message, allowed) from None
    layers, seen = [], {}
    for row in sorted(rows, key=lambda r: (r.get("position", 0), r["sparsity"])):
        seen.setdefault(row["layer"], []).append(row)
    for name, layer_rows in seen.items():
        layers.append(
            {
                "layer": name,
                "sparsity": result["layer_sparsity"][name],
                "params": int(layer_rows[0]["layer_params"]),
                "flops": int(layer_rows[0].get("layer_flops") or 0),
                "drop": result["layer_drop"][name],
                "max_sparsity": max(float(r["sparsity"]) for r in layer_rows),
            }
        )
    params_total = baseline.get("params_total")
    label = {
        "target_sparsity": f"sparsity {value:g}",
        "flop_reduction": f"FLOPs /{value:g}",
        "max_drop": f"drop <= {value:g}",
    }[goal]
    layer_sparsity = {entry["layer"]: entry["sparsity"] for entry in layers}
    predicted = {
        "sparsity": result["sparsity"],
        "params_removed": result["params_removed"],
        "params_kept": result["params_kept"],
        "size_bytes": result["size_bytes"],
        "model_size_bytes": (params_total - result["params_removed"]) * FP32 if params_total else None,
        "model_size_dense_bytes": params_total * FP32 if params_total else None,
        "flops_removed": result["flops_removed"],
        "model_flops": model_flops,
        "flop_reduction": _finite(
            model_flops / (model_flops - result["flops_removed"])
            if model_flops and model_flops > result["flops_removed"]
            else math.inf
        ),
        "accuracy_drop": result["predicted_drop"],
        "val_accuracy": base_val - result["predicted_drop"],
    }
    return {
        "goal": goal,
        "value": value,
        "baseline_val_accuracy": base_val,
        "layers": layers,
        "layer_sparsity": layer_sparsity,
        "predicted": predicted,
        "spec": allocation_spec(
            source_spec, layer_sparsity, iterative=iterative, label=label, overall=result["sparsity"]
        ),
        "source_job_id": source_job_id,
    }

"""Per-layer sparsity allocation from a sensitivity scan (torch-free: works on the scan's rows).

Each layer's curve: drop(s) = baseline validation accuracy - validation accuracy with only that layer
pruned to s, linearly interpolated between the scanned sparsities, with drop 0 and nothing removed at
s = 0; weights removed and FLOPs removed are interpolated the same way. Sparsities above a layer's largest
scanned one are never chosen (no extrapolation).

Goals (exactly one):
- target_sparsity t: the weights removed over the scanned layers, weighted by each layer's parameter count
  (sum of removed weights / sum of the layers' weights), reach t.
- flop_reduction r (a number or a string like "4x"): FLOPs after pruning = total / r, i.e. remove
  (1 - 1/r) of `total_flops`; total_flops defaults to the sum of the scanned layers' FLOPs (so "4x" removes
  75 % of the pruned layers' FLOPs); pass the model's FLOPs to count the whole model.
- max_drop d: remove as many weights as possible while the predicted drop stays at most d.

The greedy rule: every layer starts at 0 and moves up its curve in small increments (`step` in sparsity;
the scanned sparsities are always increment boundaries, so each increment is linear). Each round raises
by one increment the layer whose curve from its current point is cheapest: the smallest drop per unit
removed (weights; FLOPs for the FLOP goal) over the best later point of its curve, so a steep start is
weighed against the flat stretch after it. Ties go to the earlier layer. The last increment is cut to
land exactly on the goal. For max_drop the greedy stops where the next increment would exceed the budget
(cut to land on it).

The predicted drop is an additive estimate: the sum of the per-layer drops, each measured with every other
layer unpruned; layers pruned together usually interact, so the real drop of the combined model can differ.
"""

from __future__ import annotations

import math
import re
from typing import Any

FP32 = 4


def parse_reduction(value: Any) -> float:
    """A FLOP reduction factor from 4, 4.0, "4" or "4x"."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*[xX]?\s*", value)
        if not match:
            raise ValueError(f"flop_reduction: expected a factor such as 4 or '4x', got {value!r}")
        value = float(match.group(1))
    value = float(value)
    if not value >= 1.0 or math.isinf(value):
        raise ValueError(f"flop_reduction: must be a finite factor of at least 1, got {value}")
    return value


class _Curve:
    """One layer's interpolated curve at the increment positions."""

    def __init__(self, layer: str, rows: list[dict], baseline: float, step: float):
        self.layer = layer
        self.params = int(rows[0]["layer_params"])
        self.flops = int(rows[0].get("layer_flops", 0))
        points = [(0.0, 0.0, 0.0, 0.0)]  # sparsity, drop, params removed, flops removed
        for row in sorted(rows, key=lambda r: r["sparsity"]):
            s = float(row["sparsity"])
            point = (
                s,
                baseline - float(row["val_accuracy"]),
                float(row["params_removed"]),
                float(row["flops_removed"]),
            )
            if s == 0.0:
                points[0] = (0.0, 0.0, point[2], point[3])
            elif s > points[-1][0]:
                points.append(point)
        self.grid = points
        positions = sorted({p[0] for p in points} | {round(k * step, 12) for k in range(1, int(points[-1][0] / step))})
        self.s = [p for p in positions if p <= points[-1][0]]
        values = [self.at(p) for p in self.s]
        self.drop = [v[0] for v in values]
        self.removed = [v[1] for v in values]
        self.flops_removed = [v[2] for v in values]

    def at(self, s: float) -> tuple[float, float, float]:
        """(drop, params removed, flops removed) at sparsity s, linearly interpolated."""
        grid = self.grid
        for (s0, *a), (s1, *b) in zip(grid, grid[1:]):
            if s0 <= s <= s1:
                w = (s - s0) / (s1 - s0)
                return tuple(x + w * (y - x) for x, y in zip(a, b))
        return tuple(grid[-1][1:]) if s >= grid[-1][0] else tuple(grid[0][1:])


def allocate(
    rows: list[dict],
    baseline_val_accuracy: float,
    *,
    target_sparsity: float | None = None,
    flop_reduction: float | str | None = None,
    max_drop: float | None = None,
    total_flops: float | None = None,
    step: float = 0.01,
) -> dict:
    """Per-layer sparsities for one goal from a scan's rows (each: layer, sparsity, val_accuracy,
    params_removed, flops_removed, layer_params, layer_flops). Returns
    {layer_sparsity, sparsity, params_removed, params_kept, size_bytes (fp32 bytes of the kept weights of
    the scanned layers), flops_removed, flop_reduction, predicted_drop (additive estimate), layer_drop}."""
    goals = {"target_sparsity": target_sparsity, "flop_reduction": flop_reduction, "max_drop": max_drop}
    given = [k for k, v in goals.items() if v is not None]
    if len(given) != 1:
        raise ValueError(f"goal: give exactly one of {', '.join(goals)}; got {', '.join(given) or 'none'}")
    if not 0 < step <= 0.5:
        raise ValueError(f"step: must be in (0, 0.5], got {step}")
    if not rows:
        raise ValueError("rows: the scan has no rows")
    by_layer: dict[str, list[dict]] = {}
    for row in rows:
        by_layer.setdefault(row["layer"], []).append(row)
    curves = [_Curve(name, layer_rows, float(baseline_val_accuracy), step) for name, layer_rows in by_layer.items()]
    params = sum(c.params for c in curves)
    flops = float(total_flops) if total_flops is not None else float(sum(c.flops for c in curves))

    if target_sparsity is not None:
        target = float(target_sparsity)
        reachable = sum(max(c.removed) for c in curves) / params
        if not 0.0 <= target <= reachable + 1e-12:
            raise ValueError(
                f"target_sparsity: {target} is not reachable with this scan; reachable: 0 to {reachable:.4f} "
                "(every layer at its largest scanned sparsity)"
            )
        need, gain = target * params, "removed"
    elif flop_reduction is not None:
        factor = parse_reduction(flop_reduction)
        most = sum(max(c.flops_removed) for c in curves)
        best = flops / (flops - most) if flops > most else math.inf
        if flops <= 0 or factor > best * (1 + 1e-12):
            raise ValueError(
                f"flop_reduction: {factor:g}x is not reachable with this scan; reachable: 1x to {best:.4g}x "
                "(every layer at its largest scanned sparsity)"
            )
        need, gain = flops * (1.0 - 1.0 / factor), "flops_removed"
    else:
        if not float(max_drop) >= 0:
            raise ValueError(f"max_drop: must be at least 0, got {max_drop}")
        need, gain = math.inf, "removed"

    index = {c.layer: 0 for c in curves}
    chosen = {c.layer: 0.0 for c in curves}
    drop = {c.layer: 0.0 for c in curves}
    got = {c.layer: getattr(c, gain)[0] for c in curves}
    removed = {c.layer: c.removed[0] for c in curves}
    removed_flops = {c.layer: c.flops_removed[0] for c in curves}

    def cost(c: _Curve) -> float:
        i, values = index[c.layer], getattr(c, gain)
        best = math.inf
        for j in range(i + 1, len(c.s)):
            delta = values[j] - values[i]
            if delta > 0:
                best = min(best, (c.drop[j] - c.drop[i]) / delta)
        return best

    costs = {c.layer: cost(c) for c in curves}
    while sum(got.values()) < need - 1e-9:
        layer = min(costs, key=lambda n: costs[n])
        if costs[layer] == math.inf:
            break  # every layer at the end of its curve (max_drop: the whole scan fits)
        c = next(c for c in curves if c.layer == layer)
        i = index[layer]
        values = getattr(c, gain)
        d_gain, d_drop = values[i + 1] - values[i], c.drop[i + 1] - c.drop[i]
        fraction = 1.0
        if max_drop is not None:
            room = float(max_drop) - sum(drop.values())
            if d_drop > room + 1e-12:
                fraction = max(0.0, room / d_drop)
        elif d_gain > 0:
            fraction = min(1.0, (need - sum(got.values())) / d_gain)
        s = c.s[i] + fraction * (c.s[i + 1] - c.s[i])
        chosen[layer] = s
        drop[layer] = c.drop[i] + fraction * d_drop
        got[layer] = values[i] + fraction * d_gain
        removed[layer] = c.removed[i] + fraction * (c.removed[i + 1] - c.removed[i])
        removed_flops[layer] = c.flops_removed[i] + fraction * (c.flops_removed[i + 1] - c.flops_removed[i])
        if fraction < 1.0:
            break
        index[layer] = i + 1
        costs[layer] = cost(c)

    if need < math.inf and sum(got.values()) < need - 1e-6:
        goal = given[0]
        raise ValueError(f"{goal}: {goals[goal]} is not reachable along the scanned curves")
    total_removed = sum(removed.values())
    total_flops_removed = sum(removed_flops.values())
    return {
        "layer_sparsity": {c.layer: round(chosen[c.layer], 6) for c in curves},
        "sparsity": total_removed / params,
        "params_removed": total_removed,
        "params_kept": params - total_removed,
        "size_bytes": (params - total_removed) * FP32,
        "flops_removed": total_flops_removed,
        "flop_reduction": flops / (flops - total_flops_removed) if flops > total_flops_removed else math.inf,
        "predicted_drop": sum(drop.values()),
        "layer_drop": dict(drop),
    }

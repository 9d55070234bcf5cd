"""Per-layer allocation from a sensitivity grid: exact maps on synthetic grids, goals, unreachable goals."""

import math

import pytest

from core.allocation import allocate, parse_reduction

BASE = 0.9


def grid(layer: str, params: int, drops: dict[float, float], flops: int = 0) -> list[dict]:
    """Rows of one layer as the scan reports them (mask pruning: removed = sparsity x params)."""
    return [
        {
            "layer": layer,
            "sparsity": s,
            "val_accuracy": BASE - d,
            "params_removed": round(s * params),
            "flops_removed": round(s * flops),
            "layer_params": params,
            "layer_flops": flops,
        }
        for s, d in drops.items()
    ]


def test_free_layer_is_spent_first():
    rows = grid("a", 100, {0.5: 0.0, 0.9: 0.0}) + grid("b", 100, {0.5: 0.25, 0.9: 0.5})
    result = allocate(rows, BASE, target_sparsity=0.45)
    assert result["layer_sparsity"] == {"a": 0.9, "b": 0.0}
    assert result["sparsity"] == pytest.approx(0.45)
    assert result["predicted_drop"] == pytest.approx(0.0)
    assert result["params_kept"] == pytest.approx(110)
    assert result["size_bytes"] == pytest.approx(440)


def test_rest_goes_to_the_next_cheapest_layer_on_its_interpolated_curve():
    rows = grid("a", 100, {0.5: 0.0, 0.9: 0.01}) + grid("b", 100, {0.5: 0.25, 0.9: 0.5})
    result = allocate(rows, BASE, target_sparsity=0.6)
    assert result["layer_sparsity"]["a"] == pytest.approx(0.9)
    assert result["layer_sparsity"]["b"] == pytest.approx(0.3)
    assert result["sparsity"] == pytest.approx(0.6)
    # b at 0.3: 0.6 of the way to its first point (drop 0.25); a at 0.9: 0.01
    assert result["layer_drop"] == pytest.approx({"a": 0.01, "b": 0.15})
    assert result["predicted_drop"] == pytest.approx(0.16)


def test_overall_sparsity_is_weighted_by_parameter_count():
    # same curves, but the big layer is four times the small one: it carries the target
    rows = grid("small", 100, {0.9: 0.1}) + grid("big", 400, {0.9: 0.1})
    result = allocate(rows, BASE, target_sparsity=0.72)
    assert result["layer_sparsity"] == {"small": 0.0, "big": 0.9}
    assert result["predicted_drop"] == pytest.approx(0.1)


def test_lookahead_sees_the_flat_stretch_after_a_steep_start():
    # a: steep to 0.1 then flat (average 0.02 / 90 weights to 0.9); b: 0.05 per 90 weights all the way
    rows = grid("a", 100, {0.1: 0.02, 0.9: 0.02}) + grid("b", 100, {0.9: 0.05})
    result = allocate(rows, BASE, target_sparsity=0.45)
    assert result["layer_sparsity"] == {"a": 0.9, "b": 0.0}


def test_flop_goal_spends_where_flops_are_cheap():
    rows = grid("conv", 100, {0.5: 0.01, 0.9: 0.02}, flops=1000) + grid("fc", 1000, {0.5: 0.01, 0.9: 0.02}, flops=10)
    result = allocate(rows, BASE, flop_reduction="2x")
    assert result["flop_reduction"] == pytest.approx(2.0)
    assert result["flops_removed"] == pytest.approx(505)
    assert result["layer_sparsity"]["fc"] == 0.0
    assert result["layer_sparsity"]["conv"] == pytest.approx(0.505)
    # the whole model's FLOPs as the reference: 1010 + 990 others: at most 909 removed = 1.833x
    with pytest.raises(ValueError, match=r"flop_reduction: 2x is not reachable .*reachable: 1x to 1\.833x"):
        allocate(rows, BASE, flop_reduction=2, total_flops=2000)


def test_max_drop_removes_as_much_as_the_budget_allows():
    rows = grid("a", 100, {0.9: 0.01}) + grid("b", 100, {0.5: 0.1, 0.9: 0.4})
    result = allocate(rows, BASE, max_drop=0.06)
    assert result["layer_sparsity"]["a"] == pytest.approx(0.9)
    assert result["layer_sparsity"]["b"] == pytest.approx(0.25)
    assert result["predicted_drop"] == pytest.approx(0.06)
    everything = allocate(rows, BASE, max_drop=1.0)
    assert everything["layer_sparsity"] == {"a": 0.9, "b": 0.9}


def test_accuracy_gains_are_taken_and_sparsity_zero_rows_are_the_origin():
    rows = grid("a", 100, {0.0: 0.0, 0.5: -0.01, 0.9: 0.3}) + grid("b", 100, {0.9: 0.2})
    result = allocate(rows, BASE, target_sparsity=0.25)
    assert result["layer_sparsity"] == {"a": 0.5, "b": 0.0}
    assert result["predicted_drop"] == pytest.approx(-0.01)


@pytest.mark.parametrize(
    "goal, message",
    [
        ({"target_sparsity": 0.95}, r"target_sparsity: 0.95 is not reachable .*reachable: 0 to 0\.9000"),
        ({"target_sparsity": -0.1}, r"target_sparsity: -0.1 is not reachable"),
        ({"flop_reduction": "100x"}, r"flop_reduction: 100x is not reachable .*reachable: 1x to 10x"),
        ({"flop_reduction": "fast"}, r"flop_reduction: expected a factor such as 4 or '4x', got 'fast'"),
        ({"flop_reduction": 0.5}, r"flop_reduction: must be a finite factor of at least 1"),
        ({"max_drop": -0.01}, r"max_drop: must be at least 0"),
        ({}, r"goal: give exactly one of target_sparsity, flop_reduction, max_drop; got none"),
        ({"target_sparsity": 0.5, "max_drop": 0.1}, r"got target_sparsity, max_drop"),
    ],
)
def test_bad_or_unreachable_goals_name_the_goal_and_the_range(goal, message):
    rows = grid("a", 100, {0.5: 0.0, 0.9: 0.1}, flops=100) + grid("b", 100, {0.9: 0.1}, flops=100)
    with pytest.raises(ValueError, match=message):
        allocate(rows, BASE, **goal)


def test_parse_reduction():
    assert parse_reduction("4x") == 4.0
    assert parse_reduction(" 2.5X ") == 2.5
    assert parse_reduction(3) == 3.0
    with pytest.raises(ValueError):
        parse_reduction(math.inf)

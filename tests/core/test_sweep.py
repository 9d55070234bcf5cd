"""Sweep expansion: the cartesian product, names, every path checked against the JobSpec model, the limit."""

import pytest

from core.spec import SpecError, parse_spec
from core.sweep import expand, group_key, read_sweep

BASE = {
    "name": "lenet-block-sweep",
    "model": "lenet300_100",
    "dataset": "digits",
    "train": {"epochs": 2},
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 3},
}


def sweep(**paths) -> dict:
    return {**BASE, "sweep": {k.replace("__", "."): v for k, v in paths.items()}}


def test_five_by_two_is_ten_jobs_in_product_order():
    specs = expand(sweep(method__block_size=[2, 3, 4, 5, 6], seed=[0, 1]))
    assert len(specs) == 10
    combos = [(s["method"]["block_size"], s["seed"]) for s in specs]
    assert combos == [(b, s) for b in (2, 3, 4, 5, 6) for s in (0, 1)]
    assert specs[0]["name"] == "lenet-block-sweep [method.block_size=2, seed=0]"
    assert specs[-1]["name"] == "lenet-block-sweep [method.block_size=6, seed=1]"
    assert all("sweep" not in s for s in specs)
    assert len({parse_spec(s).name for s in specs}) == 10
    # The base spec is not changed by the expansion.
    assert BASE["method"] == {"kind": "block", "block_size": 2}


def test_missing_sections_are_created_and_pairs_kept():
    specs = expand(sweep(train__lr=[0.001, 0.01], method__block_size=[[2, 4]]))
    assert [s["train"] for s in specs] == [{"epochs": 2, "lr": 0.001}, {"epochs": 2, "lr": 0.01}]
    assert specs[0]["method"]["block_size"] == [2, 4]
    assert specs[0]["name"].endswith("[train.lr=0.001, method.block_size=[2, 4]]")
    rates = expand(sweep(schedule__layer_rates__fc3=[0.1, 0.05]))
    assert [s["schedule"]["layer_rates"] for s in rates] == [{"fc3": 0.1}, {"fc3": 0.05}]


def test_no_sweep_expands_to_the_spec_itself():
    assert expand(BASE) == [BASE]


@pytest.mark.parametrize(
    ("paths", "field", "words"),
    [
        ({"method.block_sizee": [2]}, "sweep.method.block_sizee", "unknown field"),
        ({"trian.lr": [0.1]}, "sweep.trian.lr", "unknown field"),
        ({"seed.x": [1]}, "sweep.seed.x", "no fields of its own"),
        ({"name": ["a", "b"]}, "sweep.name", "cannot be swept"),
        ({"seed": []}, "sweep.seed", "non-empty list"),
        ({"seed": 3}, "sweep.seed", "non-empty list"),
        ({"seed": [1, 1]}, "sweep.seed", "listed twice"),
        ({"method": [{"kind": "block"}], "method.block_size": [2]}, "sweep.method.block_size", "inside sweep.method"),
    ],
)
def test_bad_paths_name_the_field(paths, field, words):
    with pytest.raises(SpecError) as err:
        expand({**BASE, "sweep": paths})
    assert err.value.field == field
    assert words in err.value.message


def test_an_expanded_spec_that_does_not_parse_names_its_field_and_combination():
    with pytest.raises(SpecError) as err:
        expand(sweep(schedule__rate=[0.2, 1.5]))
    assert err.value.field == "schedule.rate"
    assert "schedule.rate=1.5" in err.value.message
    # A field of another method kind exists in the model, but not for this spec's method.
    with pytest.raises(SpecError) as err:
        expand(sweep(method__importance=["l1"]))
    assert err.value.field == "method.importance"


def test_sweep_is_not_a_mapping():
    for bad in (None, [], {}, "seed"):
        with pytest.raises(SpecError) as err:
            read_sweep(bad)
        assert err.value.field == "sweep"


def test_limit_on_the_count():
    specs = expand(sweep(seed=list(range(10)), method__block_size=[2, 3]), max_jobs=20)
    assert len(specs) == 20
    with pytest.raises(SpecError) as err:
        expand(sweep(seed=list(range(10)), method__block_size=[2, 3, 4]), max_jobs=20)
    assert err.value.field == "sweep"
    assert "30 jobs" in err.value.message and "at most 20" in err.value.message
    assert "PRUNELAB_MAX_SWEEP_JOBS" in err.value.message


def test_a_plain_spec_with_a_sweep_is_refused_by_parse_spec():
    with pytest.raises(SpecError) as err:
        parse_spec(sweep(seed=[0, 1]))
    assert err.value.field == "sweep"


def test_group_key_ignores_name_and_seed_only():
    a, b, c = expand(sweep(method__block_size=[2, 3], seed=[0, 1]))[:3]
    assert group_key(a) == group_key(b)  # seeds 0 and 1 of block size 2
    assert group_key(a) != group_key(c)

"""Spec limits, as `prunelab run` and the API both apply them: no NUL in any string, 1 to 100 one-shot
sparsities, the planned epochs of a job (baseline + steps x fine-tune + regularised) at most
DEFAULT_MAX_JOB_EPOCHS, and every cross-field problem reported at once."""

import pytest

from core.spec import DEFAULT_MAX_JOB_EPOCHS, JobEdit, SpecError, SpecErrors, epoch_errors, parse_spec

BASE = {
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 10, "finetune_epochs": 2},
}


def spec(**overrides):
    return parse_spec({**BASE, **overrides})


def test_planned_steps_and_epochs():
    assert DEFAULT_MAX_JOB_EPOCHS == 5000
    s = spec(train={"epochs": 20})
    assert s.planned_steps() == 10
    assert s.planned_epochs() == {"train.epochs": 20, "schedule.finetune_epochs": 20, "method.epochs": 0}
    # only a target: the rounds the rate needs (1 - 0.8^r >= 0.9 -> r = 11), capped by rounds when given
    target = {"kind": "iterative", "rate": 0.2, "rounds": None, "target": 0.9, "finetune_epochs": 1}
    assert spec(schedule=target).planned_steps() == 11
    assert spec(schedule={**target, "rounds": 4}).planned_steps() == 4
    # a slower per-layer rate needs more rounds: 1 - 0.9^r >= 0.9 -> r = 22
    assert spec(schedule={**target, "layer_rates": {"fc3": 0.1}}).planned_steps() == 22
    oneshot = spec(schedule={"kind": "oneshot", "sparsities": [0.5, 0.7, 0.9], "after": "none"})
    assert oneshot.planned_epochs()["schedule.finetune_epochs"] == 0 and oneshot.planned_steps() == 3
    lasso = spec(method={"kind": "group_lasso", "epochs": 7}, schedule={"kind": "oneshot", "sparsities": [0.5, 0.6]})
    assert lasso.planned_epochs()["method.epochs"] == 14


def test_epoch_limit_names_the_largest_part():
    ok = {"kind": "iterative", "rate": 0.2, "rounds": 200, "finetune_epochs": 24}
    assert epoch_errors(spec(train={"epochs": 200}, schedule=ok)) == []  # 200 + 200 x 24 = 5000
    with pytest.raises(SpecError) as err:
        spec(train={"epochs": 201}, schedule=ok)
    assert err.value.field == "schedule.finetune_epochs" and "5001" in err.value.message
    assert err.value.allowed == "at most 5000 planned epochs"
    assert parse_spec({**BASE, "train": {"epochs": 201}, "schedule": ok}, max_epochs=6000).train.epochs == 201
    [baseline] = epoch_errors(spec(train={"epochs": 1000}), max_epochs=500)
    assert baseline.field == "train.epochs"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "bad\x00name"}, "name"),
        ({"tags": ["a", "\x00"]}, "tags.1"),
        ({"method": {"kind": "channel", "layers": ["fc1", "fc2\x00"]}}, "method.layers.1"),
        ({"method": {"kind": "magnitude", "layer_sparsity": {"\x00fc1": 0.5}}}, "method.layer_sparsity"),
    ],
)
def test_no_nul_in_strings(overrides, field):
    with pytest.raises(SpecError) as err:
        spec(**overrides)
    assert err.value.field == field and "NUL" in err.value.message


def test_sparsities_count():
    for bad in ([], [0.5] * 101):
        with pytest.raises(SpecError) as err:
            spec(schedule={"kind": "oneshot", "sparsities": bad, "after": "none"})
        assert err.value.field == "schedule.sparsities"
    assert spec(schedule={"kind": "oneshot", "sparsities": [0.5] * 100, "after": "none"}).planned_steps() == 100


def test_every_problem_at_once():
    with pytest.raises(SpecErrors) as err:
        spec(
            method={"kind": "magnitude", "layers": ["fc9"], "layer_sparsity": {"fc1": 0.5, "out": 0.2}},
            schedule={"kind": "iterative", "rate": 0.2, "rounds": 2, "layer_rates": {"x": 0.1, "y": 0.2}},
        )
    fields = [e.field for e in err.value.errors]
    assert fields == ["method.layers", "method.layer_sparsity", "schedule.layer_rates"]
    assert "'x', 'y'" in err.value.errors[2].message
    assert str(err.value).startswith("method.layers: unknown layer 'fc9'")  # the CLI prints the first line
    with pytest.raises(SpecErrors) as err:  # field errors are collected too, one per field
        parse_spec({**BASE, "name": "", "seed": -1, "train": {"lr": 0}})
    assert [e.field for e in err.value.errors] == ["name", "train.lr", "seed"]


def test_job_edit_model():
    assert JobEdit.model_validate({"notes": "ok"}).model_dump(exclude_none=True) == {"notes": "ok"}
    for bad in ({"notes": "\x00"}, {"tags": ["x" * 51]}, {"name": ""}, {"other": 1}):
        with pytest.raises(ValueError):
            JobEdit.model_validate(bad)

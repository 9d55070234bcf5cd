"""Strict numbers and booleans in the spec: a quoted number, a boolean for a number or a number for a boolean is
an error naming the field; integers stay valid for float fields; a stored spec parses again."""

import pytest
import yaml

from core.spec import JobSpec, SpecError, parse_spec

BASE = """
model: lenet300_100
dataset: digits
method: {kind: block, block_size: 2}
schedule: {kind: iterative, rate: 0.2, rounds: 3}
"""


def spec(extra: str = "") -> dict:
    data = yaml.safe_load(BASE)
    data.update(yaml.safe_load(extra) or {})
    return data


@pytest.mark.parametrize(
    "extra, field, allowed",
    [
        ("schedule: {kind: iterative, rate: '0.2'}", "schedule.rate", "0 < rate < 1"),
        ("schedule: {kind: iterative, rate: true}", "schedule.rate", "0 < rate < 1"),
        ("train: {epochs: true}", "train.epochs", "0 <= epochs <= 1000"),
        ("train: {epochs: '5'}", "train.epochs", "0 <= epochs <= 1000"),
        ("train: {batch_size: 64.0}", "train.batch_size", "1 <= batch_size <= 65536"),
        ("train: {augment: 1}", "train.augment", "true or false"),
        ("measure: {latency: 'yes'}", "measure.latency", "true or false"),
        ("schedule: {kind: iterative, layer_rates: {fc3: '0.1'}}", "schedule.layer_rates.fc3", "a number"),
        ("schedule: {kind: oneshot, sparsities: [0.5, '0.9']}", "schedule.sparsities.1", "a number"),
        ("method: {kind: block, block_size: [2, true]}", "method.block_size", "1 <= block_size <= 4096"),
        ("seed: 1.5", "seed", "0 <= seed <= 2147483647"),
    ],
)
def test_wrong_json_types_name_the_field(extra, field, allowed):
    with pytest.raises(SpecError) as err:
        parse_spec(spec(extra))
    assert err.value.field == field and err.value.allowed.startswith(allowed), str(err.value)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{field}: ")


def test_integers_are_valid_floats():
    parsed = parse_spec(
        spec("train: {lr: 1, momentum: 0, weight_decay: 0}\nschedule: {kind: oneshot, sparsities: [0]}")
    )
    assert parsed.train.lr == 1 and parsed.train.momentum == 0 and parsed.schedule.sparsities == [0]


def test_a_stored_spec_parses_again():
    """The API stores model_dump(mode="json") and the worker parses it: strictness must not refuse it."""
    parsed = parse_spec(spec("method: {kind: block, block_size: [2, 4]}\ntrain: {augment: false}"))
    again = JobSpec.model_validate_json(parsed.model_dump_json())
    assert parse_spec(parsed.model_dump(mode="json")) == parsed == again

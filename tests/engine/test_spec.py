"""Specs: every example and preset is valid; bad specs name the field and the allowed values."""

import copy
from pathlib import Path

import pytest
import yaml

from core.presets import PRESETS
from core.spec import SpecError, parse_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
ISSUE_SPEC = {
    "name": "lenet-digits-block2",
    "model": "lenet300_100",
    "dataset": "digits",
    "train": {"epochs": 20, "optimizer": "adam", "lr": 0.001, "batch_size": 64},
    "method": {"kind": "block", "block_size": 2, "score": "mean_abs"},
    "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 10, "finetune_epochs": 2},
    "seed": 0,
}


def test_the_issue_spec_is_shipped_verbatim():
    shipped = yaml.safe_load((EXAMPLES[0].parent / "lenet-digits-block2.yaml").read_text())
    assert shipped == ISSUE_SPEC
    assert PRESETS[0]["spec"] == ISSUE_SPEC


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse(path):
    from core.sweep import expand  # a sweep example: every one of its jobs parses

    for data in expand(yaml.safe_load(path.read_text())):
        spec = parse_spec(data)
        assert spec.dataset in ("digits", "mnist", "fashion_mnist", "cifar10")


def test_examples_cover_every_seed_experiment():
    names = {p.stem for p in EXAMPLES}
    assert {f"lenet-mnist-block{n}" for n in range(2, 7)} <= names
    assert {
        "vgg-cifar10-finegrained",
        "vgg-cifar10-channel",
        "vgg-cifar10-group-lasso",
        "resnet18-cifar10-oneshot",
        "resnet18-cifar10-iterative",
        "resnet18-head-cifar10-block2",
    } <= names


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p["name"])
def test_presets_parse_and_use_digits(preset):
    spec = parse_spec(preset["spec"])
    assert spec.dataset == "digits" and spec.name == preset["name"]


def test_presets_cover_every_method_and_schedule():
    specs = [parse_spec(p["spec"]) for p in PRESETS]
    assert {s.method.kind for s in specs} == {"block", "magnitude", "channel", "group_lasso"}
    assert {s.schedule.kind for s in specs} == {"oneshot", "iterative", "sensitivity"}
    assert {s.schedule.after for s in specs} >= {"finetune", "rewind"}


def _bad(change):
    spec = copy.deepcopy(ISSUE_SPEC)
    change(spec)
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)
    return err.value


def test_unknown_model():
    err = _bad(lambda s: s.update(model="alexnet"))
    assert err.field == "model" and "lenet300_100" in str(err) and "resnet18" in str(err)


@pytest.mark.parametrize("size", [0, [2, 0], -3])
def test_block_size_zero(size):
    err = _bad(lambda s: s["method"].update(block_size=size))
    assert err.field == "method.block_size" and "1 to 4096" in str(err)


def test_rate_above_one():
    err = _bad(lambda s: s["schedule"].update(rate=1.5))
    assert err.field == "schedule.rate" and "1" in err.message


@pytest.mark.parametrize(
    "where,field",
    [
        (lambda s: s["method"].update(layers=["fc1", "conv9"]), "method.layers"),
        (lambda s: s["schedule"].update(layer_rates={"conv9": 0.1}), "schedule.layer_rates"),
        (lambda s: s.update(method={"kind": "magnitude", "layer_sparsity": {"conv9": 0.5}}), "method.layer_sparsity"),
    ],
)
def test_unknown_layer_names_the_field_and_the_layers(where, field):
    err = _bad(where)
    assert err.field == field and "'conv9'" in str(err) and "fc1, fc2, fc3" in str(err)


def test_rewind_needs_an_existing_epoch():
    err = _bad(lambda s: s["schedule"].update(after="rewind", rewind_epoch=21))
    assert err.field == "schedule.rewind_epoch" and "20" in str(err)

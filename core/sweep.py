"""Sweeps: one spec with `sweep: {"method.block_size": [2, 3, 4], "seed": [0, 1, 2]}` stands for one job per
combination of the listed values (the cartesian product), submitted together as a group.

`expand(spec_dict)` checks every path against the JobSpec model (an unknown one is `sweep.<path>: unknown
field`), sets each combination's values into a copy of the spec, names the job after it
("lenet-block-sweep [method.block_size=2, seed=0]") and parses every expanded spec, so a sweep is refused as a
whole before anything is stored. Torch-free: the API, the CLI and tests use it alike.
"""

from __future__ import annotations

import copy
import itertools
import json
import typing
from typing import Any

from pydantic import BaseModel

from core.spec import (
    DEFAULT_MAX_JOB_EPOCHS,
    BlockMethod,
    ChannelMethod,
    GroupLassoMethod,
    IterativeSchedule,
    JobSpec,
    MagnitudeMethod,
    OneShotSchedule,
    SpecError,
    parse_spec,
)

DEFAULT_MAX_SWEEP_JOBS = 100  # PRUNELAB_MAX_SWEEP_JOBS of the API
MAX_VALUES = 100  # values of one path
# Paths no sweep may set: the name is made from the combination, a sweep does not nest.
NOT_SWEPT = {"name": "each job's name is the spec's name with its combination appended", "sweep": "sweeps do not nest"}
# The members of the discriminated unions, by the spec field that holds them.
_UNIONS: dict[str, tuple[type[BaseModel], ...]] = {
    "method": (BlockMethod, MagnitudeMethod, ChannelMethod, GroupLassoMethod),
    "schedule": (OneShotSchedule, IterativeSchedule),
}


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    return [
        a for a in (typing.get_args(annotation) or (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)
    ]


def _is_mapping(annotation: Any) -> bool:
    kinds = typing.get_args(annotation) or (annotation,)
    return any(typing.get_origin(k) is dict or k is dict for k in kinds)


def check_path(path: str) -> None:
    """SpecError naming `sweep.<path>` unless `path` is a field of the JobSpec model (in any method or
    schedule kind; a mapping field such as schedule.layer_rates takes one key more: schedule.layer_rates.fc3)."""
    field = f"sweep.{path}"
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise SpecError(field, "must be a dotted path of spec fields, e.g. method.block_size or seed")
    if parts[0] in NOT_SWEPT:
        raise SpecError(field, f"cannot be swept: {NOT_SWEPT[parts[0]]}")
    models: list[type[BaseModel]] = [JobSpec]
    for i, part in enumerate(parts):
        fields = {name: info for m in models for name, info in m.model_fields.items()}
        if part not in fields:
            allowed = ", ".join(sorted(fields))
            raise SpecError(field, f"unknown field; allowed at {'.'.join(parts[:i]) or 'the top'}: {allowed}", allowed)
        info = fields[part]
        if i == len(parts) - 1:
            return
        if i == 0 and part in _UNIONS:
            models = list(_UNIONS[part])
            continue
        if _is_mapping(info.annotation) and i == len(parts) - 2:
            return  # a key of a mapping field (a layer name): checked with the expanded spec
        models = _models_of(info.annotation)
        if not models:
            raise SpecError(field, f"{'.'.join(parts[: i + 1])} has no fields of its own; sweep it as a whole")


def _set(spec: dict, path: str, value: Any) -> None:
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise SpecError(key, "must be a mapping of fields to sweep a field inside it")
        node = child
    node[keys[-1]] = copy.deepcopy(value)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def combination_label(combo: dict[str, Any]) -> str:
    """'method.block_size=2, seed=0'."""
    return ", ".join(f"{path}={_shown(value)}" for path, value in combo.items())


def read_sweep(sweep: Any, max_jobs: int = DEFAULT_MAX_SWEEP_JOBS) -> dict[str, list[Any]]:
    """The sweep mapping checked: dotted paths of spec fields to non-empty lists of distinct values, and at
    most `max_jobs` combinations. SpecError naming the field otherwise."""
    if not isinstance(sweep, dict) or not sweep:
        raise SpecError("sweep", 'must map spec fields to lists of values, e.g. {"method.block_size": [2, 3, 4]}')
    for path, values in sweep.items():
        if not isinstance(path, str):
            raise SpecError("sweep", f"keys must be dotted paths of spec fields, not {path!r}")
        check_path(path)
        field = f"sweep.{path}"
        if not isinstance(values, list) or not values:
            raise SpecError(field, "must be a non-empty list of values, e.g. [2, 3, 4]")
        if len(values) > MAX_VALUES:
            raise SpecError(field, f"at most {MAX_VALUES} values", f"1 to {MAX_VALUES} values")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        repeated = next((values[i] for i, s in enumerate(seen) if s in seen[:i]), None)
        if len(set(seen)) < len(seen):
            raise SpecError(field, f"the value {_shown(repeated)} is listed twice")
    paths = list(sweep)
    for a in paths:
        for b in paths:
            if a != b and b.startswith(a + "."):
                raise SpecError(f"sweep.{b}", f"lies inside sweep.{a}, which is swept as a whole")
    count = 1
    for values in sweep.values():
        count *= len(values)
    if count > max_jobs:
        sizes = " x ".join(str(len(v)) for v in sweep.values())
        raise SpecError(
            "sweep",
            f"makes {count} jobs ({sizes}); at most {max_jobs} are allowed (PRUNELAB_MAX_SWEEP_JOBS)",
            f"at most {max_jobs} jobs",
        )
    return {path: list(values) for path, values in sweep.items()}


def expand(
    spec_dict: dict[str, Any], max_jobs: int = DEFAULT_MAX_SWEEP_JOBS, max_epochs: int = DEFAULT_MAX_JOB_EPOCHS
) -> list[dict[str, Any]]:
    """One spec dict per combination of the sweep (cartesian product, in the order the paths and values are
    listed), each without `sweep` and named "<name> [path=value, ...]"; every one of them parses. A spec
    without a sweep expands to itself. SpecError naming the field (sweep.<path>, or the spec field an
    expanded spec gets wrong, with the combination that does) otherwise."""
    if not isinstance(spec_dict, dict):
        raise SpecError("spec", "must be a mapping of fields (name, model, dataset, train, method, schedule, ...)")
    base = {k: v for k, v in spec_dict.items() if k != "sweep"}
    if "sweep" not in spec_dict:
        parse_spec(base, max_epochs)
        return [base]
    sweep = read_sweep(spec_dict["sweep"], max_jobs)
    name = base.get("name", JobSpec.model_fields["name"].default)
    out = []
    for values in itertools.product(*sweep.values()):
        combo = dict(zip(sweep, values))
        spec = copy.deepcopy(base)
        for path, value in combo.items():
            _set(spec, path, value)
        label = combination_label(combo)
        spec["name"] = f"{name} [{label}]" if isinstance(name, str) else name
        try:
            parse_spec(spec, max_epochs)
        except SpecError as err:
            raise SpecError(err.field, f"{err.message} (in the sweep combination {label})", err.allowed) from None
        out.append(spec)
    return out


def group_key(spec: dict[str, Any]) -> str:
    """What runs of one configuration share: the spec without its name and seed (runs that differ only in
    the seed are repeats of one experiment)."""
    return json.dumps({k: v for k, v in spec.items() if k not in ("name", "seed")}, sort_keys=True)

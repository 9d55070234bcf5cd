"""A sensitivity job end to end without a server: `prunelab run` on the example spec writes the grid to
result.json, `prunelab allocate` turns it into a ready spec, and that spec, run one-shot without
fine-tuning, is at least as accurate as uniform magnitude pruning to the same sparsity. Also the iterative
schedule toward a per-layer map, and the spec's rules for the new schedule."""

import json
from pathlib import Path

import pytest
import yaml

from core.spec import SpecError, parse_spec
from worker.engine.reporter import NullReporter
from worker.engine.runner import Iterative, run_job

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lenet-digits-sensitivity.yaml"
SPARSITIES = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, prunelab, prunelab_env):
    """(result dict, run directory, environment) of `prunelab run` on the example sensitivity spec."""
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("runs") / "sens"
    env = prunelab_env(home)
    proc = prunelab("run", str(EXAMPLE), "--out", str(out), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text()), out, env, home


def test_the_grid_has_every_layer_and_sparsity(scanned):
    result, _, _, _ = scanned
    grid = result["sensitivity"]
    assert [(r["layer"], r["sparsity"]) for r in grid] == [(n, s) for n in ("fc1", "fc2", "fc3") for s in SPARSITIES]
    assert [r["position"] for r in grid] == [i for i in range(3) for _ in SPARSITIES]
    assert result["steps"] == []
    assert result["baseline"]["val_accuracy"] > 0.9
    for row in grid:
        assert {"accuracy", "val_accuracy", "loss", "params_removed", "flops_removed", "latency"} <= set(row)
        assert row["params_removed"] == round(row["sparsity"] * row["layer_params"])
    at = {(r["layer"], r["sparsity"]): r for r in grid}
    # The 100 -> 10 output layer is the sensitive one (why the block pruning paper prunes fc3 slower).
    assert at[("fc3", 0.9)]["accuracy"] < at[("fc1", 0.9)]["accuracy"] - 0.05
    fc1 = [at[("fc1", s)]["params_removed"] for s in SPARSITIES]
    assert fc1 == sorted(fc1)


def test_allocate_writes_a_spec_better_than_uniform(scanned, prunelab, tmp_path):
    result, out, env, home = scanned
    spec_path = tmp_path / "alloc.yaml"
    proc = prunelab("allocate", str(out), "--target-sparsity", "0.9", "--spec-out", str(spec_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "fc3" in proc.stdout and "predicted accuracy drop" in proc.stdout
    data = yaml.safe_load(spec_path.read_text())
    spec = parse_spec(data)
    chosen = spec.method.layer_sparsity
    assert set(chosen) == {"fc1", "fc2", "fc3"}
    sizes = {r["layer"]: r["layer_params"] for r in result["sensitivity"]}
    overall = sum(chosen[n] * sizes[n] for n in sizes) / sum(sizes.values())
    assert overall == pytest.approx(0.9, abs=1e-3)
    assert chosen["fc3"] < 0.9  # the sensitive layer keeps more

    def accuracy(spec_dict: dict) -> float:
        spec_dict = {**spec_dict, "schedule": {**spec_dict["schedule"], "after": "none"}}
        run = run_job(
            parse_spec(spec_dict),
            tmp_path / spec_dict["name"],
            NullReporter(),
            data_dir=home / "data",
            cache_dir=home / "artifacts" / "baselines",
        )
        return run["steps"][0]["accuracy"], run["steps"][0]["sparsity"]

    allocated, sparsity = accuracy({**data, "name": "allocated"})
    uniform_spec = {**data, "name": "uniform", "method": {"kind": "magnitude", "scope": "layer"}}
    uniform_spec["schedule"] = {"kind": "oneshot", "sparsities": [0.9]}
    uniform, uniform_sparsity = accuracy(uniform_spec)
    assert sparsity == pytest.approx(uniform_sparsity, abs=2e-3)
    assert allocated >= uniform, (allocated, uniform)


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ["--target-sparsity", "0.99"],
            "error: --target-sparsity: 0.99 is not reachable with this scan; reachable: 0 to 0.9500",
        ),
        (["--target-flops", "4x", "--max-drop", "0.1"], "error: goal: give exactly one of --target-sparsity"),
        (["--target-flops", "four"], "error: --target-flops: expected a factor such as 4 or '4x'"),
        (["--max-drop", "abc"], "error: --max-drop: expected a number, got 'abc'"),
    ],
)
def test_allocate_bad_input_is_one_line(scanned, prunelab, args, expected):
    _, out, env, _ = scanned
    proc = prunelab("allocate", str(out), *args, env=env)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(expected), line


def test_allocate_refuses_a_run_that_is_not_a_scan(tmp_path, prunelab, prunelab_env):
    (tmp_path / "result.json").write_text(json.dumps({"spec": {"schedule": {"kind": "oneshot"}}, "steps": []}))
    proc = prunelab("allocate", str(tmp_path), "--target-sparsity", "0.5", env=prunelab_env(tmp_path))
    assert proc.returncode == 2
    assert "is not the result of a sensitivity run" in proc.stderr


def test_iterative_moves_every_layer_toward_its_own_target():
    spec = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "digits",
            "method": {"kind": "block", "layer_sparsity": {"fc1": 0.9, "fc2": 0.6, "fc3": 0.0}},
            "schedule": {"kind": "iterative", "rate": 0.3, "rounds": 4},
        }
    )
    sizes = {"fc1": 100, "fc2": 100, "fc3": 10}
    steps = Iterative(spec.schedule, sizes, dict(spec.method.layer_sparsity)).targets()
    assert len(steps) == 4 and spec.planned_steps() == 4
    assert steps[-1][1] == {"fc1": 0.9, "fc2": 0.6, "fc3": 0.0}
    previous = {"fc1": 0.0, "fc2": 0.0}
    for _, layers in steps:
        shares = [(layers[n] - previous[n]) / (t - previous[n]) for n, t in (("fc1", 0.9), ("fc2", 0.6))]
        assert shares[0] == pytest.approx(shares[1])  # the same share of the distance left, every layer
        previous = layers
    first = steps[0][1]["fc1"] / 0.9
    assert first > 0.25  # front-loaded like a fixed rate: round 1 of 4 does more than a quarter


@pytest.mark.parametrize(
    "change,field",
    [
        ({"method": {"kind": "group_lasso"}}, "method.kind"),
        ({"method": {"kind": "magnitude", "layer_sparsity": {"fc1": 0.5}}}, "method.layer_sparsity"),
        ({"schedule": {"kind": "sensitivity", "sparsities": [0.5, 0.5]}}, "schedule.sparsities"),
        ({"schedule": {"kind": "sensitivity", "after": "finetune"}}, "schedule.after"),
        ({"schedule": {"kind": "sensitivity", "max_eval_images": 0}}, "schedule.max_eval_images"),
    ],
)
def test_sensitivity_spec_errors_name_the_field(change, field):
    data = {"model": "lenet300_100", "dataset": "digits", "method": {"kind": "magnitude"}}
    data["schedule"] = {"kind": "sensitivity"}
    data.update(change)
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert err.value.field == field, str(err.value)


def test_iterative_toward_a_map_needs_rounds_and_no_target():
    data = {"model": "lenet300_100", "dataset": "digits", "method": {"kind": "channel", "layer_sparsity": {"fc1": 0.5}}}
    with pytest.raises(SpecError) as err:
        parse_spec({**data, "schedule": {"kind": "iterative", "rounds": None, "target": 0.5}})
    fields = {e.field for e in getattr(err.value, "errors", [err.value])}
    assert {"schedule.rounds", "schedule.target"} <= fields

"""run_job end to end on digits, and `prunelab run` as a subprocess."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.spec import parse_spec
from worker.engine.data import load_dataset
from worker.engine.reporter import Cancelled
from worker.engine.runner import load_checkpoint_model, run_job, step_targets
from worker.engine.training import evaluate

ROOT = Path(__file__).resolve().parents[2]
PRUNELAB = Path(sys.executable).parent / "prunelab"


class Recorder:
    def __init__(self, cancel_after_steps=None):
        self.events = []
        self.progress = []
        self.cancel_after_steps = cancel_after_steps

    def on_baseline(self, metrics):
        self.events.append(("baseline", metrics))

    def on_step(self, step):
        self.events.append(("step", step))

    def on_progress(self, fraction, message):
        self.progress.append(fraction)

    def cancelled(self):
        return self.cancel_after_steps is not None and len(self.steps) >= self.cancel_after_steps

    @property
    def steps(self):
        return [e[1] for e in self.events if e[0] == "step"]

    @property
    def baseline(self):
        return [e[1] for e in self.events if e[0] == "baseline"][0]


def lenet_spec(schedule=None):
    return parse_spec(
        {
            "name": "t",
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 4, "optimizer": "adam", "lr": 0.002, "batch_size": 64},
            "method": {"kind": "block", "block_size": 2, "score": "mean_abs"},
            "schedule": schedule or {"kind": "iterative", "rate": 0.3, "rounds": 3, "finetune_epochs": 1},
            "measure": {"latency": False},
            "device": "cpu",
        }
    )


def run(spec, tmp_path, out="out", **kw):
    reporter = Recorder(kw.pop("cancel_after_steps", None))
    result = run_job(spec, tmp_path / out, reporter, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", **kw)
    return result, reporter


def test_iterative_block_run(tmp_path):
    result, rec = run(lenet_spec(), tmp_path)
    assert [e[0] for e in rec.events] == ["baseline", "step", "step", "step"]
    base = rec.baseline
    assert base["accuracy"] > 0.9 and base["cached"] is False and base["device"] == "cpu"
    assert base["params_total"] == 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    steps = rec.steps
    assert [s["index"] for s in steps] == [0, 1, 2]
    for r, step in enumerate(steps, start=1):
        assert step["target_sparsity"] == pytest.approx(1 - 0.7**r)
        assert abs(step["sparsity"] - step["target_sparsity"]) < 0.01  # within a block or so per layer
        assert step["accuracy"] > 0.8 and 0 <= step["accuracy_before_finetune"] <= 1
        # the drop as the one-shot vs iterative magnitude pruning study reports it: accuracy of the model
        # this round pruned minus the accuracy right after pruning
        accuracy_in = base["accuracy"] if r == 1 else steps[r - 2]["accuracy"]
        assert step["accuracy_drop"] == pytest.approx(accuracy_in - step["accuracy_before_finetune"])
        assert [layer["name"] for layer in step["layers"]] == ["fc1", "fc2", "fc3"]
        assert step["step"] == step["index"] + 1
    # best-and-last (the default): the last step's checkpoint and the best by validation accuracy
    best = max(steps, key=lambda s: (s["val_accuracy"], s["index"]))
    kept = {p.name for p in (tmp_path / "out" / "checkpoints").glob("step_*.pt")}
    assert kept == {f"step_{best['index']}.pt", "step_2.pt"}
    assert steps[0]["sparsity"] < steps[1]["sparsity"] < steps[2]["sparsity"]
    assert result["steps"] == steps and result["baseline"] == base
    json.dumps(result)  # the result is plain JSON
    assert rec.progress == sorted(rec.progress) and rec.progress[-1] == pytest.approx(1.0)
    # the stored model really is pruned: its zero weights match the step's sparsity
    model = load_checkpoint_model(tmp_path / "out" / steps[-1]["checkpoint"])
    weights = [model.fc1.weight, model.fc2.weight, model.fc3.weight]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(steps[-1]["sparsity"])
    # ...and its accuracies are the step's: test and validation splits as the job saw them
    splits = load_dataset("digits", tmp_path, "cpu", 0.1, seed=0)
    assert evaluate(model, splits.test)[0] == pytest.approx(steps[-1]["accuracy"])
    assert evaluate(model, splits.val)[0] == pytest.approx(steps[-1]["val_accuracy"])


def test_baseline_is_cached_and_reused(tmp_path):
    _, first = run(lenet_spec(), tmp_path, out="a")
    oneshot = lenet_spec({"kind": "oneshot", "sparsities": [0.5, 0.8], "finetune_epochs": 1})
    _, second = run(oneshot, tmp_path, out="b")
    assert second.baseline["cached"] is True
    assert second.baseline["accuracy"] == first.baseline["accuracy"]
    assert second.baseline["train_seconds"] == first.baseline["train_seconds"]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    # one-shot: each target from the same baseline
    assert [round(s["target_sparsity"], 6) for s in second.steps] == [0.5, 0.8]
    assert all(abs(s["sparsity"] - s["target_sparsity"]) < 0.01 for s in second.steps)
    assert all(
        s["accuracy_drop"] == pytest.approx(first.baseline["accuracy"] - s["accuracy_before_finetune"])
        for s in second.steps
    )
    # different training settings: a new baseline
    other = lenet_spec().model_copy(update={"seed": 1})
    _, third = run(other, tmp_path, out="c")
    assert third.baseline["cached"] is False
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_resume_gives_the_same_remaining_steps(tmp_path):
    spec = lenet_spec()
    _, full = run(spec, tmp_path, out="full", keep_checkpoints="all")
    resumed_dir = tmp_path / "resumed" / "checkpoints"
    resumed_dir.mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "checkpoints" / "step_0.pt", resumed_dir / "step_0.pt")
    _, rest = run(spec, tmp_path, out="resumed", completed_steps=1)
    assert rest.baseline["cached"] is True  # on_baseline is called on resume too
    assert [s["index"] for s in rest.steps] == [1, 2]
    for a, b in zip(full.steps[1:], rest.steps):
        for key in ("target_sparsity", "sparsity", "accuracy", "accuracy_before_finetune", "accuracy_drop", "loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
        assert [layer["mask"] for layer in a["layers"]] == [layer["mask"] for layer in b["layers"]]


def test_cancel_between_steps(tmp_path):
    with pytest.raises(Cancelled):
        run(lenet_spec(), tmp_path, cancel_after_steps=1)
    assert not (tmp_path / "out" / "checkpoints" / "step_1.pt").exists()


def test_magnitude_global_with_rewind(tmp_path):
    spec = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 3, "lr": 0.002},
            "method": {"kind": "magnitude", "scope": "global"},
            "schedule": {
                "kind": "iterative",
                "rate": 0.5,
                "rounds": 2,
                "after": "rewind",
                "rewind_epoch": 1,
                "finetune_epochs": 2,
            },
            "measure": {"latency": False},
            "device": "cpu",
        }
    )
    _, rec = run(spec, tmp_path)
    assert [round(s["target_sparsity"], 6) for s in rec.steps] == [0.5, 0.75]
    assert all(abs(s["sparsity"] - s["target_sparsity"]) < 0.002 for s in rec.steps)
    assert rec.steps[-1]["accuracy"] > 0.8
    per_layer = [layer["sparsity"] for layer in rec.steps[-1]["layers"]]
    assert max(per_layer) - min(per_layer) > 0.01  # global: layers end at different sparsities


def test_iterative_targets_follow_layer_rates_and_stop_at_target():
    spec = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "mnist",
            "method": {"kind": "block"},
            "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 16, "layer_rates": {"fc3": 0.1}},
        }
    )
    sizes = {"fc1": 784 * 300, "fc2": 300 * 100, "fc3": 1000}
    targets = step_targets(spec, sizes)
    assert len(targets) == 16
    assert targets[-1][1]["fc1"] == pytest.approx(1 - 0.8**16) and targets[-1][1]["fc3"] == pytest.approx(1 - 0.9**16)
    spec = parse_spec(
        {
            "model": "resnet18",
            "dataset": "cifar10",
            "method": {"kind": "magnitude", "scope": "global"},
            "schedule": {"kind": "iterative", "rate": 0.2, "rounds": None, "target": 0.91},
        }
    )
    targets = step_targets(spec, {"a": 10})
    assert [round(t, 2) for t, _ in targets] == [0.2, 0.36, 0.49, 0.59, 0.67, 0.74, 0.79, 0.83, 0.87, 0.89, 0.91]
    assert all(layers == {} for _, layers in targets)  # global scope spreads the overall target itself


def _prunelab(args, home, timeout=600):
    env = {**os.environ, "PRUNELAB_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(PRUNELAB), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def test_prunelab_run_the_block_pruning_example(tmp_path):
    """The shipped LeNet-300-100 2x2 block-pruning example, end to end through the console script."""
    proc = _prunelab(["run", "examples/lenet-digits-block2.yaml", "--out", str(tmp_path / "out")], tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert set(result) >= {"spec", "baseline", "steps", "device", "seconds"}
    assert result["spec"]["name"] == "lenet-digits-block2" and result["baseline"]["accuracy"] > 0.9
    steps = result["steps"]
    assert len(steps) == 10
    for step in steps:
        assert {"sparsity", "accuracy", "accuracy_before_finetune", "layers"} <= set(step)
        assert all({"name", "sparsity"} <= set(layer) for layer in step["layers"])
    assert steps[-1]["sparsity"] == pytest.approx(1 - 0.8**10, abs=0.01)
    assert steps[-1]["accuracy"] > 0.8
    assert (tmp_path / "out" / "checkpoints" / "step_9.pt").is_file()
    assert "done in" in proc.stdout
    # a later run with the same training settings reuses the cached baseline
    spec = yaml.safe_load((ROOT / "examples" / "lenet-digits-block2.yaml").read_text())
    spec["schedule"]["rounds"] = 1
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(spec))
    proc = _prunelab(["run", str(tmp_path / "short.yaml"), "--out", str(tmp_path / "again")], tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((tmp_path / "again" / "result.json").read_text())
    assert again["baseline"]["cached"] is True and again["baseline"]["accuracy"] == result["baseline"]["accuracy"]
    assert again["steps"][0]["sparsity"] == pytest.approx(steps[0]["sparsity"])


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda s: s.update(model="alexnet"), "model"),
        (lambda s: s["method"].update(block_size=0), "method.block_size"),
        (lambda s: s["schedule"].update(rate=1.5), "schedule.rate"),
        (lambda s: s["method"].update(layers=["fc7"]), "method.layers"),
    ],
)
def test_prunelab_run_bad_spec_one_line(tmp_path, change, field):
    spec = yaml.safe_load((ROOT / "examples" / "lenet-digits-block2.yaml").read_text())
    change(spec)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = _prunelab(["run", str(path), "--out", str(tmp_path / "out")], tmp_path / "home", timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), proc.stderr
    assert not (tmp_path / "out" / "result.json").exists()


def test_prunelab_run_missing_dataset_one_line(tmp_path):
    spec = yaml.safe_load((ROOT / "examples" / "lenet-digits-block2.yaml").read_text())
    spec["dataset"] = "mnist"
    path = tmp_path / "mnist.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = _prunelab(["run", str(path), "--out", str(tmp_path / "out")], tmp_path / "home", timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train-images-idx3-ubyte" in lines[0] and str(tmp_path / "home" / "data") in lines[0]


def test_channel_pruning_resumes_from_the_smaller_model(tmp_path):
    """Channel removal changes the shapes: the checkpoint keeps the smaller module, resume continues from it."""
    spec = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 3, "lr": 0.002},
            "method": {"kind": "channel", "importance": "l2"},
            "schedule": {"kind": "iterative", "rate": 0.3, "rounds": 2, "finetune_epochs": 1},
            "measure": {"latency": False},
            "device": "cpu",
        }
    )
    _, full = run(spec, tmp_path, out="full", keep_checkpoints="all")
    assert full.steps[1]["size_compact_bytes"] < full.steps[0]["size_compact_bytes"] < full.baseline["size_dense_bytes"]
    model = load_checkpoint_model(tmp_path / "full" / full.steps[0]["checkpoint"])
    assert model.fc1.out_features < 300
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "checkpoints" / "step_0.pt", tmp_path / "resumed" / "checkpoints" / "step_0.pt")
    _, rest = run(spec, tmp_path, out="resumed", completed_steps=1)
    assert [s["index"] for s in rest.steps] == [1]
    for key in ("sparsity", "accuracy", "size_compact_bytes"):
        assert rest.steps[0][key] == pytest.approx(full.steps[1][key], abs=1e-6), key


def test_channel_pruning_with_rewind_retrains_the_early_weights_of_the_survivors(tmp_path):
    spec = parse_spec(
        {
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 3, "lr": 0.002},
            "method": {"kind": "channel", "importance": "l1"},
            "schedule": {
                "kind": "oneshot",
                "sparsities": [0.5],
                "after": "rewind",
                "rewind_epoch": 1,
                "finetune_epochs": 2,
            },
            "measure": {"latency": False},
            "device": "cpu",
        }
    )
    _, result = run(spec, tmp_path)
    step = result.steps[0]
    assert step["sparsity"] == pytest.approx(0.5, abs=0.05)
    assert step["size_compact_bytes"] < result.baseline["size_dense_bytes"]
    assert step["accuracy"] > 0.5  # retrained from the rewound weights, not left untrained

"""`prunelab run` and sweeps: a sweep is refused with one line saying where it goes; a run on digits records
the training curve of its baseline and of every step's fine-tuning in result.json."""

import json
import math
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "examples" / "lenet-digits-block-sweep.yaml"


def test_run_refuses_a_sweep_with_one_line(tmp_path, prunelab, prunelab_env):
    out = tmp_path / "out"
    proc = prunelab("run", str(SWEEP), "--out", str(out), env=prunelab_env(tmp_path / "home"), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: sweep: "), lines
    assert "15 jobs" in lines[0] and "prunelab submit" in lines[0]
    assert not out.exists()
    # A mistake in the sweep is named like any other field.
    bad = yaml.safe_load(SWEEP.read_text())
    bad["sweep"]["method.block_sizee"] = [2]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = prunelab("run", str(path), "--out", str(out), env=prunelab_env(tmp_path / "home"), timeout=120)
    assert proc.returncode == 2 and "error: sweep.method.block_sizee: unknown field" in proc.stderr


def test_training_history_lands_in_result_json(tmp_path, prunelab, prunelab_env, small_spec):
    spec = small_spec(
        train={"epochs": 3}, schedule={"kind": "iterative", "rate": 0.3, "rounds": 2, "finetune_epochs": 2}
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    proc = prunelab("run", str(path), "--out", str(out), env=prunelab_env(tmp_path / "home"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    history = result["baseline"]["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert history[0]["loss"] is None
    assert all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in history[1:])
    assert all(0 <= h["val_accuracy"] <= 1 for h in history)
    assert history[3]["loss"] < history[1]["loss"]  # training lowers its loss on digits
    for step in result["steps"]:
        assert [h["epoch"] for h in step["history"]] == [0, 1, 2]
        assert all(0 <= h["val_accuracy"] <= 1 for h in step["history"])
        # The step keeps the best validation weights: its val_accuracy is the curve's best.
        assert step["val_accuracy"] == max(h["val_accuracy"] for h in step["history"])

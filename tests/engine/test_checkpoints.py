"""Disk use of a run: checkpoint retention, the spec stored once per job, the capped baseline cache."""

import json
import os
import shutil

import pytest
import torch

from core.spec import parse_spec
from worker.engine.reporter import Cancelled
from worker.engine.runner import dir_size_bytes, evict_baselines, load_checkpoint_model, run_job


class Recorder:
    def __init__(self, cancel_after_steps=None):
        self.steps = []
        self.cancel_after_steps = cancel_after_steps

    def on_baseline(self, metrics):
        self.baseline = metrics

    def on_step(self, step):
        self.steps.append(step)

    def on_progress(self, fraction, message):
        pass

    def cancelled(self):
        return self.cancel_after_steps is not None and len(self.steps) >= self.cancel_after_steps


def spec(seed=0, rounds=4):
    return parse_spec(
        {
            "name": "t",
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 3, "lr": 0.002},
            "method": {"kind": "block", "block_size": 2},
            "schedule": {"kind": "iterative", "rate": 0.3, "rounds": rounds, "finetune_epochs": 1},
            "measure": {"latency": False},
            "device": "cpu",
            "seed": seed,
        }
    )


def run(tmp_path, out, job_spec=None, cancel_after_steps=None, **kw):
    rec = Recorder(cancel_after_steps)
    result = run_job(
        job_spec or spec(), tmp_path / out, rec, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", **kw
    )
    return result, rec


def kept(run_dir):
    return sorted(int(p.stem[5:]) for p in (run_dir / "checkpoints").glob("step_*.pt"))


@pytest.mark.parametrize("policy", ["all", "last", "best-and-last"])
def test_retention_policies(tmp_path, policy):
    result, rec = run(tmp_path, "out", keep_checkpoints=policy)
    steps = rec.steps
    assert len(steps) == 4
    best = max(steps, key=lambda s: (s["val_accuracy"], s["index"]))["index"]
    expected = {"all": [0, 1, 2, 3], "last": [3], "best-and-last": sorted({best, 3})}[policy]
    assert kept(tmp_path / "out") == expected
    index = json.loads((tmp_path / "out" / "checkpoints" / "index.json").read_text())
    assert index["val_accuracy"] == {str(s["index"]): s["val_accuracy"] for s in steps}
    # what is left is loadable and is what the step reported
    for k in expected:
        model = load_checkpoint_model(tmp_path / "out" / steps[k]["checkpoint"])
        zeros = sum(int((getattr(model, n).weight == 0).sum()) for n in ("fc1", "fc2", "fc3"))
        total = sum(getattr(model, n).weight.numel() for n in ("fc1", "fc2", "fc3"))
        assert zeros / total == pytest.approx(steps[k]["sparsity"])


def test_unknown_retention_policy_names_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"keep_checkpoints: 'some'.*allowed: all, last, best-and-last"):
        run(tmp_path, "out", keep_checkpoints="some")


def test_the_spec_is_stored_once_per_job(tmp_path):
    job_spec = spec()
    run(tmp_path, "out", job_spec, keep_checkpoints="last")
    out = tmp_path / "out"
    assert json.loads((out / "spec.json").read_text()) == job_spec.model_dump(mode="json")
    ckpt = torch.load(out / "checkpoints" / "step_3.pt", weights_only=True)
    assert "spec" not in ckpt and ckpt["step"]["step"] == 4
    # a checkpoint moved away from its run directory loads with the spec given
    shutil.copy(out / "checkpoints" / "step_3.pt", tmp_path / "alone.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint_model(tmp_path / "alone.pt")
    model = load_checkpoint_model(tmp_path / "alone.pt", spec=job_spec)
    assert torch.equal(model.fc1.weight, load_checkpoint_model(out / "checkpoints" / "step_3.pt").fc1.weight)


def test_resume_after_retention_is_bit_identical(tmp_path):
    """A job stopped after step 1 (best-and-last deleted the others) resumes from what retention kept and
    gives exactly the steps of an uninterrupted run."""
    _, full = run(tmp_path, "full")
    with pytest.raises(Cancelled):
        run(tmp_path, "stopped", cancel_after_steps=2)
    assert 1 in kept(tmp_path / "stopped")  # the last reported step, which resume starts from
    _, rest = run(tmp_path, "stopped", completed_steps=2)
    assert [s["index"] for s in rest.steps] == [2, 3]
    for a, b in zip(full.steps[2:], rest.steps):
        for key in ("target_sparsity", "sparsity", "accuracy", "accuracy_before_finetune", "val_accuracy", "loss"):
            assert a[key] == b[key], key
        assert [layer["mask"] for layer in a["layers"]] == [layer["mask"] for layer in b["layers"]]
    assert kept(tmp_path / "stopped") == kept(tmp_path / "full")
    a = load_checkpoint_model(tmp_path / "full" / "checkpoints" / "step_3.pt")
    b = load_checkpoint_model(tmp_path / "stopped" / "checkpoints" / "step_3.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_disk_bytes_is_the_run_directory(tmp_path):
    result, _ = run(tmp_path, "out", keep_checkpoints="all")
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert result["disk_bytes"] == sum(p.stat().st_size for p in files) == dir_size_bytes(tmp_path / "out")
    assert dir_size_bytes(tmp_path / "nothing here") == 0


def test_evict_baselines_least_recently_used_first(tmp_path):
    paths = []
    for i, name in enumerate(["old", "mid", "new"]):
        path = tmp_path / f"{name}.pt"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
        paths.append(path)
    (tmp_path / "other.ptabc.tmp").write_bytes(b"x" * 1000)  # a save in progress is not an entry
    assert evict_baselines(tmp_path, None, keep=paths[0]) == []
    assert evict_baselines(tmp_path, 250, keep=paths[2]) == [paths[0]]
    # the entry in use is never evicted, even when it is the oldest
    os.utime(paths[1], (900, 900))
    assert evict_baselines(tmp_path, 0, keep=paths[1]) == [paths[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid.pt", "other.ptabc.tmp"]


def test_baseline_cache_cap_and_use_time(tmp_path):
    one = 1e-9  # 1 byte: room for nothing but the baseline in use
    run(tmp_path, "a", spec(seed=0, rounds=1))
    (first,) = (tmp_path / "cache").glob("*.pt")
    os.utime(first, (1000, 1000))
    _, rec = run(tmp_path, "b", spec(seed=0, rounds=1))
    assert rec.baseline["cached"] is True and first.stat().st_mtime > 1000  # a hit counts as a use
    run(tmp_path, "c", spec(seed=1, rounds=1), baseline_cache_gb=one)
    (second,) = (tmp_path / "cache").glob("*.pt")
    assert second != first  # the older baseline was evicted, the one in use stays
    _, rec = run(tmp_path, "d", spec(seed=0, rounds=1), baseline_cache_gb=None)
    assert rec.baseline["cached"] is False  # evicted: trained again
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2

"""`prunelab run` as a person uses it: the installed console script as a subprocess, bad input as one line
per problem with exit status 2, no directory left behind by a failed run, steps counted from 1."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lenet-digits-block2.yaml"


def example(**changes) -> dict:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec.update(changes)
    return spec


def write(path: Path, data) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else yaml.safe_dump(data).encode())
    return path


def error_lines(proc) -> list[str]:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), proc.stderr
    return lines


DEEP_FLOW = b"name: " + b"[" * 10_000 + b"]" * 10_000 + b"\n"
DEEP_BLOCK = b"name:\n" + b"".join(b"  " * i + b"a:\n" for i in range(1, 10_000))


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"name: caf\xe9\nmodel: lenet300_100\n", "is not UTF-8 text (byte 0xe9 at offset 9)"),
        (DEEP_FLOW, "nested too deeply"),
        (DEEP_BLOCK, "nested too deeply"),
        (b"name: [unclosed\n", "is not valid YAML"),
        (b"- a list\n", "must be a mapping"),
    ],
    ids=["not-utf8", "deep-flow", "deep-block", "bad-yaml", "not-a-mapping"],
)
def test_unreadable_spec_is_one_line(tmp_path, prunelab, prunelab_env, content, expected):
    spec = write(tmp_path / "spec.yaml", content)
    out = tmp_path / "out"
    proc = prunelab("run", str(spec), "--out", str(out), env=prunelab_env(tmp_path / "home"), timeout=120)
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("error: spec: ") and expected in lines[0], lines
    assert not out.exists()


def test_missing_spec_file_and_a_directory_as_spec(tmp_path, prunelab, prunelab_env):
    env = prunelab_env(tmp_path / "home")
    for path in (tmp_path / "missing.yaml", tmp_path):
        proc = prunelab("run", str(path), "--out", str(tmp_path / "out"), env=env, timeout=120)
        (line,) = error_lines(proc)
        assert line.startswith(f"error: spec: cannot read {path}: "), line
    assert not (tmp_path / "out").exists()


def test_out_pointing_at_a_file(tmp_path, prunelab, prunelab_env):
    target = tmp_path / "taken"
    target.write_text("keep me")
    spec = write(tmp_path / "spec.yaml", example())
    env = prunelab_env(tmp_path / "home")
    (line,) = error_lines(prunelab("run", str(spec), "--out", str(target), env=env, timeout=120))
    assert line.startswith("error: --out: ") and "not a directory" in line
    (line,) = error_lines(prunelab("run", str(spec), "--out", str(target / "sub"), env=env, timeout=120))
    assert line.startswith("error: --out: cannot create ")
    assert target.read_text() == "keep me"


def test_every_mistake_of_a_spec_is_reported(tmp_path, prunelab, prunelab_env):
    spec = example(model="alexnet", color="blue")
    spec["train"]["epochs"] = -1
    spec["schedule"]["rate"] = 1.5
    path = write(tmp_path / "spec.yaml", spec)
    proc = prunelab("run", str(path), "--out", str(tmp_path / "out"), env=prunelab_env(tmp_path / "home"))
    fields = [line.split(": ")[1] for line in error_lines(proc)]
    assert sorted(fields) == ["color", "model", "schedule.rate", "train.epochs"], proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_setting_names_the_environment_variable(tmp_path, prunelab, prunelab_env):
    path = write(tmp_path / "spec.yaml", example())
    env = prunelab_env(tmp_path / "home", PRUNELAB_KEEP_CHECKPOINTS="some")
    (line,) = error_lines(prunelab("run", str(path), "--out", str(tmp_path / "out"), env=env))
    assert line.startswith("error: PRUNELAB_KEEP_CHECKPOINTS: ") and "best-and-last" in line


def test_a_failed_run_removes_only_the_directory_it_created(tmp_path, prunelab, prunelab_env):
    path = write(tmp_path / "spec.yaml", example(dataset="mnist"))  # no MNIST files here: fails after mkdir
    env = prunelab_env(tmp_path / "home")
    out = tmp_path / "new" / "deeper" / "out"
    (line,) = error_lines(prunelab("run", str(path), "--out", str(out), env=env, timeout=300))
    assert line.startswith("error: dataset: ")
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    error_lines(prunelab("run", str(path), "--out", str(existing), env=env, timeout=300))
    assert existing.is_dir() and (existing / "notes.txt").read_text() == "mine"


def test_steps_are_counted_from_one(tmp_path, prunelab, prunelab_env):
    spec = example()
    spec["train"]["epochs"] = 3
    spec["schedule"]["rounds"] = 3
    spec["measure"] = {"latency": False}
    path = write(tmp_path / "spec.yaml", spec)
    out = tmp_path / "out"
    proc = prunelab("run", str(path), "--out", str(out), env=prunelab_env(tmp_path / "home"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.findall(r"step (\d+): sparsity", proc.stdout) == ["1", "2", "3"], proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert [(s["index"], s["step"]) for s in result["steps"]] == [(0, 1), (1, 2), (2, 3)]
    assert json.loads((out / "spec.json").read_text()) == result["spec"]
    assert result["disk_bytes"] > 0
    # best-and-last by default: the last step's checkpoint and the best by validation accuracy
    best = max(result["steps"], key=lambda s: (s["val_accuracy"], s["index"]))["index"]
    assert {p.name for p in (out / "checkpoints").glob("step_*.pt")} == {f"step_{best}.pt", "step_2.pt"}

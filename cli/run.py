"""`prunelab run SPEC.yaml --out DIR`: one experiment here, no server; a progress bar and DIR/result.json
(and DIR/spec.json, DIR/checkpoints/). Steps are numbered from 1 on screen ("step" in result.json; "index"
stays 0-based)."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path

import yaml
from pydantic import ValidationError
from tqdm import tqdm

from core.spec import JobSpec, SpecError, spec_errors
from worker.engine.reporter import Cancelled

BAR_STEPS = 1000


class TqdmReporter:
    """Progress bar over the whole job; one printed line per step; Ctrl-C asks the engine to stop."""

    def __init__(self, out_dir: Path, spec_data: dict):
        self._bar: tqdm | None = None  # drawn on first use, so an early error stays a single line
        self.out_dir = out_dir
        self.result = {"spec": spec_data, "baseline": None, "steps": [], "device": None, "seconds": None}
        self.stop = False

    @property
    def bar(self) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(
                total=BAR_STEPS, bar_format="{l_bar}{bar}| {elapsed}<{remaining}", file=sys.stderr, dynamic_ncols=True
            )
        return self._bar

    def on_baseline(self, metrics: dict) -> None:
        self.result["baseline"] = metrics
        self.result["device"] = metrics.get("device")
        cached = " (cached)" if metrics.get("cached") else ""
        self.bar.write(
            f"baseline{cached}: accuracy {metrics['accuracy']:.4f}, "
            f"{metrics['params_total']} parameters, device {metrics.get('device')}"
        )

    def on_step(self, step: dict) -> None:
        self.result["steps"].append(step)
        self.bar.write(
            f"step {step['index'] + 1}: sparsity {step['sparsity']:.4f} (target {step['target_sparsity']:.4f}), "
            f"accuracy {step['accuracy']:.4f} (right after pruning {step['accuracy_before_finetune']:.4f})"
        )
        write_result(self.out_dir, self.result)  # a long run leaves a usable partial result behind

    def on_progress(self, fraction: float, message: str) -> None:
        self.bar.set_description_str(message[:60], refresh=False)
        self.bar.update(max(0, int(fraction * BAR_STEPS) - self.bar.n))

    def cancelled(self) -> bool:
        return self.stop

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def write_result(out_dir: Path, result: dict) -> None:
    tmp = out_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out_dir / "result.json")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(*messages: str) -> int:
    """`error: <field>: <message>` on stderr, one line per message; exit status 2."""
    for message in messages:
        print(f"error: {_one_line(message)}", file=sys.stderr)
    return 2


def read_spec(spec_path: Path) -> JobSpec | list[str]:
    """The validated spec in a YAML file, or every problem found, each as `<field>: <message>`."""
    try:
        raw = spec_path.read_bytes()
    except OSError as exc:
        return [f"spec: cannot read {spec_path}: {exc.strerror or exc}"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"spec: {spec_path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"spec: {spec_path} is not valid YAML: {exc}"]
    except RecursionError:
        return [f"spec: {spec_path} is nested too deeply to read"]
    if not isinstance(data, dict):
        return ["spec: must be a mapping of fields (name, model, dataset, train, method, schedule, ...)"]
    if "sweep" in data:
        return _sweep_refused(spec_path, data)
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        return [str(err) for err in spec_errors(exc.errors())]
    except SpecError as exc:
        return [str(exc)]
    except RecursionError:
        return [f"spec: {spec_path} is nested too deeply to validate"]


def _sweep_refused(spec_path: Path, data: dict) -> list[str]:
    """`prunelab run` runs one experiment; a sweep is many: its problems, or one line saying where it goes."""
    from core.sweep import expand

    try:
        count = len(expand(data))
    except SpecError as exc:
        return [str(exc)]
    return [
        f"sweep: {spec_path} is a sweep of {count} jobs and `prunelab run` runs one experiment; submit it to a "
        f"server as one group: `prunelab submit {spec_path} --server URL` (or `prunelab serve` and then "
        "`prunelab submit` to http://127.0.0.1:8000)"
    ]


def _first_missing(path: Path) -> Path | None:
    """The outermost of path and its parents that does not exist yet (what mkdir(parents=True) creates)."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _settings():
    """The settings, or a one-line message naming the environment variable that is wrong."""
    from core.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        return [f"PRUNELAB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]


def run_spec_file(spec_path: Path, out_dir: Path) -> int:
    """Run the spec in a YAML file; write out_dir/result.json. Exit code 0; 2 for bad input (a bad spec,
    missing data, an unusable --out, each problem one line `error: <field>: <message>` on stderr); 130 when
    interrupted. A failed run removes the --out directory it created (never one that was there before)."""
    spec_path, out_dir = Path(spec_path), Path(out_dir)
    spec = read_spec(spec_path)
    if isinstance(spec, list):
        return _error(*spec)
    if out_dir.exists() and not out_dir.is_dir():
        return _error(f"--out: {out_dir} exists and is not a directory; give a directory (created when missing)")
    settings = _settings()
    if isinstance(settings, list):
        return _error(*settings)
    created = _first_missing(out_dir.absolute())
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"--out: cannot create {out_dir}: {exc.strerror or exc}")
    ok = False
    try:
        status = _run(spec, out_dir, settings)
        ok = status in (0, 130)  # an interrupted run keeps the steps done so far
        return status
    finally:
        if not ok and created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _run(spec: JobSpec, out_dir: Path, settings) -> int:
    from worker.engine.data import DatasetMissing
    from worker.engine.models import ModelUnavailable
    from worker.engine.pruning.channel import ChannelPruningRefused
    from worker.engine.runner import dir_size_bytes, run_job

    reporter = TqdmReporter(out_dir, spec.model_dump(mode="json"))

    def interrupt(signum, frame):  # first Ctrl-C: stop cleanly between batches; second: the default
        reporter.stop = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, interrupt)
    started = time.perf_counter()
    try:
        result = run_job(
            spec,
            out_dir,
            reporter,
            data_dir=settings.data_dir,
            cache_dir=settings.cache_dir,
            keep_checkpoints=settings.keep_checkpoints,
            baseline_cache_gb=settings.baseline_cache_gb,
        )
    except SpecError as exc:
        return _error(str(exc))
    except DatasetMissing as exc:
        return _error(f"dataset: {exc}")
    except (ModelUnavailable, ChannelPruningRefused) as exc:  # each names its field
        return _error(str(exc))
    except (Cancelled, KeyboardInterrupt):
        reporter.close()
        reporter.result["seconds"] = time.perf_counter() - started
        reporter.result["disk_bytes"] = dir_size_bytes(out_dir)
        write_result(out_dir, reporter.result)
        print(f"cancelled; steps done so far are in {out_dir / 'result.json'}", file=sys.stderr)
        return 130
    finally:
        reporter.close()
        signal.signal(signal.SIGINT, previous)
    result["seconds"] = time.perf_counter() - started
    write_result(out_dir, result)
    steps = result["steps"]
    last = f", last step sparsity {steps[-1]['sparsity']:.4f} accuracy {steps[-1]['accuracy']:.4f}" if steps else ""
    print(f"done in {result['seconds']:.1f} s: {len(steps)} steps{last}; wrote {out_dir / 'result.json'}")
    return 0

"""`prunelab run SPEC.yaml --out DIR`: one experiment here, no server; a progress bar and DIR/result.json."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from core.spec import SpecError, parse_spec
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
            f"step {step['index']}: sparsity {step['sparsity']:.4f} (target {step['target_sparsity']:.4f}), "
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


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_spec_file(spec_path: Path, out_dir: Path) -> int:
    """Run the spec in a YAML file; write out_dir/result.json. Exit code 0, or 2 for a bad spec or missing
    data (one line `error: <field>: <message>` on stderr), 130 when interrupted."""
    spec_path, out_dir = Path(spec_path), Path(out_dir)
    try:
        data = yaml.safe_load(spec_path.read_text())
    except OSError as exc:
        return _error(f"spec: cannot read {spec_path}: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        return _error(f"spec: {spec_path} is not valid YAML: {' '.join(str(exc).split())}")
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        return _error(str(exc))

    from core.settings import get_settings
    from worker.engine.data import DatasetMissing
    from worker.engine.runner import run_job

    settings = get_settings()
    out_dir.mkdir(parents=True, exist_ok=True)
    reporter = TqdmReporter(out_dir, spec.model_dump(mode="json"))

    def interrupt(signum, frame):  # first Ctrl-C: stop cleanly between batches; second: the default
        reporter.stop = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, interrupt)
    started = time.perf_counter()
    try:
        result = run_job(spec, out_dir, reporter, data_dir=settings.data_dir, cache_dir=settings.cache_dir)
    except SpecError as exc:
        return _error(str(exc))
    except DatasetMissing as exc:
        return _error(f"dataset: {exc}")
    except (Cancelled, KeyboardInterrupt):
        reporter.close()
        reporter.result["seconds"] = time.perf_counter() - started
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

"""How long each form preset takes: time to its first point (the first stored pruning step, or for a
sensitivity scan its first scanned layer) and to the end, through `prunelab run` as a user runs it.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_presets.py [--only NAME,...] [--max-seconds 240]
        [--machine "2-core CPU"] [--out core/preset_timings.json]

Each preset runs in its own temporary PRUNELAB_HOME, so its baseline cache starts cold (the baseline is
trained first): that cold run is what is reported. It then runs again on the warm cache up to its first
point (the baseline loaded from the cache), recorded as warm_first_point_s. A run still going after
--max-seconds is stopped once it has its first point; its total_s is then null and over_s says how long
it had run. Results are merged into --out ({name: {first_point_s, total_s, machine, ...}}), which
core/presets.py reads for the presets' labels. The load average at the start of each run is recorded: on a
shared machine the numbers are only as good as the machine was quiet.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.presets import PRESETS  # noqa: E402

PRUNELAB = [sys.executable, "-c", "from cli.main import app; app(prog_name='prunelab')"]
# stdout: "step 1: sparsity ..." once the first step is stored; stderr (the progress bar's description):
# "sensitivity: layer k/N ..." once a scan's layer k is stored (the bar redraws at most every 0.1 s, so the
# first one drawn may be a later layer; a run that ends before any is drawn counts its end).
FIRST_POINT = re.compile(rb"^step 1: |sensitivity: layer \d+/", re.MULTILINE)


def run_once(spec_file: Path, out_dir: Path, home: Path, max_seconds: float, stop_at_first: bool) -> dict:
    """One `prunelab run`; {first_point_s, total_s, over_s, returncode}."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PRUNELAB_HOME": str(home),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*PRUNELAB, "run", str(spec_file), "--out", str(out_dir)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = threading.Event()
    seen = {"first_point_s": None}
    tails = {"stdout": b"", "stderr": b""}

    def read(stream, key: str) -> None:
        while chunk := stream.read1(4096):
            tails[key] = (tails[key] + chunk)[-4000:]
            if not first.is_set() and FIRST_POINT.search(tails[key].replace(b"\r", b"\n")):
                seen["first_point_s"] = time.perf_counter() - started
                first.set()

    readers = [threading.Thread(target=read, args=(proc.stdout, "stdout"), daemon=True)]
    readers.append(threading.Thread(target=read, args=(proc.stderr, "stderr"), daemon=True))
    for t in readers:
        t.start()
    over = None
    while proc.poll() is None:
        elapsed = time.perf_counter() - started
        if first.is_set() and (stop_at_first or elapsed > max_seconds):
            over = None if stop_at_first else elapsed
            proc.terminate()  # Ctrl-C-like stop; partial results are not used
            break
        time.sleep(0.2)
    proc.wait()
    for t in readers:
        t.join(5)
    total = time.perf_counter() - started
    if proc.returncode not in (0, None) and over is None and not stop_at_first:
        raise RuntimeError(f"{spec_file.stem}: prunelab run failed:\n{tails['stderr'].decode(errors='replace')}")
    return {
        "first_point_s": seen["first_point_s"] if seen["first_point_s"] is not None else total,
        "total_s": None if (over is not None or stop_at_first) else total,
        "over_s": over,
    }


def bench(preset: dict, max_seconds: float, machine: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="prunelab-bench-") as tmp:
        tmp = Path(tmp)
        spec_file = tmp / f"{preset['name']}.yaml"
        spec_file.write_text(yaml.safe_dump(preset["spec"]))
        load = os.getloadavg()
        cold = run_once(spec_file, tmp / "cold", tmp / "home", max_seconds, stop_at_first=False)
        warm = run_once(spec_file, tmp / "warm", tmp / "home", max_seconds, stop_at_first=True)
    entry = {
        "first_point_s": round(cold["first_point_s"], 1),
        "total_s": None if cold["total_s"] is None else round(cold["total_s"], 1),
        "machine": machine,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "1")),
        "warm_first_point_s": None if warm["first_point_s"] is None else round(warm["first_point_s"], 1),
        "load_average": [round(v, 2) for v in load],
        "measured": time.strftime("%Y-%m-%d"),
    }
    if cold["over_s"] is not None:
        entry["over_s"] = round(cold["over_s"], 1)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma separated preset names (default: all)")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="stop a run after its first point past this")
    ap.add_argument("--machine", default="2-core CPU", help="what the numbers were measured on, as labels say it")
    ap.add_argument("--out", type=Path, default=ROOT / "core" / "preset_timings.json")
    args = ap.parse_args()
    names = [p["name"] for p in PRESETS]
    chosen = args.only.split(",") if args.only else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        sys.exit(f"--only: unknown preset {unknown[0]!r}; allowed: {', '.join(names)}")
    timings = json.loads(args.out.read_text()) if args.out.exists() else {}
    for preset in PRESETS:
        if preset["name"] not in chosen:
            continue
        entry = bench(preset, args.max_seconds, args.machine)
        timings[preset["name"]] = entry
        print(json.dumps({preset["name"]: entry}), flush=True)
        args.out.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")  # kept after each preset


if __name__ == "__main__":
    main()

"""`prunelab allocate`: per-layer sparsities from a sensitivity scan for one goal, their predicted effect,
and a ready spec (YAML) that runs them, from a `prunelab run` result directory or a server's job.

    prunelab allocate runs/lenet-sens --target-sparsity 0.9 --spec-out alloc.yaml
    prunelab allocate --server http://host:8000 12 --target-flops 4x --iterative

Bad input is one line on stderr (`error: <field>: <message>`) and exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from core.sensitivity import AllocationError, allocate_job, read_goal

OPTIONS = {"target_sparsity": "--target-sparsity", "flop_reduction": "--target-flops", "max_drop": "--max-drop"}


def _error(message: str, code: int = 2) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return code


def _from_result(result_dir: Path) -> tuple[list[dict], dict, dict]:
    """(grid rows, baseline, spec) of a sensitivity run's result.json; ValueError naming what is wrong."""
    path = result_dir / "result.json" if result_dir.is_dir() else result_dir
    try:
        result = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"result: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"result: {path} is not valid JSON: {exc}") from None
    if not isinstance(result, dict) or (result.get("spec") or {}).get("schedule", {}).get("kind") != "sensitivity":
        raise ValueError(f"result: {path} is not the result of a sensitivity run (schedule.kind: sensitivity)")
    rows, baseline = result.get("sensitivity") or [], result.get("baseline") or {}
    if not rows or baseline.get("val_accuracy") is None:
        raise ValueError(f"result: {path} has no sensitivity grid yet (the run did not finish)")
    return rows, baseline, result["spec"]


def _from_server(server: str, token: str | None, job_id: str, goal: str, value: Any, iterative: bool) -> dict:
    import httpx

    from cli.client import describe_http_error

    if not job_id.isdigit():
        raise ValueError(f"job_id: with --server give a job id (a number), got {job_id!r}")
    params = {goal: str(value), "iterative": "true" if iterative else "false"}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{server.rstrip('/')}/api/jobs/{int(job_id)}/allocation"
    try:
        response = httpx.get(url, params=params, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise ValueError(f"server: cannot reach {server}: {exc}") from None
    if response.status_code != 200:
        try:
            first = (response.json().get("errors") or [{}])[0]
        except ValueError:
            first = {}
        if first.get("field") and first.get("message"):
            raise AllocationError(first["field"].removeprefix("query."), first["message"])
        raise ValueError(f"server: {describe_http_error(response)}")
    return response.json()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def report(allocation: dict) -> str:
    """The per-layer map and the predictions, as a table."""
    lines = [f"{'layer':<24} {'sparsity':>9} {'weights':>10} {'pred. drop':>11}"]
    for layer in allocation["layers"]:
        lines.append(
            f"{layer['layer']:<24} {_pct(layer['sparsity']):>9} {layer['params']:>10} {_pct(layer['drop']):>11}"
        )
    p = allocation["predicted"]
    reduction = p.get("flop_reduction")
    lines += [
        "",
        f"predicted: sparsity {_pct(p['sparsity'])} of the scanned layers' weights, "
        f"FLOPs {'/' + format(reduction, '.2f') if reduction else 'all removed'}"
        + (f" ({p['model_flops'] - p['flops_removed']:.0f} of {p['model_flops']})" if p.get("model_flops") else "")
        + f", kept weights {p['size_bytes'] / 1024:.1f} KiB (fp32)",
        f"predicted accuracy drop {_pct(p['accuracy_drop'])} (validation {p['val_accuracy']:.4f} from "
        f"{allocation['baseline_val_accuracy']:.4f}; the per-layer drops added: layers were measured alone)",
    ]
    return "\n".join(lines)


def allocate_command(
    source: str,
    server: str | None,
    token: str | None,
    target_sparsity: str | None,
    target_flops: str | None,
    max_drop: str | None,
    iterative: bool,
    spec_out: Path | None,
) -> int:
    try:
        goal, value = read_goal(target_sparsity, target_flops, max_drop)
        if server:
            allocation = _from_server(server, token, source, goal, value, iterative)
        else:
            rows, baseline, spec = _from_result(Path(source))
            allocation = allocate_job(rows, baseline, spec, goal, value, iterative=iterative)
    except AllocationError as exc:
        message = exc.message
        for goal_name, option in OPTIONS.items():
            message = message.replace(goal_name, option)
        return _error(f"{OPTIONS.get(exc.field, exc.field)}: {message}")
    except ValueError as exc:
        return _error(str(exc))
    print(report(allocation))
    if spec_out is not None:
        header = "# per-layer sparsities from a sensitivity scan"
        if allocation.get("source_job_id"):
            header += f" (job {allocation['source_job_id']}; submit with ?source_job_id= to link back)"
        text = header + "\n" + yaml.safe_dump(allocation["spec"], sort_keys=False, allow_unicode=True)
        try:
            spec_out.write_text(text)
        except OSError as exc:
            return _error(f"--spec-out: cannot write {spec_out}: {exc.strerror or exc}")
        print(f"wrote {spec_out}")
    return 0

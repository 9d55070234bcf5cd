"""`prunelab submit` and `prunelab status`: the command line against a running server, over its HTTP API.

Server and token come from --server / --token or PRUNELAB_SERVER / PRUNELAB_TOKEN. Every failure ends as
one line on stderr ("error: ...") and a non-zero exit status; the job page URL is the only thing `submit`
prints on stdout, so `URL=$(prunelab submit spec.yaml)` works.
"""

import sys
import time
from pathlib import Path
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8000"
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
# How long `--wait` keeps retrying while the server cannot be reached (a restart) before giving up.
UNREACHABLE_GRACE_S = 60.0


class ClientError(Exception):
    """One line for the user; `status` is the HTTP status when the server answered with an error."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Unreachable(ClientError):
    """No answer from the server (down, restarting, wrong address)."""


def job_page_url(server: str, job_id: int) -> str:
    return f"{server.rstrip('/')}/#/run/{job_id}"


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def describe_http_error(response: httpx.Response) -> str:
    """One line: status, reason and the API's detail (for a 422, the field it names and its message)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = [str(p) for p in first.get("loc", []) if p != "body"]
        detail = (".".join(loc) + ": " if loc else "") + str(first.get("msg", ""))
    elif detail is None:
        detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    line = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {detail}" if detail else "")
    if response.status_code == 401:
        line += " (give --token or set PRUNELAB_TOKEN; `prunelab user add` makes one)"
    return line


class Client:
    def __init__(self, server: str, token: str | None, timeout_s: float = 30.0):
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout_s)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise Unreachable(f"cannot reach {self.server}: {err.__class__.__name__}: {err}") from None
        if response.status_code >= 400:
            raise ClientError(describe_http_error(response), response.status_code)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.server}{path} did not answer JSON: is this a PruneLab server?") from None

    def close(self) -> None:
        self.http.close()


def load_spec(path: Path) -> dict[str, Any]:
    """Read a YAML spec and validate it here, so a typo costs no round trip."""
    import yaml

    from core.spec import SpecError, parse_spec
    from core.sweep import expand

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ClientError(f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ClientError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    try:
        if isinstance(data, dict) and "sweep" in data:
            expand(data)  # every combination checked here (the server's PRUNELAB_MAX_SWEEP_JOBS may be lower)
        else:
            parse_spec(data)
    except SpecError as err:
        raise ClientError(f"{path}: {err}") from None
    return data


class JobEnded(ClientError):
    """The job ended without succeeding (failed or cancelled), or vanished while we waited."""


def submit(spec_path: Path, server: str, token: str | None, wait: bool, interval_s: float = 1.0) -> int:
    client = Client(server, token)
    job = None
    try:
        spec = load_spec(spec_path)
        if "sweep" in spec:
            return _submit_sweep(client, spec, wait, interval_s)
        job = client.request("POST", "/api/jobs", json=spec)
        print(job_page_url(client.server, job["id"]), flush=True)
        if not wait:
            return 0
        return follow(client, job, interval_s)
    except KeyboardInterrupt:
        if job is not None:
            print(f"stopped waiting; the job goes on (`prunelab status {job['id']}`)", file=sys.stderr)
        return 130
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1 if isinstance(err, JobEnded) else 2
    finally:
        client.close()


def _submit_sweep(client: Client, spec: dict[str, Any], wait: bool, interval_s: float) -> int:
    """A spec with `sweep`: one group of jobs (POST /api/groups); prints the group's compare page and each
    job's page; --wait follows the jobs one after another (1 when any of them did not succeed)."""
    created = client.request("POST", "/api/groups", json=spec)
    group, jobs = created["group"], created["jobs"]
    print(f"{client.server}/#/compare?group={group['id']}", flush=True)
    for job in jobs:
        print(f"{job_page_url(client.server, job['id'])}  {job['name']}", flush=True)
    if not wait:
        return 0
    failed = []
    for job in jobs:
        try:
            follow(client, job, interval_s)
        except JobEnded as err:
            print(f"error: {err}", file=sys.stderr)
            failed.append(job["id"])
    if failed:
        print(f"error: {len(failed)} of {len(jobs)} jobs of group {group['id']} did not succeed", file=sys.stderr)
        return 1
    return 0


def follow(client: Client, job: dict[str, Any], interval_s: float = 1.0) -> int:
    """Show the job's progress as a bar until it ends; 0 if it succeeded, else raise JobEnded."""
    from tqdm import tqdm

    job_id = job["id"]
    unreachable_since: float | None = None
    with tqdm(
        total=100,
        unit="%",
        desc=f"job {job_id} {job['status']}",
        file=sys.stderr,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
    ) as bar:
        while True:
            bar.set_description_str(f"job {job_id} {job['status']}")
            bar.set_postfix_str((job.get("message") or "")[:60], refresh=False)
            bar.n = round(100 * (job.get("progress") or 0.0))
            bar.refresh()
            if job["status"] in FINAL_STATUSES:
                break
            time.sleep(interval_s)
            try:
                job = client.request("GET", f"/api/jobs/{job_id}")
                unreachable_since = None
            except Unreachable:
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > UNREACHABLE_GRACE_S:
                    raise
            except ClientError as err:
                if err.status == 404:
                    raise JobEnded(f"job {job_id} is gone (deleted while we waited)") from None
                raise
    if job["status"] != "succeeded":
        reason = job.get("error") or job.get("message") or ""
        raise JobEnded(f"job {job_id} {job['status']}" + (f": {reason.strip().splitlines()[-1]}" if reason else ""))
    print(f"job {job_id} succeeded: {_summary_line(job)}", file=sys.stderr)
    return 0


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _summary_line(job: dict[str, Any]) -> str:
    s = job.get("summary") or {}
    parts = [
        f"{s.get('steps', 0)} steps",
        f"sparsity {_fmt(s.get('sparsity'))}",
        f"accuracy {_fmt(s.get('accuracy'))} (best {_fmt(s.get('best_accuracy'))}, "
        f"baseline {_fmt(s.get('baseline_accuracy'))})",
    ]
    if s.get("speedup") is not None:
        parts.append(f"speedup {s['speedup']:.2f}x")
    return ", ".join(parts)


def status(
    job_id: int | None,
    server: str,
    token: str | None,
    *,
    owner: str | None = None,
    status_filter: str | None = None,
    limit: int = 20,
) -> int:
    client = Client(server, token)
    try:
        if job_id is not None:
            print(_job_details(client, client.request("GET", f"/api/jobs/{job_id}")))
            return 0
        params = {"limit": limit, "sort": "-created_at"}
        if owner:
            params["owner"] = owner
        if status_filter:
            params["status"] = status_filter
        page = client.request("GET", "/api/jobs", params=params)
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        client.close()
    items = page.get("items", [])
    if not items:
        print("No jobs." if not page.get("total") else f"No jobs on this page (total {page['total']}).")
        return 0
    rows = [
        (
            str(j["id"]),
            j["status"],
            f"{round(100 * (j.get('progress') or 0))}%",
            j.get("name", "")[:30],
            j.get("model", ""),
            j.get("dataset", ""),
            j.get("method", ""),
            _fmt((j.get("summary") or {}).get("sparsity")),
            _fmt((j.get("summary") or {}).get("accuracy")),
            j.get("owner") or "-",
            (j.get("created_at") or "")[:19],
        )
        for j in items
    ]
    print(
        format_table(
            (
                "ID",
                "STATUS",
                "PROGRESS",
                "NAME",
                "MODEL",
                "DATASET",
                "METHOD",
                "SPARSITY",
                "ACCURACY",
                "OWNER",
                "CREATED",
            ),
            rows,
        )
    )
    if page.get("total", len(items)) > len(items):
        print(f"({len(items)} of {page['total']} jobs; --limit shows more)")
    return 0


def _job_details(client: Client, job: dict[str, Any]) -> str:
    lines = [
        ("job", f"{job['id']}  {job.get('name', '')}"),
        ("url", job_page_url(client.server, job["id"])),
        ("status", f"{job['status']}  {round(100 * (job.get('progress') or 0))}%  {job.get('message') or ''}".rstrip()),
        ("owner", job.get("owner") or "-"),
        ("run", f"{job.get('model')} on {job.get('dataset')}, {job.get('method')} / {job.get('schedule')}"),
        ("created", job.get("created_at") or "-"),
        ("started", job.get("started_at") or "-"),
        ("finished", job.get("finished_at") or "-"),
        ("summary", _summary_line(job)),
    ]
    if job.get("tags"):
        lines.append(("tags", ", ".join(job["tags"])))
    if job.get("error"):
        lines.append(("error", job["error"].strip().splitlines()[-1]))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)

"""Browser-facing protections, as plain ASGI middleware (no per-request threadpool hop):

- Host check: a request whose Host is not an allowed host answers 400, so a page that rebinds its DNS name to
  127.0.0.1 cannot talk to an embedded server (DNS rebinding).
- Same-origin writes when auth is off: a page on another origin can send a bodyless POST without a preflight;
  writes whose Origin differs from the Host, or that the browser marks as cross-site (Sec-Fetch-Site), answer
  403. Clients that send neither header (curl, the `prunelab` command) are not browsers and pass.
- Security headers on every response: a self-only Content-Security-Policy with frame-ancestors 'none',
  nosniff, a referrer policy.
Also: a per-client limit on failed authentications, and a log filter that redacts `access_token`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Plotly sets inline styles on the SVG it draws, hence 'unsafe-inline' for styles only; scripts are self only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_allowed_hosts(bound_host: str) -> list[str]:
    """The bound host; for a loopback or wildcard bind also the other loopback names."""
    if bound_host in ("0.0.0.0", "::", ""):
        return ["*"]
    return list(dict.fromkeys([bound_host, *LOOPBACK_HOSTS])) if bound_host in LOOPBACK_HOSTS else [bound_host]


def host_name(host_header: str) -> str:
    """`example.com:8000` -> `example.com`; `[::1]:8000` -> `::1`."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _origin_host(origin: str) -> str | None:
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^/]+)$", origin.strip().lower())
    return match.group(1) if match else None


def _json_response(status: int, detail: str, field: str | None) -> tuple[dict, dict]:
    item = {"field": field, "message": detail, "allowed": None, "value": None}
    body = json.dumps({"detail": detail, "errors": [item]}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class SecurityMiddleware:
    def __init__(self, app, allowed_hosts: list[str], same_origin_writes: bool):
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.same_origin_writes = same_origin_writes

    def _refusal(self, scope) -> tuple[int, str, str] | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        if not self.any_host and host_name(host.lower()) not in self.allowed_hosts:
            allowed = ", ".join(sorted(self.allowed_hosts))
            return 400, f"host {host!r} is not served here (allowed: {allowed}; PRUNELAB_ALLOWED_HOSTS)", "host"
        if self.same_origin_writes and scope.get("method", "GET") not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and _origin_host(origin) != host.lower():
                return 403, f"cross-origin write refused: origin {origin!r} is not this server", "origin"
            if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return 403, "cross-site write refused (Sec-Fetch-Site)", "origin"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            start, body = _json_response(*refusal)
            await send_with_headers(start)
            await send(body)
            return
        await self.app(scope, receive, send_with_headers)


class FailedAuthLimiter:
    """At most `max_failures` failed authentications per client in a sliding window of `window_s` seconds;
    beyond that the client waits (429 with Retry-After) until its oldest failure leaves the window."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, max_clients: int = 10_000):
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds this client must wait before trying a token again, or None."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if not times or len(times) < self.max_failures:
                return None
            return max(1, int(times[0] + self.window_s - now + 0.999))

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                # Forget clients whose failures all left the window; a flood of distinct addresses beyond
                # that resets the table rather than growing it without bound.
                self._failures = {c: t for c, t in self._failures.items() if self._recent(c, now)}
                if len(self._failures) >= self.max_clients:
                    self._failures.clear()
            self._failures.setdefault(client, deque()).append(now)


class RedactTokens(logging.Filter):
    """Replaces the value of `access_token=` in a log record (uvicorn's access log prints the query string)."""

    PATTERN = re.compile(r"(access_token=)[^&\s\"']+")

    def _clean(self, value):
        return self.PATTERN.sub(r"\1[redacted]", value) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(self._clean(a) for a in record.args)
        if isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = self._clean(record.msg)
        return True


REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "")


def install_log_redaction() -> None:
    """On uvicorn's loggers and the root logger, and on their handlers (a handler's filter also sees the
    records of child loggers that propagate to it). Idempotent; call again after logging is reconfigured."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactTokens) for f in target.filters):
                target.addFilter(RedactTokens())

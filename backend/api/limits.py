"""Request size limit (413) as plain ASGI middleware: checks Content-Length, and counts chunked bodies.
Both answer the API's error body (backend.api.schemas.ErrorBody)."""

import json

from backend.api.deps import api_error


class BodySizeLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        self.allowed = f"at most {max_bytes} bytes (PRUNELAB_MAX_REQUEST_BYTES)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            message = (
                f"request body too large: {int(declared)} bytes, the limit is {self.max_bytes} "
                "(PRUNELAB_MAX_REQUEST_BYTES)"
            )
            item = {"field": None, "message": message, "allowed": self.allowed, "value": int(declared)}
            body = json.dumps({"detail": message, "errors": [item]}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions met while reading the body; its handler writes the body.
                    raise api_error(
                        413, f"request body too large; the limit is {self.max_bytes} bytes", allowed=self.allowed
                    )
            return message

        await self.app(scope, counting_receive, send)

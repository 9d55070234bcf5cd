"""Request size limit (413) as plain ASGI middleware: checks Content-Length, and counts chunked bodies."""

import json

from fastapi import HTTPException


class BodySizeLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = json.dumps(
                {
                    "detail": f"request body too large: {int(declared)} bytes, "
                    f"the limit is {self.max_bytes} (PRUNELAB_MAX_REQUEST_BYTES)"
                }
            ).encode()
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
                    # FastAPI re-raises HTTPExceptions met while reading the body.
                    raise HTTPException(413, f"request body too large; the limit is {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)

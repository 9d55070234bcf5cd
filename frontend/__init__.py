"""The dashboard: one HTML page, plain ES modules and CSS, and Plotly.js from the installed `plotly` package.

No build step and no network: everything the page loads is served by the API process itself.

static/js/: main.js (router, top bar), api.js (requests, tokens, error bodies), live.js (event stream and
fallback polling), constants.js (statuses, method names and colours, poll intervals), format.js (numbers and
spec summaries), ui.js (DOM helpers, badges, banners), charts.js (Plotly loading, layouts, plotText for user
strings), figures/ (Plotly figure builders), tables/, form/ (New run fields, errors, spec defaults), run/ (run
page parts), pages/ (one thin module per route composing the rest).
"""

import gzip
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@lru_cache(maxsize=1)
def _plotly_gzip() -> bytes:
    # 4.8 MB minified -> ~1.4 MB: compressed once per process, kept in memory.
    return gzip.compress(plotly_js_path().read_bytes(), compresslevel=6)


class _RevalidatedStatic(StaticFiles):
    """Static files the browser must revalidate (cheap 304s), so a new version is never served stale."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_frontend(app: FastAPI) -> None:
    """Serve the page at /, its modules and styles at /static/, Plotly.js at /static/vendor/plotly.min.js."""

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                _plotly_gzip(), media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"}
            )
        return FileResponse(plotly_js_path(), media_type="text/javascript", headers=headers)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    # Registered after the Plotly route: a mount matches its whole prefix.
    app.mount("/static", _RevalidatedStatic(directory=STATIC_DIR), name="static")

"""How fast the dashboard's pages render with many stored runs, in a real Chromium against `prunelab serve`.

    .venv/bin/python bench/bench_pages.py [--runs 100] [--repeat 5]

Starts `prunelab serve --no-worker` on a temporary PRUNELAB_HOME, stores --runs finished runs through
backend.store (8 steps each, real encoded masks), then times each page from navigation to "drawn"
(the table rows present, or the Plotly figure holding every trace). "cold" is a fresh browser context
(Plotly.js fetched and parsed); "warm" re-renders the route in the same tab (what switching pages costs).
Prints a table; the target is under 2 s for the list and the compare page with 100 runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from prunelab_server import CHROMIUM_ARGS, VIEWPORT, start_server, stop_server  # noqa: E402
from seed_runs import insert_runs  # noqa: E402


def timed(page, url: str, ready: str, *, fresh: bool) -> float:
    """Milliseconds from navigation to `ready` being true: a page load, or a hash-route change in the tab."""
    started = time.perf_counter()
    if fresh:
        page.goto(url)
    else:
        page.evaluate("h => { location.hash = h; }", url.split("#", 1)[1])
    page.wait_for_function(ready, timeout=60_000)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is needed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "home", worker=False)
        try:
            t0 = time.perf_counter()
            ids = insert_runs(server.database_url, args.runs, steps=8)
            print(f"stored {len(ids)} runs in {time.perf_counter() - t0:.1f} s (server {server.base_url})\n")
            base = server.base_url
            all_ids = ",".join(map(str, ids))
            pages = [
                (
                    f"runs list ({min(len(ids), 100)} rows)",
                    f"{base}/#/runs",
                    f"() => document.querySelectorAll('#runs-table tbody tr').length === {min(len(ids), 100)}",
                ),
                (
                    "compare 2 runs",
                    f"{base}/#/compare?ids={ids[0]},{ids[1]}",
                    "() => document.querySelector('#compare-chart')?.data?.length === 3",
                ),
                (
                    f"compare {len(ids)} runs",
                    f"{base}/#/compare?ids={all_ids}",
                    f"() => document.querySelector('#compare-chart')?.data?.length === {len(ids) + 1}"
                    f" && document.querySelectorAll('#compare-table tbody tr').length === {len(ids)}",
                ),
                (
                    "run page (8 steps, heatmap)",
                    f"{base}/#/run/{ids[0]}",
                    "() => document.querySelector('#heatmap')?.dataset.step === '7'"
                    " && document.querySelector('#curve')?.data?.[0].x.length === 8",
                ),
                ("new run form", f"{base}/#/new", "() => !!document.querySelector('#f-method-block_size')"),
            ]
            rows = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
                for name, url, ready in pages:
                    cold = []
                    for _ in range(max(1, args.repeat // 2)):
                        context = browser.new_context(viewport=VIEWPORT)
                        page = context.new_page()
                        cold.append(timed(page, url, ready, fresh=True))
                        context.close()
                    context = browser.new_context(viewport=VIEWPORT)
                    page = context.new_page()
                    timed(page, url, ready, fresh=True)
                    reload = []  # the browser cache holds Plotly.js and the modules, as for a returning user
                    for _ in range(max(1, args.repeat // 2)):
                        page.goto("about:blank")
                        reload.append(timed(page, url, ready, fresh=True))
                    warm = []
                    for _ in range(args.repeat):
                        page.evaluate("location.hash = '#/elsewhere'")  # the not-found page: leaves the route
                        page.wait_for_selector("text=No page at")
                        warm.append(timed(page, url, ready, fresh=False))
                    context.close()
                    rows.append(
                        (name, statistics.median(cold), statistics.median(reload), statistics.median(warm), max(warm))
                    )
                browser.close()
        finally:
            stop_server(server)

    print(f"{'page':34} {'first visit':>12} {'cached load':>12} {'route change':>13} {'(max)':>8}")
    print("-" * 84)
    for name, cold, cached, warm, worst in rows:
        print(f"{name:34} {cold:9.0f} ms {cached:9.0f} ms {warm:10.0f} ms {worst:6.0f} ms")
    print("\nfirst visit: new browser context (Plotly.js, 4.8 MB, fetched gzipped and parsed); cached load: the page")
    print("opened again with the browser cache warm; route change: another page of the app in an open tab.")
    print(
        "Each is the median over the repeats; the machine's load average was", open("/proc/loadavg").read().split()[0]
    )


if __name__ == "__main__":
    main()

"""The README's pictures: the run page and the compare page of stored runs (tests/browser/seed_runs.py), taken
with Playwright in Debian's Chromium from the real `prunelab serve`. Not a test:

    .venv/bin/python tests/browser/make_screenshots.py   # writes docs/screenshot.png and docs/compare.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import sync_playwright  # noqa: E402
from prunelab_server import CHROMIUM_ARGS, start_server, stop_server  # noqa: E402
from seed_runs import insert_runs  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
VIEWPORT = {"width": 1440, "height": 1000}


def main() -> None:
    server = start_server(Path(tempfile.mkdtemp(prefix="prunelab-shots-")), worker=False)
    try:
        ids = insert_runs(server.database_url, 12, steps=10)  # block, magnitude, channel, ... (10 steps each)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            page.goto(f"{server.base_url}/#/run/{ids[3]}")  # block pruning, 2x2 blocks
            page.wait_for_function("() => document.querySelector('#heatmap')?.dataset.layer === 'fc1'")
            page.click("#steps-table tbody tr[data-step='6']")
            page.wait_for_function("() => document.querySelector('#heatmap')?.dataset.step === '6'")
            page.select_option("#mask-layer", "fc2")  # 100 x 300 weights: wider than tall, as the page draws it
            page.wait_for_function("() => document.querySelector('#heatmap')?.dataset.layer === 'fc2'")
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(500)  # Plotly's transitions settle
            page.screenshot(path=str(DOCS / "screenshot.png"))

            compared = [ids[0], ids[1], ids[2], ids[4], ids[6]]
            page.goto(f"{server.base_url}/#/compare?ids={','.join(map(str, compared))}")
            page.wait_for_function(
                f"() => document.querySelector('#compare-chart')?.data?.length === {len(compared) + 1}"
            )
            page.wait_for_selector("#params-diff")
            page.wait_for_timeout(500)
            page.screenshot(path=str(DOCS / "compare.png"), full_page=True)
            browser.close()
    finally:
        stop_server(server)
    print(f"wrote {DOCS / 'screenshot.png'} and {DOCS / 'compare.png'}")


if __name__ == "__main__":
    main()

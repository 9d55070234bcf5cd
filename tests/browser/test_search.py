"""The runs list's search box: typing filters the table by run name (any case), the URL keeps it, and
"clear filters" empties it."""

from urllib.parse import quote

from playwright.sync_api import expect


def test_search_box_filters_runs_by_name(stored_server, page):
    with stored_server.api() as api:
        expected = api.get("/api/jobs", params={"q": "magnitude-1", "limit": 500}).json()
        everything = api.get("/api/jobs").json()["total"]
    wanted = {job["id"] for job in expected["items"]}
    assert 1 < len(wanted) < 100  # seed-magnitude-1, -10, -13, ...: a real filter, not everything
    page.goto(f"{stored_server.base_url}/#/runs")
    page.wait_for_selector("#runs-table")
    page.fill("#run-search", "MAGNITUDE-1")  # any case; no Enter needed

    expect(page.locator("#runs-table tbody tr")).to_have_count(len(wanted))
    expect(page.locator(".stale")).to_have_count(0)
    shown = {
        int(i) for i in page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => r.dataset.jobId)")
    }
    assert shown == wanted
    assert all(
        "magnitude-1" in name for name in page.eval_on_selector_all(".run-name", "els => els.map(e => e.textContent)")
    )
    assert f"q={quote('MAGNITUDE-1')}" in page.url
    expect(page.locator("#runs-count")).to_have_text(f"{len(wanted)} runs match")

    page.fill("#run-search", "no-run-has-this-name")
    page.wait_for_selector(".empty")
    page.reload()  # the search is in the URL: kept
    page.wait_for_selector(".empty")
    assert page.input_value("#run-search") == "no-run-has-this-name"
    page.click("#filters .link-button")  # clear filters
    expect(page.locator("#runs-count")).to_have_text(f"{everything} runs")
    expect(page.locator("#run-search")).to_have_value("")

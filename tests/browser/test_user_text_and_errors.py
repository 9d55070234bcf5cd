"""User strings are text on every page (never markup, in the DOM or in Plotly), and the API's error bodies
(the structured {"detail", "errors": [...]} and FastAPI's older shapes) reach the place they concern."""

import json
import re

from playwright.sync_api import expect
from seed_runs import insert_named_run

INVALID = re.compile(r"\binvalid\b")
MARKUP_NAME = '<a href="https://example.com">official results</a><br><b>big</b>'
MARKUP_TAG = "<img src=x onerror=alert(1)>"


def test_markup_in_a_run_name_is_text_everywhere(stored_server, page):
    job_id = insert_named_run(stored_server.database_url, MARKUP_NAME, tags=(MARKUP_TAG,))
    other = stored_server.run_ids[0]

    page.goto(f"{stored_server.base_url}/#/compare?ids={other},{job_id}")
    page.wait_for_function("() => document.querySelector('#compare-chart')?.data?.length === 3")
    legend = page.locator("#compare-chart .legend")
    expect(legend).to_contain_text('<a href="https://example.com">')
    assert legend.locator("a").count() == 0
    assert page.locator("#compare-chart a[href='https://example.com']").count() == 0
    texts = page.eval_on_selector_all("#compare-chart .legend .legendtext", "els => els.map(e => e.textContent)")
    assert f"#{job_id} {MARKUP_NAME}" in texts, texts
    expect(page.locator(f"#compare-table tr[data-job-id='{job_id}'] .name-cell a")).to_have_text(
        f"#{job_id} {MARKUP_NAME}"
    )

    page.goto(f"{stored_server.base_url}/#/run/{job_id}")
    expect(page.locator("#run-head h1")).to_have_text(MARKUP_NAME)
    expect(page.locator("#run-head .tag")).to_have_text(MARKUP_TAG)
    assert page.locator("#run-head b:has-text('big'), #run-head img").count() == 0

    page.goto(f"{stored_server.base_url}/#/runs?q=official")
    row = page.locator(f"tr[data-job-id='{job_id}']")
    expect(row.locator(".run-name")).to_have_text(MARKUP_NAME)
    assert row.locator("a[href='https://example.com'], img").count() == 0


def test_every_bad_field_is_marked_next_to_it(stored_server, page):
    page.goto(f"{stored_server.base_url}/#/new")
    page.select_option("#f-method-kind", "block")
    page.fill("#f-method-block_size", "0")
    page.fill("#f-schedule-rate", "1.5")
    page.fill("#f-train-epochs", "0")
    body = json.loads(page.text_content("#spec-preview"))
    with stored_server.api() as api:
        answer = api.post("/api/jobs", json=body)
    assert answer.status_code == 422, answer.text
    page.click("#submit-run")
    expect(page.locator("[data-error-for='method.block_size']")).not_to_be_empty()
    # Whatever the API lists, each problem sits next to its own field.
    fields = page.evaluate(
        "body => import('/static/js/api.js').then(m => m.errorsOf(body).map(e => e.field))", answer.json()
    )
    for field in fields:
        slot = page.locator(f"[data-error-for='{field}']")
        expect(slot).not_to_be_empty()
        expect(page.locator(f"[data-field='{field}']")).to_have_class(INVALID)
    expect(page.locator(".field.invalid")).to_have_count(len(set(fields)))

    # The structured body lists one entry per bad field: all three are marked, none only in the form's box.
    structured = {
        "detail": "3 fields are invalid",
        "errors": [
            {"field": "method.block_size", "message": "must be at least 1", "allowed": "1 to 4096"},
            {"field": "schedule.rate", "message": "must be below 1", "allowed": "0 < rate < 1", "value": 1.5},
            {"field": "train.epochs", "message": "must be at least 1", "allowed": None},
        ],
    }
    placed = page.evaluate(
        """async body => {
            const [{ errorsOf }, { clearErrors, showErrors }] = await Promise.all([
                import('/static/js/api.js'), import('/static/js/form/errors.js')]);
            const form = document.querySelector('#new-run-form'), box = document.querySelector('#form-error');
            clearErrors(form, box);
            return showErrors(form, box, errorsOf(body));
        }""",
        structured,
    )
    assert placed == 3
    expect(page.locator("[data-error-for='method.block_size']")).to_have_text("must be at least 1 (allowed: 1 to 4096)")
    expect(page.locator("[data-error-for='schedule.rate']")).to_have_text("must be below 1 (allowed: 0 < rate < 1)")
    expect(page.locator("[data-error-for='train.epochs']")).to_have_text("must be at least 1")
    expect(page.locator(".field.invalid")).to_have_count(3)
    expect(page.locator("#form-error")).to_be_hidden()


def test_compare_drops_deleted_runs(stored_server, page):
    kept = stored_server.run_ids[5]
    gone = insert_named_run(stored_server.database_url, "deleted-before-compare")
    with stored_server.api() as api:
        assert api.delete(f"/api/jobs/{gone}").status_code in (200, 204)
    page.goto(f"{stored_server.base_url}/#/compare?ids={kept},{gone}")
    page.wait_for_url(f"**/#/compare?ids={kept}")
    expect(page.locator("#compare-table tbody tr")).to_have_count(1)

    # The missing ids are read from the structured 404 (errors[0].value) and from the older text alike.
    found = page.evaluate(
        """() => Promise.all([import('/static/js/api.js'), import('/static/js/pages/compare.js')]).then(([a, c]) => [
            c.missingIds(new a.ApiError(404, 'jobs not found', {detail: 'jobs not found',
                errors: [{field: 'ids', message: 'jobs not found', value: [7, 9]}]})),
            c.missingIds(new a.ApiError(404, 'jobs not found: 3, 5', {detail: 'jobs not found: 3, 5'})),
        ])"""
    )
    assert found == [[7, 9], [3, 5]]

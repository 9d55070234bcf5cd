"""Team mode (PRUNELAB_AUTH=tokens) in the browser: the token is asked for once and kept, 401 and 403 show as
clear banners, never as a broken page; the top bar says who is signed in; buttons the server would refuse
(viewers writing, users changing others' runs) are not shown; the runs list filters by owner."""

import pytest
from playwright.sync_api import expect
from prunelab_server import VIEWPORT, start_server, stop_server

from backend import store
from backend.db import session_scope

SPEC = {
    "name": "alice-run",
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 2},
    "tags": ["team"],
}


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve-team"), worker=False, env={"PRUNELAB_AUTH": "tokens"})
    with session_scope(server.database_url) as session:
        _, server.alice = store.create_user(session, "alice", "user")
        _, server.vera = store.create_user(session, "vera", "viewer")
        _, server.otto = store.create_user(session, "otto", "user")
        _, server.ada = store.create_user(session, "ada", "admin")
    with server.api(server.alice) as api:
        response = api.post("/api/jobs", json=SPEC)
        assert response.status_code == 201, response.text
        server.job_id = response.json()["id"]
    yield server
    stop_server(server)


def page_with_token(browser, token: str | None):
    context = browser.new_context(viewport=VIEWPORT)
    if token:
        context.add_init_script(f"localStorage.setItem('prunelab.token', {token!r})")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.set_default_timeout(20_000)
    return page


def test_the_token_is_asked_for_once_and_kept(team_server, browser, artifacts):
    page = page_with_token(browser, None)
    page.goto(f"{team_server.base_url}/#/runs")
    dialog = page.wait_for_selector("#token-dialog[open]")
    assert "token" in page.text_content("#token-reason").lower()
    page.screenshot(path=str(artifacts / "team-token-dialog.png"))
    page.click("#token-dialog button[value=cancel]")
    expect(page.locator("[data-banner='auth']")).to_contain_text("401")
    assert not dialog.is_visible()
    page.wait_for_timeout(2500)  # an observation window: the list polls again meanwhile, and asks no second time
    assert page.query_selector("#token-dialog[open]") is None

    page.click("[data-banner='auth'] .link-button")
    page.fill("#token-input", team_server.alice)
    page.click("#token-dialog button[value=ok]")
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert page.evaluate("localStorage.getItem('prunelab.token')") == team_server.alice
    expect(page.locator("#auth-button")).to_have_text("Sign out")
    page.reload()  # kept: no dialog this time
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert page.query_selector("#token-dialog[open]") is None
    assert "alice" in page.text_content(f"tr[data-job-id='{team_server.job_id}']")
    assert not page.errors, page.errors
    page.context.close()


def test_a_refused_token_is_asked_again(team_server, browser):
    page = page_with_token(browser, "pl_revoked-or-mistyped")
    page.goto(f"{team_server.base_url}/#/runs")
    page.wait_for_selector("#token-dialog[open]")
    assert "invalid" in page.text_content("#token-reason")
    page.fill("#token-input", team_server.alice)
    page.click("#token-dialog button[value=ok]")
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert not page.errors, page.errors
    page.context.close()


WRITE_BUTTONS = ["#cancel-run", "#retry-run", "#delete-run", "#clone-run"]


def test_a_viewer_sees_no_write_buttons(team_server, browser, artifacts):
    page = page_with_token(browser, team_server.vera)
    page.goto(f"{team_server.base_url}/#/runs")
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert page.text_content("#whoami") == "vera · viewer"
    assert page.text_content("#auth-button") == "Sign out"
    assert page.query_selector("#new-run-button") is None
    assert not page.is_visible("[data-nav=new]")
    assert "viewer" in page.get_attribute("#read-only-note", "title")

    page.goto(f"{team_server.base_url}/#/run/{team_server.job_id}")  # alice's queued run: cancellable by her
    page.wait_for_selector("#run-head h1")
    for selector in WRITE_BUTTONS:
        assert page.query_selector(selector) is None, selector
    assert "viewer" in page.get_attribute("#read-only-note", "title")
    assert page.is_visible("#curve") and page.is_visible("#download-csv")  # reading still works
    page.screenshot(path=str(artifacts / "team-viewer-read-only.png"))

    page.goto(f"{team_server.base_url}/#/new")  # typed by hand: the form shows, submitting is disabled
    page.wait_for_selector("#submit-run")
    assert page.is_disabled("#submit-run")
    assert "viewer" in page.get_attribute("#submit-run", "title")
    assert not page.errors, page.errors
    page.context.close()


def test_a_refused_write_still_shows_a_403_banner(team_server, browser):
    # The buttons are gone, but the server decides: a write that gets through is a banner, not a broken page.
    page = page_with_token(browser, team_server.vera)
    page.goto(f"{team_server.base_url}/#/run/{team_server.job_id}")
    page.wait_for_selector("#run-head h1")
    status = page.evaluate(f"""() => import('/static/js/api.js')
        .then(m => m.api('/api/jobs/{team_server.job_id}/cancel', {{method: 'POST'}}))
        .then(() => 200, err => err.status)""")
    assert status == 403
    banner = page.locator("[data-banner='forbidden']")
    expect(banner).to_contain_text("403")
    expect(banner).to_contain_text("viewer")
    assert page.is_visible("#curve") and page.is_visible("#run-head h1")
    assert not page.errors, page.errors
    page.context.close()


@pytest.mark.parametrize("who, sees_changes", [("alice", True), ("otto", False), ("ada", True)])
def test_only_the_owner_or_an_admin_sees_cancel_and_delete(team_server, browser, who, sees_changes):
    page = page_with_token(browser, getattr(team_server, who))
    page.goto(f"{team_server.base_url}/#/run/{team_server.job_id}")
    page.wait_for_selector("#clone-run")  # every user may start runs
    role = "admin" if who == "ada" else "user"
    assert page.text_content("#whoami") == f"{who} · {role}"
    assert (page.query_selector("#cancel-run") is not None) == sees_changes
    assert (page.query_selector("#delete-run") is not None) == sees_changes
    if not sees_changes:
        assert "belongs to alice" in page.get_attribute("#read-only-note", "title")
    page.goto(f"{team_server.base_url}/#/runs")
    page.wait_for_selector("#new-run-button")
    assert not page.errors, page.errors
    page.context.close()


def test_anonymous_reader_sees_no_write_buttons(tmp_path_factory, browser):
    server = start_server(
        tmp_path_factory.mktemp("serve-public"),
        worker=False,
        env={"PRUNELAB_AUTH": "tokens", "PRUNELAB_PUBLIC_READ": "true"},
    )
    try:
        with session_scope(server.database_url) as session:
            _, alice = store.create_user(session, "alice", "user")
        with server.api(alice) as api:
            job_id = api.post("/api/jobs", json=SPEC).json()["id"]
        page = page_with_token(browser, None)
        page.goto(f"{server.base_url}/#/run/{job_id}")
        page.wait_for_selector("#run-head h1")
        assert page.text_content("#whoami") == "not signed in"
        assert page.text_content("#auth-button") == "Sign in"
        assert page.query_selector("#token-dialog[open]") is None  # reading needs no token here
        for selector in WRITE_BUTTONS:
            assert page.query_selector(selector) is None, selector
        page.goto(f"{server.base_url}/#/runs")
        page.wait_for_selector(f"tr[data-job-id='{job_id}']")
        assert page.query_selector("#new-run-button") is None and not page.is_visible("[data-nav=new]")
        assert not page.errors, page.errors
        page.context.close()
    finally:
        stop_server(server)


def test_runs_list_filters_by_owner(team_server, browser):
    page = page_with_token(browser, team_server.alice)
    page.goto(f"{team_server.base_url}/#/runs?owner=alice")
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert page.input_value("input[name=owner]") == "alice"
    page.fill("input[name=owner]", "vera")
    page.press("input[name=owner]", "Enter")
    expect(page.locator(".empty")).to_be_visible()
    assert "owner=vera" in page.url
    page.context.close()

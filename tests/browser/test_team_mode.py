"""Team mode (PRUNELAB_AUTH=tokens) in the browser: the token is asked for once and kept, 401 and 403 show as
clear banners, never as a broken page; the runs list filters by owner."""
import pytest

from backend import store
from backend.db import session_scope
from prunelab_server import VIEWPORT, start_server, stop_server

SPEC = {"name": "alice-run", "model": "lenet300_100", "dataset": "digits", "method": {"kind": "block", "block_size": 2},
        "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 2}, "tags": ["team"]}


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve-team"), worker=False, env={"PRUNELAB_AUTH": "tokens"})
    with session_scope(server.database_url) as session:
        _, server.alice = store.create_user(session, "alice", "user")
        _, server.vera = store.create_user(session, "vera", "viewer")
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
    banner = page.wait_for_selector("[data-banner='auth']")
    assert "401" in banner.text_content()
    assert not dialog.is_visible()
    page.wait_for_timeout(2500)  # the list polls again meanwhile: no second dialog
    assert page.query_selector("#token-dialog[open]") is None

    page.click("[data-banner='auth'] .link-button")
    page.fill("#token-input", team_server.alice)
    page.click("#token-dialog button[value=ok]")
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert page.evaluate("localStorage.getItem('prunelab.token')") == team_server.alice
    assert page.text_content("#auth-button") == "Sign out"
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


def test_a_viewer_gets_a_403_banner_not_a_broken_page(team_server, browser, artifacts):
    page = page_with_token(browser, team_server.vera)
    page.goto(f"{team_server.base_url}/#/run/{team_server.job_id}")
    page.click("#cancel-run")
    banner = page.wait_for_selector("[data-banner='forbidden']")
    assert "403" in banner.text_content() and "viewer" in banner.text_content()
    assert page.is_visible("#curve") and page.is_visible("#run-head h1")
    page.screenshot(path=str(artifacts / "team-viewer-403.png"))

    page.goto(f"{team_server.base_url}/#/new")
    page.wait_for_selector("#submit-run")
    page.click("#submit-run")
    assert "viewer" in page.wait_for_selector("#form-error:not([hidden])").text_content()
    assert not page.errors, page.errors
    page.context.close()


def test_runs_list_filters_by_owner(team_server, browser):
    page = page_with_token(browser, team_server.alice)
    page.goto(f"{team_server.base_url}/#/runs?owner=alice")
    page.wait_for_selector(f"tr[data-job-id='{team_server.job_id}']")
    assert page.input_value("input[name=owner]") == "alice"
    page.fill("input[name=owner]", "vera")
    page.press("input[name=owner]", "Enter")
    page.wait_for_selector(".empty")
    assert "owner=vera" in page.url
    page.context.close()

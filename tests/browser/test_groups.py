"""Groups in the browser: a stored 5 x 2 sweep (block sizes 2..6, seeds 0 and 1) written through backend.store
like the worker does. The runs list filters by group (kept in the URL), Compare opens the whole group and draws
runs that differ only in seed as one mean curve with a +- std band (5 curves, listed with n in the table), the
run page draws the training curves, and the New run form's Sweep rows read values strictly."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect
from prunelab_server import start_server, stop_server
from seed_runs import make_steps

from backend import store
from backend.db import session_scope
from core.spec import parse_spec
from core.sweep import expand

SWEEP = {"method.block_size": [2, 3, 4, 5, 6], "seed": [0, 1]}
STEPS = 6


def history(epochs: int, start: float, rng) -> list[dict]:
    acc = [min(0.99, start + 0.25 * (1 - 0.6**e) + rng.normal(0, 0.003)) for e in range(epochs + 1)]
    return [{"epoch": e, "loss": None if e == 0 else 1.2 * 0.6**e + 0.05, "val_accuracy": a} for e, a in enumerate(acc)]


def store_group(database_url: str) -> tuple[int, list[int]]:
    spec = {
        "name": "lenet-block-sweep",
        "model": "lenet300_100",
        "dataset": "digits",
        "train": {"epochs": 4},
        "method": {"kind": "block", "block_size": 2},
        "schedule": {"kind": "iterative", "rate": 0.2, "rounds": STEPS, "finetune_epochs": 2},
        "sweep": SWEEP,
    }
    specs = expand(spec)
    with session_scope(database_url) as session:
        group, jobs = store.create_group_within_limit(
            session, spec["name"], SWEEP, [parse_spec(s) for s in specs], None, 1000
        )
        for job, data in zip(jobs, specs):
            rng = np.random.default_rng(job.id)
            base = 0.97 - 0.004 * data["method"]["block_size"] + rng.normal(0, 0.003)
            steps = make_steps("block", data, STEPS, rng, base)
            store.set_status(session, job.id, "running")
            store.set_baseline(
                session,
                job.id,
                {"accuracy": base, "val_accuracy": base, "loss": 0.1, "history": history(4, 0.6, rng), "cached": False},
            )
            for step in steps:
                store.add_step(session, job.id, {**step, "history": history(2, step["accuracy_before_finetune"], rng)})
            store.set_status(session, job.id, "succeeded")
        return group.id, [j.id for j in jobs]


@pytest.fixture(scope="module")
def group_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve-groups"), worker=False)
    server.group_id, server.job_ids = store_group(server.database_url)
    with session_scope(server.database_url) as session:  # one run outside the group
        store.create_job(session, parse_spec({**expand({"name": "outside", **BASE_SPEC})[0]}))
    yield server
    stop_server(server)


BASE_SPEC = {
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "magnitude"},
    "schedule": {"kind": "oneshot"},
}


def chart_traces(page, selector: str) -> list[dict]:
    return page.eval_on_selector(
        selector, "el => (el.data || []).map(t => ({name: t.name, meta: t.meta || null, n: (t.x || []).length}))"
    )


def test_runs_list_filters_by_group_and_compare_opens_it(group_server, page):
    base = group_server.base_url
    page.goto(f"{base}/#/runs")
    expect(page.locator("#runs-table tbody tr")).to_have_count(11)
    page.select_option("select[name=group]", str(group_server.group_id))
    expect(page.locator("#runs-table tbody tr")).to_have_count(10)
    assert f"group={group_server.group_id}" in page.url
    page.reload()  # the filter is in the URL
    expect(page.locator("#runs-table tbody tr")).to_have_count(10)
    expect(page.locator(".group-chip").first).to_have_text(f"group #{group_server.group_id}")

    page.click("#compare-group")
    page.wait_for_url(f"**/#/compare?group={group_server.group_id}")
    expect(page.locator("#compare-table tbody tr")).to_have_count(5)
    page.wait_for_function("() => document.querySelector('#compare-chart')?.data?.length > 0")
    traces = chart_traces(page, "#compare-chart")
    curves = [t for t in traces if t["meta"] and t["meta"].get("jobId") and not t["meta"].get("band")]
    bands = [t for t in traces if t["meta"] and t["meta"].get("band")]
    assert len(curves) == 5 and all(t["meta"]["seeds"] == 2 for t in curves)
    assert len(bands) == 5 and all(t["n"] == 2 * STEPS for t in bands)  # upper and lower edge of every step
    names = page.eval_on_selector_all("#compare-table .name-cell a", "els => els.map(e => e.textContent)")
    assert all("mean of n=2 seeds" in n and "seed=" not in n for n in names), names
    assert {f"method.block_size={b}" for b in SWEEP["method.block_size"]} == {
        n.split("[")[1].split("]")[0] for n in names
    }

    # Each run on its own: 10 curves, no bands, kept in the URL.
    page.click("[aria-label=seeds] button[data-value=each]")
    expect(page.locator("#compare-table tbody tr")).to_have_count(10)
    traces = chart_traces(page, "#compare-chart")
    assert not [t for t in traces if t["meta"] and t["meta"].get("band")]
    assert "seeds=each" in page.url


def test_mean_is_the_mean_of_the_seeds(group_server, page):
    with group_server.api() as api:
        runs = api.get("/api/compare", params={"ids": ",".join(map(str, group_server.job_ids[:2]))}).json()["runs"]
    expected = [np.mean([r["points"][k]["accuracy"] for r in runs]) * 100 for k in range(STEPS)]
    page.goto(f"{group_server.base_url}/#/compare?ids={group_server.job_ids[0]},{group_server.job_ids[1]}")
    page.wait_for_function("() => document.querySelector('#compare-chart')?.data?.length > 0")
    curve = page.eval_on_selector(
        "#compare-chart", "el => el.data.find(t => t.meta && t.meta.jobId && !t.meta.band && t.meta.seeds === 2)"
    )
    assert curve is not None
    assert np.allclose(sorted(curve["y"][1:]), sorted(expected), atol=1e-9)  # [0] is the mean dense baseline


def test_run_page_draws_the_training_curves(group_server, page):
    job_id = group_server.job_ids[0]
    page.goto(f"{group_server.base_url}/#/run/{job_id}")
    page.wait_for_function("() => (document.querySelector('#training-chart')?.data || []).length >= 4")
    traces = chart_traces(page, "#training-chart")
    kinds = {(t["meta"]["history"], t["meta"]["kind"]): t["n"] for t in traces}
    assert kinds[("baseline", "accuracy")] == 5 and kinds[("baseline", "loss")] == 4  # epoch 0 has no loss
    assert kinds[(f"step {STEPS} fine-tuning", "accuracy")] == 3
    # Inspecting another step shows its fine-tuning curve.
    page.click("#steps-box tbody tr >> nth=0")
    page.wait_for_function(
        "() => (document.querySelector('#training-chart')?.data || [])"
        ".some(t => t.meta?.history === 'step 1 fine-tuning')"
    )
    expect(page.locator("#training-chart-step")).to_contain_text("step 1")


def test_new_run_sweep_rows_are_read_strictly(group_server, page):
    page.goto(f"{group_server.base_url}/#/new")
    page.wait_for_selector("#new-run-form")
    page.click("#add-sweep-row")
    page.fill(".sweep-row >> nth=0 >> .sweep-path", "method.block_size")
    page.fill(".sweep-row >> nth=0 >> .sweep-values", "2, 3, 4x")
    page.click("#submit-run")
    slot = page.locator('[data-error-for="sweep.method.block_size"]')
    expect(slot).to_contain_text('"4x"')
    with group_server.api() as api:
        before = api.get("/api/jobs").json()["total"]
    # A path the spec does not have: the server's 422 lands next to the row.
    page.fill(".sweep-row >> nth=0 >> .sweep-path", "method.block_sizee")
    page.fill(".sweep-row >> nth=0 >> .sweep-values", "2, 3")
    page.click("#submit-run")
    expect(page.locator('[data-error-for="sweep.method.block_sizee"]')).to_contain_text("unknown field")
    with group_server.api() as api:
        assert api.get("/api/jobs").json()["total"] == before
    # Good values: one group of runs, and the runs list of that group.
    page.fill(".sweep-row >> nth=0 >> .sweep-path", "seed")
    page.fill(".sweep-row >> nth=0 >> .sweep-values", "0, 1, 2")
    expect(page.locator("#submit-run")).to_have_text("Start 3 runs")
    page.click("#submit-run")
    page.wait_for_url("**/#/runs?group=*")
    expect(page.locator("#runs-table tbody tr")).to_have_count(3)

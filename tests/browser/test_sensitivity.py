"""The sensitivity page: a stored sensitivity job (written through backend.store, no worker) draws its
layers x sparsity heatmap and one curve per layer; the goal slider asks the API for an allocation; a
per-layer slider changes the predictions here; "Run this allocation" fills the New run form, and the run it
submits links back to the scan."""

import json

from playwright.sync_api import expect

from backend import store
from backend.db import session_scope
from core.spec import parse_spec

NAME = "<b>scan</b> of LeNet"
SPARSITIES = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
LAYERS = {"fc1": (19200, 4.0), "fc2": (30000, 1.0), "fc3": (1000, 60.0)}  # weights, how steeply accuracy falls
BASE = 0.97


def insert_scan(database_url: str) -> int:
    spec = {
        "name": NAME,
        "model": "lenet300_100",
        "dataset": "digits",
        "method": {"kind": "magnitude"},
        "schedule": {"kind": "sensitivity", "sparsities": SPARSITIES},
        "measure": {"latency": False},
    }
    model_flops = 2 * sum(p for p, _ in LAYERS.values())
    rows = []
    for position, (layer, (params, steep)) in enumerate(LAYERS.items()):
        for s in SPARSITIES:
            drop = min(0.8, steep * 0.02 * s**4)
            rows.append(
                {
                    "layer": layer,
                    "position": position,
                    "sparsity": s,
                    "accuracy": BASE - drop,
                    "val_accuracy": BASE - drop,
                    "loss": 0.1 + drop,
                    "val_loss": 0.1 + drop,
                    "params_removed": round(s * params),
                    "flops_removed": 2 * round(s * params),
                    "latency": None,
                    "layer_params": params,
                    "layer_flops": 2 * params,
                    "model_flops": model_flops,
                    "cached": True,
                }
            )
    with session_scope(database_url) as session:
        job = store.create_job(session, parse_spec(spec))
        store.set_status(session, job.id, "running")
        baseline = {"accuracy": BASE, "val_accuracy": BASE, "loss": 0.1, "params_total": 50410, "flops": model_flops}
        store.set_baseline(session, job.id, baseline)
        store.add_sensitivity(session, job.id, rows)
        store.set_progress(session, job.id, 1.0)
        store.set_status(session, job.id, "succeeded")
        return job.id


def test_heatmap_allocation_and_run_from_it(stored_server, page):
    job_id = insert_scan(stored_server.database_url)
    page.goto(f"{stored_server.base_url}/#/run/{job_id}")
    page.click("#open-sensitivity")
    expect(page).to_have_url(f"{stored_server.base_url}/#/sensitivity/{job_id}")
    expect(page.locator("#sensitivity-head h1")).to_have_text(f"Sensitivity: {NAME}")

    page.wait_for_function("() => document.querySelector('#sensitivity-heatmap')?.data?.[0]?.type === 'heatmap'")
    heat = page.evaluate("() => document.querySelector('#sensitivity-heatmap').data[0]")
    assert heat["y"] == ["fc1", "fc2", "fc3"]  # network order, top to bottom
    assert len(heat["x"]) == len(SPARSITIES) and len(heat["z"]) == 3
    assert heat["z"][2][4] > heat["z"][0][4]  # fc3 at 90 % costs more than fc1
    page.wait_for_function("() => document.querySelector('#sensitivity-curves')?.data?.length === 3")

    # The goal slider's allocation (from the API): fc3, the steep layer, keeps the most.
    page.locator("#goal-sparsity").fill("0.8")
    expect(page.locator("#pred-sparsity")).to_have_text("80.0%")
    sliders = page.locator("#alloc-layers input[type=range]")
    expect(sliders).to_have_count(3)
    fc3 = float(page.locator("input[data-layer='fc3']").input_value())
    fc2 = float(page.locator("input[data-layer='fc2']").input_value())
    assert fc3 < fc2

    # By hand: fc2 down to 50 % -> the overall sparsity is recomputed here from the grid.
    page.locator("input[data-layer='fc2']").fill("0.5")
    # (the sliders show their values to the step of 0.01; the map keeps the allocation's exact ones)
    fc1 = float(page.locator("input[data-layer='fc1']").input_value())
    expected = 100 * (fc1 * 19200 + 0.5 * 30000 + fc3 * 1000) / 50200
    page.wait_for_function("() => document.querySelector('#pred-sparsity').textContent !== '80.0%'")
    shown = float(page.text_content("#pred-sparsity").rstrip("%"))
    assert abs(shown - expected) < 0.6, (shown, expected)
    assert shown < 70

    page.click("#run-allocation")
    expect(page).to_have_url(f"{stored_server.base_url}/#/new?allocation={job_id}")
    expect(page.locator("h1")).to_contain_text(f"New run from the allocation of #{job_id}")
    layer_map = page.locator("[id='f-method-layer_sparsity']").input_value()
    assert "fc2=0.5" in layer_map and "fc3=" in layer_map
    spec = json.loads(page.text_content("#spec-preview"))
    assert spec["schedule"]["kind"] == "oneshot" and spec["method"]["layer_sparsity"]["fc2"] == 0.5
    assert spec["model"] == "lenet300_100" and spec["dataset"] == "digits"

    page.click("#submit-run")
    page.wait_for_url(lambda url: "#/run/" in url and url.split("#/run/")[1] != str(job_id))
    link = page.locator("#source-job")
    expect(link).to_have_text(f"allocation from #{job_id}")
    expect(link).to_have_attribute("href", f"#/sensitivity/{job_id}")
    assert page.locator("#sensitivity-head b").count() == 0

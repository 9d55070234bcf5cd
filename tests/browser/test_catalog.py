"""The New run form's model search and the online workers that can take the job, from a worker row and its
catalog written through the store (as a worker's LeaseKeeper writes them; no real worker needed)."""

from playwright.sync_api import expect

from backend import store
from backend.db import session_scope

WORKER = "prunelab-42@gpu-box"


def _tv(name: str, params: int) -> dict:
    layers = ["conv1", "layer1.0.conv1", "fc"]
    return {
        "name": f"torchvision:{name}",
        "label": f"{name} (torchvision)",
        "family": "torchvision",
        "params": params,
        "layers": layers,
        "default_layers": layers,
        "channel_pruning": {"supported": True, "tested": True, "note": ""},
    }


CATALOG = {
    "models": [_tv("resnet18", 11_689_512), _tv("resnet50", 25_557_032), _tv("vgg16", 138_357_544)],
    "datasets": [{"name": "digits", "label": "digits", "builtin": True, "classes": 10, "present": True}],
    "devices": [{"device": "cuda", "index": 0, "label": "NVIDIA H200"}],
}


def test_the_form_finds_a_torchvision_model_and_shows_the_worker(stored_server, page):
    with session_scope(stored_server.database_url) as s:
        store.register_worker(
            s, WORKER, host="gpu-box", pid=42, queues=["gpu", "default"], concurrency=1, device="cuda"
        )
        store.set_worker_catalog(s, WORKER, CATALOG)
    try:
        page.goto(f"{stored_server.base_url}/#/new")
        page.wait_for_selector("#f-model-search")
        options = "#f-model option"
        assert "torchvision:vgg16" in page.eval_on_selector_all(options, "os => os.map(o => o.value)")
        page.fill("#f-model-search", "resnet")
        shown = page.eval_on_selector_all(options, "os => os.map(o => o.value)")
        assert "torchvision:resnet18" in shown and "torchvision:resnet50" in shown
        assert "torchvision:vgg16" not in shown and "vgg" not in shown  # the current choice stays listed
        groups = page.eval_on_selector_all("#f-model optgroup", "gs => gs.map(g => g.label)")
        assert any(g.startswith("torchvision") for g in groups)
        page.select_option("#f-model", "torchvision:resnet18")
        expect(page.locator("#f-workers")).to_contain_text(f"Can run it: {WORKER} (cuda")
        expect(page.locator("#f-model")).to_have_value("torchvision:resnet18")
        expect(page.locator("#spec-preview")).to_contain_text('"model": "torchvision:resnet18"')
        page.select_option("#f-device", "cpu")
        expect(page.locator("#f-workers")).to_contain_text("not on queue cpu")
    finally:
        with session_scope(stored_server.database_url) as s:
            store.forget_workers(s, -3600)  # the server is shared with other tests: no worker rows left behind

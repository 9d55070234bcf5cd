"""Specs checked against the catalogs the online workers published (workers.catalog), and GET /api/catalog as
their union. Worker rows are written through the store, as a worker's LeaseKeeper writes them; a real worker
publishing its catalog is checked in test_exports.py."""

from datetime import timedelta

import pytest

from backend import store
from backend.db import session_scope
from backend.models import utcnow
from core import spec as core_spec


@pytest.fixture(autouse=True)
def api_process_layers():
    """Only the built-in models' layers, as in the API process: engine tests that build torchvision models in
    this pytest process register those models' layers in core.spec (the worker does so when it builds one).
    The registries are emptied in place, since other modules hold them by reference, and restored after."""
    saved = [(registry, dict(registry)) for registry in (core_spec.MODEL_LAYERS, core_spec.DEFAULT_LAYERS)]
    for registry, _ in saved:
        for name in [n for n in registry if n not in core_spec.MODELS]:
            del registry[name]
    yield
    for registry, entries in saved:
        registry.clear()
        registry.update(entries)


def _catalog() -> dict:
    """The shape of worker.engine.catalog.worker_catalog, cut down to a few entries."""
    builtin = [
        {"name": n, "label": n, "family": "mlp", "layers": ["fc1", "fc2", "fc3"], "default_layers": ["fc1"]}
        for n in ("lenet300_100",)
    ]
    return {
        "models": builtin
        + [
            {
                "name": "torchvision:resnet18",
                "label": "resnet18 (torchvision)",
                "family": "torchvision",
                "input": {"min_side": 1, "fixed": False, "pretrained_side": 224},
                "params": 11689512,
                "layers": ["conv1", "layer1.0.conv1", "fc"],
                "default_layers": ["conv1", "layer1.0.conv1", "fc"],
                "channel_pruning": {"supported": True, "tested": True, "note": ""},
            },
            {
                "name": "torchvision:maxvit_t",
                "label": "maxvit_t (torchvision)",
                "family": "torchvision",
                "layers": ["stem.0.0", "classifier.5"],
                "default_layers": ["stem.0.0", "classifier.5"],
                "channel_pruning": {
                    "supported": False,
                    "tested": True,
                    "note": "method.kind: channel pruning cannot remove channels of MaxViT's partition attention",
                },
            },
            {"name": "plugin:broken", "label": "broken", "family": "plugin", "layers": None, "error": "ImportError"},
        ],
        "datasets": [
            {"name": "digits", "label": "digits", "builtin": True, "shape": [1, 8, 8], "classes": 10, "present": True},
            {
                "name": "mnist",
                "label": "MNIST",
                "builtin": False,
                "shape": [1, 28, 28],
                "classes": 10,
                "present": False,
            },
            {
                "name": "imagefolder:flowers",
                "label": "image folder flowers",
                "builtin": False,
                "shape": [3, 64, 64],
                "classes": 5,
                "train_images": 100,
                "test_images": 20,
                "present": True,
            },
        ],
        "devices": [{"device": "cpu", "label": "CPU (2 threads)"}],
    }


def _add_worker(db_url, name="prunelab-7@box", catalog=None, **fields):
    with session_scope(db_url) as s:
        store.register_worker(s, name, host="box", pid=7, queues=["default", "cpu"], concurrency=1, device="cpu")
        if catalog is not None:
            store.set_worker_catalog(s, name, catalog)
        if fields.get("silent"):
            store.worker_heartbeat(s, name, now=utcnow() - timedelta(hours=1))


def _errors(resp) -> dict:
    assert resp.status_code == 422, resp.text
    return {e["field"]: e for e in resp.json()["errors"]}


def test_without_workers_built_in_models_and_file_datasets_are_accepted_others_refused(client, spec_dict):
    assert client.post("/api/jobs", json=spec_dict()).status_code == 201
    assert client.post("/api/jobs", json=spec_dict(dataset="mnist")).status_code == 201
    errors = _errors(client.post("/api/jobs", json=spec_dict(model="torchvision:resnet18")))
    assert "none has published its catalog" in errors["model"]["message"]
    errors = _errors(client.post("/api/jobs", json=spec_dict(dataset="imagefolder:flowers")))
    assert set(errors) == {"dataset"} and "digits" in errors["dataset"]["allowed"]


def test_a_worker_catalog_decides_what_is_accepted(api_settings, client, spec_dict):
    _add_worker(api_settings.database_url, catalog=_catalog())
    tv = spec_dict(model="torchvision:resnet18", method={"kind": "magnitude"})
    assert client.post("/api/jobs", json=tv).status_code == 201
    assert client.post("/api/jobs", json={**tv, "dataset": "imagefolder:flowers"}).status_code == 201

    errors = _errors(client.post("/api/jobs", json={**tv, "model": "torchvision:resnet19"}))
    assert "no online worker offers torchvision:resnet19" in errors["model"]["message"]
    assert "torchvision:resnet18" in errors["model"]["allowed"]
    errors = _errors(client.post("/api/jobs", json={**tv, "model": "plugin:broken"}))  # listed with its error
    assert set(errors) == {"model"}
    # A file dataset must be in some online worker's data directory once a worker has published.
    errors = _errors(client.post("/api/jobs", json=spec_dict(dataset="mnist")))
    assert "data directory" in errors["dataset"]["message"] and "mnist" not in errors["dataset"]["allowed"]
    # Layers of a torchvision model are checked from the catalog, every bad field at once.
    bad = {**tv, "method": {"kind": "magnitude", "layers": ["conv1", "nope"]}, "dataset": "imagefolder:tulips"}
    errors = _errors(client.post("/api/jobs", json=bad))
    assert set(errors) == {"method.layers", "dataset"}
    assert "'nope'" in errors["method.layers"]["message"] and "conv1" in errors["method.layers"]["allowed"]
    errors = _errors(
        client.post("/api/jobs", json={**tv, "model": "torchvision:maxvit_t", "method": {"kind": "channel"}})
    )
    assert errors["method.kind"]["message"].startswith("channel pruning cannot remove channels of MaxViT")


def test_model_and_dataset_must_be_on_one_worker(api_settings, client, spec_dict):
    only_models = {**_catalog(), "datasets": _catalog()["datasets"][:2]}
    only_flowers = {**_catalog(), "models": _catalog()["models"][:1]}
    _add_worker(api_settings.database_url, "a", only_models)
    _add_worker(api_settings.database_url, "b", only_flowers)
    spec = spec_dict(model="torchvision:resnet18", dataset="imagefolder:flowers")
    errors = _errors(client.post("/api/jobs", json=spec))
    assert "no online worker offers both" in errors["dataset"]["message"]
    assert client.post("/api/jobs", json=spec_dict(dataset="imagefolder:flowers")).status_code == 201


def test_offline_workers_and_unpublished_ones_offer_nothing(api_settings, client, spec_dict):
    _add_worker(api_settings.database_url, "gone", _catalog(), silent=True)
    _add_worker(api_settings.database_url, "starting")  # registered, catalog not published yet
    errors = _errors(client.post("/api/jobs", json=spec_dict(model="torchvision:resnet18")))
    assert "starting has not published its catalog yet" in errors["model"]["message"]


def test_catalog_is_the_union_of_the_online_workers(api_settings, client):
    before = client.get("/api/catalog").json()
    assert [m["source"] for m in before["models"]] == ["builtin"] * len(before["models"])
    assert before["workers"] == [] and {"methods", "schedules", "presets"} <= set(before)
    _add_worker(api_settings.database_url, catalog=_catalog())
    _add_worker(api_settings.database_url, "gone", _catalog(), silent=True)
    body = client.get("/api/catalog").json()
    assert body["workers"] == [
        {"name": "prunelab-7@box", "queues": ["default", "cpu"], "device": "cpu", "published": True}
    ]
    models = {m["name"]: m for m in body["models"]}
    assert models["torchvision:resnet18"]["workers"] == ["prunelab-7@box"]
    assert models["torchvision:resnet18"]["source"] == "torchvision" and models["torchvision:resnet18"]["params"]
    assert models["lenet300_100"]["workers"] == ["prunelab-7@box"] and models["vgg"]["workers"] == []
    assert "plugin:broken" not in models
    sources = [m["source"] for m in body["models"]]
    assert sources == sorted(sources, key=["builtin", "torchvision", "plugin"].index)
    datasets = {d["name"]: d for d in body["datasets"]}
    assert datasets["imagefolder:flowers"]["classes"] == 5 and datasets["imagefolder:flowers"]["train_images"] == 100
    assert datasets["mnist"]["present"] is False and datasets["mnist"]["workers"] == []
    assert datasets["digits"]["present"] is True

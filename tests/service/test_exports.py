"""Export from the server with a real `prunelab worker`: it publishes its catalog on start; POST
/api/jobs/{id}/steps/{k}/export enqueues the export task, the worker writes exports/step-K.onnx, GET serves it
and onnxruntime runs it on the dataset's input shape."""

import numpy as np
import pytest

REDIS_DB = 5  # this file's own Redis database, flushed before use

SPEC = {
    "name": "export-me",
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.3, "rounds": 1, "finetune_epochs": 1},
    "train": {"epochs": 1},
    "measure": {"latency": False},
    "device": "cpu",
}


def test_the_worker_publishes_its_catalog(e2e_client, wait_until):
    def published():
        items = e2e_client.get("/api/workers").json()["items"]
        return [w for w in items if w["online"] and w["catalog"]]

    (worker,) = wait_until(published, 120, "the worker's catalog")
    names = {m["name"] for m in worker["catalog"]["models"]}
    assert {"lenet300_100", "torchvision:resnet18"} <= names
    catalog = e2e_client.get("/api/catalog").json()
    resnet = next(m for m in catalog["models"] if m["name"] == "torchvision:resnet18")
    assert resnet["workers"] == [worker["name"]] and "layer1.0.conv1" in resnet["layers"]
    spec = {**SPEC, "model": "torchvision:resnet18", "method": {"kind": "block", "layers": ["nope"]}}
    resp = e2e_client.post("/api/jobs", json=spec)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "method.layers"


def test_export_a_step_as_onnx(e2e_client, e2e_settings, submit, wait_for_job, wait_until):
    ort = pytest.importorskip("onnxruntime")
    job_id = submit(e2e_client, SPEC)
    job = wait_for_job(e2e_client, job_id, 300)
    assert job["status"] == "succeeded", job.get("error")
    url = f"/api/jobs/{job_id}/steps/1/export?format=onnx"

    missing = e2e_client.get(url)
    assert missing.status_code == 404
    assert missing.json()["errors"][0] == {
        "field": "format",
        "message": "not exported yet; POST to export",
        "allowed": "onnx, torchscript, state_dict",
        "value": "onnx",
    }
    assert e2e_client.get(f"/api/jobs/{job_id}/steps/2/export?format=onnx").json()["errors"][0]["field"] == "step"
    bad = e2e_client.post(f"/api/jobs/{job_id}/steps/1/export?format=tflite")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.format"

    queued = e2e_client.post(url)
    assert queued.status_code == 202, queued.text
    assert queued.json() == {"job_id": job_id, "step": 1, "format": "onnx", "status": "queued", "url": url}
    resp = wait_until(lambda: (r := e2e_client.get(url)).status_code == 200 and r, 180, "the exported file")
    assert resp.headers["content-disposition"] == f'attachment; filename="prunelab-job-{job_id}-step-1.onnx"'
    session = ort.InferenceSession(resp.content, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: np.zeros((3, 1, 8, 8), np.float32)})
    assert out.shape == (3, 10)
    assert (e2e_settings.artifact_dir / "jobs" / str(job_id) / "exports" / "step-1.onnx").is_file()
    assert e2e_client.post(url).json()["status"] == "ready"

"""GET /api/jobs/{id} reports the disk use of the job's run directory (disk_bytes); the list does not."""

from tests.service.conftest import artifact_path


def test_disk_bytes_counts_every_file_of_the_run_directory(client, api_settings, spec_dict):
    job_id = client.post("/api/jobs", json=spec_dict()).json()["id"]
    assert client.get(f"/api/jobs/{job_id}").json()["disk_bytes"] is None  # nothing written yet

    run_dir = artifact_path(api_settings, job_id)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "spec.json").write_bytes(b"{}")
    (run_dir / "checkpoints" / "step_0.pt").write_bytes(b"x" * 12_345)
    (run_dir / "checkpoints" / "step_1.pt").write_bytes(b"y" * 1000)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["disk_bytes"] == 2 + 12_345 + 1000

    (run_dir / "checkpoints" / "step_0.pt").unlink()  # the retention policy dropped a checkpoint
    assert client.get(f"/api/jobs/{job_id}").json()["disk_bytes"] == 1002
    listed = client.get("/api/jobs").json()["items"]
    assert [j["id"] for j in listed] == [job_id] and "disk_bytes" not in listed[0]

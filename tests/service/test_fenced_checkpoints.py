"""Step checkpoints are renamed into place only while the writing attempt holds the job (DbReporter.commit_file,
called by the engine for every step checkpoint): a worker that lost its job, between its last lease check and
its checkpoint save, cannot overwrite checkpoints/step_k.pt of the attempt that took the job over."""

from datetime import timedelta

import pytest
import torch

from backend import store
from backend.db import session_scope
from backend.models import utcnow
from core.spec import parse_spec
from worker.db_reporter import DbReporter
from worker.engine.reporter import Cancelled


def _claimed_job(db_url: str, spec: dict) -> int:
    with session_scope(db_url) as session:
        job_id = store.create_job(session, parse_spec(spec)).id
    with session_scope(db_url) as session:
        assert store.claim_job(session, job_id, "worker-1", lease_s=60) == 1
    return job_id


def _take_over(db_url: str, job_id: int) -> None:
    """As the reaper and a second worker do once attempt 1's lease expired."""
    later = utcnow() + timedelta(seconds=61)
    with session_scope(db_url) as session:
        assert store.requeue_expired(session, job_id, 1, now=later) == "queued"
    with session_scope(db_url) as session:
        assert store.claim_job(session, job_id, "worker-2", lease_s=60) == 2


def _tmp(folder, text: str):
    tmp = folder / f"step_0.pt{text}.tmp"
    tmp.write_text(text)
    return tmp


def test_only_the_attempt_holding_the_job_renames_its_checkpoint(db_url, spec_dict, tmp_path):
    job_id = _claimed_job(db_url, spec_dict())
    path = tmp_path / "step_0.pt"
    first = DbReporter(job_id, 1, database_url=db_url, lease_s=60)
    first.commit_file(_tmp(tmp_path, "attempt-1"), path)
    assert path.read_text() == "attempt-1"

    _take_over(db_url, job_id)
    second = DbReporter(job_id, 2, database_url=db_url, lease_s=60)
    second.commit_file(_tmp(tmp_path, "attempt-2"), path)
    orphan = _tmp(tmp_path, "orphan")
    with pytest.raises(Cancelled):
        first.commit_file(orphan, path)
    assert path.read_text() == "attempt-2" and orphan.exists()  # not renamed (the engine removes its temp file)
    assert first.stop_reason == "lost" and second.stop_reason is None

    with session_scope(db_url) as session:
        store.delete_job(session, store.get_job(session, job_id), tmp_path / "artifacts")
    with pytest.raises(Cancelled):
        second.commit_file(_tmp(tmp_path, "late"), path)
    assert second.stop_reason == "deleted" and path.read_text() == "attempt-2"


class TakenOverBeforeTheSave(DbReporter):
    """The real reporter, with the job taken over by another attempt right before the engine's first
    checkpoint rename (after every lease check of the step has passed)."""

    def commit_file(self, tmp, path):
        if self.attempt == 1 and not getattr(self, "_taken", False):
            self._taken = True
            _take_over(self.database_url, self.job_id)
        super().commit_file(tmp, path)


def test_the_engine_leaves_the_new_attempts_checkpoint_alone(db_url, spec_dict, tmp_path):
    from worker.engine.runner import run_job

    spec = spec_dict(train={"epochs": 1}, schedule={"kind": "iterative", "rate": 0.2, "rounds": 2})
    job_id = _claimed_job(db_url, spec)
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    theirs = out / "checkpoints" / "step_0.pt"
    # as if the new attempt had already saved step 1 (a checkpoint the engine can read back)
    torch.save({"step": {"val_accuracy": 0.5}, "written_by": "attempt 2"}, theirs)
    written = theirs.read_bytes()
    reporter = TakenOverBeforeTheSave(job_id, 1, database_url=db_url, lease_s=60)
    with pytest.raises(Cancelled):
        run_job(parse_spec(spec), out, reporter, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert reporter.stop_reason == "lost"
    assert theirs.read_bytes() == written
    assert not list((out / "checkpoints").glob("*.tmp"))  # the orphan's temporary file is gone
    with session_scope(db_url) as session:
        assert store.completed_steps(session, job_id) == 0  # and it stored no step

"""Every database query of PruneLab: the API, the worker and the `prunelab` command call these functions and
write no SQL of their own. Every function takes an open Session; the caller owns the transaction
(backend.db.session_scope commits or rolls back), so a worker can commit each step alone.

A job is read one way: as an ORM Job with its owner joined in the same query (get_job, list_jobs), which
job_to_dict turns into the API's JSON. Reading a job never touches the step history.
"""

import hashlib
import hmac
import secrets
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, load_only

from backend.models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    JOB_STATUSES,
    ROLES,
    ApiToken,
    Job,
    JobAttempt,
    JobGroup,
    JobTag,
    LayerMask,
    Step,
    User,
    Worker,
    utcnow,
)

SORT_COLUMNS = {
    "created_at": Job.created_at,
    "name": Job.name,
    "best_accuracy": Job.best_accuracy,
    "last_sparsity": Job.last_sparsity,
    "sparsity": Job.last_sparsity,
    "accuracy": Job.last_accuracy,
    "status": Job.status,
    "id": Job.id,
}


class StoreError(ValueError):
    """A request the store refuses (wrong state, unknown name); `field` names what was wrong."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class LeaseLost(Exception):
    """A write by an attempt that no longer holds its job: another attempt claimed it, the reaper re-queued
    it, it finished or it was deleted. Nothing of that write was stored; the worker abandons the job."""

    def __init__(self, job_id: int, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        super().__init__(f"job {job_id}: attempt {attempt} no longer holds the job")


# ---------------------------------------------------------------- users and tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "pl_" + secrets.token_urlsafe(32)


def create_user(session: Session, name: str, role: str = "user") -> tuple[User, str]:
    """Add a user with one fresh API token; the token is returned once and only its hash is stored."""
    if role not in ROLES:
        raise StoreError("role", f"unknown role {role!r}; allowed: {', '.join(ROLES)}")
    name = name.strip()
    if not name or len(name) > 100:
        raise StoreError("name", "must be 1 to 100 characters")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise StoreError("name", f"a user named {name!r} already exists")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    token = add_token(session, user)
    return user, token


def token_prefix(token: str) -> str:
    """The stored, non-secret start of a token: it names the token in `token list` and finds its row."""
    return token[:10]


def add_token(session: Session, user: User) -> str:
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token_prefix(token)))
    session.flush()
    return token


def get_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def list_tokens(session: Session, user_name: str | None = None) -> list[dict[str, Any]]:
    """Every token (of one user when given), oldest first, without its hash."""
    query = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if user_name is not None:
        query = query.where(User.name == user_name)
    return [
        {
            "id": t.id,
            "user": name,
            "prefix": t.prefix,
            "created_at": iso(t.created_at),
            "revoked_at": iso(t.revoked_at),
        }
        for t, name in session.execute(query).all()
    ]


def revoke_token_id(session: Session, token_id: int) -> int | None:
    """Revoke the token with this id: 1 if it was active, 0 if already revoked, None if there is none."""
    token = session.get(ApiToken, token_id)
    if token is None:
        return None
    if token.revoked_at is not None:
        return 0
    token.revoked_at = utcnow()
    return 1


def list_users(session: Session) -> list[dict[str, Any]]:
    active = (
        select(ApiToken.user_id, func.count().label("n"))
        .where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User, func.coalesce(active.c.n, 0)).outerjoin(active, active.c.user_id == User.id).order_by(User.name)
    ).all()
    return [
        {"id": u.id, "name": u.name, "role": u.role, "created_at": iso(u.created_at), "active_tokens": n}
        for u, n in rows
    ]


def revoke_token(session: Session, token_or_prefix: str) -> int:
    """Revoke a token given in full, or by a prefix of at least 6 characters (the stored prefix is the first
    10; a shorter one matches every active token starting with it, and must match only one).
    Returns how many tokens were revoked (0 if none matched)."""
    now = utcnow()
    by_hash = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token_or_prefix)))
    if by_hash is not None:
        if by_hash.revoked_at is None:
            by_hash.revoked_at = now
            return 1
        return 0
    if len(token_or_prefix) < 6:
        raise StoreError("token", "give the whole token or a prefix of at least 6 characters")
    stored = token_or_prefix[:10]  # beyond the stored 10 characters only the whole token can be checked
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.prefix.startswith(stored, autoescape=True), ApiToken.revoked_at.is_(None))
    ).all()
    tokens = [t for t in tokens if t.prefix.startswith(stored)]  # LIKE ignores case on SQLite; tokens do not
    if len(tokens) > 1:
        raise StoreError(
            "token",
            f"prefix {token_or_prefix!r} matches {len(tokens)} active tokens "
            f"({', '.join(sorted(t.prefix for t in tokens))}); give more characters",
        )
    for t in tokens:
        t.revoked_at = now
    return len(tokens)


def revoke_user_tokens(session: Session, name: str) -> int:
    user = get_user(session, name)
    if user is None:
        raise StoreError("name", f"no user named {name!r}")
    result = session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return result.rowcount


def user_for_token(session: Session, token: str) -> User | None:
    """The user of a valid, unrevoked token, else None. The row is found by the token's non-secret prefix;
    the secret part is checked only by comparing the full hash in constant time, so the database index
    never answers "does this hash exist"."""
    digest = hash_token(token)
    rows = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.prefix == token_prefix(token), ApiToken.revoked_at.is_(None))
    ).all()
    for tok, user in rows:  # prefixes are 7 random characters: more than one row is rare, but allowed
        if hmac.compare_digest(tok.token_hash, digest):
            return user
    return None


# ---------------------------------------------------------------- jobs


def queue_for_device(device: str) -> str:
    return {"cuda": "gpu", "cpu": "cpu"}.get(device, "default")


def create_job(session: Session, spec: Any, owner_id: int | None = None, queue: str | None = None) -> Job:
    """Store a validated spec (core.spec.JobSpec) as a queued job."""
    data = spec.model_dump(mode="json")
    tags = list(dict.fromkeys(spec.tags))  # unique, in order
    job = Job(
        name=spec.name,
        spec=data,
        model=spec.model,
        dataset=spec.dataset,
        method=spec.method.kind,
        schedule=spec.schedule.kind,
        tags=tags,
        status="queued",
        owner_id=owner_id,
        queue=queue or queue_for_device(spec.device),
        attempts=0,
        cancel_requested=False,
        progress=0.0,
        message="queued",
        steps_done=0,
    )
    job.tag_rows = [JobTag(tag=t) for t in tags]
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job | None:
    """The job (its owner loaded in the same query), None if there is none. The one way to read a job."""
    return session.get(Job, job_id)


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    method: str | None = None,
    schedule: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    q: str | None = None,
    group: int | None = None,
    sort: str = "-created_at",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """Jobs matching every given filter, sorted and paged, and how many match in all. `q`: the name
    contains it, ignoring case. Reads only the jobs table (and users for the owner, joined in the same
    query); never the step history."""
    where = []
    if q:
        # lower() on both sides (not ILIKE, which SQLite lacks); autoescape: % and _ in q match literally.
        where.append(func.lower(Job.name).contains(q.lower(), autoescape=True))
    if status:
        statuses = [s for s in status.split(",") if s]
        bad = [s for s in statuses if s not in JOB_STATUSES]
        if bad:
            raise StoreError("status", f"unknown status {bad[0]!r}; allowed: {', '.join(JOB_STATUSES)}")
        where.append(Job.status.in_(statuses))
    for column, value in ((Job.model, model), (Job.dataset, dataset), (Job.method, method), (Job.schedule, schedule)):
        if value:
            where.append(column == value)
    if tag:
        where.append(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    if owner:
        where.append(Job.owner_id.in_(select(User.id).where(User.name == owner)))
    if group is not None:
        where.append(Job.group_id == group)
    descending = sort.startswith("-")
    key = sort.lstrip("-+ ")
    if key not in SORT_COLUMNS:
        raise StoreError(
            "sort", f"unknown sort key {key!r}; allowed: {', '.join(SORT_COLUMNS)} (prefix - for descending)"
        )
    column = SORT_COLUMNS[key]
    order = [
        column.desc().nulls_last() if descending else column.asc().nulls_last(),
        Job.id.desc() if descending else Job.id.asc(),
    ]
    total = session.scalar(select(func.count()).select_from(Job).where(*where))
    jobs = session.scalars(select(Job).where(*where).order_by(*order).limit(limit).offset(offset)).all()
    return list(jobs), int(total or 0)


def active_job_queues(session: Session) -> list[tuple[int, str]]:
    """(id, queue) of every queued or running job, oldest first."""
    rows = session.execute(select(Job.id, Job.queue).where(Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id))
    return [(int(job_id), queue) for job_id, queue in rows]


def jobs_version(session: Session) -> tuple:
    """Changes whenever a job is added, changed or deleted: (row count, newest updated_at)."""
    return tuple(session.execute(select(func.count(), func.max(Job.updated_at)).select_from(Job)).one())


def count_active_jobs(session: Session, owner_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Job).where(Job.owner_id == owner_id, Job.status.in_(ACTIVE_STATUSES))
        )
        or 0
    )


def set_task_id(session: Session, job_id: int, task_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(task_id=task_id))


def set_status(
    session: Session, job_id: int, status: str, *, error: str | None = None, message: str | None = None
) -> None:
    """Move a job to `status`, stamping started_at/finished_at; unfenced (the API failing a job it could not
    enqueue, tests seeding rows). A worker ends its attempt with finish_job instead."""
    if status not in JOB_STATUSES:
        raise StoreError("status", f"unknown status {status!r}; allowed: {', '.join(JOB_STATUSES)}")
    session.execute(update(Job).where(Job.id == job_id).values(**_status_values(status, utcnow(), error, message)))


def _status_values(status: str, now: datetime, error: str | None, message: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status}
    if status == "running":
        values["started_at"] = func.coalesce(Job.started_at, now)
        values["finished_at"] = None
    elif status in FINAL_STATUSES:
        values.update(finished_at=now, cancel_requested=False, lease_owner=None, lease_expires_at=None)
        if status == "succeeded":
            values["progress"] = 1.0
    if error is not None:
        values["error"] = error
    values["message"] = message if message is not None else status
    return values


# ---------------------------------------------------------------- leases: claim, renew, fenced writes, reaper


# For UPDATEs whose WHERE compares timestamps: SQLAlchemy cannot evaluate those in Python against loaded
# objects (SQLite hands back naive datetimes), so it fetches the matched ids instead.
FETCH = {"synchronize_session": "fetch"}


def _held(job_id: int, attempt: int):
    """The job is running and attempt `attempt` holds it: the fence of every write a worker makes."""
    return (Job.id == job_id, Job.attempts == attempt, Job.status == "running")


def _expired(now: datetime):
    """A lease that was taken and has run out. A running job without a lease (set by hand, or by a worker
    from before leases) is left to whoever runs it."""
    return and_(Job.lease_expires_at.is_not(None), Job.lease_expires_at < now)


def _fenced(session: Session, job_id: int, attempt: int | None, **values: Any) -> None:
    """UPDATE the job, only while `attempt` holds it (any time when attempt is None); LeaseLost otherwise."""
    where = _held(job_id, attempt) if attempt is not None else (Job.id == job_id,)
    if session.execute(update(Job).where(*where).values(**values)).rowcount == 0 and attempt is not None:
        raise LeaseLost(job_id, attempt)


def _end_attempts(session: Session, job_id: int, outcome: str, now: datetime, attempt: int | None = None) -> None:
    """Close the job's open attempt rows (only `attempt` when given) with `outcome`."""
    where = [JobAttempt.job_id == job_id, JobAttempt.ended_at.is_(None)]
    if attempt is not None:
        where.append(JobAttempt.attempt == attempt)
    session.execute(update(JobAttempt).where(*where).values(ended_at=now, outcome=outcome))


def lost_in_a_row(session: Session, job_id: int) -> int:
    """How many of the job's latest ended attempts were lost (their worker died), back to the last one that
    ended otherwise."""
    outcomes = session.scalars(
        select(JobAttempt.outcome)
        .where(JobAttempt.job_id == job_id, JobAttempt.ended_at.is_not(None))
        .order_by(JobAttempt.attempt.desc())
    )
    n = 0
    for outcome in outcomes:
        if outcome != "lost":
            break
        n += 1
    return n


def claim_job(
    session: Session,
    job_id: int,
    worker: str,
    lease_s: float,
    *,
    max_lost: int | None = None,
    now: datetime | None = None,
) -> int | None:
    """Take the job for `worker` with one conditional UPDATE: a queued job, or a running one whose lease
    expired (or that never had one), becomes running with one more attempt and a lease until now + lease_s.
    Returns the attempt number, which fences every later write; None to skip the task: the job is held by a
    live lease, finished, gone, or was cancelled while nobody held it (it is then marked cancelled here).
    When the job's last `max_lost` attempts were all lost, the job fails instead of running once more."""
    now = now or utcnow()
    claimable = or_(
        Job.status == "queued",
        and_(Job.status == "running", or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)),
    )
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.cancel_requested.is_(False), claimable)
        .execution_options(**FETCH)
        .values(
            status="running",
            attempts=Job.attempts + 1,
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_s),
            started_at=func.coalesce(Job.started_at, now),
            finished_at=None,
            message="running",
        )
    )
    if claimed.rowcount == 0:
        ended = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.cancel_requested.is_(True), claimable)
            .execution_options(**FETCH)
            .values(**_status_values("cancelled", now, None, "cancelled before it started"))
        )
        if ended.rowcount:
            _end_attempts(session, job_id, "lost", now)
        return None
    attempt = int(session.scalar(select(Job.attempts).where(Job.id == job_id)))
    _end_attempts(session, job_id, "lost", now)  # an open attempt before this one held an expired lease
    session.add(JobAttempt(job_id=job_id, attempt=attempt, worker=worker, started_at=now, renewed_at=now))
    session.flush()
    lost = lost_in_a_row(session, job_id)
    if max_lost is not None and lost >= max_lost:
        finish_job(
            session,
            job_id,
            attempt,
            "failed",
            error=f"the worker died {lost} times in a row while running this job (out of memory, killed, or "
            "cut off from the database?); giving up",
            message="failed",
        )
        return None
    return attempt


def start_job(session: Session, job_id: int, worker: str = "local", lease_s: float = 60.0) -> Job | None:
    """claim_job, returning the job (None when it was not claimed)."""
    if claim_job(session, job_id, worker, lease_s) is None:
        return None
    job = get_job(session, job_id)
    session.refresh(job)
    return job


def renew_lease(session: Session, job_id: int, attempt: int, lease_s: float, now: datetime | None = None) -> bool:
    """Extend the lease of `attempt` to now + lease_s; False when it no longer holds the job (lease lost).
    updated_at is kept: a renewal is no change anyone watching the job needs to hear about."""
    now = now or utcnow()
    renewed = session.execute(
        update(Job)
        .where(*_held(job_id, attempt))
        .values(lease_expires_at=now + timedelta(seconds=lease_s), updated_at=Job.updated_at)
    )
    if renewed.rowcount == 0:
        return False
    session.execute(
        update(JobAttempt).where(JobAttempt.job_id == job_id, JobAttempt.attempt == attempt).values(renewed_at=now)
    )
    return True


def finish_job(
    session: Session,
    job_id: int,
    attempt: int,
    status: str,
    *,
    error: str | None = None,
    message: str | None = None,
) -> None:
    """End attempt `attempt` with a final status (succeeded, failed, cancelled); LeaseLost if it no longer
    holds the job."""
    if status not in FINAL_STATUSES:
        raise StoreError("status", f"unknown final status {status!r}; allowed: {', '.join(FINAL_STATUSES)}")
    now = utcnow()
    _fenced(session, job_id, attempt, **_status_values(status, now, error, message))
    _end_attempts(session, job_id, status, now, attempt)


def release_job(session: Session, job_id: int, attempt: int) -> str:
    """The worker of `attempt` stops (shutdown) and gives the job back: queued again with its lease cleared,
    so another worker resumes it after its last stored step at once; cancelled instead when a cancel was
    asked for. Returns the new status; LeaseLost if the attempt no longer holds the job."""
    now = utcnow()
    if session.execute(select(Job.cancel_requested).where(Job.id == job_id)).scalar():
        finish_job(session, job_id, attempt, "cancelled", message="cancelled")
        return "cancelled"
    _fenced(
        session,
        job_id,
        attempt,
        status="queued",
        lease_owner=None,
        lease_expires_at=None,
        message="queued again: its worker stopped",
    )
    _end_attempts(session, job_id, "released", now, attempt)
    return "queued"


def attempt_state(session: Session, job_id: int, attempt: int) -> str:
    """What the worker of `attempt` should do: "run", "cancel" (asked to stop), "deleted", or "lost"
    (another attempt holds the job, or it is no longer running)."""
    row = session.execute(select(Job.attempts, Job.status, Job.cancel_requested).where(Job.id == job_id)).first()
    if row is None:
        return "deleted"
    if row.attempts != attempt or row.status != "running":
        return "lost"
    return "cancel" if row.cancel_requested else "run"


def expired_leases(session: Session, now: datetime | None = None) -> list[tuple[int, int, str]]:
    """(job id, attempt, queue) of every running job whose lease expired, oldest first."""
    rows = session.execute(
        select(Job.id, Job.attempts, Job.queue)
        .where(Job.status == "running", _expired(now or utcnow()))
        .order_by(Job.id)
    )
    return [(int(j), int(a), q) for j, a, q in rows]


def requeue_expired(session: Session, job_id: int, attempt: int, now: datetime | None = None) -> str | None:
    """Reap one job whose lease expired: queued again (a cancel asked for meanwhile: cancelled), its attempt
    ended as lost. Conditional on the same attempt still being running with an expired lease, so of two
    reapers racing only one re-queues. Returns the new status, None when there was nothing to reap."""
    now = now or utcnow()
    where = (*_held(job_id, attempt), _expired(now))
    done = session.execute(
        update(Job)
        .where(*where, Job.cancel_requested.is_(True))
        .execution_options(**FETCH)
        .values(**_status_values("cancelled", now, None, "cancelled (its worker was lost)"))
    )
    status = "cancelled"
    if done.rowcount == 0:
        done = session.execute(
            update(Job)
            .where(*where)
            .execution_options(**FETCH)
            .values(
                status="queued", lease_owner=None, lease_expires_at=None, message="queued again: its worker was lost"
            )
        )
        status = "queued"
    if done.rowcount == 0:
        return None
    _end_attempts(session, job_id, "lost", now, attempt)
    return status


def job_attempts(session: Session, job_id: int) -> list[JobAttempt]:
    """The job's lease history, one row per claim, in order."""
    return list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.attempt)))


def set_progress(
    session: Session, job_id: int, progress: float, message: str | None = None, *, attempt: int | None = None
) -> None:
    """Progress of a running job; fenced by `attempt` when given (LeaseLost)."""
    values: dict[str, Any] = {"progress": max(0.0, min(1.0, float(progress)))}
    if message is not None:
        values["message"] = message[:2000]
    _fenced(session, job_id, attempt, **values)


def set_baseline(session: Session, job_id: int, baseline: dict[str, Any], *, attempt: int | None = None) -> None:
    _fenced(session, job_id, attempt, baseline=baseline, baseline_accuracy=baseline.get("accuracy"))


def cancel_requested(session: Session, job_id: int) -> bool:
    """True when the worker should stop: cancel asked for, or the job deleted meanwhile."""
    row = session.execute(select(Job.cancel_requested, Job.status).where(Job.id == job_id)).first()
    return row is None or bool(row.cancel_requested) or row.status == "cancelled"


def completed_steps(session: Session, job_id: int) -> int:
    """How many leading steps (0..k-1) are stored: a redelivered job resumes at step k."""
    indices = session.scalars(select(Step.index).where(Step.job_id == job_id).order_by(Step.index)).all()
    k = 0
    for i in indices:
        if i != k:
            break
        k += 1
    return k


def _split_step(step: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The step dict without per-layer mask/density, and the mask rows to store beside it."""
    metrics = dict(step)
    layers, masks = [], []
    for layer in step.get("layers") or []:
        layer = dict(layer)
        mask = layer.pop("mask", None) or {}
        density = layer.pop("density", None)
        layers.append(layer)
        grid = mask.get("grid")
        masks.append(
            {
                "layer": layer.get("name", ""),
                "grid": grid,
                "grid_shape": list(grid["shape"]) if grid else None,
                "density": density,
                "block_shape": mask.get("block_shape"),
                "weight_shape": layer.get("shape"),
                "sparsity": layer.get("sparsity"),
            }
        )
    metrics["layers"] = layers
    return metrics, masks


def add_step(session: Session, job_id: int, step: dict[str, Any], *, attempt: int | None = None) -> Step | None:
    """Store one engine step dict and update the job's summary. A step index already stored is left alone
    (returns None), so a redelivered job never stores a step twice. With `attempt`, the job row is first
    updated under the fence (LeaseLost, nothing stored, if the attempt no longer holds the job); that
    UPDATE also locks the row until the step commits, so no claim can slip in between."""
    index = int(step["index"])
    if attempt is not None:
        _fenced(session, job_id, attempt, updated_at=utcnow())
    if session.scalar(select(Step.id).where(Step.job_id == job_id, Step.index == index)) is not None:
        return None
    job = session.get(Job, job_id)
    if job is None:
        return None
    metrics, masks = _split_step(step)
    history = metrics.pop("history", None)  # the step's fine-tuning curve: steps.history, not its metrics
    # INSERT .. ON CONFLICT DO NOTHING: a concurrent writer of the same step loses quietly, without a
    # savepoint (pysqlite's SAVEPOINT outside a transaction would commit half of this step).
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    step_id = session.scalar(
        insert(Step)
        .values(job_id=job_id, index=index, metrics=metrics, history=history, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["job_id", "index"])
        .returning(Step.id)
    )
    if step_id is None:
        return None
    row = session.get(Step, step_id)
    session.add_all([LayerMask(step_id=row.id, **m) for m in masks])
    accuracy = step.get("accuracy")
    latency = step.get("latency") or {}
    if index + 1 >= job.steps_done:
        job.last_sparsity = step.get("sparsity")
        job.last_accuracy = accuracy
        job.last_speedup = latency.get("speedup")
    job.steps_done = max(job.steps_done, index + 1)
    if accuracy is not None and (job.best_accuracy is None or accuracy > job.best_accuracy):
        job.best_accuracy = accuracy
    job.updated_at = utcnow()
    session.flush()
    return row


def request_cancel(session: Session, job: Job) -> Job:
    """A queued job, or a running one whose lease expired (its worker is gone), is cancelled at once; a
    running one is flagged and its worker stops it within seconds. Conditional updates, so a worker
    claiming the job at the same moment cannot be overwritten."""
    now = utcnow()
    done = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == "queued")
        .values(**_status_values("cancelled", now, None, "cancelled before it started"))
    )
    if done.rowcount == 0:
        done = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "running", _expired(now))
            .execution_options(**FETCH)
            .values(**_status_values("cancelled", now, None, "cancelled (its worker was lost)"))
        )
        if done.rowcount:
            _end_attempts(session, job.id, "lost", now)
    if done.rowcount == 0:
        flagged = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "running")
            .values(cancel_requested=True, message="cancelling")
        )
        if flagged.rowcount == 0:
            session.refresh(job)
            raise StoreError("status", f"job {job.id} is {job.status}; only queued or running jobs can be cancelled")
    session.flush()
    session.refresh(job)
    return job


RETRY_REFUSED = "only failed or cancelled jobs, or running ones whose worker was lost, can be retried"


def retry_job(session: Session, job: Job) -> Job:
    """A failed or cancelled job, or a running one whose lease expired (its worker is gone), is queued
    again; the worker resumes after its last stored step. `attempts` is counted by the worker when it claims
    the job (one per run), not here."""
    now = utcnow()
    again = {"status": "queued", "cancel_requested": False, "error": None, "finished_at": None}
    done = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_(("failed", "cancelled")))
        .values(**again, message="queued again")
    )
    if done.rowcount == 0:
        done = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "running", _expired(now))
            .execution_options(**FETCH)
            .values(**again, lease_owner=None, lease_expires_at=None, message="queued again: its worker was lost")
        )
        if done.rowcount:
            _end_attempts(session, job.id, "lost", now)
    if done.rowcount == 0:
        session.refresh(job)
        raise StoreError("status", f"job {job.id} is {job.status}; {RETRY_REFUSED}")
    session.flush()
    session.refresh(job)
    return job


def job_artifact_dir(artifact_dir: Path, job_id: int) -> Path:
    return Path(artifact_dir) / "jobs" / str(int(job_id))


def delete_job(session: Session, job: Job, artifact_dir: Path) -> None:
    """Remove a job and its artifact directory. Its tags, steps and their masks go with it through the
    foreign keys' ON DELETE CASCADE (SQLite enforces them because backend.db turns foreign_keys on)."""
    job_id = job.id
    session.delete(job)
    session.flush()
    shutil.rmtree(job_artifact_dir(artifact_dir, job_id), ignore_errors=True)


# ---------------------------------------------------------------- workers registry

WORKER_FIELDS = ("device", "gpu_name", "gpu_memory_bytes", "torch_version", "catalog")


def register_worker(
    session: Session,
    name: str,
    *,
    host: str,
    pid: int,
    queues: list[str],
    concurrency: int,
    now: datetime | None = None,
    **fields: Any,
) -> Worker:
    """Add or refresh the row of worker `name` (started now, online); `fields`: any of WORKER_FIELDS."""
    bad = set(fields) - set(WORKER_FIELDS)
    if bad:
        raise StoreError(sorted(bad)[0], f"unknown worker field; allowed: {', '.join(WORKER_FIELDS)}")
    now = now or utcnow()
    worker = session.get(Worker, name) or Worker(name=name)
    worker.host, worker.pid, worker.queues, worker.concurrency = host, pid, list(queues), concurrency
    worker.started_at = worker.last_heartbeat = now
    worker.stopped_at = worker.current_job_id = None
    for key, value in fields.items():
        setattr(worker, key, value)
    session.add(worker)
    session.flush()
    return worker


def update_worker(session: Session, name: str, **fields: Any) -> bool:
    """Set some of WORKER_FIELDS (what the worker found out about its device, its catalog)."""
    bad = set(fields) - set(WORKER_FIELDS)
    if bad:
        raise StoreError(sorted(bad)[0], f"unknown worker field; allowed: {', '.join(WORKER_FIELDS)}")
    return session.execute(update(Worker).where(Worker.name == name).values(**fields)).rowcount == 1


def worker_heartbeat(session: Session, name: str, now: datetime | None = None) -> bool:
    """The worker is alive; False when it has no row (register it again)."""
    now = now or utcnow()
    return session.execute(update(Worker).where(Worker.name == name).values(last_heartbeat=now)).rowcount == 1


def set_worker_job(session: Session, name: str, job_id: int | None, *, was: int | None = None) -> None:
    """The job the worker runs now (None: idle). `was`: change it only while it is still that job."""
    where = [Worker.name == name]
    if was is not None:
        where.append(Worker.current_job_id == was)
    session.execute(update(Worker).where(*where).values(current_job_id=job_id))


def mark_worker_stopped(session: Session, name: str, now: datetime | None = None) -> None:
    session.execute(update(Worker).where(Worker.name == name).values(stopped_at=now or utcnow(), current_job_id=None))


def list_workers(session: Session) -> list[Worker]:
    """Every registered worker, the most recently heard from first."""
    return list(session.scalars(select(Worker).order_by(Worker.last_heartbeat.desc(), Worker.name)))


def forget_workers(session: Session, silent_for_s: float, now: datetime | None = None) -> int:
    """Remove the rows of workers not heard from for `silent_for_s` (each worker start adds one)."""
    cutoff = (now or utcnow()) - timedelta(seconds=silent_for_s)
    return session.execute(delete(Worker).where(Worker.last_heartbeat < cutoff)).rowcount


def worker_to_dict(worker: Worker, online_within_s: float, now: datetime | None = None) -> dict[str, Any]:
    """The Worker JSON; online while not stopped and its last heartbeat is younger than online_within_s."""
    now = now or utcnow()
    beat = worker.last_heartbeat if worker.last_heartbeat.tzinfo else worker.last_heartbeat.replace(tzinfo=UTC)
    age = (now - beat).total_seconds()
    return {
        "name": worker.name,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues or []),
        "device": worker.device,
        "gpu_name": worker.gpu_name,
        "gpu_memory_bytes": worker.gpu_memory_bytes,
        "torch_version": worker.torch_version,
        "concurrency": worker.concurrency,
        "started_at": iso(worker.started_at),
        "last_heartbeat": iso(worker.last_heartbeat),
        "seconds_since_heartbeat": round(max(age, 0.0), 3),
        "stopped_at": iso(worker.stopped_at),
        "online": worker.stopped_at is None and age < online_within_s,
        "current_job_id": worker.current_job_id,
        "catalog": worker.catalog,
    }


# ---------------------------------------------------------------- steps and masks


def list_steps(session: Session, job_id: int, after: int | None = None) -> list[Step]:
    q = select(Step).where(Step.job_id == job_id)
    if after is not None:
        q = q.where(Step.index > after)
    return list(session.scalars(q.order_by(Step.index)).all())


def get_step(session: Session, job_id: int, index: int | None = None) -> Step | None:
    """Step `index` of a job, or its latest step."""
    q = select(Step).where(Step.job_id == job_id)
    q = q.where(Step.index == index) if index is not None else q.order_by(Step.index.desc()).limit(1)
    return session.scalars(q).first()


def get_layer_mask(session: Session, job_id: int, layer: str, index: int | None = None) -> tuple[int, LayerMask] | None:
    """(step index, mask row) of a layer at a step (default: the latest step with that layer).
    The grid blob (up to megabytes for fine-grained masks of big layers) is not loaded."""
    columns = [
        LayerMask.id,
        LayerMask.step_id,
        LayerMask.layer,
        LayerMask.grid_shape,
        LayerMask.density,
        LayerMask.block_shape,
        LayerMask.weight_shape,
        LayerMask.sparsity,
    ]
    q = (
        select(Step.index, LayerMask)
        .join(LayerMask, LayerMask.step_id == Step.id)
        .options(load_only(*columns))
        .where(Step.job_id == job_id, LayerMask.layer == layer)
    )
    q = q.where(Step.index == index) if index is not None else q.order_by(Step.index.desc())
    row = session.execute(q.limit(1)).first()
    return (row[0], row[1]) if row else None


def step_curves(session: Session, job_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Step metrics of several jobs in one query, in step order."""
    out: dict[int, list[dict[str, Any]]] = {j: [] for j in job_ids}
    rows = session.execute(
        select(Step.job_id, Step.metrics).where(Step.job_id.in_(job_ids)).order_by(Step.job_id, Step.index)
    )
    for job_id, metrics in rows:
        out[job_id].append(metrics)
    return out


def new_steps(session: Session, after_id: int, job_id: int | None = None) -> list[tuple[int, int, int]]:
    """(step row id, job id, index) of steps stored after row `after_id`."""
    q = select(Step.id, Step.job_id, Step.index).where(Step.id > after_id)
    if job_id is not None:
        q = q.where(Step.job_id == job_id)
    return [tuple(r) for r in session.execute(q.order_by(Step.id)).all()]


def last_step_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Step.id))) or 0)


# ---------------------------------------------------------------- groups (sweeps)


def create_group_within_limit(
    session: Session, name: str, sweep: dict[str, Any] | None, specs: list[Any], owner_id: int | None, limit: int
) -> tuple[JobGroup, list[Job]] | None:
    """A group and one queued job per validated spec, unless the owner's queued or running jobs plus these
    would exceed `limit` (then None, nothing added). The whole group is counted under the owner's lock
    (lock_owner_queue), so concurrent submits cannot overshoot the limit; the caller commits."""
    lock_owner_queue(session, owner_id)
    if count_active_jobs_of(session, owner_id) + len(specs) > limit:
        return None
    group = JobGroup(name=name, sweep=sweep, owner_id=owner_id)
    session.add(group)
    session.flush()
    jobs = []
    for spec in specs:
        job = create_job(session, spec, owner_id=owner_id)
        job.group_id = group.id
        jobs.append(job)
    session.flush()
    return group, jobs


def get_group(session: Session, group_id: int) -> dict[str, Any] | None:
    """The group JSON (group_to_dict), None if there is none."""
    row = session.execute(
        select(JobGroup, User.name).outerjoin(User, User.id == JobGroup.owner_id).where(JobGroup.id == group_id)
    ).first()
    return None if row is None else group_to_dict(row[0], row[1], group_counts(session, group_id))


def list_groups(session: Session, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Groups, newest first, each with its job counts by status (one grouped query over the page's groups)."""
    total = int(session.scalar(select(func.count()).select_from(JobGroup)) or 0)
    rows = session.execute(
        select(JobGroup, User.name)
        .outerjoin(User, User.id == JobGroup.owner_id)
        .order_by(JobGroup.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    ids = [g.id for g, _ in rows]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for group_id, status, n in session.execute(
            select(Job.group_id, Job.status, func.count())
            .where(Job.group_id.in_(ids))
            .group_by(Job.group_id, Job.status)
        ):
            counts[group_id][status] = int(n)
    return [group_to_dict(g, owner, counts[g.id]) for g, owner in rows], total


def group_counts(session: Session, group_id: int) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).where(Job.group_id == group_id).group_by(Job.status)).all()
    return {status: int(n) for status, n in rows}


def group_to_dict(group: JobGroup, owner: str | None, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "sweep": group.sweep,
        "owner": owner,
        "created_at": iso(group.created_at),
        "jobs": sum(counts.values()),
        "counts": {status: counts.get(status, 0) for status in JOB_STATUSES},
    }


def group_job_ids(session: Session, group_id: int) -> list[int]:
    return [int(i) for i in session.scalars(select(Job.id).where(Job.group_id == group_id).order_by(Job.id))]


# ---------------------------------------------------------------- JSON shapes


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def job_to_dict(job: Job) -> dict[str, Any]:
    """The Job JSON of a Job from get_job or list_jobs."""
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "model": job.model,
        "dataset": job.dataset,
        "method": job.method,
        "schedule": job.schedule,
        "tags": list(job.tags or []),
        "spec": job.spec,
        "owner": job.owner.name if job.owner else None,
        "error": job.error,
        "queue": job.queue,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "baseline": job.baseline,
        "group_id": job.group_id,
        "source_job_id": job.source_job_id,
        "summary": {
            "steps": job.steps_done,
            "sparsity": job.last_sparsity,
            "accuracy": job.last_accuracy,
            "best_accuracy": job.best_accuracy,
            "baseline_accuracy": job.baseline_accuracy,
            "speedup": job.last_speedup,
        },
    }


def step_to_dict(step: Step) -> dict[str, Any]:
    return {**step.metrics, "index": step.index, "created_at": iso(step.created_at), "history": step.history}


# ---- queries used by the API routes


def jobs_by_id(session: Session, job_ids: list[int]) -> dict[int, Job]:
    """The jobs among `job_ids` that exist, by id (owners loaded in the same query)."""
    return {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))}


def ping(session: Session) -> None:
    """A round trip to the database (health checks)."""
    session.execute(select(1))


def newest_job_update(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Job.updated_at)))


def jobs_changed_since(session: Session, since: datetime | None, job_id: int | None = None) -> list[Job]:
    """Jobs updated after `since` (all when None), oldest change first; only job `job_id` if given."""
    q = select(Job)
    if since is not None:
        q = q.where(Job.updated_at > since)
    if job_id is not None:
        q = q.where(Job.id == job_id)
    return list(session.scalars(q.order_by(Job.updated_at)))


def mask_grid(session: Session, mask_id: int) -> dict[str, Any] | None:
    """The encoded keep grid of one layer mask (the blob get_layer_mask leaves out)."""
    return session.scalar(select(LayerMask.grid).where(LayerMask.id == mask_id))


def job_masks(session: Session, job_id: int) -> dict[tuple[int, str], LayerMask]:
    """Every stored layer mask of a job, by (step row id, layer)."""
    q = select(LayerMask).join(Step, Step.id == LayerMask.step_id).where(Step.job_id == job_id)
    return {(m.step_id, m.layer): m for m in session.scalars(q)}


# ---- submit limits and job edits

QUEUE_LOCK_CLASS = 0x504C  # first key of the Postgres advisory locks of the queued-job limit ("PL")


def _active_of(owner_id: int | None):
    owner = Job.owner_id.is_(None) if owner_id is None else Job.owner_id == owner_id
    return and_(owner, Job.status.in_(ACTIVE_STATUSES))


def lock_owner_queue(session: Session, owner_id: int | None) -> None:
    """Serialise, until the transaction ends, the writers that count and add active jobs of one owner (None:
    the anonymous owner of auth-off servers). Postgres: a transaction-scoped advisory lock keyed by the owner.
    SQLite: take the database's write lock now, before counting (a write statement that changes nothing
    does, as BEGIN IMMEDIATE would): the count and the insert then see and change the same state."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(QUEUE_LOCK_CLASS, owner_id or 0)))
    else:
        session.execute(update(Job).where(Job.id == -1).values(progress=Job.progress))


def count_active_jobs_of(session: Session, owner_id: int | None) -> int:
    """Queued or running jobs of an owner (None: the jobs without one)."""
    return int(session.scalar(select(func.count()).select_from(Job).where(_active_of(owner_id))) or 0)


def create_job_within_limit(session: Session, spec: Any, owner_id: int | None, limit: int) -> Job | None:
    """create_job unless the owner already has `limit` queued or running jobs (then None). Atomic against
    concurrent submits of the same owner until the caller commits (lock_owner_queue)."""
    lock_owner_queue(session, owner_id)
    if count_active_jobs_of(session, owner_id) >= limit:
        return None
    return create_job(session, spec, owner_id=owner_id)


def edit_job(
    session: Session, job: Job, *, name: str | None = None, tags: list[str] | None = None, notes: str | None = None
) -> Job:
    """Change a job's name, tags (the job_tags rows with them) or notes; None leaves a field as it is."""
    if name is not None:
        job.name = name
    if tags is not None:
        unique = list(dict.fromkeys(tags))
        job.tags = unique
        job.tag_rows = [JobTag(tag=t) for t in unique]
    if notes is not None:
        job.notes = notes
    session.flush()
    return job


def mean_durations(session: Session) -> dict[tuple[str, str], float]:
    """Mean seconds from start to end of the succeeded jobs, by (model, dataset): one grouped query."""
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", Job.finished_at - Job.started_at)
    else:
        seconds = (func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0
    rows = session.execute(
        select(Job.model, Job.dataset, func.avg(seconds))
        .where(Job.status == "succeeded", Job.started_at.is_not(None), Job.finished_at.is_not(None))
        .group_by(Job.model, Job.dataset)
    )
    return {(m, d): float(s) for m, d, s in rows if s is not None}


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def queue_estimates(
    session: Session, jobs: list[Job], online_within_s: float, now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """For each queued job of `jobs`: queue_position (1 = next among the queued jobs of its queue, by id)
    and expected_start_s. The estimate replays the queue on the online workers' slots (their concurrency)
    with each job's expected duration, the mean of the succeeded jobs of its model and dataset (running
    ones: what is left of it); null once a job on the way has no such measurement, or no worker serves the
    queue. Three small queries, made only when `jobs` has a queued one; never the step history."""
    queues = {j.queue for j in jobs if j.status == "queued"}
    if not queues:
        return {}
    now = now or utcnow()
    active = session.execute(
        select(Job.id, Job.queue, Job.status, Job.model, Job.dataset, Job.started_at)
        .where(Job.status.in_(ACTIVE_STATUSES), Job.queue.in_(queues))
        .order_by(Job.id)
    ).all()
    durations = mean_durations(session)
    cutoff = now - timedelta(seconds=online_within_s)
    slots: dict[str, int] = dict.fromkeys(queues, 0)
    for queues_of, concurrency in session.execute(
        select(Worker.queues, Worker.concurrency).where(Worker.stopped_at.is_(None), Worker.last_heartbeat > cutoff)
    ):
        for q in queues_of or []:
            if q in slots:
                slots[q] += max(int(concurrency or 1), 1)
    out: dict[int, dict[str, Any]] = {}
    for queue in queues:
        rows = [r for r in active if r.queue == queue]
        free: list[float] | None = [0.0] * slots[queue] if slots[queue] else None
        for r in rows:  # the running jobs hold slots until what is left of their expected duration
            if r.status != "running" or free is None:
                continue
            expected = durations.get((r.model, r.dataset))
            if expected is None:
                free = None
                continue
            elapsed = (now - _aware(r.started_at)).total_seconds() if r.started_at else 0.0
            free.sort()
            free[0] += max(expected - elapsed, 0.0)
        position = 0
        for r in rows:
            if r.status != "queued":
                continue
            position += 1
            start = None
            if free is not None:
                free.sort()
                start = round(free[0], 1)
                expected = durations.get((r.model, r.dataset))
                if expected is None:
                    free = None
                else:
                    free[0] += expected
            out[r.id] = {"queue_position": position, "expected_start_s": start}
    return out


def workers_version(session: Session) -> tuple:
    """Changes when a worker registers, beats or stops (the expected starts of queued jobs depend on it)."""
    q = select(func.count(), func.max(Worker.last_heartbeat), func.count(Worker.stopped_at)).select_from(Worker)
    return tuple(session.execute(q).one())


def job_to_public(job: Job, estimates: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The API's Job JSON: job_to_dict with the notes and, for a queued job, its place in the queue."""
    place = (estimates or {}).get(job.id, {})
    return {
        **job_to_dict(job),
        "notes": job.notes or "",
        "queue_position": place.get("queue_position"),
        "expected_start_s": place.get("expected_start_s"),
    }


# ---- sensitivity grids

from backend.models import SensitivityPoint  # noqa: E402  (this block is appended; imports above are shared)


def add_sensitivity(session: Session, job_id: int, rows: list[dict[str, Any]], *, attempt: int | None = None) -> int:
    """Store rows of a sensitivity scan (each: layer, position, sparsity and its metrics). With `attempt`,
    fenced like add_step: the job row is updated first under the fence (LeaseLost, nothing stored, when the
    attempt no longer holds the job). A (layer, sparsity) already stored is left alone (a redelivered job
    scans again). Returns the rows inserted."""
    if attempt is not None:
        _fenced(session, job_id, attempt, updated_at=utcnow())
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    added = 0
    for row in rows:
        metrics = {k: v for k, v in row.items() if k not in ("layer", "sparsity", "position")}
        added += session.execute(
            insert(SensitivityPoint)
            .values(
                job_id=job_id,
                position=int(row["position"]),
                layer=str(row["layer"]),
                sparsity=float(row["sparsity"]),
                metrics=metrics,
            )
            .on_conflict_do_nothing(index_elements=["job_id", "layer", "sparsity"])
        ).rowcount
    if attempt is None:
        session.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow()))
    session.flush()
    return added


def sensitivity_grid(session: Session, job_id: int) -> list[dict[str, Any]]:
    """A job's stored sensitivity rows, layers in network order, each layer's sparsities ascending."""
    q = (
        select(SensitivityPoint)
        .where(SensitivityPoint.job_id == job_id)
        .order_by(SensitivityPoint.position, SensitivityPoint.sparsity)
    )
    return [{"layer": p.layer, "position": p.position, "sparsity": p.sparsity, **p.metrics} for p in session.scalars(q)]


# ---- worker catalogs


def set_worker_catalog(session: Session, name: str, catalog: dict[str, Any]) -> bool:
    """Store what worker `name` can run (worker.engine.catalog.worker_catalog's dict); False when it has no row."""
    return session.execute(update(Worker).where(Worker.name == name).values(catalog=catalog)).rowcount == 1


def online_worker_catalogs(session: Session, online_within_s: float, now: datetime | None = None) -> list[dict]:
    """{"name", "queues", "device", "catalog"} of every online worker, by name (catalog None until published)."""
    cutoff = (now or utcnow()) - timedelta(seconds=online_within_s)
    q = (
        select(Worker.name, Worker.queues, Worker.device, Worker.catalog)
        .where(Worker.stopped_at.is_(None), Worker.last_heartbeat > cutoff)
        .order_by(Worker.name)
    )
    return [
        {"name": name, "queues": list(queues or []), "device": device, "catalog": catalog}
        for name, queues, device, catalog in session.execute(q)
    ]

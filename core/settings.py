"""One settings object for every process; environment prefix PRUNELAB_. Defaults are the embedded mode."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRUNELAB_", extra="ignore")

    home: Path = Path.home() / ".prunelab"
    database_url: str = ""  # default: sqlite:///HOME/prunelab.sqlite
    broker_url: str = ""  # default: sqla+sqlite:///HOME/broker.sqlite
    data_dir: Path | None = None  # default: HOME/data
    artifact_dir: Path | None = None  # default: HOME/artifacts
    host: str = "127.0.0.1"
    port: int = 8000
    auth: Literal["off", "tokens"] = "off"
    public_read: bool = False
    max_queued_jobs_per_user: int = 20
    max_queued_jobs_anonymous: int = 100  # the same limit with auth off (every job's owner is nobody)
    max_job_epochs: int = Field(5000, ge=1)  # baseline + steps x fine-tune + regularised epochs of one job
    max_sweep_jobs: int = Field(100, ge=1)  # jobs one sweep (a group submitted together) may expand into
    # Host names the API answers (comma separated; "*" for any). Default: the bound host, plus the other
    # loopback names for a loopback bind; any host for 0.0.0.0 / ::.
    allowed_hosts: str = ""
    max_request_bytes: int = 1_000_000
    # Redis hands an unacknowledged message out again after this long. Liveness does not depend on it: a
    # worker holds its job through a lease in the database (below), and a dead worker's job is re-queued by
    # the reaper once its lease expires; a message redelivered later finds the job leased or finished.
    visibility_timeout_s: int = 12 * 3600
    # A worker renews its job's lease every lease_s / 3; every worker and `serve` reap (re-queue) running
    # jobs whose lease expired, every lease_s / 3. A worker is online while its last heartbeat (also every
    # lease_s / 3) is younger than lease_s.
    lease_s: float = Field(60.0, ge=1.0, le=3600.0)
    worker_queues: str = "cpu"  # comma separated; a GPU machine runs "gpu" (or "gpu,cpu")
    worker_concurrency: int = 1
    # Step checkpoints kept per job: all, the last (what resume needs), or also the best by validation accuracy.
    keep_checkpoints: Literal["all", "last", "best-and-last"] = "best-and-last"
    baseline_cache_gb: float = Field(5.0, ge=0)  # trained baselines kept, least recently used evicted first

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        self.home = self.home.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'prunelab.sqlite'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.home / 'broker.sqlite'}"
        if self.data_dir is None:
            self.data_dir = self.home / "data"
        if self.artifact_dir is None:
            self.artifact_dir = self.home / "artifacts"
        return self

    @property
    def heartbeat_s(self) -> float:
        """Period of lease renewal, worker heartbeat and reaping."""
        return self.lease_s / 3

    @property
    def worker_online_s(self) -> float:
        """A worker whose last heartbeat is older than this (three heartbeats) is offline."""
        return self.lease_s

    @property
    def cache_dir(self) -> Path:
        """Trained baselines, shared by all jobs of this installation."""
        return self.artifact_dir / "baselines"


@lru_cache
def get_settings() -> Settings:
    return Settings()

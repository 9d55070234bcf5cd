"""One settings object for every process; environment prefix PRUNELAB_. Defaults are the embedded mode."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
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
    max_request_bytes: int = 1_000_000
    # Celery redelivers an unacknowledged job after this long; keep it above the longest job.
    visibility_timeout_s: int = 12 * 3600
    worker_queues: str = "cpu"  # comma separated; a GPU machine runs "gpu" (or "gpu,cpu")
    worker_concurrency: int = 1

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
    def cache_dir(self) -> Path:
        """Trained baselines, shared by all jobs of this installation."""
        return self.artifact_dir / "baselines"


@lru_cache
def get_settings() -> Settings:
    return Settings()

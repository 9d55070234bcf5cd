"""Fixtures for the service tests: a migrated database (SQLite file or a fresh Postgres schema), settings
pointing at temporary directories, an API client, and realistic engine step dicts built with worker/masks.py.
"""
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from backend.db import dispose_engines, upgrade
from backend.settings import Settings, get_settings
from worker.masks import density_grid, encode_density, encode_grid

TABLES = ["layer_masks", "steps", "job_tags", "jobs", "api_tokens", "users"]


@pytest.fixture(scope="session", autouse=True)
def _service_home(tmp_path_factory):
    """Every process-wide setting (the Celery broker the API enqueues on included) points into a temp HOME."""
    home = tmp_path_factory.mktemp("prunelab-home")
    saved = {k: os.environ.get(k) for k in ("PRUNELAB_HOME", "PRUNELAB_BROKER_URL")}
    os.environ["PRUNELAB_HOME"] = str(home)
    os.environ["PRUNELAB_BROKER_URL"] = f"sqla+sqlite:///{home / 'broker.sqlite'}"
    get_settings.cache_clear()
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_schema_url(request):
    """A fresh schema in database `test`, migrated once per session, dropped at the end."""
    base = request.getfixturevalue("postgres_url")
    schema = f"pl_api_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A migrated, empty database: a new SQLite file, or the session's Postgres schema emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prunelab.sqlite'}"
        upgrade(url)
        yield url
        dispose_engines()
        return
    url = request.getfixturevalue("postgres_schema_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def api_settings(db_url, tmp_path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, artifact_dir=tmp_path / "artifacts",
                    broker_url=os.environ["PRUNELAB_BROKER_URL"])


@pytest.fixture
def make_client(api_settings):
    """make_client(**setting_overrides) -> a TestClient on a fresh app."""
    from fastapi.testclient import TestClient

    from backend.api import create_app

    clients = []

    def make(**overrides):
        settings = api_settings.model_copy(update=overrides)
        client = TestClient(create_app(settings))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client):
    return make_client()


def make_step(index: int, layers: dict[str, tuple[int, int]] | None = None, sparsity: float = 0.5,
              block: tuple[int, int] = (2, 2), accuracy: float = 0.9, seed: int = 0,
              checkpoint: str | None = None) -> dict:
    """An engine step dict as worker/engine produces it: block-pruned layers with keep grids and densities."""
    rng = np.random.default_rng(seed + index)
    layer_dicts, total, nonzero = [], 0, 0
    for name, (rows, cols) in (layers or {"fc1": (300, 64), "fc2": (100, 300)}).items():
        br, bc = block
        keep = rng.random((-(-rows // br), -(-cols // bc))) >= sparsity
        mask2d = np.kron(keep, np.ones(block, dtype=bool))[:rows, :cols]
        kept = int(mask2d.sum())
        total, nonzero = total + rows * cols, nonzero + kept
        layer_dicts.append({"name": name, "kind": "linear", "shape": [rows, cols], "params": rows * cols,
                            "nonzero": kept, "sparsity": 1 - kept / (rows * cols), "target_sparsity": sparsity,
                            "mask": {"block_shape": list(block), "grid": encode_grid(keep)},
                            "density": encode_density(density_grid(mask2d))})
    return {
        "index": index, "target_sparsity": sparsity, "sparsity": 1 - nonzero / total, "accuracy": accuracy,
        "accuracy_before_finetune": accuracy - 0.03, "accuracy_drop": 0.03, "val_accuracy": accuracy, "loss": 0.2,
        "params_total": total, "params_nonzero": nonzero, "size_dense_bytes": total * 4,
        "size_sparse_bytes": nonzero * 4 + 1000, "size_compact_bytes": total * 4,
        "flops_dense": 2 * total, "flops_effective": 2 * nonzero,
        "latency": {"device": "cpu", "batch_size": 64, "dense_ms": 1.2, "realised_ms": 0.9, "speedup": 1.33,
                    "form": "bsr"},
        "seconds": 0.5, "checkpoint": checkpoint or f"checkpoints/step_{index}.pt", "layers": layer_dicts,
    }


@pytest.fixture
def step_factory():
    return make_step


@pytest.fixture
def spec_dict():
    def make(**overrides) -> dict:
        spec = {"name": "lenet-block", "model": "lenet300_100", "dataset": "digits",
                "method": {"kind": "block", "block_size": 2}, "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 3},
                "train": {"epochs": 1}, "device": "cpu", "tags": ["demo"]}
        spec.update(overrides)
        return spec
    return make


def artifact_path(settings: Settings, job_id: int) -> Path:
    return Path(settings.artifact_dir) / "jobs" / str(job_id)

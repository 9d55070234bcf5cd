"""The worker's Celery app: the broker configuration of backend.broker with this side's task module."""

from __future__ import annotations

from celery import Celery

from backend.broker import make_celery
from core.settings import Settings


def worker_app(settings: Settings | None = None) -> Celery:
    return make_celery(settings, include=["worker.tasks", "worker.export_task"])

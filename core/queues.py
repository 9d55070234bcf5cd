"""Queue names and the task names the API and the workers agree on (the broker carries only "run job N"
and "export step K of job N")."""

from __future__ import annotations

QUEUES = ("default", "cpu", "gpu")
TASK_NAME = "prunelab.run_job"
EXPORT_TASK_NAME = "prunelab.export_step"  # (job id, 1-based step, format): writes exports/step-K.<ext>
EXPORT_FORMATS = ("onnx", "torchscript", "state_dict")
EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "state_dict": ".state_dict.pt"}


def export_file_name(step: int, fmt: str) -> str:
    """The file of 1-based step `step` exported as `fmt`, inside the job's artifact dir's exports/ folder."""
    return f"step-{int(step)}{EXPORT_SUFFIXES[fmt]}"


def check_queue(queue: str) -> str:
    if queue not in QUEUES:
        raise ValueError(f"queue: unknown queue {queue!r}; allowed: {', '.join(QUEUES)}")
    return queue


def parse_queues(text: str, source: str = "--queues") -> list[str]:
    """A comma-separated list of queue names, in order, without repeats; ValueError naming `source`."""
    names = [q.strip() for q in text.split(",") if q.strip()]
    bad = [q for q in names if q not in QUEUES]
    if not names or bad:
        raise ValueError(
            f"{source}: unknown queue {bad[0]!r}; allowed: {', '.join(QUEUES)} (comma separated)"
            if bad
            else f"{source}: give at least one of {', '.join(QUEUES)}"
        )
    return list(dict.fromkeys(names))


def is_sqlalchemy_broker(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0].split("+", 1)[0] in ("sqla", "sqlalchemy")

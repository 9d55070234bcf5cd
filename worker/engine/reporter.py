"""How the engine talks to whoever runs it (the CLI's progress bar, the Celery task's database writer).

The engine calls these in order: on_baseline once, then on_progress many times and on_step once per
pruning step. It saves a step's checkpoint before calling on_step, so a runner that stores steps can
resume a job after its last stored step. It checks `cancelled()` between batches and between steps
and raises Cancelled when it answers True.

A sensitivity scan has no steps: it calls on_sensitivity(rows) once per scanned layer, with that layer's
rows (layer, position in the network, sparsity, accuracy, val_accuracy, loss, params_removed,
flops_removed, latency, ...). on_sensitivity is optional: the engine looks it up with getattr, so
reporters written before it keep working (they get the grid in the returned result only).

commit_file(tmp, path) is optional too: the engine writes each step checkpoint to a temporary file and,
when the reporter has it, lets it do the rename into checkpoints/step_k.pt (the database reporter renames
only while its attempt still holds the job, so a worker that lost the job never overwrites a checkpoint of
the one that took it over; it raises Cancelled instead). Without it the engine renames the file itself.
"""

from typing import Protocol


class Cancelled(Exception):
    """Raised by the engine when the reporter asked it to stop."""


class Reporter(Protocol):
    def on_baseline(self, metrics: dict) -> None: ...

    def on_step(self, step: dict) -> None: ...

    def on_progress(self, fraction: float, message: str) -> None: ...

    def cancelled(self) -> bool: ...


class NullReporter:
    """A reporter that records nothing and never cancels."""

    def on_baseline(self, metrics: dict) -> None:
        pass

    def on_step(self, step: dict) -> None:
        pass

    def on_sensitivity(self, rows: list[dict]) -> None:
        pass

    def on_progress(self, fraction: float, message: str) -> None:
        pass

    def cancelled(self) -> bool:
        return False

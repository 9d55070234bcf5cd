"""Run one job: train or load the baseline, then prune step by step as the schedule says.

Schedules
- oneshot: every target of `sparsities` is pruned from the same baseline, with a fresh pruner.
- iterative: one model and one pruner for the whole job; round r (1-based) prunes each layer to
  1 - (1 - rate_l)^r, rate_l = layer_rates[l] or rate, until `rounds` rounds or until the overall target
  (weighted by layer size) reaches `target`, whichever comes first.

After pruning (schedule.after)
- finetune: train finetune_epochs from the pruned weights (lr = finetune_lr or train.lr), masks held.
- rewind (weight rewinding, Renda et al.; lottery tickets when rewind_epoch = 0): every weight of the
  network is reset to its value after `rewind_epoch` epochs of the baseline training, the masks are applied
  again (pruned weights zero), and the survivors are retrained for finetune_epochs. After channel removal the
  early weights are cut down to the surviving channels (pruner.rewind).
- none: measured right after pruning.
Fine-tuning and rewinding keep the weights with the best validation accuracy (the pruned weights count).

accuracy_drop (seed 003): test accuracy of the model a step starts from (the baseline; for iterative
rounds after the first, the previous round's result) minus the test accuracy right after pruning.

Determinism: step k seeds torch with spec.seed + k + 1, so a job resumed at step k (iterative: from
checkpoint k-1, which holds the model and the masks) produces the same remaining steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.spec import GroupLassoMethod, IterativeSchedule, JobSpec, MagnitudeMethod, OneShotSchedule, SpecError
from worker.engine.data import Splits, load_dataset
from worker.engine.models import CONV_INPUT_SIZE, build_model
from worker.engine.reporter import Reporter
from worker.engine.training import CancelCheck, TrainConfig, evaluate, state_copy, train

REWIND_SNAPSHOTS = (0, 1, 2, 3)  # epochs of the baseline training kept in the cache for rewinding
MEASURE_UNITS = 0.25  # progress weight of pruning + measuring a step, in epochs


# ---------------------------------------------------------------- small helpers


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device", "cuda was asked for but no CUDA device is available here; allowed: auto, cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def baseline_key(spec: JobSpec) -> str:
    return hashlib.sha256(json.dumps(spec.training_key(), sort_keys=True).encode()).hexdigest()


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def layer_sizes(model: nn.Module, names: list[str]) -> dict[str, int]:
    modules = dict(model.named_modules())
    return {n: modules[n].weight.numel() for n in names}


def weighted_mean(values: dict[str, float], sizes: dict[str, int]) -> float:
    total = sum(sizes[n] for n in values)
    return sum(values[n] * sizes[n] for n in values) / total if total else 0.0


class Progress:
    """Maps the parts of a job (baseline epochs, steps) onto one 0..1 fraction for the reporter."""

    def __init__(self, reporter: Reporter, total_units: float):
        self.reporter = reporter
        self.total = max(total_units, 1e-9)
        self.done = 0.0

    def part(self, units: float) -> Callable[[float, str], None]:
        start = self.done

        def report(fraction: float, message: str) -> None:
            self.reporter.on_progress(min(1.0, (start + fraction * units) / self.total), message)

        return report

    def advance(self, units: float, message: str) -> None:
        self.done += units
        self.reporter.on_progress(min(1.0, self.done / self.total), message)


# ---------------------------------------------------------------- schedules


def step_targets(spec: JobSpec, sizes: dict[str, int]) -> list[tuple[float, dict[str, float]]]:
    """(overall target, per-layer targets) of every step. The per-layer dict is empty when every layer
    gets the overall target, so global-scope pruners can spread it as they choose."""
    method, sched = spec.method, spec.schedule
    fixed = dict(method.layer_sparsity) if isinstance(method, MagnitudeMethod) and method.layer_sparsity else {}
    if isinstance(sched, OneShotSchedule):
        if fixed:
            return [(weighted_mean(fixed, sizes), fixed) for _ in sched.sparsities]
        return [(float(t), {}) for t in sched.sparsities]
    assert isinstance(sched, IterativeSchedule)
    rates = {n: (sched.layer_rates or {}).get(n, sched.rate) for n in sizes}
    per_layer_given = bool(sched.layer_rates)
    steps: list[tuple[float, dict[str, float]]] = []
    max_rounds = sched.rounds if sched.rounds is not None else 200
    for r in range(1, max_rounds + 1):
        if fixed:
            layers = fixed
        else:
            layers = {n: 1.0 - (1.0 - rates[n]) ** r for n in sizes}
        overall = weighted_mean(layers, sizes)
        steps.append((overall, layers if (fixed or per_layer_given) else {}))
        if sched.target is not None and overall >= sched.target - 1e-9:
            break
    return steps


# ---------------------------------------------------------------- baseline (trained or cached)


def _model_for(spec: JobSpec, splits: Splits, device: torch.device) -> nn.Module:
    torch.manual_seed(spec.seed)
    return build_model(spec.model, splits.shape, splits.num_classes).to(device)


def _measure(model: nn.Module, pruner: Any, spec: JobSpec, splits: Splits, device: torch.device) -> dict:
    from worker.engine.pruning import measure_model

    return measure_model(model, pruner, splits.shape, spec.measure.batch_size, device, spec.measure.latency)


def baseline(
    spec: JobSpec,
    splits: Splits,
    device: torch.device,
    cache_dir: Path,
    reporter: Reporter,
    progress: Progress,
    train_units: float,
) -> tuple[dict, dict[int, dict], dict]:
    """(best state_dict, rewind snapshots by epoch, baseline metrics); trains unless the cache has it."""
    path = Path(cache_dir) / f"{baseline_key(spec)}.pt"
    wanted = {e for e in (*REWIND_SNAPSHOTS, spec.schedule.rewind_epoch) if e <= spec.train.epochs}
    model = _model_for(spec, splits, device)
    entry = None
    if path.is_file():
        try:
            entry = torch.load(path, map_location=device, weights_only=True)
        except Exception:  # an unreadable cache file is rebuilt, never fatal
            entry = None
        if entry is not None and not wanted <= set(entry["snapshots"]):
            wanted |= set(entry["snapshots"])
            entry = None
    cached = entry is not None
    if cached:
        model.load_state_dict(entry["state"])
        train_seconds = entry["metrics"]["train_seconds"]
        progress.advance(train_units, "baseline loaded from the cache")
    else:
        cfg = TrainConfig.from_spec(spec.train, spec.dataset)
        result = train(
            model,
            splits,
            cfg,
            reporter=reporter,
            on_progress=progress.part(train_units),
            seed=spec.seed,
            snapshot_epochs=tuple(sorted(wanted)),
            label="baseline",
        )
        progress.advance(train_units, "baseline trained")
        train_seconds = result.seconds
        entry = {
            "key": spec.training_key(),
            "state": state_copy(model),
            "snapshots": result.snapshots,
            "metrics": {"train_seconds": train_seconds, "best_epoch": result.best_epoch},
        }
        atomic_save(entry, path)
    accuracy, loss = evaluate(model, splits.test)
    val_accuracy, _ = evaluate(model, splits.val)
    measured = _measure(model, None, spec, splits, device)
    metrics = {
        "accuracy": accuracy,
        "loss": loss,
        "val_accuracy": val_accuracy,
        "params_total": measured["params_total"],
        "params_nonzero": measured["params_nonzero"],
        "size_dense_bytes": measured["size_dense_bytes"],
        "flops": measured["flops_dense"],
        "latency": measured.get("latency"),
        "train_seconds": train_seconds,
        "cached": cached,
        "device": str(device),
    }
    return entry["state"], entry["snapshots"], metrics


# ---------------------------------------------------------------- the job


def _checkpoint(out_dir: Path, k: int) -> Path:
    return out_dir / "checkpoints" / f"step_{k}.pt"


def _save_checkpoint(path: Path, model: nn.Module, pruner: Any, spec: JobSpec, splits: Splits, step: dict) -> None:
    # Only tensors and plain data, so every reader can use torch.load(weights_only=True). A physically
    # smaller model (channel removal) is rebuilt from build_model + pruner.restructure(): see load_checkpoint.
    summary = {k: v for k, v in step.items() if k != "layers"}
    atomic_save(
        {
            "state_dict": model.state_dict(),
            "pruner": pruner.state_dict(),
            "spec": spec.model_dump(mode="json"),
            "in_shape": list(splits.shape),
            "num_classes": splits.num_classes,
            "step": summary,
        },
        path,
    )


def _restore(ckpt: dict, model: nn.Module, pruner: Any) -> nn.Module:
    """Load a step checkpoint into a freshly built model and its pruner; returns the (restructured) model."""
    pruner.load_state_dict(ckpt["pruner"])
    model = pruner.restructure(model)
    model.load_state_dict(ckpt["state_dict"])
    pruner.apply_masks(model)
    return model


def cpu_threads(spec: JobSpec, device: torch.device) -> int:
    """Intra-op threads for this job. The MLP's matrices are too small to gain from several threads, and
    OpenMP threads that wait on each other collapse when the cores are shared (measured: the issue's
    LeNet/digits spec took 100 s with 2 threads on this busy 2-core machine, 13 s with 1). OMP_NUM_THREADS
    set by the user wins."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    return 1 if spec.model == "lenet300_100" else torch.get_num_threads()


def run_job(
    spec: JobSpec, out_dir: Path, reporter: Reporter, *, data_dir: Path, cache_dir: Path, completed_steps: int = 0
) -> dict:
    """Run `spec`; report the baseline and every step to `reporter`; return the result dict
    {"spec", "baseline", "steps", "device", "seconds"} (steps: those run by this call)."""
    device = resolve_device(spec.device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cpu_threads(spec, device))
    try:
        return _run_job(spec, Path(out_dir), reporter, device, Path(data_dir), Path(cache_dir), completed_steps)
    finally:
        torch.set_num_threads(previous_threads)


def _run_job(
    spec: JobSpec,
    out_dir: Path,
    reporter: Reporter,
    device: torch.device,
    data_dir: Path,
    cache_dir: Path,
    completed_steps: int,
) -> dict:
    from worker.engine.pruning import make_pruner

    started = time.perf_counter()
    method, sched = spec.method, spec.schedule
    check = CancelCheck(reporter)
    splits = load_dataset(
        spec.dataset,
        data_dir,
        device,
        spec.train.val_fraction,
        spec.seed,
        image_size=None if spec.model == "lenet300_100" else CONV_INPUT_SIZE,
    )
    sizes = layer_sizes(_model_for(spec, splits, device), spec.pruned_layers())
    targets = step_targets(spec, sizes)
    if completed_steps < 0 or completed_steps > len(targets):
        raise ValueError(f"completed_steps: must be between 0 and {len(targets)} (the job's steps)")

    extra_epochs = method.epochs if isinstance(method, GroupLassoMethod) else 0
    step_units = sched.finetune_epochs + extra_epochs + MEASURE_UNITS
    remaining = len(targets) - completed_steps
    progress = Progress(reporter, spec.train.epochs + remaining * step_units)
    best_state, snapshots, base_metrics = baseline(
        spec, splits, device, cache_dir, reporter, progress, spec.train.epochs
    )
    reporter.on_baseline(base_metrics)

    finetune_cfg = TrainConfig.from_spec(spec.train, spec.dataset, epochs=sched.finetune_epochs, lr=sched.finetune_lr)

    def baseline_model() -> nn.Module:
        model = _model_for(spec, splits, device)
        model.load_state_dict(best_state)
        return model

    model: nn.Module | None = None
    pruner = None
    # Accuracy of the model a step prunes (seed 003's drop = this minus the accuracy right after pruning):
    # the baseline, or for iterative rounds after the first the previous round's result.
    accuracy_in = base_metrics["accuracy"]
    if isinstance(sched, IterativeSchedule):
        model = baseline_model()
        pruner = make_pruner(spec, model, splits.shape)
        if completed_steps > 0:
            ckpt = torch.load(_checkpoint(out_dir, completed_steps - 1), map_location=device, weights_only=True)
            model = _restore(ckpt, model, pruner)
            accuracy_in = ckpt["step"]["accuracy"]

    steps: list[dict] = []
    for k in range(completed_steps, len(targets)):
        check(force=True)
        step_started = time.perf_counter()
        torch.manual_seed(spec.seed + k + 1)
        overall, per_layer = targets[k]
        if isinstance(sched, OneShotSchedule):
            model = baseline_model()
            pruner = make_pruner(spec, model, splits.shape)
        label = f"step {k + 1}/{len(targets)}"
        report = progress.part(step_units)
        done_units = [0.0]

        def train_fn(m: nn.Module, epochs: int, p: Any) -> None:
            # The pruner's own training (group lasso's regularised epochs): no best-checkpoint selection.
            cfg = TrainConfig.from_spec(spec.train, spec.dataset, epochs=epochs, lr=sched.finetune_lr)
            start = done_units[0]
            train(
                m,
                splits,
                cfg,
                pruner=p,
                reporter=reporter,
                seed=spec.seed + k + 1,
                keep_best=False,
                label=f"{label}: regularised training",
                on_progress=lambda f, msg: report((start + f * epochs) / step_units, msg),
            )
            done_units[0] += epochs

        model = pruner.prune(model, overall, per_layer, train_fn)
        pruner.apply_masks(model)
        accuracy_before, loss = evaluate(model, splits.test)
        if sched.after != "none" and sched.finetune_epochs > 0:
            if sched.after == "rewind":
                pruner.rewind(model, snapshots[sched.rewind_epoch])
            start = done_units[0]
            tuned = train(
                model,
                splits,
                finetune_cfg,
                pruner=pruner,
                reporter=reporter,
                seed=spec.seed + k + 1,
                label=f"{label}: {'retraining' if sched.after == 'rewind' else 'fine-tuning'}",
                on_progress=lambda f, msg: report((start + f * sched.finetune_epochs) / step_units, msg),
            )
            pruner.apply_masks(model)
            accuracy, loss = evaluate(model, splits.test)
            val_accuracy = tuned.best_val_accuracy  # the model is left at its best-validation weights
        else:
            accuracy = accuracy_before
            val_accuracy, _ = evaluate(model, splits.val)
        check(force=True)
        layers = pruner.layer_report(model)
        total = sum(layer["params"] for layer in layers)
        nonzero = sum(layer["nonzero"] for layer in layers)
        measured = _measure(model, pruner, spec, splits, device)
        step = {
            "index": k,
            "target_sparsity": overall,
            "sparsity": 1.0 - nonzero / total if total else 0.0,
            "accuracy": accuracy,
            "accuracy_before_finetune": accuracy_before,
            "accuracy_drop": accuracy_in - accuracy_before,
            "val_accuracy": val_accuracy,
            "loss": loss,
            **measured,
            "seconds": 0.0,
            "checkpoint": f"checkpoints/{_checkpoint(out_dir, k).name}",
            "layers": layers,
        }
        step["seconds"] = time.perf_counter() - step_started
        _save_checkpoint(_checkpoint(out_dir, k), model, pruner, spec, splits, step)
        progress.advance(step_units, f"{label} done: sparsity {step['sparsity']:.3f}, accuracy {accuracy:.4f}")
        reporter.on_step(step)
        steps.append(step)
        if isinstance(sched, IterativeSchedule):
            accuracy_in = accuracy

    return {
        "spec": spec.model_dump(mode="json"),
        "baseline": base_metrics,
        "steps": steps,
        "device": str(device),
        "seconds": time.perf_counter() - started,
    }


def load_checkpoint_model(path: Path, map_location: str = "cpu") -> nn.Module:
    """The model stored in a step checkpoint (for users and tests); reads with weights_only=True."""
    from worker.engine.pruning import make_pruner

    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    spec = JobSpec.model_validate(ckpt["spec"])
    in_shape = tuple(ckpt["in_shape"])
    model = build_model(spec.model, in_shape, ckpt["num_classes"]).to(map_location)
    return _restore(ckpt, model, make_pruner(spec, model, in_shape))

"""Run one job: train or load the baseline, then prune step by step as the schedule says.

Schedules (OneShot, Iterative: objects with targets() and `chained`, picked by schedule.kind)
- oneshot: every target of `sparsities` is pruned from the same baseline, with a fresh pruner.
- iterative: one model and one pruner for the whole job; round r (1-based) prunes each layer to
  1 - (1 - rate_l)^r, rate_l = layer_rates[l] or rate, until `rounds` rounds or until the overall target
  (weighted by layer size) reaches `target`, whichever comes first. With a per-layer map
  (method.layer_sparsity) every layer moves toward its own target instead (see Iterative).
- sensitivity: no steps; each pruned layer alone to each of `sparsities` from the baseline, without
  fine-tuning (worker.engine.sensitivity.scan, one layer at a time so progress, cancellation and the grid
  come per layer: reporter.on_sensitivity(rows), and result["sensitivity"]).

After pruning (schedule.after)
- finetune: train finetune_epochs from the pruned weights (lr = finetune_lr or train.lr), masks held.
- rewind (weight rewinding, Renda et al.; lottery tickets when rewind_epoch = 0): every weight of the
  network is reset to its value after `rewind_epoch` epochs of the baseline training, the masks are applied
  again (pruned weights zero), and the survivors are retrained for finetune_epochs. After channel removal the
  early weights are cut down to the surviving channels (pruner.rewind).
- none: measured right after pruning.
Fine-tuning and rewinding keep the weights with the best validation accuracy (the pruned weights count).

accuracy_drop, as the one-shot vs iterative magnitude pruning study reports it: test accuracy of the model
a step starts from (the baseline; for iterative rounds after the first, the previous round's result) minus
the test accuracy right after pruning.

Disk: the spec is stored once per job (spec.json in the run directory), not in every checkpoint. After
each step is reported, the step checkpoints that `keep_checkpoints` does not keep are deleted: "all",
"last" (what resume needs: a resumed job starts from the last stored step's checkpoint) or
"best-and-last" (also the step with the highest validation accuracy). The rewind weights live in the
baseline cache, which is capped at `baseline_cache_gb` (least recently used entries evicted; a cache hit
counts as a use); an evicted baseline is trained again, with the same seed, when a job needs it.

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

from core.spec import IterativeSchedule, JobSpec, OneShotSchedule, SensitivitySchedule, SpecError
from worker.engine import sensitivity
from worker.engine.data import Splits, load_dataset
from worker.engine.metrics import LATENCY_BUDGET_S, measure_latency, measure_model
from worker.engine.models import build_model, data_image_size
from worker.engine.pruning import Pruner, make_pruner
from worker.engine.reporter import Reporter
from worker.engine.training import CancelCheck, TrainConfig, TrainResult, evaluate, state_copy, train

REWIND_SNAPSHOTS = (0, 1, 2, 3)  # epochs of the baseline training kept in the cache for rewinding
MEASURE_UNITS = 0.25  # progress weight of pruning + measuring a step, in epochs
SCAN_UNITS = 0.25  # progress weight of scanning one layer at every sparsity, in epochs
KEEP_CHECKPOINTS = ("all", "last", "best-and-last")
SPEC_FILE = "spec.json"
CHECKPOINT_INDEX = "index.json"  # {"val_accuracy": {step index: validation accuracy}} of every step run


# ---------------------------------------------------------------- small helpers


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device", "cuda was asked for but no CUDA device is available here; allowed: auto, cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def baseline_key(spec: JobSpec) -> str:
    return hashlib.sha256(json.dumps(spec.training_key(), sort_keys=True).encode()).hexdigest()


def atomic_save(obj: Any, path: Path, commit: Callable[[Path, Path], None] | None = None) -> None:
    """torch.save to a temporary file, then rename: readers never see half a file. `commit(tmp, path)` does
    the rename when given (a reporter's commit_file: the rename only while its job is still its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        (commit or os.replace)(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def dir_size_bytes(path: Path) -> int:
    """Bytes of all regular files under `path` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # removed meanwhile
                pass
    return total


def evict_baselines(cache_dir: Path, cap_bytes: int | None, keep: Path) -> list[Path]:
    """Delete the least recently used baselines (file mtime: written or last loaded) until the cache fits
    in cap_bytes; `keep` (the one this job uses) is never deleted. Returns the deleted paths."""
    if cap_bytes is None:
        return []
    entries = []
    for path in Path(cache_dir).glob("*.pt"):
        try:
            st = path.stat()
        except FileNotFoundError:  # another worker evicted it
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    deleted = []
    for _, size, path in sorted(entries):
        if total <= cap_bytes:
            break
        if path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        deleted.append(path)
    return deleted


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


class OneShot:
    """Every target of `sparsities` pruned from the same trained baseline, each with a fresh pruner."""

    chained = False  # each step starts from the baseline

    def __init__(self, sched: OneShotSchedule, sizes: dict[str, int], fixed: dict[str, float]):
        self.sched, self.sizes, self.fixed = sched, sizes, fixed

    def targets(self) -> list[tuple[float, dict[str, float]]]:
        if self.fixed:
            return [(weighted_mean(self.fixed, self.sizes), self.fixed) for _ in self.sched.sparsities]
        return [(float(t), {}) for t in self.sched.sparsities]


class Iterative:
    """One model and one pruner for the whole job; round r prunes each layer to 1 - (1 - rate_l)^r.

    Toward a per-layer map (method.layer_sparsity, e.g. a sensitivity allocation): round r of R takes layer l
    to t_l * (1 - (1 - rate)^r) / (1 - (1 - rate)^R). Every layer moves the same share of the distance left
    to its own target each round, the early rounds the largest (the fixed rate of iterative magnitude
    pruning), and round R lands on the targets."""

    chained = True  # each round starts from the previous round's result
    MAX_ROUNDS = 200

    def __init__(self, sched: IterativeSchedule, sizes: dict[str, int], fixed: dict[str, float]):
        self.sched, self.sizes, self.fixed = sched, sizes, fixed

    def targets(self) -> list[tuple[float, dict[str, float]]]:
        sched = self.sched
        if self.fixed:
            return self._toward_targets()
        rates = {n: (sched.layer_rates or {}).get(n, sched.rate) for n in self.sizes}
        per_layer = bool(sched.layer_rates)
        steps: list[tuple[float, dict[str, float]]] = []
        for r in range(1, (sched.rounds or self.MAX_ROUNDS) + 1):
            layers = {n: 1.0 - (1.0 - rates[n]) ** r for n in self.sizes}
            overall = weighted_mean(layers, self.sizes)
            steps.append((overall, layers if per_layer else {}))
            if sched.target is not None and overall >= sched.target - 1e-9:
                break
        return steps

    def _toward_targets(self) -> list[tuple[float, dict[str, float]]]:
        rounds, kept = self.sched.rounds, 1.0 - self.sched.rate
        steps = []
        for r in range(1, rounds + 1):
            share = 1.0 if r == rounds else (1.0 - kept**r) / (1.0 - kept**rounds)
            layers = {n: t * share for n, t in self.fixed.items()}
            steps.append((weighted_mean(layers, self.sizes), layers))
        return steps


class Sensitivity:
    """A sensitivity scan has no pruning steps: each layer is pruned alone from the baseline (Job.scan)."""

    chained = False

    def __init__(self, sched: SensitivitySchedule, sizes: dict[str, int], fixed: dict[str, float]):
        self.sched, self.sizes = sched, sizes

    def targets(self) -> list[tuple[float, dict[str, float]]]:
        return []


SCHEDULES = {"oneshot": OneShot, "iterative": Iterative, "sensitivity": Sensitivity}


def make_schedule(spec: JobSpec, sizes: dict[str, int]) -> OneShot | Iterative | Sensitivity:
    """The schedule of a spec over the pruned layers' sizes (weights per layer)."""
    fixed = dict(getattr(spec.method, "layer_sparsity", None) or {})  # the method's per-layer map
    return SCHEDULES[spec.schedule.kind](spec.schedule, sizes, fixed)


def step_targets(spec: JobSpec, sizes: dict[str, int]) -> list[tuple[float, dict[str, float]]]:
    """(overall target, per-layer targets) of every step. The per-layer dict is empty when every layer
    gets the overall target, so global-scope pruners can spread it as they choose."""
    return make_schedule(spec, sizes).targets()


# ---------------------------------------------------------------- baseline (trained or cached)


def _model_for(spec: JobSpec, splits: Splits, device: torch.device) -> nn.Module:
    torch.manual_seed(spec.seed)
    return build_model(spec.model, splits.shape, splits.num_classes, spec.pretrained).to(device)


def _measure(
    model: nn.Module,
    pruner: Any,
    spec: JobSpec,
    splits: Splits,
    device: torch.device,
    latency_budget_s: float = LATENCY_BUDGET_S,
) -> dict:
    return measure_model(
        model, pruner, splits.shape, spec.measure.batch_size, device, spec.measure.latency, latency_budget_s
    )


def baseline(
    spec: JobSpec,
    splits: Splits,
    device: torch.device,
    cache_dir: Path,
    reporter: Reporter,
    progress: Progress,
    train_units: float,
    cache_cap_bytes: int | None = None,
    latency_budget_s: float = LATENCY_BUDGET_S,
) -> tuple[dict, dict[int, dict], dict]:
    """(best state_dict, rewind snapshots by epoch, baseline metrics); trains unless the cache has it.
    The cache is then evicted down to cache_cap_bytes (None: no cap), least recently used first."""
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
        os.utime(path)  # a use: least recently used entries are evicted first
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
            "metrics": {"train_seconds": train_seconds, "best_epoch": result.best_epoch, "history": result.history},
        }
        atomic_save(entry, path)
    evict_baselines(Path(cache_dir), cache_cap_bytes, keep=path)
    accuracy, loss = evaluate(model, splits.test)
    val_accuracy, _ = evaluate(model, splits.val)
    measured = _measure(model, None, spec, splits, device, latency_budget_s)
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
        # the training curve, kept with the cached baseline (None: cached before curves were recorded)
        "history": entry["metrics"].get("history"),
        "cached": cached,
        "device": str(device),
    }
    return entry["state"], entry["snapshots"], metrics


# ---------------------------------------------------------------- the job


def _checkpoint(out_dir: Path, k: int) -> Path:
    return out_dir / "checkpoints" / f"step_{k}.pt"


def _save_checkpoint(path: Path, model: nn.Module, pruner: Any, splits: Splits, step: dict, commit=None) -> None:
    # Only tensors and plain data, so every reader can use torch.load(weights_only=True). A physically
    # smaller model (channel removal) is rebuilt from build_model + pruner.restructure(): see load_checkpoint.
    # The spec is the job's spec.json, two levels up.
    summary = {k: v for k, v in step.items() if k != "layers"}
    atomic_save(
        {
            "state_dict": model.state_dict(),
            "pruner": pruner.state_dict(),
            "in_shape": list(splits.shape),
            "num_classes": splits.num_classes,
            "step": summary,
        },
        path,
        commit,
    )


def _step_of(path: Path) -> int | None:
    stem = path.stem  # step_<k>
    return int(stem[5:]) if stem.startswith("step_") and stem[5:].isdigit() else None


class Checkpoints:
    """The step checkpoints of one run directory and the retention policy (keep_checkpoints)."""

    def __init__(self, out_dir: Path, policy: str, completed_steps: int):
        if policy not in KEEP_CHECKPOINTS:
            raise ValueError(f"keep_checkpoints: {policy!r} is not allowed; allowed: {', '.join(KEEP_CHECKPOINTS)}")
        self.folder, self.policy = out_dir / "checkpoints", policy
        self.val_accuracy = {k: v for k, v in self._read_index().items() if k < completed_steps}

    def _read_index(self) -> dict[int, float]:
        try:
            data = json.loads((self.folder / CHECKPOINT_INDEX).read_text())
            return {int(k): float(v) for k, v in data["val_accuracy"].items()}
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or written by an older version
            pass
        found = {}
        for path in self.folder.glob("step_*.pt"):
            k = _step_of(path)
            if k is not None:
                ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                found[k] = float(ckpt["step"]["val_accuracy"])
        return found

    def keep(self) -> set[int]:
        """Steps whose checkpoints the policy keeps: the last step run (resume starts from it), and for
        best-and-last the highest validation accuracy (on a tie the later, sparser step)."""
        if not self.val_accuracy:
            return set()
        last = max(self.val_accuracy)
        if self.policy == "last":
            return {last}
        best = max(self.val_accuracy, key=lambda k: (self.val_accuracy[k], k))
        return {last, best}

    def stored(self, k: int, val_accuracy: float) -> list[int]:
        """Step k is saved AND reported (a resumed job restarts after the last reported step): record it,
        delete what the policy does not keep. Returns the deleted steps."""
        self.val_accuracy = {i: v for i, v in self.val_accuracy.items() if i < k}
        self.val_accuracy[k] = val_accuracy
        atomic_write_text(
            json.dumps({"val_accuracy": {str(i): v for i, v in sorted(self.val_accuracy.items())}}),
            self.folder / CHECKPOINT_INDEX,
        )
        if self.policy == "all":
            return []
        keep, deleted = self.keep(), []
        for path in self.folder.glob("step_*.pt"):
            i = _step_of(path)
            if i is not None and i not in keep:
                path.unlink(missing_ok=True)
                deleted.append(i)
        return sorted(deleted)


def _restore(ckpt: dict, model: nn.Module, pruner: Any) -> nn.Module:
    """Load a step checkpoint into a freshly built model and its pruner; returns the (restructured) model."""
    pruner.load_state_dict(ckpt["pruner"])
    model = pruner.restructure(model)
    model.load_state_dict(ckpt["state_dict"])
    pruner.apply_masks(model)
    return model


def cpu_threads(spec: JobSpec, device: torch.device) -> int:
    """Intra-op threads for this job. The MLP's matrices are too small to gain from several threads, and
    OpenMP threads that wait on each other collapse when the cores are shared (measured: the LeNet-300-100
    2x2 block-pruning example on digits took 100 s with 2 threads on 2 shared cores, 13 s with 1).
    OMP_NUM_THREADS set by the user wins."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    return 1 if spec.model == "lenet300_100" else torch.get_num_threads()


def run_job(
    spec: JobSpec,
    out_dir: Path,
    reporter: Reporter,
    *,
    data_dir: Path,
    cache_dir: Path,
    completed_steps: int = 0,
    keep_checkpoints: str = "best-and-last",
    baseline_cache_gb: float | None = 5.0,
    latency_budget_s: float = LATENCY_BUDGET_S,
) -> dict:
    """Run `spec`; report the baseline and every step to `reporter`; return the result dict
    {"spec", "baseline", "steps", "device", "seconds", "disk_bytes"} (steps: those run by this call;
    disk_bytes: all files of out_dir at the end), and "sensitivity" (the grid) for a sensitivity scan.

    keep_checkpoints: "all" | "last" | "best-and-last" (see the module docstring); baseline_cache_gb: the
    cap of cache_dir (None: no cap); latency_budget_s: time for one latency measurement (dense + realised)."""
    checkpoints = Checkpoints(Path(out_dir), keep_checkpoints, completed_steps)
    device = resolve_device(spec.device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cpu_threads(spec, device))
    cap = None if baseline_cache_gb is None else int(baseline_cache_gb * 1e9)
    try:
        return _run_job(
            spec,
            Path(out_dir),
            reporter,
            device,
            Path(data_dir),
            Path(cache_dir),
            completed_steps,
            checkpoints,
            cap,
            latency_budget_s,
        )
    finally:
        torch.set_num_threads(previous_threads)


class StepProgress:
    """Progress within one step: its training parts one after another, each a share of the step's units."""

    def __init__(self, report: Callable[[float, str], None], units: float):
        self.report, self.units, self.trained = report, units, 0.0

    def part(self, epochs: float) -> Callable[[float, str], None]:
        start = self.trained
        self.trained += epochs
        return lambda fraction, message: self.report((start + fraction * epochs) / self.units, message)


class Job:
    """One job's data, schedule and baseline, and the parts of a step: prune, recover, measure."""

    def __init__(
        self,
        spec: JobSpec,
        out_dir: Path,
        reporter: Reporter,
        device: torch.device,
        data_dir: Path,
        latency_budget_s: float = LATENCY_BUDGET_S,
    ):
        self.spec, self.out_dir, self.reporter, self.device = spec, out_dir, reporter, device
        self.latency_budget_s = latency_budget_s
        self.check = CancelCheck(reporter)
        self.splits = load_dataset(
            spec.dataset,
            data_dir,
            device,
            spec.train.val_fraction,
            spec.seed,
            image_size=data_image_size(spec.model),
        )
        probe = _model_for(spec, self.splits, device)
        self.schedule = make_schedule(spec, layer_sizes(probe, spec.pruned_layers()))
        self.plans = self.schedule.targets()
        scanned = set(spec.pruned_layers()) if isinstance(spec.schedule, SensitivitySchedule) else set()
        self.scan_layers = [n for n, _ in probe.named_modules() if n in scanned]  # network order
        self.step_units = spec.schedule.finetune_epochs + self.pruner_for(probe).train_epochs + MEASURE_UNITS
        self.best_state: dict = {}
        self.snapshots: dict[int, dict] = {}
        self.base_metrics: dict = {}

    def load_baseline(self, cache_dir: Path, progress: Progress, cache_cap_bytes: int | None = None) -> None:
        self.best_state, self.snapshots, self.base_metrics = baseline(
            self.spec,
            self.splits,
            self.device,
            cache_dir,
            self.reporter,
            progress,
            self.spec.train.epochs,
            cache_cap_bytes,
            self.latency_budget_s,
        )

    def scan(self, progress: Progress) -> list[dict]:
        """The sensitivity grid from the baseline, one layer at a time (network order): after each layer
        the progress, its rows to reporter.on_sensitivity (when the reporter has it), a cancel check."""
        sched, spec = self.spec.schedule, self.spec
        model = self.baseline_model().eval()
        latency_fn = None
        if spec.measure.latency:

            def latency_fn(pruned: nn.Module, pruner: Pruner) -> dict:
                shape, batch = self.splits.shape, spec.measure.batch_size
                return measure_latency(pruned, pruner, shape, batch, self.device, self.latency_budget_s)

        report = getattr(self.reporter, "on_sensitivity", None)
        rows: list[dict] = []
        for position, layer in enumerate(self.scan_layers):
            self.check(force=True)
            layer_rows = sensitivity.scan(
                model,
                [layer],
                sched.sparsities,
                spec,
                self.splits,
                max_eval_images=sched.max_eval_images,
                latency_fn=latency_fn,
            )
            layer_rows = [{**row, "position": position} for row in layer_rows]
            rows += layer_rows
            if report is not None:
                report(layer_rows)
            worst = min(row["accuracy"] for row in layer_rows)
            message = f"sensitivity: layer {position + 1}/{len(self.scan_layers)} {layer}, lowest accuracy {worst:.4f}"
            progress.advance(SCAN_UNITS, message)
        self.check(force=True)
        return rows

    def baseline_model(self) -> nn.Module:
        model = _model_for(self.spec, self.splits, self.device)
        model.load_state_dict(self.best_state)
        return model

    def pruner_for(self, model: nn.Module) -> Pruner:
        return make_pruner(self.spec, model, self.splits.shape)

    def starting_point(self, k: int, previous: tuple | None) -> tuple[nn.Module, Pruner, float]:
        """(model, pruner, its test accuracy) that step k prunes: the previous step's result (chained
        schedules), step k-1's checkpoint (a chained job resumed at k), else the baseline."""
        if self.schedule.chained and previous is not None:
            return previous
        model = self.baseline_model()
        pruner = self.pruner_for(model)
        if self.schedule.chained and k > 0:
            ckpt = torch.load(_checkpoint(self.out_dir, k - 1), map_location=self.device, weights_only=True)
            return _restore(ckpt, model, pruner), pruner, ckpt["step"]["accuracy"]
        return model, pruner, self.base_metrics["accuracy"]

    def train(
        self, model: nn.Module, pruner: Pruner, epochs: int, seed: int, label: str, on_progress, keep_best: bool = True
    ) -> TrainResult:
        sched = self.spec.schedule
        cfg = TrainConfig.from_spec(self.spec.train, self.spec.dataset, epochs=epochs, lr=sched.finetune_lr)
        return train(
            model,
            self.splits,
            cfg,
            pruner=pruner,
            reporter=self.reporter,
            seed=seed,
            keep_best=keep_best,
            label=label,
            on_progress=on_progress,
        )

    def prune(self, model: nn.Module, pruner: Pruner, plan: tuple, seed: int, label: str, progress) -> nn.Module:
        def train_fn(m: nn.Module, epochs: int, p: Pruner) -> None:
            # The pruner's own training (group lasso's regularised epochs): no best-checkpoint selection.
            self.train(m, p, epochs, seed, f"{label}: regularised training", progress.part(epochs), keep_best=False)

        overall, per_layer = plan
        model = pruner.prune(model, overall, per_layer, train_fn)
        pruner.apply_masks(model)
        return model

    def recover(self, model: nn.Module, pruner: Pruner, seed: int, label: str, progress) -> TrainResult | None:
        """schedule.after: fine-tune from the pruned weights, or rewind the survivors and retrain."""
        sched = self.spec.schedule
        if sched.after == "none" or sched.finetune_epochs == 0:
            return None
        if sched.after == "rewind":
            pruner.rewind(model, self.snapshots[sched.rewind_epoch])
        word = "retraining" if sched.after == "rewind" else "fine-tuning"
        result = self.train(
            model, pruner, sched.finetune_epochs, seed, f"{label}: {word}", progress.part(sched.finetune_epochs)
        )
        pruner.apply_masks(model)
        return result

    def run_step(
        self, k: int, model: nn.Module, pruner: Pruner, accuracy_in: float, report: Callable[[float, str], None]
    ) -> tuple[nn.Module, dict]:
        """Prune, recover, measure and save step k; returns the pruned model and the step dict."""
        started = time.perf_counter()
        seed = self.spec.seed + k + 1
        torch.manual_seed(seed)
        label = f"step {k + 1}/{len(self.plans)}"
        progress = StepProgress(report, self.step_units)
        model = self.prune(model, pruner, self.plans[k], seed, label, progress)
        accuracy_before, loss = evaluate(model, self.splits.test)
        recovered = self.recover(model, pruner, seed, label, progress)
        if recovered is None:
            accuracy = accuracy_before
            val_accuracy, _ = evaluate(model, self.splits.val)
        else:
            accuracy, loss = evaluate(model, self.splits.test)
            val_accuracy = recovered.best_val_accuracy  # the model is left at its best-validation weights
        self.check(force=True)
        layers = pruner.layer_report(model)
        total = sum(layer["params"] for layer in layers)
        nonzero = sum(layer["nonzero"] for layer in layers)
        step = {
            "index": k,
            "step": k + 1,  # as a person counts them
            "target_sparsity": self.plans[k][0],
            "sparsity": 1.0 - nonzero / total if total else 0.0,
            "accuracy": accuracy,
            "accuracy_before_finetune": accuracy_before,
            "accuracy_drop": accuracy_in - accuracy_before,
            "val_accuracy": val_accuracy,
            "loss": loss,
            **_measure(model, pruner, self.spec, self.splits, self.device, self.latency_budget_s),
            "seconds": 0.0,
            "checkpoint": f"checkpoints/{_checkpoint(self.out_dir, k).name}",
            "history": recovered.history if recovered is not None else None,  # the fine-tuning curve
            "layers": layers,
        }
        step["seconds"] = time.perf_counter() - started
        commit = getattr(self.reporter, "commit_file", None)  # optional in the Reporter protocol
        _save_checkpoint(_checkpoint(self.out_dir, k), model, pruner, self.splits, step, commit)
        return model, step


def _run_job(
    spec: JobSpec,
    out_dir: Path,
    reporter: Reporter,
    device: torch.device,
    data_dir: Path,
    cache_dir: Path,
    completed_steps: int,
    checkpoints: Checkpoints,
    cache_cap_bytes: int | None,
    latency_budget_s: float,
) -> dict:
    started = time.perf_counter()
    job = Job(spec, out_dir, reporter, device, data_dir, latency_budget_s)
    if not 0 <= completed_steps <= len(job.plans):
        raise ValueError(f"completed_steps: must be between 0 and {len(job.plans)} (the job's steps)")
    atomic_write_text(json.dumps(spec.model_dump(mode="json"), indent=1), out_dir / SPEC_FILE)
    units = spec.train.epochs + (len(job.plans) - completed_steps) * job.step_units
    progress = Progress(reporter, units + len(job.scan_layers) * SCAN_UNITS)
    job.load_baseline(cache_dir, progress, cache_cap_bytes)
    reporter.on_baseline(job.base_metrics)
    grid = job.scan(progress) if job.scan_layers else None
    steps: list[dict] = []
    previous = None
    for k in range(completed_steps, len(job.plans)):
        job.check(force=True)
        model, pruner, accuracy_in = job.starting_point(k, previous)
        model, step = job.run_step(k, model, pruner, accuracy_in, progress.part(job.step_units))
        message = (
            f"step {k + 1}/{len(job.plans)} done: sparsity {step['sparsity']:.3f}, accuracy {step['accuracy']:.4f}"
        )
        progress.advance(job.step_units, message)
        reporter.on_step(step)
        checkpoints.stored(k, step["val_accuracy"])  # only now: until on_step returns, resume needs step k-1
        steps.append(step)
        previous = (model, pruner, step["accuracy"])
    return {
        "spec": spec.model_dump(mode="json"),
        "baseline": job.base_metrics,
        "steps": steps,
        **({"sensitivity": grid} if grid is not None else {}),
        "device": str(device),
        "seconds": time.perf_counter() - started,
        "disk_bytes": dir_size_bytes(out_dir),
    }


def load_checkpoint_model(path: Path, map_location: str = "cpu", spec: JobSpec | dict | None = None) -> nn.Module:
    """The model stored in a step checkpoint (for users and tests); reads with weights_only=True.
    spec: the job's spec; by default its spec.json in the run directory (checkpoints/step_k.pt's parent's
    parent), or the copy inside checkpoints written before the spec was stored once per job."""
    path = Path(path)
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if spec is None:
        spec_file = path.parent.parent / SPEC_FILE
        spec = ckpt["spec"] if "spec" in ckpt else json.loads(spec_file.read_text())
    spec = spec if isinstance(spec, JobSpec) else JobSpec.model_validate(spec)
    in_shape = tuple(ckpt["in_shape"])
    model = build_model(spec.model, in_shape, ckpt["num_classes"]).to(map_location)
    return _restore(ckpt, model, make_pruner(spec, model, in_shape))

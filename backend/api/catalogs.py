"""What the online workers can run: their published catalogs (worker.engine.catalog, stored by each worker's
LeaseKeeper in workers.catalog) merged into one, and the check of a submitted spec against it.

The API never imports torch, so torchvision:NAME and plugin:NAME models, imagefolder:NAME datasets and the
dataset files in a data directory are known only from the workers. Rules of a submit:
- built-in models and the built-in digits dataset are always accepted (a server without workers yet);
- torchvision:/plugin: models and imagefolder: datasets need an online worker that offers them;
- file datasets (mnist, cifar10, ...) need an online worker that has their files, once any online worker has
  published its catalog (with none published they are accepted as before, and the worker reports missing files);
- a worker must offer the model and the dataset together; channel pruning must not be refused for the model;
  layers named by the spec must be layers of the model (for torchvision and plugin models, from the catalog).
"""

from __future__ import annotations

import difflib
from typing import Any

from core.spec import DATASETS, DEFAULT_LAYERS, MODEL_LAYERS, MODELS, IterativeSchedule, JobSpec, SpecError, catalog

SHORT_LIST = 8
CHANNEL_METHODS = ("channel", "group_lasso")


def source_of(name: str) -> str:
    return name.split(":", 1)[0] if name.startswith(("torchvision:", "plugin:")) else "builtin"


def _offered_models(worker: dict) -> list[dict]:
    return [m for m in worker["catalog"].get("models") or [] if not m.get("error")]


def _offered_datasets(worker: dict) -> list[dict]:
    return [d for d in worker["catalog"].get("datasets") or [] if d.get("present")]


def merge(online: list[dict]) -> dict[str, Any]:
    """The union of the published catalogs of `online` workers (store.online_worker_catalogs) with the
    built-in models and datasets: {"models": {name: entry}, "datasets": {name: entry}, "workers": [...],
    "published": bool}. Each entry carries "workers": the online workers offering it."""
    models: dict[str, dict] = {
        n: {"name": n, **m, "layers": MODEL_LAYERS[n], "default_layers": DEFAULT_LAYERS[n], "workers": []}
        for n, m in MODELS.items()
    }
    datasets: dict[str, dict] = {
        n: {"name": n, **d, "present": True if d["builtin"] else None, "workers": []} for n, d in DATASETS.items()
    }
    published = [w for w in online if w.get("catalog")]
    for w in published:
        for m in _offered_models(w):
            entry = models.setdefault(m["name"], {**m, "workers": []})
            entry["workers"].append(w["name"])
        for d in datasets.values():
            if d["present"] is None:
                d["present"] = False
        for d in _offered_datasets(w):
            entry = datasets.setdefault(d["name"], {**d, "workers": []})
            entry["present"] = True
            entry["workers"].append(w["name"])
    for entry in models.values():
        entry["source"] = source_of(entry["name"])
        entry.setdefault("layers", None)
        entry.setdefault("default_layers", None)
    workers = [
        {"name": w["name"], "queues": w["queues"], "device": w["device"], "published": bool(w.get("catalog"))}
        for w in online
    ]
    return {"models": models, "datasets": datasets, "workers": workers, "published": bool(published)}


def catalog_response(online: list[dict]) -> dict[str, Any]:
    """GET /api/catalog: core.spec's catalog with the models and datasets of the online workers added:
    built-in models first, then torchvision, then plugins, each with the workers that offer it."""
    merged = merge(online)
    order = {"builtin": 0, "torchvision": 1, "plugin": 2}
    models = sorted(merged["models"].values(), key=lambda m: order[m["source"]])  # stable: built-ins keep order
    return {
        **catalog(),
        "models": models,
        "datasets": list(merged["datasets"].values()),
        "workers": merged["workers"],
    }


def _short(names: list[str], near: str) -> str:
    close = difflib.get_close_matches(near, names, n=SHORT_LIST, cutoff=0.5)
    shown = close or names[:SHORT_LIST]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more (GET /api/catalog)" if more > 0 else "")


def spec_problems(spec: JobSpec, online: list[dict]) -> list[SpecError]:
    """What keeps the online workers from running `spec`: one SpecError per field (model, dataset,
    method.kind, method.layers, ...); empty when some online worker can run it."""
    merged = merge(online)
    models, datasets = merged["models"], merged["datasets"]
    waiting = [w["name"] for w in merged["workers"] if not w["published"]]
    hint = f" ({', '.join(waiting)} has not published its catalog yet: try again in a few seconds)" if waiting else ""
    problems = []
    model = models.get(spec.model)
    external_model = spec.model not in MODELS
    if external_model and (model is None or not model["workers"]):
        offered = [n for n, m in models.items() if m["workers"] or n in MODELS]
        allowed = _short(offered, spec.model)
        if merged["published"]:
            message = f"no online worker offers {spec.model}{hint}; offered: {allowed}"
        else:
            message = (
                f"{spec.model} needs an online worker that offers it, and none has published its catalog"
                f"{hint or ' (start one: prunelab worker)'}; offered: {allowed}"
            )
        problems.append(SpecError("model", message, allowed))
        model = None
    dataset = datasets.get(spec.dataset)
    needs_worker = spec.dataset not in DATASETS or (merged["published"] and not DATASETS[spec.dataset]["builtin"])
    if needs_worker and (dataset is None or not dataset["workers"]):
        offered = [n for n, d in datasets.items() if d["builtin"] or d["workers"]]
        allowed = _short(offered, spec.dataset)
        where = "in its data directory (PRUNELAB_DATA_DIR)" if spec.dataset in DATASETS else ""
        message = f"no online worker has {spec.dataset}{' ' + where if where else ''}{hint}; offered: {allowed}"
        problems.append(SpecError("dataset", message, allowed))
        dataset = None
    if model is not None and dataset is not None and model["workers"] and dataset["workers"]:
        both = set(model["workers"]) & set(dataset["workers"])
        if not both and (external_model or needs_worker):
            message = (
                f"no online worker offers both {spec.model} (on {', '.join(model['workers'])}) and "
                f"{spec.dataset} (on {', '.join(dataset['workers'])})"
            )
            problems.append(SpecError("dataset", message, ", ".join(dataset["workers"])))
    if model is not None:
        problems += _model_problems(spec, model)
    return problems


def _model_problems(spec: JobSpec, model: dict) -> list[SpecError]:
    problems = []
    channel = model.get("channel_pruning") or {}
    if spec.method.kind in CHANNEL_METHODS and channel.get("supported") is False:
        note = (channel.get("note") or "refused for this model").removeprefix("method.kind: ")
        problems.append(SpecError("method.kind", note, "block, magnitude"))
    known = model.get("layers")
    if spec.model in MODEL_LAYERS or not known:
        return problems  # built-in layers are checked by the spec itself; unknown ones by the worker
    named = {"method.layers": spec.method.layers or []}
    if getattr(spec.method, "layer_sparsity", None):
        named["method.layer_sparsity"] = list(spec.method.layer_sparsity)
    if isinstance(spec.schedule, IterativeSchedule) and spec.schedule.layer_rates:
        named["schedule.layer_rates"] = list(spec.schedule.layer_rates)
    for field, names in named.items():
        unknown = [n for n in names if n not in known]
        if unknown:
            allowed = _short(known, unknown[0])
            listed = ", ".join(map(repr, unknown[:SHORT_LIST]))
            message = f"unknown layer(s) {listed} for model {spec.model}; allowed: {allowed}"
            problems.append(SpecError(field, message, allowed))
    return problems

"""The job spec and the catalog: the engine's vocabulary, torch-free so the API can import it.

A spec is what `prunelab run SPEC.yaml` reads and what POST /api/jobs takes as JSON.
`parse_spec` turns a dict into a JobSpec or raises SpecError with one line naming the field
and the allowed values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

MODELS: dict[str, dict[str, Any]] = {
    "lenet300_100": {
        "label": "LeNet-300-100 (784-300-100-10 MLP)",
        "family": "mlp",
    },
    "vgg": {"label": "VGG, 8 conv + BN", "family": "conv"},
    "vgg16_bn": {"label": "VGG-16-BN (32x32 inputs)", "family": "conv"},
    "resnet18": {"label": "ResNet-18, CIFAR stem", "family": "conv"},
    "resnet18_head": {"label": "ResNet-18 + FC head 512-300-10", "family": "conv"},
}

DATASETS: dict[str, dict[str, Any]] = {
    "digits": {
        "label": "scikit-learn digits (1797 8x8 images, built in)",
        "builtin": True,
        "shape": [1, 8, 8],
        "classes": 10,
    },
    "mnist": {"label": "MNIST", "builtin": False, "shape": [1, 28, 28], "classes": 10},
    "fashion_mnist": {"label": "Fashion-MNIST", "builtin": False, "shape": [1, 28, 28], "classes": 10},
    "cifar10": {"label": "CIFAR-10", "builtin": False, "shape": [3, 32, 32], "classes": 10},
}


def _vgg_layers(n_conv: int) -> list[str]:
    return [f"backbone.conv{i}" for i in range(n_conv)] + ["classifier"]


def _resnet18_layers(head: bool) -> list[str]:
    names = ["conv1"]
    for stage in range(1, 5):
        for block in range(2):
            prefix = f"layer{stage}.{block}"
            names += [f"{prefix}.conv1", f"{prefix}.conv2"]
            if stage > 1 and block == 0:
                names.append(f"{prefix}.downsample.0")
    return names + (["fc.0", "fc.2"] if head else ["fc"])


# Prunable layers (Conv2d and Linear, by module name) of each model. tests/ checks these against
# the real torch modules, so the API can validate layer names without importing torch.
MODEL_LAYERS: dict[str, list[str]] = {
    "lenet300_100": ["fc1", "fc2", "fc3"],
    "vgg": _vgg_layers(8),
    "vgg16_bn": _vgg_layers(13),
    "resnet18": _resnet18_layers(head=False),
    "resnet18_head": _resnet18_layers(head=True),
}

# The layers a method prunes when the spec names none.
DEFAULT_LAYERS: dict[str, list[str]] = {
    "lenet300_100": ["fc1", "fc2", "fc3"],
    "vgg": MODEL_LAYERS["vgg"],
    "vgg16_bn": MODEL_LAYERS["vgg16_bn"],
    "resnet18": MODEL_LAYERS["resnet18"],
    # The paper prunes only the fully connected head of ResNet-18.
    "resnet18_head": ["fc.0", "fc.2"],
}

ModelName = Literal["lenet300_100", "vgg", "vgg16_bn", "resnet18", "resnet18_head"]
DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10"]
# Strict numbers and booleans: "0.2" is not a float, true is not an int, 1 is not a bool. Strict floats still
# take integers (JSON and YAML write 1 for 1.0).
Float = Annotated[float, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Fraction = Annotated[float, Strict(), Field(ge=0.0, lt=1.0)]


class SpecError(ValueError):
    """A bad spec: `str(err)` is one line naming the field and what is allowed."""

    def __init__(self, field: str, message: str, allowed: str | None = None):
        self.field = field
        self.message = message
        self.allowed = allowed  # the allowed values or range on their own, e.g. "0 < rate < 1"
        super().__init__(f"{field}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainSpec(_Strict):
    epochs: Int = Field(10, ge=0, le=1000, description="epochs to train the baseline")
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: Float = Field(0.001, gt=0, le=10, description="learning rate")
    batch_size: Int = Field(64, ge=1, le=65536)
    momentum: Float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: Float = Field(0.0, ge=0, le=1)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    val_fraction: Float = Field(
        0.1, gt=0, lt=0.5, description="share of the training data held out to select checkpoints"
    )
    augment: Bool | None = Field(None, description="random crop + flip; default on for cifar10")


class _LayerChoice(_Strict):
    layers: list[str] | None = Field(None, description="layer names to prune; default: the model's default set")


class BlockMethod(_LayerChoice):
    kind: Literal["block"]
    block_size: Int | tuple[Int, Int] = Field(2, description="n for n x n blocks, or [rows, cols]")
    score: Literal["mean_abs", "l1", "l2"] = "mean_abs"
    scope: Literal["layer", "global"] = "layer"

    @field_validator("block_size", mode="wrap")
    @classmethod
    def _positive(cls, v: Any, handler) -> int | tuple[int, int]:
        # One message for the field instead of one per member of the union (int, [rows, cols]).
        try:
            v = handler(v)
        except ValidationError:
            v = None
        sizes = () if v is None else (v,) if isinstance(v, int) else v
        if not sizes or any(s < 1 or s > 4096 for s in sizes):
            raise SpecError(
                "method.block_size",
                "must be an integer from 1 to 4096 (or a pair of them)",
                "1 <= block_size <= 4096, or [rows, cols] of such integers",
            )
        return v

    @property
    def block_shape(self) -> tuple[int, int]:
        return (self.block_size, self.block_size) if isinstance(self.block_size, int) else tuple(self.block_size)


class MagnitudeMethod(_LayerChoice):
    kind: Literal["magnitude"]
    scope: Literal["layer", "global"] = "layer"
    layer_sparsity: dict[str, Fraction] | None = Field(
        None, description="fixed per-layer target sparsity (one-shot); overrides the schedule's targets"
    )


class ChannelMethod(_LayerChoice):
    kind: Literal["channel"]
    importance: Literal["l1", "l2", "bn_scale"] = "l1"


class GroupLassoMethod(_LayerChoice):
    kind: Literal["group_lasso"]
    strength: Float = Field(1e-4, gt=0, le=1, description="penalty weight lambda of sum ||W_filter||_2")
    epochs: Int = Field(5, ge=1, le=1000, description="epochs of regularised training before removal")
    threshold: Float = Field(
        1e-3, gt=0, le=1, description="a filter whose norm / largest norm is below this is removed"
    )


Method = Annotated[BlockMethod | MagnitudeMethod | ChannelMethod | GroupLassoMethod, Field(discriminator="kind")]

AfterPruning = Literal["finetune", "rewind", "none"]


class _AfterPruning(_Strict):
    after: AfterPruning = Field(
        "finetune",
        description="finetune: continue from the pruned weights; rewind: reset survivors to an early epoch and retrain",
    )
    finetune_epochs: Int = Field(2, ge=0, le=1000)
    finetune_lr: Float | None = Field(None, gt=0, le=10, description="default: the training lr")
    rewind_epoch: Int = Field(
        1, ge=0, le=1000, description="epoch of the baseline training whose weights `rewind` restores"
    )


class OneShotSchedule(_AfterPruning):
    kind: Literal["oneshot"]
    sparsities: list[Fraction] = Field(
        [0.5, 0.75, 0.9], description="target sparsities, each pruned from the same baseline"
    )


class IterativeSchedule(_AfterPruning):
    kind: Literal["iterative"]
    rate: Float = Field(0.2, gt=0, lt=1, description="fraction of the remaining weights pruned each round")
    rounds: Int | None = Field(10, ge=1, le=200)
    target: Fraction | None = Field(None, description="stop once this sparsity is reached")
    layer_rates: dict[str, Annotated[float, Strict(), Field(gt=0, lt=1)]] | None = Field(
        None, description="per-layer rate, e.g. the paper's 0.1 for fc3"
    )

    @model_validator(mode="after")
    def _has_an_end(self) -> IterativeSchedule:
        if self.rounds is None and self.target is None:
            raise ValueError("give rounds or target (or both)")
        return self


Schedule = Annotated[OneShotSchedule | IterativeSchedule, Field(discriminator="kind")]


class MeasureSpec(_Strict):
    latency: Bool = Field(True, description="measure dense vs realised inference latency")
    batch_size: Int = Field(64, ge=1, le=4096, description="batch size for the latency measurement")


class JobSpec(_Strict):
    name: str = Field("experiment", min_length=1, max_length=200)
    model: ModelName
    dataset: DatasetName
    train: TrainSpec = TrainSpec()
    method: Method
    schedule: Schedule
    measure: MeasureSpec = MeasureSpec()
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _layers_exist(self) -> JobSpec:
        known = MODEL_LAYERS[self.model]
        named = [("method.layers", n) for n in self.method.layers or []]
        if isinstance(self.method, MagnitudeMethod) and self.method.layer_sparsity:
            named += [("method.layer_sparsity", n) for n in self.method.layer_sparsity]
        if isinstance(self.schedule, IterativeSchedule) and self.schedule.layer_rates:
            named += [("schedule.layer_rates", n) for n in self.schedule.layer_rates]
        unknown = [(field, n) for field, n in named if n not in known]
        if unknown:
            field, name = unknown[0]
            allowed = ", ".join(known)
            raise SpecError(field, f"unknown layer {name!r} for model {self.model}; allowed: {allowed}", allowed)
        if self.schedule.after == "rewind" and self.schedule.rewind_epoch > self.train.epochs:
            raise SpecError(
                "schedule.rewind_epoch",
                f"must be at most train.epochs ({self.train.epochs})",
                f"0 <= rewind_epoch <= {self.train.epochs}",
            )
        return self

    def pruned_layers(self) -> list[str]:
        if isinstance(self.method, MagnitudeMethod) and self.method.layer_sparsity:
            return list(self.method.layer_sparsity)
        return list(self.method.layers or DEFAULT_LAYERS[self.model])

    def training_key(self) -> dict[str, Any]:
        """What identifies a trained baseline: same key, same weights, so it can be reused."""
        return {"model": self.model, "dataset": self.dataset, "train": self.train.model_dump(), "seed": self.seed}


_TAGGED: dict[str, type[BaseModel]] = {
    "block": BlockMethod,
    "magnitude": MagnitudeMethod,
    "channel": ChannelMethod,
    "group_lasso": GroupLassoMethod,
    "oneshot": OneShotSchedule,
    "iterative": IterativeSchedule,
}


def _field_path(loc: tuple) -> str:
    # Drop the discriminator tags pydantic inserts into the location ("method.block.block_size").
    return ".".join(str(p) for p in loc if p not in _TAGGED) or "spec"


def _allowed_range(loc: tuple) -> str:
    """The numeric bounds of the field at `loc`, e.g. '0 < rate < 1', or '' when it has none."""
    model: type[BaseModel] | None = JobSpec
    info = None
    for part in loc:
        if part in _TAGGED:
            model = _TAGGED[part]
        elif model is not None and part in model.model_fields:
            info = model.model_fields[part]
            model = (
                info.annotation
                if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
                else None
            )
        else:
            return ""
    if info is None:
        return ""
    low = high = ""
    for bound in info.metadata:
        for attr, side in (("ge", "<="), ("gt", "<"), ("le", "<="), ("lt", "<")):
            value = getattr(bound, attr, None)
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            if value is not None and attr in ("ge", "gt"):
                low = f"{shown} {side} "
            elif value is not None:
                high = f" {side} {shown}"
    return f"{low}{loc[-1]}{high}" if low or high else ""


# What a strict type error allows when the field has no numeric bounds.
_KINDS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false"}


def spec_errors(errors: list[dict[str, Any]]) -> list[SpecError]:
    """pydantic's errors of validating a JobSpec (`ValidationError.errors()`, locations relative to the
    spec), one SpecError per field, in order, each naming the field and what is allowed."""
    out: dict[str, SpecError] = {}
    for err in errors:
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, SpecError):
            out.setdefault(cause.field, cause)
            continue
        message = err["msg"].removeprefix("Value error, ")
        allowed = None
        if "than" in err["type"] or err["type"] in _KINDS:
            allowed = _allowed_range(err["loc"]) or _KINDS.get(err["type"])
            if allowed:
                message += f" (allowed: {allowed})"
        elif err["type"] == "literal_error" and ctx.get("expected"):
            allowed = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
        field = _field_path(err["loc"])
        out.setdefault(field, SpecError(field, message, allowed))
    return list(out.values())


def parse_spec(data: Any) -> JobSpec:
    """Validate a spec dict; raise SpecError with one line naming the field and the allowed values."""
    if not isinstance(data, dict):
        raise SpecError("spec", "must be a mapping of fields (name, model, dataset, train, method, schedule, ...)")
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_errors(exc.errors())[0] from None


def _params(model: type[BaseModel], skip: tuple[str, ...] = ("kind",)) -> list[dict[str, Any]]:
    """Describe a spec section's fields for a form: name, type, default, bounds, choices, help."""
    schema = model.model_json_schema()
    out = []
    for name, prop in schema["properties"].items():
        if name in skip:
            continue
        options = prop.get("anyOf", [prop])
        entry: dict[str, Any] = {"name": name, "default": prop.get("default"), "help": prop.get("description", "")}
        for opt in options:
            if "enum" in opt:
                entry.update(type="enum", choices=opt["enum"])
            elif (
                opt.get("type") in ("integer", "number", "boolean", "string", "array", "object") and "type" not in entry
            ):
                entry["type"] = {
                    "integer": "int",
                    "number": "float",
                    "boolean": "bool",
                    "string": "str",
                    "array": "list",
                    "object": "map",
                }[opt["type"]]
            for bound, key in (
                ("minimum", "min"),
                ("exclusiveMinimum", "min_exclusive"),
                ("maximum", "max"),
                ("exclusiveMaximum", "max_exclusive"),
            ):
                if bound in opt:
                    entry[key] = opt[bound]
        entry.setdefault("type", "str")
        out.append(entry)
    return out


METHOD_LABELS = {
    "block": "Block pruning: r x c blocks scored by mean |w| (coarse-grained blocky sparse structure)",
    "magnitude": "Fine-grained magnitude pruning (|w|, per layer or one global L1 threshold over all layers)",
    "channel": "Channel (filter) pruning, physically removed with Torch-Pruning's dependency graph",
    "group_lasso": "SSL group lasso (Wen et al. 2016), then filter removal",
}
SCHEDULE_LABELS = {
    "oneshot": "One-shot: each target pruned from the same baseline",
    "iterative": "Iterative: prune a fraction of what remains each round",
}


def catalog() -> dict[str, Any]:
    """Everything a client needs to build a job form: choices, parameters, ranges, defaults, presets."""
    from core.presets import PRESETS  # local import: presets are data, loaded on demand

    return {
        "models": [
            {"name": n, **m, "layers": MODEL_LAYERS[n], "default_layers": DEFAULT_LAYERS[n]} for n, m in MODELS.items()
        ],
        "datasets": [{"name": n, **d} for n, d in DATASETS.items()],
        "methods": [
            {"kind": k, "label": METHOD_LABELS[k], "params": _params(cls)}
            for k, cls in (
                ("block", BlockMethod),
                ("magnitude", MagnitudeMethod),
                ("channel", ChannelMethod),
                ("group_lasso", GroupLassoMethod),
            )
        ],
        "schedules": [
            {"kind": k, "label": SCHEDULE_LABELS[k], "params": _params(cls)}
            for k, cls in (("oneshot", OneShotSchedule), ("iterative", IterativeSchedule))
        ],
        "train": {"params": _params(TrainSpec, skip=())},
        "measure": {"params": _params(MeasureSpec, skip=())},
        "devices": ["auto", "cpu", "cuda"],
        "presets": PRESETS,
    }

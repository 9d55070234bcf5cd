"""The job spec and the catalog: the engine's vocabulary, torch-free so the API can import it.

A spec is what `prunelab run SPEC.yaml` reads and what POST /api/jobs takes as JSON.
`parse_spec` turns a dict into a JobSpec or raises SpecError with one line naming the field
and the allowed values.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

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
    "cifar100": {"label": "CIFAR-100", "builtin": False, "shape": [3, 32, 32], "classes": 100},
    "svhn": {"label": "SVHN (street view house numbers)", "builtin": False, "shape": [3, 32, 32], "classes": 10},
}

# Models and datasets the API cannot list itself (it never imports torch): torchvision's classification models
# (torchvision:resnet50), models of installed packages under the entry-point group prunelab.models
# (plugin:NAME) and image folders in the data directory (imagefolder:NAME). The spec checks their form; the
# worker that runs the job checks that they exist, and publishes what it has in its catalog.
EXTERNAL_MODEL = re.compile(r"(torchvision|plugin):[A-Za-z_][A-Za-z0-9_.-]{0,99}")
IMAGEFOLDER = re.compile(r"imagefolder:[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


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


def register_model_layers(name: str, layers: list[str], default_layers: list[str]) -> None:
    """Layers of a torchvision or plugin model, recorded by the worker when it builds the model, so specs
    naming it are checked and defaulted like the built-in models' in that process."""
    MODEL_LAYERS[name] = list(layers)
    DEFAULT_LAYERS[name] = list(default_layers)


MODEL_CHOICES = ", ".join(MODELS) + ", torchvision:NAME, plugin:NAME"
DATASET_CHOICES = ", ".join(DATASETS) + ", imagefolder:NAME"
# Strict numbers and booleans: "0.2" is not a float, true is not an int, 1 is not a bool. Strict floats still
# take integers (JSON and YAML write 1 for 1.0).
Float = Annotated[float, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Fraction = Annotated[float, Strict(), Field(ge=0.0, lt=1.0)]
DEFAULT_MAX_JOB_EPOCHS = 5000  # PRUNELAB_MAX_JOB_EPOCHS of the API; what `prunelab run` allows


class SpecError(ValueError):
    """A bad spec: `str(err)` is one line naming the field and what is allowed."""

    def __init__(self, field: str, message: str, allowed: str | None = None):
        self.field = field
        self.message = message
        self.allowed = allowed  # the allowed values or range on their own, e.g. "0 < rate < 1"
        super().__init__(f"{field}: {message}")


class SpecErrors(SpecError):
    """Several problems found together (the cross-field checks): `errors`, one SpecError per field."""

    def __init__(self, errors: list[SpecError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.field, first.message, first.allowed)


def _no_nul(value: str) -> str:
    # Every string of a spec is text a database stores; Postgres refuses NUL in text, so both refuse it here.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Strings of the spec: never NUL.
Text = Annotated[str, AfterValidator(_no_nul)]
LayerName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
RunName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Tag = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_no_nul)]
Tags = Annotated[list[Tag], Field(max_length=20)]
Notes = Annotated[str, Field(max_length=10_000), AfterValidator(_no_nul)]


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
    layers: list[LayerName] | None = Field(None, description="layer names to prune; default: the model's default set")


class _LayerMap(_LayerChoice):
    layer_sparsity: dict[LayerName, Fraction] | None = Field(
        None,
        description="per-layer target sparsity (e.g. from a sensitivity scan's allocation): one-shot prunes each "
        "layer to it, iterative moves every layer toward it over the rounds; overrides the schedule's targets",
    )


class BlockMethod(_LayerMap):
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


class MagnitudeMethod(_LayerMap):
    kind: Literal["magnitude"]
    scope: Literal["layer", "global"] = "layer"


class ChannelMethod(_LayerMap):
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
        [0.5, 0.75, 0.9],
        min_length=1,
        max_length=100,
        description="target sparsities (1 to 100 of them), each pruned from the same baseline",
    )


class IterativeSchedule(_AfterPruning):
    kind: Literal["iterative"]
    rate: Float = Field(0.2, gt=0, lt=1, description="fraction of the remaining weights pruned each round")
    rounds: Int | None = Field(10, ge=1, le=200)
    target: Fraction | None = Field(None, description="stop once this sparsity is reached")
    layer_rates: dict[LayerName, Annotated[float, Strict(), Field(gt=0, lt=1)]] | None = Field(
        None, description="per-layer rate, e.g. the paper's 0.1 for fc3"
    )

    @model_validator(mode="after")
    def _has_an_end(self) -> IterativeSchedule:
        if self.rounds is None and self.target is None:
            raise ValueError("give rounds or target (or both)")
        return self


class SensitivitySchedule(_Strict):
    """Per-layer sensitivity analysis (NNI's SensitivityAnalysis; the scan behind the hand-picked per-layer
    sparsities of the VGG pruning study): each layer of the trained baseline pruned ALONE to each sparsity,
    without fine-tuning; the grid of accuracies is what a per-layer allocation is chosen from."""

    kind: Literal["sensitivity"]
    sparsities: list[Fraction] = Field(
        [0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
        min_length=1,
        max_length=100,
        description="sparsities each layer is pruned to, one at a time (1 to 100 of them)",
    )
    max_eval_images: Int | None = Field(
        None, ge=1, le=100_000_000, description="evaluate on the first N images of each split (default: all)"
    )
    # A scan measures right after pruning: what a pruning schedule's `after` fields say, fixed.
    after: ClassVar[str] = "none"
    finetune_epochs: ClassVar[int] = 0
    finetune_lr: ClassVar[float | None] = None
    rewind_epoch: ClassVar[int] = 0

    @field_validator("sparsities")
    @classmethod
    def _unique(cls, v: list[float]) -> list[float]:
        if len(set(v)) != len(v):
            raise ValueError("each sparsity may be named once")
        return v


Schedule = Annotated[OneShotSchedule | IterativeSchedule | SensitivitySchedule, Field(discriminator="kind")]
SCANNABLE_METHODS = ("magnitude", "block", "channel")  # pruned without training, so a layer can be scanned alone


class MeasureSpec(_Strict):
    latency: Bool = Field(True, description="measure dense vs realised inference latency")
    batch_size: Int = Field(64, ge=1, le=4096, description="batch size for the latency measurement")


class JobSpec(_Strict):
    name: RunName = "experiment"
    model: str = Field(description=f"one of {MODEL_CHOICES}")
    dataset: str = Field(description=f"one of {DATASET_CHOICES} (PRUNELAB_DATA_DIR/NAME/train/CLASS/*.png)")
    pretrained: Bool = Field(False, description="torchvision models: start from torchvision's ImageNet weights")
    train: TrainSpec = TrainSpec()
    method: Method
    schedule: Schedule
    measure: MeasureSpec = MeasureSpec()
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    tags: Tags = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _not_a_sweep(cls, data: Any) -> Any:
        if isinstance(data, dict) and "sweep" in data:
            raise SpecError(
                "sweep",
                "a sweep stands for several jobs: submit it as a group (POST /api/groups, prunelab submit), "
                "or expand it with core.sweep.expand",
            )
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v in MODELS or EXTERNAL_MODEL.fullmatch(v):
            return v
        raise SpecError("model", f"unknown model {v!r}; allowed: {MODEL_CHOICES}", MODEL_CHOICES)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v in DATASETS or IMAGEFOLDER.fullmatch(v):
            return v
        raise SpecError("dataset", f"unknown dataset {v!r}; allowed: {DATASET_CHOICES}", DATASET_CHOICES)

    @model_validator(mode="after")
    def _layers_exist(self) -> JobSpec:
        # Every cross-field problem at once, one per field.
        problems = []
        # A torchvision or plugin model's layers are known once a worker built it; until then it checks them.
        known = MODEL_LAYERS.get(self.model)
        allowed = ", ".join(known or [])
        named = {"method.layers": self.method.layers or []} if known is not None else {}
        if isinstance(self.method, _LayerMap) and known is not None:
            named["method.layer_sparsity"] = list(self.method.layer_sparsity or {})
        if isinstance(self.schedule, IterativeSchedule) and known is not None:
            named["schedule.layer_rates"] = list(self.schedule.layer_rates or {})
        for field, names in named.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                listed = ", ".join(map(repr, unknown))
                word = "layer" if len(unknown) == 1 else "layers"
                message = f"unknown {word} {listed} for model {self.model}; allowed: {allowed}"
                problems.append(SpecError(field, message, allowed))
        problems += self._schedule_problems()
        if self.pretrained and not self.model.startswith("torchvision:"):
            message = f"only torchvision models have pretrained weights, not {self.model}"
            problems.append(SpecError("pretrained", message, "false"))
        if self.schedule.after == "rewind" and self.schedule.rewind_epoch > self.train.epochs:
            problems.append(
                SpecError(
                    "schedule.rewind_epoch",
                    f"must be at most train.epochs ({self.train.epochs})",
                    f"0 <= rewind_epoch <= {self.train.epochs}",
                )
            )
        if problems:
            raise SpecErrors(problems)
        return self

    def _schedule_problems(self) -> list[SpecError]:
        """A sensitivity scan prunes without training and with no per-layer map; an iterative schedule toward
        a per-layer map (method.layer_sparsity) runs a fixed number of rounds, with one rate for every layer."""
        sched, fixed = self.schedule, getattr(self.method, "layer_sparsity", None)
        if isinstance(sched, SensitivitySchedule):
            out = []
            if self.method.kind not in SCANNABLE_METHODS:
                allowed = ", ".join(SCANNABLE_METHODS)
                message = f"a sensitivity scan prunes without training; allowed: {allowed}"
                out.append(SpecError("method.kind", message, allowed))
            if fixed:
                message = "not used by a sensitivity scan (it prunes each layer alone to each of schedule.sparsities)"
                out.append(SpecError("method.layer_sparsity", message, "leave it out"))
            return out
        if isinstance(sched, IterativeSchedule) and fixed:
            out = []
            if sched.rounds is None:
                message = "give rounds with method.layer_sparsity: the last round reaches every layer's target"
                out.append(SpecError("schedule.rounds", message, "1 <= rounds <= 200"))
            if sched.target is not None:
                message = "not used with method.layer_sparsity (each layer's target is in the map)"
                out.append(SpecError("schedule.target", message, "leave it out"))
            if sched.layer_rates:
                message = "not used with method.layer_sparsity: every layer moves the same share toward its target"
                out.append(SpecError("schedule.layer_rates", message, "leave it out"))
            return out
        return []

    def planned_steps(self) -> int:
        """The pruning steps this spec runs at most (an iterative schedule with only a target: the rounds
        its slowest layer rate needs to get there, at most 200; a sensitivity scan: none)."""
        sched = self.schedule
        if isinstance(sched, SensitivitySchedule):
            return 0
        if isinstance(sched, OneShotSchedule):
            return len(sched.sparsities)
        if sched.target is None:
            return sched.rounds
        # (with method.layer_sparsity the rounds are given and target is refused: see _schedule_problems)
        slowest = min([sched.rate, *(sched.layer_rates or {}).values()])
        needed = math.ceil(math.log(1 - sched.target) / math.log(1 - slowest) - 1e-9) if sched.target else 1
        return max(1, min(needed, sched.rounds or 200, 200))

    def planned_epochs(self) -> dict[str, int]:
        """Training epochs this job plans, by the spec field that drives them: the baseline, the steps'
        fine-tuning (or retraining after rewinding), and group lasso's regularised training per step."""
        steps = self.planned_steps()
        finetune = 0 if self.schedule.after == "none" else self.schedule.finetune_epochs
        regularised = self.method.epochs if isinstance(self.method, GroupLassoMethod) else 0
        return {
            "train.epochs": self.train.epochs,
            "schedule.finetune_epochs": steps * finetune,
            "method.epochs": steps * regularised,
        }

    def pruned_layers(self) -> list[str]:
        if getattr(self.method, "layer_sparsity", None):
            return list(self.method.layer_sparsity)
        if self.method.layers:
            return list(self.method.layers)
        if self.model not in DEFAULT_LAYERS:
            raise SpecError("model", f"the layers of {self.model} are known once the worker has built it")
        return list(DEFAULT_LAYERS[self.model])

    def training_key(self) -> dict[str, Any]:
        """What identifies a trained baseline: same key, same weights, so it can be reused."""
        key = {"model": self.model, "dataset": self.dataset, "train": self.train.model_dump(), "seed": self.seed}
        return {**key, "pretrained": True} if self.pretrained else key


_TAGGED: dict[str, type[BaseModel]] = {
    "block": BlockMethod,
    "magnitude": MagnitudeMethod,
    "channel": ChannelMethod,
    "group_lasso": GroupLassoMethod,
    "oneshot": OneShotSchedule,
    "iterative": IterativeSchedule,
    "sensitivity": SensitivitySchedule,
}


def _field_path(loc: tuple) -> str:
    # Drop the discriminator tags pydantic inserts into the location ("method.block.block_size"), and a bad
    # mapping key with its "[key]" marker (the key itself may be what is wrong, NUL included).
    if "[key]" in loc:
        loc = loc[: loc.index("[key]") - 1]
    return ".".join(str(p) for p in loc if p not in _TAGGED) or "spec"


def epoch_errors(spec: JobSpec, max_epochs: int = DEFAULT_MAX_JOB_EPOCHS) -> list[SpecError]:
    """One error naming the field that drives most of the planned epochs when they exceed `max_epochs`."""
    planned = spec.planned_epochs()
    total = sum(planned.values())
    if total <= max_epochs:
        return []
    field = max(planned, key=planned.get)
    steps = spec.planned_steps()
    parts = f"baseline {planned['train.epochs']} + fine-tuning {planned['schedule.finetune_epochs']} ({steps} steps)"
    if planned["method.epochs"]:
        parts += f" + regularised training {planned['method.epochs']} ({steps} steps)"
    message = (
        f"the job plans {total} training epochs ({parts}); at most {max_epochs} are allowed "
        "(PRUNELAB_MAX_JOB_EPOCHS): fewer steps or epochs"
    )
    return [SpecError(field, message, f"at most {max_epochs} planned epochs")]


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
        if isinstance(cause, SpecErrors):
            for one in cause.errors:
                out.setdefault(one.field, one)
            continue
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


def parse_spec(data: Any, max_epochs: int = DEFAULT_MAX_JOB_EPOCHS) -> JobSpec:
    """Validate a spec dict; raise SpecError with one line naming the field and the allowed values (its
    `errors`: every problem found, one per field)."""
    if not isinstance(data, dict):
        raise SpecError("spec", "must be a mapping of fields (name, model, dataset, train, method, schedule, ...)")
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        errors = spec_errors(exc.errors())
        raise (SpecErrors(errors) if len(errors) > 1 else errors[0]) from None
    too_long = epoch_errors(spec, max_epochs)
    if too_long:
        raise too_long[0]
    return spec


class JobEdit(_Strict):
    """What may change of a stored job (PATCH /api/jobs/{id}): its name, tags and notes; absent = unchanged."""

    name: RunName | None = None
    tags: Tags | None = None
    notes: Notes | None = None


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
    "iterative": "Iterative: prune a fraction of what remains each round (with method.layer_sparsity: every "
    "layer moves toward its own target)",
    "sensitivity": "Sensitivity analysis: each layer pruned alone to each sparsity, no fine-tuning (NNI's "
    "SensitivityAnalysis), to choose per-layer sparsities from",
}


def catalog() -> dict[str, Any]:
    """Everything a client needs to build a job form: choices, parameters, ranges, defaults, presets."""
    from core.presets import PRESETS, SWEEP_PRESETS  # local import: presets are data, loaded on demand

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
            for k, cls in (
                ("oneshot", OneShotSchedule),
                ("iterative", IterativeSchedule),
                ("sensitivity", SensitivitySchedule),
            )
        ],
        "train": {"params": _params(TrainSpec, skip=())},
        "measure": {"params": _params(MeasureSpec, skip=())},
        "devices": ["auto", "cpu", "cuda"],
        "presets": PRESETS + SWEEP_PRESETS,
    }

"""Per-layer sensitivity scan on a trained LeNet-300-100 (digits): the grid, what it shows, the allocation
it leads to, and the activation cache equal to plain re-evaluation (LeNet, VGG, ResNet-18)."""

import pytest
import torch
from torch import nn

from core.allocation import allocate
from core.spec import parse_spec
from worker.engine.data import Split, load_dataset
from worker.engine.models import build_model
from worker.engine.pruning import BlockPruner, MagnitudePruner
from worker.engine.sensitivity import evaluate_sets, scan
from worker.engine.training import TrainConfig, evaluate, train

LAYERS = ["fc1", "fc2", "fc3"]
SPARSITIES = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
METRICS = ("accuracy", "val_accuracy", "loss", "val_loss")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "unused", "cpu", 0.1, seed=0)


@pytest.fixture(scope="module")
def baseline(digits):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("lenet300_100", digits.shape, digits.num_classes)
    train(model, digits, TrainConfig(epochs=10, lr=1e-3, batch_size=64), seed=0)
    return model.eval()


def magnitude(model, layer):
    return MagnitudePruner([layer])


def lenet_spec(method: dict):
    return parse_spec({"model": "lenet300_100", "dataset": "digits", "method": method, "schedule": {"kind": "oneshot"}})


def assert_same(cached: list[dict], plain: list[dict]) -> None:
    assert [(r["layer"], r["sparsity"]) for r in cached] == [(r["layer"], r["sparsity"]) for r in plain]
    for a, b in zip(cached, plain):
        for key in METRICS:
            assert abs(a[key] - b[key]) <= 1e-6, (a["layer"], a["sparsity"], key)
        assert a["params_removed"] == b["params_removed"] and a["flops_removed"] == b["flops_removed"]


def test_grid_has_every_point_and_fc3_is_the_sensitive_layer(baseline, digits):
    before = {k: v.clone() for k, v in baseline.state_dict().items()}
    rows = scan(baseline, LAYERS, SPARSITIES, lenet_spec({"kind": "magnitude"}), digits)
    assert [(r["layer"], r["sparsity"]) for r in rows] == [(n, s) for n in LAYERS for s in SPARSITIES]
    assert all(r["cached"] for r in rows)
    assert all(torch.equal(before[k], v) for k, v in baseline.state_dict().items())  # the model is untouched
    at = {(r["layer"], r["sparsity"]): r for r in rows}
    base = evaluate_sets(baseline, digits)
    assert at[("fc3", 0.9)]["val_accuracy"] < at[("fc1", 0.9)]["val_accuracy"] - 0.1
    assert at[("fc3", 0.9)]["accuracy"] < at[("fc1", 0.9)]["accuracy"] - 0.1
    assert at[("fc1", 0.3)]["val_accuracy"] >= base["val_accuracy"] - 0.02
    fc1 = at[("fc1", 0.9)]
    assert fc1["params_removed"] == round(0.9 * 64 * 300) and fc1["layer_params"] == 64 * 300
    assert fc1["flops_removed"] == round(fc1["layer_flops"] * 0.9) and fc1["layer_flops"] == 2 * 64 * 300
    assert fc1["latency"] is None


def test_activation_cache_equals_plain_reevaluation_on_lenet(baseline, digits):
    for pruner in (magnitude, lambda m, layer: BlockPruner([layer], (2, 2))):
        cached = scan(baseline, LAYERS, [0.5, 0.9], pruner, digits, batch_size=128)
        plain = scan(baseline, LAYERS, [0.5, 0.9], pruner, digits, batch_size=128, cache=False)
        assert all(r["cached"] for r in cached) and not any(r["cached"] for r in plain)
        assert_same(cached, plain)
    # a budget for one layer's weight copies at a time: one baseline pass per layer, same numbers
    small = scan(baseline, LAYERS, [0.5, 0.9], magnitude, digits, max_cache_bytes=1)
    assert_same(small, scan(baseline, LAYERS, [0.5, 0.9], magnitude, digits, cache=False))


@pytest.mark.parametrize("name, shape", [("resnet18", (3, 8, 8)), ("vgg", (3, 16, 16))])
def test_activation_cache_equals_plain_reevaluation_on_conv_models(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 10).eval()
    with torch.no_grad():  # BN statistics away from the defaults, so a wrong frontier shows
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    x, y = torch.randn(24, *shape), torch.randint(0, 10, (24,))
    sets = {"val": Split(x[:12], y[:12]), "test": Split(x[12:], y[12:])}
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    cached = scan(model, layers, [0.5, 0.9], magnitude, sets, batch_size=5)
    plain = scan(model, layers, [0.5, 0.9], magnitude, sets, batch_size=5, cache=False)
    assert all(r["cached"] for r in cached)
    assert_same(cached, plain)
    # and plain equals evaluating a model pruned by hand
    layer = "layer2.0.downsample.0" if name == "resnet18" else "backbone.conv3"
    by_hand = build_model(name, shape, 10)
    by_hand.load_state_dict(model.state_dict())
    MagnitudePruner([layer]).prune(by_hand.eval(), 0.9, None, None)
    row = next(r for r in cached if r["layer"] == layer and r["sparsity"] == 0.9)
    accuracy, loss = evaluate(by_hand, sets["test"], 5)
    assert row["accuracy"] == accuracy and abs(row["loss"] - loss) <= 1e-6


class InPlace(nn.Module):
    """In-place writes into values the cache keeps: by a changed node (h.add_ after c), and by the
    baseline walk before a layer's frontier is complete (e comes after the write)."""

    def __init__(self):
        super().__init__()
        self.a, self.c, self.e = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.d = nn.Linear(16, 10)

    def forward(self, x):
        h = self.a(x)
        w = h.add_(self.c(x))
        v = self.e(x)
        return self.d(torch.relu(w)) + v[:, :10]


def test_activation_cache_with_in_place_writes_equals_plain():
    torch.manual_seed(0)
    model = InPlace().eval()
    x, y = torch.randn(40, 16), torch.randint(0, 10, (40,))
    sets = {"val": Split(x[:20], y[:20]), "test": Split(x[20:], y[20:])}
    cached = scan(model, ["c", "d", "e", "a"], [0.3, 0.6, 0.9], magnitude, sets, batch_size=7)
    plain = scan(model, ["c", "d", "e", "a"], [0.3, 0.6, 0.9], magnitude, sets, batch_size=7, cache=False)
    assert all(r["cached"] for r in cached)
    assert_same(cached, plain)


def test_allocation_for_overall_0_9_beats_uniform_one_shot(baseline, digits):
    rows = scan(baseline, LAYERS, SPARSITIES, magnitude, digits)
    base = evaluate_sets(baseline, digits)
    plan = allocate(rows, base["val_accuracy"], target_sparsity=0.9)
    assert plan["sparsity"] == pytest.approx(0.9)
    assert plan["layer_sparsity"]["fc3"] < 0.9  # the output layer is spared

    def one_shot(layer_sparsity):
        model = build_model("lenet300_100", digits.shape, digits.num_classes)
        model.load_state_dict(baseline.state_dict())
        pruner = MagnitudePruner(LAYERS)
        pruner.prune(model.eval(), 0.0, layer_sparsity, None)
        return pruner.sparsity(model), evaluate(model, digits.test)[0]

    achieved, allocated = one_shot(plan["layer_sparsity"])
    uniform_sparsity, uniform = one_shot({n: 0.9 for n in LAYERS})
    assert achieved == pytest.approx(0.9, abs=1e-3) and uniform_sparsity == pytest.approx(0.9, abs=1e-3)
    assert allocated >= uniform


def test_channel_scan_reports_the_compact_models_reduction(baseline, digits):
    rows = scan(baseline, ["fc1", "fc3"], [0.5], lenet_spec({"kind": "channel"}), digits, max_eval_images=100)
    fc1, fc3 = rows
    assert not fc1["cached"]
    # half of fc1's 300 neurons: their input weights and biases, and fc2's columns that read them
    assert fc1["params_removed"] == 150 * 64 + 150 + 100 * 150
    assert fc1["flops_removed"] == 2 * (150 * 64 + 100 * 150)
    assert fc3["params_removed"] == 0  # the classifier's outputs are never removed
    assert fc3["accuracy"] == pytest.approx(evaluate_sets(baseline, digits, max_eval_images=100)["accuracy"])
    assert (fc1["accuracy"] * 100) == pytest.approx(round(fc1["accuracy"] * 100))  # 100 test images


def test_latency_hook_sees_the_model_with_the_one_layer_pruned(baseline, digits):
    seen = []

    def latency(model, pruner):
        fc2_min = float(model.fc2.weight.detach().abs().min())
        seen.append((pruner.layer_names, round(pruner.sparsity(model), 3), fc2_min))
        return len(seen)

    rows = scan(baseline, ["fc1"], [0.5, 0.9], magnitude, digits, latency_fn=latency, max_eval_images=50)
    assert [r["latency"] for r in rows] == [1, 2]
    assert [s[:2] for s in seen] == [(["fc1"], 0.5), (["fc1"], 0.9)]
    assert all(s[2] > 0 for s in seen)  # fc2 keeps its baseline weights


def test_bad_input_names_the_field(baseline, digits):
    with pytest.raises(ValueError, match=r"sparsities: each must be in \[0, 1\)"):
        scan(baseline, LAYERS, [1.0], magnitude, digits)
    with pytest.raises(ValueError, match="method.layers: unknown layer 'fc9'"):
        scan(baseline, ["fc9"], [0.5], magnitude, digits)
    with pytest.raises(ValueError, match="method.kind: the sensitivity scan prunes without training"):
        scan(baseline, LAYERS, [0.5], lenet_spec({"kind": "group_lasso"}), digits)
    with pytest.raises(ValueError, match="eval_sets: needs the splits 'val' and 'test'; missing: test"):
        scan(baseline, LAYERS, [0.5], magnitude, {"val": digits.val})

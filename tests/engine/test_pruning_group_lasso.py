"""Group lasso: the penalty drives whole filters down during the regularised epochs; they are removed."""

import torch
from torch import nn

from worker.engine.models import build_model
from worker.engine.pruning import GroupLassoPruner
from worker.engine.pruning.group_lasso import filter_norms

torch.manual_seed(0)
X = torch.randn(256, 1, 8, 8)
Y = (X[:, 0, 0, :4].sum(1) > 0).long() + 2 * (X[:, 0, 1, :4].sum(1) > 0).long()  # 4 classes, 8 pixels matter


def make_train_fn(log: list):
    def train_fn(model: nn.Module, epochs: int, pruner) -> None:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(epochs):
            for i in range(0, len(X), 64):
                loss = nn.functional.cross_entropy(model(X[i : i + 64]), Y[i : i + 64])
                penalty = pruner.penalty(model)
                log.append(penalty is not None)
                if penalty is not None:
                    loss = loss + penalty
                opt.zero_grad()
                loss.backward()
                opt.step()
                pruner.apply_masks(model)

    return train_fn


def relative_norms(layer: nn.Module) -> torch.Tensor:
    norms = filter_norms(layer.weight.detach())
    return norms / norms.max()


def test_penalty_drives_filters_down_and_they_are_removed():
    torch.manual_seed(0)
    plain = build_model("lenet300_100", (1, 8, 8), 10)
    regular = build_model("lenet300_100", (1, 8, 8), 10)
    regular.load_state_dict(plain.state_dict())
    log: list[bool] = []
    baseline = GroupLassoPruner(plain, ["fc1", "fc2", "fc3"], torch.zeros(1, 1, 8, 8), strength=1e-9, epochs=30)
    baseline.prune(plain, 0.0, None, make_train_fn([]))
    pruner = GroupLassoPruner(
        regular, ["fc1", "fc2", "fc3"], torch.zeros(1, 1, 8, 8), strength=0.05, epochs=30, threshold=0.05
    )
    assert pruner.penalty(regular) is None  # only active during its own epochs
    pruned = pruner.prune(regular, 0.0, None, make_train_fn(log))
    assert all(log) and len(log) == 30 * 4
    # the regularised model lost most hidden units; the nearly unregularised one kept them
    assert plain.fc1.out_features > 280
    assert pruned.fc1.out_features < 220 and pruned.fc2.out_features < 90
    assert pruned.fc3.out_features == 10
    assert relative_norms(pruned.fc1).min() >= 0.05  # everything under the threshold went
    assert pruned(X[:2]).shape == (2, 10)


def test_penalty_value_is_strength_times_sum_of_filter_norms():
    model = build_model("lenet300_100", (1, 8, 8), 10)
    pruner = GroupLassoPruner(model, ["fc1", "fc2", "fc3"], torch.zeros(1, 1, 8, 8), strength=0.5)
    pruner.regularising = True
    expected = 0.5 * (model.fc1.weight.norm(dim=1).sum() + model.fc2.weight.norm(dim=1).sum())  # fc3: classifier
    assert torch.allclose(pruner.penalty(model), expected)
    with torch.no_grad():
        model.fc1.weight[:5] = 0  # zero filters: finite gradients
    pruner.penalty(model).backward()
    assert torch.isfinite(model.fc1.weight.grad).all()


def test_sparsity_target_tops_up_what_the_threshold_left():
    torch.manual_seed(0)
    model = build_model("vgg", (3, 32, 32), 10)
    layers = ["backbone.conv0", "backbone.conv1", "backbone.conv2"]
    pruner = GroupLassoPruner(model, layers, torch.zeros(1, 3, 32, 32), strength=1e-4, epochs=1, threshold=1e-6)
    calls = []
    model = pruner.prune(model, 0.5, None, lambda m, epochs, p: calls.append((epochs, p.penalty(m) is not None)))
    assert calls == [(1, True)]
    assert abs(pruner.sparsity(model) - 0.5) < 0.03
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)

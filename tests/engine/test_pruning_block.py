"""Block pruning: exact block counts, uniform blocks (edges, rectangles, conv), global scope, masks that hold."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from core.masks import decode_density, decode_grid
from worker.engine.pruning import BlockPruner, block_mask, block_scores, expand_blocks, lowest_mask


def blocks_uniform(mask2d: torch.Tensor, block: tuple[int, int]) -> bool:
    """Every r x c block (edge blocks too) is all kept or all pruned."""
    r, c = block
    rows, cols = mask2d.shape
    for i in range(0, rows, r):
        for j in range(0, cols, c):
            cell = mask2d[i : i + r, j : j + c]
            if not (cell.all() or not cell.any()):
                return False
    return True


def test_lowest_mask_counts_exactly_with_ties_and_keeps_dead_entries():
    scores = torch.tensor([0.5, 0.1, 0.1, 0.1, 0.9, 0.3])
    alive = torch.tensor([True, True, True, True, True, False])
    pruned = lowest_mask(scores, alive, 3)
    assert int(pruned.sum()) == 3
    assert pruned[5]  # dead entry counts first
    assert int(pruned[1:4].sum()) == 2  # two of the tied 0.1s
    assert not pruned[4] and not pruned[0]
    # a target below what is already dead never revives anything
    assert lowest_mask(scores, alive, 0).tolist() == [False] * 5 + [True]


@pytest.mark.parametrize(
    "shape,block",
    [
        ((64, 48), (4, 4)),
        ((30, 50), (4, 4)),
        ((30, 50), (3, 7)),
        ((17, 5), (2, 2)),
        ((10, 10), (1, 1)),
        ((8, 8), (16, 16)),
    ],
)
def test_block_mask_hits_the_block_target_and_blocks_are_uniform(shape, block):
    torch.manual_seed(0)
    weight = torch.randn(shape)
    grid = block_mask(weight, block, 0.6)
    n_blocks = math.ceil(shape[0] / block[0]) * math.ceil(shape[1] / block[1])
    assert grid.shape == (math.ceil(shape[0] / block[0]), math.ceil(shape[1] / block[1]))
    assert int((~grid).sum()) == round(0.6 * n_blocks)
    mask = expand_blocks(grid, block, shape)
    assert mask.shape == shape
    assert blocks_uniform(mask, block)
    element_sparsity = 1 - mask.float().mean().item()
    # within one block's share of the target
    assert abs(element_sparsity - 0.6) <= (block[0] * block[1]) / weight.numel() + 1 / n_blocks


def test_block_scores_edge_blocks_use_their_own_element_count():
    weight = torch.ones(5, 5)
    weight[4, :] = 3.0  # the bottom edge blocks hold only this row (one row of 2)
    mean_abs = block_scores(weight, (2, 2), "mean_abs")
    assert mean_abs.shape == (3, 3)
    assert torch.allclose(mean_abs[2], torch.ones(3))  # 3.0 / 3.0 normalised: edge rows are the largest
    assert torch.allclose(mean_abs[0, 0], torch.tensor(1 / 3))
    l1 = block_scores(weight, (2, 2), "l1")
    assert l1[0, 0] == pytest.approx(4 / 6) and l1[2, 2] == pytest.approx(3 / 6)  # corner: one element of 3
    l2 = block_scores(weight, (2, 2), "l2")
    assert l2.max() == pytest.approx(1.0)


def test_block_pruning_prunes_the_weakest_blocks():
    weight = torch.ones(8, 8)
    weight[0:4, 4:8] = 0.01
    grid = block_mask(weight, (4, 4), 0.25)
    assert grid.tolist() == [[True, False], [True, True]]


def test_conv_weights_are_pruned_in_the_2d_view():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 10))
    pruner = BlockPruner(["0", "3"], (4, 9))
    pruner.prune(model, 0.5, None, None)
    mask = pruner.masks["0"]
    assert mask.shape == model[0].weight.shape
    assert blocks_uniform(mask.reshape(16, 27), (4, 9))
    assert (model[0].weight[~mask] == 0).all()
    report = {layer["name"]: layer for layer in pruner.layer_report(model)}
    conv = report["0"]
    assert conv["kind"] == "conv" and conv["shape"] == [16, 3, 3, 3]
    grid = decode_grid(conv["mask"]["grid"])
    assert conv["mask"]["block_shape"] == [4, 9] and grid.shape == (4, 3)
    assert np.array_equal(np.repeat(np.repeat(grid, 4, 0), 9, 1), mask.reshape(16, 27).numpy())
    density = decode_density(conv["density"])
    assert density.shape == (16, 27)
    assert conv["sparsity"] == pytest.approx(0.5, abs=1 / 12)
    assert report["3"]["shape"] == [10, 576]


def test_global_scope_differs_from_layer_scope():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
    with torch.no_grad():
        model[2].weight.mul_(torch.linspace(0.1, 1.0, 32)[:, None])  # uneven block scores within layer 2
    per_layer = BlockPruner(["0", "2"], (4, 4), scope="layer")
    joint = BlockPruner(["0", "2"], (4, 4), scope="global")
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    per_layer.prune(a, 0.5, None, None)
    joint.prune(b, 0.5, None, None)
    layer_sp = [layer["sparsity"] for layer in per_layer.layer_report(a)]
    joint_sp = [layer["sparsity"] for layer in joint.layer_report(b)]
    assert layer_sp == [0.5, 0.5]
    assert joint_sp != layer_sp
    assert joint.sparsity(b) == pytest.approx(0.5)  # one threshold, same overall count of blocks


def test_per_layer_targets_win_over_the_uniform_target():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))
    pruner = BlockPruner(["0", "1"], (2, 2))
    pruner.prune(model, 0.5, {"1": 0.25}, None)
    sparsity = {layer["name"]: layer["sparsity"] for layer in pruner.layer_report(model)}
    assert sparsity == {"0": 0.5, "1": 0.25}


def test_iterative_rounds_only_remove_alive_blocks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 40))
    pruner = BlockPruner(["0"], (4, 4))
    pruner.prune(model, 0.2, None, None)
    first = pruner.masks["0"].clone()
    with torch.no_grad():  # training moves the survivors; pruned blocks stay dead and count
        model[0].weight.add_(torch.randn(40, 40) * 0.5 * first)
    pruner.prune(model, 0.36, None, None)
    second = pruner.masks["0"]
    assert not (second & ~first).any()  # nothing pruned came back
    assert int((~second[::4, ::4]).sum()) == round(0.36 * 100)


@pytest.mark.parametrize("optimizer", ["sgd", "adam_wd"])
def test_masks_hold_through_optimizer_steps(optimizer):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if optimizer == "adam_wd":
        opt = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.1)
    x, y = torch.randn(32, 12), torch.randint(0, 3, (32,))
    for _ in range(3):  # momentum / Adam state built up before pruning
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    pruner = BlockPruner(["0", "2"], (2, 4))
    pruner.prune(model, 0.7, None, None)
    before = {n: m.clone() for n, m in pruner.masks.items()}
    weight0 = model[0].weight.detach().clone()
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        assert (model[0].weight.grad[~before["0"]] == 0).all()  # gradients are masked as computed
        opt.step()
        pruner.apply_masks(model)
        assert (model[0].weight[~before["0"]] == 0).all()
        assert (model[2].weight[~before["2"]] == 0).all()
    assert not torch.equal(model[0].weight.detach(), weight0)  # the survivors did train


def test_state_dict_round_trip_restores_masks():
    model = nn.Sequential(nn.Linear(8, 8))
    pruner = BlockPruner(["0"], (2, 2))
    pruner.prune(model, 0.5, None, None)
    other = BlockPruner(["0"], (2, 2))
    other.load_state_dict(pruner.state_dict())
    assert torch.equal(other.masks["0"], pruner.masks["0"]) and other.targets == pruner.targets
    fresh = nn.Sequential(nn.Linear(8, 8))
    other.apply_masks(fresh)
    assert (fresh[0].weight[~pruner.masks["0"]] == 0).all()


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="method.score"):
        BlockPruner(["0"], (2, 2), score="max")
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="method.layers.*allowed: 0"):
        BlockPruner(["fc9"], (2, 2)).prune(model, 0.5, None, None)


@pytest.mark.parametrize("fraction", [0.0001, 0.2, 0.5, 0.97])
def test_kth_smallest_on_large_tensors_equals_kthvalue(fraction):
    from worker.engine.pruning.base import kth_smallest

    torch.manual_seed(1)
    values = torch.randn(3_000_000)
    values[:1000] = float("-inf")  # dead entries, as lowest_mask marks them
    values[5000:9000] = 0.25  # a block of ties
    k = max(1, round(fraction * values.numel()))
    assert kth_smallest(values, k) == values.kthvalue(k).values
    mask = lowest_mask(values, torch.ones_like(values, dtype=torch.bool), k)
    assert int(mask.sum()) == k and values[mask].max() <= values[~mask].min()

"""Sparse Linear modules match dense; realisation picks a measured form and keeps outputs equal."""

import pytest
import torch
from torch import nn

from worker.engine.pruning import BlockPruner
from worker.engine.sparse import (
    BSRLinear,
    CSRLinear,
    bsr_blocks_for,
    choose_linear_form,
    measure_until_stable,
    model_form,
    realise,
    spread,
    time_ms,
)


def sparse_linear(rows=64, cols=96, bias=True, keep=0.2, block=(8, 8)) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(cols, rows, bias=bias)
    grid = torch.rand(rows // block[0], cols // block[1]) < keep
    mask = grid.repeat_interleave(block[0], 0).repeat_interleave(block[1], 1)
    with torch.no_grad():
        layer.weight.mul_(mask)
    return layer


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "make", [lambda dense: BSRLinear(dense, (8, 8)), lambda dense: BSRLinear(dense, (16, 16)), CSRLinear]
)
def test_sparse_modules_equal_dense(make, bias):
    layer = sparse_linear(bias=bias)
    module = make(layer)
    for x in (torch.randn(5, 96), torch.randn(1, 96), torch.randn(2, 3, 96)):
        with torch.inference_mode():
            assert torch.allclose(module(x), layer(x), atol=1e-5)
    assert module.weight.layout in (torch.sparse_bsr, torch.sparse_csr)


def test_bsr_block_must_divide_the_weight():
    with pytest.raises(ValueError, match="does not divide"):
        BSRLinear(nn.Linear(10, 12), (8, 8))
    with pytest.raises(ValueError, match="square"):
        BSRLinear(nn.Linear(32, 16), (16, 32))
    assert bsr_blocks_for((64, 96), (4, 4))[0] == (4, 4)
    assert bsr_blocks_for((64, 96), (4, 8))[0] == (4, 4)
    assert (32, 32) not in bsr_blocks_for((64, 96 + 16)) and (16, 16) in bsr_blocks_for((64, 96 + 16))
    assert bsr_blocks_for((10, 12), (1, 1)) == []


def test_choose_linear_form_times_every_candidate():
    layer = sparse_linear(rows=128, cols=128, keep=0.05, block=(16, 16))
    module, form, timings = choose_linear_form(layer, 16, "cpu", (16, 16))
    assert {"dense", "csr", "bsr16x16"} <= set(timings) and form == min(timings, key=timings.get)
    assert all(t > 0 for t in timings.values())
    dense_only = nn.Linear(32, 32)  # fully dense: no sparse form is tried
    _, form, timings = choose_linear_form(dense_only, 4, "cpu")
    assert form == "dense" and list(timings) == ["dense"]


def test_realise_keeps_outputs_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    pruner = BlockPruner(["0", "2"], (16, 16))
    pruner.prune(model, 0.9, None, None)
    realised, forms = realise(model, ["0", "2"], 32, "cpu", (16, 16))
    assert set(forms) == {"0", "2"}
    for name, form in forms.items():  # each reported form is the module that really sits there
        layer = realised.get_submodule(name)
        if form == "dense":
            assert type(layer) is nn.Linear
        elif form == "csr":
            assert isinstance(layer, CSRLinear) and layer.weight.layout == torch.sparse_csr
        else:
            assert isinstance(layer, BSRLinear) and form == f"bsr{layer.blocksize[0]}x{layer.blocksize[1]}"
    assert isinstance(model[0], nn.Linear)  # the training model is untouched
    x = torch.randn(32, 256)
    with torch.inference_mode():
        assert torch.allclose(realised(x), model(x), atol=1e-5)


def test_model_form_names_the_sparsest_layout_present():
    assert model_form({"a": "dense", "b": "csr", "c": "bsr16x16"}) == "bsr"
    assert model_form({"a": "csr", "b": "dense"}) == "csr"
    assert model_form({"a": "dense"}) == "dense" and model_form({}) == "dense"


def test_time_ms_is_a_median_of_positive_times():
    x = torch.randn(64, 64)
    assert time_ms(lambda: x @ x, "cpu", repeats=5) > 0


def test_spread_quantiles():
    s = spread([float(v) for v in range(11, 0, -1)])  # 1..11, unsorted
    assert s["median"] == 6 and s["p10"] == 2 and s["p90"] == 10 and s["repeats"] == 11
    assert s["rel_iqr"] == pytest.approx((8.5 - 3.5) / 6)


def test_measure_until_stable_interleaves_and_stops():
    x = torch.randn(32, 32)
    calls = []

    def fn(name):
        return lambda: calls.append(name) or x @ x

    # an unreachable spread: stops at the time budget, after at least 3 samples of each
    out = measure_until_stable({"a": fn("a"), "b": fn("b")}, "cpu", budget_s=0.0, max_rel_iqr=-1.0)
    assert out["a"]["repeats"] == out["b"]["repeats"] == 3
    assert all(o["p10"] <= o["median"] <= o["p90"] and o["calls"] >= 1 for o in out.values())
    # any spread accepted: stops at min_repeats
    out = measure_until_stable(
        {"a": fn("a")}, "cpu", budget_s=60.0, max_rel_iqr=float("inf"), min_repeats=5, min_time_s=0.0
    )
    assert out["a"]["repeats"] == 5
    # the candidates take turns sample by sample
    calls.clear()
    measure_until_stable({"a": fn("a"), "b": fn("b")}, "cpu", budget_s=0.0, sample_s=0.0, warmup=0)
    assert calls == ["a"] * 3 + ["b"] * 3 + ["a", "b"] * 3  # 3 calls each to size the samples, then turns

"""measure_model: sizes, FLOPs and latency that agree with each other and with the pruning."""

import pytest
import torch

from core.masks import decode_grid
from worker.engine.metrics import bsr_bytes, csr_bytes, flop_counts, measure_model, speedup_interval
from worker.engine.models import build_model
from worker.engine.pruning import BlockPruner, ChannelPruner, MagnitudePruner

LENET_FLOPS = 2 * (64 * 300 + 300 * 100 + 100 * 10)
LATENCY_KEYS = {
    "device",
    "batch_size",
    "dense_ms",
    "realised_ms",
    "speedup",
    "form",
    "dense_p10_ms",
    "dense_p90_ms",
    "realised_p10_ms",
    "realised_p90_ms",
    "repeats",
    "speedup_low",
    "speedup_high",
    "speedup_significant",
    "speedup_label",
}


def check_spread(lat):
    """Each latency is a measurement: p10 <= median <= p90, the speedup inside its interval, the label
    naming a speedup only when the ranges separate."""
    assert LATENCY_KEYS <= set(lat) and lat["repeats"] >= 3
    assert lat["dense_p10_ms"] <= lat["dense_ms"] <= lat["dense_p90_ms"]
    assert lat["realised_p10_ms"] <= lat["realised_ms"] <= lat["realised_p90_ms"]
    assert lat["speedup_low"] <= lat["speedup"] <= lat["speedup_high"]
    separated = lat["realised_p90_ms"] < lat["dense_p10_ms"] or lat["realised_p10_ms"] > lat["dense_p90_ms"]
    if lat["form"] != "dense":
        assert lat["speedup_significant"] is separated
        assert (lat["speedup_label"] == "~1.0x (within noise)") is not separated
    else:
        assert lat["speedup_significant"] is False and lat["speedup"] == 1.0


def lenet():
    torch.manual_seed(0)
    return build_model("lenet300_100", (1, 8, 8), 10)


def test_unpruned_model_numbers():
    model = lenet()
    m = measure_model(model, None, (1, 8, 8), 8, "cpu", latency=True)
    total = sum(p.numel() for p in model.parameters())
    assert m["params_total"] == total == m["params_nonzero"]
    assert m["size_dense_bytes"] == m["size_sparse_bytes"] == m["size_compact_bytes"] == 4 * total
    assert m["flops_dense"] == m["flops_effective"] == LENET_FLOPS
    assert LATENCY_KEYS <= set(m["latency"]) and m["latency"]["form"] == "dense" and m["latency"]["speedup"] == 1.0
    check_spread(m["latency"])
    assert measure_model(model, None, (1, 8, 8), 8, "cpu", latency=False)["latency"] is None


def test_block_pruned_numbers_are_consistent():
    model = lenet()
    pruner = BlockPruner(["fc1", "fc2"], (4, 4))
    pruner.prune(model, 0.9, None, None)
    m = measure_model(model, pruner, (1, 8, 8), 16, "cpu", latency=True)
    assert m["params_nonzero"] <= m["params_total"]
    assert m["params_total"] - m["params_nonzero"] == pytest.approx(0.9 * (64 * 300 + 300 * 100), abs=32)
    assert m["flops_effective"] < m["flops_dense"] == LENET_FLOPS
    # effective = dense FLOPs minus the pruned share of fc1 and fc2
    expected = LENET_FLOPS - 0.9 * 2 * (64 * 300 + 300 * 100)
    assert m["flops_effective"] == pytest.approx(expected, rel=0.01)
    assert m["size_sparse_bytes"] < 0.3 * m["size_dense_bytes"]
    assert m["size_compact_bytes"] == m["size_dense_bytes"]
    lat = m["latency"]
    assert lat["form"] in ("dense", "csr", "bsr") and lat["dense_ms"] > 0 and lat["realised_ms"] > 0
    assert lat["speedup"] == pytest.approx(lat["dense_ms"] / lat["realised_ms"], rel=1e-3)
    assert lat["realised_ms"] <= lat["dense_ms"]  # a slower sparse form is never reported as the choice
    check_spread(lat)


def test_magnitude_low_sparsity_storage_never_exceeds_dense():
    model = lenet()
    pruner = MagnitudePruner(["fc1", "fc2", "fc3"])
    pruner.prune(model, 0.2, None, None)
    m = measure_model(model, pruner, (1, 8, 8), 4, "cpu", latency=False)
    assert m["size_sparse_bytes"] == m["size_dense_bytes"]  # CSR at 80 % density is bigger: stays dense
    pruner.prune(model, 0.95, None, None)
    m = measure_model(model, pruner, (1, 8, 8), 4, "cpu", latency=False)
    assert m["size_sparse_bytes"] < 0.2 * m["size_dense_bytes"]


def test_storage_formulas():
    matrix = torch.zeros(8, 8)
    matrix[0:4, 0:4] = 1.0
    assert csr_bytes(matrix) == 16 * 8 + 9 * 4
    assert bsr_bytes(matrix, (4, 4)) == 1 * (16 * 4 + 4) + 3 * 4
    assert bsr_bytes(torch.ones(5, 5), (4, 4)) == 4 * (16 * 4 + 4) + 3 * 4  # edge blocks padded


def test_channel_pruned_model_is_measured_against_the_original():
    torch.manual_seed(0)
    model = build_model("vgg", (3, 32, 32), 10)
    dense_flops, _ = flop_counts(model, (3, 32, 32), "cpu")
    pruner = ChannelPruner(model, ["backbone.conv0", "backbone.conv1", "backbone.conv2"], torch.zeros(1, 3, 32, 32))
    model = pruner.prune(model, 0.5, None, None)
    m = measure_model(model, pruner, (3, 32, 32), 2, "cpu", latency=False)
    assert m["flops_dense"] == dense_flops and m["flops_effective"] < dense_flops
    assert m["size_compact_bytes"] < m["size_dense_bytes"] and m["params_nonzero"] <= m["params_total"]
    layers = pruner.layer_report(model)
    assert all(decode_grid(layer["mask"]["grid"]).shape == tuple(layer["shape"][:2]) for layer in layers)


def test_channel_pruned_latency_is_the_compact_model():
    model = lenet()
    pruner = ChannelPruner(model, ["fc1", "fc2", "fc3"], torch.zeros(1, 1, 8, 8))
    model = pruner.prune(model, 0.6, None, None)
    m = measure_model(model, pruner, (1, 8, 8), 8, "cpu", latency=True)
    assert m["latency"]["form"] == "compact" and m["latency"]["realised_ms"] > 0
    check_spread(m["latency"])
    assert m["params_total"] == sum(p.numel() for p in lenet().parameters())
    assert m["flops_effective"] < m["flops_dense"] == LENET_FLOPS


def test_a_speedup_is_called_only_when_the_ranges_separate():
    dense = {"median": 1.0, "p10": 0.95, "p90": 1.05}
    faster = speedup_interval(dense, {"median": 0.5, "p10": 0.48, "p90": 0.52})
    assert faster["speedup_significant"] is True and faster["speedup_label"] == "2.00x"
    assert faster["speedup_low"] == pytest.approx(0.95 / 0.52, abs=1e-4)
    assert faster["speedup_high"] == pytest.approx(1.05 / 0.48, abs=1e-4)
    slower = speedup_interval(dense, {"median": 2.0, "p10": 1.9, "p90": 2.1})
    assert slower["speedup_significant"] is True and slower["speedup_label"] == "0.50x"
    overlap = speedup_interval(dense, {"median": 0.9, "p10": 0.85, "p90": 0.97})  # 1.11x, inside the noise
    assert overlap["speedup_significant"] is False and overlap["speedup_label"] == "~1.0x (within noise)"
    assert overlap["speedup_low"] < 1.0 < overlap["speedup_high"]

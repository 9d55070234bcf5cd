"""The presets state their measured time to the first point and to the end (core/preset_timings.json,
written by bench/bench_presets.py)."""

import json

from core.presets import PRESETS, TIMINGS_FILE, timing_text


def test_every_measured_preset_says_its_times_in_its_label():
    timings = json.loads(TIMINGS_FILE.read_text())
    names = {p["name"] for p in PRESETS}
    assert set(timings) <= names  # no measurement of a preset that no longer exists
    quick = [p for p in PRESETS if p.get("quick")]
    assert quick and all(p["name"] in timings for p in quick)
    for preset in PRESETS:
        if preset["name"] in timings:
            entry = timings[preset["name"]]
            assert entry["machine"] and entry["first_point_s"] > 0 and "load_average" in entry
            assert preset["timing"] in preset["label"] and preset["timing"].startswith("first point in ~")


def test_timing_text():
    assert timing_text({"first_point_s": 3.5, "total_s": 6.4, "machine": "2-core CPU"}) == (
        "first point in ~4 s, done in ~6 s on a 2-core CPU"
    )
    assert timing_text({"first_point_s": 95, "total_s": None, "over_s": 250, "machine": "2-core CPU"}) == (
        "first point in ~2 min, full run > 4 min on a 2-core CPU"
    )
    assert timing_text(None) is None and timing_text({"first_point_s": None}) is None

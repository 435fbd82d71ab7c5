"""Figures in the docs are generated, never typed: each generated block is exactly what its results
file renders to (`make bench` -> docs/generated/bench.json, `make mutate` -> docs/generated/mutation.json),
and every mutant that survived the last mutation run is explained in docs/testing.md.
"""

import json

from sink_bench import results as bench
from sink_dev import mutate
from sink_dev.generated import read_block
from sink_dev.paths import ROOT


def test_the_performance_figures_are_the_last_bench_results():
    data = json.loads(bench.RESULTS.read_text())
    assert {"date", "python", "machine", "repeats", "consumer"} <= set(data)
    assert all(len(row["events_per_s"]) == data["repeats"] for row in data["consumer"])
    assert read_block(bench.DOC, "bench") == bench.render(data)


def test_the_mutation_score_is_the_last_mutation_run():
    data = json.loads(mutate.RESULTS.read_text())
    assert data["killed"] + len(data["survivors"]) == data["total"]
    assert read_block(mutate.DOC, "mutation") == mutate.render(data)


def test_every_surviving_mutant_is_explained():
    data = json.loads(mutate.RESULTS.read_text())
    explained = (ROOT / "docs" / "testing.md").read_text().split("### Surviving mutants", 1)[1]
    missing = [s["mutant"] for s in data["survivors"] if s["mutant"] not in explained]
    assert not missing, missing


def test_a_target_is_met_only_when_every_run_met_it():
    assert bench.verdict([1100, 1200, 1050], 1000) == "met in all 3 runs"
    assert bench.verdict([900, 1200, 1050], 1000) == "**met by the median only** (2 of 3 runs)"
    assert bench.verdict([900, 950, 1050], 1000) == "**missed** (1 of 3 runs met it)"
    assert bench.verdict([0.9], 1.0, at_most=True) == "met"
    assert bench.spread([3.0, 1.0, 2.0]) == "2 (1–3)"


def test_the_cold_start_figures_show_init_and_first_invocation_beside_the_import():
    # Given a run's cold-start figures with the first invocation measured
    data = {"date": "d", "python": "3.13", "machine": {"cpus": 2, "cpu": "c", "system": "s"}, "latency_ms": {},
            "repeats": 1, "consumer": [], "targets": {"import_ratio": 1.5, "events_per_s": 1000, "vs_naive": 25},
            "imports": {"interpreters": 7, "baseline_ms": 100.0,
                        "functions_ms": {"stream_consumer": 160.0, "webhook": 140.0},
                        "first_invocation": {"event": "a batch", "functions_ms": {
                            "stream_consumer": {"init": 160.0, "invocation": 90.0, "total": 250.0},
                            "webhook": {"init": 140.0, "invocation": 60.0, "total": 200.0}}}}}
    # When the docs block is rendered, Then the true cost is there beside the target's figure
    text = bench.render(data)
    assert ("Init + first invocation (the import, then a batch, in the same interpreter): `stream_consumer` 250 ms "
            "(import 160 + invocation 90) = 2.50x the baseline; `webhook` 200 ms (import 140 + invocation 60) = "
            "2.00x the baseline.") in text
    assert "| each function's import ≤ 1.5x boto3 + Logger (the earlier target) | 1.60x / 1.40x (init + first " \
           "invocation: 2.50x / 2.00x) | **missed** |" in text
    # and, once a run measured each stack's floor, the import against it (issue 21's target)
    data["targets"]["floor_ratio"] = 1.2
    data["imports"]["floors_ms"] = {"stream_consumer": 150.0, "webhook": 112.0}
    text = bench.render(data)
    assert "`functions/webhook/app.py` 140 ms = 1.40x, 1.25x its stack's floor (112 ms)" in text
    assert "| each event-facing function's import ≤ 1.2x its stack's floor | 1.07x / 1.25x | **missed** |" in text

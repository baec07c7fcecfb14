"""The fault soak's healing figures, from job latencies (bench/chaos.py)."""

from __future__ import annotations

from uuid import uuid4

from bench.chaos import heal_figures


def test_each_fault_heals_by_its_slowest_job_less_the_calm_median_and_a_stuck_job_is_a_wedge() -> None:
    calm = {uuid4(): (float(t), 0.2) for t in range(10)}  # before the first fault: 0.2 s each
    after_kill = {uuid4(): (12.0, 3.2), uuid4(): (13.0, 0.3)}  # one job waited 3.2 s
    after_pause = {uuid4(): (21.0, 9.0)}
    seen = {**calm, **after_kill, **after_pause}
    faults = [("SIGKILL projector", 11.0), ("pause projector 8 s", 20.0)]
    figures = heal_figures(seen, len(seen), faults, last_fault=20.0)
    assert figures["heal_s"] == {"SIGKILL projector": 3.0, "pause projector 8 s": 8.8}
    assert (figures["slowest_job_s"], figures["median_latency_s"]) == (9.0, 0.2)
    assert figures["converged_after_last_fault_s"] == 10.0 and not figures["wedged"]
    stuck = heal_figures(seen, len(seen) + 1, faults, last_fault=20.0)  # one never showed
    assert stuck["wedged"] and stuck["converged_after_last_fault_s"] is None

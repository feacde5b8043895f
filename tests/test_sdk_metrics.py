"""bench/sdk_metrics.py reads latency histograms in the Prometheus text format the core SDK
serves, and reports the bucket bounds under which half and 99 % of the observations fell."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench.sdk_metrics import summarise

BUCKETS = (50, 100, 500, 1000, 10000)


def exposition(observations: dict[str, list[int]], *, workers: int = 1) -> str:
    """The histogram as the SDK serves it; with `workers`, each value is observed by one
    worker in turn (series that share the activity type and differ in another label)."""
    registry = CollectorRegistry()
    queued = Histogram(
        "temporal_activity_schedule_to_start_latency",
        "activity queued",
        ["activity_type", "worker"],
        buckets=BUCKETS,
        registry=registry,
    )
    for activity_type, values in observations.items():
        for i, value in enumerate(values):
            queued.labels(activity_type=activity_type, worker=str(i % workers)).observe(value)
    Histogram("unrelated_seconds", "not a latency of the SDK", registry=registry).observe(1)
    return generate_latest(registry).decode()


def test_bounds_per_activity_type() -> None:
    text = exposition({"send_notice": [10] * 60 + [400] * 39 + [5000], "roll_roster": [70]})
    rows = {r["of"]: r for r in summarise(text)}
    assert set(rows) == {"send_notice", "roll_roster"}
    notice = rows["send_notice"]
    assert notice["what"] == "activity queued on the server"
    assert notice["count"] == 100
    assert notice["p50_ms_at_most"] == 50
    assert notice["p99_ms_at_most"] == 500
    assert rows["roll_roster"]["p99_ms_at_most"] == 100


def test_beyond_the_last_bucket_is_infinite_not_invented() -> None:
    rows = summarise(exposition({"send_notice": [20_000, 30_000]}))
    assert rows[0]["p50_ms_at_most"] == math.inf


def test_series_of_one_key_are_added_up() -> None:
    values = [10] * 90 + [400] * 10  # by two workers, alternately
    rows = summarise(exposition({"send_notice": values}, workers=2))
    assert [(r["count"], r["p50_ms_at_most"], r["p99_ms_at_most"]) for r in rows] == [
        (100, 50, 500)
    ]

"""Where the worker's time waits: the core SDK's own latency histograms, scraped once at the
end of a load run from the worker's metrics endpoint (WORKER_METRICS_PORT).

Schedule-to-start is time spent queued on the server before a poller took the task; the
execution latencies are time inside the worker. Together they say whether an order waits on
the server's queues, in the worker's slots, or in its own steps (docs/benchmarks).
"""

from __future__ import annotations

import math
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

# What each latency histogram measures; any other `temporal_*latency` one is kept too.
MEANING = {
    "temporal_workflow_task_schedule_to_start_latency": "workflow task queued on the server",
    "temporal_workflow_task_execution_latency": "workflow task run in the worker",
    "temporal_workflow_task_replay_latency": "workflow task replayed (cache miss)",
    "temporal_activity_schedule_to_start_latency": "activity queued on the server",
    "temporal_activity_execution_latency": "activity run",
    "temporal_local_activity_execution_latency": "local activity run",
    "temporal_workflow_endtoend_latency": "workflow run, start to close",
}
SPLIT_BY = ("activity_type", "workflow_type", "task_queue")


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the bucket holding the q-th observation (ms), as Prometheus'
    histogram_quantile would without interpolation: a bound, never an invention."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    for bound, count in buckets:
        if count >= rank:
            return bound
    return math.inf


def summarise(text: str) -> list[dict[str, Any]]:
    """One row per latency histogram and activity / workflow type or queue: count, and the
    bucket bounds (ms) under which half and 99 % of the observations fell."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    rows: list[dict[str, Any]] = []
    for name, family in sorted(families.items()):
        if not (name.startswith("temporal_") and name.endswith("latency")):
            continue
        what = MEANING.get(name, name.removeprefix("temporal_"))
        # Series that share the key (other labels differ) are added up bucket by bucket.
        per_label: dict[str, dict[float, float]] = {}
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            key = next((sample.labels[k] for k in SPLIT_BY if k in sample.labels), "")
            bound = float(sample.labels["le"])
            counts = per_label.setdefault(key, {})
            counts[bound] = counts.get(bound, 0.0) + sample.value
        for key, by_bound in sorted(per_label.items()):
            buckets = sorted(by_bound.items())
            count = buckets[-1][1]
            if not count:
                continue
            rows.append(
                {
                    "what": what,
                    "of": key,
                    "count": int(count),
                    "p50_ms_at_most": _quantile(buckets, 0.5),
                    "p99_ms_at_most": _quantile(buckets, 0.99),
                }
            )
    return rows


async def scrape(url: str) -> list[dict[str, Any]]:
    """The watched histograms from a worker's /metrics, or [] if it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(url)
            answer.raise_for_status()
    except httpx.HTTPError:
        return []
    return summarise(answer.text)

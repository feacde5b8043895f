"""The worker's Temporal runtime: the core SDK serves its metrics and the o2o domain metrics
(made through the activity metric meter, see domain.py) at WORKER_METRICS_HOST:PORT/metrics.

Names and units are the core SDK's defaults — `temporal_` prefix, counters without `_total`,
durations in milliseconds — which temporalio/dashboards' core-SDK dashboard and the alert
rules in deploy/prometheus/ expect.
"""

from __future__ import annotations

import sys

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from settings import settings

SECOND_MS = 1000.0
# Time to accept spans seconds to hours: the core's default buckets stop at 10 s.
TIME_TO_ACCEPT_BUCKETS_MS = [
    s * SECOND_MS for s in (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
]


def metrics_address() -> str | None:
    """host:port of the worker's metrics endpoint, or None when WORKER_METRICS_PORT is 0."""
    if not settings.WORKER_METRICS_PORT:
        return None
    return f"{settings.WORKER_METRICS_HOST}:{settings.WORKER_METRICS_PORT}"


def worker_runtime() -> Runtime | None:
    """A runtime serving Prometheus metrics, or None (the default runtime, no endpoint)."""
    address = metrics_address()
    if address is None:
        return None
    from observability.domain import TIME_TO_ACCEPT

    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    histogram_bucket_overrides={TIME_TO_ACCEPT: TIME_TO_ACCEPT_BUCKETS_MS},
                )
            )
        )
    except ValueError as exc:  # the port is taken: dispatching matters more than metrics
        print(f"worker metrics are off: {exc} (set WORKER_METRICS_PORT)", file=sys.stderr)
        return None

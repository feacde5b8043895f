"""Build the Grafana dashboards in deploy/grafana/dashboards/ from the panel lists below.

    .venv/bin/python deploy/grafana/build_dashboards.py          write the JSON files
    .venv/bin/python deploy/grafana/build_dashboards.py --check  CI: files up to date, and
                                                                 every query names a metric
                                                                 the system exports

Dashboards as code: a panel is one line here, the JSON is generated (and committed, so
Grafana's file provisioning reads it as it is). Units follow the exporters: the core SDK's
histograms are in milliseconds, the API's in seconds.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources
# Metric families the system exports (observability/, the core SDK, the API instrumentator).
EXPORTED = re.compile(
    r"^(o2o_(order_events|order_time_to_accept_bucket|notices|stuck_orders)"
    r"|temporal_[a-z_]+|http_requests_total|http_request_duration_seconds_bucket|up)$"
)


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    width: int = 12
    kind: str = "timeseries"


def rate(metric: str, by: str, legend: str, where: str = "") -> tuple[str, str]:
    return (f"sum by ({by}) (rate({metric}{{{where}}}[$__rate_interval]))", legend)


def quantile(q: float, bucket: str, by: str, legend: str, where: str = "") -> tuple[str, str]:
    inner = f"sum by (le, {by}) (rate({bucket}{{{where}}}[$__rate_interval]))"
    return (f"histogram_quantile({q}, {inner})", legend)


EVENTS = "o2o_order_events"
O2O = [
    Panel(
        "Orders by event (per minute)",
        (("sum by (event) (rate(o2o_order_events[$__rate_interval])) * 60", "{{event}}"),),
        unit="short",
        width=24,
    ),
    Panel(
        "Received, accepted, completed by store (per minute)",
        tuple(
            (
                f'sum by (store_id) (rate({EVENTS}{{event="{e}"}}[$__rate_interval])) * 60',
                f"{e} · store {{{{store_id}}}}",
            )
            for e in ("received", "accepted", "completed", "cancelled")
        ),
    ),
    Panel(
        "Time to accept (received → accepted)",
        (
            quantile(
                0.5, "o2o_order_time_to_accept_bucket", "store_id", "p50 · store {{store_id}}"
            ),
            quantile(
                0.9, "o2o_order_time_to_accept_bucket", "store_id", "p90 · store {{store_id}}"
            ),
        ),
        unit="ms",
    ),
    Panel(
        "Timeouts, declines, reassignments by store (per hour)",
        tuple(
            (
                f'sum by (store_id) (increase({EVENTS}{{event="{e}"}}[1h]))',
                f"{e} · store {{{{store_id}}}}",
            )
            for e in ("timed_out", "declined", "reassigned")
        ),
    ),
    Panel(
        "Escalations by store (per hour)",
        (
            (
                f'sum by (store_id) (increase({EVENTS}{{event="escalated"}}[1h]))',
                "store {{store_id}}",
            ),
        ),
    ),
    Panel(
        "Notices by channel and outcome (per minute)",
        (
            (
                "sum by (channel, outcome) (rate(o2o_notices[$__rate_interval])) * 60",
                "{{channel}} {{outcome}}",
            ),
        ),
    ),
    Panel(
        "Stuck orders by kind (o2o stuck)",
        (("max by (kind) (o2o_stuck_orders)", "{{kind}}"),),
    ),
    Panel(
        "API requests by status (per second)",
        (rate("http_requests_total", "status", "{{status}}", 'job="o2o-api"'),),
    ),
    Panel(
        "API latency p95 by route",
        (
            quantile(
                0.95,
                "http_request_duration_seconds_bucket",
                "handler",
                "{{handler}}",
                'job="o2o-api"',
            ),
        ),
        unit="s",
    ),
]

TEMPORAL_WORKER = [
    Panel(
        "Workflow task schedule-to-start (p95, p99)",
        (
            quantile(
                0.95,
                "temporal_workflow_task_schedule_to_start_latency_bucket",
                "task_queue",
                "p95 {{task_queue}}",
            ),
            quantile(
                0.99,
                "temporal_workflow_task_schedule_to_start_latency_bucket",
                "task_queue",
                "p99 {{task_queue}}",
            ),
        ),
        unit="ms",
    ),
    Panel(
        "Activity schedule-to-start (p95, p99)",
        (
            quantile(
                0.95,
                "temporal_activity_schedule_to_start_latency_bucket",
                "task_queue",
                "p95 {{task_queue}}",
            ),
            quantile(
                0.99,
                "temporal_activity_schedule_to_start_latency_bucket",
                "task_queue",
                "p99 {{task_queue}}",
            ),
        ),
        unit="ms",
    ),
    Panel(
        "Task slots available",
        (
            (
                "sum by (instance, worker_type) (temporal_worker_task_slots_available)",
                "{{instance}} {{worker_type}}",
            ),
        ),
    ),
    Panel(
        "Task slots used",
        (
            (
                "sum by (instance, worker_type) (temporal_worker_task_slots_used)",
                "{{instance}} {{worker_type}}",
            ),
        ),
    ),
    Panel(
        "Pollers",
        (
            (
                "sum by (task_queue, poller_type) (temporal_num_pollers)",
                "{{task_queue}} {{poller_type}}",
            ),
        ),
    ),
    Panel(
        "Sticky cache: size and forced evictions",
        (
            ("sum by (instance) (temporal_sticky_cache_size)", "size {{instance}}"),
            rate(
                "temporal_sticky_cache_total_forced_eviction",
                "instance",
                "evictions/s {{instance}}",
            ),
        ),
    ),
    Panel(
        "Workflow task failures by reason",
        (
            rate(
                "temporal_workflow_task_execution_failed",
                "workflow_type, failure_reason",
                "{{workflow_type}} {{failure_reason}}",
            ),
        ),
    ),
    Panel(
        "Activity failures by type",
        (rate("temporal_activity_execution_failed", "activity_type", "{{activity_type}}"),),
    ),
    Panel(
        "Workflow task and activity execution (p95)",
        (
            quantile(
                0.95,
                "temporal_workflow_task_execution_latency_bucket",
                "workflow_type",
                "wft {{workflow_type}}",
            ),
            quantile(
                0.95,
                "temporal_activity_execution_latency_bucket",
                "activity_type",
                "{{activity_type}}",
            ),
        ),
        unit="ms",
    ),
    Panel(
        "RPC requests and failures",
        (
            rate("temporal_request", "operation", "{{operation}}"),
            rate("temporal_request_failure", "operation", "failed {{operation}}"),
        ),
    ),
]


def _panel(p: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": p.kind,
        "title": p.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            }
        },
        "targets": [
            {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
            for i, (expr, legend) in enumerate(p.queries)
        ],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    laid: list[dict[str, Any]] = []
    x = y = 0
    for n, p in enumerate(panels, start=1):
        if x + p.width > 24:
            x, y = 0, y + 8
        laid.append(_panel(p, n, x, y))
        x += p.width
    return {
        "uid": uid,
        "title": title,
        "tags": ["o2o-dispatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": laid,
        "templating": {"list": []},
        "annotations": {"list": []},
    }


DASHBOARDS = {
    "o2o.json": dashboard("o2o-dispatch", "o2o-dispatch: orders, notices, stuck", O2O),
    "temporal-worker.json": dashboard(
        "o2o-temporal-worker", "o2o-dispatch: Temporal worker (core SDK)", TEMPORAL_WORKER
    ),
}


def metrics_of(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, labels or strings)."""
    bare = re.sub(r'"[^"]*"', "", re.sub(r"by \([^)]*\)", "", expr))
    names = re.findall(r"(?<![$\w])([a-z_][a-z0-9_]*)(?=[{\[)])", bare)
    return {n for n in names if not n.startswith("__")}


def problems(name: str, board: dict[str, Any]) -> list[str]:
    """What is wrong with a dashboard: duplicate ids, a query on a metric nobody exports."""
    found: list[str] = []
    ids = [p["id"] for p in board["panels"]]
    if len(ids) != len(set(ids)):
        found.append(f"{name}: duplicate panel ids")
    for p in board["panels"]:
        for target in p["targets"]:
            for metric in sorted(metrics_of(target["expr"])):
                if not EXPORTED.match(metric):
                    found.append(f"{name}: panel {p['title']!r} reads {metric}: not exported")
    return found


def main(argv: list[str]) -> int:
    check = "--check" in argv
    failed: list[str] = []
    for name, board in DASHBOARDS.items():
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        path = OUT / name
        failed += problems(name, board)
        if check:
            if not path.exists() or path.read_text() != text:
                failed.append(f"{path} is out of date: run deploy/grafana/build_dashboards.py")
            json.loads(path.read_text()) if path.exists() else None
        else:
            path.write_text(text)
    for extra in sorted(OUT.glob("*.json")):  # a dropped-in dashboard must at least parse
        try:
            json.loads(extra.read_text())
        except json.JSONDecodeError as exc:
            failed.append(f"{extra}: not JSON: {exc}")
    for line in failed:
        print(line, file=sys.stderr)
    print(f"dashboards: {len(DASHBOARDS)} built, {len(failed)} problems")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

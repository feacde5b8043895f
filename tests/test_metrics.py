"""Metrics end to end: a real Prometheus (Debian's package) scrapes a worker whose runtime
serves the SDK's and o2o's metrics, and the HTTP API's /metrics, while an order is taken in,
accepted and completed; every series an operator's dashboard and alerts use is found."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from observability.domain import TIME_TO_ACCEPT
from observability.runtime import TIME_TO_ACCEPT_BUCKETS_MS
from starter import start_order
from tests.api_helpers import admin
from tests.conftest import Sinks, eventually, free_port
from tests.factories import make_store_world
from tests.test_devserver import dev_server  # noqa: F401 (fixture)
from tests.test_order_workflow import new_order, wait_for_round
from worker import build_worker
from workflows.contracts import StaffAction

pytestmark = pytest.mark.devserver
PROMETHEUS = "/usr/bin/prometheus"


@asynccontextmanager
async def prometheus(tmp_path: Path, targets: dict[str, str]) -> AsyncIterator[str]:
    """A real Prometheus scraping `targets` (job: host:port) every second; its base URL."""
    if shutil.which(PROMETHEUS) is None:
        pytest.fail(f"{PROMETHEUS} is missing: apt-get install prometheus (.ci/run does)")
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']"
        for job, target in targets.items()
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}\n")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)


async def query(base: str, promql: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/api/v1/query", params={"query": promql})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


async def scraped(base: str, promql: str) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]]:
        result = await query(base, promql)
        assert result, f"no series for {promql}"
        return result

    return await eventually(found, within=30)


@asynccontextmanager
async def serve_api(client: Client) -> AsyncIterator[int]:
    """The real app over HTTP (uvicorn in this process), with a stream route of its own."""
    app = create_app()
    app.state.temporal = client

    @app.get("/api/v1/test/events")  # stands for the console's live board stream
    async def events() -> dict[str, str]:
        return {"stream": "over"}

    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the web entry's catch-all

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> None:
        assert server.started, "uvicorn is starting"

    await eventually(started)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def test_prometheus_scrapes_the_worker_and_the_api(
    dev_server: WorkflowEnvironment,  # noqa: F811
    clean_db: str,
    sinks: Sinks,
    tmp_path: Path,
) -> None:
    worker_port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{worker_port}",
                histogram_bucket_overrides={TIME_TO_ACCEPT: TIME_TO_ACCEPT_BUCKETS_MS},
            )
        )
    )
    target = dev_server.client.service_client.config.target_host
    client = await Client.connect(target, runtime=runtime)
    world = await make_store_world(consultants=1)
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with (
        build_worker(client, task_queue=queue),
        serve_api(client) as api_port,
        prometheus(
            tmp_path, {"worker": f"127.0.0.1:{worker_port}", "api": f"127.0.0.1:{api_port}"}
        ) as base,
    ):
        order = new_order(world)
        handle = await start_order(order, client=client, task_queue=queue)
        first = await wait_for_round(order.order_id, 1)
        await handle.execute_update("accept", StaffAction(staff_id=first.staff_id))
        await handle.execute_update("complete", StaffAction(staff_id=first.staff_id))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
            health = await http.get("/api/v1/health", headers=admin())
            missing = await http.get(f"/api/v1/orders/NO-{order.order_id}", headers=admin())
            stream = await http.get("/api/v1/test/events")
        assert (health.status_code, missing.status_code, stream.status_code) == (200, 404, 200)

        store = str(world.store.id)
        events = await scraped(base, f'o2o_order_events{{store_id="{store}"}}')
        assert {e["metric"]["event"] for e in events} >= {
            "received",
            "assigned",
            "accepted",
            "completed",
        }
        accepted = await scraped(
            base, f'o2o_order_time_to_accept_count{{store_id="{store}",job="worker"}}'
        )
        assert accepted[0]["value"][1] == "1"
        notices = await scraped(base, 'o2o_notices{outcome="sent"}')
        assert {n["metric"]["channel"] for n in notices} == {"sms", "email"}
        # The SDK's runtime metrics the dashboards and the starter alerts read.
        for series in (
            "temporal_worker_task_slots_available",
            "temporal_workflow_task_schedule_to_start_latency_bucket",
            "temporal_num_pollers",
            "temporal_sticky_cache_size",
        ):
            await scraped(base, f'{series}{{job="worker"}}')

        requests = await scraped(base, 'http_requests_total{job="api"}')
        by_handler = {(r["metric"]["handler"], r["metric"]["status"]) for r in requests}
        assert ("/api/v1/health", "200") in by_handler
        assert ("/api/v1/orders/{order_id}", "404") in by_handler
        assert not [h for h, _ in by_handler if h.endswith("/events")], by_handler
        await scraped(base, 'http_request_duration_seconds_bucket{job="api"}')
        stuck = await scraped(base, 'o2o_stuck_orders{job="api"}')
        assert {s["metric"]["kind"] for s in stuck} == {
            "waiting_for_shift",
            "escalated_untouched",
            "notices_failed",
        }

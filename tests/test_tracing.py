"""Tracing is off by default and then costs nothing; on, the API and the worker (real
processes) send their spans by OTLP/HTTP to a collector — here a local HTTP server that
decodes the OTLP protobuf wire format, as a collector would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from temporalio.testing import WorkflowEnvironment

from settings import settings
from tests.conftest import eventually, free_port
from tests.factories import make_store_world
from tests.test_devserver import dev_server  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")


def test_off_by_default_nothing_of_the_sdk_is_loaded() -> None:
    probe = (
        "import asyncio, sys\n"
        "import api.app, worker, starter, cli.main\n"
        "from observability.tracing import client_interceptors\n"
        "assert client_interceptors() == []\n"
        f"print(sorted({{m for m in sys.modules if m.startswith({HEAVY!r})}}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "TRACING"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class Collector:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []  # (service.name, span name)

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope in resource_spans.scope_spans:
                self.spans += [(service, span.name) for span in scope.spans]
        return web.Response(status=200, content_type="application/x-protobuf")


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    sink = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", sink.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield sink, port
    await runner.cleanup()


async def test_on_the_api_and_the_worker_send_their_spans(
    dev_server: WorkflowEnvironment,  # noqa: F811
    clean_db: str,
    collector: tuple[Collector, int],
    tmp_path: Path,
) -> None:
    sink, port = collector
    world = await make_store_world(consultants=1)
    api_port = free_port()
    env = (
        os.environ
        | {
            "TRACING": "true",
            "OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within a fifth of a second
            "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": f"traced-{uuid.uuid4().hex[:8]}",
            "API_PORT": str(api_port),
            "WORKER_METRICS_PORT": "0",
            "STATE_DIR": str(tmp_path),
            "SMTP_PORT": str(free_port()),  # nothing listens: notices retry, not our concern here
        }
    )
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            part,
            cwd=ROOT,
            env=env,
            stdout=(tmp_path / f"{part}.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        for part in ("worker", "api")
    ]
    try:
        order_id = f"TR{uuid.uuid4().hex[:8]}"
        body = {
            "order_id": order_id,
            "type": "new",
            "store_id": world.store.id,
            "customer": {"name": "Li", "phone": "13800000000"},
        }
        headers = {"Authorization": f"Bearer {settings.ADMIN_TOKEN}"}

        async def submitted() -> httpx.Response:
            async with httpx.AsyncClient() as http:
                try:
                    response = await http.post(
                        f"http://127.0.0.1:{api_port}/api/v1/orders", json=body, headers=headers
                    )
                except httpx.TransportError as exc:
                    raise AssertionError(f"API not up yet: {exc}") from exc
            assert response.status_code == 202, response.text
            return response

        await eventually(submitted, within=60)

        async def traced() -> None:
            names = set(sink.spans)
            assert ("o2o-api", "POST /api/v1/orders") in names, sorted(names)[:20]
            assert ("o2o-api", "StartWorkflow:NewOrderWorkflow") in names
            assert ("o2o-dispatch", "RunWorkflow:NewOrderWorkflow") in names, sorted(names)
            assert ("o2o-dispatch", "RunActivity:route_order") in names
            sql = {name for service, name in names if name.split()[0] in ("SELECT", "INSERT")}
            assert sql, f"no SQLAlchemy span in {sorted(names)}"

        await eventually(traced, within=60)
    finally:
        for child in children:
            child.terminate()
            await asyncio.wait_for(child.wait(), timeout=30)

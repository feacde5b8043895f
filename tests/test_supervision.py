"""`o2o dev` keeps the stack up when one part dies: the worker or the API killed with SIGKILL
is started again (and says so) while Temporal, PostgreSQL and the other part keep running;
a part that keeps dying at once makes it give up instead of spinning."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from devstack.supervision import MAX_FAST_FAILURES, RestartPolicy
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_quick_deaths_back_off_then_give_up_and_a_long_run_starts_afresh() -> None:
    policy = RestartPolicy()
    quick = [policy.after_exit(ran_for=2) for _ in range(MAX_FAST_FAILURES)]
    assert [r.delay.total_seconds() for r in quick] == [1, 2, 4, 8, 16]
    assert [r.give_up for r in quick] == [False] * (MAX_FAST_FAILURES - 1) + [True]

    policy = RestartPolicy()
    policy.after_exit(ran_for=2)
    policy.after_exit(ran_for=2)
    after_a_day = policy.after_exit(ran_for=86_400)
    assert (after_a_day.delay.total_seconds(), after_a_day.give_up) == (1, False)
    assert policy.after_exit(ran_for=2).delay.total_seconds() == 1  # counting starts again


class Stack:
    """`o2o dev` as a child process, its console read line by line."""

    def __init__(self, process: asyncio.subprocess.Process, api_port: int) -> None:
        self.process = process
        self.api = f"http://127.0.0.1:{api_port}"
        self.lines: list[str] = []

    async def line_matching(self, pattern: str, *, within: float = 90) -> re.Match[str]:
        async def read() -> re.Match[str]:
            assert self.process.stdout is not None
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError("o2o dev ended:\n" + "\n".join(self.lines[-30:]))
                self.lines.append(raw.decode(errors="replace").rstrip())
                if found := re.search(pattern, self.lines[-1]):
                    return found

        return await asyncio.wait_for(read(), timeout=within)


def _fresh_database() -> str:
    """A database of its own: `o2o dev` loads the demo data into it."""
    base = make_url(os.environ["DATABASE_URL"])
    name = f"o2o_dev_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    api_port = free_port()
    env = os.environ | {
        "DATABASE_URL": _fresh_database(),
        "STATE_DIR": str(tmp_path / "state"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_UI_PORT": str(free_port()),
        "API_PORT": str(api_port),
        "SMTP_PORT": str(free_port()),
        "SMS_SINK_PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
        "COLUMNS": "300",
        "TERM": "dumb",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "dev",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    yield Stack(process, api_port)
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), timeout=60)


async def test_a_killed_worker_and_api_are_restarted_and_the_stack_stays_up(
    stack: Stack,
) -> None:
    worker = int((await stack.line_matching(r"started worker \(pid (\d+)\)"))[1])
    # The worker runs as its two halves (worker.py): the workflows, then the activities.
    await stack.line_matching(r"started activities worker \(pid (\d+)\)")
    api = int((await stack.line_matching(r"started HTTP API \(pid (\d+)\)"))[1])
    await stack.line_matching(r"o2o-dispatch is running")

    os.kill(worker, signal.SIGKILL)
    await stack.line_matching(r"worker exited with -9; restarting in 1 s")
    new_worker = int((await stack.line_matching(r"started worker \(pid (\d+)\)"))[1])
    assert new_worker != worker

    os.kill(api, signal.SIGKILL)
    await stack.line_matching(r"HTTP API exited with -9; restarting in 1 s")
    new_api = int((await stack.line_matching(r"started HTTP API \(pid (\d+)\)"))[1])
    assert new_api != api

    async def healthy() -> httpx.Response:
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    response = await http.get(f"{stack.api}/api/v1/health")
                    if response.status_code == 200:
                        return response
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)

    health = await asyncio.wait_for(healthy(), timeout=60)
    assert health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    os.kill(new_worker, 0)  # still running: no exception
    assert stack.process.returncode is None

    stack.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(stack.process.wait(), timeout=60) == 0
    output = "\n".join(stack.lines) + (await stack.process.stdout.read()).decode()  # type: ignore[union-attr]
    assert "stopping the stack" not in output

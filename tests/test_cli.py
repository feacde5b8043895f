"""The `o2o` command line, run as a user runs it (a real process on the test database):
module commands answer as the API does, in-process as head office or over HTTP with a
token's scope; bad input exits non-zero with the reason."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from models import AllocationRule, Customer, Role, Staff
from models.db import session
from tests.api_helpers import make_token
from tests.conftest import free_port
from tests.factories import make_store_world

ROOT = Path(__file__).resolve().parent.parent


def o2o(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=os.environ | {"COLUMNS": "200"} | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_module_commands_go_through_the_api_in_process(clean_db: str) -> None:
    world = await make_store_world(consultants=1)
    async with session() as db:
        db.add(Customer(name="韩梅梅", phone="+8613911110001", email="mei@o2o.test"))
        await db.commit()

    found, created, changed = await asyncio.gather(
        asyncio.to_thread(o2o, "customer", "find", "--phone", "139 1111 0001"),
        asyncio.to_thread(
            o2o,
            "staff",
            "add",
            "--store-id",
            str(world.store.id),
            "--name",
            "Zhou Min",
            "--phone",
            "13912345678",
        ),
        asyncio.to_thread(
            o2o,
            "rule",
            "set",
            "unassigned",
            '{"accept_timeout_seconds": 77, "reminder_before_seconds": 30}',
        ),
    )

    assert found.returncode == 0, found.stderr
    assert "韩梅梅" in found.stdout and "+8613911110001" in found.stdout
    assert created.returncode == 0, created.stderr
    assert '"name": "Zhou Min"' in created.stdout
    assert changed.returncode == 0, changed.stderr
    async with session() as db:
        rule = await db.get(AllocationRule, "unassigned")
        assert rule is not None and rule.accept_timeout_seconds == 77
        names = (await db.exec(select(Staff.name))).all()
    assert "Zhou Min" in names


async def test_bad_input_exits_non_zero_with_the_reason(clean_db: str) -> None:
    negative, not_an_object, unknown_store = await asyncio.gather(
        asyncio.to_thread(o2o, "rule", "set", "new", '{"accept_timeout_seconds": -1}'),
        asyncio.to_thread(o2o, "subsite", "create", "[1, 2]"),
        asyncio.to_thread(o2o, "roster", "on-duty", "999999", "--at", "not-a-time"),
    )

    assert negative.returncode == 2
    assert "accept_timeout_seconds" in negative.stdout
    assert not_an_object.returncode == 2
    assert "must be a JSON object" in not_an_object.stdout
    assert unknown_store.returncode == 2
    assert "at:" in unknown_store.stdout and "Traceback" not in unknown_store.stderr


@pytest.fixture
def running_api(clean_db: str, tmp_path: Path) -> Iterator[str]:
    """`o2o api` as its own process on a free port (Temporal not needed for these calls)."""
    port = free_port()
    env = {"API_PORT": str(port), "STATE_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "api"],
        cwd=ROOT,
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None:
                    raise AssertionError("o2o api exited") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_over_http_a_token_keeps_its_scope(running_api: str) -> None:
    mine, other = await make_store_world(consultants=1), await make_store_world(consultants=1)
    manager = await make_token(Role.STORE_MANAGER, staff_id=mine.manager.id, store_id=mine.store.id)
    env = {"O2O_API_URL": running_api, "O2O_TOKEN": manager}

    own, foreign = await asyncio.gather(
        asyncio.to_thread(o2o, "staff", "list", env=env),
        asyncio.to_thread(o2o, "staff", "pause", str(other.consultants[0].id), env=env),
    )

    assert own.returncode == 0, own.stdout + own.stderr
    assert str(mine.consultants[0].id) in own.stdout
    assert other.consultants[0].name not in own.stdout
    assert foreign.returncode == 1
    assert "403" in foreign.stdout and "outside your scope" in foreign.stdout

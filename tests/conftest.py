"""Test fixtures: a real PostgreSQL (pgserver, or TEST_DATABASE_URL) migrated once per run.

The database is chosen before any project module reads its settings, so everything under
test — activities, the API, the worker — talks to the same real server.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

_TMP = Path(tempfile.mkdtemp(prefix="o2o-test-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)  # runs after pgserver's own cleanup


def _test_database_url() -> str:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        import pgserver

        # A private server per run, deleted at exit: a shared one outlived runs, piled up
        # databases and, after an unclean stop, needed longer crash recovery than
        # pgserver's 10-second start allows (a red CI on a machine that had run tests).
        base = pgserver.get_server(_TMP / "pg", cleanup_mode="delete").get_uri()
    name = f"o2o_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=name).render_as_string(hide_password=False)


os.environ["DATABASE_URL"] = _test_database_url()
os.environ["STATE_DIR"] = str(_TMP / "state")
os.environ.setdefault("NOTICE_MAX_ATTEMPTS", "3")

from models.db import database_url, engine, migrate  # noqa: E402

migrate()

_TABLES = (
    "console_link_use, console_sign_in_code, audit_entry, "
    "notification, order_event, assignment, communication_record, points_entry, duty_slot, "
    "duty_pattern, leave, api_token, subsite_admin, dispatch_order, customer, staff, store, "
    "subsite_rule, subsite, allocation_rule"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: pytest-playwright's sync Playwright lives for the rest of the
    session and marks its event loop as running in this thread, so no asyncio test (or
    `asyncio.run`) can follow it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def db_url() -> str:
    return database_url()


@pytest.fixture
def clean_db(db_url: str) -> Iterator[str]:
    """An empty database (every table truncated) for one test."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    yield db_url


@pytest.fixture(scope="session", autouse=True)
async def _dispose_engine() -> AsyncIterator[None]:
    yield
    await engine().dispose()


# ------------------------------------------------------------------ Temporal, mail and SMS

import asyncio  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from devstack.binaries import wheel_binary  # noqa: E402
from workflows import search_attributes  # noqa: E402

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 15.0) -> T:
    """Retry `check` until it stops raising AssertionError (no fixed sleeps in tests)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh server per test: a workflow left running by one test (with no worker polling
    it any more) would hold back time skipping for the next."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server")
    )
    await search_attributes.register(env.client)
    yield env
    await env.shutdown()


@dataclass
class Sinks:
    """The running SMTP server and SMS endpoint, and what each has received so far."""

    state_dir: Path
    mail_server: Any
    sms_server: Any

    def mail(self) -> list[dict[str, Any]]:
        from notify.sinks import read_mail_index

        return read_mail_index(self.state_dir)

    def sms(self) -> list[dict[str, Any]]:
        from notify.sinks import read_sms_log

        return read_sms_log(self.state_dir)


@pytest.fixture
async def sinks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Sinks]:
    """A real SMTP server and the local SMS endpoint, with settings pointing at them."""
    from notify.sinks import MailSink, SmsSink
    from settings import SmsProviderKind, settings

    # Port 0: each sink binds a port the kernel hands it (a port picked free beforehand can
    # be taken by another process before the bind, which failed a CI run).
    mail = MailSink(tmp_path, host="127.0.0.1", port=0)
    sms = SmsSink(tmp_path, host="127.0.0.1", port=0)
    await mail.start()
    await sms.start()
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_PORT", mail.port)
    monkeypatch.setattr(settings, "SMS_PROVIDER", SmsProviderKind.SINK)
    monkeypatch.setattr(settings, "SMS_URL", f"http://127.0.0.1:{sms.port}/sms")
    yield Sinks(state_dir=tmp_path, mail_server=mail, sms_server=sms)
    await sms.stop()
    await mail.stop()


@dataclass
class Dispatch:
    env: WorkflowEnvironment
    client: Client
    task_queue: str
    sinks: Sinks


@pytest.fixture
async def dispatch(
    time_skipping_env: WorkflowEnvironment, clean_db: str, sinks: Sinks
) -> AsyncIterator[Dispatch]:
    """A worker on its own task queue against the time-skipping server, real DB and sinks."""
    from worker import build_worker

    queue = f"test-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_skipping_env.client, task_queue=queue):
        yield Dispatch(time_skipping_env, time_skipping_env.client, queue, sinks)


@asynccontextmanager
async def dispatch_with(
    dispatch: Dispatch, replacing: dict[Callable[..., Any], Callable[..., Any]]
) -> AsyncIterator[Dispatch]:
    """A second worker on its own task queue whose activities `replacing` swaps (a slow
    selection, held notices); the rest are the real ones."""
    from worker import ACTIVITIES, build_worker

    queue = f"{dispatch.task_queue}-{uuid.uuid4().hex[:4]}"
    activities = [replacing.get(a, a) for a in ACTIVITIES]
    async with build_worker(dispatch.client, task_queue=queue, activities=activities):
        yield Dispatch(dispatch.env, dispatch.client, queue, dispatch.sinks)


# ------------------------------------------------------------------ the HTTP API in-process


@pytest.fixture
async def api(dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The API wired to the test worker: orders POSTed here run on `dispatch`'s task queue.
    (Test files whose requests never reach Temporal define a plainer `api` of their own.)"""
    from settings import settings
    from tests.api_helpers import api_client

    monkeypatch.setattr(settings, "TEMPORAL_TASK_QUEUE", dispatch.task_queue)
    async with api_client(dispatch.client) as client:
        yield client


@pytest.fixture
async def offline_api(clean_db: str) -> AsyncIterator[Any]:
    """The API with a real database but no Temporal: for requests refused at the edge."""
    from tests.api_helpers import NoTemporal, api_client

    async with api_client(NoTemporal()) as client:
        yield client

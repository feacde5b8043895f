"""A whole running system for the browser tests: Temporal dev server, PostgreSQL, sinks,
worker and API processes (bench.stack.BenchStack, loaded with the demo data), kept on an
event loop of its own in a background thread so the sync Playwright tests can drive a
real browser against it while its SMS and mail sinks keep answering."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import psycopg
from psycopg.rows import dict_row

from bench.stack import ADMIN_TOKEN, BenchStack, free_port
from notify.sinks import read_sms_log

T = TypeVar("T")
LINK = re.compile(r"https?://\S+/o/\S+")


class RunningStack:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # CONSOLE_STACK_KEEP=1 keeps the state folder (the children's logs) for a post-mortem.
        self.stack = BenchStack.temporary(keep_state=bool(os.environ.get("CONSOLE_STACK_KEEP")))
        self.api2_url = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 240) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.run(self.stack.start())

    def start_second_api(self) -> str:
        """Another API process on the same database: live pages must work across both."""
        port = free_port()
        self.stack.extra_env["API_PORT"] = str(port)
        try:
            self.run(self.stack.start_child("api2", [sys.executable, "-m", "cli", "api"]))
        finally:
            del self.stack.extra_env["API_PORT"]
        self.api2_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(self.api2_url), within=60)
        return self.api2_url

    def stop(self) -> None:
        try:
            self.run(self.stack.stop(), timeout=120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    @property
    def url(self) -> str:
        return self.stack.api_url

    # ------------------------------------------------------------ the API, the DB, the sinks

    def api(self, method: str, path: str, json: Any = None, *, token: str = ADMIN_TOKEN) -> Any:
        r = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.stack.database_url, row_factory=dict_row, autocommit=True) as c:
            cursor = c.execute(query, args)
            return cursor.fetchall() if cursor.description else []

    def sms(self) -> list[dict[str, Any]]:
        return read_sms_log(self.stack.state_dir)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Callable[[], T], *, within: float = 30.0, every: float = 0.2) -> T:
    """`check()` until it returns something truthy (no fixed sleeps)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        time.sleep(every)

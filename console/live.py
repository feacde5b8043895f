"""Live updates across API processes: one LISTEN connection per process, fanned out.

A trigger on `dispatch_order` (migration `20261204_console_…`) sends `pg_notify` on every
insert or update of an order row, whoever wrote it. Each API process keeps one connection
listening and hands every notification to the open pages' queues; a page decides what
concerns it (its store, or its person) and asks for fresh HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from models.db import database_url

CHANNEL = "o2o_order_changed"
QUEUE_SIZE = 100  # a page this far behind is told to reload its board once instead
log = logging.getLogger(__name__)


def _plain_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class OrderFeed:
    """Notifications of changed orders for every subscriber of this process."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        if self._task is None or self._task.done():
            self._listening = asyncio.Event()
            self._task = asyncio.create_task(self._listen(), name="console-order-feed")
        with contextlib.suppress(TimeoutError):
            # A page that subscribes must not miss a change made right after: wait for LISTEN.
            await asyncio.wait_for(self._listening.wait(), timeout=5)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled page: it resyncs on its next event
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait({"resync": True})

    async def _listen(self) -> None:
        delay, again = 0.5, False
        while self._queues:
            try:
                async with await psycopg.AsyncConnection.connect(
                    _plain_url(database_url()), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if again:  # changes while we were away: every page looks again
                        self._publish({"resync": True})
                    delay, again = 0.5, True
                    async for note in conn.notifies():
                        try:
                            self._publish(json.loads(note.payload))
                        except ValueError:
                            log.warning("ignored a malformed %s payload", CHANNEL)
                        if not self._queues:
                            return
            except (psycopg.Error, OSError) as exc:
                log.warning("order feed lost its connection (%s); again in %.1f s", exc, delay)
                again = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)


feed = OrderFeed()

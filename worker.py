"""The worker: runs the order workflows and their activities from settings.

Tuned for a small machine (see README "Performance and reliability"); more workers on more
machines share the task queue — Temporal is the only scheduler.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.notices import send_notice
from activities.orders import ORDER_ACTIVITIES
from models.db import migrate
from settings import settings
from workflows.dispatch import ORDER_WORKFLOWS


def build_worker(
    client: Client, *, task_queue: str | None = None, max_cached_workflows: int = 1000
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.TEMPORAL_TASK_QUEUE,
        workflows=ORDER_WORKFLOWS,
        activities=[*ORDER_ACTIVITIES, send_notice],
        activity_executor=ThreadPoolExecutor(max_workers=8),
        max_concurrent_activities=100,
        max_cached_workflows=max_cached_workflows,
    )


async def main(client: Client | None = None, stop: asyncio.Event | None = None) -> None:
    from starter import connect

    migrate()
    client = client or await connect()
    async with build_worker(client):
        print(f"worker polling {settings.TEMPORAL_TASK_QUEUE!r} on {settings.TEMPORAL_ADDRESS}")
        await (stop or asyncio.Event()).wait()


if __name__ == "__main__":
    asyncio.run(main())

"""Workers for the benchmarks, built with exactly the order worker's settings.

    python -m bench.workers orders [--unsandboxed | --passthrough-all] [--set NAME=VALUE ...]
    python -m bench.workers noop --task-queue bench-noop [--set ...]

`worker.build_worker` decides the settings (executor, concurrency, cache, pollers); this
module captures the keyword arguments it passes to `Worker` and uses them again, so the
ceiling's worker follows any change there. `--set` and `--unsandboxed` try a tuning
without touching worker.py: the "after" figures of a suggested change.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any
from unittest import mock

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import worker as worker_module
from settings import settings


def worker_kwargs(client: Client, task_queue: str) -> dict[str, Any]:
    """The keyword arguments `build_worker` gives `Worker`, without building one."""
    captured: dict[str, Any] = {}

    def capture(*args: Any, **kwargs: Any) -> None:
        captured.update(kwargs)

    with mock.patch.object(worker_module, "Worker", capture):
        worker_module.build_worker(client, task_queue=task_queue)
    return captured


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def build(
    client: Client,
    kind: str,
    task_queue: str,
    *,
    unsandboxed: bool = False,
    passthrough_all: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Worker:
    kwargs = worker_kwargs(client, task_queue)
    if kind == "noop":
        from bench.noop import NoopWorkflow, noop_activity

        kwargs["workflows"] = [NoopWorkflow]
        kwargs["activities"] = [noop_activity]
    if unsandboxed:
        kwargs["workflow_runner"] = UnsandboxedWorkflowRunner()
    elif passthrough_all:  # still sandboxed (restrictions checked), modules not re-imported
        kwargs["workflow_runner"] = SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
        )
    kwargs |= overrides or {}
    return Worker(client, **kwargs)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("kind", choices=["orders", "noop"])
    parser.add_argument("--task-queue", default=settings.TEMPORAL_TASK_QUEUE)
    parser.add_argument("--unsandboxed", action="store_true")
    parser.add_argument("--passthrough-all", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name.strip()] = _value(value.strip())
    client = await Client.connect(settings.TEMPORAL_ADDRESS, namespace=settings.TEMPORAL_NAMESPACE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with build(
        client,
        args.kind,
        args.task_queue,
        unsandboxed=args.unsandboxed,
        passthrough_all=args.passthrough_all,
        overrides=overrides,
    ):
        print(
            f"{args.kind} worker polling {args.task_queue!r} on {settings.TEMPORAL_ADDRESS}"
            f" (unsandboxed={args.unsandboxed}, passthrough_all={args.passthrough_all},"
            f" overrides={overrides})",
            flush=True,
        )
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())

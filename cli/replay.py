"""Engineers' tools: replay orders' histories against the current code; re-drive an order.

o2o replay --order A1001                 one order (all of its runs' latest)
o2o replay --query 'OrderStatus="escalated"'   every order the visibility query finds
o2o redrive A1001                        move a stuck order on (see operations/redrive.py)

A problem (an unknown order, a bad query, Temporal out of reach) is one line on stderr and
exit code 2; a replay that finds non-determinism exits 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from operations.errors import OperationError
from operations.redrive import redrive
from starter import connect, workflow_id
from workflows.dispatch import ORDER_WORKFLOWS

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


async def _histories(
    client: Client, order: str | None, query: str | None, limit: int
) -> list[WorkflowHistory]:
    if order:
        try:
            return [await client.get_workflow_handle(workflow_id(order)).fetch_history()]
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise OperationError(f"no workflow for order {order!r}") from None
            raise
    histories: list[WorkflowHistory] = []
    try:
        async for execution in client.list_workflows(query, limit=limit):
            histories.append(
                await client.get_workflow_handle(
                    execution.id, run_id=execution.run_id
                ).fetch_history()
            )
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise OperationError(f"bad query {query!r}: {exc.message}") from None
        raise
    return histories


async def replay(order: str | None, query: str | None, limit: int) -> int:
    """Replay each history on the current workflow code; the number that failed."""
    client = await connect()
    histories = await _histories(client, order, query, limit)
    replayer = Replayer(workflows=ORDER_WORKFLOWS)
    failed = 0
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
    ) as progress:
        task = progress.add_task("replay", total=len(histories), current="")
        for history in histories:
            progress.update(task, current=history.workflow_id)
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                failed += 1
                progress.console.print(f"[red]{history.workflow_id}: {result.replay_failure}[/red]")
            progress.advance(task)
    console.print(f"{len(histories) - failed} replayed cleanly, {failed} failed")
    return failed


def run_operation(operation: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run an async operation; its problem is one line and exit 2, never a traceback."""
    try:
        return asyncio.run(operation())
    except OperationError as exc:
        fail(str(exc))
    except RPCError as exc:
        fail(f"Temporal refused: {exc.status.name if exc.status else ''} {exc.message}".strip())
    except RuntimeError as exc:  # the client's "Failed client connect: …"
        fail(f"{str(exc).splitlines()[0]} (TEMPORAL_ADDRESS?)")
    except SQLAlchemyError as exc:  # unreachable or not migrated (`o2o migrate`)
        cause = getattr(exc, "orig", None) or exc
        fail(f"database: {type(cause).__name__}: {str(cause).splitlines()[0]} (DATABASE_URL?)")


def fail(message: str) -> NoReturn:
    errors.print(f"[red]{message}[/red]", soft_wrap=True, highlight=False)
    finish(2)


def finish(code: int) -> NoReturn:
    """End a command that used a Temporal client: flush and leave without interpreter
    teardown, which the client's core threads can abort (see `starter.run_and_exit`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def replay_command(
    order: Annotated[str | None, typer.Option(help="an order id")] = None,
    query: Annotated[
        str | None, typer.Option(help="a visibility query, e.g. 'OrderStatus=\"escalated\"'")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 500,
) -> None:
    """Replay orders' histories against the current workflow code (non-determinism check)."""
    if (order is None) == (query is None):
        fail("give exactly one of --order or --query")
    finish(1 if run_operation(lambda: replay(order, query, limit)) else 0)


def redrive_command(
    order_id: str,
    reason: Annotated[str, typer.Option(help="recorded in the order's audit trail")] = "re-driven",
) -> None:
    """Move a stuck order on: a new selection if it runs, a reset if its run failed or its
    workflow task keeps failing, a fresh start if Temporal lost it; says which."""

    async def run() -> str:
        return (await redrive(await connect(), order_id, reason=reason)).message

    console.print(run_operation(run), soft_wrap=True, highlight=False)
    finish(0)

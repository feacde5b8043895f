"""Engineers' tools: replay orders' histories against the current code; re-drive an order.

o2o replay --order A1001                 one order (all of its runs' latest)
o2o replay --query 'OrderStatus="escalated"'   every order the visibility query finds
o2o redrive A1001                        ask the order for a new selection now
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from starter import connect, workflow_id
from workflows.contracts import ManagerAction, OrderView
from workflows.dispatch import ORDER_WORKFLOWS, OrderDispatch

console = Console()


async def _histories(
    client: Client, order: str | None, query: str | None, limit: int
) -> list[WorkflowHistory]:
    if order:
        return [await client.get_workflow_handle(workflow_id(order)).fetch_history()]
    histories: list[WorkflowHistory] = []
    async for execution in client.list_workflows(query, limit=limit):
        histories.append(
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        )
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


def replay_command(
    order: Annotated[str | None, typer.Option(help="an order id")] = None,
    query: Annotated[
        str | None, typer.Option(help="a visibility query, e.g. 'OrderStatus=\"escalated\"'")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 500,
) -> None:
    """Replay orders' histories against the current workflow code (non-determinism check)."""
    if (order is None) == (query is None):
        raise typer.BadParameter("give exactly one of --order or --query")
    raise typer.Exit(1 if asyncio.run(replay(order, query, limit)) else 0)


def redrive_command(
    order_id: str,
    reason: Annotated[str, typer.Option(help="recorded in the order's audit trail")] = "re-driven",
) -> None:
    """Re-drive a stuck order: take it back from its assignee and select again now."""

    async def run() -> OrderView:
        client = await connect()
        handle = client.get_workflow_handle_for(OrderDispatch.run, workflow_id(order_id))
        return await handle.execute_update(
            OrderDispatch.redispatch,
            ManagerAction(actor="engineer (o2o redrive)", reason=reason),
        )

    view = asyncio.run(run())
    console.print(
        f"order {order_id}: {view.status}, round {view.round}, with staff {view.assignee_id}"
    )

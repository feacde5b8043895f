"""`o2o upgrade-check`: would every open order replay on the code about to be deployed?

Run it with the new release's code against the cluster before switching the workers over
(or drain the open orders first). An order listed here would fail its next workflow task on
the new code with a non-determinism error: deploy a `workflow.patched` guard instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.worker import Replayer

from starter import connect
from workflows.dispatch import ORDER_WORKFLOWS

console = Console()
# Every run of an order workflow that is still open: its next task runs on the new code.
OPEN_ORDERS = 'ExecutionStatus="Running" AND OrderId IS NOT NULL'


@dataclass(frozen=True)
class Blocked:
    """An open order whose history the current code cannot replay, and why."""

    workflow_id: str
    run_id: str
    failure: str


async def upgrade_check(
    client: Client, *, workflows: Sequence[type] = ORDER_WORKFLOWS, limit: int = 100_000
) -> tuple[int, list[Blocked]]:
    """Replay the history of every open order; the number checked and those that failed."""
    replayer = Replayer(workflows=workflows, namespace=client.namespace)
    checked, blocked = 0, []
    async for execution in client.list_workflows(OPEN_ORDERS, limit=limit):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        result = await replayer.replay_workflow(
            await handle.fetch_history(), raise_on_replay_failure=False
        )
        checked += 1
        if result.replay_failure is not None:
            failure = str(result.replay_failure)
            blocked.append(Blocked(execution.id, execution.run_id or "", failure))
    return checked, blocked


def upgrade_check_command(
    limit: Annotated[int, typer.Option(min=1, help="check at most this many orders")] = 100_000,
) -> None:
    """Replay every open order on this code; exit 1 and list those that would not replay."""

    async def run() -> tuple[int, list[Blocked]]:
        return await upgrade_check(await connect(), limit=limit)

    checked, blocked = asyncio.run(run())
    if blocked:
        table = Table("order workflow", "run", "why it would not replay")
        for b in blocked:
            table.add_row(b.workflow_id, b.run_id, b.failure[:200])
        console.print(table)
    console.print(f"{checked} open orders checked, {len(blocked)} would not replay")
    raise typer.Exit(1 if blocked else 0)

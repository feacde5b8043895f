"""`o2o stuck` lists the orders that will not move on by themselves; `o2o reconcile` sets an
order's database row from its workflow's state (operations/stuck.py, operations/reconcile.py).
Like replay and redrive they talk to Temporal and the database directly: they are the
engineer's tools for when the API's view and Temporal's may disagree."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from cli.replay import console, errors, fail, finish, run_operation
from operations.reconcile import reconcile
from operations.stuck import (
    Action,
    StuckKind,
    StuckOrder,
    Thresholds,
    find_stuck,
    find_what_can_be_found,
)
from starter import connect


def _age(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"


def stuck_command(
    kind: Annotated[
        list[StuckKind] | None, typer.Option(help="only these kinds (repeat the option)")
    ] = None,
    waiting_minutes: Annotated[
        float | None, typer.Option(min=0, help="waiting for a shift longer than this")
    ] = None,
    escalated_minutes: Annotated[
        float | None, typer.Option(min=0, help="escalated and untouched longer than this")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Stuck orders with their age and the action that moves each on."""
    t = Thresholds()
    if waiting_minutes is not None:
        t = replace(t, waiting=timedelta(minutes=waiting_minutes))
    if escalated_minutes is not None:
        t = replace(t, escalated=timedelta(minutes=escalated_minutes))

    async def run() -> tuple[list[StuckOrder], str]:
        return await find_what_can_be_found(
            await connect(), thresholds=t, kinds=frozenset(kind) if kind else None
        )

    found, unchecked = run_operation(run)
    if unchecked:
        errors.print(f"[yellow]{unchecked}[/yellow]", soft_wrap=True, highlight=False)
    if as_json:
        print(json.dumps([asdict(s) for s in found], default=str, indent=2))
        finish(0)
    if not found:
        console.print("no stuck orders")
        finish(0)
    table = Table(title=f"{len(found)} stuck", title_justify="left")
    for column in ("order", "kind", "age", "action", "store"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for s in found:
        table.add_row(
            s.order_id, s.kind, _age(s.age_seconds), s.action, str(s.store_id or "—"), s.detail
        )
    console.print(table)
    finish(0)


def reconcile_command(
    order_id: Annotated[str | None, typer.Argument(help="one order")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="every out-of-step order `o2o stuck` would reconcile")
    ] = False,
) -> None:
    """Set an order's database row from its workflow's own state (the workflow wins)."""
    if (order_id is None) == (not every):
        fail("give an order id or --all")

    async def run() -> list[str]:
        client = await connect()
        if order_id is not None:
            return [(await reconcile(client, order_id)).message]
        out_of_step = await find_stuck(client, kinds=frozenset({StuckKind.OUT_OF_STEP}))
        return [
            (await reconcile(client, s.order_id)).message
            for s in out_of_step
            if s.action is Action.RECONCILE
        ] or ["no order to reconcile"]

    for line in run_operation(run):
        console.print(line, soft_wrap=True, highlight=False)
    finish(0)

"""`o2o`: one command line for the dev stack, the worker, the API and every module of the
product (the module commands go through the API: cli/through_api.py, cli/modules.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from cli import through_api
from cli.modules import GROUPS, order_app
from cli.operations import reconcile_command, stuck_command
from cli.replay import redrive_command, replay_command
from cli.upgrade import upgrade_check_command
from settings import WorkerRole

app = typer.Typer(
    help="o2o-dispatch: durable dispatch of online orders to offline stores.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for name, group in GROUPS.items():
    app.add_typer(group, name=name)
console = Console()


@app.callback()
def main(
    api_url: Annotated[
        str | None,
        typer.Option(
            envvar="O2O_API_URL",
            help="a running API (e.g. http://127.0.0.1:8000); default: the API in-process",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="O2O_TOKEN", help="bearer token for --api-url; default ADMIN_TOKEN"),
    ] = None,
) -> None:
    """o2o-dispatch: durable dispatch of online orders to offline stores."""
    through_api.target.url = api_url
    through_api.target.token = token


app.command("replay")(replay_command)
app.command("redrive")(redrive_command)
app.command("stuck")(stuck_command)
app.command("reconcile")(reconcile_command)
app.command("upgrade-check")(upgrade_check_command)


@app.command()
def dev() -> None:
    """Run the whole system on embedded defaults in the foreground (Ctrl-C stops it)."""
    from devstack.stack import run

    asyncio.run(run())


@app.command()
def worker(
    role: Annotated[
        WorkerRole | None,
        typer.Option(
            help="all: everything in this process; workflows / activities: one half each,"
            " for two processes on one task queue (notices then never queue workflow tasks)."
            " Default: WORKER_ROLE (all)"
        ),
    ] = None,
) -> None:
    """Run a worker: the order workflows and their activities."""
    import worker as worker_module
    from models.db import SchemaBehind

    try:
        asyncio.run(worker_module.main(role=role))
    except SchemaBehind as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command()
def api() -> None:
    """Serve the HTTP API (API_HOST:API_PORT)."""
    from api.app import serve

    serve()


@app.command()
def migrate() -> None:
    """Apply the database migrations (idempotent)."""
    from models.db import migrate as apply

    apply()
    console.print("[green]database is at the latest migration[/green]")


@app.command("demo-data")
def demo_data() -> None:
    """Load the demo sub-sites, stores, staff, rosters and customers (once), and in
    development the fixed demo tokens (see devstack/demo.py)."""
    from devstack.demo import ensure_demo_tokens, load_demo_data
    from models.db import require_current_schema

    require_current_schema()

    async def load() -> tuple[bool, list[Any]]:
        return await load_demo_data(), await ensure_demo_tokens()

    loaded, tokens = asyncio.run(load())
    console.print("demo data loaded" if loaded else "demo data already present: kept as it is")
    for demo, row in tokens:
        console.print(f"demo {demo.role.value} token: {demo.token} ({row.name})")


@order_app.command("start")
def order_start(
    document: Annotated[
        str,
        typer.Argument(
            help='Order JSON, e.g. \'{"order_id": "A1", '
            '"type": "new", "customer": {"name": "Li", "phone": "13911110001"}}\''
        ),
    ],
) -> None:
    """Start an order's workflow (the same order twice gives the same workflow)."""
    from pydantic import ValidationError
    from temporalio.client import WorkflowHandle

    from api.schemas import OrderIn
    from models.db import session
    from services.errors import DomainError
    from services.orders import submit_order
    from starter import connect

    try:
        body = OrderIn.model_validate_json(document)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "order"
            console.print(f"[red]{where}: {error['msg']}[/red]")
        raise typer.Exit(2) from None
    order = body.to_request()

    async def submit() -> WorkflowHandle[Any, Any]:  # the same intake checks as POST /api/v1/orders
        async with session() as db:
            return await submit_order(db=db, client=await connect(), order=order)

    try:
        handle = asyncio.run(submit())
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    console.print(f"workflow [bold]{handle.id}[/bold] (run {handle.result_run_id})")


@order_app.command("state")
def order_state(order_id: str) -> None:
    """One order's live state, queried from its workflow."""
    from starter import connect, workflow_id
    from workflows.contracts import OrderView

    async def query() -> OrderView:
        client = await connect()
        view: OrderView = await client.get_workflow_handle(workflow_id(order_id)).query(
            "state", result_type=OrderView
        )
        return view

    console.print_json(json.dumps(asyncio.run(query()).__dict__, default=str))


if __name__ == "__main__":
    app()

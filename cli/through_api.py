"""How the command line reaches the product: every module command is one request to the same
application the HTTP API serves, so `o2o` validates, authorises and answers exactly as the
API does (no second copy of the rules to drift).

By default the application runs in-process on this machine's settings, as head office:
whoever runs `o2o` here holds the database and `ADMIN_TOKEN` already. With `--api-url`
(or `O2O_API_URL`) the request goes over HTTP to a running API with `--token` (`O2O_TOKEN`),
and then carries that token's role and scope.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

console = Console()
V1 = "/api/v1"


@dataclass
class Target:
    url: str | None = None  # None: the application in-process
    token: str | None = None  # None: ADMIN_TOKEN from the settings


target = Target()


def parse_json(document: str, what: str) -> dict[str, Any]:
    """A JSON object from the command line, or exit 2 naming what is wrong with it."""
    try:
        value = json.loads(document)
    except json.JSONDecodeError as exc:
        console.print(f"[red]{what} is not JSON: {exc.msg} at character {exc.pos}[/red]")
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        console.print(f"[red]{what} must be a JSON object {{…}}, not {type(value).__name__}[/red]")
        raise typer.Exit(2)
    return value


def call(method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
    """One request; a refusal prints the API's reason and exits 1 (2 for bad input)."""
    query = {k: v for k, v in (params or {}).items() if v is not None}
    response = asyncio.run(_send(method, f"{V1}{path}", query, body))
    if response.status_code >= 400:
        _refused(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


async def _send(method: str, path: str, params: dict[str, Any], body: Any) -> httpx.Response:
    from settings import settings

    headers = {"Authorization": f"Bearer {target.token or settings.ADMIN_TOKEN}"}
    request = {"params": params, "headers": headers, "json": body}
    if target.url:
        try:
            async with httpx.AsyncClient(base_url=target.url, timeout=60) as client:
                return await client.request(method, path, **request)
        except httpx.HTTPError as exc:
            console.print(f"[red]the API at {target.url} did not answer: {exc}[/red]")
            raise typer.Exit(1) from None

    from api.app import create_app
    from models.db import engine, require_current_schema

    require_current_schema()  # what the API's own start does
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://o2o-cli") as client:
            return await client.request(method, path, **request)
    finally:
        await engine().dispose()  # leave no pooled connection behind this process


def _refused(response: httpx.Response) -> None:
    try:
        detail: Any = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    if isinstance(detail, list):  # a validation error: one line per field
        for error in detail:
            where = ".".join(str(p) for p in error.get("loc", []) if p != "body") or "input"
            console.print(f"[red]{where}: {error.get('msg')}[/red]")
    else:
        console.print(f"[red]{response.status_code}: {detail}[/red]")
    raise typer.Exit(2 if response.status_code == 422 else 1)


def show(data: Any, columns: list[str] | None = None, *, items: str | None = None) -> None:
    """A list (or `data[items]`) as a table of `columns`; anything else as JSON."""
    rows = data.get(items) if items and isinstance(data, dict) else data
    if columns and isinstance(rows, list):
        table = Table(*columns)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
        if isinstance(data, dict) and "total" in data:
            console.print(f"[dim]{len(rows)} of {data['total']}[/dim]")
        return
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)

"""`o2o dev`: the whole system on one machine from wheels, in the foreground.

Temporal dev server (file-persisted, with its UI), PostgreSQL from pgserver (unless
DATABASE_URL is set), the SMTP and SMS sinks, the worker and the HTTP API as child
processes. A worker or API that dies is started again with backoff (devstack/supervision.py);
Ctrl-C stops every child; a second start reuses the state folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from devstack.binaries import wheel_binary
from devstack.supervision import FAST_FAILURE, RestartPolicy
from settings import settings
from workflows.search_attributes import dev_server_flags

if TYPE_CHECKING:  # the demo module needs the database settings the stack sets first
    from console.demo import DemoPerson
    from devstack.demo import DemoToken
    from models import ApiToken

console = Console()

# Without these the file-backed dev server is fsync-bound (bench: 8.9 -> 40 no-op
# workflows/s); WAL survives a killed process, which is what a dev server needs.
SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", "synchronous=NORMAL")


class StackError(SystemExit):
    """The stack cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Port:
    service: str
    host: str
    port: int
    setting: str

    def check_free(self) -> None:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, self.port))
            except OSError:
                raise StackError(
                    f"Port {self.port} on {self.host} ({self.service}) is already taken. "
                    f"Stop whatever uses it (`ss -ltnp 'sport = :{self.port}'`) or set "
                    f"{self.setting} to another port."
                ) from None


def _temporal_host_port() -> tuple[str, int]:
    host, _, port = settings.TEMPORAL_ADDRESS.rpartition(":")
    return host, int(port)


def ports() -> list[Port]:
    t_host, t_port = _temporal_host_port()
    return [
        Port("Temporal gRPC", t_host, t_port, "TEMPORAL_ADDRESS"),
        Port("Temporal web UI", t_host, settings.TEMPORAL_UI_PORT, "TEMPORAL_UI_PORT"),
        Port("HTTP API", settings.API_HOST, settings.API_PORT, "API_PORT"),
        Port("SMTP sink", settings.SMTP_HOST, settings.SMTP_PORT, "SMTP_PORT"),
        Port("SMS sink", "127.0.0.1", settings.SMS_SINK_PORT, "SMS_SINK_PORT"),
    ]


async def _wait_for_temporal(process: asyncio.subprocess.Process, *, within: float = 60) -> None:
    from temporalio.client import Client

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if process.returncode is not None:
            raise StackError("the Temporal dev server exited; see .state/temporal.log")
        try:
            await Client.connect(settings.TEMPORAL_ADDRESS, namespace=settings.TEMPORAL_NAMESPACE)
            return
        except Exception:
            if loop.time() > deadline:
                raise StackError(
                    f"Temporal did not answer on {settings.TEMPORAL_ADDRESS} in {within:.0f} s"
                ) from None
            await asyncio.sleep(0.3)


async def _spawn(
    name: str, args: list[str], env: dict[str, str], log: Path
) -> asyncio.subprocess.Process:
    out = log.open("ab")
    process = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdout=out,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us alone; we stop the children in order
    )
    console.print(
        f"[dim]started {name} (pid {process.pid}): {' '.join(args[:4])}… (log: {log})[/dim]"
    )
    return process


@dataclass
class Supervised:
    """A child the stack restarts when it dies (see devstack/supervision.py's policy)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    async def start(self) -> None:
        self.process = await _spawn(self.name, self.args, self.env, self.log)

    async def keep_running(self, stop: asyncio.Event) -> None:
        """Restart the child each time it exits, until `stop` or the policy gives up."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            assert self.process is not None
            started = loop.time()
            code = await self.process.wait()
            if stop.is_set():
                return
            decision = self.policy.after_exit(ran_for=loop.time() - started)
            if decision.give_up:
                console.print(
                    f"[red]{self.name} exited with {code} {decision.fast_failures} times in a "
                    f"row within {FAST_FAILURE.seconds} s of starting; see {self.log} — "
                    "stopping the stack[/red]"
                )
                stop.set()
                return
            console.print(
                f"[yellow]{self.name} exited with {code}; restarting in "
                f"{decision.delay.total_seconds():g} s (see {self.log})[/yellow]"
            )
            try:
                await asyncio.wait_for(stop.wait(), timeout=decision.delay.total_seconds())
                return  # Ctrl-C during the backoff
            except TimeoutError:
                pass
            await self.start()


async def _stop(name: str, process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=15)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    console.print(f"[dim]stopped {name}[/dim]")


def _start_postgres(state: Path) -> tuple[str, object | None]:
    if settings.DATABASE_URL:
        return settings.DATABASE_URL, None
    import pgserver

    server = pgserver.get_server(state / "postgres", cleanup_mode=None)
    return server.get_uri(), server


def _stop_postgres(server: object | None) -> None:
    if server is None:
        return
    from pgserver import _commands  # pg_ctl is generated there at import time

    data = server.pgdata  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        _commands.pg_ctl(["-w", "stop"], pgdata=data, user=server.system_user)  # type: ignore[attr-defined]
    console.print("[dim]stopped PostgreSQL[/dim]")


def _print_ready(
    database_url: str,
    state: Path,
    tokens: Sequence[tuple[DemoToken, ApiToken]] = (),
    people: Sequence[DemoPerson] = (),
) -> None:
    api = f"http://{settings.API_HOST}:{settings.API_PORT}"
    t_host, _ = _temporal_host_port()
    table = Table(title="o2o-dispatch is running", show_header=False, title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # URLs and paths are copied from here: never cut them
    table.add_row("HTTP API", f"{api}/api/v1/health   docs: {api}/docs")
    table.add_row("Console", f"{api}/console   (sign in with a phone number below)")
    for person in people:
        table.add_row(
            f"Demo {person.role}",
            f"{person.phone}  {person.name}: the code arrives on the SMS sink page "
            f"http://127.0.0.1:{settings.SMS_SINK_PORT}/",
        )
    if settings.WORKER_METRICS_PORT:
        table.add_row(
            "Worker metrics",
            f"http://{settings.WORKER_METRICS_HOST}:{settings.WORKER_METRICS_PORT}/metrics"
            f" (workflows), :{activities_metrics_port()}/metrics (activities, notices)",
        )
    table.add_row("Temporal UI", f"http://{t_host}:{settings.TEMPORAL_UI_PORT}")
    table.add_row("Temporal gRPC", settings.TEMPORAL_ADDRESS)
    table.add_row(
        "Mail and SMS sinks",
        f"http://127.0.0.1:{settings.SMS_SINK_PORT}/  (files: {state / 'mail'}, {state / 'sms'})",
    )
    table.add_row("PostgreSQL", database_url)
    table.add_row("Admin token", f"{settings.ADMIN_TOKEN}   (Authorization: Bearer …)")
    for demo, row in tokens:
        who = f"{row.name}, staff {row.staff_id}" if row.staff_id else row.name
        revoked = "  [red](revoked)[/red]" if row.revoked_at else ""
        table.add_row(
            f"Demo {demo.role.value} token", f"{demo.token}   ({who}: {demo.what}){revoked}"
        )
    console.print(table)
    console.print("Press Ctrl-C to stop everything.")


def activities_metrics_port() -> int:
    """The activities worker's metrics port in `o2o dev`: next to the workflows worker's."""
    port = settings.WORKER_METRICS_PORT
    return port + 1 if 0 < port < 65535 else 0  # none beside the last port: metrics off


def _processes() -> list[tuple[str, list[str], dict[str, str], str]]:
    """The supervised processes: name, `o2o` arguments, environment, log file. The worker
    runs as its two halves (worker.py): the workflows, and the activities beside them."""
    activities = {"WORKER_METRICS_PORT": str(activities_metrics_port())}
    return [
        ("worker", ["worker", "--role", "workflows"], {}, "worker.log"),
        ("activities worker", ["worker", "--role", "activities"], activities, "activities.log"),
        ("HTTP API", ["api"], {}, "api.log"),
    ]


async def run() -> None:
    """Start the stack and keep it in the foreground until Ctrl-C or a child exits."""
    state = settings.STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    for port in ports():
        port.check_free()

    from models.db import migrate
    from notify.sinks import MailSink, SmsSink

    database_url, pg = _start_postgres(state)
    env = os.environ | {
        "DATABASE_URL": database_url,
        "STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
    }
    children: list[tuple[str, asyncio.subprocess.Process]] = []
    parts: list[Supervised] = []  # the worker and the API, restarted when they die
    mail: MailSink | None = None
    sms: SmsSink | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        t_host, t_port = _temporal_host_port()
        temporal = await _spawn(
            "Temporal dev server",
            [
                wheel_binary("temporal"),
                "server",
                "start-dev",
                "--db-filename",
                str(state / "temporal.db"),
                "--ip",
                t_host,
                "--port",
                str(t_port),
                "--ui-port",
                str(settings.TEMPORAL_UI_PORT),
                "--namespace",
                settings.TEMPORAL_NAMESPACE,
                "--log-level",
                "warn",
                *SQLITE_PRAGMAS,
                *dev_server_flags(),
            ],
            env,
            state / "temporal.log",
        )
        children.append(("Temporal dev server", temporal))
        await _wait_for_temporal(temporal)

        os.environ["DATABASE_URL"] = database_url
        await asyncio.to_thread(migrate, database_url)
        from devstack.demo import load_demo_data

        loaded = await load_demo_data()
        console.print("[green]demo data loaded[/green]" if loaded else "[dim]demo data kept[/dim]")
        from devstack.demo import ensure_demo_tokens

        tokens = await ensure_demo_tokens()
        from console.demo import demo_people

        people = await demo_people()

        mail = MailSink(state, host=settings.SMTP_HOST, port=settings.SMTP_PORT)
        sms = SmsSink(state, host="127.0.0.1", port=settings.SMS_SINK_PORT)
        await mail.start()
        await sms.start()

        cli = [sys.executable, "-m", "cli"]
        parts += [
            Supervised(name, [*cli, *command], env | extra, state / log)
            for name, command, extra, log in _processes()
        ]
        for part in parts:
            await part.start()
        _print_ready(database_url, state, tokens, people)

        # The worker and the API are restarted when they die; Temporal and PostgreSQL hold
        # the state, so their exit (or a part that keeps failing at once) stops the stack.
        watched = [asyncio.create_task(p.keep_running(stop)) for p in parts]
        stopper = asyncio.create_task(stop.wait())
        temporal_exit = asyncio.create_task(temporal.wait())
        done, _ = await asyncio.wait(
            [stopper, temporal_exit, *watched], return_when=asyncio.FIRST_COMPLETED
        )
        if temporal_exit in done:
            console.print(
                f"[red]the Temporal dev server exited with {temporal.returncode}; "
                f"see {state}/temporal.log — stopping the stack[/red]"
            )
        stop.set()
        for task in (*watched, stopper, temporal_exit):
            task.cancel()
    finally:
        children += [(p.name, p.process) for p in parts if p.process is not None]
        for name, process in reversed(children):
            await _stop(name, process)
        if sms is not None:
            await sms.stop()
        if mail is not None:
            await mail.stop()
        _stop_postgres(pg)

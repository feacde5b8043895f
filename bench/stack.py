"""An embedded stack the benchmarks own: every piece started, stopped and broken on purpose.

Same pieces as `o2o dev` (devstack/stack.py) — the Temporal dev server with file
persistence, PostgreSQL from pgserver, the SMTP and SMS sinks, `python -m cli worker` and
`python -m cli api` — but in a temporary state folder, on free loopback ports, and with a
handle on each so a drill can SIGKILL the worker, restart Temporal, stop PostgreSQL or take
the SMTP sink down while orders flow. `o2o dev` itself stops everything when one child
exits, which is right for a developer and wrong for a drill.

Everything is loopback only. `BenchStack.stop()` ends exactly the processes it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.binaries import wheel_binary
from devstack.stack import SQLITE_PRAGMAS
from workflows.search_attributes import dev_server_flags

ADMIN_TOKEN = "o2o-dev-admin-token"
LOOPBACK = "127.0.0.1"
ACTIVITY_WORKER = "activity-worker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class Endpoints:
    """Where a stack answers: the embedded one below, or one given with `--target`."""

    api_url: str
    temporal_address: str
    database_url: str
    state_dir: Path  # where the sinks keep what they received
    task_queue: str = "o2o-dispatch"
    namespace: str = "default"
    admin_token: str = ADMIN_TOKEN


@dataclass
class Child:
    name: str
    args: list[str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        p = self.process
        return p.pid if p is not None and p.returncode is None else None


@dataclass
class BenchStack:
    """Temporal, PostgreSQL, sinks, worker and API in a temporary folder on free ports."""

    state_dir: Path
    keep_state: bool = False
    worker_args: list[str] | None = None  # default: [python, -m, cli, worker]
    # As `o2o dev` runs it: a workflows worker and an activities worker (worker.py); False:
    # one worker process for everything (the comparison), as does any `worker_args` variant.
    split_worker: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    temporal_args: list[str] = field(default_factory=list)  # e.g. --sqlite-pragma …
    temporal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    sms_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    activity_metrics_port: int = field(default_factory=free_port)
    database_url: str = ""
    _pg: Any = None
    _pg_socket_dir: str = ""
    _children: dict[str, Child] = field(default_factory=dict)
    _mail: Any = None
    _sms: Any = None

    @classmethod
    def temporary(cls, **kwargs: Any) -> BenchStack:
        state = Path(tempfile.mkdtemp(prefix="o2o-bench-"))
        state.chmod(0o755)  # pgserver runs PostgreSQL as its own user when we are root
        return cls(state_dir=state, **kwargs)

    # ------------------------------------------------------------ addresses

    @property
    def temporal_address(self) -> str:
        return f"{LOOPBACK}:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def endpoints(self) -> Endpoints:
        return Endpoints(
            api_url=self.api_url,
            temporal_address=self.temporal_address,
            database_url=self.database_url,
            state_dir=self.state_dir,
        )

    def env(self) -> dict[str, str]:
        """The children's environment: every address points into this stack."""
        return (
            os.environ
            | {
                "ENVIRONMENT": "development",
                "STATE_DIR": str(self.state_dir),
                "DATABASE_URL": self.database_url,
                "TEMPORAL_ADDRESS": self.temporal_address,
                "TEMPORAL_NAMESPACE": "default",
                "TEMPORAL_TASK_QUEUE": "o2o-dispatch",
                "TEMPORAL_UI_PORT": str(free_port()),
                "API_HOST": LOOPBACK,
                "API_PORT": str(self.api_port),
                "PUBLIC_BASE_URL": self.api_url,
                "SMTP_HOST": LOOPBACK,
                "SMTP_PORT": str(self.smtp_port),
                "SMTP_SECURITY": "none",
                "SMTP_USER": "",
                "SMS_PROVIDER": "sink",
                "SMS_URL": f"http://{LOOPBACK}:{self.sms_port}/sms",
                "SMS_SINK_PORT": str(self.sms_port),
                "ADMIN_TOKEN": ADMIN_TOKEN,
                "WORKER_METRICS_PORT": str(self.worker_metrics_port),
                "PYTHONUNBUFFERED": "1",
            }
            | self.extra_env
        )

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role, for the resource sampler (PostgreSQL: postmaster only)."""
        out: dict[str, list[int]] = {}
        for name, child in self._children.items():
            if child.pid is not None:
                out[name] = [child.pid]
        pg = self.postgres_pid()
        if pg is not None:
            out["postgres"] = [pg]
        return out

    def postgres_pid(self) -> int | None:
        pidfile = self.state_dir / "postgres" / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # ------------------------------------------------------------ start and stop

    async def start(self, *, with_worker: bool = True) -> None:
        await asyncio.to_thread(self._start_postgres)
        await self.start_temporal()
        await self._prepare_database()
        await self.start_sinks()
        if with_worker:
            await self.start_worker()
        await self.start_child("api", [sys.executable, "-m", "cli", "api"])
        await self.wait_for_api()

    async def stop(self) -> None:
        for name in reversed(list(self._children)):
            await self.stop_child(name)
        await self.stop_sinks()
        await asyncio.to_thread(self.stop_postgres)
        if not self.keep_state:
            await asyncio.to_thread(shutil.rmtree, self.state_dir, True)

    async def start_child(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> Child:
        log = self.state_dir / f"{name}.log"
        child = self._children.get(name) or Child(name, args, log)
        child.args = args
        out = log.open("ab")
        try:
            child.process = await asyncio.create_subprocess_exec(
                *args,
                env=self.env() | (env or {}),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C is ours; we stop the children ourselves
            )
        finally:
            out.close()
        self._children[name] = child
        return child

    async def stop_child(self, name: str, *, sig: int = signal.SIGTERM, within: float = 20) -> None:
        child = self._children.get(name)
        if child is None or child.process is None or child.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(sig)
        try:
            await asyncio.wait_for(child.process.wait(), timeout=within)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()

    def child(self, name: str) -> Child | None:
        return self._children.get(name)

    # ------------------------------------------------------------ Temporal

    def _temporal_args(self) -> list[str]:
        return [
            wheel_binary("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            "--ip",
            LOOPBACK,
            "--port",
            str(self.temporal_port),
            "--headless",
            "--namespace",
            "default",
            "--log-level",
            "warn",
            *SQLITE_PRAGMAS,  # as `o2o dev` runs it
            *dev_server_flags(),
            *self.temporal_args,
        ]

    async def start_temporal(self, *, within: float = 60) -> None:
        child = await self.start_child("temporal", self._temporal_args())
        from temporalio.client import Client

        deadline = time.monotonic() + within
        while True:
            assert child.process is not None
            if child.process.returncode is not None:
                raise RuntimeError(f"the Temporal dev server exited; see {child.log}")
            try:
                await Client.connect(self.temporal_address)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Temporal did not answer in {within:.0f} s") from None
                await asyncio.sleep(0.3)

    async def restart_temporal(self, *, down_for: float = 0.0) -> None:
        await self.stop_child("temporal")
        if down_for:
            await asyncio.sleep(down_for)
        await self.start_temporal()

    # ------------------------------------------------------------ PostgreSQL

    def _start_postgres(self) -> None:
        import pgserver

        data = self.state_dir / "postgres"
        data.mkdir(parents=True, exist_ok=True)
        self._pg = pgserver.get_server(data, cleanup_mode=None)
        self.database_url = self._pg.get_uri()
        self._pg_socket_dir = str(self._pg.get_postmaster_info().socket_dir)

    def stop_postgres(self) -> None:
        """`pg_ctl stop -m fast` on the data folder: connections drop, the server is gone."""
        if self._pg is None:
            return
        from pgserver import _commands

        with contextlib.suppress(Exception):
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self._pg.pgdata, user=self._pg.system_user
            )

    def start_postgres_again(self) -> None:
        """`pg_ctl start` with the options pgserver used (same socket folder, no TCP)."""
        from pgserver import _commands

        assert self._pg is not None
        socket_dir = self._pg_socket_dir
        _commands.pg_ctl(  # type: ignore[attr-defined]
            [
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {socket_dir}",
                "-l",
                str(self._pg.log),
                "start",
            ],
            pgdata=self._pg.pgdata,
            user=self._pg.system_user,
            timeout=60,
        )

    async def _prepare_database(self) -> None:
        """Migrations and the demo data, by the project's own commands, in this stack's env."""
        for command in ("migrate", "demo-data"):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cli",
                command,
                env=self.env(),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
            if process.returncode != 0:
                raise RuntimeError(f"o2o {command} failed:\n{out.decode(errors='replace')}")

    # ------------------------------------------------------------ sinks

    async def start_sinks(self) -> None:
        from notify.sinks import MailSink, SmsSink

        self._mail = MailSink(self.state_dir, host=LOOPBACK, port=self.smtp_port)
        self._sms = SmsSink(self.state_dir, host=LOOPBACK, port=self.sms_port)
        await self._mail.start()
        await self._sms.start()

    async def stop_sinks(self) -> None:
        if self._sms is not None:
            await self._sms.stop()
        if self._mail is not None:
            await self._mail.stop()

    async def stop_mail(self) -> None:
        if self._mail is not None:
            await self._mail.stop()

    async def start_mail(self) -> None:
        assert self._mail is not None
        await self._mail.start()

    # ------------------------------------------------------------ worker and API

    def worker_names(self) -> list[str]:
        return ["worker", ACTIVITY_WORKER] if self.split else ["worker"]

    @property
    def split(self) -> bool:
        return self.split_worker and not self.worker_args

    async def start_worker(self, name: str | None = None) -> None:
        """Start the worker processes (or the one named): "worker" runs the workflows, and
        with `split` ACTIVITY_WORKER the activities, with metrics on a port of its own."""
        cli = [sys.executable, "-m", "cli", "worker"]
        for each in [name] if name else self.worker_names():
            if each == ACTIVITY_WORKER:
                env = {"WORKER_METRICS_PORT": str(self.activity_metrics_port)}
                child = await self.start_child(each, [*cli, "--role", "activities"], env)
            else:
                args = self.worker_args or [*cli, "--role", "workflows" if self.split else "all"]
                child = await self.start_child(each, args)
            await self.wait_for_log(child, "polling", within=90)

    async def kill_worker(self, name: str = "worker") -> None:
        """SIGKILL: no shutdown, no goodbye — in-flight tasks are lost to the server's timeouts."""
        await self.stop_child(name, sig=signal.SIGKILL, within=10)

    async def wait_for_log(self, child: Child, needle: str, *, within: float) -> None:
        deadline = time.monotonic() + within
        start = child.log.stat().st_size if child.log.exists() else 0
        while time.monotonic() < deadline:
            assert child.process is not None
            if child.process.returncode is not None:
                raise RuntimeError(f"{child.name} exited; see {child.log}")
            with contextlib.suppress(OSError), child.log.open("rb") as f:
                f.seek(start)
                if needle.encode() in f.read():
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(
            f"{child.name} did not say {needle!r} in {within:.0f} s; see {child.log}"
        )

    async def wait_for_api(self, *, within: float = 90) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                api = self._children.get("api")
                if api is not None and api.process is not None and api.process.returncode:
                    raise RuntimeError(f"the API exited; see {api.log}")
                try:
                    r = await http.get(f"{self.api_url}/api/v1/health")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not become healthy in {within:.0f} s")
                await asyncio.sleep(0.3)

"""Load generator: N orders at a target rate, simulated staff, figures from the database.

    python -m bench.load --orders 200 --rate 20                   # embedded stack, API mode
    python -m bench.load --orders 200 --rate 20 --mode starter    # through starter.start_order
    python -m bench.load --orders 200 --never-accept --accept-timeout 10 --rounds 2
    python -m bench.load --hold 10000 --accept-timeout 600 --no-notices  # timers at scale
    python -m bench.load --target http://127.0.0.1:8000 ...       # a stack already running

Without `--target` it starts its own stack (bench/stack.py) in a temporary folder on free
loopback ports and removes it afterwards. In the same run it first measures the ceiling —
a no-op workflow with one activity on a worker with the order worker's settings — and
reports dispatch throughput as a fraction of it. It prints a table and writes
docs/benchmarks/<label>.json, .md and .png (latency over time; CPU and memory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import profile as profiling
from bench import report, sdk_metrics
from bench.run import (
    Db,
    Sampler,
    StaffSimulator,
    Submitter,
    collect_metrics,
    percentiles,
    progress_counts,
)
from bench.stack import ADMIN_TOKEN, BenchStack, Endpoints

console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--orders", type=int, default=200, help="how many orders (default 200)")
    p.add_argument("--rate", type=float, default=5.0, help="orders per second; 0 = max")
    p.add_argument("--mode", choices=["api", "starter"], default="api")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--accept-after", type=float, default=2.0, help="staff accept after S s")
    who.add_argument("--never-accept", action="store_true", help="staff never accept")
    p.add_argument("--accept-jitter", type=float, default=0.0, help="+ up to J s, at random")
    p.add_argument("--accept-timeout", type=int, default=30, help="rule: accept deadline, s")
    p.add_argument("--max-rounds", type=int, default=3, help="rule: rounds before escalation")
    p.add_argument(
        "--rounds", type=int, default=2, help="never-accept: run until every order reached it"
    )
    p.add_argument(
        "--hold",
        type=int,
        metavar="N",
        help="scale: N open orders waiting on accept timers (sets --orders N --rate 0"
        " --never-accept --rounds 2)",
    )
    p.add_argument("--no-notices", action="store_true", help="rule: send no notices")
    p.add_argument("--concurrency", type=int, default=32, help="submissions in flight at most")
    p.add_argument("--no-ceiling", dest="ceiling", action="store_false")
    p.add_argument("--ceiling-orders", type=int, help="no-op workflows (default: --orders, ≤ 1000)")
    p.add_argument("--ceiling-only", action="store_true", help="measure the ceiling alone")
    p.add_argument(
        "--temporal-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra dev-server argument, e.g. --temporal-arg=--sqlite-pragma=synchronous=NORMAL",
    )
    p.add_argument("--profile", action="store_true", help="sample the worker with py-spy")
    p.add_argument(
        "--one-worker",
        action="store_true",
        help="one worker process for everything (default: a workflows and an activities worker)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the embedded stack's processes,"
        " e.g. WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=40",
    )
    p.add_argument("--unsandboxed", action="store_true", help="worker variant: no sandbox")
    p.add_argument(
        "--passthrough-all",
        action="store_true",
        help="worker variant: sandboxed, but every module passed through (not re-imported)",
    )
    p.add_argument(
        "--worker-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="worker variant: override a Worker() argument, e.g. max_cached_workflows=5000",
    )
    p.add_argument("--target", metavar="API_URL", help="use a running stack (settings from env)")
    p.add_argument("--label", help="output file name (default: load-<mode>)")
    p.add_argument("--out", type=Path, default=report.OUT_DIR)
    p.add_argument("--max-seconds", type=float, help="bound on the whole load phase")
    p.add_argument("--keep-state", action="store_true", help="keep the embedded stack's folder")
    args = p.parse_args(argv)
    if args.hold:
        args.orders, args.rate, args.never_accept, args.rounds = args.hold, 0.0, True, 2
    if args.orders < 1 or args.orders > 100_000:
        p.error("--orders must be 1 … 100000")
    if args.rate < 0:
        p.error("--rate must be ≥ 0")
    if any("=" not in item for item in args.env):
        p.error("--env takes NAME=VALUE")
    args.label = args.label or (f"hold-{args.orders}" if args.hold else f"load-{args.mode}")
    return args


# ---------------------------------------------------------------- a running stack


def worker_metrics_urls(stack: BenchStack | None) -> list[str]:
    """The workers' metrics endpoints: the embedded stack's own ports, else the settings'."""
    from observability.runtime import metrics_address

    if stack is None:
        address = metrics_address()
        return [f"http://{address}/metrics"] if address else []
    ports = [stack.worker_metrics_port] + ([stack.activity_metrics_port] if stack.split else [])
    return [f"http://127.0.0.1:{port}/metrics" for port in ports]


def target_endpoints(api_url: str) -> Endpoints:
    from models.db import database_url
    from settings import settings

    return Endpoints(
        api_url=api_url.rstrip("/"),
        temporal_address=settings.TEMPORAL_ADDRESS,
        database_url=database_url(),
        state_dir=settings.STATE_DIR,
        task_queue=settings.TEMPORAL_TASK_QUEUE,
        namespace=settings.TEMPORAL_NAMESPACE,
        admin_token=settings.ADMIN_TOKEN,
    )


def target_pids(state_dir: Path) -> dict[str, list[int]]:
    """Best effort: the processes of a stack started by `o2o dev` on this machine."""
    found: dict[str, list[int]] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        role = (
            "worker"
            if "cli worker" in cmd or "o2o worker" in cmd
            else "api"
            if "cli api" in cmd or "o2o api" in cmd
            else "temporal"
            if "server start-dev" in cmd
            else None
        )
        if role:
            found.setdefault(role, []).append(proc.info["pid"])
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = (state_dir / "postgres" / "postmaster.pid").read_text()
        found["postgres"] = [int(text.split()[0])]
    return found


# ---------------------------------------------------------------- ceiling


async def start_noop_worker(
    stack: BenchStack | None, endpoints: Endpoints, queue: str, log_dir: Path
) -> asyncio.subprocess.Process:
    args = [sys.executable, "-m", "bench.workers", "noop", "--task-queue", queue]
    if stack is not None:
        child = await stack.start_child("noop-worker", args)
        await stack.wait_for_log(child, "polling", within=60)
        assert child.process is not None
        return child.process
    log = log_dir / "noop-worker.log"
    env = os.environ | {
        "TEMPORAL_ADDRESS": endpoints.temporal_address,
        "TEMPORAL_NAMESPACE": endpoints.namespace,
        "DATABASE_URL": endpoints.database_url,
    }
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while b"polling" not in (log.read_bytes() if log.exists() else b""):
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the no-op worker did not start; see {log}")
        await asyncio.sleep(0.2)
    return process


async def run_ceiling(
    endpoints: Endpoints, queue: str, count: int, concurrency: int
) -> dict[str, Any]:
    """`count` no-op workflows started as fast as `concurrency` allows; completions per second."""
    from temporalio.client import Client, WorkflowHandle

    from bench.noop import NoopWorkflow

    client = await Client.connect(endpoints.temporal_address, namespace=endpoints.namespace)
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    done_at: list[float] = []

    async def one(i: int) -> None:
        async with slots:
            started = time.monotonic()
            handle: WorkflowHandle[Any, int] = await client.start_workflow(
                NoopWorkflow.run, i, id=f"{queue}-{i}", task_queue=queue
            )
        await handle.result()
        done_at.append(time.monotonic())
        latencies.append(done_at[-1] - started)

    start = time.monotonic()
    with Progress(
        TextColumn("ceiling: no-op workflows"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("noop", total=count)

        async def tracked(i: int) -> None:
            await one(i)
            bar.advance(task)

        await asyncio.wait_for(asyncio.gather(*(tracked(i) for i in range(count))), timeout=600)
    elapsed = max(done_at) - start
    return {
        "workflows": count,
        "seconds": round(elapsed, 2),
        "per_s": round(count / elapsed, 1),
        "latency_s": percentiles(latencies),
    }


# ---------------------------------------------------------------- rule


async def set_rule(http: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, Any]:
    """Put the benchmark's rule for `new` orders in place; returns the rule it replaced."""
    old = await http.get("/api/v1/rules/new")
    old.raise_for_status()
    body: dict[str, Any] = {
        "accept_timeout_seconds": args.accept_timeout,
        "reminder_before_seconds": 0,
        "reassign_period_seconds": 0,
        "process_timeout_seconds": 3600,
        "max_rounds": args.max_rounds,
    }
    if args.no_notices:
        body["channels"] = {}
    r = await http.put("/api/v1/rules/new", json=body)
    if r.status_code != 200:
        raise RuntimeError(f"could not set the rule: HTTP {r.status_code} {r.text[:300]}")
    return dict(old.json())


async def stores_under_rule(endpoints: Endpoints, args: argparse.Namespace) -> tuple[Db, list[int]]:
    """A fresh stack made ready for a run: its database, its active stores, the run's rule
    (the drills and the two-worker bench start this way)."""
    db = Db(endpoints.database_url)
    stores = [int(r[0]) for r in await db.fetch("SELECT id FROM store WHERE active ORDER BY id")]
    async with httpx.AsyncClient(
        base_url=endpoints.api_url,
        headers={"Authorization": f"Bearer {endpoints.admin_token}"},
        timeout=30,
    ) as http:
        await set_rule(http, args)
    return db, stores


async def restore_rule(http: httpx.AsyncClient, old: dict[str, Any]) -> None:
    body = {k: v for k, v in old.items() if k not in ("order_type", "updated_at")}
    with contextlib.suppress(httpx.HTTPError):
        await http.put("/api/v1/rules/new", json=body)


# ---------------------------------------------------------------- the load


def _span_rate(starts: list[float], ends: list[float]) -> float:
    if not ends or not starts:
        return 0.0
    span = max(ends) - min(starts)
    return round(len(ends) / span, 2) if span > 0 else 0.0


async def run_load(
    args: argparse.Namespace,
    endpoints: Endpoints,
    db: Db,
    store_ids: list[int],
    pids: Any,
) -> dict[str, Any]:
    prefix = f"B{int(time.time()) % 10_000_000:07d}"
    submitter = Submitter(
        endpoints,
        prefix=prefix,
        store_ids=store_ids,
        mode=args.mode,
        concurrency=args.concurrency,
    )
    await submitter.open()
    staff = StaffSimulator(
        db,
        submitter,
        accept_after=None if args.never_accept else args.accept_after,
        jitter=args.accept_jitter,
    )
    stop_staff = asyncio.Event()
    staff_task = asyncio.create_task(staff.run(stop_staff))
    submit_seconds = args.orders / args.rate if args.rate else args.orders / 10
    after = args.accept_timeout * (args.rounds + 1) if args.never_accept else args.accept_after + 30
    bound = args.max_seconds or min(submit_seconds * 2 + after + 120, 3600)
    deadline = time.monotonic() + bound
    timed_out = False
    open_peak = 0
    profile_task: asyncio.Task[str] | None = None
    profile_out = Path(tempfile.gettempdir()) / f"o2o-bench-{args.label}.collapsed.txt"

    with Progress(
        TextColumn("{task.description:<26}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        t_sub = bar.add_task("submitted", total=args.orders)
        t_asg = bar.add_task("assigned (round 1)", total=args.orders)
        t_not = bar.add_task("staff notified (round 1)", total=args.orders)
        t_end = bar.add_task(
            f"reached round {args.rounds}" if args.never_accept else "completed by staff",
            total=args.orders,
        )
        submit_task = asyncio.create_task(
            submitter.run(
                args.orders,
                args.rate,
                deadline=deadline,
                on_done=lambda: bar.advance(t_sub),
            )
        )
        if args.profile:
            await asyncio.sleep(2)
            worker = pids().get("worker", [])
            if worker:
                seconds = int(min(max(submit_seconds, 10), 120))
                profile_task = asyncio.create_task(
                    profiling.record(worker[0], seconds, profile_out)
                )
        while True:
            try:
                counts = await progress_counts(db, prefix)
            except Exception:
                counts = None
            accepted = len(submitter.accepted)
            if counts is not None:
                open_peak = max(open_peak, counts["open"])
                bar.update(t_asg, completed=counts["assigned"])
                bar.update(t_not, completed=counts["notified"])
                if args.never_accept:
                    rounds = await db.fetch(
                        "SELECT count(*) FROM dispatch_order WHERE id LIKE %s AND round >= %s",
                        (prefix + "-%", args.rounds),
                        tries=1,
                    )
                    reached = int(rounds[0][0])
                    bar.update(t_end, completed=reached)
                    finished = counts["recorded"] >= accepted and reached >= accepted
                else:
                    bar.update(t_end, completed=counts["completed"])
                    finished = counts["completed"] >= accepted
                if submit_task.done() and finished:
                    break
            if time.monotonic() > deadline:
                timed_out = True
                break
            await asyncio.sleep(1.0)
    if not submit_task.done():
        submit_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await submit_task
    # Notices of the last orders may still be under way: give them a bounded moment.
    settle = time.monotonic() + 30
    while time.monotonic() < settle:
        rows = await db.fetch(
            "SELECT count(*) FROM notification WHERE order_id LIKE %s"
            " AND status IN ('pending', 'sending', 'delivering')",
            (prefix + "-%",),
        )
        if int(rows[0][0]) == 0:
            break
        await asyncio.sleep(1)
    stop_staff.set()
    await staff_task

    metrics = await collect_metrics(db, submitter)
    per_order = metrics.pop("_per_order")
    subs = submitter.submissions
    acc = submitter.accepted
    orders = {
        "submitted": len(acc),
        "submit_failures": len(subs) - len(acc),
        "last_submit_error": next((s.error for s in subs if s.error), ""),
        "assigned": sum(1 for o in per_order if o["assigned"] is not None),
        "notified": sum(1 for o in per_order if o["notified"] is not None),
        "completed": staff.counters.completed,
        "staff": {k: v for k, v in staff.counters.__dict__.items() if k != "accept_answer_s"},
        "timed_out_waiting": timed_out,
    }
    assigned_at = [o["assigned"] for o in per_order if o["assigned"] is not None]
    notified_at = [o["notified"] for o in per_order if o["notified"] is not None]
    starts = [s.submitted_at for s in subs]
    throughput = {
        "submitted_per_s": _span_rate(starts, [s.accepted_at for s in acc if s.accepted_at]),
        "assigned_per_s": _span_rate(starts, assigned_at),
        "notified_per_s": _span_rate(starts, notified_at),
    }
    metrics["latency_s"]["accept_answered"] = percentiles(staff.counters.accept_answer_s)
    result: dict[str, Any] = {
        "orders": orders,
        "throughput": throughput,
        "open_peak": open_peak,
        "prefix": prefix,
        **metrics,
    }
    if profile_task is not None:
        problem = await profile_task
        if problem:
            result["profile"] = problem
        else:
            summary = profiling.summarize(profile_out)
            md = args.out / f"{args.label}-profile.md"
            args.out.mkdir(parents=True, exist_ok=True)
            md.write_text(
                profiling.markdown(summary, f"Worker profile: {args.label}"), encoding="utf-8"
            )
            result["profile_summary"] = summary
            result["profile"] = f"{md.name} (raw collapsed stacks: {profile_out})"
    if args.target:  # leave nothing of ours running on someone else's stack
        await _terminate(submitter)
    await submitter.close()
    result["_per_order_rows"] = per_order
    return result


async def _terminate(submitter: Submitter) -> None:
    from temporalio.client import Client

    from starter import workflow_id

    client = await Client.connect(
        submitter.endpoints.temporal_address, namespace=submitter.endpoints.namespace
    )
    slots = asyncio.Semaphore(16)

    async def one(order_id: str) -> None:
        async with slots:
            with contextlib.suppress(Exception):
                await client.get_workflow_handle(workflow_id(order_id)).terminate("benchmark over")

    await asyncio.wait_for(
        asyncio.gather(*(one(s.order_id) for s in submitter.accepted)), timeout=300
    )


# ---------------------------------------------------------------- main


def worker_variant(args: argparse.Namespace) -> list[str] | None:
    if not (args.unsandboxed or args.passthrough_all or args.worker_set):
        return None
    cmd = [sys.executable, "-m", "bench.workers", "orders"]
    if args.unsandboxed:
        cmd.append("--unsandboxed")
    elif args.passthrough_all:
        cmd.append("--passthrough-all")
    for item in args.worker_set:
        cmd += ["--set", item]
    return cmd


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = datetime.now(UTC)
    machine = {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
    }
    stack: BenchStack | None = None
    extra_pids: dict[str, list[int]] = {}
    variant = worker_variant(args)
    if args.target:
        endpoints = target_endpoints(args.target)

        def pids() -> dict[str, list[int]]:
            return target_pids(endpoints.state_dir) | extra_pids
    else:
        stack = BenchStack.temporary(
            keep_state=args.keep_state,
            worker_args=variant,
            temporal_args=args.temporal_arg,
            split_worker=not args.one_worker,
            extra_env=dict(item.split("=", 1) for item in args.env),
        )
        console.print(f"[dim]starting an embedded stack in {stack.state_dir} …[/dim]")

        def pids() -> dict[str, list[int]]:
            assert stack is not None
            return stack.pids() | extra_pids

    db: Db | None = None
    sampler = Sampler(pids)
    since = time.time()
    stop_sampling = asyncio.Event()
    sampler_task: asyncio.Task[None] | None = None
    http: httpx.AsyncClient | None = None
    old_rule: dict[str, Any] | None = None
    try:
        if stack is not None:
            await stack.start()
            endpoints = stack.endpoints()
            console.print(
                f"[dim]stack up: API {endpoints.api_url},"
                f" Temporal {endpoints.temporal_address}[/dim]"
            )
        db = Db(endpoints.database_url)
        store_ids = [
            int(r[0]) for r in await db.fetch("SELECT id FROM store WHERE active ORDER BY id")
        ]
        if not store_ids:
            raise SystemExit("no active store: load the demo data (o2o demo-data) first")
        sampler_task = asyncio.create_task(sampler.run(stop_sampling, since))
        http = httpx.AsyncClient(
            base_url=endpoints.api_url,
            headers={"Authorization": f"Bearer {endpoints.admin_token or ADMIN_TOKEN}"},
            timeout=30,
        )

        ceiling: dict[str, Any] | None = None
        if args.ceiling:
            queue = f"bench-noop-{int(time.time())}"
            ceiling_from = time.time() - since
            noop = await start_noop_worker(stack, endpoints, queue, Path(tempfile.gettempdir()))
            extra_pids["noop-worker"] = [noop.pid]
            try:
                ceiling = await run_ceiling(
                    endpoints,
                    queue,
                    args.ceiling_orders or min(args.orders, 1000),
                    args.concurrency,
                )
            finally:
                extra_pids.pop("noop-worker", None)
                if stack is not None:
                    await stack.stop_child("noop-worker")
                elif noop.returncode is None:
                    noop.terminate()
                    await noop.wait()
            usage = sampler.summary(ceiling_from, time.time() - since)
            ceiling["resources"] = usage  # the JSON keeps every figure; the console one line
            cpu = ", ".join(f"{who} {u['cpu_mean_pct']}%" for who, u in usage.items())
            console.print(
                f"ceiling: {ceiling['per_s']} no-op workflows/s, latency p50"
                f" {ceiling['latency_s'].get('p50')} s p99 {ceiling['latency_s'].get('p99')} s;"
                f" mean CPU {cpu}"
            )
            if args.ceiling_only:
                return {"ceiling": ceiling}

        old_rule = await set_rule(http, args)
        load_from = time.time() - since
        result = await run_load(args, endpoints, db, store_ids, pids)
        load_to = time.time() - since
        result["sdk_latency"] = [
            row for url in worker_metrics_urls(stack) for row in await sdk_metrics.scrape(url)
        ]
    finally:
        stop_sampling.set()
        if sampler_task is not None:
            await sampler_task
        if http is not None:
            if old_rule is not None and args.target:
                await restore_rule(http, old_rule)
            await http.aclose()
        if db is not None:
            await db.close()
        if stack is not None:
            await stack.stop()

    per_order = result.pop("_per_order_rows")
    t0 = result["_t0"]
    shift = t0 - since
    result["_samples"] = [
        s | {"t": round(s["t"] - shift, 2)}
        for s in sampler.samples
        if load_from <= s["t"] <= load_to
    ]
    throughput = result["throughput"]
    if ceiling:
        throughput["ceiling_per_s"] = ceiling["per_s"]
        throughput["ratio"] = round(throughput["assigned_per_s"] / ceiling["per_s"], 3)
        throughput["rate_limited"] = bool(
            args.rate and throughput["assigned_per_s"] >= 0.9 * args.rate
        )
    result = {
        "label": args.label,
        "command": "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
            "mode": args.mode,
            "orders": args.orders,
            "rate": args.rate,
            "accept_after": None if args.never_accept else args.accept_after,
            "accept_jitter": args.accept_jitter,
            "accept_timeout": args.accept_timeout,
            "max_rounds": args.max_rounds,
            "rounds": args.rounds,
            "no_notices": args.no_notices,
            "concurrency": args.concurrency,
            "target": args.target,
        },
        "worker_variant": " ".join(variant[2:]) if variant else "",
        "ceiling": ceiling,
        **result,
        "resources": sampler.summary(load_from, load_to),
    }
    report.print_table(result, console)
    for path in report.write(result, per_order, args.out):
        console.print(f"wrote {path}")
    return result


if __name__ == "__main__":
    asyncio.run(main())

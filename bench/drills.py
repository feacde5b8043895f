"""Fault drills: break one piece of the embedded stack while orders flow, then count.

    python -m bench.drills worker-kill       [--orders 2000] [--kills 3]
    python -m bench.drills temporal-restart  [--orders 2000] [--down 5]
    python -m bench.drills postgres-stop     [--orders 2000] [--down 30]
    python -m bench.drills smtp-down         [--orders 2000] [--down 60]

Each drill starts its own stack (bench/stack.py: temporary folder, free loopback ports),
submits orders through the HTTP API at `--rate`, lets simulated staff accept after a random
2–16 s against a 10 s accept deadline (so about half the orders also go through a
reassignment), injects its fault part-way through the submissions, waits — bounded by
`--max-seconds` — until every order is assigned and every notice settled, and ends with
ONE line computed from the database and the sinks' own logs:

    orders submitted=… assigned=… double-assigned=… notices duplicated=… lost=…

- double-assigned: an order with two open assignments, two assignments in one round, or an
  "assigned" notice received for someone who was not that round's assignee;
- notices duplicated: extra copies of one idempotency key (SMS) or Message-ID (e-mail)
  received by a sink;
- lost: submitted (202) but never assigned.
In brackets after them: notices failed for good and notices `sent` that no sink received
(both lost messages), in-doubt recoveries (a retry found a hand-over cut off, see
activities/notices.py) and the re-sent copies the sinks dropped as already received.
Details (notice statuses, evidence, the fault's timeline) are printed above the line and
written to docs/benchmarks/drill-<name>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import report
from bench.load import stores_under_rule
from bench.run import Db, StaffSimulator, Submitter, tally, tally_line, wait_until
from bench.stack import BenchStack

console = Console(stderr=True)  # progress and details on stderr; the last line on stdout
DRILLS = ("worker-kill", "temporal-restart", "postgres-stop", "smtp-down")
DEFAULT_DOWN = {
    "worker-kill": 2.0,
    "temporal-restart": 5.0,
    "postgres-stop": 30.0,
    "smtp-down": 60.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.drills", description="fault drills")
    p.add_argument("drill", choices=DRILLS)
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--rate", type=float, default=5.0, help="orders per second")
    p.add_argument("--kills", type=int, default=3, help="worker-kill: how many SIGKILLs")
    p.add_argument(
        "--one-worker",
        action="store_true",
        help="one worker process for everything (default: a workflows and an activities worker)",
    )
    p.add_argument("--down", type=float, help="seconds the piece stays down")
    p.add_argument("--accept-timeout", type=int, default=10)
    p.add_argument("--max-seconds", type=float, help="bound on the whole drill after start-up")
    p.add_argument("--out", type=Path, default=report.OUT_DIR)
    p.add_argument("--keep-state", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.orders <= 20_000:
        p.error("--orders must be 1 … 20000")
    if args.rate <= 0:
        p.error("--rate must be > 0")
    args.down = DEFAULT_DOWN[args.drill] if args.down is None else args.down
    args.max_rounds, args.no_notices = 3, False
    return args


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.events: list[tuple[float, str]] = []

    def __call__(self, what: str) -> None:
        at = round(time.monotonic() - self.start, 1)
        self.events.append((at, what))
        console.print(f"[yellow]t+{at:6.1f}s {what}[/yellow]")


async def inject(
    stack: BenchStack, args: argparse.Namespace, submit_s: float, log: Timeline
) -> None:
    """The fault, timed against the submission window; the piece is always brought back."""
    if args.drill == "worker-kill":
        kills = max(1, args.kills)
        names = stack.worker_names()
        for k in range(kills):
            await asyncio.sleep(submit_s / (kills + 1))
            # Split: the workflows worker, then the activities worker, then both at once.
            victims = names if k == kills - 1 else [names[k % len(names)]]
            for name in victims:
                child = stack.child(name)
                log(f"SIGKILL {name} pid {child.pid if child else '?'} ({k + 1}/{kills})")
                await stack.kill_worker(name)
            try:
                await asyncio.sleep(args.down)
            finally:
                for name in victims:
                    await stack.start_worker(name)
            log(f"{', '.join(victims)} started again")
        return
    await asyncio.sleep(submit_s * 0.4)
    if args.drill == "temporal-restart":
        log("stopping the Temporal dev server (SIGTERM)")
        await stack.stop_child("temporal")
        log(f"Temporal down; starting it again in {args.down:.0f} s (same --db-filename)")
        try:
            await asyncio.sleep(args.down)
        finally:
            await stack.start_temporal()
        log("Temporal answers again")
    elif args.drill == "postgres-stop":
        log("pg_ctl stop -m fast")
        await asyncio.to_thread(stack.stop_postgres)
        log(f"PostgreSQL down for {args.down:.0f} s")
        try:
            await asyncio.sleep(args.down)
        finally:
            await asyncio.to_thread(stack.start_postgres_again)
        log("PostgreSQL started again (pg_ctl start)")
    elif args.drill == "smtp-down":
        log("SMTP sink stopped (connections refused)")
        await stack.stop_mail()
        try:
            await asyncio.sleep(args.down)
        finally:
            await stack.start_mail()
        log(f"SMTP sink back after {args.down:.0f} s")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = BenchStack.temporary(keep_state=args.keep_state, split_worker=not args.one_worker)
    console.print(f"[dim]drill {args.drill}: starting a stack in {stack.state_dir} …[/dim]")
    db: Db | None = None
    submitter: Submitter | None = None
    try:
        await stack.start()
        endpoints = stack.endpoints()
        db, stores = await stores_under_rule(endpoints, args)
        prefix = f"D{int(time.time()) % 10_000_000:07d}"
        submitter = Submitter(endpoints, prefix=prefix, store_ids=stores, retry_for=180)
        await submitter.open()
        staff = StaffSimulator(db, submitter, accept_after=2.0, jitter=14.0)
        stop_staff = asyncio.Event()
        staff_task = asyncio.create_task(staff.run(stop_staff))
        submit_s = args.orders / args.rate
        bound = args.max_seconds or (submit_s + args.down * max(1, args.kills) + 420)
        deadline = time.monotonic() + bound
        log = Timeline()
        log(f"submitting {args.orders} orders at {args.rate}/s (bound {bound:.0f} s)")
        submitted = 0

        def done() -> None:
            nonlocal submitted
            submitted += 1

        submit_task = asyncio.create_task(
            submitter.run(args.orders, args.rate, deadline=deadline, on_done=done)
        )
        fault_task = asyncio.create_task(inject(stack, args, submit_s, log))

        async def report_progress() -> None:
            while True:
                await asyncio.sleep(10)
                log(f"{submitted} submitted; staff {staff.counters.accepted} accepted")

        progress_task = asyncio.create_task(report_progress())
        try:
            await asyncio.wait_for(asyncio.gather(submit_task, fault_task), timeout=bound)
        except TimeoutError:  # wait_for cancelled both: count what there is
            log("bound reached while submitting")
        log(f"submissions over: {len(submitter.accepted)} accepted by the API")

        async def settled() -> bool:
            assert db is not None and submitter is not None
            rows = await db.fetch(
                "SELECT (SELECT count(DISTINCT order_id) FROM assignment WHERE order_id LIKE %s),"
                " (SELECT count(*) FROM notification WHERE order_id LIKE %s"
                "  AND status IN ('pending', 'sending', 'delivering'))",
                (prefix + "-%", prefix + "-%"),
                tries=1,
            )
            assigned, unsettled = int(rows[0][0]), int(rows[0][1])
            return assigned >= len(submitter.accepted) and unsettled == 0

        ok = await wait_until(settled, deadline=deadline, every=2.0)
        log("every order assigned, every notice settled" if ok else "bound reached: counting now")
        stop_staff.set()
        progress_task.cancel()
        await staff_task
        with contextlib.suppress(asyncio.CancelledError):
            await progress_task

        async def quiet() -> bool:  # notices of rounds begun meanwhile: a bounded moment
            assert db is not None
            rows = await db.fetch(
                "SELECT count(*) FROM notification WHERE order_id LIKE %s"
                " AND status IN ('pending', 'sending', 'delivering')",
                (prefix + "-%",),
                tries=1,
            )
            return int(rows[0][0]) == 0

        await wait_until(quiet, deadline=time.monotonic() + 30, every=1.0)
        result = await tally(db, submitter, stack.state_dir)
        result |= {
            "drill": args.drill,
            "settled": ok,
            "staff": staff.counters.__dict__,
            "timeline": log.events,
            "config": {k: v for k, v in vars(args).items() if k != "out"},
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m bench.drills " + " ".join(sys.argv[1:]),
            "last_submit_error": next((s.error for s in submitter.submissions if s.error), ""),
        }
        return result
    finally:
        if submitter is not None:
            await submitter.close()
        if db is not None:
            await db.close()
        await stack.stop()


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = await run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"drill-{args.drill}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    details = {
        k: result[k]
        for k in (
            "notice_status",
            "notices_sent_not_received",
            "sink_received",
            "submit_failures",
            "settled",
            "duplicated_keys",
            "double_assigned_evidence",
            "lost_orders",
        )
    }
    console.print_json(json.dumps(details, default=str))
    console.print(f"[dim]wrote {path}[/dim]")
    print(tally_line(result), flush=True)
    return result


def clean(result: dict[str, Any]) -> bool:
    """The expected outcome: no order or notice lost, nothing assigned or received twice."""
    return not (
        result["lost"]
        or result["double_assigned"]
        or result["notices_duplicated"]
        or result["notices_failed"]
        or result["notices_sent_not_received"]
        # The sinks drop copies, so a blind re-send shows only here: more copies dropped
        # than recoveries means something sent again without recovering first.
        or result["resends_dropped_by_receiver"] > result["in_doubt_recoveries"]
    )


if __name__ == "__main__":
    sys.exit(0 if clean(asyncio.run(main())) else 1)

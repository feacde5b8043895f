"""One worker against two on one task queue, and a worker killed mid-run with nothing lost.

    python -m bench.two_workers [--orders 400] [--rate 0] [--pairs 1]

Three kinds of run (the first two alternated `--pairs` times, against the machine's drift),
each on a stack of its own (bench/stack.py), with the same orders submitted
through the HTTP API as fast as 32 requests in flight allow (`--rate 0`) and no staff
answering (the figure is dispatch: route, select, record, notify):

- `1 worker`: the worker of `python -m cli worker`;
- `2 workers`: a second `python -m cli worker` process on the same task queue;
- `2 workers, one killed`: the second worker gets SIGKILL when half the orders are in and
  is not started again; the first must finish everything.

Each run reports assigned/s = orders with a round-1 assignment over the span from the first
submission to the last round-1 `assigned_at`, and the drills' line (bench/drills.py:
submitted, assigned, double-assigned, notices duplicated, lost). The figures go to
docs/benchmarks/two-workers.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from signal import SIGKILL
from typing import Any

from rich.console import Console

from bench.load import stores_under_rule
from bench.run import Db, Submitter, tally, tally_line, wait_until
from bench.stack import BenchStack

console = Console(stderr=True)
OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


@dataclass(frozen=True)
class Plan:
    label: str
    workers: int
    kill_second: bool


PLANS = (
    Plan("1 worker", 1, False),
    Plan("2 workers", 2, False),
    Plan("2 workers, one killed", 2, True),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.two_workers", description=__doc__)
    p.add_argument("--orders", type=int, default=400)
    p.add_argument("--rate", type=float, default=0.0, help="orders per second; 0 = max")
    p.add_argument("--max-seconds", type=float, default=600.0, help="bound of one run")
    p.add_argument(
        "--pairs", type=int, default=1, help="1-then-2-worker runs, alternated (machine drift)"
    )
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    # The rule: nobody answers within the run, no second round, notices on (bench.load).
    args.accept_timeout, args.max_rounds, args.no_notices = 3600, 1, False
    return args


async def run_one(plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    # Metrics off: two workers on one machine would want the same port.
    stack = BenchStack.temporary(extra_env={"WORKER_METRICS_PORT": "0"}, split_worker=False)
    console.print(f"[dim]{plan.label}: starting a stack in {stack.state_dir} …[/dim]")
    db: Db | None = None
    submitter: Submitter | None = None
    load_before = os.getloadavg()[0]
    try:
        await stack.start()
        if plan.workers == 2:
            second = await stack.start_child("worker-2", [sys.executable, "-m", "cli", "worker"])
            await stack.wait_for_log(second, "polling", within=90)
        endpoints = stack.endpoints()
        db, stores = await stores_under_rule(endpoints, args)
        prefix = f"W{plan.workers}{int(plan.kill_second)}{int(time.time()) % 1_000_000:06d}"
        submitter = Submitter(endpoints, prefix=prefix, store_ids=stores, retry_for=180)
        await submitter.open()
        deadline = time.monotonic() + args.max_seconds
        submitted = 0
        killed_at: float | None = None
        kills: list[asyncio.Task[None]] = []
        started = time.monotonic()

        def done() -> None:
            nonlocal submitted, killed_at
            submitted += 1
            if plan.kill_second and killed_at is None and submitted >= args.orders // 2:
                killed_at = time.monotonic() - started
                kills.append(asyncio.create_task(stack.stop_child("worker-2", sig=SIGKILL)))
                console.print(f"[yellow]t+{killed_at:.1f}s SIGKILL worker-2[/yellow]")

        await submitter.run(args.orders, args.rate, deadline=deadline, on_done=done)
        await asyncio.gather(*kills)

        async def assigned_all() -> bool:
            assert db is not None and submitter is not None
            rows = await db.fetch(
                "SELECT count(DISTINCT order_id) FROM assignment WHERE order_id LIKE %s",
                (prefix + "-%",),
                tries=1,
            )
            return int(rows[0][0]) >= len(submitter.accepted)

        settled = await wait_until(assigned_all, deadline=deadline, every=0.5)
        span = await db.fetch(
            "SELECT count(*), extract(epoch FROM max(assigned_at) - to_timestamp(%s))"
            " FROM assignment WHERE order_id LIKE %s AND round = 1",
            (min(s.submitted_at for s in submitter.submissions), prefix + "-%"),
        )
        count, seconds = int(span[0][0]), float(span[0][1] or 0)

        async def quiet() -> bool:
            assert db is not None
            rows = await db.fetch(
                "SELECT count(*) FROM notification WHERE order_id LIKE %s"
                " AND status IN ('pending', 'sending', 'delivering')",
                (prefix + "-%",),
                tries=1,
            )
            return int(rows[0][0]) == 0

        await wait_until(quiet, deadline=deadline, every=1.0)
        result = await tally(db, submitter, stack.state_dir)
        result |= {
            "label": plan.label,
            "workers": plan.workers,
            "killed_second_at_s": killed_at,
            "settled": settled,
            "assigned_round_1": count,
            "span_s": round(seconds, 1),
            "assigned_per_s": round(count / seconds, 2) if seconds else None,
            # The machine's 1-minute load average: other work on it moves these figures.
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        }
        console.print(f"{plan.label}: {result['assigned_per_s']} assigned/s; {tally_line(result)}")
        return result
    finally:
        if submitter is not None:
            await submitter.close()
        if db is not None:
            await db.close()
        await stack.stop()


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# One worker against two on one task queue",
        "",
        f"`python -m bench.two_workers --orders {args.orders} --rate {args.rate:g} "
        f"--pairs {args.pairs}` on "
        f"{datetime.now(UTC):%Y-%m-%d} (2 cores, shared). Orders through the HTTP API, as "
        "fast as 32 requests in flight allow; nobody accepts; notices on.",
        "",
        "| run | assigned/s | span s | load avg before → after | submitted | assigned "
        "| double-assigned | notices duplicated | lost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['assigned_per_s']} | {r['span_s']} "
            f"| {r['load_average'][0]} → {r['load_average'][1]} | {r['submitted']} "
            f"| {r['assigned']} | {r['double_assigned']} | {r['notices_duplicated']} "
            f"| {r['lost']} |"
        )
    lines += ["", "Median assigned/s per kind of run:", ""]
    for plan in PLANS:
        rates = sorted(r["assigned_per_s"] or 0.0 for r in results if r["label"] == plan.label)
        if rates:
            lines.append(f"- {plan.label}: {statistics.median(rates):.2f} (of {len(rates)})")
    return "\n".join(lines) + "\n"


async def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    order = [*(plan for _ in range(args.pairs) for plan in PLANS[:2]), PLANS[2]]
    results = [await run_one(plan, args) for plan in order]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "two-workers.json").write_text(
        json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8"
    )
    (args.out / "two-workers.md").write_text(markdown(results, args), encoding="utf-8")
    for r in results:
        print(f"{r['label']}: {r['assigned_per_s']} assigned/s; {tally_line(r)}", flush=True)
    return results


if __name__ == "__main__":
    outcome = asyncio.run(main())
    raise SystemExit(0 if all(r["lost"] == 0 and r["double_assigned"] == 0 for r in outcome) else 1)

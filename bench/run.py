"""The parts every benchmark and drill shares: submit orders, play the staff, watch, measure.

- `Db`: a small psycopg connection that survives a PostgreSQL restart (bounded retries).
- `Submitter`: N orders at a target rate, through the HTTP API or `starter.start_order`,
  each retried (same order id, so never twice) until accepted or its own time runs out.
- `StaffSimulator`: staff who accept an offered order after a delay (or never), then
  mark it processed.
- `Sampler`: CPU and memory of the worker, Temporal, PostgreSQL and the API, every second.
- `collect_metrics` / `tally`: the figures, from the database and the sinks' own logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import psycopg

from bench.stack import Endpoints

Row = tuple[Any, ...]


# ---------------------------------------------------------------- database


class Db:
    """One autocommit connection, opened again after a failure (the drills stop PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def fetch(self, sql: str, params: Iterable[Any] = (), *, tries: int = 3) -> list[Row]:
        last: Exception | None = None
        for attempt in range(tries):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=5
                    )
                async with self._conn.cursor() as cur:
                    await cur.execute(sql, tuple(params))
                    return list(await cur.fetchall()) if cur.description else []
            except psycopg.OperationalError as exc:
                last = exc
                await self.close()
                await asyncio.sleep(0.5 * (attempt + 1))
        assert last is not None
        raise last

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


# ---------------------------------------------------------------- orders in


@dataclass
class Submission:
    order_id: str
    index: int
    submitted_at: float = 0.0  # wall clock of the first attempt
    accepted_at: float | None = None  # wall clock of the 202 (or the started workflow)
    attempts: int = 0
    error: str = ""


def order_body(order_id: str, index: int, store_id: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "type": "new",
        "category": "bench",
        "store_id": store_id,
        "customer": {"name": f"Bench {index}", "phone": f"+86137{index % 100_000_000:08d}"},
    }


class Submitter:
    """Submit orders `prefix-000000 …` at `rate` per second (0: as fast as `concurrency` allows)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        prefix: str,
        store_ids: list[int],
        mode: str = "api",
        concurrency: int = 32,
        retry_for: float = 120.0,
    ) -> None:
        self.endpoints = endpoints
        self.prefix = prefix
        self.store_ids = store_ids
        self.mode = mode
        self.concurrency = concurrency
        self.retry_for = retry_for
        self.submissions: list[Submission] = []
        self.http: httpx.AsyncClient | None = None
        self.client: Any = None  # temporalio Client in starter mode

    def order_id(self, index: int) -> str:
        return f"{self.prefix}-{index:06d}"

    async def open(self) -> None:
        self.http = httpx.AsyncClient(
            base_url=self.endpoints.api_url,
            headers={"Authorization": f"Bearer {self.endpoints.admin_token}"},
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=self.concurrency * 2),
        )
        if self.mode == "starter":
            from temporalio.client import Client

            self.client = await Client.connect(
                self.endpoints.temporal_address, namespace=self.endpoints.namespace
            )

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    async def _once(self, s: Submission) -> None:
        store_id = self.store_ids[s.index % len(self.store_ids)]
        body = order_body(s.order_id, s.index, store_id)
        if self.mode == "api":
            assert self.http is not None
            r = await self.http.post("/api/v1/orders", json=body)
            if r.status_code != 202:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
            return
        from starter import start_order
        from workflows.contracts import CustomerIn, OrderRequest

        await start_order(
            OrderRequest(
                order_id=s.order_id,
                type="new",
                category="bench",
                store_id=store_id,
                customer=CustomerIn(**body["customer"]),
            ),
            client=self.client,
            task_queue=self.endpoints.task_queue,
        )

    async def _submit(self, s: Submission) -> None:
        s.submitted_at = time.time()
        give_up = time.monotonic() + self.retry_for
        pause = 0.5
        while True:
            s.attempts += 1
            try:
                await self._once(s)
                s.accepted_at = time.time()
                s.error = ""
                return
            except Exception as exc:  # any failure: the same order id again, later
                s.error = f"{type(exc).__name__}: {exc}"[:300]
                if time.monotonic() + pause > give_up:
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def run(
        self, count: int, rate: float, *, deadline: float, on_done: Callable[[], None]
    ) -> None:
        """Submit `count` orders; stops starting new ones at `deadline` (monotonic)."""
        slots = asyncio.Semaphore(self.concurrency)
        start = time.monotonic()
        tasks: list[asyncio.Task[None]] = []

        async def one(s: Submission) -> None:
            try:
                await self._submit(s)
            finally:
                slots.release()
                on_done()

        for i in range(count):
            if rate > 0:
                due = start + i / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            if time.monotonic() > deadline:
                break
            await slots.acquire()
            s = Submission(self.order_id(i), i)
            self.submissions.append(s)
            tasks.append(asyncio.create_task(one(s)))
        await asyncio.gather(*tasks)

    @property
    def accepted(self) -> list[Submission]:
        return [s for s in self.submissions if s.accepted_at is not None]


# ---------------------------------------------------------------- staff


@dataclass
class StaffCounters:
    accepted: int = 0
    completed: int = 0
    refused: int = 0  # 409/403: the offer had moved on (deadline passed) — expected
    errors: int = 0
    last_error: str = ""
    refusals: dict[str, int] = field(default_factory=dict)  # reason → count
    early_offers: int = 0  # accept tried before the workflow knew of its own assignment
    late: int = 0  # accepts sent after the round's deadline (refused by design)
    # How long a successful accept took to be answered (request sent → 200), seconds.
    accept_answer_s: list[float] = field(default_factory=list)

    def refused_because(self, reason: str) -> None:
        self.refused += 1
        self.refusals[reason] = self.refusals.get(reason, 0) + 1


class StaffSimulator:
    """Staff who take an offered order `accept_after` (+ jitter) seconds after it was assigned.

    `accept_after=None` is staff who never answer: every round times out.
    """

    def __init__(
        self,
        db: Db,
        submitter: Submitter,
        *,
        accept_after: float | None,
        jitter: float = 0.0,
        complete: bool = True,
        concurrency: int = 64,
        seed: int = 7,
    ) -> None:
        self.db = db
        self.submitter = submitter
        self.accept_after = accept_after
        self.jitter = jitter
        self.complete = complete
        self.slots = asyncio.Semaphore(concurrency)
        self.rng = random.Random(seed)
        self.handled: set[tuple[str, int]] = set()
        self.counters = StaffCounters()
        self._tasks: set[asyncio.Task[None]] = set()

    def _delay(self) -> float:
        assert self.accept_after is not None
        return self.accept_after + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)

    async def run(self, stop: asyncio.Event) -> None:
        if self.accept_after is None:
            return
        due: dict[tuple[str, int], tuple[float, int, float]] = {}
        while not stop.is_set():
            try:
                rows = await self.db.fetch(
                    "SELECT order_id, round, staff_id, extract(epoch FROM assigned_at),"
                    " extract(epoch FROM accept_deadline)"
                    " FROM assignment WHERE outcome = 'offered' AND order_id LIKE %s",
                    (self.submitter.prefix + "-%",),
                    tries=1,
                )
            except psycopg.Error:
                rows = []
            for order_id, round_, staff_id, assigned_at, deadline in rows:
                key = (order_id, int(round_))
                if key not in self.handled and key not in due:
                    when = float(assigned_at) + self._delay()
                    due[key] = (when, int(staff_id), float(deadline))
            now = time.time()
            for key, (when, staff_id, deadline) in list(due.items()):
                if when <= now:
                    del due[key]
                    self.handled.add(key)
                    if now > deadline:  # a late click: sent all the same, refusal expected
                        self.counters.late += 1
                    task = asyncio.create_task(self._act(key[0], staff_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _act(self, order_id: str, staff_id: int) -> None:
        async with self.slots:
            if await self._action(order_id, "accept", staff_id):
                self.counters.accepted += 1
                if self.complete and await self._action(order_id, "complete", staff_id):
                    self.counters.completed += 1

    async def _action(self, order_id: str, action: str, staff_id: int) -> bool:
        """True when done; False when refused (the offer moved on) or it kept failing.

        "not assigned to anyone right now" is retried (up to ~10 s): the assignment row is
        committed by the activity before the workflow has taken in its result, so the offer
        is visible a moment before the workflow will accept it.
        """
        early = 0
        attempt = 0
        while attempt < 4:
            try:
                if self.submitter.mode == "api":
                    assert self.submitter.http is not None
                    sent = time.monotonic()
                    r = await self.submitter.http.post(
                        f"/api/v1/orders/{order_id}/{action}", json={"staff_id": staff_id}
                    )
                    if r.status_code == 200:
                        if action == "accept":
                            self.counters.accept_answer_s.append(time.monotonic() - sent)
                        return True
                    if r.status_code in (403, 404, 409, 422):
                        detail = r.json().get("detail", r.text) if r.content else ""
                        if attempt and (
                            (action == "accept" and "already accepted" in str(detail))
                            or (action == "complete" and "processed already" in str(detail))
                        ):
                            return True  # our earlier try went through; its answer was lost
                        if "not assigned to anyone right now" in str(detail) and early < 10:
                            early += 1
                            self.counters.early_offers += 1
                            await asyncio.sleep(1.0)
                            continue
                        self.counters.refused_because(f"{action}: {r.status_code} {detail}"[:200])
                        return False
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                done = await self._update(order_id, action, staff_id, retry_early=early < 10)
                if done is None:
                    early += 1
                    self.counters.early_offers += 1
                    await asyncio.sleep(1.0)
                    continue
                return done
            except Exception as exc:
                self.counters.last_error = f"{action} {order_id}: {type(exc).__name__}: {exc}"[:300]
                if attempt == 3:
                    self.counters.errors += 1
                    return False
                await asyncio.sleep(1.0 + attempt)
                attempt += 1
        return False

    async def _update(
        self, order_id: str, action: str, staff_id: int, *, retry_early: bool
    ) -> bool | None:
        """The same action as a Workflow Update (starter mode); None: too early, try again."""
        from temporalio.client import WorkflowUpdateFailedError

        from starter import workflow_id
        from workflows.contracts import StaffAction

        handle = self.submitter.client.get_workflow_handle(workflow_id(order_id))
        try:
            await handle.execute_update(action, StaffAction(staff_id=staff_id))
        except WorkflowUpdateFailedError as exc:
            reason = str(exc.cause or exc)
            if retry_early and "not assigned to anyone right now" in reason:
                return None
            self.counters.refused_because(f"{action}: {reason}"[:200])
            return False
        return True


# ---------------------------------------------------------------- resources


ROLES = ("worker", "activity-worker", "temporal", "postgres", "api", "noop-worker", "bench")


@dataclass
class Sampler:
    """Every `interval` seconds: CPU % (100 = one core) and RSS of each role's processes."""

    pids: Callable[[], dict[str, list[int]]]
    interval: float = 1.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    _cpu: dict[int, float] = field(default_factory=dict)
    _procs: dict[int, psutil.Process] = field(default_factory=dict)

    def _proc(self, pid: int) -> psutil.Process:
        p = self._procs.get(pid)
        if p is None:
            p = self._procs[pid] = psutil.Process(pid)
        return p

    def _tree(self, role: str, pids: list[int]) -> list[psutil.Process]:
        out = []
        for pid in pids:
            try:
                p = self._proc(pid)
                out.append(p)
                if role == "postgres":  # the postmaster's backends do the work
                    out += [self._proc(c.pid) for c in p.children(recursive=True)]
            except psutil.Error:
                continue
        return out

    def sample(self, since: float, last: float) -> None:
        now = time.monotonic()
        dt = max(now - last, 1e-6)
        last_wall = time.time() - dt
        row: dict[str, Any] = {"t": round(time.time() - since, 2)}
        roles = self.pids() | {"bench": [psutil.Process().pid]}
        for role, pids in roles.items():
            cpu = 0.0
            rss = 0
            for p in self._tree(role, pids):
                try:
                    t = p.cpu_times()
                    total = t.user + t.system
                    rss += p.memory_info().rss
                    born_since_last = p.create_time() >= last_wall
                except psutil.Error:
                    continue
                # A process seen for the first time counts from now on, unless it was born
                # during this interval (then all its CPU time belongs here).
                first = 0.0 if born_since_last else total
                cpu += total - self._cpu.get(p.pid, first)
                self._cpu[p.pid] = total
            row[role] = {"cpu": round(100 * cpu / dt, 1), "rss_mb": round(rss / 2**20, 1)}
        self.samples.append(row)

    async def run(self, stop: asyncio.Event, since: float) -> None:
        last = time.monotonic()
        self.sample(since, last)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            self.sample(since, last)
            last = time.monotonic()

    def summary(self, start: float = 0.0, end: float | None = None) -> dict[str, Any]:
        rows = [r for r in self.samples[1:] if r["t"] >= start and (end is None or r["t"] <= end)]
        out: dict[str, Any] = {}
        for role in ROLES:
            values = [r[role] for r in rows if role in r]
            if not values:
                continue
            cpu = [v["cpu"] for v in values]
            rss = [v["rss_mb"] for v in values]
            out[role] = {
                "cpu_mean_pct": round(statistics.fmean(cpu), 1),
                "cpu_peak_pct": round(max(cpu), 1),
                "rss_peak_mb": round(max(rss), 1),
                "rss_end_mb": round(rss[-1], 1),
            }
        return out


# ---------------------------------------------------------------- figures


def percentiles(values: list[float], qs: Iterable[int] = (50, 95, 99)) -> dict[str, Any]:
    """Nearest-rank percentiles, in seconds, with the count and the maximum."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    out: dict[str, Any] = {"n": len(ordered)}
    for q in qs:
        rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
        out[f"p{q}"] = round(ordered[rank - 1], 3)
    out["max"] = round(ordered[-1], 3)
    return out


async def progress_counts(db: Db, prefix: str) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT count(*), count(*) FILTER (WHERE round >= 1),"
        " count(*) FILTER (WHERE status = 'completed'), COALESCE(min(round), 0),"
        " count(*) FILTER (WHERE status IN ('assigned', 'escalated', 'accepted'))"
        " FROM dispatch_order WHERE id LIKE %s",
        (prefix + "-%",),
        tries=1,
    )
    notified = await db.fetch(
        "SELECT count(DISTINCT order_id) FROM notification"
        " WHERE order_id LIKE %s AND kind = 'assigned' AND round = 1 AND status = 'sent'",
        (prefix + "-%",),
        tries=1,
    )
    total, assigned, completed, min_round, open_ = rows[0]
    return {
        "recorded": int(total),
        "assigned": int(assigned),
        "completed": int(completed),
        "min_round": int(min_round),
        "open": int(open_),
        "notified": int(notified[0][0]),
    }


async def collect_metrics(db: Db, submitter: Submitter) -> dict[str, Any]:
    """Latencies and timer lateness from the database timestamps of this run's orders."""
    prefix = submitter.prefix + "-%"
    orders = await db.fetch(
        """
        SELECT o.id, extract(epoch FROM o.created_at), extract(epoch FROM a1.assigned_at),
               (SELECT extract(epoch FROM min(n.sent_at)) FROM notification n
                 WHERE n.order_id = o.id AND n.kind = 'assigned' AND n.round = 1
                   AND n.status = 'sent')
          FROM dispatch_order o
          LEFT JOIN assignment a1 ON a1.order_id = o.id AND a1.round = 1
         WHERE o.id LIKE %s
        """,
        (prefix,),
    )
    timeouts = await db.fetch(
        """
        SELECT a.order_id, a.round, extract(epoch FROM a.accept_deadline),
               extract(epoch FROM a.closed_at), extract(epoch FROM b.assigned_at)
          FROM assignment a
          LEFT JOIN assignment b ON b.order_id = a.order_id AND b.round = a.round + 1
         WHERE a.order_id LIKE %s AND a.outcome = 'timed_out'
        """,
        (prefix,),
    )
    submitted_at = {s.order_id: s.submitted_at for s in submitter.submissions}
    per_order = []
    for order_id, created, assigned, notified in orders:
        sub = submitted_at.get(order_id)
        per_order.append(
            {
                "order_id": order_id,
                "submitted": sub,
                "created": float(created),
                "assigned": float(assigned) if assigned is not None else None,
                "notified": float(notified) if notified is not None else None,
            }
        )

    def spans(start: str, end: str) -> list[float]:
        return [o[end] - o[start] for o in per_order if o[start] is not None and o[end] is not None]

    timer_late = [float(c) - float(d) for _, _, d, c, _ in timeouts if c is not None]
    reassign_late = [float(b) - float(d) for _, _, d, _, b in timeouts if b is not None]
    t0 = min((s.submitted_at for s in submitter.submissions), default=0.0)
    return {
        "latency_s": {
            "created_to_assigned": percentiles(spans("created", "assigned")),
            "created_to_notified": percentiles(spans("created", "notified")),
            "submitted_to_assigned": percentiles(spans("submitted", "assigned")),
            "submitted_to_notified": percentiles(spans("submitted", "notified")),
        },
        "timers": {
            "accept_timeouts": len(timeouts),
            "timer_lateness_s": percentiles(timer_late, (50, 95, 99)),
            "reassignment_lateness_s": percentiles(reassign_late, (50, 95, 99)),
        },
        "_per_order": per_order,
        "_timeouts": [
            {"deadline": float(d) - t0, "late": float(b) - float(d)}
            for _, _, d, _, b in timeouts
            if b is not None
        ],
        "_t0": t0,
    }


# ---------------------------------------------------------------- the drills' line


async def tally(db: Db, submitter: Submitter, state_dir: Any) -> dict[str, Any]:
    """Submitted / assigned / double-assigned / duplicated notices / lost, with evidence."""
    from notify.email import message_id_for
    from notify.sinks import read_duplicates, read_mail_index, read_sms_log

    prefix = submitter.prefix + "-%"
    accepted = {s.order_id for s in submitter.accepted}
    rows = await db.fetch(
        "SELECT order_id, round, staff_id, outcome FROM assignment WHERE order_id LIKE %s",
        (prefix,),
    )
    by_round: dict[tuple[str, int], set[int]] = defaultdict(set)
    rows_per_round: Counter[tuple[str, int]] = Counter()
    open_per_order: Counter[str] = Counter()
    assigned = set()
    for order_id, round_, staff_id, outcome in rows:
        assigned.add(order_id)
        by_round[(order_id, int(round_))].add(int(staff_id))
        rows_per_round[(order_id, int(round_))] += 1
        if outcome in ("offered", "accepted"):
            open_per_order[order_id] += 1
    double: dict[str, str] = {}
    for order_id, n in open_per_order.items():
        if n > 1:
            double[order_id] = f"{n} open assignments"
    for (order_id, round_), n in rows_per_round.items():
        if n > 1:
            double[order_id] = f"{n} assignments in round {round_}"

    notices = await db.fetch(
        "SELECT idempotency_key, order_id, round, staff_id, kind, channel, status,"
        " in_doubt_recoveries FROM notification WHERE order_id LIKE %s",
        (prefix,),
    )
    key_of_message = {message_id_for(k): k for k, *_ in notices}
    mail = [m for m in read_mail_index(state_dir) if m.get("message_id") in key_of_message]
    sms = [
        m
        for m in read_sms_log(state_dir)
        if str(m.get("idempotency_key", "")).startswith(submitter.prefix + "-")
    ]
    # Copies the sinks dropped as already received: re-sends of a hand-over in doubt.
    dropped = [
        m for m in read_duplicates(state_dir, "mail") if m.get("message_id") in key_of_message
    ] + [
        m
        for m in read_duplicates(state_dir, "sms")
        if str(m.get("idempotency_key", "")).startswith(submitter.prefix + "-")
    ]
    mail_copies = Counter(str(m["message_id"]) for m in mail)
    sms_copies = Counter(str(m["idempotency_key"]) for m in sms)
    duplicated = {key_of_message[k]: n for k, n in mail_copies.items() if n > 1}
    duplicated |= {k: n for k, n in sms_copies.items() if n > 1}
    # An "assigned" notice received for someone who was never that round's assignee.
    received_keys = set(sms_copies) | {key_of_message[k] for k in mail_copies}
    for key in received_keys:
        order_id, round_, staff, _channel, kind = (key.split(":") + [""] * 5)[:5]
        if kind == "assigned" and round_.isdigit() and staff.isdigit():
            holders = by_round.get((order_id, int(round_)), set())
            if int(staff) not in holders:
                double[order_id] = (
                    f"'assigned' notice to staff {staff}, round {round_};"
                    f" holder(s) {sorted(holders)}"
                )
    statuses = Counter(str(n[6]) for n in notices)
    sent_keys = {str(n[0]) for n in notices if n[6] == "sent"}
    not_received = sorted(sent_keys - received_keys)
    lost = sorted(accepted - assigned)
    return {
        "submitted": len(accepted),
        "submit_failures": len(submitter.submissions) - len(accepted),
        "assigned": len(accepted & assigned),
        "double_assigned": len(double),
        "double_assigned_evidence": dict(list(double.items())[:20]),
        "notices_duplicated": sum(n - 1 for n in duplicated.values()),
        "duplicated_keys": dict(list(duplicated.items())[:20]),
        "lost": len(lost),
        "lost_orders": lost[:20],
        "notice_status": dict(statuses),
        "notices_sent_not_received": len(not_received),
        "notices_sent_not_received_keys": not_received[:20],
        "notices_failed": statuses.get("failed", 0),
        "in_doubt_recoveries": sum(int(n[7]) for n in notices),
        "resends_dropped_by_receiver": len(dropped),
        "sink_received": {"mail": len(mail), "sms": len(sms)},
    }


def tally_line(t: dict[str, Any]) -> str:
    """The drills' line; after it, what the five figures rest on (see bench/drills.py)."""
    return (
        f"orders submitted={t['submitted']} assigned={t['assigned']} "
        f"double-assigned={t['double_assigned']} notices duplicated={t['notices_duplicated']} "
        f"lost={t['lost']}  (notices failed={t['notices_failed']}, "
        f"sent-not-received={t['notices_sent_not_received']}, "
        f"in-doubt recoveries={t['in_doubt_recoveries']}, "
        f"re-sends dropped by receiver={t['resends_dropped_by_receiver']})"
    )


# ---------------------------------------------------------------- waiting, bounded


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, deadline: float, every: float = 1.0
) -> bool:
    """Poll `check` until it is true or the monotonic `deadline` passes; True if it came true."""
    while True:
        try:
            if await check():
                return True
        except psycopg.Error:
            pass
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)

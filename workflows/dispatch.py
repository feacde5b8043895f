"""The dispatch loop: route, select, notify, wait, reassign, escalate — until handled.

One loop serves every order type; the three workflow types at the bottom differ only in
how they begin. Read `OrderDispatch._dispatch` top to bottom: it is the patent's claim.

Determinism: all I/O is in activities; time is `workflow.now()`; the random draw of the
selection happens inside the `assign_order` activity, whose result is in history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import orders as acts
    from activities.notices import NoticeRequest, send_notice
    from workflows import search_attributes as sa
    from workflows.contracts import (
        AssignRequest,
        AssignResult,
        CurrentAssignment,
        DispatchState,
        ManagerAction,
        OrderInput,
        OrderRequest,
        OrderView,
        Rule,
        StaffAction,
        StaffCheck,
        StoreContacts,
        Transition,
    )

T = TypeVar("T")

# Database steps retry forever with backoff: an outage delays an order, never loses it.
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
# Notices decide their own final failure (see activities/notices.py); Temporal only paces them.
NOTICE_TIMEOUT = timedelta(seconds=60)
NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=60)
)
# Read-only lookups run as local activities (see OrderDispatch._lookup).
LOCAL_LOOKUPS = "local-lookups"
# With no duty slot ahead at all, look again this often (the roster signal wakes us sooner).
ROSTER_RECHECK = timedelta(hours=6)
# Since this patch: a manager's request that lands mid-selection is served, continue-as-new
# never waits on a manager's update or on notices in flight, an on-duty store whose people
# are all at their cap backs off instead of spinning, an imported order's holder gets the
# reminder notice, every take-back and wish wait is published to the UI, and the rule read
# is the sub-site's own where its admin set one.
SERVE_REQUESTS = "serve-requests"
# Someone is on duty but nobody can take the order (capacity caps): look again after this,
# doubling per wait up to the maximum (the roster signal and a manager's action wake sooner).
BUSY_RECHECK = timedelta(seconds=30)
BUSY_RECHECK_MAX = timedelta(minutes=10)
NOTICE_HANDOVER_WAIT = timedelta(seconds=10)
# Since this patch the accept deadline runs from when the assignee was told (their first
# notice of the round delivered), not from the selection: under a backlog (a worker that
# restarts, a slow relay) a notice that leaves late no longer costs the person their chance,
# and the reassignments that would cause — each one more load — no longer feed the backlog.
DEADLINE_FROM_NOTICE = "deadline-from-notice"
TOLD_WAIT_MAX = timedelta(minutes=2)  # every channel down: the clock starts anyway
DEADLINE_SLACK = timedelta(seconds=1)  # told within this of the selection: nothing to move


def _delivered(notice: asyncio.Task[Any]) -> bool:
    """A notice activity that finished with the message sent (its result is in history)."""
    if not notice.done() or notice.cancelled() or notice.exception() is not None:
        return False
    return bool(notice.result().status == "sent")


def _rejected(message: str, kind: str) -> ApplicationError:
    """An update refused before anything happened; `kind` maps to the HTTP status."""
    return ApplicationError(message, type=kind, non_retryable=True)


class OrderDispatch:
    """State, handlers and the loop shared by the three order workflows."""

    async def run(self, start: OrderInput) -> OrderView:
        """Each workflow type declares `@workflow.run` itself and calls `_dispatch`."""
        raise NotImplementedError

    def __init__(self) -> None:
        self.order: OrderRequest | None = None
        self.state = DispatchState()
        self.rule: Rule | None = None
        self._waiting = False
        # A manager's re-dispatch (staff_id None) or reassign-to, served by the next round.
        self._requested: ManagerAction | None = None
        self._settled: ManagerAction | None = None  # the request the last round served
        # A selection is under way: its row may be committed before we hold its result.
        self._selecting = False
        self._manager_busy = False  # a manager's update is between its validator and its round
        self._closing = False  # continue-as-new has begun: manager updates wait for the new run
        self._serves_requests = False  # the SERVE_REQUESTS patch holds for this run
        self._roster_changed = False
        self._db = asyncio.Lock()  # projection writes from handlers and loop stay in order
        self._notices: list[asyncio.Task[Any]] = []
        self._telling: list[asyncio.Task[Any]] = []  # this round's notices to the assignee
        self._published: dict[str, Any] = {}
        self._history_limit = 1500

    # ------------------------------------------------------------ the loop

    async def _dispatch(self, start: OrderInput) -> OrderView:
        self.order = start.order
        self.state = start.state or DispatchState()
        self._history_limit = start.history_limit
        self._serves_requests = workflow.patched(SERVE_REQUESTS)
        if self.state.routed is None:
            self.state.routed = await self._step(
                acts.route_order, self.order, summary="route to a store"
            )
        self._publish()
        if self.order.type == "assigned_unprocessed" and not self.state.imported_adopted:
            await self._adopt_imported_assignment()

        while not self.state.completed:
            if self._history_is_long() and await self._ready_to_continue_as_new():
                await self._continue_as_new()
            self.rule = await self._load_rule()
            if self.state.assignment is None and not await self._assign_next(self.rule):
                continue  # nobody could take it: we waited for a shift, try again
            await self._wait_for_assignee(self.rule)

        await self._drain_notices()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view()

    async def _assign_next(self, rule: Rule) -> bool:
        """Start the next round: escalate if due, select someone, tell them. False if nobody."""
        if not self.state.escalated and self.state.round >= rule.max_rounds:
            await self._escalate()
        if (
            self.state.escalated
            and rule.after_escalation == "wait_for_manager"
            and self._requested is None
        ):
            await workflow.wait_condition(lambda: self._requested is not None)
        forced, self._requested = self._requested, None
        # From here on a roster change must wake a wait for a shift (no lost wake-ups).
        self._roster_changed = False
        if forced is None and self._wish_pending() and workflow.patched("preferred-consultant"):
            forced = await self._customer_wish(rule)
            if forced is None:  # a manager may have spoken while we waited for the wish
                forced, self._requested = self._requested, None
        next_round = self.state.round + 1
        self._selecting = True
        result = await self._select(next_round, rule, forced)
        if result.staff_id is None and forced is not None and forced.actor == "customer":
            result = await self._select(next_round, rule, None)  # they left meanwhile
        if result.staff_id is None or result.accept_deadline is None:
            self._selecting = False
            self._settled = forced
            await self._wait_for_shift()
            return False
        self.state.round = next_round
        self.state.waits = 0
        self._waiting = False
        self.state.assignment = CurrentAssignment(
            staff_id=result.staff_id,
            staff_name=result.staff_name,
            round=next_round,
            status="offered",
            accept_deadline=result.accept_deadline,
        )
        self._selecting = False
        self._settled = forced
        self._publish()
        imported = forced is not None and forced.actor == "import"
        self._telling = self._notify(
            "reminder" if imported and self._serves_requests else "assigned",
            [result.staff_id],
            rule,
            deadline=result.accept_deadline.isoformat(),
        )
        return True

    async def _select(self, round_: int, rule: Rule, forced: ManagerAction | None) -> AssignResult:
        """Choose and record this round's assignee (the named one, if any)."""
        async with self._db:  # after any projection write a handler has under way
            return await self._step(
                acts.assign_order,
                AssignRequest(
                    order_id=self._order_id(),
                    store_id=self._store_id(),
                    round=round_,
                    at=workflow.now(),
                    rule=rule,
                    previous=list(self.state.previous),
                    forced_staff_id=forced.staff_id if forced else None,
                    forced_reason=f"by {forced.actor}: {forced.reason}" if forced else "",
                ),
                summary=f"select staff, round {round_}",
            )

    def _wish_pending(self) -> bool:
        routed = self.state.routed
        return bool(
            routed
            and routed.preferred_staff_id
            and not self.state.wish_done
            and self.state.round == 0
        )

    async def _customer_wish(self, rule: Rule) -> ManagerAction | None:
        """The customer asked for a consultant: them if free now, else wait or fall back."""
        self.state.wish_done = True
        assert self.state.routed is not None and self.state.routed.preferred_staff_id
        wanted = self.state.routed.preferred_staff_id
        summary = f"is preferred consultant {wanted} free"
        status = await self._lookup(
            acts.consultant_available, wanted, workflow.now(), summary=summary
        )
        starts = status.next_duty_start
        if (
            not status.available
            and rule.wish_fallback == "wait_for_shift"
            and starts
            and starts - workflow.now() <= timedelta(seconds=rule.wish_wait_seconds)
        ):
            await self._record(
                "waiting",
                occasion="wish",
                staff_id=wanted,
                note=f"{status.reason}; their shift starts {starts.isoformat()}",
            )
            self._waiting = True
            if self._serves_requests:
                self._publish()
            await self._until(
                lambda: self._requested is not None or self._roster_changed,
                starts,
                f"shift of preferred consultant {wanted}",
            )
            if self._requested is not None:
                return None
            status = await self._lookup(
                acts.consultant_available, wanted, workflow.now(), summary=summary
            )
        if status.available:
            return ManagerAction(
                actor="customer", staff_id=wanted, reason="the customer's preferred consultant"
            )
        await self._record(
            "wish_fallback", staff_id=wanted, note=f"{status.reason}: given to the store instead"
        )
        return None

    async def _wait_for_assignee(self, rule: Rule) -> None:
        """Remind, then wait for accept and for processing; a missed deadline is a timeout."""
        a = self.state.assignment
        assert a is not None
        untouched = lambda: self._offered(a)  # noqa: E731
        telling, self._telling = self._telling, []
        if telling and untouched() and workflow.patched(DEADLINE_FROM_NOTICE):
            await self._start_clock_when_told(a, rule, telling)
        remind_at = a.accept_deadline - timedelta(seconds=rule.reminder_before_seconds)
        if (
            not a.reminded
            and rule.reminder_before_seconds > 0
            and remind_at > workflow.now()
            and await self._until(
                lambda: not untouched(),
                remind_at,
                f"reminder for staff {a.staff_id}, round {a.round}",
            )
        ):
            a.reminded = True
            self._notify("reminder", [a.staff_id], rule, deadline=a.accept_deadline.isoformat())
        if untouched() and await self._until(
            lambda: not untouched(),
            a.accept_deadline,
            f"accept deadline for staff {a.staff_id}, round {a.round}",
        ):
            await self._time_out(a, rule, stage="accept")
            return
        if self.state.assignment is a and a.status == "accepted" and a.process_deadline:
            accepted = lambda: self.state.assignment is a and a.status == "accepted"  # noqa: E731
            if await self._until(
                lambda: not accepted(),
                a.process_deadline,
                f"processing deadline for staff {a.staff_id}, round {a.round}",
            ):
                await self._time_out(a, rule, stage="process")

    async def _start_clock_when_told(
        self, a: CurrentAssignment, rule: Rule, telling: list[asyncio.Task[Any]]
    ) -> None:
        """Wait until one notice reached the assignee (or all settled), then give them the
        rule's full accept timeout from that moment; the projection hears of a later deadline."""
        untouched = lambda: self._offered(a)  # noqa: E731
        told = lambda: any(map(_delivered, telling)) or all(n.done() for n in telling)  # noqa: E731
        await self._until(
            lambda: told() or not untouched(),
            workflow.now() + TOLD_WAIT_MAX,
            f"staff {a.staff_id} told of round {a.round}",
        )
        deadline = workflow.now() + timedelta(seconds=rule.accept_timeout_seconds)
        if not untouched() or deadline - a.accept_deadline < DEADLINE_SLACK:
            return
        late = (deadline - a.accept_deadline).total_seconds()
        a.accept_deadline = deadline
        await self._record(
            "deadline_moved",
            round=a.round,
            staff_id=a.staff_id,
            accept_deadline=deadline,
            note=f"staff {a.staff_id} was told {late:.0f} s after the selection",
        )

    async def _time_out(self, a: CurrentAssignment, rule: Rule, *, stage: str) -> None:
        """Record the timeout, tell the manager, pause for the reassignment period."""
        self.state.assignment = None
        self._remember_previous(a.staff_id)
        await self._record(
            "timed_out",
            round=a.round,
            staff_id=a.staff_id,
            note=f"{stage} deadline",
        )
        self._publish()
        contacts = await self._contacts()
        self._notify(
            "timed_out",
            contacts.manager_ids,
            rule,
            timed_out_staff_name=a.staff_name,
            timed_out_staff_id=a.staff_id,
            stage=stage,
        )
        if rule.reassign_period_seconds > 0:
            await self._until(
                lambda: self._requested is not None,
                workflow.now() + timedelta(seconds=rule.reassign_period_seconds),
                f"reassignment period before round {self.state.round + 1}",
            )

    async def _escalate(self) -> None:
        """Past the rule's rounds: the manager and the sub-site admin are told, once."""
        self.state.escalated = True
        await self._record(
            "escalated",
            round=self.state.round,
        )
        self._publish()
        contacts = await self._contacts()
        assert self.rule is not None
        self._notify("escalated", contacts.manager_ids + contacts.admin_ids, self.rule)

    async def _wait_for_shift(self) -> None:
        """Nobody can take it now: tell the manager (once per wait) and sleep until a shift."""
        self.state.waits += 1
        self._waiting = True
        now = workflow.now()
        next_start = await self._lookup(
            acts.next_duty_start, self._store_id(), now, summary="find next duty window"
        )
        await self._record(
            "waiting",
            at=now,
            round=self.state.round,
            occasion=str(self.state.waits),
            note=f"next duty window {next_start}",
        )
        self._publish()
        if self.state.waits == 1 and self.rule is not None:
            contacts = await self._contacts()
            self._notify(
                "waiting",
                contacts.manager_ids,
                self.rule,
                occasion=f"w{self.state.round}",
                next_shift=next_start.isoformat() if next_start else None,
            )
        until = next_start if next_start else now + ROSTER_RECHECK
        if self._serves_requests and until <= now:  # on duty, but all at their cap
            backoff = BUSY_RECHECK * 2 ** min(self.state.waits - 1, 10)
            until = now + min(backoff, BUSY_RECHECK_MAX)
        await self._until(
            lambda: self._roster_changed or self._requested is not None,
            max(until, now),
            f"next duty window at {until.isoformat()}",
        )

    async def _adopt_imported_assignment(self) -> None:
        """Assigned-unprocessed: keep the old assignee, remind them, then go on as usual."""
        self.state.imported_adopted = True
        assert self.order is not None
        if self.order.assignee_id is None:
            return
        self._requested = ManagerAction(
            actor="import",
            staff_id=self.order.assignee_id,
            reason="assigned in the previous system",
        )
        self.rule = await self._load_rule()
        if await self._assign_next(self.rule) and self.state.assignment is not None:
            self.state.assignment.reminded = True  # the first notice was the reminder

    # ------------------------------------------------------------ staff and manager actions

    @workflow.update
    async def accept(self, action: StaffAction) -> OrderView:
        if self._selecting:  # admitted while the round was being recorded: wait, check again
            await workflow.wait_condition(lambda: not self._selecting)
            self._validate_accept(action)
        a = self.state.assignment
        assert a is not None and self.rule is not None
        a.status = "accepted"
        a.process_deadline = workflow.now() + timedelta(seconds=self.rule.process_timeout_seconds)
        self._publish()
        await self._record(
            "accepted",
            round=a.round,
            staff_id=a.staff_id,
            actor=action.actor or f"staff:{a.staff_id}",
            process_deadline=a.process_deadline,
        )
        return self._view()

    @accept.validator
    def _validate_accept(self, action: StaffAction) -> None:
        if self._selecting and self.state.assignment is None:
            self._open_order()
            return  # the assignee may have seen the new round already; the handler waits
        a = self._current_for(action.staff_id)
        if a.status != "offered":
            raise _rejected("the order is already accepted", "Conflict")
        if self.rule is None:  # a fresh run (after continue-as-new) reads its rule first
            raise _rejected("the order is resuming; try again in a moment", "Conflict")

    @workflow.update
    async def complete(self, action: StaffAction) -> OrderView:
        a = self.state.assignment
        assert a is not None
        self.state.completed = True
        a.status = "completed"
        self._publish()
        await self._record(
            "completed",
            round=a.round,
            staff_id=a.staff_id,
            actor=action.actor or f"staff:{a.staff_id}",
            note=action.reason,
        )
        return self._view()

    @complete.validator
    def _validate_complete(self, action: StaffAction) -> None:
        a = self._current_for(action.staff_id)
        if a.status != "accepted":
            raise _rejected("accept the order before marking it processed", "Conflict")

    @workflow.update
    async def decline(self, action: StaffAction) -> OrderView:
        a = self.state.assignment
        assert a is not None
        self.state.assignment = None
        self._remember_previous(a.staff_id)
        self._publish()
        await self._record(
            "declined",
            round=a.round,
            staff_id=a.staff_id,
            actor=action.actor or f"staff:{a.staff_id}",
            note=action.reason,
        )
        return self._view()

    @decline.validator
    def _validate_decline(self, action: StaffAction) -> None:
        self._current_for(action.staff_id)

    @workflow.update
    async def reassign(self, action: ManagerAction) -> OrderView:
        """A manager names the next assignee (an active consultant of the order's store)."""
        assert action.staff_id is not None
        self._claim_manager_request()
        try:
            await self._lookup(
                acts.check_staff_in_store,
                StaffCheck(staff_id=action.staff_id, store_id=self._store_id()),
                summary=f"check staff {action.staff_id} belongs to the store",
            )
            if self.state.completed:
                raise _rejected("the order has been processed already", "Conflict")
            return await self._serve(action)
        finally:
            self._manager_busy = False

    @reassign.validator
    def _validate_reassign(self, action: ManagerAction) -> None:
        self._open_order()
        if action.staff_id is None:
            raise _rejected("name the staff member to reassign to", "Invalid")
        a = self.state.assignment
        if a is not None and a.staff_id == action.staff_id:
            raise _rejected(f"the order is already with staff {action.staff_id}", "Conflict")
        self._manager_may_act()

    @workflow.update
    async def redispatch(self, action: ManagerAction) -> OrderView:
        """A manager asks for a new selection now (the current assignee is skipped)."""
        self._claim_manager_request()
        try:
            return await self._serve(action)
        finally:
            self._manager_busy = False

    @redispatch.validator
    def _validate_redispatch(self, action: ManagerAction) -> None:
        self._open_order()
        self._manager_may_act()

    def _claim_manager_request(self) -> None:
        """From here a second manager action is refused. Checked again in the handler: two
        updates that arrive together both pass their validators before either handler runs."""
        if self._serves_requests:
            self._manager_may_act()
        self._manager_busy = True

    def _manager_may_act(self) -> None:
        """One manager request at a time, and none while the run hands over to a new one."""
        if self._requested is not None or self._manager_busy:
            raise _rejected("a re-dispatch of this order is already under way", "Conflict")
        if self._closing:
            raise _rejected("the order is moving to a fresh run; try again in a moment", "Conflict")

    @workflow.signal
    def roster_changed(self) -> None:
        """The store's roster changed: an order waiting for a shift looks again now."""
        self._roster_changed = True

    @workflow.query(name="state")
    def live_state(self) -> OrderView:
        """The order as it stands now (status, store, assignee, round, deadlines)."""
        return self._view()

    # ------------------------------------------------------------ helpers

    async def _serve(self, action: ManagerAction) -> OrderView:
        """Hand a manager's request to the loop; answer once a round has served it."""
        self._requested = action  # before the take-back wakes the loop, so the loop sees it
        if self._serves_requests and self._selecting:
            # The round being chosen did not see the request: let it land, then take it back.
            await workflow.wait_condition(lambda: not self._selecting)
        await self._take_back(action)
        await workflow.wait_condition(lambda: self._settled is action)
        return self._view()

    async def _take_back(self, action: ManagerAction) -> None:
        a = self.state.assignment
        if a is None:
            return
        self.state.assignment = None
        self._remember_previous(a.staff_id)
        if self._serves_requests:
            self._publish()
        await self._record(
            "reassigned",
            round=a.round,
            staff_id=a.staff_id,
            actor=action.actor,
            note=action.reason,
        )

    def _current_for(self, staff_id: int) -> CurrentAssignment:
        self._open_order()
        a = self.state.assignment
        if a is None:
            raise _rejected("the order is not assigned to anyone right now", "Conflict")
        if a.staff_id != staff_id:
            raise _rejected(
                f"only the current assignee (staff {a.staff_id}) may do this", "Forbidden"
            )
        return a

    def _open_order(self) -> None:
        if self.state.completed:
            raise _rejected("the order has been processed already", "Conflict")
        if self.state.routed is None:
            raise _rejected("the order is still being routed; try again in a moment", "Conflict")

    def _offered(self, a: CurrentAssignment) -> bool:
        """`a` is still this order's assignment, offered and not yet taken."""
        return self.state.assignment is a and a.status == "offered"

    def _remember_previous(self, staff_id: int) -> None:
        if staff_id not in self.state.previous:
            self.state.previous.append(staff_id)

    async def _until(self, woken: Callable[[], bool], deadline: datetime, summary: str) -> bool:
        """Wait for `woken()` or the deadline; True if the deadline came first."""
        remaining = (deadline - workflow.now()).total_seconds()
        if remaining <= 0:
            return not woken()
        try:
            await workflow.wait_condition(woken, timeout=remaining, timeout_summary=summary)
        except TimeoutError:
            return True
        return False

    async def _step(self, activity: Callable[..., Awaitable[T]], *args: Any, summary: str) -> T:
        """One database step, retried until the database answers."""
        result: T = await workflow.execute_activity(
            activity,
            args=list(args),
            summary=summary,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return result

    async def _lookup(self, activity: Callable[..., Awaitable[T]], *args: Any, summary: str) -> T:
        """A database read (load_rule may also insert the default rule, idempotently).

        Since the "local-lookups" patch it runs as a local activity: in the worker, recorded
        as a marker, no trip through the server's task queues (two of those fewer per
        reassignment). Orders started before keep the regular activity, so their histories
        replay unchanged."""
        if not workflow.patched(LOCAL_LOOKUPS):
            return await self._step(activity, *args, summary=summary)
        result: T = await workflow.execute_local_activity(
            activity,
            args=list(args),
            summary=summary,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return result

    async def _load_rule(self) -> Rule:
        """The rule in force for the order's sub-site (since the patch; head office's before)."""
        assert self.order is not None
        routed = self.state.routed
        if self._serves_requests and routed is not None and routed.subsite_id is not None:
            return await self._lookup(
                acts.load_rule,
                self.order.type,
                routed.subsite_id,
                summary=f"read allocation rule of sub-site {routed.subsite_code}",
            )
        return await self._lookup(acts.load_rule, self.order.type, summary="read allocation rule")

    async def _record(self, kind: str, *, at: datetime | None = None, **fields: Any) -> None:
        """Bring the database projection in step with a transition of this order."""
        transition = Transition(
            order_id=self._order_id(), kind=kind, at=at or workflow.now(), **fields
        )
        async with self._db:
            await self._step(
                acts.record_transition, transition, summary=f"record {transition.kind}"
            )

    async def _contacts(self) -> StoreContacts:
        return await self._lookup(
            acts.store_contacts, self._store_id(), summary="look up manager and admins"
        )

    def _notify(
        self,
        kind: str,
        staff_ids: list[int],
        rule: Rule,
        *,
        occasion: str = "",
        **context: str | int | None,
    ) -> list[asyncio.Task[Any]]:
        """Start one notice per recipient and channel; the loop's timers never wait for them
        (only, since DEADLINE_FROM_NOTICE, the accept clock starts once the assignee is told)."""
        routed = self.state.routed
        assert routed is not None
        fields: dict[str, str | int | None] = {
            "order_id": self._order_id(),
            "customer_name": routed.customer_name,
            "category": routed.category,
            "store_name": routed.store_name,
            "round": self.state.round,
            **context,
        }
        started: list[asyncio.Task[Any]] = []
        for staff_id in staff_ids:
            for channel in rule.channels.get(kind, []):
                started.append(
                    workflow.start_activity(
                        send_notice,
                        NoticeRequest(
                            kind=kind,
                            channel=channel,
                            order_id=self._order_id(),
                            round=self.state.round,
                            staff_id=staff_id,
                            context=fields,
                            occasion=occasion,
                        ),
                        summary=f"{kind} {channel} to staff {staff_id}, round {self.state.round}",
                        start_to_close_timeout=NOTICE_TIMEOUT,
                        retry_policy=NOTICE_RETRY,
                    )
                )
        self._notices = [n for n in self._notices if not n.done()] + started
        return started

    async def _drain_notices(self) -> None:
        # A notice that failed for good is recorded by its activity; it never fails the order.
        await asyncio.gather(*self._notices, return_exceptions=True)
        self._notices = []

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._history_limit
        )

    async def _ready_to_continue_as_new(self) -> bool:
        """Hand over only when nothing would make the hand-over hang or hold the order: a
        manager's update waits for a round of this run (serve it first), and a notice still
        retrying after NOTICE_HANDOVER_WAIT (a mail or SMS outage) defers the hand-over to a
        later round instead of delaying this one. Before the patch the run waited for both."""
        if not self._serves_requests:
            return True
        if self._requested is not None or self._manager_busy:
            return False
        settled = lambda: all(n.done() for n in self._notices)  # noqa: E731
        if settled():
            return True
        deadline = workflow.now() + NOTICE_HANDOVER_WAIT
        return not await self._until(settled, deadline, "notices in flight before continue-as-new")

    async def _continue_as_new(self) -> None:
        self._closing = True
        await self._drain_notices()
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self.order is not None
        workflow.continue_as_new(
            OrderInput(
                order=self.order, state=replace(self.state), history_limit=self._history_limit
            )
        )

    def _order_id(self) -> str:
        assert self.order is not None
        return self.order.order_id

    def _store_id(self) -> int:
        routed = self.state.routed
        if routed is None or routed.store_id is None:
            raise ApplicationError(
                "the order has no store; add a default store", non_retryable=True
            )
        return routed.store_id

    def _status(self) -> str:
        a = self.state.assignment
        if self.state.completed:
            return "completed"
        if a is not None and a.status == "accepted":
            return "accepted"
        if self.state.escalated:
            return "escalated"
        if a is not None:
            return "assigned"
        return "waiting" if self._waiting else "received"

    def _view(self) -> OrderView:
        a = self.state.assignment
        routed = self.state.routed
        assert self.order is not None
        return OrderView(
            order_id=self.order.order_id,
            type=self.order.type,
            status=self._status(),
            store_id=routed.store_id if routed else None,
            assignee_id=a.staff_id if a else None,
            round=self.state.round,
            escalated=self.state.escalated,
            accept_deadline=a.accept_deadline if a else None,
            process_deadline=a.process_deadline if a else None,
        )

    def _publish(self) -> None:
        """Upsert the search attributes that changed, and the live details shown in the UI."""
        view = self._view()
        routed = self.state.routed
        wanted: dict[str, Any] = {
            "store": str(view.store_id) if view.store_id else None,
            "subsite": routed.subsite_code if routed and routed.subsite_code else None,
            "assignee": str(view.assignee_id) if view.assignee_id else None,
            "status": view.status,
            "reassigns": max(0, view.round - 1),
        }
        keys: dict[str, SearchAttributeKey[Any]] = {
            "store": sa.STORE_ID,
            "subsite": sa.SUB_SITE,
            "assignee": sa.ASSIGNEE_ID,
            "status": sa.ORDER_STATUS,
            "reassigns": sa.REASSIGN_COUNT,
        }
        updates: list[SearchAttributeUpdate[Any]] = []
        for name, value in wanted.items():
            if self._published.get(name, "unset") != value:
                key = keys[name]
                updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = wanted
        holder = f"staff {view.assignee_id}" if view.assignee_id else "nobody"
        workflow.set_current_details(
            f"**{view.status}** · store {view.store_id} · with {holder} · round {view.round}"
            + (" · escalated" if view.escalated else "")
        )


@workflow.defn
class NewOrderWorkflow(OrderDispatch):
    """A order just placed online."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        return await self._dispatch(start)


@workflow.defn
class UnassignedOrderWorkflow(OrderDispatch):
    """An order nobody could take, or a backlog imported from an older system."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        return await self._dispatch(start)


@workflow.defn
class AssignedUnprocessedOrderWorkflow(OrderDispatch):
    """An order imported already assigned to someone who has not handled it."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        return await self._dispatch(start)


WORKFLOW_FOR_TYPE: dict[str, type[OrderDispatch]] = {
    "new": NewOrderWorkflow,
    "unassigned": UnassignedOrderWorkflow,
    "assigned_unprocessed": AssignedUnprocessedOrderWorkflow,
}
ORDER_WORKFLOWS = list(WORKFLOW_FOR_TYPE.values())

"""The dispatch loop: route, select, notify, wait, reassign, escalate — until handled.

One loop serves every order type; the three workflow types at the bottom differ only in
how they begin. Read `OrderDispatch._dispatch` top to bottom: it is the patent's claim. The
order is always in one `Phase` (dispatch/phases.py); `next_phase` decides the next one at
the top of every turn, and the status, search attributes and live details are read from it.
What people send the order (accept, decline, reassign, cancel ...) is in workflows/handlers.py.

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
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities import orders as acts
    from activities.notices import NoticeRequest, send_notice
    from activities.webhooks import StatusEvent, send_status_webhook
    from dispatch.phases import (
        ENDED,
        NEXT_SHIFT,
        NO_ROSTER,
        NOBODY_FREE,
        WISH,
        Phase,
        Situation,
        escalation_due,
        next_phase,
        status_of,
    )
    from workflows import search_attributes as sa
    from workflows.contracts import (
        AssignRequest,
        AssignResult,
        Cancellation,
        CurrentAssignment,
        DispatchState,
        ManagerAction,
        OrderInput,
        OrderRequest,
        OrderView,
        PendingRequest,
        Rule,
        StoreContacts,
        Transition,
    )
    from workflows.handlers import OrderHandlers

T = TypeVar("T")

# Database steps retry forever with backoff: an outage delays an order, never loses it. A
# refusal of the data itself (a constraint, a value out of range) no retry can fix: it fails
# at once, and the order is escalated as stuck (OrderDispatch._stuck) instead of retrying
# in silence for ever.
REFUSED_BY_THE_DATABASE = ("IntegrityError", "DataError")
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=list(REFUSED_BY_THE_DATABASE),
)
# Notices decide their own final failure (see activities/notices.py); Temporal only paces them.
NOTICE_TIMEOUT = timedelta(seconds=60)
NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=60)
)
# Webhooks, like notices, decide their own final failure; Temporal paces the retries.
WEBHOOK_TIMEOUT = timedelta(seconds=30)
# With no duty slot ahead at all, look again this often (the roster signal wakes us sooner).
ROSTER_RECHECK = timedelta(hours=6)
# Someone is on duty but nobody can take the order (capacity caps): look again after this,
# doubling per wait up to the maximum (the roster signal and a manager's action wake sooner).
BUSY_RECHECK = timedelta(seconds=30)
BUSY_RECHECK_MAX = timedelta(minutes=10)
NOTICE_HANDOVER_WAIT = timedelta(seconds=10)
# The accept deadline runs from when the assignee was told (their first notice of the round
# delivered), not from the selection: under a backlog (a worker that restarts, a slow relay)
# a notice that leaves late does not cost the person their chance, and the reassignments
# that would cause — each one more load — do not feed the backlog.
TOLD_WAIT_MAX = timedelta(minutes=2)  # every channel down: the clock starts anyway
DEADLINE_SLACK = timedelta(seconds=1)  # told within this of the selection: nothing to move


def _refusal(exc: FailureError) -> str | None:
    """What the database refused, if that is why a step failed (None: anything else)."""
    cause: BaseException | None = exc
    while isinstance(cause, FailureError):
        if isinstance(cause, ApplicationError) and cause.type in REFUSED_BY_THE_DATABASE:
            return f"{cause.type}: {cause.message}"
        cause = cause.cause
    return None


def _delivered(notice: asyncio.Task[Any]) -> bool:
    """A notice activity that finished with the message sent (its result is in history)."""
    if not notice.done() or notice.cancelled() or notice.exception() is not None:
        return False
    return bool(notice.result().status == "sent")


class OrderDispatch(OrderHandlers):
    """State and the loop shared by the three order workflows (handlers: the mixin)."""

    @workflow.init
    def __init__(self, start: OrderInput) -> None:
        self.order: OrderRequest = start.order
        self.state: DispatchState = start.state or DispatchState()
        self.history_limit = start.history_limit
        self.webhooks = start.webhooks
        self.rule: Rule | None = None  # read again at every turn
        self.pending: PendingRequest | None = None
        self.roster_changed_for: set[int] | None = None
        self._db = asyncio.Lock()  # projection writes from handlers and loop stay in order
        self._notices: list[asyncio.Task[Any]] = []
        self._telling: list[asyncio.Task[Any]] = []  # this round's notices to the assignee
        self._published: dict[str, Any] = {}

    async def run(self, start: OrderInput) -> OrderView:
        """Each workflow type declares `@workflow.run` itself and calls `_dispatch`."""
        raise NotImplementedError

    # ------------------------------------------------------------ the loop

    async def _dispatch(self) -> OrderView:
        try:
            await self._route()
            while self.state.phase not in ENDED:
                if self._history_is_long() and await self._ready_to_continue_as_new():
                    self._continue_as_new()
                try:
                    await self._turn()
                except FailureError as exc:
                    refused = _refusal(exc)
                    if refused is None:
                        raise
                    await self._stuck(refused)
        except asyncio.CancelledError:
            # "Request Cancellation" in the Temporal UI, `temporal workflow cancel`: end the
            # order as cancelled everywhere, then let the run end as cancelled too.
            if self.state.phase not in ENDED:
                await self._cancel("temporal", "other", "cancellation requested in Temporal")
            await self._drain_notices()
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain_notices()  # after the handlers: a cancel tells the holder last
        return self._view()

    async def _turn(self) -> None:
        """One turn of the loop: what the phase asks for, until something changes it."""
        self.rule = rule = await self._load_rule()
        phase = self._next_phase()
        if phase == Phase.SELECTING:
            await self._select_next(rule)
        elif phase == Phase.WAITING_FOR_MANAGER:
            self._enter(phase)
            await workflow.wait_condition(lambda: self._request_ready() or self._ended())
        elif phase in (Phase.OFFERED, Phase.ACCEPTED):
            await self._wait_for_assignee(rule)

    async def _stuck(self, refused: str) -> None:
        """A step the database refused: escalate with the reason, and wait for a manager
        (their re-dispatch or reassign-to, or a cancel) instead of retrying in silence."""
        if self.pending is not None and not self.pending.served:
            self.pending.served = True  # the request's round was the step that failed
            self.pending = None
        self.state.escalated = True
        self._enter(Phase.WAITING_FOR_MANAGER, f"stuck: {refused}"[:64])
        await self._record("stuck", round=self.state.round, note=refused[:500])
        await self._record("escalated", round=self.state.round, note=f"stuck: {refused}"[:500])
        contacts = await self._contacts()
        if self.rule is not None:
            told = contacts.escalation_chain()
            self._notify("escalated", told, self.rule, occasion="stuck", reason=refused)
        await workflow.wait_condition(lambda: self._request_ready() or self._ended())

    async def _route(self) -> None:
        """Tie the order to its store (once); an imported assignment is the first request."""
        if self.state.routed is None:
            self.state.routed = await self._step(
                acts.route_order, self.order, summary="route to a store"
            )
            if self.state.routed.ended:  # a resubmitted id of a finished order: leave it be
                self.state.phase = self.state.routed.ended
                return
            self._enter(Phase.SELECTING)
        self._publish()
        if self.order.type == "assigned_unprocessed" and not self.state.imported_adopted:
            self.state.imported_adopted = True
            if self.order.assignee_id is not None:
                action = ManagerAction(
                    actor="import",
                    staff_id=self.order.assignee_id,
                    reason="assigned in the previous system",
                )
                self.pending = PendingRequest(action=action)

    def _next_phase(self, *, nobody_free: bool = False) -> Phase:
        a = self.state.assignment
        return next_phase(
            Situation(
                routed=self.state.routed is not None,
                ended=Phase(self.state.phase) if self._ended() else None,
                assignment=a.status if a is not None else None,
                escalated=self.state.escalated,
                waits_for_manager=(
                    self.rule is not None and self.rule.after_escalation == "wait_for_manager"
                ),
                request_waiting=self._request_ready(),
                nobody_free=nobody_free,
            )
        )

    async def _select_next(self, rule: Rule) -> None:
        """Start the next round: escalate if due, select someone and tell them, or wait for
        a shift if nobody can take it."""
        if escalation_due(
            round_=self.state.round, max_rounds=rule.max_rounds, escalated=self.state.escalated
        ):
            await self._escalate(rule, f"not accepted after {self.state.round} rounds")
            if self._next_phase() == Phase.WAITING_FOR_MANAGER:
                return
        request = self.pending if self._request_ready() else None
        # From here on a roster change must wake a wait for a shift (no lost wake-ups).
        self.roster_changed_for = None
        wish = None
        if request is None and self._wish_pending():
            wish = await self._customer_wish(rule)
            if self._ended():
                return
            request = self.pending if self._request_ready() else None
        forced = request.action if request is not None else wish
        next_round = self.state.round + 1
        self._enter(Phase.SELECTING)
        result = await self._select(next_round, rule, forced)
        if result.staff_id is None and wish is not None and request is None:
            result = await self._select(next_round, rule, None)  # they left meanwhile
        if request is not None:
            request.served = True
            self.pending = None
        if self._ended():  # cancelled while the round was being recorded: close its row
            if result.staff_id is not None:
                await self._record(
                    "cancelled", round=next_round, staff_id=result.staff_id, note="cancelled"
                )
            return
        if result.staff_id is None or result.accept_deadline is None:
            if self._next_phase(nobody_free=True) == Phase.WAITING_FOR_SHIFT:
                await self._wait_for_shift(rule)  # the phase stays until the next selection
            return
        self.state.round = next_round
        self.state.waits = 0
        self.state.assignment = CurrentAssignment(
            staff_id=result.staff_id,
            staff_name=result.staff_name,
            round=next_round,
            status="offered",
            accept_deadline=result.accept_deadline,
        )
        self._enter(Phase.OFFERED)
        imported = forced is not None and forced.actor == "import"
        self._telling = self._notify(
            "reminder" if imported else "assigned",
            [result.staff_id],
            rule,
            deadline=result.accept_deadline.isoformat(),
        )
        if imported:
            self.state.assignment.reminded = True  # the first notice was the reminder

    async def _wait_for_assignee(self, rule: Rule) -> None:
        """Remind, then wait for accept and for processing; a missed deadline is a timeout."""
        a = self.state.assignment
        assert a is not None
        untouched = lambda: self._offered(a)  # noqa: E731
        telling, self._telling = self._telling, []
        if telling and untouched():
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
        accepted = lambda: self.state.assignment is a and a.status == "accepted"  # noqa: E731
        if (
            accepted()
            and a.process_deadline
            and await self._until(
                lambda: not accepted(),
                a.process_deadline,
                f"processing deadline for staff {a.staff_id}, round {a.round}",
            )
        ):
            await self._time_out(a, rule, stage="process")

    async def _time_out(self, a: CurrentAssignment, rule: Rule, *, stage: str) -> None:
        """Record the timeout, tell the manager, pause for the reassignment period."""
        self._release(a)
        await self._record(
            "timed_out", round=a.round, staff_id=a.staff_id, note=f"{stage} deadline"
        )
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
                lambda: self._request_ready() or self._ended(),
                workflow.now() + timedelta(seconds=rule.reassign_period_seconds),
                f"reassignment period before round {self.state.round + 1}",
            )

    async def _escalate(self, rule: Rule, why: str, contacts: StoreContacts | None = None) -> None:
        """The manager and the sub-site admin are told, once (head office if neither)."""
        self.state.escalated = True
        await self._record("escalated", round=self.state.round, note=why)
        self._publish()
        contacts = contacts or await self._contacts()
        told = contacts.manager_ids + contacts.admin_ids or contacts.head_office_ids
        self._notify("escalated", told, rule, reason=why)

    async def _wait_for_shift(self, rule: Rule) -> None:
        """Nobody can take it now: say why, tell the manager (once per wait), sleep until a
        shift. A store with no duty slot ahead at all is escalated at once."""
        self.state.waits += 1
        now = workflow.now()
        next_start = await self._step(
            acts.next_duty_start, self._store_id(), now, summary="find next duty window"
        )
        reason = NO_ROSTER if next_start is None else NEXT_SHIFT
        if next_start is not None and next_start <= now:
            reason = NOBODY_FREE  # on duty, but all at their cap
        self._enter(Phase.WAITING_FOR_SHIFT, reason)
        await self._record(
            "waiting",
            at=now,
            round=self.state.round,
            occasion=str(self.state.waits),
            note=f"{reason}; next duty window {next_start}",
        )
        if self.state.waits == 1:
            contacts = await self._contacts()
            if reason == NO_ROSTER and not self.state.escalated:
                await self._escalate(rule, "no roster: nobody has a duty slot ahead", contacts)
            self._notify(
                "waiting",
                contacts.escalation_chain(),
                rule,
                occasion=f"w{self.state.round}",
                next_shift=next_start.isoformat() if next_start else None,
            )
        until = next_start if next_start else now + ROSTER_RECHECK
        if until <= now:
            backoff = BUSY_RECHECK * 2 ** min(self.state.waits - 1, 10)
            until = now + min(backoff, BUSY_RECHECK_MAX)
        await self._until(
            lambda: self.roster_changed_for is not None or self._request_ready() or self._ended(),
            until,
            f"next duty window at {until.isoformat()}",
        )

    # ------------------------------------------------------------ the customer's wish

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
        status = await self._step(
            acts.consultant_available, wanted, workflow.now(), summary=summary
        )
        starts = status.next_duty_start
        if (
            not status.available
            and rule.wish_fallback == "wait_for_shift"
            and starts
            and starts - workflow.now() <= timedelta(seconds=rule.wish_wait_seconds)
        ):
            self._enter(Phase.WAITING_FOR_SHIFT, WISH)
            await self._record(
                "waiting",
                occasion="wish",
                staff_id=wanted,
                note=f"{status.reason}; their shift starts {starts.isoformat()}",
            )
            # Only a change that concerns them (or the whole store) ends the wait early.
            concerns = lambda: bool({0, wanted} & (self.roster_changed_for or set()))  # noqa: E731
            await self._until(
                lambda: self._request_ready() or self._ended() or concerns(),
                starts,
                f"shift of preferred consultant {wanted}",
            )
            self.roster_changed_for = None
            if self._request_ready() or self._ended():
                return None
            status = await self._step(
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

    # ------------------------------------------------------------ steps

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

    async def _step(self, activity: Callable[..., Awaitable[T]], *args: Any, summary: str) -> T:
        """One database step (routing, selection, a projection write, a read), retried until
        the database answers. A local activity: run by this worker right inside the workflow
        task and recorded as a marker — no trip through the server's task queue, and no wait
        behind the notices that fill the activity slots (the hot path's queueing: an accept
        used to be answered only once its projection write got a slot behind them)."""
        result: T = await workflow.execute_local_activity(
            activity,
            args=list(args),
            summary=summary,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return result

    async def _load_rule(self) -> Rule:
        """The rule in force for the order's sub-site (its own, else head office's)."""
        routed = self.state.routed
        if routed is not None and routed.subsite_id is not None:
            return await self._step(
                acts.load_rule,
                self.order.type,
                routed.subsite_id,
                summary=f"read allocation rule of sub-site {routed.subsite_code}",
            )
        return await self._step(acts.load_rule, self.order.type, summary="read allocation rule")

    async def _record(self, kind: str, *, at: datetime | None = None, **fields: Any) -> None:
        """Bring the database projection in step with a transition of this order."""
        transition = Transition(
            order_id=self._order_id(),
            kind=kind,
            at=at or workflow.now(),
            phase=self.state.phase,
            wait_reason=self.state.wait_reason,
            **fields,
        )
        async with self._db:
            await self._step(
                acts.record_transition, transition, summary=f"record {transition.kind}"
            )

    async def _contacts(self) -> StoreContacts:
        return await self._step(
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
        (only the accept clock starts once the assignee is told)."""
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

    def _send_status_event(self, view: OrderView) -> None:
        """Tell the web backend of a new status (or holder, or round); never waited for."""
        said = f"{view.status}:{view.assignee_id}:{view.round}"
        if not self.webhooks or said == self.state.last_status_event:
            return
        self.state.last_status_event = said
        self.state.status_events += 1
        event = StatusEvent(
            id=f"{view.order_id}:{self.state.status_events}",
            order_id=view.order_id,
            status=view.status,
            phase=view.phase,
            assignee_id=view.assignee_id,
            round=view.round,
            at=workflow.now(),
        )
        self._notices.append(
            workflow.start_activity(
                send_status_webhook,
                event,
                summary=f"status webhook {event.id}: {event.status}",
                start_to_close_timeout=WEBHOOK_TIMEOUT,
                retry_policy=NOTICE_RETRY,
            )
        )

    def _notify_holder_of_cancel(self, staff_id: int, cancellation: Cancellation) -> None:
        if self.rule is not None:
            self._notify("cancelled", [staff_id], self.rule, cancel_reason=cancellation.reason)

    async def _drain_notices(self) -> None:
        # A notice that failed for good is recorded by its activity; it never fails the order.
        await asyncio.gather(*self._notices, return_exceptions=True)
        self._notices = []

    # ------------------------------------------------------------ continue-as-new

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self.history_limit
        )

    async def _ready_to_continue_as_new(self) -> bool:
        """Hand over only when nothing would make the hand-over hang or hold the order: no
        manager's request waiting for a round of this run, no handler under way, and the
        notices settled (one still retrying after NOTICE_HANDOVER_WAIT — a mail or SMS
        outage — defers the hand-over to a later turn instead of delaying this one)."""
        settled = lambda: all(n.done() for n in self._notices)  # noqa: E731
        if not settled():
            deadline = workflow.now() + NOTICE_HANDOVER_WAIT
            await self._until(settled, deadline, "notices in flight before continue-as-new")
        # Checked after the last await: no update can slip in between this and the hand-over.
        return self.pending is None and settled() and workflow.all_handlers_finished()

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(
            OrderInput(
                order=self.order,
                state=replace(self.state),
                history_limit=self.history_limit,
                webhooks=self.webhooks,
            )
        )

    # ------------------------------------------------------------ phase, view, publishing

    def _enter(self, phase: Phase, wait_reason: str = "") -> None:
        """Move to `phase` (waiting: for `wait_reason`) and publish what changed (search
        attributes, live details)."""
        self.state.phase = phase
        self.state.wait_reason = wait_reason
        self._publish()

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

    def _ended(self) -> bool:
        return self.state.phase in ENDED

    def _request_ready(self) -> bool:
        return self.pending is not None and self.pending.ready and not self.pending.served

    def _offered(self, a: CurrentAssignment) -> bool:
        """`a` is still this order's assignment, offered and not yet taken."""
        return self.state.assignment is a and a.status == "offered"

    def _order_id(self) -> str:
        return self.order.order_id

    def _store_id(self) -> int:
        routed = self.state.routed
        if routed is None or routed.store_id is None:
            raise ApplicationError(
                "the order has no store; add a default store", non_retryable=True
            )
        return routed.store_id

    def _view(self) -> OrderView:
        a = self.state.assignment
        routed = self.state.routed
        phase = Phase(self.state.phase)
        return OrderView(
            order_id=self.order.order_id,
            type=self.order.type,
            status=status_of(phase, escalated=self.state.escalated),
            store_id=routed.store_id if routed else None,
            assignee_id=a.staff_id if a else None,
            round=self.state.round,
            escalated=self.state.escalated,
            accept_deadline=a.accept_deadline if a else None,
            process_deadline=a.process_deadline if a else None,
            phase=phase.value,
            wait_reason=self.state.wait_reason,
        )

    def _publish(self) -> None:
        """Upsert the search attributes that changed, and the live details shown in the UI
        (the store and holder live here, not in the static summary)."""
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
        self._send_status_event(view)
        holder = f"staff {view.assignee_id}" if view.assignee_id else "nobody"
        store = f"store {view.store_id}" if view.store_id else "no store yet"
        why = f" ({view.wait_reason})" if view.wait_reason else ""
        workflow.set_current_details(
            f"**{view.status}** · {view.phase}{why} · {store} · with {holder}"
            f" · round {view.round}" + (" · escalated" if view.escalated else "")
        )


@workflow.defn
class NewOrderWorkflow(OrderDispatch):
    """A order just placed online."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        return await self._dispatch()


@workflow.defn
class UnassignedOrderWorkflow(OrderDispatch):
    """An order nobody could take, or a backlog imported from an older system."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        return await self._dispatch()


@workflow.defn
class AssignedUnprocessedOrderWorkflow(OrderDispatch):
    """An order imported already assigned to someone who has not handled it."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        return await self._dispatch()


WORKFLOW_FOR_TYPE: dict[str, type[OrderDispatch]] = {
    "new": NewOrderWorkflow,
    "unassigned": UnassignedOrderWorkflow,
    "assigned_unprocessed": AssignedUnprocessedOrderWorkflow,
}
ORDER_WORKFLOWS = list(WORKFLOW_FOR_TYPE.values())

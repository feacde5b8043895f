"""What staff, managers, the web backend and the roster send a running order: the updates,
the signal and the query of the dispatch loop, in a mixin so `workflows/dispatch.py` reads
as the loop alone. Validators refuse before anything is written to history; a handler
changes `state` (the phase first) and writes the projection before it answers, so an
answer means the order's row already says so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import orders as acts
    from dispatch.phases import ENDED, Phase
    from workflows.contracts import (
        CANCEL_REASONS,
        Cancellation,
        CancelRequest,
        CurrentAssignment,
        DispatchState,
        ManagerAction,
        OrderView,
        PendingRequest,
        Rule,
        StaffAction,
        StaffCheck,
    )

T = TypeVar("T")


def rejected(message: str, kind: str) -> ApplicationError:
    """An update refused before anything happened; `kind` maps to the HTTP status."""
    return ApplicationError(message, type=kind, non_retryable=True)


class OrderHandlers(ABC):
    """The updates, signal and query; the loop (`OrderDispatch`) supplies the state and the
    steps below."""

    state: DispatchState
    rule: Rule | None
    pending: PendingRequest | None
    roster_changed_for: set[int] | None  # staff the last roster change concerned; None: none

    @abstractmethod
    def _enter(self, phase: Phase, wait_reason: str = "") -> None: ...

    @abstractmethod
    def _view(self) -> OrderView: ...

    @abstractmethod
    def _store_id(self) -> int: ...

    @abstractmethod
    async def _record(self, kind: str, *, at: datetime | None = None, **fields: Any) -> None: ...

    @abstractmethod
    async def _step(self, activity: Callable[..., Awaitable[T]], *args: Any, summary: str) -> T: ...

    @abstractmethod
    def _notify_holder_of_cancel(self, staff_id: int, cancellation: Cancellation) -> None: ...

    # ------------------------------------------------------------ the assignee

    @workflow.update
    async def accept(self, action: StaffAction) -> OrderView:
        if self.state.phase == Phase.SELECTING:  # admitted while the round was recorded
            await workflow.wait_condition(lambda: self.state.phase != Phase.SELECTING)
            self._validate_accept(action)
        a = self.state.assignment
        assert a is not None and self.rule is not None
        a.status = "accepted"
        a.process_deadline = workflow.now() + timedelta(seconds=self.rule.process_timeout_seconds)
        self._enter(Phase.ACCEPTED)
        await self._record_staff("accepted", a, action, process_deadline=a.process_deadline)
        return self._view()

    @accept.validator
    def _validate_accept(self, action: StaffAction) -> None:
        if self.state.phase == Phase.SELECTING and self.state.assignment is None:
            self._open_order()
            return  # the assignee may have seen the new round already; the handler waits
        a = self._current_for(action.staff_id)
        if a.status != "offered":
            raise rejected("the order is already accepted", "Conflict")
        if self.rule is None:  # a fresh run (after continue-as-new) reads its rule first
            raise rejected("the order is resuming; try again in a moment", "Conflict")

    @workflow.update
    async def complete(self, action: StaffAction) -> OrderView:
        a = self.state.assignment
        assert a is not None
        a.status = "completed"
        self._enter(Phase.COMPLETED)
        await self._record_staff("completed", a, action)
        return self._view()

    @complete.validator
    def _validate_complete(self, action: StaffAction) -> None:
        a = self._current_for(action.staff_id)
        if a.status != "accepted":
            raise rejected("accept the order before marking it processed", "Conflict")

    @workflow.update
    async def decline(self, action: StaffAction) -> OrderView:
        a = self.state.assignment
        assert a is not None
        self._release(a)
        await self._record_staff("declined", a, action)
        return self._view()

    @decline.validator
    def _validate_decline(self, action: StaffAction) -> None:
        self._current_for(action.staff_id)

    # ------------------------------------------------------------ managers

    @workflow.update
    async def reassign(self, action: ManagerAction) -> OrderView:
        """A manager names the next assignee (an active consultant of the order's store)."""
        assert action.staff_id is not None
        request = self._claim(action, ready=False)
        try:
            await self._step(
                acts.check_staff_in_store,
                StaffCheck(staff_id=action.staff_id, store_id=self._store_id()),
                summary=f"check staff {action.staff_id} belongs to the store",
            )
            self._open_order()
        except BaseException:
            self.pending = None
            raise
        request.ready = True
        return await self._serve(request)

    @reassign.validator
    def _validate_reassign(self, action: ManagerAction) -> None:
        self._open_order()
        if action.staff_id is None:
            raise rejected("name the staff member to reassign to", "Invalid")
        a = self.state.assignment
        if a is not None and a.staff_id == action.staff_id:
            raise rejected(f"the order is already with staff {action.staff_id}", "Conflict")
        self._no_request_pending()

    @workflow.update
    async def redispatch(self, action: ManagerAction) -> OrderView:
        """A manager asks for a new selection now (the current assignee is skipped)."""
        return await self._serve(self._claim(action, ready=True))

    @redispatch.validator
    def _validate_redispatch(self, action: ManagerAction) -> None:
        self._open_order()
        self._no_request_pending()

    # ------------------------------------------------------------ cancel

    @workflow.update
    async def cancel(self, request: CancelRequest) -> OrderView:
        """The store's manager, the sub-site admin, head office or the web backend ends the
        order unhandled; the holder (if any) is told."""
        await self._cancel(request.actor, request.reason, request.note)
        return self._view()

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self.state.phase in ENDED:
            raise rejected(f"the order is {self.state.phase} already", "Conflict")
        if request.reason not in CANCEL_REASONS:
            raise rejected(f"reason must be one of {', '.join(CANCEL_REASONS)}", "Invalid")
        if request.reason == "other" and not request.note.strip():
            raise rejected("say why in the note when the reason is 'other'", "Invalid")

    async def _cancel(self, actor: str, reason: str, note: str) -> None:
        """End the order as cancelled: state first (the loop wakes and ends), then the row."""
        a = self.state.assignment
        cancellation = Cancellation(actor=actor, reason=reason, at=workflow.now(), note=note)
        self.state.cancelled = cancellation
        self.state.assignment = None
        self._enter(Phase.CANCELLED)
        await self._record(
            "cancelled",
            round=a.round if a else self.state.round,
            staff_id=a.staff_id if a else None,
            actor=actor,
            note=f"{reason}: {note}" if note else reason,
        )
        if a is not None:
            self._notify_holder_of_cancel(a.staff_id, cancellation)

    # ------------------------------------------------------------ roster and live state

    @workflow.signal
    def roster_changed(self, staff_ids: list[int] | None = None) -> None:
        """The store's roster changed (for these staff, if named): an order waiting for a
        shift looks again now; a wait for one consultant only if it concerns them."""
        concerned = set(staff_ids) if staff_ids else {0}  # 0: the whole store
        self.roster_changed_for = (self.roster_changed_for or set()) | concerned

    @workflow.query(name="state")
    def live_state(self) -> OrderView:
        """The order as it stands now (phase, status, store, assignee, round, deadlines)."""
        return self._view()

    # ------------------------------------------------------------ helpers

    async def _record_staff(
        self, kind: str, a: CurrentAssignment, action: StaffAction, **fields: Any
    ) -> None:
        """The assignee's own action, with their note, in the audit trail."""
        actor = action.actor or f"staff:{a.staff_id}"  # a manager on their behalf
        await self._record(
            kind, round=a.round, staff_id=a.staff_id, actor=actor, note=action.reason, **fields
        )

    def _claim(self, action: ManagerAction, *, ready: bool) -> PendingRequest:
        """From here a second manager action is refused. Checked again in the handler: two
        updates that arrive together both pass their validators before either handler runs."""
        self._no_request_pending()
        self.pending = PendingRequest(action=action, ready=ready)
        return self.pending

    async def _serve(self, request: PendingRequest) -> OrderView:
        """Take the order back from its holder; answer once a round has served the request."""
        if self.state.phase == Phase.SELECTING:
            # A round being chosen may not have seen the request: let it land, then take it
            # back (unless that round was the one serving it).
            await workflow.wait_condition(
                lambda: self.state.phase != Phase.SELECTING or request.served
            )
        a = self.state.assignment
        if a is not None and not request.served and self.state.phase not in ENDED:
            self._release(a)
            await self._record(
                "reassigned",
                round=a.round,
                staff_id=a.staff_id,
                actor=request.action.actor,
                note=request.action.reason,
            )
        await workflow.wait_condition(lambda: request.served or self.state.phase in ENDED)
        if not request.served:
            raise rejected(f"the order was {self.state.phase} meanwhile", "Conflict")
        return self._view()

    def _release(self, a: CurrentAssignment) -> None:
        """The holder no longer has it (declined, taken back, timed out): keep them out of
        the next draws, the latest last, and let the loop select again."""
        self.state.assignment = None
        if a.staff_id in self.state.previous:
            self.state.previous.remove(a.staff_id)
        self.state.previous.append(a.staff_id)
        self._enter(Phase.SELECTING)

    def _current_for(self, staff_id: int) -> CurrentAssignment:
        self._open_order()
        a = self.state.assignment
        if a is None:
            raise rejected("the order is not assigned to anyone right now", "Conflict")
        if a.staff_id != staff_id:
            raise rejected(
                f"only the current assignee (staff {a.staff_id}) may do this", "Forbidden"
            )
        return a

    def _open_order(self) -> None:
        if self.state.phase == Phase.COMPLETED:
            raise rejected("the order has been processed already", "Conflict")
        if self.state.phase == Phase.CANCELLED and self.state.cancelled is not None:
            c = self.state.cancelled
            raise rejected(
                f"the order was cancelled at {c.at.isoformat()} ({c.reason})", "Conflict"
            )
        if self.state.routed is None:
            raise rejected("the order is still being routed; try again in a moment", "Conflict")

    def _no_request_pending(self) -> None:
        if self.pending is not None:
            raise rejected("a re-dispatch of this order is already under way", "Conflict")

"""Plain dataclasses that cross the workflow boundary: inputs, activity I/O, live state.

Kept free of I/O and of Temporal imports so workflows, activities, the API and the
starter share one definition; every field has a default so fields can be added later
without breaking recorded histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CustomerIn:
    name: str = ""
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class OrderRequest:
    """What the web backend submits."""

    order_id: str
    type: str  # models.OrderType value
    customer: CustomerIn = field(default_factory=CustomerIn)
    category: str = ""
    priority: int = 0
    store_id: int | None = None
    client_ip: str | None = None
    host: str | None = None
    preferred_staff_id: int | None = None
    assignee_id: int | None = None  # assigned-unprocessed: who holds it in the old system
    wished_store_id: int | None = None  # a store the customer chose
    prefer_last_consultant: bool = False  # "whoever served me last" (if no preferred_staff_id)


@dataclass(frozen=True)
class RoutedOrder:
    """The store an order is tied to, and why."""

    store_id: int | None
    reason: str
    subsite_id: int | None = None
    subsite_code: str = ""
    store_name: str = ""
    customer_name: str = ""
    category: str = ""
    # The consultant the customer asked for (named, or the one who served them last), set
    # only when they are an active consultant of the chosen store; whether they are on duty
    # is for the workflow to ask (`consultant_available`) at its own time.
    preferred_staff_id: int | None = None
    # The order was already completed or cancelled (a resubmitted id): nothing to dispatch.
    ended: str = ""


@dataclass(frozen=True)
class ConsultantStatus:
    """Whether a customer's preferred consultant can take an order at a given instant."""

    staff_id: int
    available: bool
    reason: str = ""  # why not, for the audit trail ("" when available)
    store_id: int | None = None
    next_duty_start: datetime | None = None  # when they are next on duty (None: not rostered)


@dataclass(frozen=True)
class Rule:
    """A snapshot of the allocation rule for one order type, read at every round."""

    order_type: str
    accept_timeout_seconds: int = 900
    process_timeout_seconds: int = 86400
    reassign_period_seconds: int = 0
    reminder_before_seconds: int = 300
    max_rounds: int = 3
    skip_previous_assignees: bool = True
    capacity_per_staff: int | None = None
    after_escalation: str = "keep_reassigning"
    channels: dict[str, list[str]] = field(default_factory=dict)
    wish_fallback: str = "store"  # models.WishFallback: wait_for_shift | store
    wish_wait_seconds: int = 3600
    weight_cap: int | None = None  # dispatch.weights: nobody's weight exceeds it


@dataclass(frozen=True)
class AssignRequest:
    order_id: str
    store_id: int
    round: int
    at: datetime
    rule: Rule
    previous: list[int] = field(default_factory=list)
    forced_staff_id: int | None = None  # a manager's choice, or the imported assignee
    forced_reason: str = ""


@dataclass(frozen=True)
class AssignResult:
    staff_id: int | None
    staff_name: str = ""
    accept_deadline: datetime | None = None
    reason: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """One change of an order's state, for the database projection and the audit trail."""

    order_id: str
    # accepted | completed | timed_out | declined | reassigned | escalated | waiting |
    # deadline_moved | cancelled | stuck
    kind: str
    at: datetime
    round: int = 0
    staff_id: int | None = None
    actor: str = "workflow"
    note: str = ""
    process_deadline: datetime | None = None
    occasion: str = ""  # distinguishes repeats of one kind within a round (audit key)
    accept_deadline: datetime | None = None  # deadline_moved: the assignee's new deadline
    phase: str = ""  # the order's phase after this transition ("" leaves it)
    wait_reason: str = ""


@dataclass(frozen=True)
class StoreContacts:
    manager_ids: list[int] = field(default_factory=list)
    admin_ids: list[int] = field(default_factory=list)
    head_office_ids: list[int] = field(default_factory=list)  # admins of the head office

    def escalation_chain(self) -> list[int]:
        """Who must hear of an order nobody can take: the managers, else the sub-site's
        admins, else head office."""
        return self.manager_ids or self.admin_ids or self.head_office_ids


@dataclass(frozen=True)
class StaffCheck:
    staff_id: int
    store_id: int


@dataclass
class CurrentAssignment:
    staff_id: int
    round: int
    status: str  # offered | accepted | completed
    accept_deadline: datetime
    staff_name: str = ""
    process_deadline: datetime | None = None
    reminded: bool = False


@dataclass
class Cancellation:
    """Who ended the order without it being handled, why, and when."""

    actor: str
    reason: str  # one of CANCEL_REASONS
    at: datetime
    note: str = ""


@dataclass
class DispatchState:
    """Everything the dispatch loop knows; carried across continue-as-new.

    `phase` (a dispatch.phases.Phase value) says where the order is; the status, the
    search attributes and the live details are read from it."""

    phase: str = "routing"
    routed: RoutedOrder | None = None
    round: int = 0
    previous: list[int] = field(default_factory=list)  # oldest first; the latest is last
    assignment: CurrentAssignment | None = None
    escalated: bool = False
    waits: int = 0
    wait_reason: str = ""  # why it is waiting_for_shift (dispatch.phases NO_ROSTER, ...)
    imported_adopted: bool = False
    wish_done: bool = False  # the customer's preferred consultant has been tried
    cancelled: Cancellation | None = None
    status_events: int = 0  # status changes sent to the webhook so far (its event number)
    last_status_event: str = ""  # what the last one said: the same is not sent twice


@dataclass(frozen=True)
class OrderInput:
    order: OrderRequest
    state: DispatchState | None = None  # set only by continue-as-new
    # Continue-as-new past this many events: well before a few thousand, so a long-unhandled
    # order keeps a short history (tests lower it to see a continue-as-new quickly).
    history_limit: int = 1500
    # Status webhooks on for this order (WEBHOOK_URL was set when it was started): fixed per
    # order, so a changed setting never changes what a running order's history replays.
    webhooks: bool = False


@dataclass(frozen=True)
class StaffAction:
    staff_id: int
    reason: str = ""
    actor: str = ""  # a manager acting on the staff member's behalf; "" is the staff member


@dataclass(frozen=True)
class ManagerAction:
    actor: str  # who asked, for the audit trail
    staff_id: int | None = None  # reassign-to target; None for re-dispatch
    reason: str = ""


@dataclass
class PendingRequest:
    """The one request a round is to serve: a manager's re-dispatch or reassign-to, the
    imported holder, or the customer's preferred consultant. An update handler that set it
    waits for `served`; while one is pending a second manager request is refused."""

    action: ManagerAction
    ready: bool = True  # False while the handler still checks the named staff member
    served: bool = False


CANCEL_REASONS = ("customer_cancelled", "duplicate", "spam", "other")


@dataclass(frozen=True)
class CancelRequest:
    actor: str  # who cancels, for the audit trail
    reason: str  # one of CANCEL_REASONS
    note: str = ""  # required with "other"


@dataclass(frozen=True)
class OrderView:
    """The live state, as the `state` query and every update return it."""

    order_id: str
    type: str
    status: str
    store_id: int | None
    assignee_id: int | None
    round: int
    escalated: bool
    accept_deadline: datetime | None = None
    process_deadline: datetime | None = None
    phase: str = "routing"  # dispatch.phases.Phase
    wait_reason: str = ""  # why it waits (phase waiting_for_shift)

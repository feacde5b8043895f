"""The o2o domain metrics, counted where the facts are written: in the activities that
record an order's events (activities/routing.py, selection.py, projection.py) and settle a
notice (activities/notices.py).
They go through the activity metric meter, so the worker's Prometheus endpoint serves them
beside the SDK's own, with the activity's namespace and task queue as labels.

Counted at least once: an activity retried after its commit counts its event again, so
these are rates to watch, not a ledger (the database is the ledger).

    o2o_order_events{event, store_id}      one per order event; `event` is one of
        received, assigned (activities/routing.py: route_order, selection.py: assign_order) and the
        Transition kinds of record_transition: accepted, completed, cancelled, timed_out,
        declined, reassigned, released, escalated, waiting (not deadline_moved: no event)
    o2o_order_time_to_accept{store_id}     histogram, milliseconds: from the order being
        received (its row created) to the accept
    o2o_notices{channel, outcome}          one per notice settled: sent, failed, skipped
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity

from workflows.contracts import Transition

ORDER_EVENTS = "o2o_order_events"
TIME_TO_ACCEPT = "o2o_order_time_to_accept"
NOTICES = "o2o_notices"
NOT_COUNTED = frozenset({"deadline_moved"})  # a moved deadline is no event of the order
NOTICE_OUTCOMES = frozenset({"sent", "failed", "skipped"})  # settled; the rest are retries


def _store(store_id: int | None) -> str:
    return str(store_id) if store_id is not None else "none"


def count_order_event(kind: str, *, store_id: int | None) -> None:
    """One order event of `kind` at the store (call inside an activity, after the commit)."""
    if kind in NOT_COUNTED or not activity.in_activity():
        return
    counter = activity.metric_meter().create_counter(ORDER_EVENTS, "order events by kind and store")
    counter.add(1, {"event": kind, "store_id": _store(store_id)})


def count_transition(t: Transition, *, store_id: int | None, received_at: datetime) -> None:
    """A transition written by record_transition; an accept also feeds time to accept."""
    count_order_event(t.kind, store_id=store_id)
    if t.kind == "accepted" and activity.in_activity():
        histogram = activity.metric_meter().create_histogram_timedelta(
            TIME_TO_ACCEPT, "from the order received to its accept", "ms"
        )
        waited = max(t.at - received_at, timedelta(0))
        histogram.record(waited, {"store_id": _store(store_id)})


def count_notice(channel: str, outcome: str) -> None:
    """A notice settled by send_notice (sent, failed for good, or skipped)."""
    if outcome not in NOTICE_OUTCOMES or not activity.in_activity():
        return
    counter = activity.metric_meter().create_counter(NOTICES, "notices by channel and outcome")
    counter.add(1, {"channel": channel, "outcome": outcome})

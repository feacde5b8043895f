"""An order's whole story, shaped for its page: each round's draw as a chart.

A round's recorded decision (`Assignment.reason`, dispatch.selection.Decision.as_reason)
holds every candidate's value in the draw, the draw in [0, 1) and the total: the chart is a
strip of segments as wide as each value, in the order the draw used (by staff id), with the
draw marked where it fell. Pure: no I/O, so tested like the selection itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from services.orders import workflow_id
from settings import settings

WIDTH = 320.0  # the chart's width in SVG units; the page scales it to the screen


@dataclass(frozen=True)
class Segment:
    staff_id: int
    value: int
    share: float  # of the round's total
    x: float
    width: float
    chosen: bool


@dataclass(frozen=True)
class Draw:
    segments: list[Segment]
    total: int
    draw: float | None
    marker_x: float | None  # where the draw fell on the strip
    excluded: dict[int, str]
    chosen: int | None


def draw_of(reason: dict[str, Any], chosen: int | None) -> Draw:
    """The round's draw as segments of a strip `WIDTH` wide (empty for a non-random round,
    e.g. a manager's reassignment, whose reason holds no values)."""
    values = {int(k): int(v) for k, v in (reason.get("values") or {}).items()}
    total = sum(values.values())
    segments: list[Segment] = []
    x = 0.0
    for staff_id in sorted(values):  # the order dispatch.selection drew in
        width = WIDTH * values[staff_id] / total
        segments.append(
            Segment(
                staff_id, values[staff_id], values[staff_id] / total, x, width, staff_id == chosen
            )
        )
        x += width
    draw = reason.get("draw")
    marker = WIDTH * float(draw) if isinstance(draw, int | float) and total else None
    excluded = {int(k): str(v) for k, v in (reason.get("excluded") or {}).items()}
    return Draw(segments, total, draw if marker is not None else None, marker, excluded, chosen)


def temporal_link(order_id: str) -> str:
    """The order's workflow in the Temporal UI."""
    base = settings.TEMPORAL_UI_URL.rstrip("/")
    namespace = quote(settings.TEMPORAL_NAMESPACE, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id(order_id), safe='')}"

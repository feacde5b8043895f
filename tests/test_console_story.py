"""An order's whole story: the draw chart's geometry (pure), and the page for a real order
on the time-skipping server — its rounds with the chart, notices, events, the Temporal UI
link — for the store's manager, refused to a manager of another store."""

from __future__ import annotations

import re
from typing import get_args

import httpx
import pytest

from api import audit as api_audit
from console.story import WIDTH, draw_of, temporal_link
from dispatch.selection import Candidate, select
from services import audit
from settings import settings
from tests.api_helpers import admin
from tests.conftest import Dispatch
from tests.factories import make_store_world
from tests.test_api_orders import offered, order_body, submit, wait_for_round
from tests.test_console_pages import sign_in


def test_the_chart_has_one_segment_per_candidate_as_wide_as_its_value() -> None:
    people = [Candidate(staff_id=i, points=p) for i, p in ((3, 0), (1, 100), (2, 300))]
    decision = select(people, draw=0.9)
    chart = draw_of(decision.as_reason(), decision.staff_id)
    assert [s.staff_id for s in chart.segments] == [1, 2, 3]  # the order the draw used
    assert sum(s.width for s in chart.segments) == pytest.approx(WIDTH)
    assert [s.share for s in chart.segments] == pytest.approx(
        [v / decision.total for v in decision.values.values()]
    )
    # The draw's marker lies inside the chosen person's segment.
    [chosen] = [s for s in chart.segments if s.chosen]
    assert chosen.staff_id == decision.staff_id
    assert chart.marker_x is not None and chosen.x <= chart.marker_x < chosen.x + chosen.width


def test_a_round_without_a_draw_has_no_chart_but_keeps_its_exclusions() -> None:
    chart = draw_of({"method": "manager", "excluded": {"4": "rotation paused"}}, 7)
    assert (chart.segments, chart.marker_x, chart.excluded) == ([], None, {4: "rotation paused"})


def test_the_temporal_link_names_the_namespace_and_workflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "TEMPORAL_UI_URL", "http://ui.example:8080/")
    monkeypatch.setattr(settings, "TEMPORAL_NAMESPACE", "prod ns")
    assert (
        temporal_link("WEB 1")
        == "http://ui.example:8080/namespaces/prod%20ns/workflows/order-WEB%201"
    )


async def test_the_story_page_shows_the_draw_notices_and_events(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=3, points=[100, 200, 300])
    other = await make_store_world(consultants=1)
    body = order_body(world)
    await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)
    assert (await sign_in(api, dispatch.sinks, world.manager)).status_code == 303
    page = await api.get(f"/console/orders/{body['order_id']}/story")
    assert page.status_code == 200, page.text
    assert 'data-round="1"' in page.text
    assert len(re.findall(r"<rect [^>]*data-staff=", page.text)) == 3
    assert page.text.count("★") == 1  # the chosen one
    assert f"/workflows/order-{body['order_id']}" in page.text
    assert 'data-section="notices"' in page.text and "<strong>sms</strong>" in page.text
    # The events by kind, each named in the manager's language (Chinese).
    assert 'data-event="routed"' in page.text and 'data-event="assigned"' in page.text
    assert "<strong>已定门店</strong>" in page.text and "<strong>已派单</strong>" in page.text

    await api.post("/console/sign-out", data={})
    assert (await sign_in(api, dispatch.sinks, other.manager)).status_code == 303
    refused = await api.get(f"/console/orders/{body['order_id']}/story")
    assert refused.status_code == 403 and 'data-refused="refused"' in refused.text


def test_the_api_kinds_are_the_services_kinds() -> None:
    assert get_args(api_audit.Kind) == audit.KINDS


async def test_a_manager_reads_fairness_and_the_stores_changes_on_pages(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=2, points=[100, 300])
    _, first = await offered(api, world)
    consultant = world.consultants[0]
    changed = await api.patch(
        f"/api/v1/staff/{consultant.id}", json={"language": "en"}, headers=admin()
    )
    assert changed.status_code == 200, changed.text
    assert (await sign_in(api, dispatch.sinks, world.manager)).status_code == 303

    fair = await api.get("/console/reports/fairness?days=7")
    assert fair.status_code == 200, fair.text
    # The manager reads Chinese: the verdict too (the API's English sentence, translated).
    assert "data-verdict" in fair.text and "样本太少" in fair.text
    assert f'data-share="{first["staff_id"]}"' in fair.text
    assert (await api.get("/console/reports/fairness?days=5")).status_code == 422

    changes = await api.get(f"/console/audit?kind=staff&object_id={consultant.id}")
    assert changes.status_code == 200, changes.text
    assert f'data-audit="staff/{consultant.id}"' in changes.text
    assert "<td>language</td><td>zh</td><td>en</td>" in changes.text
    bogus = await api.get("/console/audit?kind=bogus")
    assert bogus.status_code == 422 and 'data-refused="refused"' in bogus.text

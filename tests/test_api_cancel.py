"""Cancel through the API and the CLI, and a finished order's id refused on resubmission
(409), even once Temporal no longer holds its history."""

from __future__ import annotations

from typing import Any

import httpx

from models import Role
from tests.api_helpers import NoTemporal, admin, api_client, bearer, make_token, manager_of
from tests.conftest import Dispatch, eventually
from tests.factories import make_store_world
from tests.test_api_orders import ORDERS, offered, order_body, submit, wait_for_round
from tests.test_order_workflow import notices
from workflows.contracts import OrderInput, StaffAction
from workflows.dispatch import NewOrderWorkflow


async def cancel(
    api: httpx.AsyncClient, order_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await api.post(f"{ORDERS}/{order_id}/cancel", json=body, headers=headers)


async def test_the_store_manager_cancels_and_a_resubmission_is_refused(
    api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    manager = await manager_of(world)

    refused = await cancel(api, body["order_id"], manager, reason="bored")
    assert refused.status_code == 422, refused.text
    vague = await cancel(api, body["order_id"], manager, reason="other")
    assert vague.status_code == 422 and "note" in vague.text, vague.text
    staff = bearer(await make_token(Role.STAFF, staff_id=first["staff_id"]))
    assert (await cancel(api, body["order_id"], staff, reason="spam")).status_code == 403

    done = await cancel(api, body["order_id"], manager, reason="customer_cancelled")
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["phase"]) == ("cancelled", "cancelled")
    again = await cancel(api, body["order_id"], manager, reason="spam")
    assert again.status_code == 409, again.text

    shown = (await api.get(f"{ORDERS}/{body['order_id']}", headers=admin())).json()
    assert (shown["status"], shown["phase"]) == ("cancelled", "cancelled")
    assert shown["cancel_reason"] == "customer_cancelled"

    async def told() -> None:
        kinds = {(n.kind, n.staff_id) for n in await notices(body["order_id"])}
        assert ("cancelled", first["staff_id"]) in kinds

    await eventually(told)

    resubmitted = await api.post(ORDERS, json=body, headers=admin())
    assert resubmitted.status_code == 409, resubmitted.text
    assert "was cancelled at" in resubmitted.json()["detail"]


async def test_a_completed_order_is_refused_from_the_projection_alone(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """The 409 does not ask Temporal (whose retention deletes a closed run's history, and
    with it what the workflow id reuse policy knows): an API whose Temporal client fails
    if reached still refuses the resubmission."""
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    handle = dispatch.client.get_workflow_handle_for(
        NewOrderWorkflow.run, f"order-{body['order_id']}"
    )
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=first["staff_id"]))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=first["staff_id"]))
    await handle.result()

    async with api_client(NoTemporal()) as without_temporal:
        resubmitted = await without_temporal.post(ORDERS, json=body, headers=admin())
    assert resubmitted.status_code == 409, resubmitted.text
    assert "was completed at" in resubmitted.json()["detail"]
    shown = (await api.get(f"{ORDERS}/{body['order_id']}", headers=admin())).json()
    assert (shown["status"], len(shown["assignments"])) == ("completed", 1)


async def test_a_workflow_started_for_a_finished_order_does_nothing(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """Past the API's check (a start from elsewhere): the workflow finds the order ended
    in the projection, and adds no round and no notice. A closed run's id may start again
    (as after its history was deleted), so this is a new run of the same id."""
    world = await make_store_world(consultants=2)
    body = order_body(world)
    await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)
    manager = await manager_of(world)
    assert (await cancel(api, body["order_id"], manager, reason="spam")).status_code == 200
    handle = dispatch.client.get_workflow_handle(f"order-{body['order_id']}")
    await handle.result()  # its notices drained
    sent = len(await notices(body["order_id"]))
    from api.schemas import OrderIn

    again = await dispatch.client.start_workflow(
        NewOrderWorkflow.run,
        OrderInput(order=OrderIn.model_validate(body).to_request()),
        id=handle.id,
        task_queue=dispatch.task_queue,
    )
    view = await again.result()
    assert (view.status, view.round) == ("cancelled", 0)
    shown = (await api.get(f"{ORDERS}/{body['order_id']}", headers=admin())).json()
    assert (shown["status"], len(shown["assignments"])) == ("cancelled", 1)
    assert len(await notices(body["order_id"])) == sent

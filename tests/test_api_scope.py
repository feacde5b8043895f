"""Lists answer only what they were asked: an unknown query parameter is a 422 naming it,
and a filter outside the caller's scope is a 403, not an empty 200."""

from __future__ import annotations

import httpx
import pytest

from models import Role
from tests.api_helpers import V1, admin, bearer, make_token, manager_of
from tests.factories import make_store_world


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/orders", {"statuss": "escalated"}),
        ("/staff", {"store": "1", "activ": "true"}),
        ("/notifications", {"limt": "5"}),
    ],
)
async def test_an_unknown_query_parameter_is_422_naming_it(
    offline_api: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await offline_api.get(f"{V1}{path}", params=params, headers=admin())

    assert response.status_code == 422, response.text
    named = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert named == {("query", name) for name in params}


async def test_known_parameters_still_filter(offline_api: httpx.AsyncClient) -> None:
    response = await offline_api.get(
        f"{V1}/orders", params={"status": "escalated", "limit": 5}, headers=admin()
    )
    assert response.status_code == 200, response.text


async def test_a_filter_outside_the_callers_scope_is_403(offline_api: httpx.AsyncClient) -> None:
    mine, other = await make_store_world(), await make_store_world()
    manager = await manager_of(mine)
    admin_token = await make_token(
        Role.SUBSITE_ADMIN, staff_id=mine.manager.id, subsite_id=mine.subsite.id
    )
    staff = await make_token(Role.STAFF, staff_id=mine.consultants[0].id, store_id=mine.store.id)
    refused = [
        (manager, "/orders", {"store_id": other.store.id}),
        (manager, "/orders", {"subsite_id": other.subsite.id}),
        (manager, "/staff", {"store_id": other.store.id}),
        (manager, "/notifications", {"staff_id": other.consultants[0].id}),
        (bearer(admin_token), "/orders", {"subsite_id": other.subsite.id}),
        (bearer(admin_token), "/orders", {"store_id": other.store.id}),
        (bearer(staff), "/orders", {"assignee_id": mine.consultants[1].id}),
    ]
    for headers, path, params in refused:
        response = await offline_api.get(f"{V1}{path}", params=params, headers=headers)
        assert response.status_code == 403, (path, params, response.text)
        assert next(iter(params)) in response.json()["detail"]
    allowed = [
        (manager, "/orders", {"store_id": mine.store.id}),
        (bearer(admin_token), "/orders", {"subsite_id": mine.subsite.id}),
        (bearer(staff), "/orders", {"assignee_id": mine.consultants[0].id}),
    ]
    for headers, path, params in allowed:
        response = await offline_api.get(f"{V1}{path}", params=params, headers=headers)
        assert response.status_code == 200, (path, params, response.text)


def test_every_answer_is_a_public_type_and_every_list_a_page() -> None:
    """From the OpenAPI schema: each operation declares its answer (no untyped object), and
    no operation answers a bare array (lists are `Page`s: items, total, limit, offset)."""
    from api.app import create_app

    schema = create_app().openapi()
    components = schema["components"]["schemas"]
    untyped, bare_lists = [], []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = next((c for c in operation["responses"] if c.startswith("2")), None)
            content = operation["responses"][ok].get("content", {}) if ok else {}
            body = content.get("application/json", {}).get("schema")
            if body is None and "schema" in content.get("text/csv", {}):
                continue  # a report's CSV export: typed as text/csv in the schema
            if body is None:
                if ok != "204":
                    untyped.append(f"{method.upper()} {path}")
                continue
            if body == {} or (body.get("type") == "object" and "properties" not in body):
                untyped.append(f"{method.upper()} {path}")  # e.g. dict[str, Any]
            if body.get("type") == "array":
                bare_lists.append(f"{method.upper()} {path}")
            ref = body.get("$ref", "")
            if ref.startswith("#/components/schemas/Page"):
                page = components[ref.rsplit("/", 1)[1]]
                assert set(page["properties"]) == {"items", "total", "limit", "offset"}
    assert untyped == [], f"operations without a typed answer: {untyped}"
    assert bare_lists == [], f"lists that are not a Page: {bare_lists}"

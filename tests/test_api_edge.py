"""Rules met before any route: the body limit, unstorable text (NUL, broken Unicode) and
short echoes in 422s. The requests never reach Temporal (`offline_api`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from settings import settings
from tests.api_helpers import admin

ORDERS = "/api/v1/orders"


def raw_order(**fields: str) -> bytes:
    """An order as raw JSON text, so escapes like \\u0000 reach the server untouched."""
    body = {"order_id": "E1", "customer": '{"name": "Li", "phone": "+8613800000001"}'} | fields
    inner = ", ".join(
        f'"{k}": {v if v.startswith("{") else json.dumps(v)}' for k, v in body.items()
    )
    return ("{" + inner + "}").encode()


def json_headers() -> dict[str, str]:
    return admin() | {"content-type": "application/json"}


async def test_a_body_over_the_limit_answers_413_before_it_is_parsed(
    offline_api: httpx.AsyncClient,
) -> None:
    big = b'{"order_id": "E1", "category": "' + b"x" * settings.MAX_REQUEST_BODY_BYTES + b'"}'
    response = await offline_api.post(ORDERS, content=big, headers=json_headers())
    assert response.status_code == 413, response.text
    assert "MAX_REQUEST_BODY_BYTES" in response.json()["detail"]


async def test_the_limit_is_a_setting_and_holds_for_a_streamed_body(
    offline_api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "MAX_REQUEST_BODY_BYTES", 2048)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(4):
            yield b" " * 1000

    response = await offline_api.post(ORDERS, content=chunks(), headers=json_headers())
    assert response.status_code == 413, response.text
    small = await offline_api.post(ORDERS, content=b"[]", headers=json_headers())
    assert small.status_code == 422  # under the limit: parsed, and refused for its content


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"customer": '{"name": "Li\\u0000Lei", "phone": "+8613800000001"}'}, "customer.name"),
        ({"category": "tour\x00"}, "category"),
        ({"category": "\\ud800"}, "category"),  # an unpaired surrogate, as a JSON escape
    ],
)
async def test_text_the_database_cannot_store_answers_422_naming_it(
    offline_api: httpx.AsyncClient, fields: dict[str, str], where: str
) -> None:
    body = raw_order(**fields).replace(b"\\\\u", b"\\u")  # keep the escape as JSON text
    response = await offline_api.post(ORDERS, content=body, headers=json_headers())
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert ".".join(map(str, error["loc"])) == f"body.{where}"
    assert "cannot be stored" in error["msg"] or "not valid Unicode" in error["msg"]


async def test_the_same_rule_covers_action_reasons_queries_and_paths(
    offline_api: httpx.AsyncClient,
) -> None:
    reason = await offline_api.post(
        f"{ORDERS}/A1/redispatch",
        content=b'{"reason": "late\\u0000"}',
        headers=json_headers(),
    )
    assert reason.status_code == 422, reason.text
    assert reason.json()["detail"][0]["loc"] == ["body", "reason"]
    query = await offline_api.get(f"{ORDERS}?category=a%00b", headers=admin())
    assert query.status_code == 422, query.text
    assert query.json()["detail"][0]["loc"] == ["query", "category"]
    path = await offline_api.get(f"{ORDERS}/A%00B", headers=admin())
    assert path.status_code == 422, path.text
    broken = await offline_api.post(
        ORDERS, content=b'{"order_id": "\xff\xfe"}', headers=json_headers()
    )
    assert broken.status_code == 422, broken.text
    assert "UTF-8" in broken.json()["detail"][0]["msg"]


async def test_a_422_echoes_only_a_short_prefix_of_the_input(
    offline_api: httpx.AsyncClient,
) -> None:
    body = {"order_id": "E1", "category": "y" * 5000, "customer": {"phone": "1" * 30_000}}
    response = await offline_api.post(ORDERS, json=body, headers=admin())
    assert response.status_code == 422, response.text
    assert len(response.content) < 2000, response.text[:300]
    assert "y" * 100 not in response.text
    located = {".".join(map(str, e["loc"])) for e in response.json()["detail"]}
    assert "body.category" in located

"""Bad input: schemathesis against the API's own OpenAPI schema, every operation.

For each operation schemathesis generates requests that fit the schema (positive) and
requests that break it (negative), with a bounded number of examples. Every answer must
be below 500, and every 4xx must be a JSON body whose `detail` says what is wrong: a
sentence, or FastAPI's list of {loc, msg} naming each bad field.

The app runs in-process on the test's own event loop (httpx's ASGI transport) against
the real PostgreSQL, the time-skipping Temporal server and a worker on its own task queue
(`dispatch`), so an order POSTed here really starts a workflow. The cases are generated
first, then sent one by one.

FUZZ_EXAMPLES (default 25 per operation, split positive/negative) explores more.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from api.app import create_app
from settings import settings
from tests.conftest import Dispatch
from tests.factories import make_store_world

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
BUDGET_SECONDS = 50.0  # generation and requests together stop here (the rest is skipped)
REQUEST_TIMEOUT = 20.0

pytestmark = pytest.mark.timeout(120)


def _param(value: Any) -> str | list[str]:
    """httpx takes strings (or lists of them) as query values; send anything else as JSON."""
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _raw_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A non-JSON body as httpx wants it: a form (dict) as `data`, anything else as `content`."""
    if "json" in kwargs or kwargs.get("data") is None:
        return {}
    data = kwargs["data"]
    return {"data": data} if isinstance(data, dict) else {"content": data}


def rejection_problem(response: httpx.Response) -> str | None:
    """Why this answer is not acceptable, or None."""
    status = response.status_code
    if status >= 500:
        return f"HTTP {status}: {response.text[:300]}"
    if not 400 <= status < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {status} without a JSON body: {response.text[:200]!r}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return None if len(detail.strip()) >= 5 else f"HTTP {status}: detail {detail!r} says little"
    if isinstance(detail, list) and detail:
        for item in detail:
            if not (isinstance(item, dict) and str(item.get("msg", "")).strip() and "loc" in item):
                return f"HTTP {status}: a validation error without msg/loc: {item!r}"[:300]
        return None
    return f"HTTP {status} without a 'detail' that says what is wrong: {body!r}"[:300]


def generate(schema: Any) -> tuple[list[tuple[str, str, dict[str, Any]]], int]:
    """Every operation's cases in both modes, as request keyword arguments; and the count of
    operations with nothing to break. Generated up front, on this thread: Hypothesis walks
    source code with `ast` and CPython 3.11's `ast` is not safe across threads."""
    cases: list[tuple[str, str, dict[str, Any]]] = []
    unsatisfiable = 0
    auth = {"Authorization": f"Bearer {settings.ADMIN_TOKEN}"}

    def run(operation: Any, mode: GenerationMode, examples: int) -> None:
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, headers=auth))
        def collect(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://test")
            cases.append((operation.label, mode.value, kwargs))

        collect()

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, share in ((GenerationMode.POSITIVE, 0.6), (GenerationMode.NEGATIVE, 0.4)):
            try:
                run(operation, mode, max(1, round(EXAMPLES * share)))
            except Unsatisfiable:  # nothing to break here (e.g. no parameters)
                unsatisfiable += 1
    return cases, unsatisfiable


async def test_every_operation_answers_bad_input_with_a_4xx_that_says_why(
    dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "TEMPORAL_TASK_QUEUE", dispatch.task_queue)
    await make_store_world()  # a sub-site, a store and staff: positive cases meet real rows
    app = create_app()
    app.state.temporal = dispatch.client
    schema = schemathesis.openapi.from_dict(app.openapi())
    started = time.monotonic()
    cases, unsatisfiable = generate(schema)
    generated = time.monotonic()
    problems: list[str] = []
    sent = unsendable = skipped = 0
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for label, mode, kwargs in cases:
            if time.monotonic() - started > BUDGET_SECONDS:
                skipped += 1
                continue
            try:
                request = client.build_request(
                    kwargs["method"],
                    kwargs["url"],
                    params={k: _param(v) for k, v in (kwargs.get("params") or {}).items()},
                    headers={k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
                    json=kwargs.get("json"),
                    **_raw_body(kwargs),
                )
            except (TypeError, ValueError, UnicodeError):
                unsendable += 1  # not expressible as HTTP by the client
                continue
            try:
                response = await asyncio.wait_for(client.send(request), REQUEST_TIMEOUT)
            except TimeoutError:
                problems.append(f"{label} [{mode}] no answer in {REQUEST_TIMEOUT:.0f} s")
                continue
            sent += 1
            problem = rejection_problem(response)
            if problem and sum(p.startswith(label) for p in problems) < 3:
                body = {
                    k: kwargs.get(k) for k in ("url", "params", "json", "data") if kwargs.get(k)
                }
                problems.append(f"{label} [{mode}] {problem} — sent {body!r}"[:800])
    print(
        f"schemathesis: {len(cases)} cases generated in {generated - started:.1f} s,"
        f" {sent} sent in {time.monotonic() - generated:.1f} s ({unsendable} not expressible"
        f" as HTTP, {unsatisfiable} operation modes with nothing to generate,"
        f" {skipped} skipped past the {BUDGET_SECONDS:.0f} s budget)"
    )
    assert sent > 100, f"only {sent} of {len(cases)} cases were sent"
    assert not problems, f"{len(problems)} bad answers:\n" + "\n".join(problems)

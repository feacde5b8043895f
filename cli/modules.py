"""`o2o <module> …`: every module of the product from the command line, one API request each
(see cli/through_api.py). Bodies are given as JSON, exactly as the API takes them:

o2o order list --status escalated --store-id 3 | o2o order show A1001
o2o order accept A1001 --staff-id 12 | o2o order reassign A1001 --to 14 --reason "knows them"
o2o rule show new | o2o rule set new '{"accept_timeout_seconds": 300}' [--subsite-id 2]
o2o customer find --phone 13911110002 | o2o customer show 2
o2o subsite list | o2o subsite create '{"code": "hz", "name": "杭州"}' | o2o subsite admin-add 1 7
o2o store list --subsite-id 1 | o2o geo resolve 61.139.2.69 | o2o notice list --order-id A1001
o2o staff add --store-id 3 --name "Li Na" | o2o staff update 12 '{"capacity": 4}'
o2o staff move 12 --store-id 4 | o2o staff pause 12 | o2o staff points 12 --add 5 --reason VIP
o2o roster on-duty 3 | o2o roster patterns 12 '{"shifts": [...]}' | o2o roster leave-add 12 …
o2o token issue --role staff --staff-id 12 | o2o token list | o2o token revoke 7
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.through_api import call, console, parse_json, show

Json = Annotated[str, typer.Argument(help="a JSON object, as the API takes it")]
Reason = Annotated[str, typer.Option(help="recorded with the change")]
Limit = Annotated[int, typer.Option(min=1, max=500)]
Offset = Annotated[int, typer.Option(min=0)]


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True)


order_app = _group("Orders: list, full story, staff and manager actions (and start).")
rule_app = _group("Allocation rules per order type: head office's, or a sub-site's own.")
customer_app = _group("Customers and their communication records.")
subsite_app = _group("Regional sub-sites, their regions and admins.")
store_app = _group("Stores: open, change, list; their duty slots.")
geo_app = _group("IP location: which region and sub-site an address belongs to.")
notice_app = _group("The SMS and e-mail delivery log.")
staff_app = _group("Staff members, their rotation and points.")
roster_app = _group("The duty roster: patterns, leave, swaps, who is on duty.")
token_app = _group("Issue, list and revoke API tokens.")

GROUPS = {
    "order": order_app,
    "rule": rule_app,
    "customer": customer_app,
    "subsite": subsite_app,
    "store": store_app,
    "geo": geo_app,
    "notice": notice_app,
    "staff": staff_app,
    "roster": roster_app,
    "token": token_app,
}

ORDER_COLUMNS = ["id", "type", "status", "store_id", "assignee_id", "round", "customer_name"]
STAFF_COLUMNS = ["id", "name", "store_id", "role", "active", "rotation_paused", "phone", "email"]


# ---------------------------------------------------------------- orders


@order_app.command("list")
def order_list(
    store_id: Annotated[int | None, typer.Option()] = None,
    subsite_id: Annotated[int | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="received|waiting|assigned|…")] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    assignee_id: Annotated[int | None, typer.Option()] = None,
    escalated: Annotated[bool | None, typer.Option()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """Orders by store, sub-site, status, type, assignee (newest first)."""
    params = {
        "store_id": store_id,
        "subsite_id": subsite_id,
        "status": status,
        "type": type_,
        "assignee_id": assignee_id,
        "escalated": escalated,
        "limit": limit,
        "offset": offset,
    }
    show(call("GET", "/orders", params=params), ORDER_COLUMNS, items="items")


@order_app.command("show")
def order_show(order_id: str) -> None:
    """One order's full story: store and why, every round with its reason, every notice."""
    show(call("GET", f"/orders/{order_id}"))


def _staff_action(order_id: str, action: str, staff_id: int | None, reason: str) -> None:
    body = {"staff_id": staff_id, "reason": reason}
    show(call("POST", f"/orders/{order_id}/{action}", body=body))


StaffId = Annotated[int | None, typer.Option(help="the assignee (a staff token: themself)")]


@order_app.command("accept")
def order_accept(order_id: str, staff_id: StaffId = None) -> None:
    """The assignee takes the order."""
    _staff_action(order_id, "accept", staff_id, "")


@order_app.command("complete")
def order_complete(order_id: str, staff_id: StaffId = None, reason: Reason = "") -> None:
    """The assignee who accepted marks the order processed."""
    _staff_action(order_id, "complete", staff_id, reason)


@order_app.command("decline")
def order_decline(order_id: str, staff_id: StaffId = None, reason: Reason = "") -> None:
    """The assignee gives the order back; it is reassigned at once, to someone else."""
    _staff_action(order_id, "decline", staff_id, reason)


@order_app.command("reassign")
def order_reassign(
    order_id: str,
    to: Annotated[int, typer.Option(help="an active consultant of the order's store")],
    reason: Reason = "",
) -> None:
    """A manager gives the order to a named consultant."""
    show(call("POST", f"/orders/{order_id}/reassign", body={"staff_id": to, "reason": reason}))


@order_app.command("redispatch")
def order_redispatch(order_id: str, reason: Reason = "") -> None:
    """A manager asks for a new selection now (the current assignee is skipped)."""
    show(call("POST", f"/orders/{order_id}/redispatch", body={"reason": reason}))


@order_app.command("cancel")
def order_cancel(
    order_id: str,
    reason: Annotated[
        str, typer.Option(help="customer_cancelled | duplicate | spam | other (with --note)")
    ],
    note: Annotated[str, typer.Option(help="why, in words (required with 'other')")] = "",
) -> None:
    """End an order unhandled; whoever holds it is told."""
    show(call("POST", f"/orders/{order_id}/cancel", body={"reason": reason, "note": note}))


# ---------------------------------------------------------------- rules


SubSiteOption = Annotated[
    int | None, typer.Option(help="the sub-site's own rule (default: head office's)")
]


def _rule_path(order_type: str, subsite_id: int | None) -> str:
    return f"/subsites/{subsite_id}/rules/{order_type}" if subsite_id else f"/rules/{order_type}"


@rule_app.command("show")
def rule_show(
    order_type: Annotated[str, typer.Argument(help="new|unassigned|…")],
    subsite_id: SubSiteOption = None,
) -> None:
    """The allocation rule of an order type (in force for a sub-site, with --subsite-id)."""
    show(call("GET", _rule_path(order_type, subsite_id)))


@rule_app.command("set")
def rule_set(order_type: str, rule: Json, subsite_id: SubSiteOption = None) -> None:
    """Replace the rule (fields left out take their defaults); running orders use it from
    their next round. With --subsite-id: that sub-site's own rule."""
    show(call("PUT", _rule_path(order_type, subsite_id), body=parse_json(rule, "the rule")))


@rule_app.command("reset")
def rule_reset(order_type: str, subsite_id: Annotated[int, typer.Option()]) -> None:
    """Drop a sub-site's own rule: head office's is in force there again."""
    call("DELETE", _rule_path(order_type, subsite_id))
    console.print(f"sub-site {subsite_id} follows head office's {order_type} rule again")


# ---------------------------------------------------------------- customers


@customer_app.command("find")
def customer_find(
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option(help="partial; best match first")] = None,
    limit: Limit = 50,
) -> None:
    """Customers by phone (any format), e-mail or name."""
    params = {"phone": phone, "email": email, "name": name, "limit": limit}
    show(call("GET", "/customers", params=params), ["id", "name", "phone", "email"], items="items")


@customer_app.command("show")
def customer_show(customer_id: int) -> None:
    """A customer's profile with their communication records."""
    show(call("GET", f"/customers/{customer_id}"))


# ---------------------------------------------------------------- sub-sites, stores, geo


@subsite_app.command("list")
def subsite_list() -> None:
    """Every sub-site with its domain and regions."""
    show(
        call("GET", "/subsites"),
        ["id", "code", "name", "domain", "regions", "active"],
        items="items",
    )


@subsite_app.command("show")
def subsite_show(subsite_id: int) -> None:
    """A sub-site with its stores and admins."""
    show(call("GET", f"/subsites/{subsite_id}"))


@subsite_app.command("create")
def subsite_create(document: Json) -> None:
    """A new sub-site, e.g. '{"code": "hz", "name": "杭州分站", "regions": [{"code": "CN-ZJ"}]}'."""
    show(call("POST", "/subsites", body=parse_json(document, "the sub-site")))


@subsite_app.command("update")
def subsite_update(subsite_id: int, changes: Json) -> None:
    """Change the fields given."""
    show(call("PATCH", f"/subsites/{subsite_id}", body=parse_json(changes, "the changes")))


@subsite_app.command("admin-add")
def subsite_admin_add(subsite_id: int, staff_id: int) -> None:
    """Make a staff member of the sub-site its admin."""
    show(call("PUT", f"/subsites/{subsite_id}/admins/{staff_id}"))


@subsite_app.command("admin-remove")
def subsite_admin_remove(subsite_id: int, staff_id: int) -> None:
    """The staff member is no longer an admin of the sub-site (their admin tokens lapse)."""
    call("DELETE", f"/subsites/{subsite_id}/admins/{staff_id}")
    console.print(f"staff {staff_id} is no longer an admin of sub-site {subsite_id}")


@store_app.command("list")
def store_list(subsite_id: Annotated[int | None, typer.Option()] = None) -> None:
    """Stores, by sub-site."""
    columns = ["id", "code", "name", "subsite_id", "city", "timezone", "is_default", "active"]
    show(call("GET", "/stores", params={"subsite_id": subsite_id}), columns, items="items")


@store_app.command("show")
def store_show(store_id: int) -> None:
    """One store."""
    show(call("GET", f"/stores/{store_id}"))


@store_app.command("create")
def store_create(document: Json) -> None:
    """A new store, e.g. '{"subsite_id": 1, "code": "bj-west", "name": "West", "region_code":
    "CN-BJ", "city": "Beijing"}'."""
    show(call("POST", "/stores", body=parse_json(document, "the store")))


@store_app.command("update")
def store_update(store_id: int, changes: Json) -> None:
    """Change the fields given (a new default, time zone, address, active, …)."""
    show(call("PATCH", f"/stores/{store_id}", body=parse_json(changes, "the changes")))


@store_app.command("slots")
def store_slots(
    store_id: int,
    from_: Annotated[str | None, typer.Option("--from", help="ISO time with offset")] = None,
    to: Annotated[str | None, typer.Option(help="ISO time with offset")] = None,
) -> None:
    """A store's duty slots in a window (default: the next days)."""
    columns = ["id", "staff_id", "starts_at", "ends_at", "source"]
    show(
        call("GET", f"/stores/{store_id}/slots", params={"from": from_, "to": to}),
        columns,
        items="items",
    )


@geo_app.command("resolve")
def geo_resolve(ip: str) -> None:
    """The region and sub-site of an IP address (GeoIP2/GeoLite2 City)."""
    show(call("GET", "/geo/resolve", params={"ip": ip}))


@notice_app.command("list")
def notice_list(
    staff_id: Annotated[int | None, typer.Option()] = None,
    order_id: Annotated[str | None, typer.Option()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """Notices sent (or not) by SMS and e-mail, with their delivery status."""
    params = {"staff_id": staff_id, "order_id": order_id, "limit": limit, "offset": offset}
    columns = ["id", "order_id", "round", "kind", "channel", "staff_id", "recipient", "status"]
    show(call("GET", "/notifications", params=params), columns, items="items")


# ---------------------------------------------------------------- staff and points


@staff_app.command("list")
def staff_list(
    store_id: Annotated[int | None, typer.Option()] = None,
    subsite_id: Annotated[int | None, typer.Option()] = None,
    active: Annotated[bool | None, typer.Option()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """Staff of a store or sub-site."""
    params = {
        "store_id": store_id,
        "subsite_id": subsite_id,
        "active": active,
        "limit": limit,
        "offset": offset,
    }
    show(call("GET", "/staff", params=params), STAFF_COLUMNS, items="items")


@staff_app.command("show")
def staff_show(staff_id: int) -> None:
    """A staff member with their points balance."""
    show(call("GET", f"/staff/{staff_id}"))


@staff_app.command("add")
def staff_add(
    store_id: Annotated[int, typer.Option()],
    name: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="consultant | manager")] = "consultant",
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str, typer.Option(help="zh | en")] = "zh",
    capacity: Annotated[int | None, typer.Option(help="open orders at most")] = None,
) -> None:
    """Add a staff member to a store (give them a duty pattern to put them on duty)."""
    body = {
        "store_id": store_id,
        "name": name,
        "role": role,
        "phone": phone,
        "email": email,
        "language": language,
        "capacity": capacity,
    }
    show(call("POST", "/staff", body=body))


@staff_app.command("update")
def staff_update(staff_id: int, changes: Json) -> None:
    """Change the fields given (name, phone, email, language, role, capacity, …)."""
    show(call("PATCH", f"/staff/{staff_id}", body=parse_json(changes, "the changes")))


@staff_app.command("move")
def staff_move(
    staff_id: int, store_id: Annotated[int, typer.Option()], reason: Reason = ""
) -> None:
    """Move someone to another store: their open orders are re-dispatched now."""
    show(call("PATCH", f"/staff/{staff_id}", body={"store_id": store_id, "reason": reason}))


@staff_app.command("deactivate")
def staff_deactivate(staff_id: int, reason: Reason = "") -> None:
    """Deactivate someone: tokens revoked, open orders re-dispatched now."""
    show(call("PATCH", f"/staff/{staff_id}", body={"active": False, "reason": reason}))


@staff_app.command("pause")
def staff_pause(
    staff_id: int,
    reason: Reason = "",
    reassign_open: Annotated[bool, typer.Option(help="also re-dispatch open orders")] = False,
) -> None:
    """Out of office: left out of every draw until resumed."""
    body = {"reason": reason, "reassign_open": reassign_open}
    show(call("POST", f"/staff/{staff_id}/pause", body=body))


@staff_app.command("resume")
def staff_resume(staff_id: int) -> None:
    """Back in the draw; the store's waiting orders look again."""
    show(call("POST", f"/staff/{staff_id}/resume"))


@staff_app.command("points")
def staff_points(
    staff_id: int,
    add: Annotated[int, typer.Option(help="a manual adjustment (needs --reason)")] = 0,
    reason: Annotated[str, typer.Option()] = "",
    order_id: Annotated[str | None, typer.Option(help="the order it is for")] = None,
    limit: Limit = 20,
) -> None:
    """The balance, weight and latest ledger lines; `--add N --reason …` adjusts first."""
    if add:
        body = {"delta": add, "reason": reason, "order_id": order_id}
        call("POST", f"/staff/{staff_id}/points", body=body)
    ledger = call("GET", f"/staff/{staff_id}/points", params={"limit": limit})
    console.print(f"staff {staff_id}: balance {ledger['balance']}, weight {ledger['weight']}")
    show(ledger, ["created_at", "delta", "reason", "actor", "order_id"], items="entries")


# ---------------------------------------------------------------- roster


@roster_app.command("on-duty")
def roster_on_duty(
    store_id: int,
    at: Annotated[str | None, typer.Option(help="ISO time with offset (default now)")] = None,
    include_paused: Annotated[bool, typer.Option()] = False,
) -> None:
    """Who is on duty in a store at a time."""
    answer = call(
        "GET", f"/stores/{store_id}/on-duty", params={"at": at, "include_paused": include_paused}
    )
    console.print(f"store {store_id} at {answer['at']}:")
    show(answer["on_duty"], ["staff_id", "name", "role", "points", "weight", "open_orders"])


@roster_app.command("patterns")
def roster_patterns(
    staff_id: int,
    document: Annotated[
        str | None, typer.Argument(help='to set: {"shifts": [{"weekday": 0, …}]}')
    ] = None,
) -> None:
    """Show someone's weekly duty pattern, or set it (store time zone; re-rolls the roster)."""
    if document is None:
        show(call("GET", f"/staff/{staff_id}/patterns"))
        return
    body = parse_json(document, "the pattern")
    show(call("PUT", f"/staff/{staff_id}/patterns", body=body))


@roster_app.command("slots")
def roster_slots(
    staff_id: int,
    from_: Annotated[str | None, typer.Option("--from", help="ISO time with offset")] = None,
    to: Annotated[str | None, typer.Option(help="ISO time with offset")] = None,
) -> None:
    """Someone's concrete duty slots (the ids a swap names)."""
    columns = ["id", "store_id", "starts_at", "ends_at", "source", "replaces_staff_id"]
    show(
        call("GET", f"/staff/{staff_id}/slots", params={"from": from_, "to": to}),
        columns,
        items="items",
    )


@roster_app.command("leave")
def roster_leave(staff_id: int, include_past: Annotated[bool, typer.Option()] = False) -> None:
    """Someone's leave."""
    columns = ["id", "starts_at", "ends_at", "reason"]
    show(
        call("GET", f"/staff/{staff_id}/leave", params={"include_past": include_past}),
        columns,
        items="items",
    )


@roster_app.command("leave-add")
def roster_leave_add(
    staff_id: int,
    starts_at: Annotated[str, typer.Option(help="ISO time with offset")],
    ends_at: Annotated[str, typer.Option(help="ISO time with offset")],
    reason: Reason = "",
) -> None:
    """Time off; open orders are re-dispatched when it begins."""
    body = {"starts_at": starts_at, "ends_at": ends_at, "reason": reason}
    show(call("POST", f"/staff/{staff_id}/leave", body=body))


@roster_app.command("leave-cancel")
def roster_leave_cancel(staff_id: int, leave_id: int) -> None:
    """Cancel a leave (a planned one releases nothing)."""
    show(call("DELETE", f"/staff/{staff_id}/leave/{leave_id}"))


@roster_app.command("swap")
def roster_swap(slot_id: int, other_slot_id: int, reason: Reason = "") -> None:
    """Two people of a store swap duty slots."""
    body = {"slot_id": slot_id, "other_slot_id": other_slot_id, "reason": reason}
    show(call("POST", "/roster/swaps", body=body))


@roster_app.command("roll")
def roster_roll(days: Annotated[int, typer.Option(min=1, max=92)] = 14) -> None:
    """Roll the roster `days` ahead now (what the schedule does) and wake waiting orders."""
    show(call("POST", "/roster/roll", body={"days": days}))


# ---------------------------------------------------------------- tokens


@token_app.command("issue")
def token_issue(
    role: Annotated[str, typer.Option(help="staff | store_manager | subsite_admin | …")],
    staff_id: Annotated[int | None, typer.Option(help="whose token")] = None,
    name: Annotated[str, typer.Option(help="label (default: the person's name)")] = "",
) -> None:
    """Issue a token; the plain token is printed once and stored hashed."""
    issued: dict[str, Any] = call(
        "POST", "/tokens", body={"role": role, "staff_id": staff_id, "name": name}
    )
    console.print(f"token {issued['id']} ({issued['role']}, {issued['name']}):")
    console.print(issued["token"], markup=False, highlight=False)
    console.print("[dim]shown once: it is stored hashed[/dim]")


@token_app.command("list")
def token_list(
    all_: Annotated[bool, typer.Option("--all", help="revoked ones too")] = False,
    limit: Limit = 100,
) -> None:
    """Tokens, without secrets."""
    columns = ["id", "name", "role", "staff_id", "store_id", "subsite_id", "revoked_at"]
    show(
        call("GET", "/tokens", params={"include_revoked": all_, "limit": limit}),
        columns,
        items="items",
    )


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token: refused (401) from now on."""
    show(call("DELETE", f"/tokens/{token_id}"))

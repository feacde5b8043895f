"""The custom search attributes operators filter orders by in the Temporal UI."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
ORDER_TYPE = SearchAttributeKey.for_keyword("OrderType")
STORE_ID = SearchAttributeKey.for_keyword("StoreId")
SUB_SITE = SearchAttributeKey.for_keyword("SubSite")
ASSIGNEE_ID = SearchAttributeKey.for_keyword("AssigneeId")
ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
REASSIGN_COUNT = SearchAttributeKey.for_int("ReassignCount")

ALL = (ORDER_ID, ORDER_TYPE, STORE_ID, SUB_SITE, ASSIGNEE_ID, ORDER_STATUS, REASSIGN_COUNT)


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` pairs for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags


async def register(client: Client) -> None:
    """Create the attributes on a server that lacks them (a cluster, the test server)."""
    types = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    }
    wanted = {key.name: types[key.indexed_value_type.name] for key in ALL}
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        wanted = {k: v for k, v in wanted.items() if k not in existing.custom_attributes}
    except RPCError as exc:  # the time-skipping test server only implements "add"
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
    if wanted:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=wanted)
        )

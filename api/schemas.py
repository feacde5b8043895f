"""Request and response bodies: validated at the edge, so bad input is a 4xx that says why."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from models import OrderType
from notify.contacts import normalize_email, normalize_phone
from workflows.contracts import CustomerIn, OrderRequest

# Ids are PostgreSQL `integer`s: a larger one can name nothing (and must not reach a workflow).
MAX_ID = 2_147_483_647


def _e164(value: str | None) -> str | None:
    return normalize_phone(value) if value else None


def _normal_email(value: str | None) -> str | None:
    return normalize_email(value) if value else None


# Contact fields of every body: a phone number is stored as E.164, an e-mail normalised.
PhoneNumber = Annotated[str | None, AfterValidator(_e164)]
EmailAddress = Annotated[str | None, AfterValidator(_normal_email)]


class CustomerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)
    phone: PhoneNumber = Field(default=None, max_length=32)
    email: EmailAddress = Field(default=None, max_length=254)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    type: OrderType = OrderType.NEW
    customer: CustomerBody = Field(description="who ordered: a phone or an e-mail is needed")
    category: str = Field(default="", max_length=64)
    priority: int = Field(default=0, ge=-100, le=100)
    store_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    client_ip: str | None = Field(default=None, max_length=45)
    preferred_staff_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="a consultant who served the customer before"
    )
    assignee_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    wished_store_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="a store the customer chose"
    )
    prefer_last_consultant: bool = Field(
        default=False,
        description="give it to whoever served the customer last (unless preferred_staff_id)",
    )

    host: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="the Host the visitor ordered through (defaults to this request's Host)",
    )

    @field_validator("customer")
    @classmethod
    def _reachable(cls, value: CustomerBody) -> CustomerBody:
        if not (value.phone or value.email):
            raise ValueError("a phone or an e-mail is needed to reach the customer")
        return value

    def to_request(self, *, host: str | None = None) -> OrderRequest:
        """The workflow's input (the same fields, by name); `host` is used when the body
        names none."""
        values = self.model_dump(exclude={"type", "customer", "host"})
        return OrderRequest(
            **values,
            type=self.type.value,
            customer=CustomerIn(**self.customer.model_dump()),
            host=self.host or host,
        )

    @field_validator("client_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        import ipaddress

        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from exc


class OrderAccepted(BaseModel):
    order_id: str
    workflow_id: str
    run_id: str | None
    status_url: str


class StaffActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="defaults to the caller's staff id"
    )
    reason: str = Field(default="", max_length=500)


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: int = Field(ge=1, le=MAX_ID, description="an active consultant of the order's store")
    reason: str = Field(default="", max_length=500)


class RedispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["customer_cancelled", "duplicate", "spam", "other"]
    note: str = Field(default="", max_length=300, description="required with reason 'other'")

"""The data model. Importing this package registers every table on `SQLModel.metadata`."""

from models.audit import AuditEntry
from models.auth import ApiToken, Role
from models.console import ConsoleLinkUse, SignInCode
from models.customers import CommunicationRecord, Customer
from models.notifications import Channel, NoticeKind, NoticeStatus, Notification
from models.orders import (
    OPEN_OUTCOMES,
    Assignment,
    AssignmentOutcome,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
)
from models.roster import DutyPattern, DutySlot, Leave, SlotSource
from models.rules import (
    DEFAULT_CHANNELS,
    AfterEscalation,
    AllocationRule,
    AllocationRuleFields,
    SelectionMethod,
    SubSiteRule,
    WishFallback,
)
from models.sites import Store, SubSite, SubSiteAdmin
from models.staff import Language, PointsEntry, Staff, StaffRole

__all__ = [
    "DEFAULT_CHANNELS",
    "OPEN_OUTCOMES",
    "AfterEscalation",
    "AllocationRule",
    "AllocationRuleFields",
    "ApiToken",
    "Assignment",
    "AssignmentOutcome",
    "AuditEntry",
    "Channel",
    "CommunicationRecord",
    "ConsoleLinkUse",
    "Customer",
    "DutyPattern",
    "DutySlot",
    "Language",
    "Leave",
    "NoticeKind",
    "NoticeStatus",
    "Notification",
    "Order",
    "OrderEvent",
    "OrderStatus",
    "OrderType",
    "PointsEntry",
    "Role",
    "SelectionMethod",
    "SignInCode",
    "SlotSource",
    "Staff",
    "StaffRole",
    "Store",
    "SubSite",
    "SubSiteAdmin",
    "SubSiteRule",
    "WishFallback",
]

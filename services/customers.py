"""Customers: their communication records (who served them, when, which store, what was
said), read the same way by the API, the console and the consultant's offer page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import CommunicationRecord, Staff, Store


@dataclass(frozen=True)
class Record:
    record: CommunicationRecord
    staff: Staff
    store: Store


async def records_of(
    *, db: AsyncSession, customer_id: int, limit: int | None = None
) -> list[Record]:
    """The customer's communication records, newest first, with who served and where."""
    query = (
        select(CommunicationRecord, Staff, Store)
        .join(Staff, col(Staff.id) == CommunicationRecord.staff_id)
        .join(Store, col(Store.id) == CommunicationRecord.store_id)
        .where(CommunicationRecord.customer_id == customer_id)
        .order_by(col(CommunicationRecord.occurred_at).desc(), col(CommunicationRecord.id).desc())
        .limit(limit)
    )
    return [Record(r, s, st) for r, s, st in (await db.exec(query)).all()]

"""USD budgets: the limits an admin set, the spend held against each, and the reservations of
model calls in flight (see migration 0010 and :mod:`capabilities.budgets.repository`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, DateTime, Index, Integer, Numeric, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import Base, _enum, _workspace_key

BUDGET_PERIODS = ("month", "day")
RESERVATION_STATUSES = ("held", "settled", "released", "expired")


class Budget(Base):
    """One limit: the workspace's monthly budget (``scope_key = 'workspace'``), the default for
    every user (``'user'``) or one user's override (``'user:<users.id>'``), per period.
    ``limit_usd`` NULL means "explicitly no budget" (it overrides a default from settings)."""

    __tablename__ = "budgets"

    workspace_id: Mapped[uuid.UUID] = _workspace_key()
    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(_enum(BUDGET_PERIODS, "budget_period"), primary_key=True)
    limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class BudgetSpend(Base):
    """What one scope spent (settled) and holds (reserved) in one period; the row a reservation
    locks. ``refused_at_limit``: the limit at which a reservation was last refused, so ingress
    refuses new requests until an admin raises it. ``warned_at``: when the admins were told the
    month's spend passed 80% (once per scope per month)."""

    __tablename__ = "budget_spend"

    workspace_id: Mapped[uuid.UUID] = _workspace_key()
    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(_enum(BUDGET_PERIODS, "budget_spend_period"), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    settled_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), nullable=False, server_default="0")
    reserved_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), nullable=False, server_default="0")
    refused_at_limit: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the 80% notice
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class BudgetReservation(Base):
    """One model call's hold on the budgets, keyed by its activity attempt
    (``workflow id/run id/activity id/attempt``): held, then settled, released or expired."""

    __tablename__ = "budget_reservations"
    __table_args__ = (
        Index("ix_budget_reservations_held", "expires_at", postgresql_where=text("status = 'held'")),
    )

    workspace_id: Mapped[uuid.UUID] = _workspace_key()
    reservation_key: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    month_start: Mapped[date] = mapped_column(Date, nullable=False)
    day_start: Mapped[date] = mapped_column(Date, nullable=False)
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), nullable=False)
    max_tokens: Mapped[int | None] = mapped_column(Integer)  # the answer length the hold covers
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    model: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(
        _enum(RESERVATION_STATUSES, "reservation_status"), nullable=False, server_default="held"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

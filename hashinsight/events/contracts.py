"""Typed event contracts. Every published payload is validated against its (type, version) model,
so a malformed event fails in the transaction that tried to publish it, not in a worker later."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MinerCreated(Contract):
    miner_id: int
    site_id: int
    customer_id: int | None
    model_id: int
    serial: str


class MinersBulkImported(Contract):
    site_ids: list[int]
    customer_ids: list[int]
    count: int = Field(ge=1)
    first_id: int | None
    last_id: int | None
    actor_id: int


class PortfolioChanged(Contract):
    user_id: int


class AlertEvent(Contract):
    alert_id: int
    site_id: int
    customer_id: int | None
    miner_id: int | None
    alert_type: str
    severity: Literal["info", "warning", "critical"]
    status: Literal["open", "acknowledged", "resolved"]
    count: int
    message: str


class CommandEvent(Contract):
    command_id: int
    site_id: int
    status: str
    command_type: str


class ForecastRefreshed(Contract):
    subject: str  # "user:12", "network"
    horizon_days: int = Field(ge=1, le=90)
    generated_at: datetime


class CurtailmentPlanned(Contract):
    site_id: int
    plan_date: date
    expected_profit_usd: Decimal


REGISTRY: dict[tuple[str, int], type[Contract]] = {
    ("miner.created", 1): MinerCreated,
    ("miners.bulk_imported", 1): MinersBulkImported,
    ("portfolio.changed", 1): PortfolioChanged,
    ("alert.raised", 1): AlertEvent,
    ("alert.updated", 1): AlertEvent,
    ("alert.resolved", 1): AlertEvent,
    ("command.created", 1): CommandEvent,
    ("command.updated", 1): CommandEvent,
    ("forecast.refreshed", 1): ForecastRefreshed,
    ("curtailment.planned", 1): CurtailmentPlanned,
}

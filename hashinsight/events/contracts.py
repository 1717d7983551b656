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


class MinerChanged(Contract):
    """miner.updated / miner.deleted. ``old_*`` differ from the current ids when the miner moved,
    so both the site (or client) it left and the one it joined are refreshed."""

    miner_id: int
    site_id: int
    old_site_id: int
    customer_id: int | None
    old_customer_id: int | None
    model_id: int


class MinerModelChanged(Contract):
    """A catalog entry's nominal figures changed (or it was added or removed): every portfolio and
    site summary using it is stale."""

    model_id: int
    action: Literal["created", "updated", "deleted"]


class SiteChanged(Contract):
    """site.changed / zone.changed / customer.changed: a site, zone or hosting client was created,
    edited or deleted (``site_id`` is None for a hosting client)."""

    object_id: int
    site_id: int | None
    action: Literal["created", "updated", "deleted"]


class AccessGrant(Contract):
    user_id: int
    codename: str


class AccessChanged(Contract):
    """Direct user grants on one site or hosting client changed (site.access_changed /
    customer.access_changed). ``user_ids`` are the users whose scope changed."""

    object_id: int
    actor_id: int | None
    added: list[AccessGrant]
    removed: list[AccessGrant]
    user_ids: list[int]


class PortfolioChanged(Contract):
    user_id: int


class UserRoleChanged(Contract):
    """A user's role changed (accounts.services.user_update); the audit chain will record it."""

    user_id: int
    old_role: str
    new_role: str
    actor_id: int


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
    previous_status: str | None = None
    risk_tier: str | None = None
    approvals: int = 0
    approvals_required: int = 0
    verification: str = ""  # the effect seen in telemetry (commands.verification): "" until acknowledged


class ForecastRefreshed(Contract):
    subject: str  # "user:12", "network"
    horizon_days: int = Field(ge=1, le=90)
    generated_at: datetime


class CurtailmentPlanned(Contract):
    site_id: int
    plan_date: date
    expected_profit_usd: Decimal


class PowerPricesLoaded(Contract):
    """A site's power prices were loaded (upload, feed, shipped series): its day-ahead plans are stale.
    ``first`` and ``last`` are the first and last interval starts loaded (None for an empty series)."""

    site_id: int
    market: str
    intervals: int = Field(ge=0)
    first: datetime | None
    last: datetime | None
    source: str


class EdgeDeviceChanged(Contract):
    device_id: int
    site_id: int
    action: Literal["enrolled", "registered", "rotated", "revoked"]


class TelemetryIngested(Contract):
    """A batch of samples landed in ``raw`` and ``live``; alert rules run over its miners."""

    site_id: int
    device_id: int
    accepted: int = Field(ge=0)
    miner_ids: list[int]
    newest_ts: datetime


class SafetyEventsReceived(Contract):
    site_id: int
    device_id: int
    safety_event_ids: list[int]


class AlertRulesChanged(Contract):
    site_id: int
    kinds: list[str]


class TelemetryRolledUp(Contract):
    layer: Literal["history_5m", "daily"]
    window_start: datetime
    window_end: datetime
    site_ids: list[int]


class CurtailmentEventChanged(Contract):
    """A curtailment event changed status (intelligence.curtailment_events); pages and billing react."""

    event_id: int
    site_id: int
    status: str
    previous_status: str | None = None
    source: str
    priority: str


# --- The hosting business loop (issue 10) ---------------------------------------------------------------------------


class DealChanged(Contract):
    deal_id: int
    customer_id: int | None
    stage: str
    previous_stage: str | None = None


class HostingContractChanged(Contract):
    contract_id: int
    customer_id: int
    site_id: int
    status: str
    previous_status: str | None = None


class InvoiceChanged(Contract):
    """An invoice was built, issued, paid, credited or went overdue (hashinsight.billing)."""

    invoice_id: int
    customer_id: int
    site_id: int
    status: str
    previous_status: str | None = None
    number: str | None = None


class PaymentRecorded(Contract):
    payment_id: int
    invoice_id: int
    customer_id: int
    method: str
    amount: Decimal
    currency: str
    chain_status: str


class ForceMajeureChanged(Contract):
    window_id: int
    site_id: int
    start: datetime
    end: datetime
    deleted: bool = False


class ProofRootClosed(Contract):
    day: date
    root_sha256: str
    leaf_count: int


class ReportJobChanged(Contract):
    job_id: int
    status: str
    progress_pct: int
    requested_by_id: int | None
    site_id: int | None
    customer_id: int | None


REGISTRY: dict[tuple[str, int], type[Contract]] = {
    ("miner.created", 1): MinerCreated,
    ("miners.bulk_imported", 1): MinersBulkImported,
    ("miner.updated", 1): MinerChanged,
    ("miner.deleted", 1): MinerChanged,
    ("miner_model.changed", 1): MinerModelChanged,
    ("site.changed", 1): SiteChanged,
    ("zone.changed", 1): SiteChanged,
    ("customer.changed", 1): SiteChanged,
    ("site.access_changed", 1): AccessChanged,
    ("customer.access_changed", 1): AccessChanged,
    ("portfolio.changed", 1): PortfolioChanged,
    ("user.role_changed", 1): UserRoleChanged,
    ("alert.raised", 1): AlertEvent,
    ("alert.updated", 1): AlertEvent,
    ("alert.resolved", 1): AlertEvent,
    ("command.created", 1): CommandEvent,
    ("command.updated", 1): CommandEvent,
    ("forecast.refreshed", 1): ForecastRefreshed,
    ("curtailment.planned", 1): CurtailmentPlanned,
    ("power_prices.loaded", 1): PowerPricesLoaded,
    ("edge_device.changed", 1): EdgeDeviceChanged,
    ("telemetry.ingested", 1): TelemetryIngested,
    ("safety_events.received", 1): SafetyEventsReceived,
    ("alert_rules.changed", 1): AlertRulesChanged,
    ("telemetry.rolled_up", 1): TelemetryRolledUp,
    ("curtailment_event.changed", 1): CurtailmentEventChanged,
    ("deal.changed", 1): DealChanged,
    ("hosting_contract.changed", 1): HostingContractChanged,
    ("invoice.changed", 1): InvoiceChanged,
    ("payment.recorded", 1): PaymentRecorded,
    ("force_majeure.changed", 1): ForceMajeureChanged,
    ("proof_root.closed", 1): ProofRootClosed,
    ("report_job.changed", 1): ReportJobChanged,
}

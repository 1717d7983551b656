"""Curtailment events (issue 9, part 4c): what operators run every day — a scope, a mode, a window bounded by a
minimum and a maximum duration, carried out by ``CURTAIL`` commands through the control plane, confirmed from
telemetry, restored in staggered batches and settled per miner for billing.

Selectors (reads, scoped): ``event_list``, ``event_get``, ``event_body``. Services (writes): ``event_preview``
(reads only), ``event_start``, ``event_end``, ``event_tick`` (the Beat job's), ``dr_message`` (the webhook's).

Who may do what: events belong to the CURTAILMENT module (READ to read, FULL to start and end) and to a site: a
site the user does not see is a 404, one seen only through a read-only grant a 403 ``site_read_only``
(``sites.selectors``, the same rules as plans and commands). Hosting clients have no CURTAILMENT access (the role
matrix), so they never see events; their share of an event is billed through ``CurtailmentEventMiner.customer``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from hashinsight.accounts.roles import Module
from intelligence.models import CurtailmentEvent

MODULE = Module.CURTAILMENT


def event_list(*, user) -> QuerySet[CurtailmentEvent]:
    """The events of the sites ``user`` sees, newest first (none without READ on CURTAILMENT). One query; the
    queryset has ``site`` selected, so a list page may filter (site, status, source, priority) and sort it."""
    raise NotImplementedError


def event_get(*, user, event_id: int) -> CurtailmentEvent:
    """One event ``user`` may see, else ``DomainError("not_found", status=404)`` (hidden and missing alike)."""
    raise NotImplementedError


def event_preview(
    *, actor, site_id: int, mode: str, scope: dict | None = None, target_kw=None, priority: str = "normal",
    profile_id: int | None = None, soft: bool = False, client_priority: dict | None = None,
) -> dict:  # fmt: skip
    """What an event would do, without doing it (no row written, no command proposed). See ``event_start``
    for the arguments; ``profile_id`` fills what is not given from a response profile of the site.

    Returns a JSON-ready dict (money and kW as decimal strings)::

        {"site", "mode", "priority", "scope", "target_kw", "command_mode": "hard"|"soft",
         "miners": [{"id", "serial", "model", "customer", "zone", "rack", "kw", "ths", "j_per_th",
                     "shed_kw", "power_target_w", "batch", "source": "live"|"nominal"}],   # restore order
         "miner_count", "shed_kw", "ths", "energy_kwh_per_hour", "revenue_forgone_usd_per_hour",
         "hashprice_usd_per_th_day", "hashprice_source",
         "restore": {"batch_size", "interval_seconds", "batches", "total_seconds"},
         "available_kw"}

    Refusals (``DomainError``): 404 ``not_found`` (site hidden or missing, profile not of the site); 403
    ``permission_denied`` / ``site_read_only`` (needs FULL and a manage grant, previewing is the first step of
    starting); 400 ``invalid_scope`` / ``invalid`` / ``invalid_choice`` / ``out_of_range`` with
    ``details.field``; 400 ``empty_scope`` (no active miner in scope); 400 ``cannot_shed`` when ``target_kw`` is
    more than the scope can shed (``details.available_kw``)."""
    raise NotImplementedError


def event_start(
    *, actor, site_id: int, mode: str, scope: dict | None = None, target_kw=None, priority: str = "normal",
    profile_id: int | None = None, soft: bool = False, client_priority: dict | None = None,
    starts_at: datetime | None = None, min_duration_minutes: int | None = None,
    max_duration_minutes: int | None = None, restore_batch_size: int | None = None,
    restore_interval_seconds: int | None = None, drift_action: str | None = None, reason: str = "",
    source: str = CurtailmentEvent.Source.MANUAL, program=None, external_id: str = "",
) -> CurtailmentEvent:  # fmt: skip
    """Start (schedule) an event: the preview's miners become ``CurtailmentEventMiner`` rows and one ``CURTAIL``
    command per restore batch is proposed through ``commands.services.command_propose`` (window ``starts_at`` →
    ``max_end_at + batch × interval``), linked in ``event.commands``. The event stays SCHEDULED until its commands
    are acknowledged (``event_tick``). All or nothing: a refusal of one command rolls everything back.

    Arguments: ``mode`` ``kw_reduction`` (needs ``target_kw`` > 0) or ``full_stop``; ``scope``
    ``{"kind": "site"|"zone"|"rack"|"customer"|"miners", "ids": [...]}`` (zone and customer: ids; rack: names;
    miners: serials or ids; ``{}`` or kind site: the whole site); ``priority`` ``normal`` | ``emergency``;
    ``soft`` (kw_reduction only) throttles to half the nameplate instead of stopping; ``client_priority`` as in
    curtailment plans (``{"own": p, "<customer id>": p}``, higher curtailed later, ``"firm"`` never in a normal
    event); ``starts_at`` default now (at most 7 days ahead); durations, batch, interval and drift action default
    to the profile's, else the ResponseProfile field defaults. Returns the event.

    Refusals: those of ``event_preview``, plus 400 ``out_of_range`` (durations, batch, interval, a window longer
    than the control plane's 7 days), and the control plane's own (``unsafe_command`` 400, ...)."""
    raise NotImplementedError


def event_end(*, actor, event: CurtailmentEvent, reason: str = "", force: bool = False) -> CurtailmentEvent:
    """End an event now: before its start → CANCELLED (its commands cancelled); while it runs → RESTORING, the
    restore batches following one another at the event's interval (``event_tick`` proposes them), then ENDED.
    An event already restoring, ended, cancelled or failed is returned unchanged (idempotent).

    Refusals: 404 (hidden), 403 (no FULL / read-only site), 409 ``min_duration`` before ``min_end_at`` unless
    the event's priority is emergency or ``force`` is given by an owner (403 ``force_owner_only`` otherwise)."""
    raise NotImplementedError


def event_tick(now: datetime | None = None) -> dict:
    """Move every open event along (the Beat job's body, every 30 s): SCHEDULED → ACTIVE when its commands are
    acknowledged; miners CURTAILED → CONFIRMED from telemetry, drift detection and its action, ACTIVE → RESTORING
    at ``max_end_at``, early-ended events' staggered restore, settlement and ENDED. Idempotent; rows another
    worker holds are skipped (``select_for_update(skip_locked=True)``). Returns counts."""
    raise NotImplementedError


def event_body(event: CurtailmentEvent, *, full: bool = True) -> dict:
    """Plain JSON for the API and the pages: money and kW as decimal strings, times in UTC ISO 8601.
    ``full`` adds ``miners_summary`` (counts per state and per batch), ``commands`` ([{id, type, status}]) and
    ``preview``."""
    raise NotImplementedError


def settle_miner(
    *, kw_shed: Decimal, ths_forgone: Decimal, hours: Decimal, hashprice: Decimal
) -> tuple[Decimal, Decimal]:
    """Energy avoided (kWh, 3 places) and revenue forgone (USD, 2 places) for ``hours`` curtailed."""
    raise NotImplementedError

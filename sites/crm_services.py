"""Writes of the CRM (module CRM): deals and hosting contracts.

Every function here is one transaction that locks what it changes, refuses bad input with a ``DomainError``
(400 with a code, 403/404/409 where that is what it means) before anything is written, and publishes
``deal.changed`` / ``hosting_contract.changed`` on the outbox in the same transaction. Contract activation, end,
termination, changes to an active contract, its miners and its signed document are appended to the audit chain
(the document with its SHA-256), late in the transaction.

The caller finds the object through ``sites.crm_selectors`` (hidden → 404); the writer is checked here as well
(CRM FULL: owners and admins; a site owner reads only → 403 ``crm_read_only``).

Rules, in one place:
- a deal names a client or a prospect company; its sales owner is a user who may write CRM (owner or admin);
  a won deal that has contracts stays won. ``deal_convert`` turns a deal into a draft contract for its client at
  its site (a prospect becomes a hosting client first); converting again returns the same contract.
- a contract's tariff is complete for its kind (all-in: rate > 0; per kWh + fixed: rate and fee > 0; revenue
  share: 0 < share ≤ 100) and the parameters its kind does not use are 0; its SLA credit schedule is a list of
  ``{"below_pct", "credit_pct"}`` decimal strings in 0–100, thresholds strictly descending; a credit rate per
  miner-hour is set exactly when the curtailment credit is "rate".
- a client has at most one active contract per site for any day (overlapping active contracts are refused).
- draft → active → ended, or draft/active → terminated (with a reason); ended and terminated contracts do not
  change any more. Repeating a change that is already done changes nothing and publishes nothing.
- miners covered: only the contract's client's miners at the contract's site; none listed means all of them.
- the signed document is a PDF, PNG or JPEG of at most 10 MB, told by its first bytes (not its name), stored in
  private storage under a name of ours.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.events import audit, outbox
from sites.models import CurtailmentCreditKind, Customer, Deal, HostingContract, TariffKind

C = HostingContract.Status
DEAL_FIELDS = frozenset({
    "title", "customer", "prospect_company", "contact_name", "contact_email", "site", "stage", "expected_miners",
    "expected_mw", "value", "currency", "owner", "expected_close", "notes",
})  # fmt: skip
CONTRACT_FIELDS = frozenset({
    "number", "customer", "site", "deal", "start_date", "end_date", "currency", "deposit", "payment_terms_days",
    "tariff_kind", "energy_basis", "rate_per_kwh", "fixed_fee_per_miner_month", "revenue_share_pct",
    "sla_uptime_target_pct", "sla_credit_schedule", "curtailment_allowance_hours", "curtailment_credit_kind",
    "curtailment_credit_per_miner_hour", "curtailment_priority", "firm", "sales_owner", "commission_pct", "notes",
})  # fmt: skip
TARIFF_PARAMS = ("rate_per_kwh", "fixed_fee_per_miner_month", "revenue_share_pct")
TARIFF_NEEDS = {
    TariffKind.ALL_IN_KWH: ("rate_per_kwh",),
    TariffKind.KWH_PLUS_FIXED: ("rate_per_kwh", "fixed_fee_per_miner_month"),
    TariffKind.REVENUE_SHARE: ("revenue_share_pct",),
}
SLA_MAX_STEPS = 10
MAX_MINERS = 100_000
MAX_PAYMENT_TERMS_DAYS = 365
MAX_CURTAILMENT_PRIORITY = 100
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
# What a signed document may be, told by its first bytes: (magic, extension, content type).
DOCUMENT_KINDS = (
    (b"%PDF-", "pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
)
CONTENT_TYPES = {ext: ctype for _magic, ext, ctype in DOCUMENT_KINDS}
HUNDRED = Decimal(100)
# Contract numbers are quoted on invoices and in file names: no spaces, quotes or control characters.
NUMBER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")


# ---------------------------------------------------------------------------------------------------------
# Shared helpers


def _bad(code: str, message: str, *, status: int = 400, **details) -> DomainError:
    return DomainError(code, message, status=status, details=details)


def _require_writer(actor) -> None:
    if actor is not None and not has_access(actor, Module.CRM, Access.FULL):
        raise _bad("crm_read_only", _("You may read deals and contracts but not change them."), status=403)


def _only(fields: dict, allowed: frozenset) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise _bad("unknown_field", _("These fields cannot be set here: %(f)s.") % {"f": ", ".join(unknown)},
                   fields=unknown)  # fmt: skip


def _clean(instance) -> None:
    """``full_clean`` (field validators, choices, uniqueness, the model's check constraints) as a 400 naming the
    fields."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        details = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        raise _bad("invalid", _("The values are not valid; see details."), **details) from None


def _sales_user(user, field: str) -> None:
    if user is None:
        return
    if not user.is_active or not has_access(user, Module.CRM, Access.FULL):
        raise _bad("invalid_owner", _("A sales owner is an active owner or administrator."), field=field)


def _actor(actor) -> tuple[str, str]:
    return audit.actor_of(actor)


def _today() -> date:
    return timezone.localdate()


def _publish_deal(deal: Deal, previous_stage: str | None) -> None:
    outbox.publish(
        "deal.changed", aggregate=f"deal:{deal.pk}",
        payload={"deal_id": deal.pk, "customer_id": deal.customer_id, "stage": deal.stage,
                 "previous_stage": previous_stage},
    )  # fmt: skip


def _publish_contract(contract: HostingContract, previous_status: str | None) -> None:
    outbox.publish(
        "hosting_contract.changed", aggregate=f"hosting_contract:{contract.pk}",
        payload={"contract_id": contract.pk, "customer_id": contract.customer_id, "site_id": contract.site_id,
                 "status": contract.status, "previous_status": previous_status},
    )  # fmt: skip


def _audit_contract(event_type: str, contract: HostingContract, *, actor, payload: dict) -> None:
    actor_type, actor_id = _actor(actor)
    audit.audit_append(
        event_type=event_type, actor_type=actor_type, actor_id=actor_id,
        reference=f"hosting_contract:{contract.pk}", site=contract.site_id,
        payload={"contract_id": contract.pk, "number": contract.number, "customer_id": contract.customer_id,
                 "status": contract.status, **payload},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Deals


def _check_deal(deal: Deal) -> None:
    if deal.customer_id is None and not (deal.prospect_company or "").strip():
        raise _bad("invalid", _("Name the hosting client or, for a prospect, its company."), field="customer")
    _clean(deal)
    _sales_user(deal.owner, "owner")


@transaction.atomic
def deal_create(*, actor, **fields) -> Deal:
    """A new deal (a lead unless ``stage`` says otherwise); its sales owner defaults to ``actor``."""
    _require_writer(actor)
    _only(fields, DEAL_FIELDS)
    fields.setdefault("owner", actor)
    deal = Deal(**fields)
    if deal.owner_id is None:
        raise _bad("invalid_owner", _("A deal needs a sales owner."), field="owner")
    _check_deal(deal)
    deal.save()
    _publish_deal(deal, None)
    return deal


@transaction.atomic
def deal_update(*, actor, deal: Deal, **fields) -> Deal:
    """Change a deal's fields (``stage`` too, under ``deal_set_stage``'s rule). Nothing changed: no event."""
    _require_writer(actor)
    _only(fields, DEAL_FIELDS)
    deal = Deal.objects.select_for_update().get(pk=deal.pk)
    previous = deal.stage
    changed = [name for name, value in fields.items() if getattr(deal, name) != value]
    if not changed:
        return deal
    if "stage" in fields:
        _check_stage_move(deal, fields["stage"])
    if {"customer", "site"} & set(changed) and deal.contracts.exclude(status=C.TERMINATED).exists():
        raise _bad("deal_has_contracts", _("This deal has contracts: it keeps its client and site."), status=409,
                   fields=sorted({"customer", "site"} & set(changed)))  # fmt: skip
    for name in changed:
        setattr(deal, name, fields[name])
    _check_deal(deal)
    deal.save()
    _publish_deal(deal, previous if previous != deal.stage else None)
    return deal


def _check_stage_move(deal: Deal, stage) -> None:
    if stage not in Deal.Stage.values:
        raise _bad("invalid_stage", _("Unknown stage."), field="stage", choices=Deal.Stage.values)
    if (
        deal.stage == Deal.Stage.WON
        and stage != Deal.Stage.WON
        and deal.contracts.exclude(status=C.TERMINATED).exists()
    ):
        raise _bad("deal_has_contracts", _("This deal has contracts: it stays won."), status=409)


@transaction.atomic
def deal_set_stage(*, actor, deal: Deal, stage: str) -> Deal:
    """Move a deal to ``stage`` (any stage to any other, except a won deal with live contracts). Moving it to the
    stage it is at changes nothing."""
    _require_writer(actor)
    deal = Deal.objects.select_for_update().get(pk=deal.pk)
    _check_stage_move(deal, stage)
    if deal.stage == stage:
        return deal
    previous, deal.stage = deal.stage, stage
    deal.save(update_fields=["stage", "updated_at"])
    _publish_deal(deal, previous)
    return deal


def _unique_slug(company: str) -> str:
    base = (slugify(company) or "client")[:50]
    slug, n = base, 1
    while Customer.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def deal_convert(*, actor, deal: Deal, start_date: date | None = None, **tariff) -> tuple[HostingContract, bool]:
    """The deal as a draft hosting contract for its client at its site; the deal is won. A prospect becomes a
    hosting client first (named after the prospect company). ``tariff`` may set ``tariff_kind``, ``rate_per_kwh``,
    ``fixed_fee_per_miner_month``, ``revenue_share_pct`` (default: all-in at the client's hosting rate, which is in
    USD: for a prospect or a deal in another currency the rate must be given). Returns
    (contract, created): a deal already converted returns its contract and changes nothing."""
    from sites import services as site_services

    _require_writer(actor)
    _only(tariff, frozenset({"tariff_kind", *TARIFF_PARAMS}))
    deal = Deal.objects.select_for_update().get(pk=deal.pk)
    existing = deal.contracts.exclude(status=C.TERMINATED).order_by("pk").first()
    if existing is not None:
        return existing, False
    if deal.stage == Deal.Stage.LOST:
        raise _bad("deal_lost", _("A lost deal cannot become a contract; reopen it first."), status=409)
    if deal.site_id is None:
        raise _bad("deal_needs_site", _("Choose the deal's site before converting it."), field="site")
    start = start_date or deal.expected_close or _today()
    fields = {"tariff_kind": TariffKind.ALL_IN_KWH, **tariff}
    rate = fields.get("rate_per_kwh")
    if rate is None and "rate_per_kwh" in TARIFF_NEEDS.get(fields["tariff_kind"], ()):
        # The client's hosting rate is in USD: it is a default only for a deal in USD, never converted.
        if deal.customer_id is None or deal.currency != "USD":
            raise _bad("invalid_tariff", _("Give the rate per kWh in %(c)s.") % {"c": deal.currency},
                       field="rate_per_kwh", tariff_kind=fields["tariff_kind"])  # fmt: skip
        rate = fields["rate_per_kwh"] = deal.customer.hosting_rate_usd_per_kwh
    if deal.customer_id is None:
        customer = site_services.customer_create(
            actor=actor, company=deal.prospect_company, slug=_unique_slug(deal.prospect_company),
            email=deal.contact_email, contract_start=start,
            hosting_rate_usd_per_kwh=(rate or Decimal(0)) if deal.currency == "USD" else Decimal(0),
        )  # fmt: skip
        deal.customer = customer
    contract = _contract_new(
        actor=actor, customer=deal.customer, site=deal.site, deal=deal, start_date=start, currency=deal.currency,
        sales_owner=deal.owner, **fields,
    )  # fmt: skip
    previous = deal.stage
    deal.stage = Deal.Stage.WON
    deal.save(update_fields=["customer", "stage", "updated_at"])
    _publish_deal(deal, previous if previous != deal.stage else None)
    return contract, True


# ---------------------------------------------------------------------------------------------------------
# Contracts: rules


def _pct(value, *, field: str, index: int, low_open: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _bad("invalid_sla_schedule", _("Percentages are decimal strings such as \"97.5\"."),
                   field=field, step=index)  # fmt: skip
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite() or d > HUNDRED or d < 0 or (low_open and d == 0):
        raise _bad("invalid_sla_schedule", _("Percentages are between 0 and 100."), field=field, step=index)
    if d.as_tuple().exponent < -2:
        raise _bad("invalid_sla_schedule", _("Percentages have at most two decimals."), field=field, step=index)
    return format(d.normalize(), "f")


def clean_sla_schedule(schedule) -> list[dict]:
    """The schedule checked and in its stored form (decimal strings, no trailing zeros); a ``DomainError``
    ``invalid_sla_schedule`` naming the step otherwise."""
    if schedule is None:
        return []
    if not isinstance(schedule, list) or len(schedule) > SLA_MAX_STEPS:
        raise _bad("invalid_sla_schedule", _("The SLA credit schedule is a list of at most %(n)s steps.")
                   % {"n": SLA_MAX_STEPS})  # fmt: skip
    out, previous = [], None
    for i, step in enumerate(schedule):
        if not isinstance(step, dict) or set(step) != {"below_pct", "credit_pct"}:
            raise _bad("invalid_sla_schedule", _('Each step is {"below_pct": …, "credit_pct": …}.'), step=i)
        below = _pct(step["below_pct"], field="below_pct", index=i, low_open=True)
        credit = _pct(step["credit_pct"], field="credit_pct", index=i, low_open=False)
        if previous is not None and Decimal(below) >= previous:
            raise _bad("invalid_sla_schedule", _("Thresholds go from the highest to the lowest, each lower than "
                                                 "the one before."), field="below_pct", step=i)  # fmt: skip
        if out and Decimal(credit) < Decimal(out[-1]["credit_pct"]):
            raise _bad("invalid_sla_schedule", _("A lower threshold does not give a smaller credit than the one "
                                                 "before."), field="credit_pct", step=i)  # fmt: skip
        previous = Decimal(below)
        out.append({"below_pct": below, "credit_pct": credit})
    return out


def _label(name: str) -> str:
    """A contract field's name as people read it (translated), for messages."""
    return str(HostingContract._meta.get_field(name).verbose_name)


def _check_terms(c: HostingContract) -> None:
    """The number, tariff, curtailment and commission rules (see the module docstring); raises the first problem."""
    if not NUMBER_RE.fullmatch(c.number or ""):
        raise _bad("invalid", _("A contract number is letters, digits and . _ / - (at most 40), e.g. HC-2026-0001."),
                   field="number")  # fmt: skip
    if c.tariff_kind not in TARIFF_NEEDS:
        raise _bad("invalid_tariff", _("Unknown tariff."), field="tariff_kind")
    needs = TARIFF_NEEDS[c.tariff_kind]
    for name in TARIFF_PARAMS:
        value = getattr(c, name)
        if value is None or Decimal(value) < 0:
            raise _bad("invalid_tariff", _("Tariff parameters are not negative."), field=name)
        if name in needs and Decimal(value) <= 0:
            raise _bad("invalid_tariff", _("This tariff needs %(field)s greater than 0.") % {"field": _label(name)},
                       field=name, tariff_kind=c.tariff_kind)  # fmt: skip
        if name not in needs and Decimal(value) != 0:
            raise _bad("invalid_tariff", _("This tariff does not use %(field)s: leave it at 0.")
                       % {"field": _label(name)},
                       field=name, tariff_kind=c.tariff_kind)  # fmt: skip
    if Decimal(c.revenue_share_pct) > HUNDRED:
        raise _bad("invalid_tariff", _("A revenue share is at most 100 %."), field="revenue_share_pct")
    if c.curtailment_credit_kind == CurtailmentCreditKind.RATE:
        if Decimal(c.curtailment_credit_per_miner_hour) <= 0:
            raise _bad("invalid_curtailment_terms", _("A credit rate per miner-hour greater than 0 is needed."),
                       field="curtailment_credit_per_miner_hour")  # fmt: skip
    elif Decimal(c.curtailment_credit_per_miner_hour) != 0:
        raise _bad("invalid_curtailment_terms", _("A credit rate per miner-hour goes with the “rate” credit only."),
                   field="curtailment_credit_per_miner_hour")  # fmt: skip
    if Decimal(c.curtailment_allowance_hours) < 0:
        raise _bad(
            "invalid_curtailment_terms", _("The allowance is not negative."), field="curtailment_allowance_hours"
        )
    if c.curtailment_priority > MAX_CURTAILMENT_PRIORITY:
        raise _bad("invalid_curtailment_terms", _("The curtailment priority is 0 to %(n)s.")
                   % {"n": MAX_CURTAILMENT_PRIORITY}, field="curtailment_priority")  # fmt: skip
    if c.payment_terms_days > MAX_PAYMENT_TERMS_DAYS:
        raise _bad("invalid", _("Payment terms are at most %(n)s days.") % {"n": MAX_PAYMENT_TERMS_DAYS},
                   field="payment_terms_days")  # fmt: skip
    if not Decimal(0) <= Decimal(c.commission_pct) <= HUNDRED:
        raise _bad("invalid", _("A commission is 0 to 100 %."), field="commission_pct")
    if not Decimal(0) <= Decimal(c.sla_uptime_target_pct) <= HUNDRED:
        raise _bad("invalid", _("The SLA uptime target is 0 to 100 %."), field="sla_uptime_target_pct")
    if c.end_date is not None and c.start_date is not None and c.end_date < c.start_date:
        raise _bad("invalid", _("The contract cannot end before it starts."), field="end_date")
    if c.deal_id is not None and c.deal.customer_id not in (None, c.customer_id):
        raise _bad("invalid", _("The deal is another client's."), field="deal")
    _sales_user(c.sales_owner, "sales_owner")


def _check_no_overlap(c: HostingContract) -> None:
    """Refuse a term that overlaps, for any day, another contract of the client at the site that is or was in
    force: active, ended, or terminated after it was activated (billing bills each of them over its term, so an
    overlap would bill the same miner-days twice). A draft terminated before activation never ran and does not
    count. The caller holds the client's row lock, so two activations cannot pass this check together."""
    others = HostingContract.objects.filter(
        customer_id=c.customer_id, site_id=c.site_id, status__in=(C.ACTIVE, C.ENDED, C.TERMINATED)
    ).exclude(pk=c.pk)
    if c.end_date is not None:
        others = others.filter(start_date__lte=c.end_date)
    others = others.exclude(status=C.TERMINATED, activated_at__isnull=True)
    candidates = list(others.exclude(end_date__lt=c.start_date).order_by("start_date"))
    if candidates:
        clash = candidates[0]
        raise _bad(
            "contract_overlap", _("The client already has a contract in force at this site for these dates (%(n)s).")
            % {"n": clash.number}, status=409, contract=clash.number,
        )  # fmt: skip


def _next_number(start: date) -> str:
    prefix = f"HC-{start:%Y}-"
    n = HostingContract.objects.filter(number__startswith=prefix).count() + 1
    while HostingContract.objects.filter(number=f"{prefix}{n:04d}").exists():
        n += 1
    return f"{prefix}{n:04d}"


def _lock_customers(*customer_ids: int) -> None:
    """Lock the clients' rows, in primary-key order (two writers locking two clients never deadlock)."""
    list(Customer.objects.select_for_update().filter(pk__in=set(customer_ids)).order_by("pk").values_list("pk"))


# ---------------------------------------------------------------------------------------------------------
# Contracts: services


def _contract_new(*, actor, **fields) -> HostingContract:
    _only(fields, CONTRACT_FIELDS)
    fields["sla_credit_schedule"] = clean_sla_schedule(fields.get("sla_credit_schedule"))
    fields.setdefault("sales_owner", None)
    contract = HostingContract(status=C.DRAFT, **fields)
    numbered = not contract.number and contract.start_date is not None
    if numbered:
        contract.number = _next_number(contract.start_date)
    _check_terms(contract)
    _clean(contract)
    for attempt in range(5):
        try:
            with transaction.atomic():  # a savepoint: a number taken meanwhile by another writer is retried
                contract.save()
            break
        except IntegrityError:
            if not numbered and HostingContract.objects.filter(number=contract.number).exists():
                raise _bad("invalid", _("This contract number is already used."), field="number") from None
            if not numbered or attempt == 4:
                raise
            contract.pk = None
            contract.number = _next_number(contract.start_date)
    _publish_contract(contract, None)
    return contract


@transaction.atomic
def contract_create(*, actor, **fields) -> HostingContract:
    """A new contract, always a draft (``contract_activate`` makes it active). ``number`` defaults to
    ``HC-<year>-<n>``."""
    _require_writer(actor)
    return _contract_new(actor=actor, **fields)


@transaction.atomic
def contract_update(*, actor, contract: HostingContract, **fields) -> HostingContract:
    """Change a draft or active contract's terms. An active contract keeps its client and site, stays clear of
    overlaps, and each change is audited (the fields and their new values). Ended and terminated contracts are
    closed (409)."""
    _require_writer(actor)
    _only(fields, CONTRACT_FIELDS)
    if "sla_credit_schedule" in fields:
        fields["sla_credit_schedule"] = clean_sla_schedule(fields["sla_credit_schedule"])
    new_customer = fields.get("customer")
    _lock_customers(contract.customer_id, *([new_customer.pk] if isinstance(new_customer, Customer) else []))
    contract = HostingContract.objects.select_for_update().get(pk=contract.pk)
    if contract.status in (C.ENDED, C.TERMINATED):
        raise _bad("contract_closed", _("An ended or terminated contract does not change."), status=409)
    changed = {name: value for name, value in fields.items() if getattr(contract, name) != value}
    if not changed:
        return contract
    if "number" in changed and contract.status == C.ACTIVE:
        raise _bad("contract_active", _("An active contract keeps its number (invoices quote it)."), status=409,
                   fields=["number"])  # fmt: skip
    moves = {"customer", "site"} & set(changed)
    if moves and contract.status == C.ACTIVE:
        raise _bad("contract_active", _("An active contract keeps its client and site."), status=409,
                   fields=sorted(moves))  # fmt: skip
    if moves and contract.miners.exists():
        raise _bad("miners_listed", _("Clear the miners covered before changing the client or the site."),
                   status=409)  # fmt: skip
    previous = _audited_values(contract, changed)
    for name, value in changed.items():
        setattr(contract, name, value)
    _check_terms(contract)
    _clean(contract)
    if contract.status == C.ACTIVE:
        _check_no_overlap(contract)
    contract.save()
    if contract.status == C.ACTIVE:  # what was agreed before and after, for whoever checks an invoice later
        _audit_contract("hosting_contract.changed", contract, actor=actor,
                        payload={"changed": _audited_values(contract, changed), "previous": previous})  # fmt: skip
    _publish_contract(contract, None)
    return contract


def _audited_values(contract: HostingContract, names) -> dict:
    """The contract's values of ``names`` as the audit chain keeps them (related rows by id)."""
    return {k: getattr(contract, f"{k}_id") if k in ("deal", "sales_owner") else getattr(contract, k)
            for k in sorted(names)}  # fmt: skip


def _locked(contract: HostingContract) -> HostingContract:
    _lock_customers(contract.customer_id)
    return HostingContract.objects.select_for_update().get(pk=contract.pk)


@transaction.atomic
def contract_activate(*, actor, contract: HostingContract) -> HostingContract:
    """Draft → active, once its terms are complete and no other contract of the client at the site that is or
    was in force overlaps it (``_check_no_overlap``). Already active: nothing changes."""
    _require_writer(actor)
    contract = _locked(contract)
    if contract.status == C.ACTIVE:
        return contract
    if contract.status != C.DRAFT:
        raise _bad("contract_closed", _("An ended or terminated contract cannot be activated."), status=409)
    _check_terms(contract)
    _check_no_overlap(contract)
    contract.status = C.ACTIVE
    contract.activated_at = timezone.now()
    contract.save(update_fields=["status", "activated_at", "updated_at"])
    _audit_contract("hosting_contract.activated", contract, actor=actor, payload={
        "site_id": contract.site_id, "start_date": contract.start_date, "end_date": contract.end_date,
        "tariff_kind": contract.tariff_kind, "rate_per_kwh": contract.rate_per_kwh,
        "fixed_fee_per_miner_month": contract.fixed_fee_per_miner_month,
        "revenue_share_pct": contract.revenue_share_pct, "sla_uptime_target_pct": contract.sla_uptime_target_pct,
        "signed_document_sha256": contract.signed_document_sha256,
    })  # fmt: skip
    _publish_contract(contract, C.DRAFT)
    return contract


def _closing_day(value, contract: HostingContract) -> date:
    """The day an end or a termination takes effect: ``value``, by default today (or the contract's own end date
    when that is earlier; its start when it has not started yet). It is not before the start, not after the
    contract's end date (closing never lengthens a term, which could overlap the next contract), and not in the
    future (the status changes now: a later end is set as the contract's end date instead)."""
    today = _today()
    default = today if contract.end_date is None else min(today, contract.end_date)
    day = value or max(default, contract.start_date)
    if not isinstance(day, date):
        raise _bad("invalid", _("The end date is a date."), field="end_date")
    if day < contract.start_date:
        raise _bad("invalid", _("The contract cannot end before it starts."), field="end_date")
    if contract.end_date is not None and day > contract.end_date:
        raise _bad("invalid", _("The contract already ends on %(d)s: it cannot end later.")
                   % {"d": contract.end_date.isoformat()}, field="end_date")  # fmt: skip
    if day > max(today, contract.start_date):
        raise _bad("invalid", _("The end date is today or a past day; to end later, set the contract's end date."),
                   field="end_date")  # fmt: skip
    return day


def _close(contract: HostingContract, status: str, *, actor, end_date, event: str, payload: dict) -> HostingContract:
    previous = contract.status
    contract.end_date = _closing_day(end_date, contract)
    contract.status = status
    contract.save(update_fields=["status", "end_date", "updated_at"])
    _audit_contract(event, contract, actor=actor, payload={"from": previous, "end_date": contract.end_date, **payload})
    _publish_contract(contract, previous)
    return contract


@transaction.atomic
def contract_end(*, actor, contract: HostingContract, end_date: date | None = None) -> HostingContract:
    """Active → ended on ``end_date`` (see ``_closing_day``). Already ended: nothing changes."""
    _require_writer(actor)
    contract = _locked(contract)
    if contract.status == C.ENDED:
        return contract
    if contract.status != C.ACTIVE:
        raise _bad("contract_not_active", _("Only an active contract ends; a draft is terminated."), status=409)
    return _close(contract, C.ENDED, actor=actor, end_date=end_date, event="hosting_contract.ended", payload={})


@transaction.atomic
def contract_terminate(*, actor, contract: HostingContract, reason: str, end_date: date | None = None):
    """Draft or active → terminated, with a reason (1–300 characters), on ``end_date`` (see ``_closing_day``).
    Already terminated: nothing changes."""
    _require_writer(actor)
    reason = (reason or "").strip() if isinstance(reason, str) else None
    if not reason or len(reason) > 300 or "\x00" in reason:
        raise _bad("invalid", _("Give the reason for terminating (at most 300 characters)."), field="reason")
    contract = _locked(contract)
    if contract.status == C.TERMINATED:
        return contract
    if contract.status == C.ENDED:
        raise _bad("contract_closed", _("An ended contract cannot be terminated."), status=409)
    return _close(contract, C.TERMINATED, actor=actor, end_date=end_date, event="hosting_contract.terminated",
                  payload={"reason": reason})  # fmt: skip


@transaction.atomic
def contract_set_miners(*, actor, contract: HostingContract, miners) -> int:
    """Set the miners a contract covers from a list of miner ids (numbers) and/or serials (text). Each must be
    the contract's client's miner at the contract's site; an empty list means every such miner (none listed).
    Returns how many are listed."""
    from miners.models import Miner

    _require_writer(actor)
    if not isinstance(miners, list | tuple) or len(miners) > MAX_MINERS:
        raise _bad("invalid_miners", _("Send a list of at most %(n)s miner ids or serials.") % {"n": MAX_MINERS},
                   field="miners")  # fmt: skip
    ids, serials = set(), set()
    for item in miners:
        if isinstance(item, int) and not isinstance(item, bool) and 0 < item < 2**31:
            ids.add(item)
        elif isinstance(item, str) and 0 < len(item.strip()) <= 64 and "\x00" not in item:
            serials.add(item.strip())
        else:
            raise _bad("invalid_miners", _("Each miner is an id (a number) or a serial (text)."), field="miners")
    contract = _locked(contract)
    if contract.status in (C.ENDED, C.TERMINATED):
        raise _bad("contract_closed", _("An ended or terminated contract does not change."), status=409)
    found = list(Miner.objects.filter(pk__in=ids).values_list("pk", "serial", "customer_id", "site_id")) + list(
        Miner.objects.filter(serial__in=serials).values_list("pk", "serial", "customer_id", "site_id")
    )
    unknown = sorted(map(str, (ids - {r[0] for r in found}) | (serials - {r[1] for r in found})))
    if unknown:
        raise _bad("unknown_miners", _("Unknown miners: %(m)s.") % {"m": ", ".join(unknown[:20])},
                   field="miners", miners=unknown[:100])  # fmt: skip
    foreign = sorted({r[1] for r in found if r[2] != contract.customer_id or r[3] != contract.site_id})
    if foreign:
        raise _bad("miner_not_covered", _("Only the client's own miners at the contract's site can be covered: "
                                          "%(m)s.") % {"m": ", ".join(foreign[:20])},
                   field="miners", miners=foreign[:100])  # fmt: skip
    wanted = {r[0] for r in found}
    current = set(contract.miners.values_list("pk", flat=True))
    if wanted == current:
        return len(current)
    contract.miners.set(wanted)
    contract.save(update_fields=["updated_at"])
    if contract.status == C.ACTIVE:
        _audit_contract("hosting_contract.miners_changed", contract, actor=actor,
                        payload={"count": len(wanted), "added": len(wanted - current),
                                 "removed": len(current - wanted)})  # fmt: skip
    _publish_contract(contract, None)
    return len(wanted)


def _read_document(upload) -> tuple[bytes, str]:
    size = getattr(upload, "size", None)
    if size is not None and size > DOCUMENT_MAX_BYTES:
        raise _bad("document_too_large", _("The document is larger than 10 MB."), status=413,
                   max_bytes=DOCUMENT_MAX_BYTES)  # fmt: skip
    buffer = bytearray()  # appended in place: bytes += chunk would copy the whole file again for every chunk
    for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
        buffer += chunk
        if len(buffer) > DOCUMENT_MAX_BYTES:
            raise _bad("document_too_large", _("The document is larger than 10 MB."), status=413,
                       max_bytes=DOCUMENT_MAX_BYTES)  # fmt: skip
    data = bytes(buffer)
    if not data:
        raise _bad("document_empty", _("The document is empty."), field="document")
    for magic, ext, _ctype in DOCUMENT_KINDS:
        if data.startswith(magic):
            return data, ext
    raise _bad("document_type", _("The signed document is a PDF, PNG or JPEG file."), status=415, field="document")


@transaction.atomic
def contract_upload_document(*, actor, contract: HostingContract, upload, signed_at: date | None = None):
    """Store the signed document (PDF, PNG or JPEG, at most 10 MB) in private storage, record its SHA-256 and
    signing date (default today; not in the future) and append both to the audit chain. A new upload replaces
    the contract's reference; the earlier file is kept (the chain names its hash)."""
    _require_writer(actor)
    data, ext = _read_document(upload)
    signed = signed_at or _today()
    if not isinstance(signed, date) or signed > _today():
        raise _bad("invalid", _("The signing date is not in the future."), field="signed_at")
    contract = _locked(contract)
    if contract.status in (C.ENDED, C.TERMINATED):
        raise _bad("contract_closed", _("An ended or terminated contract does not change."), status=409)
    digest = hashlib.sha256(data).hexdigest()
    safe_number = slugify(contract.number) or str(contract.pk)
    contract.signed_document.save(f"{safe_number}-{digest[:16]}.{ext}", ContentFile(data), save=False)
    stored = contract.signed_document.name
    try:
        contract.signed_document_sha256 = digest
        contract.signed_at = signed
        contract.save(update_fields=["signed_document", "signed_document_sha256", "signed_at", "updated_at"])
        _audit_contract("hosting_contract.document_uploaded", contract, actor=actor, payload={
            "sha256": digest, "size_bytes": len(data), "content_type": CONTENT_TYPES[ext], "file": stored,
            "signed_at": signed,
        })  # fmt: skip
        _publish_contract(contract, None)
    except Exception:
        contract.signed_document.storage.delete(stored)  # the row never names it: no orphan file
        raise
    return contract


def document_content_type(contract: HostingContract) -> str:
    ext = (contract.signed_document.name or "").rsplit(".", 1)[-1].lower()
    return CONTENT_TYPES.get(ext, "application/octet-stream")

"""Force-majeure windows (owner: sla): the reads, scoped, and the writes, as services.

Reads (module FINANCE, READ): owners and admins see every window; a site owner the windows of its sites; a hosting
client the windows of the sites its miners stand in (they excuse downtime on its invoices, so it may see them).
Writes (FINANCE, FULL: owners and admins): create with a reason, change, delete. A window whose days an **issued**
invoice at its site already covers is frozen: changing, deleting or adding one there would change an issued
invoice's SLA figures behind its hash, so the service refuses with ``period_invoiced`` (409); a credit note is the
way to correct an issued month. Each write appends to the audit chain and publishes ``force_majeure.changed``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing.models import ISSUED_STATUSES, ForceMajeureWindow, Invoice
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import actor_of, audit_append
from hashinsight.events.outbox import publish
from sites import selectors as site_selectors

MAX_WINDOW = timedelta(days=92)
MAX_REASON = 500


def _not_found() -> DomainError:
    return DomainError("not_found", _("No such force-majeure window."), status=404)


def _bad(code: str, field: str, message: str) -> DomainError:
    return DomainError(code, message, status=400, details={"field": field})


# ---------------------------------------------------------------------------------------------------------
# Reads


def force_majeure_list(*, user) -> QuerySet[ForceMajeureWindow]:
    """The windows ``user`` may see (see the module docstring); one query when evaluated."""
    if not has_access(user, Module.FINANCE, Access.READ):
        return ForceMajeureWindow.objects.none()
    qs = ForceMajeureWindow.objects.select_related("site", "created_by")
    scope = site_selectors.scope_of(user)
    if scope.kind == "all":
        return qs
    return qs.filter(site_id__in=site_selectors.site_list(user=user).values("pk"))


def force_majeure_get(*, user, pk) -> ForceMajeureWindow:
    try:
        pk = int(pk)
        if not 0 < pk < 2**63:
            raise ValueError(pk)
        return force_majeure_list(user=user).get(pk=pk)
    except (ForceMajeureWindow.DoesNotExist, ValueError, TypeError, OverflowError):
        raise _not_found() from None


def may_write(*, user, site_id: int | None = None) -> bool:
    """FINANCE FULL and (for a given site) a site the user manages."""
    if not has_access(user, Module.FINANCE, Access.FULL):
        return False
    if site_id is None:
        return True
    ids = site_selectors.manageable_site_ids(user=user)
    return ids is None or site_id in ids


def issued_invoice_covering(*, site_id: int, start: datetime, end: datetime) -> Invoice | None:
    """An issued invoice at the site whose period shares a (UTC) day with ``[start, end)``."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return (
        Invoice.objects.filter(
            site_id=site_id, status__in=ISSUED_STATUSES, period_start__lte=last, period_end__gte=first
        )
        .order_by("period_start")
        .first()
    )


def frozen_ids(windows) -> set[int]:
    """The ids among ``windows`` (already read) that an issued invoice covers: one query for a page of them."""
    windows = list(windows)
    if not windows:
        return set()
    first = min(w.start for w in windows).astimezone(UTC).date()
    last = max(w.end for w in windows).astimezone(UTC).date()
    periods = list(
        Invoice.objects.filter(
            site_id__in={w.site_id for w in windows}, status__in=ISSUED_STATUSES, period_start__lte=last,
            period_end__gte=first,
        ).values_list("site_id", "period_start", "period_end")
    )  # fmt: skip
    out = set()
    for w in windows:
        w_first = w.start.astimezone(UTC).date()
        w_last = (w.end - timedelta(microseconds=1)).astimezone(UTC).date()
        if any(s == w.site_id and p0 <= w_last and p1 >= w_first for s, p0, p1 in periods):
            out.add(w.pk)
    return out


# ---------------------------------------------------------------------------------------------------------
# Writes


def _clean(*, start, end, reason) -> tuple[datetime, datetime, str]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            raise _bad("invalid", name, _("Give a date and time."))
        if timezone.is_naive(value):
            raise _bad("invalid", name, _("Give a time zone (for example 2026-02-12T06:00:00Z)."))
    if end <= start:
        raise _bad("end_before_start", "end", _("The window must end after it starts."))
    if end - start > MAX_WINDOW:
        raise _bad("window_too_long", "end", _("A force-majeure window lasts at most 92 days."))
    if not isinstance(reason, str) or not reason.strip():
        raise _bad("reason_required", "reason", _("Give the reason (what happened and who declared it)."))
    reason = reason.strip()
    if len(reason) > MAX_REASON or "\x00" in reason:
        raise _bad("invalid", "reason", _("The reason has at most 500 characters."))
    return start, end, reason


def _require_writer(actor, site_id: int) -> None:
    if not site_selectors.site_list(user=actor).filter(pk=site_id).exists():
        raise DomainError("not_found", _("No such site."), status=404)
    if not may_write(user=actor, site_id=site_id):
        raise DomainError("forbidden", _("You may not change force-majeure windows at this site."), status=403)


def _refuse_if_invoiced(site_id: int, start: datetime, end: datetime) -> None:
    invoice = issued_invoice_covering(site_id=site_id, start=start, end=end)
    if invoice is not None:
        raise DomainError(
            "period_invoiced",
            _("Invoice %(number)s already covers these days; correct it with a credit note instead.")
            % {"number": invoice.number or invoice.pk},
            status=409,
            details={"invoice": invoice.pk, "invoice_number": invoice.number},
        )


def _record(window: ForceMajeureWindow, *, actor, action: str, deleted: bool = False, before=None) -> None:
    payload = {"window_id": window.pk, "site_id": window.site_id, "start": window.start, "end": window.end}
    publish("force_majeure.changed", aggregate=f"force_majeure:{window.pk}", payload={**payload, "deleted": deleted})
    actor_type, actor_id = actor_of(actor)
    audit_append(
        event_type=f"force_majeure.{action}", actor_type=actor_type, actor_id=actor_id,
        reference=f"force_majeure:{window.pk}", site=window.site_id,
        payload={**payload, "reason": window.reason, **({"before": before} if before else {})},
    )  # fmt: skip


@transaction.atomic
def force_majeure_create(*, actor, site_id, start, end, reason) -> ForceMajeureWindow:
    """Declare a window at a site. Refusals: 400 naming the field, 404 hidden site, 403, 409 ``period_invoiced``."""
    if not isinstance(site_id, int) or isinstance(site_id, bool):
        raise _bad("invalid", "site", _("Choose a site."))
    start, end, reason = _clean(start=start, end=end, reason=reason)
    _require_writer(actor, site_id)
    _refuse_if_invoiced(site_id, start, end)
    window = ForceMajeureWindow.objects.create(site_id=site_id, start=start, end=end, reason=reason, created_by=actor)
    _record(window, actor=actor, action="created")
    return window


@transaction.atomic
def force_majeure_update(*, actor, window: ForceMajeureWindow, start, end, reason) -> ForceMajeureWindow:
    """Change a window's times or reason; frozen (409) when an issued invoice covers its old or new days."""
    start, end, reason = _clean(start=start, end=end, reason=reason)
    window = ForceMajeureWindow.objects.select_for_update().get(pk=window.pk)
    _require_writer(actor, window.site_id)
    if (window.start, window.end, window.reason) == (start, end, reason):
        return window
    _refuse_if_invoiced(window.site_id, window.start, window.end)
    _refuse_if_invoiced(window.site_id, start, end)
    before = {"start": window.start, "end": window.end, "reason": window.reason}
    window.start, window.end, window.reason = start, end, reason
    window.save(update_fields=["start", "end", "reason"])
    _record(window, actor=actor, action="updated", before=before)
    return window


@transaction.atomic
def force_majeure_delete(*, actor, window: ForceMajeureWindow) -> None:
    """Remove a window; frozen (409) when an issued invoice covers its days."""
    window = ForceMajeureWindow.objects.select_for_update().filter(pk=window.pk).first()
    if window is None:
        return  # already gone: a repeat changes nothing
    _require_writer(actor, window.site_id)
    _refuse_if_invoiced(window.site_id, window.start, window.end)
    pk = window.pk
    window.delete()
    window.pk = pk
    _record(window, actor=actor, action="deleted", deleted=True)

"""The commands pages (CURTAILMENT READ): history with filters, keyset pages and CSV, a "pending my approval"
tab, one command's risk, approvals, per-miner results, verification and audit trail with its buttons
(approve, deny, cancel, rollback), and the propose page with its live risk preview.

Reads go through ``commands.selectors`` (hidden → 404); every write goes through ``commands.services`` (or
``commands.rollback``), whose refusals come back as messages on the page, never as a server error. The
rows and the status of a detail page follow the ``command`` frames of the /ws/alerts/ socket
(``static/js/commands-live.js``)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db.models import Count, F, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from commands import selectors as command_selectors
from commands import services as command_services
from commands.models import LIVE_STATUSES, Command, CommandStatus, CommandType, Decision, RiskTier, Verification
from commands.rollback import command_rollback as rollback_service
from hashinsight.accounts.roles import GLOBAL_ROLES, Access, Module, has_access, role_of
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent
from hashinsight.portal.tables import Column, CsvColumn, InvalidCursor, KeysetSlice, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from sites import selectors as site_selectors

S = CommandStatus
MODULE = Module.CURTAILMENT
ROW_TEMPLATE = "portal/commands/_row.html"
REASON_MAX = 500
# Statuses a command may still be cancelled from (commands.state: PENDING, PENDING_APPROVAL, APPROVED → CANCELLED).
CANCELLABLE = (S.PENDING, S.PENDING_APPROVAL, S.APPROVED)
# Statuses whose effect a rollback undoes (commands.state: COMPLETED, PARTIAL → ROLLED_BACK).
ROLLBACKABLE = (S.COMPLETED, S.PARTIAL)
# Types commands.rollback refuses (no_inverse): a restart cannot be undone; a curtailment ends with its window.
NO_INVERSE = (CommandType.MINER_RESTART, CommandType.CURTAIL)
NOT_ACKNOWLEDGED = "none"  # the verification filter's value for "" (not acknowledged yet)
MINE = "mine"
PREVIEW_URL = "/api/v1/commands/preview"  # commands.api.views (session auth + the CSRF header)


# ---------------------------------------------------------------------------------------------------
# Who may do what (the services decide; these only choose which buttons to show)


class Rights:
    """What ``user`` may do to commands, read once per request: the buttons shown follow the same rules as
    ``commands.services`` (which check again on every POST)."""

    def __init__(self, user):
        self.user = user
        self.full = has_access(user, MODULE, Access.FULL)
        self.global_role = role_of(user) in GLOBAL_ROLES
        self.manageable = site_selectors.manageable_site_ids(user=user) if self.full else []

    def manages(self, site_id: int) -> bool:
        return self.full and (self.manageable is None or site_id in self.manageable)

    def awaiting(self, qs):
        """The commands of ``qs`` waiting for this user's decision."""
        if not self.full:
            return qs.none()
        qs = qs.filter(status=S.PENDING_APPROVAL, expires_at__gt=timezone.now())
        qs = qs.exclude(proposer=self.user).exclude(approvals__approver=self.user)
        if self.manageable is not None:
            qs = qs.filter(site_id__in=self.manageable)
        if not self.global_role:
            qs = qs.filter(owner_admin_only=False)
        return qs

    def for_command(self, command: Command, *, decided: bool, has_live_rollback: bool = False) -> dict:
        mine = command.proposer_id is not None and command.proposer_id == self.user.pk
        manager = self.manages(command.site_id)
        pending = command.status == S.PENDING_APPROVAL and command.expires_at > timezone.now()
        may_decide = pending and manager and not mine and not decided
        return {
            "approve": may_decide and (self.global_role or not command.owner_admin_only),
            "deny": may_decide,
            "cancel": command.status in CANCELLABLE and (mine or manager),
            "rollback": command.status in ROLLBACKABLE
            and command.command_type not in NO_INVERSE
            and manager
            and not has_live_rollback,
        }


# ---------------------------------------------------------------------------------------------------
# The list


class CommandFilterForm(ListFilterForm):
    view = forms.ChoiceField(
        required=False, choices=[("", _("All commands")), (MINE, _("Pending my approval"))], label=_("Show")
    )
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *S.choices], label=_("Status"))
    type = forms.ChoiceField(required=False, choices=[("", _("Any type")), *CommandType.choices], label=_("Type"))
    risk = forms.ChoiceField(
        required=False, choices=[("", _("Any risk tier")), *RiskTier.choices], label=_("Risk tier")
    )
    verification = forms.ChoiceField(
        required=False,
        choices=[("", _("Any verification")), (NOT_ACKNOWLEDGED, _("Not acknowledged yet")), *Verification.choices],
        label=_("Verification"),
    )
    proposer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Proposer"))
    start = forms.DateField(required=False, label=_("From (UTC date)"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("To (UTC date)"), widget=forms.DateInput(attrs={"type": "date"}))
    lookups = {"site": "site_id", "status": "status", "type": "command_type", "risk": "risk_tier",
               "proposer": "proposer_id", "start": "created_at__date__gte", "end": "created_at__date__lte"}  # fmt: skip

    def __init__(self, *args, rights: Rights, sites=(), proposers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.rights = rights
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]
        self.fields["proposer"].choices = [("", _("Anyone")), *[(pk, name) for pk, name in proposers]]

    def filter_view(self, qs, value):
        return self.rights.awaiting(qs) if value == MINE else qs

    def filter_verification(self, qs, value):
        return qs.filter(verification="" if value == NOT_ACKNOWLEDGED else value)


# Keyset sorts: the column each ``?sort=`` key reads (the id breaks ties; ids grow with creation).
SORTS = {"id": "pk", "site": "site__name", "type": "command_type", "status": "status", "risk": "risk_score"}


def _encode(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, *, key: str, desc: bool) -> dict:
    try:
        if len(cursor) > 400:
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("k") != key or data.get("d") != desc:
            raise ValueError
        if not isinstance(data.get("i"), int) or not isinstance(data.get("v"), str | int):
            raise ValueError
        if key == "risk" and not Decimal(str(data["v"])).is_finite():
            raise ValueError
        return data
    except (ValueError, TypeError, ArithmeticError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor from None


def _sort_value(command: Command, key: str):
    if key == "id":
        return command.pk
    if key == "site":
        return command.site.name
    if key == "risk":
        return str(command.risk_score)
    return getattr(command, SORTS[key])


def keyset_page(qs, *, sort: str, cursor: str | None, limit: int) -> KeysetSlice:
    """One page of ``qs`` after (or, for a ``"b"`` cursor, before) the cursor's row, in ``(column, id)`` order:
    stable under inserts and as fast at depth as on the first page (the id and the (site, status) indexes)."""
    key, desc = sort.lstrip("-"), sort.startswith("-")
    column = SORTS[key]
    cur = _decode(cursor, key=key, desc=desc) if cursor else None
    back = bool(cur and cur.get("b"))
    scan_desc = desc != back
    part = qs
    if cur is not None:
        value = Decimal(str(cur["v"])) if key == "risk" else str(cur["v"])
        op = "lt" if scan_desc else "gt"
        if key == "id":
            part = part.filter(**{f"pk__{op}": cur["i"]})
        else:
            part = part.filter(Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"pk__{op}": cur["i"]}))
    order = [F(column).desc(), F("pk").desc()] if scan_desc else [F(column).asc(), F("pk").asc()]
    if key == "id":
        order = order[1:]
    rows = list(part.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if back:
        if not more:  # nothing before these rows: the first page
            return keyset_page(qs, sort=sort, cursor=None, limit=limit)
        rows.reverse()

    def at(row, backwards=False):
        data = {"k": key, "d": desc, "v": _sort_value(row, key), "i": row.pk}
        return _encode({**data, "b": True} if backwards else data)

    next_cursor = at(rows[-1]) if rows and (more or back) else None
    prev_cursor = None
    if cur is not None:
        prev_cursor = at(rows[0], backwards=True) if rows else _encode({**cur, "b": True})
    return KeysetSlice(rows, next_cursor, prev_cursor)


def _label(choices):
    return dict(choices)


class CommandTable(ListPage):
    columns = [
        Column("id", _("#"), sort="id", numeric=True),
        Column("created", _("Created (site time)")),
        Column("site", _("Site"), sort="site"),
        Column("type", _("Type"), sort="type"),
        Column("targets", _("Targets"), numeric=True),
        Column("risk", _("Risk score (0–1)"), sort="risk", numeric=True),
        Column("status", _("Status"), sort="status"),
        Column("approvals", _("Approvals")),
        Column("verification", _("Verification")),
        Column("proposer", _("Proposer")),
    ]
    csv_columns = [
        CsvColumn(_("Id"), "pk"),
        CsvColumn(_("Created (UTC)"), "created_at"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("Type"), "command_type", display=_label(CommandType.choices)),
        CsvColumn(_("Parameters"), "params", display=lambda p: json.dumps(_public(p), sort_keys=True)),
        CsvColumn(_("Targets (miners)"), "target_count"),
        CsvColumn(_("Risk score (0–1)"), "risk_score"),
        CsvColumn(_("Risk tier"), "risk_tier", display=_label(RiskTier.choices)),
        CsvColumn(_("Approvals required"), "approvals_required"),
        CsvColumn(_("Status"), "status", display=_label(S.choices)),
        CsvColumn(_("Reason"), "status_reason"),
        CsvColumn(_("Verification"), "verification", display=_label(Verification.choices)),
        CsvColumn(_("Proposer"), "proposer__username"),
        CsvColumn(_("Proposed by"), "proposer_kind"),
        CsvColumn(_("Dispatched (UTC)"), "dispatched_at"),
        CsvColumn(_("Finished (UTC)"), "finished_at"),
        CsvColumn(_("Rollback of"), "rollback_of_id"),
    ]
    filter_form = CommandFilterForm
    default_sort = "-id"
    csv_name = "commands"
    keyset = True

    def __init__(self, request):
        self.rights = Rights(request.user)
        super().__init__(request)

    def get_queryset(self):
        return command_selectors.command_list(user=self.request.user)

    def form_kwargs(self):
        user = self.request.user
        sites = site_selectors.site_list(user=user).filter(
            pk__in=command_selectors.command_list(user=user).values("site_id")
        )
        proposers = (
            command_selectors.command_list(user=user)
            .exclude(proposer=None)
            .order_by("proposer__username")
            .values_list("proposer_id", "proposer__username")
            .distinct()
        )
        return {"rights": self.rights, "sites": sites.only("pk", "name").order_by("name"), "proposers": proposers}

    def keyset_fetch(self, qs, *, sort, cursor, limit):
        return keyset_page(qs, sort=sort, cursor=cursor, limit=limit)

    def keyset_order(self, qs, *, sort):
        key, desc = sort.lstrip("-"), sort.startswith("-")
        column = SORTS[key]
        return qs.order_by(*([F(column).desc(), F("pk").desc()] if desc else [F(column).asc(), F("pk").asc()]))

    def csv_queryset(self, qs):
        return qs.annotate(target_count=Count("targets"))

    def context(self):
        rows = annotate_rows(list(self.page.object_list))
        awaiting = self.rights.awaiting(command_selectors.command_list(user=self.request.user)).count()
        return {
            "rows": rows,
            "awaiting": awaiting,
            "view": self.form.values().get("view") or "",
            "url_all": self.url(view=None, cursor=None),
            "url_mine": self.url(view=MINE, cursor=None),
            "can_propose": self.rights.full,
        }


APPROVED_BY_PERSON = Q(approvals__decision=Decision.APPROVE, approvals__approver__isnull=False)


def annotate_rows(rows: list[Command]) -> list[Command]:
    """Target and approval counts for a page of commands, in two queries."""
    ids = [c.pk for c in rows]
    targets = dict(Command.objects.filter(pk__in=ids).annotate(n=Count("targets")).values_list("pk", "n"))
    approvals = dict(
        Command.objects.filter(pk__in=ids)
        .annotate(n=Count("approvals", filter=APPROVED_BY_PERSON))
        .values_list("pk", "n")
    )
    for command in rows:
        command.target_count = targets.get(command.pk, 0)
        command.approval_count = approvals.get(command.pk, 0)
    return rows


def _public(params) -> dict:
    return {k: ("********" if k == "password" else v) for k, v in (params or {}).items()}


@module_required(MODULE)
def command_list(request):
    return CommandTable(request).respond("portal/commands/list.html")


@module_required(MODULE)
def command_row(request, pk: int):
    """One table row, rendered by the page's own template, for live updates. 404 when the command is hidden
    from the user; 204 when it no longer matches the page's filters (the browser removes the row)."""
    command = _get(request, pk)
    if not CommandTable(request).filtered.filter(pk=pk).exists():
        return HttpResponse(status=204)
    (command,) = annotate_rows([command])
    return render(request, ROW_TEMPLATE, {"c": command})


# ---------------------------------------------------------------------------------------------------
# One command


def _get(request, pk) -> Command:
    try:
        return command_selectors.command_get(user=request.user, command_id=pk)
    except DomainError:
        raise Http404 from None


FACTOR_LABELS = {
    "action": _("Action"),
    "targets": _("Targets (miners)"),
    "power": _("Power impact (kW)"),
    "confidence": _("AI confidence (0–1)"),
    "revenue": _("Revenue at stake (USD/day)"),
    "history": _("Success rate here (0–1)"),
}


def breakdown_rows(breakdown: dict) -> list[dict]:
    return [
        {**item, "label": FACTOR_LABELS.get(item.get("factor"), item.get("factor"))}
        for item in (breakdown or {}).get("breakdown", [])
    ]


def who_must_approve(*, tier: str, approvals_required: int, owner_admin_only: bool) -> str:
    if approvals_required == 0:
        return gettext("Nobody: a LOW command runs without approval where the site's rules allow it.")
    if owner_admin_only:
        return gettext("%(n)d distinct owners or administrators (not the proposer).") % {"n": approvals_required}
    if approvals_required == 1:
        return gettext("One approver who manages the site (not the proposer).")
    return gettext("%(n)d distinct approvers who manage the site (not the proposer).") % {"n": approvals_required}


def _audit_trail(command: Command) -> list[AuditEvent]:
    events = list(AuditEvent.objects.filter(reference=f"command:{command.pk}").order_by("seq")[:200])
    from django.contrib.auth import get_user_model

    user_ids = {e.actor_id for e in events if e.actor_type == "user" and str(e.actor_id or "").isdigit()}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    for event in events:
        event.actor_name = names.get(int(event.actor_id)) if event.actor_id and str(event.actor_id).isdigit() else None
        payload = event.payload or {}
        event.reason = payload.get("reason") or ""
    return events


BEFORE_KEYS = (
    ("status", _("status"), ""),
    ("hashrate_ths", _("hashrate"), "TH/s"),
    ("power_w", _("power"), "W"),
    ("temp_chip_max_c", _("chip"), "°C"),
    ("pool_url", _("pool"), ""),
    ("pool_worker", _("worker"), ""),
    ("fan_percent", _("fan"), "%"),
    ("power_mode", _("power mode"), ""),
    ("power_limit_w", _("power limit"), "W"),
)


def before_summary(before: dict) -> list[tuple[str, str]]:
    """What the miner was doing before, as (label, value with unit): the edge's own reading when it sent one,
    else the telemetry frozen at proposal."""
    before = before or {}
    merged = dict(before)
    if isinstance(before.get("hashrate_ghs"), int | float):
        merged.setdefault("hashrate_ths", round(before["hashrate_ghs"] / 1000, 2))
    if isinstance(before.get("edge"), dict):
        merged.update(before["edge"])
    out = []
    for key, label, unit in BEFORE_KEYS:
        value = merged.get(key)
        if value in (None, ""):
            continue
        text = (
            f"{value} {unit}".strip()
            if unit and unit != "%"
            else (f"{value} %" if unit == "%" and value != "auto" else str(value))
        )
        out.append((str(label), text))
    return out


def _detail_context(request, command: Command) -> dict:
    rights = Rights(request.user)
    rollbacks = list(command.rollbacks.order_by("pk").values("pk", "status"))
    approvals = list(command.approvals.select_related("approver").order_by("pk"))
    decided = any(a.approver_id == request.user.pk for a in approvals)
    targets = list(command.targets.select_related("miner").order_by("pk"))
    for target in targets:
        target.before = before_summary(target.before_state)
    approved = sum(1 for a in approvals if a.decision == Decision.APPROVE and a.approver_id is not None)
    counts = {
        "ok": sum(1 for t in targets if t.result_status == "ok"),
        "failed": sum(1 for t in targets if t.result_status == "failed"),
        "verified": sum(1 for t in targets if t.verification == Verification.VERIFIED),
        "not_seen": sum(1 for t in targets if t.verification == Verification.NOT_SEEN),
    }
    return {
        "c": command,
        "allowed": rights.for_command(
            command, decided=decided, has_live_rollback=any(r["status"] in LIVE_STATUSES for r in rollbacks)
        ),
        "approvals": approvals,
        "approved": approved,
        "targets": targets,
        "counts": counts,
        "breakdown": breakdown_rows(command.risk_breakdown),
        "inputs": (command.risk_breakdown or {}).get("inputs", {}),
        "tier_reasons": (command.risk_breakdown or {}).get("tier_reasons", []),
        "who": who_must_approve(
            tier=command.risk_tier,
            approvals_required=command.approvals_required,
            owner_admin_only=command.owner_admin_only,
        ),
        "audit": _audit_trail(command),
        "audit_url": reverse("portal:audit-list") + f"?q=command:{command.pk}",
        "can_see_chain": has_access(request.user, Module.SYSTEM, Access.FULL),
        "params": _public(command.params),
        "rollbacks": rollbacks,
        "reason_max": REASON_MAX,
    }


@module_required(MODULE)
def command_detail(request, pk: int):
    command = _get(request, pk)
    if request.GET.get("format") == "csv":
        return _targets_csv(request, command)
    return render(request, "portal/commands/detail.html", _detail_context(request, command))


TARGET_CSV = [
    CsvColumn(_("Serial"), "serial"),
    CsvColumn(_("Miner id"), "miner_id"),
    CsvColumn(_("Result"), "result_status"),
    CsvColumn(_("Result message"), "result_message"),
    CsvColumn(_("Acknowledged (UTC)"), "acked_at"),
    CsvColumn(_("Verification"), "verification", display=_label(Verification.choices)),
    CsvColumn(_("Verified (UTC)"), "verified_at"),
    CsvColumn(_("Verification detail"), "verification_detail"),
    CsvColumn(_("Action"), "action", display=lambda a: json.dumps(a, sort_keys=True) if a else ""),
    CsvColumn(_("State before"), "before_state", display=lambda b: json.dumps(b, sort_keys=True) if b else ""),
]


def _targets_csv(request, command: Command):
    from hashinsight.portal.tables import csv_chunks, streamed_csv

    return streamed_csv(
        request, csv_chunks(TARGET_CSV, command.targets.order_by("pk")), f"command-{command.pk}-targets"
    )


# ---------------------------------------------------------------------------------------------------
# Actions (POST, CSRF): the services decide, refusals become messages


ERROR_TEXT = {
    "self_approval": _("Nobody decides on their own command."),
    "already_approved": _("You have already decided on this command."),
    "illegal_transition": _("The command is no longer in a state that allows this; the page shows where it is now."),
    "command_expired": _("This command has expired; propose it again."),
    "owner_admin_only": _("Only an owner or an administrator approves a CRITICAL command."),
    "reason_required": _("Say why the command is denied."),
    "permission_denied": _("Your role may not act on commands."),
    "site_read_only": _("You may view this site but not act on its commands."),
    "unsafe_command": _("The safety guards refuse this command whatever its approvals."),
}


def _error_text(error: DomainError) -> str:
    known = ERROR_TEXT.get(error.code)
    return str(known) if known is not None else error.message


def _back(command: Command):
    return redirect("portal:command-detail", pk=command.pk)


def _reason(request) -> str:
    return (request.POST.get("reason") or "").strip()[:REASON_MAX]


def _refused(request, error: DomainError, command: Command):
    """A service's refusal as a message on the command's page (hidden → 404, as everywhere)."""
    if error.status == 404:
        raise Http404 from None
    messages.error(request, gettext("Nothing was changed: %(why)s") % {"why": _error_text(error)})
    return _back(command)


def _act(request, pk, run, done: str):
    command = _get(request, pk)
    try:
        run(command)
    except DomainError as error:
        return _refused(request, error, command)
    messages.success(request, done)
    return _back(command)


@require_POST
@module_required(MODULE, Access.FULL)
def command_approve(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: command_services.command_approve(command=c, actor=request.user, reason=_reason(request)),
        gettext("Your approval was recorded."),
    )


@require_POST
@module_required(MODULE, Access.FULL)
def command_deny(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: command_services.command_deny(command=c, actor=request.user, reason=_reason(request)),
        gettext("The command was denied."),
    )


@require_POST
@module_required(MODULE, Access.FULL)
def command_cancel(request, pk: int):
    return _act(
        request,
        pk,
        lambda c: command_services.command_cancel(command=c, actor=request.user, reason=_reason(request)),
        gettext("The command was cancelled."),
    )


@require_POST
@module_required(MODULE, Access.FULL)
def command_rollback(request, pk: int):
    command = _get(request, pk)
    try:
        proposed = rollback_service(command=command, actor=request.user, reason=_reason(request))
    except DomainError as error:
        return _refused(request, error, command)
    made = [proposed.command, *proposed.others]
    messages.success(
        request,
        ngettext(
            "Rollback proposed as command %(ids)s; it is scored and approved like any other command.",
            "Rollback proposed as commands %(ids)s, one per earlier state; each is scored and approved alike.",
            len(made),
        )
        % {"ids": ", ".join(f"#{c.pk}" for c in made)},
    )
    return redirect("portal:command-detail", pk=made[0].pk)


# ---------------------------------------------------------------------------------------------------
# Propose

TARGET_KINDS = (("serials", _("Miner serials")), ("zone", _("A zone")), ("site", _("The whole site")))
SERIAL_SPLIT = re.compile(r"[\s,;]+")
MAX_SERIALS = command_services.MAX_TARGETS


class ProposeForm(forms.Form):
    """The propose page's fields; ``proposal()`` turns them into the API's body (static/js/commands-propose.js
    builds the same body for the live preview: keep the two in step, test_commands_pages checks it)."""

    site = forms.TypedChoiceField(coerce=int, label=_("Site"))
    type = forms.ChoiceField(choices=CommandType.choices, label=_("Type"))
    pool_url = forms.CharField(required=False, max_length=255, label=_("Pool URL"))
    pool_worker = forms.CharField(required=False, max_length=120, label=_("Worker"))
    fan_percent = forms.IntegerField(required=False, min_value=0, max_value=100, label=_("Fan speed (%)"))
    power_mode = forms.ChoiceField(
        required=False,
        choices=[("low", _("Low")), ("normal", _("Normal")), ("high", _("High"))],
        label=_("Power mode"),
    )
    curtail_by = forms.ChoiceField(
        required=False, choices=[("kw", _("Power (kW)")), ("percent", _("Share of the targets' power (%)"))],
        label=_("Curtail by"),
    )  # fmt: skip
    curtail_kw = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=3, label=_("kW"))
    curtail_percent = forms.DecimalField(required=False, min_value=0, max_value=100, decimal_places=2, label=_("%"))
    curtail_start = forms.CharField(
        required=False, label=_("Start (UTC)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    curtail_end = forms.CharField(
        required=False, label=_("End (UTC)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    curtail_mode = forms.ChoiceField(
        required=False,
        choices=[("soft", _("Soft: power target first, stop only where unsupported")), ("hard", _("Hard: stop"))],
        label=_("Mode"),
    )
    target_kind = forms.ChoiceField(choices=TARGET_KINDS, initial="serials", label=_("Which miners"))
    serials = forms.CharField(
        required=False, label=_("Serials"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Separated by spaces, commas or new lines."),
    )  # fmt: skip
    zone = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Zone"))
    expires_in_min = forms.IntegerField(
        required=False, min_value=1, max_value=7 * 24 * 60, label=_("Expires after (minutes)"),
        help_text=_("Empty: an hour; a curtailment, an hour after its window starts."),
    )  # fmt: skip

    def __init__(self, *args, sites=(), zones=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        self.fields["zone"].choices = [("", _("Choose a zone")), *[(z.pk, f"{z.site.name} · {z.name}") for z in zones]]
        self.zone_sites = {str(z.pk): z.site_id for z in zones}
        for name, field in self.fields.items():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)
            field.widget.attrs["data-field"] = name

    def clean(self):
        """Fields of another type or kind of targets are ignored, whatever they hold (hidden on the page)."""
        cleaned = super().clean()
        kind, target_kind = cleaned.get("type"), cleaned.get("target_kind")
        wanted = set(PARAM_FIELD.get(kind, {}).values()) | ({"curtail_by"} if kind == CommandType.CURTAIL else set())
        wanted |= {"serials"} if target_kind == "serials" else {"zone"} if target_kind == "zone" else set()
        for name in list(self._errors):
            if name in OPTIONAL_FIELDS and name not in wanted:
                del self._errors[name]
                cleaned.pop(name, None)
        return cleaned

    def proposal(self) -> dict:
        """The body of POST /api/v1/commands/propose (and /preview) for the cleaned form."""
        d = self.cleaned_data
        kind = d["type"]
        params: dict = {}
        if kind == CommandType.POOL_SET:
            params = {"url": d.get("pool_url") or "", "worker": d.get("pool_worker") or ""}
        elif kind == CommandType.SET_FAN:
            params = {"percent": d.get("fan_percent")}
        elif kind == CommandType.POWER_MODE:
            params = {"mode": d.get("power_mode") or ""}
        elif kind == CommandType.CURTAIL:
            by = d.get("curtail_by") or "kw"
            amount = d.get("curtail_kw") if by == "kw" else d.get("curtail_percent")
            params = {
                by: None if amount is None else str(amount),
                "start": _utc(d.get("curtail_start")),
                "end": _utc(d.get("curtail_end")),
                "mode": d.get("curtail_mode") or "soft",
            }
        target_kind = d["target_kind"]
        if target_kind == "zone":
            targets = {"zone": d.get("zone")}
        elif target_kind == "site":
            targets = {"site": d["site"]}
        else:
            targets = {"serials": [s for s in SERIAL_SPLIT.split(d.get("serials") or "") if s][: MAX_SERIALS + 1]}
        return {"site": d["site"], "type": kind, "params": params, "targets": targets}


def _utc(value: str | None) -> str:
    """A datetime-local value (``2026-11-26T02:00``) read as UTC, as the API takes it; "" stays "" (refused)."""
    value = (value or "").strip()
    return f"{value}Z" if value and not value.endswith("Z") else value


# Fields of the form that hold each parameter the engine may name in an error.
PARAM_FIELD = {
    CommandType.POOL_SET: {"url": "pool_url", "worker": "pool_worker"},
    CommandType.SET_FAN: {"percent": "fan_percent"},
    CommandType.POWER_MODE: {"mode": "power_mode"},
    CommandType.CURTAIL: {"kw": "curtail_kw", "percent": "curtail_percent", "start": "curtail_start",
                          "end": "curtail_end", "mode": "curtail_mode"},
}  # fmt: skip


# The fields only some types or kinds of targets use.
OPTIONAL_FIELDS = {name for fields in PARAM_FIELD.values() for name in fields.values()} | {
    "curtail_by", "serials", "zone",
}  # fmt: skip


def _propose_choices(user):
    rights = Rights(user)
    sites = site_selectors.manageable_site_list(user=user).order_by("name") if rights.full else []
    sites = list(sites)
    site_ids = [s.pk for s in sites]
    zones = list(
        site_selectors.zone_list(user=user).filter(site_id__in=site_ids).order_by("site__name", "name")
    )  # fmt: skip
    return sites, zones


def preview_labels() -> dict:
    """Every word the preview script shows, translated here (the script holds no text of its own)."""
    return {
        "score": gettext("Risk score"),
        "tier": gettext("Tier"),
        "who": gettext("Who must approve"),
        "factor": gettext("Factor"),
        "value": gettext("Value"),
        "weight": gettext("Weight"),
        "contribution": gettext("Contribution"),
        "targets": gettext("Targets"),
        "power": gettext("Nominal power"),
        "revenue": gettext("Revenue at stake"),
        "refused": gettext("The safety guards refuse this command whatever its approvals:"),
        "error": gettext("Not yet valid:"),
        "failed": gettext("The preview could not be computed; try again."),
        "loading": gettext("Computing the risk…"),
        "nobody": who_must_approve(tier="LOW", approvals_required=0, owner_admin_only=False),
        "one": who_must_approve(tier="MEDIUM", approvals_required=1, owner_admin_only=False),
        "two": who_must_approve(tier="HIGH", approvals_required=2, owner_admin_only=False),
        "two_admin": who_must_approve(tier="CRITICAL", approvals_required=2, owner_admin_only=True),
        "tiers": {k: str(v) for k, v in RiskTier.choices},
        "factors": {k: str(v) for k, v in FACTOR_LABELS.items()},
        "plan": gettext("Curtailment plan"),
        "requested": gettext("requested"),
        "planned": gettext("planned"),
        "shortfall": gettext("short of the request"),
        "power_targets": gettext("power targets"),
        "stops": gettext("stops"),
        "unchanged": gettext("left running"),
        "kw": "kW",
        "usd_day": gettext("USD/day"),
    }


@module_required(MODULE, Access.FULL)
def command_propose(request):
    sites, zones = _propose_choices(request.user)
    form = ProposeForm(request.POST or None, sites=sites, zones=zones)
    if request.method == "POST" and form.is_valid():
        body = form.proposal()
        minutes = form.cleaned_data.get("expires_in_min")
        try:
            proposed = command_services.command_propose(
                actor=request.user,
                type=body["type"],
                params=body["params"],
                targets=body["targets"],
                site_id=body["site"],
                expires_at=timezone.now() + timedelta(minutes=minutes) if minutes else None,
            )
        except DomainError as error:
            field = PARAM_FIELD.get(body["type"], {}).get((error.details or {}).get("field"))
            text = _error_text(error)
            if error.code == "unsafe_command":
                refusals = (error.details or {}).get("refusals", [])
                text = " ".join([text, *[r.get("message", "") for r in refusals]])
            form.add_error(field if field in form.fields else None, text)
        else:
            command = proposed.command
            if proposed.created:
                messages.success(
                    request,
                    gettext("Command #%(id)d proposed: %(status)s.")
                    % {"id": command.pk, "status": command.get_status_display()},
                )
            else:
                messages.info(request, gettext("The same command is already live as #%(id)d.") % {"id": command.pk})
            return redirect("portal:command-detail", pk=command.pk)
    return render(
        request,
        "portal/commands/propose.html",
        {
            "form": form,
            "has_sites": bool(sites),
            "zone_sites": json.dumps(form.zone_sites),
            "labels": json.dumps(preview_labels()),
            "preview_url": PREVIEW_URL,
        },
    )

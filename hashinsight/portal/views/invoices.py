"""Invoice pages (module FINANCE): the invoices (sort, filter by status, client, site, contract and month, CSV, totals
per currency), one invoice (header, lines, the statement's miner-days with links to the telemetry and commands behind
each figure, credit notes, payments, how to pay, downloads) and the operators' buttons on it (build or rebuild the
draft, issue, void the draft, credit note, record a payment, put the client on hold).

Reads go through ``hashinsight.billing.selectors`` (a hidden invoice is a 404, for every method; a client sees its own
issued invoices only); every button posts to a small view here that calls the owning part's service (invoicing,
issuing, payments, holds) and comes back to the invoice with a message. Writes need FINANCE full (owners, admins):
a site owner who reads the invoice gets a 403. A refusal (``DomainError``) is shown as a message and changes
nothing."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Sum
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing import exports, holds, invoicing, issuing, payments, selectors
from hashinsight.billing.models import Invoice, InvoiceStatus, PaymentMethod, SlaCertificate
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from sites.models import HostingContract
from sites.selectors import customer_list, site_list

MODULE = Module.FINANCE
STATEMENT_PAGE_ROWS = 50
BALANCE = F("total") - F("amount_paid") - F("amount_credited")
OPEN_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)


def _load(request, pk: int) -> Invoice:
    try:
        return selectors.invoice_get(user=request.user, pk=pk)
    except DomainError:
        raise Http404 from None


# ---------------------------------------------------------------------------------------------------------------
# The invoices


class InvoiceFilterForm(ListFilterForm):
    status = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Any status")), *InvoiceStatus.choices],
        label=gettext_lazy("Status"),
    )  # fmt: skip
    client = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=gettext_lazy("Client"))
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=gettext_lazy("Site"))
    contract = forms.CharField(required=False, max_length=40, label=gettext_lazy("Contract number"))
    month = forms.RegexField(
        required=False, regex=r"^\d{4}-(0[1-9]|1[0-2])$", label=gettext_lazy("Month"),
        error_messages={"invalid": gettext_lazy("Enter a month as YYYY-MM.")},
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Month (YYYY-MM)"), "inputmode": "numeric"}),
    )  # fmt: skip
    lookups = {"status": "status", "client": "customer_id", "site": "site_id", "contract": "contract__number"}

    def __init__(self, *args, customers=(), sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].choices = [("", _("All clients")), *[(c.pk, c.company) for c in customers]]
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]

    def filter_month(self, qs, value):
        year, month = (int(p) for p in value.split("-"))
        start = date(year, month, 1)
        end = date(year + (month == 12), month % 12 + 1, 1)
        return qs.filter(period_start__gte=start, period_start__lt=end)


class InvoiceTable(ListPage):
    columns = [
        Column("number", gettext_lazy("Invoice"), sort="number"),
        Column("client", gettext_lazy("Client"), sort="customer__company"),
        Column("site", gettext_lazy("Site"), sort="site__name"),
        Column("period", gettext_lazy("Period"), sort="period_start"),
        Column("due", gettext_lazy("Due"), sort="due_date"),
        Column("status", gettext_lazy("Status"), sort="status"),
        Column("total", gettext_lazy("Total"), sort="total", numeric=True),
        Column("balance", gettext_lazy("Balance due"), sort=BALANCE, numeric=True),
    ]
    csv_columns = [
        CsvColumn(gettext_lazy("Invoice"), "number"),
        CsvColumn(gettext_lazy("Invoice id"), "id"),
        CsvColumn(gettext_lazy("Client"), "customer__company"),
        CsvColumn(gettext_lazy("Site"), "site__name"),
        CsvColumn(gettext_lazy("Contract"), "contract__number"),
        CsvColumn(gettext_lazy("Period start"), "period_start"),
        CsvColumn(gettext_lazy("Period end"), "period_end"),
        CsvColumn(gettext_lazy("Issued"), "issue_date"),
        CsvColumn(gettext_lazy("Due"), "due_date"),
        CsvColumn(gettext_lazy("Status"), "status", display=dict(InvoiceStatus.choices)),
        CsvColumn(gettext_lazy("Currency"), "currency"),
        CsvColumn(gettext_lazy("Energy (kWh)"), "energy_kwh"),
        CsvColumn(gettext_lazy("Charges"), "subtotal"),
        CsvColumn(gettext_lazy("Credits"), "credits"),
        CsvColumn(gettext_lazy("Total due"), "total"),
        CsvColumn(gettext_lazy("Paid"), "amount_paid"),
        CsvColumn(gettext_lazy("Credit notes"), "amount_credited"),
        CsvColumn(gettext_lazy("Balance due"), "balance"),
    ]
    filter_form = InvoiceFilterForm
    default_sort = "-period"
    csv_name = "invoices"

    def get_queryset(self):
        return (
            selectors.invoice_list(user=self.request.user)
            .select_related("customer", "site", "contract")
            .annotate(balance=BALANCE)
        )

    def form_kwargs(self):
        user = self.request.user
        return {
            "customers": customer_list(user=user).order_by("company"),
            "sites": site_list(user=user).order_by("name"),
        }

    def context(self):
        totals = (
            self.filtered.order_by()
            .values("currency")
            .annotate(total=Sum("total"), paid=Sum("amount_paid"), credited=Sum("amount_credited"))
            .order_by("currency")
        )
        rows = [{**t, "balance": t["total"] - t["paid"] - t["credited"]} for t in totals]
        manage = selectors.may_manage(user=self.request.user)
        contracts = (
            HostingContract.objects.filter(status=HostingContract.Status.ACTIVE).select_related("customer")
            .order_by("number") if manage else []
        )  # fmt: skip
        return {"totals": rows, "may_manage": manage, "contracts": contracts}


@module_required(MODULE)
def invoice_list(request):
    return InvoiceTable(request).respond("portal/invoices/list.html")


# ---------------------------------------------------------------------------------------------------------------
# One invoice


class StatementFilterForm(forms.Form):
    miner = forms.CharField(required=False, max_length=64, label=gettext_lazy("Serial (or prefix*)"))
    day = forms.DateField(required=False, label=gettext_lazy("Day"), widget=forms.DateInput(attrs={"type": "date"}))
    downtime = forms.BooleanField(required=False, label=gettext_lazy("Only downtime and curtailment"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            css = "form-check-input" if name == "downtime" else "form-control form-control-sm"
            field.widget.attrs.setdefault("class", css)
        self.fields["miner"].widget.attrs["placeholder"] = str(self.fields["miner"].label)

    def clean_miner(self):
        value = self.cleaned_data["miner"]
        if "\x00" in value:
            raise forms.ValidationError(_("A serial cannot contain NUL characters."))
        return value


def _statement_page(request, invoice: Invoice):
    form = StatementFilterForm(request.GET)
    values = form.cleaned_data if form.is_valid() else {}
    qs = selectors.statement_rows_filtered(
        invoice=invoice, serial=values.get("miner") or None, day=values.get("day"),
        downtime_only=bool(values.get("downtime")),
    ).values(
        "miner_id", "serial", "day", "energy_kwh", "uptime_pct", "avg_hashrate_ths", "downtime_operator_h",
        "downtime_client_h", "downtime_excluded_h", "curtailed_h", "downtime_reasons", "energy_amount",
        "command_ids", "reported",
    )  # fmt: skip
    paginator = Paginator(qs, STATEMENT_PAGE_ROWS)
    raw = request.GET.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) <= paginator.num_pages else 1
    page = paginator.page(number)
    commands_pages = has_access(request.user, Module.CURTAILMENT, Access.READ)
    rows = []
    for r in page.object_list:
        ids = [int(c) for c in (r["command_ids"] or [])]
        commands = [
            (c, reverse("portal:command-detail", args=[c]) if commands_pages
             else reverse("portal:invoice-statement-command", args=[invoice.pk, c]))
            for c in ids
        ]  # fmt: skip
        telemetry = reverse("portal:telemetry-miner", args=[r["miner_id"]]) + "?" + urlencode({"day": r["day"]})
        rows.append({**r, "reasons": [x for x in r["downtime_reasons"].split(",") if x], "commands": commands,
                     "telemetry_url": telemetry})  # fmt: skip
    state = request.GET.copy()
    state.pop("page", None)
    return {
        "form": form, "page": page, "rows": rows, "query": state.urlencode(),
        "filtered": any(values.get(k) for k in ("miner", "day", "downtime")),
    }  # fmt: skip


def _instructions(invoice: Invoice):
    if invoice.status not in OPEN_STATUSES or invoice.balance_due <= 0:
        return None
    return payments.payment_instructions(invoice)


@module_required(MODULE)
def invoice_detail(request, pk: int):
    invoice = _load(request, pk)
    manage = selectors.may_manage(user=request.user)
    certificate = SlaCertificate.objects.filter(invoice_id=invoice.pk).first()
    context = {
        "invoice": invoice,
        "lines": invoice.lines.order_by("position"),
        "credit_notes": selectors.invoice_credit_notes(invoice=invoice),
        "payments": selectors.invoice_payments(invoice=invoice),
        "statement": _statement_page(request, invoice),
        "summary": exports.statement_summary(invoice),
        "instructions": _instructions(invoice),
        "certificate": certificate,
        "may_manage": manage,
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "is_open": invoice.status in OPEN_STATUSES,
        "methods": PaymentMethod.choices,
        "may_hold": manage and invoice.status == InvoiceStatus.OVERDUE,
    }
    return render(request, "portal/invoices/detail.html", context)


def _download(request, pk: int, send):
    """A statement download; with ``?t=`` (an e-mailed link) the token must name this invoice and this signed-in user
    (expired: 403 saying when; anything else: 404)."""
    invoice = _load(request, pk)
    token = request.GET.get("t")
    if token is not None:
        try:
            exports.check_statement_link(token[:2000], invoice=invoice, user=request.user)
        except DomainError as exc:
            status = 403 if exc.code == "link_expired" else 404
            return render(request, "portal/invoices/link_refused.html", {"message": exc.message, "invoice": invoice},
                          status=status)  # fmt: skip
    return send(invoice)


@never_cache
@module_required(MODULE)
def invoice_statement_csv(request, pk: int):
    return _download(request, pk, lambda invoice: exports.statement_csv_response(request, invoice))


@never_cache
@module_required(MODULE)
def invoice_statement_xlsx(request, pk: int):
    return _download(request, pk, exports.statement_xlsx_response)


@module_required(MODULE)
def invoice_statement_command(request, pk: int, command_id: int):
    invoice = _load(request, pk)
    try:
        command = selectors.statement_command(invoice=invoice, command_id=command_id)
    except DomainError:
        raise Http404 from None
    return render(request, "portal/invoices/command.html", {"invoice": invoice, "command": command})


# ---------------------------------------------------------------------------------------------------------------
# The operators' buttons: each posts here, calls the owning part's service and comes back with a message.


def _managed(request, pk: int) -> Invoice:
    """The invoice for a write: hidden → 404, seen read-only → 403."""
    invoice = _load(request, pk)
    if not selectors.may_manage(user=request.user):
        raise PermissionDenied
    return invoice


def _back(invoice: Invoice):
    return redirect("portal:invoice-detail", pk=invoice.pk)


def _refused(request, exc: DomainError) -> None:
    messages.error(request, _("Nothing was changed: %(message)s") % {"message": exc.message})


def _act(request, invoice: Invoice, call, success):
    """One POST button on the invoice page: run the service ``call()``; a DomainError changes nothing and is shown
    as such, otherwise ``success(result)`` is the confirmation. Back to the invoice page either way. (The issue,
    void, credit-note, payment and hold buttons all did exactly this; it is written once so they cannot drift.)"""
    try:
        result = call()
    except DomainError as exc:
        _refused(request, exc)
        return _back(invoice)
    messages.success(request, success(result))
    return _back(invoice)


@require_POST
@module_required(MODULE)
def invoice_build(request):
    """Build (or rebuild) the draft of one contract and month: ``invoicing.build_draft``."""
    if not selectors.may_manage(user=request.user):
        raise PermissionDenied
    contract_id, month = request.POST.get("contract", ""), request.POST.get("month", "")
    valid_id = contract_id.isdigit() and int(contract_id) <= selectors.MAX_ID  # a larger number would reach the driver
    contract = HostingContract.objects.filter(pk=int(contract_id)).first() if valid_id else None
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        first = None
    if contract is None or first is None:
        messages.error(request, _("Nothing was built: choose a contract and a month (YYYY-MM)."))
        return redirect("portal:invoice-list")
    try:
        invoice = invoicing.build_draft(contract, first)
    except DomainError as exc:
        _refused(request, exc)
        return redirect("portal:invoice-list")
    if invoice is None:
        messages.warning(
            request, _("No draft was built: the contract does not cover that month, or its invoice is already issued.")
        )
        return redirect("portal:invoice-list")
    messages.success(request, _("Draft built for %(contract)s, %(month)s.") % {"contract": contract.number,
                                                                                "month": month})  # fmt: skip
    return _back(invoice)


@require_POST
@module_required(MODULE)
def invoice_rebuild(request, pk: int):
    invoice = _managed(request, pk)
    if invoice.status != InvoiceStatus.DRAFT:
        messages.error(request, _("Only a draft can be rebuilt; an issued invoice is corrected by a credit note."))
        return _back(invoice)
    try:
        rebuilt = invoicing.build_draft(invoice.contract, invoice.period_start.replace(day=1))
    except DomainError as exc:
        _refused(request, exc)
        return _back(invoice)
    if rebuilt is None:
        messages.warning(request, _("The draft could not be rebuilt: the contract no longer covers that month."))
        return _back(invoice)
    messages.success(request, _("Draft rebuilt from the latest telemetry."))
    return _back(rebuilt)


@require_POST
@module_required(MODULE)
def invoice_issue(request, pk: int):
    invoice = _managed(request, pk)
    return _act(
        request, invoice, lambda: issuing.invoice_issue(invoice, actor=request.user),
        lambda issued: _("Invoice %(number)s issued.") % {"number": issued.number},
    )  # fmt: skip


@require_POST
@module_required(MODULE)
def invoice_void(request, pk: int):
    invoice = _managed(request, pk)
    return _act(
        request, invoice, lambda: issuing.void_draft(invoice, actor=request.user), lambda _r: _("Draft voided.")
    )


@require_POST
@module_required(MODULE)
def invoice_credit_note(request, pk: int):
    invoice = _managed(request, pk)
    return _act(
        request, invoice,
        lambda: issuing.credit_note_issue(
            invoice, amount=request.POST.get("amount", "")[:30], reason=request.POST.get("reason", "")[:500],
            actor=request.user,
        ),
        lambda note: _("Credit note %(number)s issued.") % {"number": note.number},
    )  # fmt: skip


@require_POST
@module_required(MODULE)
def invoice_payment(request, pk: int):
    invoice = _managed(request, pk)
    post = request.POST
    return _act(
        request, invoice,
        lambda: payments.payment_record(
            actor=request.user, invoice=invoice, method=post.get("method", "")[:8], amount=post.get("amount", "")[:30],
            received_at=post.get("received_at") or None, reference=post.get("reference", "")[:120] or None,
            txid=post.get("txid", "")[:100] or None, crypto_amount=post.get("crypto_amount", "")[:40] or None,
        ),
        lambda _r: _("Payment recorded."),
    )  # fmt: skip


@require_POST
@module_required(MODULE)
def invoice_hold(request, pk: int):
    """Put the invoice's client on hold at its site: proposes a command (never silently), shown on the commands page."""
    invoice = _managed(request, pk)
    return _act(
        request, invoice,
        lambda: holds.propose_hold(
            customer=invoice.customer, site=invoice.site, actor=request.user,
            reason=request.POST.get("reason", "")[:300],
        ),
        lambda proposal: _("Hold proposed as command #%(id)s: it runs once approved on the commands page.")
        % {"id": proposal.command_id},
    )  # fmt: skip

"""Payments pages (module FINANCE): the payments list (sort, filter, CSV) with the "record a payment" form and the
confirm / reject buttons of pending crypto payments, the address pool (list and import), sales commissions, and
holds (clients with overdue invoices, with "put on hold" / "release" buttons that propose a command).

Reads go through ``hashinsight.billing.payments`` / ``commissions`` selectors (a hidden payment is a 404); every
button posts to a view that calls the service (FINANCE FULL, else 403) and comes back to the list it was pressed on
with a message. A refusal (``DomainError``) is shown on the page, in the form it came from, and changes nothing."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import GLOBAL_ROLES, STAFF_ROLES, Access, Module, has_access, role_of
from hashinsight.billing import chain, commissions, holds, payments
from hashinsight.billing.models import InvoiceStatus, Payment, PaymentMethod
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from sites.selectors import customer_list, site_list

# --- the payments list ----------------------------------------------------------------------------


class PaymentFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=gettext_lazy("Invoice, client, reference or txid"))
    method = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Any method")), *PaymentMethod.choices], label=gettext_lazy("Method")
    )
    chain_status = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Any status")), *Payment.ChainStatus.choices],
        label=gettext_lazy("Status"),
    )  # fmt: skip
    customer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=gettext_lazy("Client"))
    lookups = {"method": "method", "chain_status": "chain_status", "customer": "invoice__customer_id"}

    def __init__(self, *args, customers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].choices = [("", _("All clients")), *[(c.pk, c.company) for c in customers]]

    def filter_q(self, qs, value):
        return qs.filter(payments.search_q(value))


class RecordPaymentForm(forms.Form):
    """The fields as typed; the service checks them (and names the field it refuses)."""

    invoice = forms.TypedChoiceField(coerce=int, label=gettext_lazy("Invoice"))
    method = forms.ChoiceField(choices=PaymentMethod.choices, label=gettext_lazy("Method"))
    amount = forms.CharField(max_length=30, label=gettext_lazy("Amount (invoice currency)"))
    received_at = forms.DateTimeField(
        required=False, label=gettext_lazy("Received (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text=gettext_lazy("Empty: now."),
    )  # fmt: skip
    reference = forms.CharField(required=False, max_length=120, label=gettext_lazy("Bank reference"))
    txid = forms.CharField(required=False, max_length=100, label=gettext_lazy("Transaction id"))
    crypto_amount = forms.CharField(required=False, max_length=30, label=gettext_lazy("Crypto amount (BTC/USDT)"))
    confirmations = forms.IntegerField(required=False, min_value=0, label=gettext_lazy("Confirmations seen"))
    allow_overpayment = forms.BooleanField(required=False, label=gettext_lazy("Allow an overpayment"))

    def __init__(self, *args, invoices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoice"].choices = [("", "—")] + [
            (i.pk, f"{i.number} · {i.customer.company} · {i.balance_due:,.2f} {i.currency}") for i in invoices
        ]
        for name, field in self.fields.items():
            css = (
                "form-check-input" if isinstance(field.widget, forms.CheckboxInput) else "form-control form-control-sm"
            )
            if isinstance(field.widget, forms.Select):
                css = "form-select form-select-sm"
            field.widget.attrs.setdefault("class", css)
            field.widget.attrs.setdefault("data-testid", f"record-{name}")


def _status_badge(status: str) -> str:
    return {"confirmed": "success", "pending": "warning", "failed": "danger"}.get(status, "secondary")


class PaymentTable(ListPage):
    columns = [
        Column("received", gettext_lazy("Received (UTC)"), sort="received_at"),
        Column("invoice", gettext_lazy("Invoice"), sort="invoice__number"),
        Column("client", gettext_lazy("Client"), sort="invoice__customer__company"),
        Column("method", gettext_lazy("Method"), sort="method"),
        Column("amount", gettext_lazy("Amount"), sort="amount", numeric=True),
        Column("status", gettext_lazy("Status"), sort="chain_status"),
        Column("reference", gettext_lazy("Reference / transaction")),
        Column("actions", ""),
    ]
    csv_columns = [
        CsvColumn(gettext_lazy("Payment"), "id"),
        CsvColumn(gettext_lazy("Invoice"), "invoice__number"),
        CsvColumn(gettext_lazy("Client"), "invoice__customer__company"),
        CsvColumn(gettext_lazy("Site"), "invoice__site__name"),
        CsvColumn(gettext_lazy("Method"), "method", display=dict(PaymentMethod.choices)),
        CsvColumn(gettext_lazy("Amount"), "amount"),
        CsvColumn(gettext_lazy("Currency"), "currency"),
        CsvColumn(gettext_lazy("Received (UTC)"), "received_at"),
        CsvColumn(gettext_lazy("Bank reference"), "reference"),
        CsvColumn(gettext_lazy("Transaction id"), "txid"),
        CsvColumn(gettext_lazy("Crypto amount"), "crypto_amount"),
        CsvColumn(gettext_lazy("Status"), "chain_status", display=dict(Payment.ChainStatus.choices)),
        CsvColumn(gettext_lazy("Confirmations"), "confirmations"),
    ]
    filter_form = PaymentFilterForm
    default_sort = "-received"
    csv_name = "payments"

    def __init__(self, request, record_form=None):
        self.can_write = has_access(request.user, Module.FINANCE, Access.FULL)
        self.record_form = record_form
        super().__init__(request)

    def get_queryset(self):
        return payments.payment_list(user=self.request.user)

    def form_kwargs(self):
        return {"customers": customer_list(user=self.request.user).order_by("company")}

    def context(self):
        form = self.record_form
        if form is None and self.can_write:
            form = RecordPaymentForm(invoices=open_invoices(self.request.user))
        return {
            "can_write": self.can_write,
            "record_form": form,
            "required": {"btc": chain.required_confirmations("btc"), "usdt": chain.required_confirmations("usdt")},
            "adapter": chain.get_adapter().name,
        }


def open_invoices(user):
    return (
        payments.invoice_list(user=user)
        .filter(status__in=payments.OPEN_STATUSES)
        .select_related("customer")
        .order_by("due_date", "number")[:500]
    )


def _back(request, name: str):
    query = QueryDict(request.POST.get("query", "")[:500]).urlencode()
    return redirect(reverse(name) + (f"?{query}" if query else ""))


def _require_full(request) -> None:
    if not has_access(request.user, Module.FINANCE, Access.FULL):
        raise PermissionDenied


@module_required(Module.FINANCE)
def payment_list(request):
    return PaymentTable(request).respond("portal/payments/payment_list.html")


@module_required(Module.FINANCE)
@require_POST
def payment_record(request):
    _require_full(request)
    form = RecordPaymentForm(request.POST, invoices=open_invoices(request.user))
    if form.is_valid():
        data = form.cleaned_data
        try:
            invoice = payments.invoice_get(user=request.user, invoice_id=data["invoice"])
            payment = payments.payment_record(
                actor=request.user, invoice=invoice, method=data["method"], amount=data["amount"],
                received_at=data["received_at"], reference=data["reference"], txid=data["txid"],
                crypto_amount=data["crypto_amount"] or None, confirmations=data["confirmations"],
                allow_overpayment=data["allow_overpayment"],
            )  # fmt: skip
        except DomainError as exc:
            field = exc.details.get("field") if isinstance(exc.details, dict) else None
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            if payment.chain_status == Payment.ChainStatus.PENDING:
                message = _("Payment of %(amount)s %(currency)s recorded for %(invoice)s: pending until confirmed.")
            else:
                message = _("Payment of %(amount)s %(currency)s recorded for %(invoice)s.")
            messages.success(
                request, message % {"amount": f"{payment.amount:,.2f}", "currency": payment.currency,
                                    "invoice": invoice.number},
            )  # fmt: skip
            return redirect("portal:payment-list")
    response = PaymentTable(request, record_form=form).respond("portal/payments/payment_list.html")
    response.status_code = 400
    return response


def _payment_action(request, pk, act, done: str):
    _require_full(request)
    try:
        payment = payments.payment_get(user=request.user, payment_id=pk)
    except DomainError:
        raise Http404 from None
    try:
        act(payment)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done % {"id": payment.pk})
    return _back(request, "portal:payment-list")


@module_required(Module.FINANCE)
@require_POST
def payment_confirm(request, pk: int):
    confirmations = request.POST.get("confirmations", "").strip() or None
    return _payment_action(
        request, pk,
        lambda p: payments.payment_confirm(actor=request.user, payment=p, confirmations=confirmations,
                                           reason=request.POST.get("reason", "")),
        _("Payment %(id)s updated."),
    )  # fmt: skip


@module_required(Module.FINANCE)
@require_POST
def payment_reject(request, pk: int):
    reason = request.POST.get("reason")
    return _payment_action(
        request, pk, lambda p: payments.payment_reject(actor=request.user, payment=p, reason=reason),
        _("Payment %(id)s rejected."),
    )  # fmt: skip


# --- the address pool ------------------------------------------------------------------------------


class AddressFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=gettext_lazy("Address"))
    network = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Any network")), ("btc", "BTC"), ("usdt", "USDT (TRC-20)")],
        label=gettext_lazy("Network"),
    )  # fmt: skip
    state = forms.ChoiceField(
        required=False,
        choices=[("", gettext_lazy("Free and given out")), ("free", gettext_lazy("Free")),
                 ("assigned", gettext_lazy("Given to an invoice"))],
        label=gettext_lazy("State"),
    )  # fmt: skip
    lookups = {"network": "network"}

    def filter_q(self, qs, value):
        return qs.filter(address__icontains=value.strip())

    def filter_state(self, qs, value):
        return qs.filter(assigned_at__isnull=value == "free")


class ImportForm(forms.Form):
    network = forms.ChoiceField(choices=[("btc", "BTC"), ("usdt", "USDT (TRC-20)")], label=gettext_lazy("Network"))
    addresses = forms.CharField(
        max_length=120_000, widget=forms.Textarea(attrs={"rows": 5}), label=gettext_lazy("Addresses, one a line")
    )


class AddressTable(ListPage):
    columns = [
        Column("address", gettext_lazy("Address"), sort="address"),
        Column("network", gettext_lazy("Network"), sort="network"),
        Column("assigned", gettext_lazy("Given out (UTC)"), sort="assigned_at"),
        Column("invoice", gettext_lazy("Invoice")),
    ]
    csv_columns = [
        CsvColumn(gettext_lazy("Address"), "address"),
        CsvColumn(gettext_lazy("Network"), "network"),
        CsvColumn(gettext_lazy("Given out (UTC)"), "assigned_at"),
        CsvColumn(gettext_lazy("Invoice"), "invoice__number"),
    ]
    filter_form = AddressFilterForm
    default_sort = "network"
    csv_name = "payment-addresses"

    def __init__(self, request, import_form=None, problems=None):
        self.import_form = import_form or ImportForm()
        self.import_problems = problems or []
        super().__init__(request)

    def get_queryset(self):
        return payments.address_list(user=self.request.user)

    def context(self):
        rows = list(self.page.object_list) if self.page is not None else []
        taken = [a.address for a in rows if a.assigned_at]
        numbers = {}
        if taken:
            for number, btc, usdt in (
                payments.invoice_list(user=self.request.user)
                .filter(Q(btc_address__in=taken) | Q(usdt_address__in=taken))
                .values_list("number", "btc_address", "usdt_address")
            ):
                numbers[btc] = numbers[usdt] = number
        for a in rows:
            a.invoice_number = numbers.get(a.address, "")
        open_qs = payments.invoice_list(user=self.request.user).filter(status__in=payments.OPEN_STATUSES)
        missing = {n: open_qs.filter(**{f"{n}_address": ""}).count() for n in payments.NETWORKS}
        return {
            "import_form": self.import_form, "import_problems": self.import_problems,
            "counts": payments.pool_counts(), "btc_network": payments.btc_network(), "missing": missing,
        }  # fmt: skip


def _require_pool(request) -> None:
    if role_of(request.user) not in GLOBAL_ROLES:
        raise PermissionDenied


@module_required(Module.FINANCE)
def address_list(request):
    _require_pool(request)
    if request.method == "POST":
        form = ImportForm(request.POST)
        problems = []
        if form.is_valid():
            try:
                result = payments.address_import(
                    actor=request.user, network=form.cleaned_data["network"], addresses=form.cleaned_data["addresses"]
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
                problems = exc.details.get("invalid", []) if isinstance(exc.details, dict) else []
            else:
                text = _("%(count)s addresses added to the pool.") % {"count": len(result.created)}
                if result.already_known:
                    text += " " + _("%(count)s were already in it.") % {"count": len(result.already_known)}
                messages.success(request, text)
                return redirect("portal:payment-address-list")
        response = AddressTable(request, import_form=form, problems=problems).respond(
            "portal/payments/address_list.html"
        )
        response.status_code = 400
        return response
    return AddressTable(request).respond("portal/payments/address_list.html")


# --- commissions -----------------------------------------------------------------------------------


class CommissionFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=gettext_lazy("Invoice, client or sales owner"))
    paid_out = forms.ChoiceField(
        required=False,
        choices=[("", gettext_lazy("Paid out or not")), ("no", gettext_lazy("Not paid out")),
                 ("yes", gettext_lazy("Paid out"))],
        label=gettext_lazy("Paid out"),
    )  # fmt: skip

    def filter_q(self, qs, value):
        value = value.strip()
        return qs.filter(
            Q(invoice__number__icontains=value) | Q(invoice__customer__company__icontains=value)
            | Q(sales_owner__username__icontains=value)
        )  # fmt: skip

    def filter_paid_out(self, qs, value):
        return qs.filter(paid_out=value == "yes")


class CommissionTable(ListPage):
    columns = [
        Column("earned", gettext_lazy("Earned (UTC)"), sort="created_at"),
        Column("invoice", gettext_lazy("Invoice"), sort="invoice__number"),
        Column("client", gettext_lazy("Client"), sort="invoice__customer__company"),
        Column("owner", gettext_lazy("Sales owner"), sort="sales_owner__username"),
        Column("rate", gettext_lazy("Rate (%)"), sort="rate_pct", numeric=True),
        Column("base", gettext_lazy("Paid amount"), sort="base_amount", numeric=True),
        Column("amount", gettext_lazy("Commission"), sort="amount", numeric=True),
        Column("paid_out", gettext_lazy("Paid out"), sort="paid_out"),
    ]
    csv_columns = [
        CsvColumn(gettext_lazy("Earned (UTC)"), "created_at"),
        CsvColumn(gettext_lazy("Invoice"), "invoice__number"),
        CsvColumn(gettext_lazy("Client"), "invoice__customer__company"),
        CsvColumn(gettext_lazy("Sales owner"), "sales_owner__username"),
        CsvColumn(gettext_lazy("Rate (%)"), "rate_pct"),
        CsvColumn(gettext_lazy("Paid amount"), "base_amount"),
        CsvColumn(gettext_lazy("Commission"), "amount"),
        CsvColumn(gettext_lazy("Currency"), "currency"),
        CsvColumn(gettext_lazy("Paid out"), "paid_out"),
    ]
    filter_form = CommissionFilterForm
    default_sort = "-earned"
    csv_name = "commissions"

    def get_queryset(self):
        return commissions.commission_list(user=self.request.user)

    def context(self):
        totals = self.filtered.values("currency").annotate(total=Sum("amount"), n=Count("id")).order_by("currency")
        return {"totals": list(totals), "sees_all": has_access(self.request.user, Module.FINANCE, Access.FULL)}


@module_required(Module.FINANCE)
def commission_list(request):
    if role_of(request.user) not in STAFF_ROLES:
        raise PermissionDenied
    return CommissionTable(request).respond("portal/payments/commission_list.html")


# --- holds ------------------------------------------------------------------------------------------


def _hold_rows(user) -> list[dict]:
    """One row per (client, site where it has miners) for clients with an overdue invoice: what they owe, and the
    newest hold or release command proposed for them there."""
    from miners.models import Miner

    overdue = (
        payments.invoice_list(user=user)
        .filter(status=InvoiceStatus.OVERDUE)
        .values("customer_id", "currency")
        .annotate(n=Count("id"), total=Sum("total"), paid=Sum("amount_paid"), credited=Sum("amount_credited"))
        .order_by("customer_id", "currency")
    )
    owed: dict[int, dict] = {}
    for r in overdue:
        entry = owed.setdefault(r["customer_id"], {"n": 0, "balances": []})
        entry["n"] += r["n"]
        balance = (r["total"] or 0) - (r["paid"] or 0) - (r["credited"] or 0)
        entry["balances"].append({"amount": balance, "currency": r["currency"]})
    if not owed:
        return []
    customers = {c.pk: c for c in customer_list(user=user).filter(pk__in=list(owed))}
    visible_sites = {s.pk: s for s in site_list(user=user)}
    pairs = (
        Miner.objects.filter(customer_id__in=list(customers), site_id__in=list(visible_sites))
        .exclude(status="retired")
        .values("customer_id", "site_id")
        .annotate(miners=Count("id"))
        .order_by("customer_id", "site_id")
    )
    latest = holds.latest_hold_commands(list(customers))
    rows = []
    for pair in pairs:
        customer = customers[pair["customer_id"]]
        site = visible_sites[pair["site_id"]]
        rows.append({
            "customer": customer, "site": site, "miners": pair["miners"], "owed": owed[customer.pk],
            "command": latest.get((customer.pk, site.pk)),
        })  # fmt: skip
    rows.sort(key=lambda r: (r["customer"].company, r["site"].name))
    return rows


@module_required(Module.FINANCE, Access.FULL)
def hold_list(request):
    return render(
        request, "portal/payments/hold_list.html",
        {"rows": _hold_rows(request.user), "zero": Decimal("0")},
    )  # fmt: skip


def _hold_action(request, propose, done: str):
    from sites.models import Customer, Site

    try:
        customer = Customer.objects.get(pk=int(request.POST.get("customer", "")))
        site = Site.objects.get(pk=int(request.POST.get("site", "")))
    except (ValueError, Customer.DoesNotExist, Site.DoesNotExist):
        raise Http404 from None
    try:
        result = propose(customer=customer, site=site, actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        if exc.status == 404:
            raise Http404 from None
        messages.error(request, exc.message)
    else:
        messages.success(
            request, done % {"id": result.command_id, "status": result.command.get_status_display(),
                             "client": customer.company, "site": site.name},
        )  # fmt: skip
    return redirect("portal:payment-hold-list")


@module_required(Module.FINANCE, Access.FULL)
@require_POST
def hold_propose(request):
    return _hold_action(
        request, holds.propose_hold,
        _("Hold proposed for %(client)s at %(site)s: command %(id)s (%(status)s). It runs only once approved."),
    )  # fmt: skip


@module_required(Module.FINANCE, Access.FULL)
@require_POST
def hold_release(request):
    return _hold_action(
        request, holds.release_hold,
        _("Release proposed for %(client)s at %(site)s: command %(id)s (%(status)s)."),
    )  # fmt: skip

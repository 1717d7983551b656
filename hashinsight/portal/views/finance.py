"""The finance home (module FINANCE): for a hosting client, its own invoices, what it owes (per currency), how to pay
each open invoice, and the way to its SLA history and its statements' proofs; for operators and site owners the same
page over the invoices they see (open ones first), with the way to the full invoice list.

Everything comes from ``hashinsight.billing.selectors.invoice_list`` (a client sees its own issued invoices only);
payment instructions from ``hashinsight.billing.payments.payment_instructions``, for the open invoices shown."""

from __future__ import annotations

from django.db.models import F, Sum
from django.shortcuts import render

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing import payments, selectors
from hashinsight.portal.views.common import module_required
from hashinsight.portal.views.invoices import BALANCE, OPEN_STATUSES

RECENT = 12  # invoices listed
INSTRUCTIONS = 5  # open invoices whose payment instructions are shown in full


@module_required(Module.FINANCE)
def finance_home(request):
    user = request.user
    visible = selectors.invoice_list(user=user).select_related("customer", "site", "contract")
    open_qs = visible.filter(status__in=OPEN_STATUSES).annotate(balance=BALANCE).filter(balance__gt=0)
    due = (
        open_qs.order_by().values("currency").annotate(balance=Sum(BALANCE)).order_by("currency")
    )  # per currency, never summed across
    open_invoices = list(open_qs.order_by(F("due_date").asc(nulls_last=True), "pk")[:RECENT])
    instructions = [(inv, payments.payment_instructions(inv)) for inv in open_invoices[:INSTRUCTIONS]]
    recent = list(visible.annotate(balance=BALANCE).order_by("-period_start", "-pk")[:RECENT])
    return render(request, "portal/finance/home.html", {
        "due": list(due), "open_invoices": open_invoices, "open_count": open_qs.count(),
        "instructions": instructions, "recent": recent, "total_count": visible.count(),
        "can_proofs": has_access(user, Module.WEB3, Access.READ),
        "may_manage": selectors.may_manage(user=user),
    })  # fmt: skip

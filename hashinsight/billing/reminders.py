"""Overdue invoices and their reminder e-mails (the hourly job ``billing.mark_overdue_and_remind``).

1. An issued or partially paid invoice past its due date (UTC dates: overdue from the day after ``due_date``)
   becomes overdue: ``invoice.changed`` in the outbox, in the transaction that changes it.
2. An overdue invoice gets a reminder when it is ``BILLING_REMINDER_DAYS`` (default 1, 7 and 14) days overdue,
   each once: ``reminders_sent`` counts the steps already passed and ``last_reminder_at`` says when. A job that was
   down for a week sends one reminder for the latest step passed, not one per missed step.
   The e-mail goes to the client's billing e-mail and its contact users (hosting-client users granted the client),
   each in their language (the contact's ``language``; the billing address in ``LANGUAGE_CODE``), as text and
   HTML from ``templates/email/billing/``, with the invoice's portal link (a plain URL; the page needs a login).

Each invoice is locked with ``skip_locked`` (two runs never remind twice); the e-mail is sent while the row is
locked and the counter is written in the same transaction, so a failed send leaves the step to the next run.
``settings.EMAIL_BACKEND`` carries it (the file backend in development, locmem in tests)."""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from hashinsight.accounts.roles import Role
from hashinsight.billing.models import Invoice, InvoiceStatus
from hashinsight.billing.money import format_money
from hashinsight.billing.payments import payment_instructions

logger = logging.getLogger(__name__)

DEFAULT_REMINDER_DAYS = (1, 7, 14)


def reminder_days() -> tuple[int, ...]:
    return tuple(sorted(int(d) for d in getattr(settings, "BILLING_REMINDER_DAYS", DEFAULT_REMINDER_DAYS)))


def steps_due(days_overdue: int, days: tuple[int, ...] | None = None) -> int:
    """How many reminder steps an invoice ``days_overdue`` days overdue has passed."""
    return sum(1 for d in (days or reminder_days()) if days_overdue >= d)


def invoice_url(invoice: Invoice) -> str:
    """The portal link of an invoice: ``PORTAL_BASE_URL`` + the invoice page (``portal:invoice-detail`` when the
    statements part has it, else ``/invoices/<id>/``)."""
    base = getattr(settings, "PORTAL_BASE_URL", "http://localhost:8000").rstrip("/")
    try:
        path = reverse("portal:invoice-detail", args=[invoice.pk])
    except NoReverseMatch:
        path = f"/invoices/{invoice.pk}/"
    return base + path


def recipients(invoice: Invoice) -> list[tuple[str, str]]:
    """(e-mail, language) pairs: the billing e-mail, then each active contact user with an e-mail; no repeats."""
    from hashinsight.accounts.models import User
    from sites.models import CustomerUserObjectPermission

    out: dict[str, str] = {}
    billing = (invoice.customer.email or "").strip()
    if billing:
        out[billing.lower()] = settings.LANGUAGE_CODE
    contact_ids = CustomerUserObjectPermission.objects.filter(
        content_object_id=invoice.customer_id, permission__codename="view_customer"
    ).values_list("user_id", flat=True)
    contacts = User.objects.filter(pk__in=contact_ids, is_active=True, role=Role.CLIENT).exclude(email="")
    for user in contacts.order_by("pk"):
        out.setdefault(user.email.strip().lower(), user.language or settings.LANGUAGE_CODE)
    return list(out.items())


def _render(invoice: Invoice, days_overdue: int, language: str) -> tuple[str, str, str]:
    context = {
        "invoice": invoice,
        "customer": invoice.customer,
        "days_overdue": days_overdue,
        "balance": format_money(invoice.balance_due, invoice.currency),
        "total": format_money(invoice.total, invoice.currency),
        "url": invoice_url(invoice),
        "instructions": payment_instructions(invoice),
        "payee": getattr(settings, "BILLING_PAYEE_NAME", "HashInsight"),
    }
    with translation.override(language):
        subject = render_to_string("email/billing/overdue_reminder_subject.txt", context).strip()
        text = render_to_string("email/billing/overdue_reminder.txt", context)
        html = render_to_string("email/billing/overdue_reminder.html", context)
    return " ".join(subject.split()), text, html


def send_reminder(invoice: Invoice, days_overdue: int) -> int:
    """One reminder to every recipient (a message each, in their language); how many were sent."""
    sent = 0
    for address, language in recipients(invoice):
        subject, text, html = _render(invoice, days_overdue, language)
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [address])
        message.attach_alternative(html, "text/html")
        sent += message.send()
    return sent


def mark_overdue(*, today: date | None = None) -> int:
    """Issued and partially paid invoices past due → overdue (the invoicing part's sweep, ``issuing.refresh_overdue``,
    which publishes ``invoice.changed`` for each); how many moved."""
    from hashinsight.billing.issuing import refresh_overdue

    return refresh_overdue(today=today or timezone.now().date())


def remind(*, today: date | None = None, now=None) -> dict:
    """Send the reminders due (see the module docstring); returns counts."""
    now = now or timezone.now()
    today = today or now.date()
    days = reminder_days()
    counts = {"reminded": 0, "emails": 0, "no_recipient": 0}
    if not days:
        return counts
    candidates = Invoice.objects.filter(
        status=InvoiceStatus.OVERDUE, due_date__lte=today.fromordinal(today.toordinal() - days[0]),
        reminders_sent__lt=len(days),
    ).values_list("pk", flat=True)  # fmt: skip
    for invoice_id in list(candidates):
        with transaction.atomic():
            invoice = (
                Invoice.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer", "site")
                .filter(pk=invoice_id, status=InvoiceStatus.OVERDUE)
                .first()
            )
            if invoice is None:
                continue
            overdue_days = (today - invoice.due_date).days
            due = steps_due(overdue_days, days)
            if due <= invoice.reminders_sent:
                continue
            sent = send_reminder(invoice, overdue_days)
            if not sent:
                counts["no_recipient"] += 1
                logger.warning("overdue invoice %s has no one to remind (no billing e-mail, no contacts)", invoice.pk)
            invoice.reminders_sent, invoice.last_reminder_at = due, now
            invoice.save(update_fields=["reminders_sent", "last_reminder_at", "updated_at"])
            counts["reminded"] += 1
            counts["emails"] += sent
    return counts


def mark_overdue_and_remind(*, today: date | None = None) -> dict:
    today = today or timezone.now().date()
    return {"overdue": mark_overdue(today=today), **remind(today=today)}

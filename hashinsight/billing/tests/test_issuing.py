"""Issuing: numbers, hashes in the audit chain, the proof leaf, immutability (services and the model guard), credit
notes, status refresh, and the canonical statement file's bytes."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from hashinsight.billing import invoicing, issuing, statements
from hashinsight.billing.models import CreditNote, Invoice, InvoiceLine, ProofLeaf, StatementRow
from hashinsight.billing.sla import DayDowntime
from hashinsight.billing.tests.factories_invoicing import add_daily, make_fleet, stub_sla
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.security.canonical import canonical_json
from hashinsight.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SEP, SEP_END = date(2026, 9, 1), date(2026, 9, 30)
D = Decimal


@pytest.fixture
def admin():
    return UserFactory(role="ADMIN")


@pytest.fixture
def draft(monkeypatch):
    stub_sla(monkeypatch, {})
    fleet = make_fleet(payment_terms_days=15)
    add_daily(fleet.miners, SEP, SEP_END)
    return invoicing.build_draft(fleet.contract, SEP)


def test_issuing_numbers_hashes_and_audits(draft, admin):
    invoice = issuing.invoice_issue(draft, actor=admin)
    today = timezone.now().date()
    assert invoice.status == Invoice.Status.ISSUED
    assert invoice.number == f"INV-{today:%Y%m}-00001"
    assert (invoice.issue_date, invoice.due_date) == (today, today + timedelta(days=15))
    body = statements.statement_bytes(invoice)
    assert invoice.statement_sha256 == hashlib.sha256(body).hexdigest()
    assert invoice.content_sha256 == hashlib.sha256(canonical_json(issuing.invoice_document(invoice))).hexdigest()
    assert issuing.verify_invoice(invoice) == {"content": True, "statement": True}
    event = AuditEvent.objects.get(public_id=invoice.audit_event_id)
    assert event.event_type == "invoice.issued" and event.reference == invoice.number
    assert event.payload["content_sha256"] == invoice.content_sha256
    assert event.payload["statement_sha256"] == invoice.statement_sha256
    assert event.actor_id == str(admin.pk)
    leaf = ProofLeaf.objects.get(kind="statement", object_id=invoice.pk)
    assert (leaf.sha256, leaf.customer_id, leaf.site_id) == (
        invoice.statement_sha256, invoice.customer_id, invoice.site_id)  # fmt: skip
    assert OutboxEvent.objects.filter(event_type="invoice.changed", payload__status="issued",
                                      payload__number=invoice.number).exists()  # fmt: skip


def test_numbers_follow_each_other_without_gaps(draft, admin, monkeypatch):
    other = make_fleet()
    add_daily(other.miners, SEP, SEP_END)
    second = invoicing.build_draft(other.contract, SEP)
    first = issuing.invoice_issue(draft, actor=admin)
    with pytest.raises(DomainError):  # a refused issue takes no number
        issuing.invoice_issue(first, actor=admin)
    second = issuing.invoice_issue(second, actor=admin)
    assert [first.number[-5:], second.number[-5:]] == ["00001", "00002"]


def test_only_drafts_are_issued_or_voided(draft, admin):
    issued = issuing.invoice_issue(draft, actor=admin)
    for service in (issuing.invoice_issue, issuing.void_draft):
        with pytest.raises(DomainError) as exc:
            service(issued, actor=admin)
        assert exc.value.code == "invoice_not_draft" and exc.value.status == 409


def test_voiding_a_draft_frees_its_month(draft, admin):
    issuing.void_draft(draft, actor=admin)
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.VOID
    assert not StatementRow.objects.filter(invoice=draft).exists()
    assert issuing.void_draft(draft, actor=admin).status == Invoice.Status.VOID  # repeat: no-op
    rebuilt = invoicing.build_draft(draft.contract, SEP)
    assert rebuilt.pk != draft.pk and rebuilt.status == Invoice.Status.DRAFT


def test_an_issued_invoice_is_not_rebuilt(draft, admin):
    issued = issuing.invoice_issue(draft, actor=admin)
    StatementRow.objects.filter(invoice=issued).count()
    again = invoicing.build_draft(issued.contract, SEP)
    assert again.pk == issued.pk and again.status == Invoice.Status.ISSUED
    assert issuing.verify_invoice(again) == {"content": True, "statement": True}


def test_the_model_guard_refuses_changes_to_an_issued_invoice(draft, admin):
    issued = issuing.invoice_issue(draft, actor=admin)
    line = InvoiceLine.objects.filter(invoice=issued).first()
    line.amount = D("1.00")
    with pytest.raises(issuing.InvoiceImmutable):
        line.save()
    with pytest.raises(issuing.InvoiceImmutable), transaction.atomic():  # delete() runs in an atomic block
        line.delete()
    with pytest.raises(issuing.InvoiceImmutable):
        InvoiceLine.objects.create(invoice=issued, position=9, kind="adjustment", description="x", quantity=1,
                                   unit="USD", unit_price=1, amount=D("1.00"))  # fmt: skip
    row = StatementRow.objects.filter(invoice=issued).first()
    row.energy_kwh = D("1")
    with pytest.raises(issuing.InvoiceImmutable):
        row.save()
    invoice = Invoice.objects.get(pk=issued.pk)
    invoice.total = D("1.00")
    with pytest.raises(issuing.InvoiceImmutable):
        invoice.save()
    invoice = Invoice.objects.get(pk=issued.pk)
    invoice.status = Invoice.Status.DRAFT
    with pytest.raises(issuing.InvoiceImmutable):
        invoice.save()
    with pytest.raises((issuing.InvoiceImmutable, ProtectedError)), transaction.atomic():
        Invoice.objects.get(pk=issued.pk).delete()  # (an SLA certificate may protect it first)
    # What may still move: payments, status, reminders.
    invoice = Invoice.objects.get(pk=issued.pk)
    invoice.amount_paid = D("10.00")
    invoice.reminders_sent = 1
    invoice.save()
    assert issuing.verify_invoice(Invoice.objects.get(pk=issued.pk)) == {"content": True, "statement": True}


def test_a_draft_may_change(draft):
    line = draft.lines.first()
    line.description = "edited"
    line.save()
    row = StatementRow.objects.filter(invoice=draft).first()
    row.delete()


def test_credit_notes_lower_the_balance_until_paid(draft, admin):
    invoice = issuing.invoice_issue(draft, actor=admin)  # 259.20
    note = issuing.credit_note_issue(invoice, amount="59.20", reason="Rack B power meter fault", actor=admin)
    today = timezone.now().date()
    assert note.number == f"CN-{today:%Y%m}-00001"
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.balance_due, invoice.status) == (D("59.20"), D("200.00"), "issued")
    assert note.content_sha256 == hashlib.sha256(canonical_json(issuing.credit_note_document(note))).hexdigest()
    event = AuditEvent.objects.get(public_id=note.audit_event_id)
    assert event.event_type == "credit_note.issued" and event.payload["amount"] == "59.20"
    assert ProofLeaf.objects.filter(kind="credit_note", object_id=note.pk, sha256=note.content_sha256).exists()
    with pytest.raises(DomainError) as exc:
        issuing.credit_note_issue(invoice, amount="200.01", reason="too much", actor=admin)
    assert exc.value.code == "amount_exceeds_balance"
    issuing.credit_note_issue(invoice, amount=D("200.00"), reason="Goodwill", actor=admin)
    invoice.refresh_from_db()
    assert (invoice.balance_due, invoice.status) == (D("0.00"), "paid")
    with pytest.raises(DomainError) as exc:
        issuing.credit_note_issue(invoice, amount="1", reason="again", actor=admin)
    assert exc.value.code == "invoice_not_open"
    assert issuing.verify_invoice(invoice) == {"content": True, "statement": True}  # the invoice itself unchanged


@pytest.mark.parametrize("amount", ["0", "-1", "1.001", "abc", "NaN", "Infinity", "", None, 1.5, True])
def test_bad_credit_note_amounts_change_nothing(draft, admin, amount):
    invoice = issuing.invoice_issue(draft, actor=admin)
    with pytest.raises(DomainError) as exc:
        issuing.credit_note_issue(invoice, amount=amount, reason="x", actor=admin)
    assert exc.value.code == "invalid_amount"
    assert not CreditNote.objects.exists()


def test_credit_notes_need_an_issued_invoice_and_a_reason(draft, admin):
    with pytest.raises(DomainError) as exc:
        issuing.credit_note_issue(draft, amount="1", reason="x", actor=admin)
    assert exc.value.code == "invoice_not_open"
    invoice = issuing.invoice_issue(draft, actor=admin)
    with pytest.raises(DomainError) as exc:
        issuing.credit_note_issue(invoice, amount="1", reason="  ", actor=admin)
    assert exc.value.code == "invalid_reason"


def test_status_follows_payments_and_the_due_date(draft, admin):
    invoice = issuing.invoice_issue(draft, actor=admin)
    due = invoice.due_date
    assert issuing.status_for(invoice, today=due) == "issued"
    assert issuing.status_for(invoice, today=due + timedelta(days=1)) == "overdue"
    invoice.amount_paid = D("100.00")
    assert issuing.status_for(invoice, today=due) == "partially_paid"
    assert issuing.status_for(invoice, today=due + timedelta(days=1)) == "overdue"
    invoice.amount_paid = D("259.20")
    assert issuing.status_for(invoice, today=due + timedelta(days=9)) == "paid"
    invoice.amount_paid = D("100.00")
    invoice.save(update_fields=["amount_paid", "updated_at"])
    assert issuing.refresh_status(invoice, today=due) == "partially_paid"
    assert Invoice.objects.get(pk=invoice.pk).status == "partially_paid"
    assert issuing.refresh_overdue(today=due + timedelta(days=1)) == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "overdue"
    assert OutboxEvent.objects.filter(event_type="invoice.changed", payload__status="overdue").exists()


def test_the_statement_file_is_fixed_and_byte_identical(monkeypatch, admin):
    fleet = make_fleet(miners=2)
    add_daily(fleet.miners, SEP, SEP_END, skip={(fleet.miners[1], date(2026, 9, 2))})
    a = fleet.miners[0]
    within = DayDowntime(
        curtailed_h=D("2.5"), excluded_h=D("2.5"), reasons=("curtailment_allowance",), command_ids=(5, 9)
    )
    stub_sla(monkeypatch, {(a.pk, date(2026, 9, 1)): within})
    invoice = issuing.invoice_issue(invoicing.build_draft(fleet.contract, SEP), actor=admin)
    body = statements.statement_bytes(invoice)
    assert body == statements.statement_bytes(Invoice.objects.get(pk=invoice.pk))
    lines = body.decode().split("\n")
    assert lines[:13] == [
        "statement,hashinsight-statement/1", f"invoice,{invoice.number}", f"client,{fleet.customer.company}",
        f"contract,{fleet.contract.number}", f"site,{fleet.site.name}", "period_start,2026-09-01",
        "period_end,2026-09-30", "currency,USD", "tariff,all_in_kwh", "rate_per_kwh,0.06000", "revenue_share_pct,0.00",
        "", ",".join(statements.COLUMNS),
    ]  # fmt: skip
    rows = lines[13:-1]
    assert len(rows) == 60 and lines[-1] == ""
    assert rows[0] == (f"2026-09-01,{a.serial},72.000,100.000,100.000,0.000,0.000,2.500,2.500,"
                       "curtailment_allowance,4.320000,5;9,1")  # fmt: skip
    b = fleet.miners[1]
    assert f"2026-09-02,{b.serial},0.000,0.000,,24.000,0.000,0.000,0.000,unexplained,0.000000,,0" in rows
    assert [r.split(",")[0] for r in rows] == sorted(r.split(",")[0] for r in rows)
    assert hashlib.sha256(body).hexdigest() == invoice.statement_sha256 == statements.statement_sha256(invoice)


def test_formula_like_names_are_neutralised_in_the_statement(draft):
    draft.customer.company = "=HYPERLINK(1)"
    draft.customer.save()
    body = statements.statement_bytes(Invoice.objects.get(pk=draft.pk)).decode()
    assert "client,'=HYPERLINK(1)\n" in body


def test_postgresql_refuses_raw_changes_to_an_issued_statement(draft, admin, on_postgres):
    from django.db import DatabaseError, connection

    issued = issuing.invoice_issue(draft, actor=admin)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_statementrow SET energy_kwh = 0 WHERE invoice_id = %s", [issued.pk])
    assert issuing.verify_invoice(Invoice.objects.get(pk=issued.pk)) == {"content": True, "statement": True}


@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_take_distinct_numbers_without_gaps(on_postgres, monkeypatch):
    """Four drafts issued by four threads at once (own connections): numbers 1–4 of the month, each once."""
    import threading

    from django.db import connection

    stub_sla(monkeypatch, {})
    drafts = []
    for _ in range(4):
        fleet = make_fleet(miners=1)
        add_daily(fleet.miners, SEP, SEP_END)
        drafts.append(invoicing.build_draft(fleet.contract, SEP))
    admin = UserFactory(role="ADMIN")
    barrier, errors = threading.Barrier(4), []

    def issue(invoice):
        try:
            barrier.wait()
            issuing.invoice_issue(invoice, actor=admin)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(d,)) for d in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert [n[-5:] for n in numbers] == ["00001", "00002", "00003", "00004"]

"""CRM services and selectors: deals, contracts, their rules, audit and outbox; scope per role."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.tests.factories import DealFactory, HostingContractFactory, MinerFactory
from sites import crm_selectors as sel
from sites import crm_services as svc
from sites.models import Customer, Deal, HostingContract

pytestmark = pytest.mark.django_db
C = HostingContract.Status
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _draft(farm, **kw):
    fields = {"customer": farm.client_x, "site": farm.site_a, "start_date": date(2026, 1, 1),
              "rate_per_kwh": Decimal("0.06")}  # fmt: skip
    fields.update(kw)
    return svc.contract_create(actor=farm.users["owner"], **fields)


def _events(kind):
    return list(OutboxEvent.objects.filter(event_type=kind).order_by("created_at").values_list("payload", flat=True))


def _refused(code, fn, *args, **kwargs):
    with pytest.raises(DomainError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, exc.value.message
    return exc.value


# ---------------------------------------------------------------------------------------------------------
# Deals


def test_deal_create_defaults_owner_and_publishes(farm):
    owner = farm.users["owner"]
    deal = svc.deal_create(actor=owner, title="Hydro 5 MW", prospect_company="Acme Mining", expected_mw="5.000",
                           value=Decimal("120000.00"), site=farm.site_a)  # fmt: skip
    assert deal.owner == owner and deal.stage == Deal.Stage.LEAD
    assert _events("deal.changed") == [{"deal_id": deal.pk, "customer_id": None, "stage": "lead",
                                        "previous_stage": None}]  # fmt: skip


def test_deal_needs_a_company_and_a_sales_owner_who_writes_crm(farm):
    owner = farm.users["owner"]
    _refused("invalid", svc.deal_create, actor=owner, title="Nameless")
    _refused("invalid_owner", svc.deal_create, actor=owner, title="T", prospect_company="P",
             owner=farm.users["siteowner_a"])  # fmt: skip
    _refused("crm_read_only", svc.deal_create, actor=farm.users["siteowner_a"], title="T", prospect_company="P")
    _refused("unknown_field", svc.deal_create, actor=owner, title="T", prospect_company="P", status="won")
    assert not Deal.objects.exists() and not OutboxEvent.objects.filter(event_type="deal.changed").exists()


def test_stage_moves_publish_previous_and_repeat_is_a_no_op(farm):
    deal = DealFactory(customer=farm.client_x, site=farm.site_a)
    owner = farm.users["owner"]
    svc.deal_set_stage(actor=owner, deal=deal, stage="proposal")
    svc.deal_set_stage(actor=owner, deal=deal, stage="proposal")
    assert _events("deal.changed") == [{"deal_id": deal.pk, "customer_id": farm.client_x.pk, "stage": "proposal",
                                        "previous_stage": "lead"}]  # fmt: skip
    _refused("invalid_stage", svc.deal_set_stage, actor=owner, deal=deal, stage="signed")


def test_convert_creates_a_draft_for_the_client_and_wins_the_deal(farm):
    owner = farm.users["owner"]
    farm.client_x.hosting_rate_usd_per_kwh = Decimal("0.05500")
    farm.client_x.save()
    deal = DealFactory(customer=farm.client_x, site=farm.site_a, stage="negotiation", currency="USD",
                       expected_close=date(2026, 3, 1), owner=owner)  # fmt: skip
    contract, created = svc.deal_convert(actor=owner, deal=deal)
    assert created and contract.status == C.DRAFT and contract.deal == deal
    assert (contract.customer, contract.site, contract.start_date) == (farm.client_x, farm.site_a, date(2026, 3, 1))
    assert contract.rate_per_kwh == Decimal("0.055") and contract.currency == "USD"
    assert contract.sales_owner == owner and contract.number == "HC-2026-0001"
    deal.refresh_from_db()
    assert deal.stage == Deal.Stage.WON
    again, created_again = svc.deal_convert(actor=owner, deal=deal)
    assert again.pk == contract.pk and not created_again
    assert HostingContract.objects.count() == 1
    # A won deal with a contract stays won.
    _refused("deal_has_contracts", svc.deal_set_stage, actor=owner, deal=deal, stage="lost")


def test_convert_a_prospect_creates_the_client_with_the_given_rate(farm):
    owner = farm.users["owner"]
    deal = DealFactory(prospect_company="Nordic Hash AB", contact_email="ops@nordic.example", site=farm.site_b)
    contract, _ = svc.deal_convert(actor=owner, deal=deal, start_date=date(2026, 2, 1), rate_per_kwh=Decimal("0.07"))
    client = Customer.objects.get(company="Nordic Hash AB")
    assert client.slug == "nordic-hash-ab" and client.email == "ops@nordic.example"
    assert contract.customer == client and Deal.objects.get(pk=deal.pk).customer == client


def test_convert_refusals_change_nothing(farm):
    owner = farm.users["owner"]
    no_site = DealFactory(customer=farm.client_x)
    _refused("deal_needs_site", svc.deal_convert, actor=owner, deal=no_site)
    lost = DealFactory(customer=farm.client_x, site=farm.site_a, stage="lost")
    _refused("deal_lost", svc.deal_convert, actor=owner, deal=lost)
    prospect = DealFactory(prospect_company="No Rate Ltd", site=farm.site_a)
    _refused("invalid_tariff", svc.deal_convert, actor=owner, deal=prospect)  # no rate anywhere
    assert not HostingContract.objects.exists() and not Customer.objects.filter(company="No Rate Ltd").exists()
    assert Deal.objects.get(pk=prospect.pk).stage == "lead"


# ---------------------------------------------------------------------------------------------------------
# Contract terms


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("all_in_kwh", {"rate_per_kwh": Decimal("0")}, "rate_per_kwh"),
        ("all_in_kwh", {"rate_per_kwh": Decimal("0.05"), "revenue_share_pct": Decimal("10")}, "revenue_share_pct"),
        ("kwh_plus_fixed", {"rate_per_kwh": Decimal("0.05")}, "fixed_fee_per_miner_month"),
        ("kwh_plus_fixed", {"rate_per_kwh": Decimal("0"), "fixed_fee_per_miner_month": Decimal("5")}, "rate_per_kwh"),
        ("revenue_share", {"rate_per_kwh": Decimal("0")}, "revenue_share_pct"),
        ("revenue_share", {"rate_per_kwh": Decimal("0"), "revenue_share_pct": Decimal("100.01")}, "revenue_share_pct"),
    ],
)
def test_tariff_parameters_per_kind(farm, kind, params, field):
    err = _refused("invalid_tariff", _draft, farm, tariff_kind=kind, **params)
    assert err.details["field"] == field and err.status == 400
    assert not HostingContract.objects.exists()


def test_complete_tariffs_of_each_kind_are_accepted(farm):
    a = _draft(farm, tariff_kind="kwh_plus_fixed", fixed_fee_per_miner_month=Decimal("4.50"))
    b = _draft(farm, tariff_kind="revenue_share", rate_per_kwh=Decimal("0"), revenue_share_pct=Decimal("100"))
    assert (a.fixed_fee_per_miner_month, b.revenue_share_pct) == (Decimal("4.50"), Decimal("100"))


@pytest.mark.parametrize(
    "schedule",
    [
        [{"below_pct": "95", "credit_pct": "10"}, {"below_pct": "97", "credit_pct": "5"}],  # ascending
        [{"below_pct": "97", "credit_pct": "5"}, {"below_pct": "97", "credit_pct": "10"}],  # equal
        [{"below_pct": "101", "credit_pct": "5"}],
        [{"below_pct": "0", "credit_pct": "5"}],
        [{"below_pct": "97", "credit_pct": "-1"}],
        [{"below_pct": "97", "credit_pct": "abc"}],
        [{"below_pct": "97", "credit_pct": "NaN"}],
        [{"below_pct": 97.5, "credit_pct": "5"}],  # a float: not a decimal string
        [{"below_pct": "97.123", "credit_pct": "5"}],
        [{"below_pct": "97"}],
        [{"below_pct": "97", "credit_pct": "5", "extra": "1"}],
        {"below_pct": "97", "credit_pct": "5"},
        ["97"],
    ],
)
def test_sla_schedule_is_refused(farm, schedule):
    _refused("invalid_sla_schedule", _draft, farm, sla_credit_schedule=schedule)


def test_sla_schedule_is_stored_canonical(farm):
    c = _draft(
        farm, sla_credit_schedule=[{"below_pct": "97.50", "credit_pct": "5"}, {"below_pct": 90, "credit_pct": "12.5"}]
    )
    assert c.sla_credit_schedule == [
        {"below_pct": "97.5", "credit_pct": "5"},
        {"below_pct": "90", "credit_pct": "12.5"},
    ]


def test_curtailment_credit_rate_goes_with_the_rate_kind(farm):
    _refused("invalid_curtailment_terms", _draft, farm, curtailment_credit_kind="rate")
    _refused("invalid_curtailment_terms", _draft, farm, curtailment_credit_per_miner_hour=Decimal("0.1"))
    c = _draft(farm, curtailment_credit_kind="rate", curtailment_credit_per_miner_hour=Decimal("0.12"))
    assert c.curtailment_credit_per_miner_hour == Decimal("0.12")


# ---------------------------------------------------------------------------------------------------------
# Contract lifecycle


def test_activate_end_audit_and_publish(farm):
    owner = farm.users["owner"]
    c = _draft(farm)
    svc.contract_activate(actor=owner, contract=c)
    svc.contract_activate(actor=owner, contract=c)  # repeat: nothing
    svc.contract_end(actor=owner, contract=c, end_date=date(2026, 6, 30))
    c.refresh_from_db()
    assert (c.status, c.end_date) == (C.ENDED, date(2026, 6, 30))
    statuses = [(p["status"], p["previous_status"]) for p in _events("hosting_contract.changed")]
    assert statuses == [("draft", None), ("active", "draft"), ("ended", "active")]
    audits = list(
        AuditEvent.objects.filter(reference=f"hosting_contract:{c.pk}")
        .order_by("seq")
        .values_list("event_type", "actor_id")
    )
    assert audits == [("hosting_contract.activated", str(owner.pk)), ("hosting_contract.ended", str(owner.pk))]
    _refused("contract_closed", svc.contract_update, actor=owner, contract=c, notes="late edit")
    _refused("contract_closed", svc.contract_activate, actor=owner, contract=c)


def test_terminate_needs_a_reason_and_is_audited(farm):
    owner = farm.users["owner"]
    c = _draft(farm)
    _refused("invalid", svc.contract_terminate, actor=owner, contract=c, reason="  ")
    svc.contract_terminate(actor=owner, contract=c, reason="client withdrew")
    event = AuditEvent.objects.get(event_type="hosting_contract.terminated")
    assert event.payload["reason"] == "client withdrew" and event.payload["from"] == "draft"
    _refused("contract_not_active", svc.contract_end, actor=owner, contract=c)


def test_overlapping_active_contracts_are_refused(farm):
    owner = farm.users["owner"]
    first = _draft(farm, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
    svc.contract_activate(actor=owner, contract=first)
    clash = _draft(farm, start_date=date(2026, 12, 31))
    err = _refused("contract_overlap", svc.contract_activate, actor=owner, contract=clash)
    assert err.status == 409 and err.details["contract"] == first.number
    clash.refresh_from_db()
    assert clash.status == C.DRAFT
    after = _draft(farm, start_date=date(2027, 1, 1))
    other_site = _draft(farm, site=farm.site_b, start_date=date(2026, 6, 1))
    assert svc.contract_activate(actor=owner, contract=after).status == C.ACTIVE
    assert svc.contract_activate(actor=owner, contract=other_site).status == C.ACTIVE
    # Stretching the first back over the second is refused too.
    _refused("contract_overlap", svc.contract_update, actor=owner, contract=first, end_date=None)


def test_changes_to_an_active_contract_are_audited_and_keep_client_and_site(farm):
    owner = farm.users["owner"]
    c = svc.contract_activate(actor=owner, contract=_draft(farm))
    svc.contract_update(actor=owner, contract=c, rate_per_kwh=Decimal("0.065"), commission_pct=Decimal("2.5"),
                        sales_owner=farm.users["admin"])  # fmt: skip
    event = AuditEvent.objects.get(event_type="hosting_contract.changed")
    assert event.payload["changed"] == {"commission_pct": "2.5", "rate_per_kwh": "0.065",
                                        "sales_owner": farm.users["admin"].pk}  # fmt: skip
    assert event.payload["previous"] == {"commission_pct": "0.00", "rate_per_kwh": "0.06000", "sales_owner": None}
    _refused("contract_active", svc.contract_update, actor=owner, contract=c, site=farm.site_b)


def test_miners_covered_only_the_clients_at_the_site(farm):
    owner = farm.users["owner"]
    c = _draft(farm)
    mine = farm.miners[("site-a", "client-x")]
    extra = MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_x)
    assert sel.contract_miner_count(c) == 2  # none listed: every miner of the client at the site
    assert svc.contract_set_miners(actor=owner, contract=c, miners=[mine.pk, extra.serial]) == 2
    for wrong in (farm.miners[("site-b", "client-x")], farm.miners[("site-a", "client-y")],
                  farm.miners[("site-a", "own")]):  # fmt: skip
        err = _refused("miner_not_covered", svc.contract_set_miners, actor=owner, contract=c, miners=[wrong.pk])
        assert err.details["miners"] == [wrong.serial]
    _refused("unknown_miners", svc.contract_set_miners, actor=owner, contract=c, miners=["NOPE-1"])
    _refused("invalid_miners", svc.contract_set_miners, actor=owner, contract=c, miners=[True])
    assert set(c.miners.values_list("pk", flat=True)) == {mine.pk, extra.pk}
    assert svc.contract_set_miners(actor=owner, contract=c, miners=[]) == 0
    assert sel.contract_miner_count(c) == 2


def test_document_upload_records_the_hash_in_the_audit_chain(farm):
    owner = farm.users["owner"]
    c = _draft(farm)
    svc.contract_upload_document(actor=owner, contract=c, upload=SimpleUploadedFile("x.exe", PDF),
                                 signed_at=date(2026, 1, 2))  # fmt: skip
    c.refresh_from_db()
    digest = hashlib.sha256(PDF).hexdigest()
    assert c.signed_document_sha256 == digest and c.signed_at == date(2026, 1, 2)
    assert c.signed_document.name.endswith(".pdf") and "x.exe" not in c.signed_document.name
    with c.signed_document.open("rb") as fh:
        assert fh.read() == PDF
    event = AuditEvent.objects.get(event_type="hosting_contract.document_uploaded")
    assert event.payload["sha256"] == digest and event.payload["content_type"] == "application/pdf"


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"MZ\x90\x00 not a pdf", "document_type"), (b"", "document_empty"),
     (b"%PDF-" + b"0" * svc.DOCUMENT_MAX_BYTES, "document_too_large")],
)  # fmt: skip
def test_document_refusals_change_nothing(farm, content, code):
    c = _draft(farm)
    _refused(code, svc.contract_upload_document, actor=farm.users["owner"], contract=c,
             upload=SimpleUploadedFile("signed.pdf", content))  # fmt: skip
    c.refresh_from_db()
    assert not c.signed_document and not c.signed_document_sha256
    assert not AuditEvent.objects.filter(event_type="hosting_contract.document_uploaded").exists()


def test_document_signing_date_not_in_the_future(farm):
    c = _draft(farm)
    tomorrow = timezone.localdate() + timedelta(days=1)
    _refused("invalid", svc.contract_upload_document, actor=farm.users["owner"], contract=c,
             upload=SimpleUploadedFile("s.pdf", PDF), signed_at=tomorrow)  # fmt: skip


def test_outbox_and_audit_roll_back_with_the_change(farm):
    owner = farm.users["owner"]
    c = _draft(farm)
    before = OutboxEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        svc.contract_activate(actor=owner, contract=c)
        raise RuntimeError("after the service")
    c.refresh_from_db()
    assert c.status == C.DRAFT and OutboxEvent.objects.count() == before
    assert not AuditEvent.objects.filter(event_type="hosting_contract.activated").exists()


# ---------------------------------------------------------------------------------------------------------
# Selectors


def test_scope_per_role(farm):
    deal_a = DealFactory(customer=farm.client_x, site=farm.site_a)
    deal_b = DealFactory(customer=farm.client_y, site=farm.site_b)
    deal_none = DealFactory(prospect_company="P")
    c_a = HostingContractFactory(customer=farm.client_x, site=farm.site_a)
    c_b = HostingContractFactory(customer=farm.client_x, site=farm.site_b)
    expected = {
        "owner": ({deal_a, deal_b, deal_none}, {c_a, c_b}),
        "admin": ({deal_a, deal_b, deal_none}, {c_a, c_b}),
        "siteowner_a": ({deal_a}, {c_a}),
        "siteowner_b_ro": ({deal_b}, {c_b}),
        "client_x": (set(), set()),
        "customer": (set(), set()),
        "guest": (set(), set()),
    }
    for name, (deals, contracts) in expected.items():
        user = farm.users[name]
        assert set(sel.deal_list(user=user)) == deals, name
        assert set(sel.contract_list(user=user)) == contracts, name
    with pytest.raises(DomainError) as exc:
        sel.deal_get(user=farm.users["siteowner_a"], deal_id=deal_b.pk)
    assert exc.value.status == 404
    with pytest.raises(DomainError):
        sel.contract_get(user=farm.users["siteowner_a"], contract_id=2**40)


def test_pipeline_summary_by_stage(farm):
    DealFactory(stage="lead", value=Decimal("100.00"), expected_mw=Decimal("1.5"), expected_miners=10)
    DealFactory(stage="lead", value=Decimal("50.50"), expected_mw=Decimal("0.5"), expected_miners=5)
    DealFactory(stage="won", value=Decimal("10.00"), currency="EUR", expected_mw=Decimal("2"), expected_miners=1)
    rows = {r["stage"]: r for r in sel.pipeline_summary(Deal.objects.all())}
    assert rows["lead"]["deals"] == 2 and rows["lead"]["values"] == [("USD", Decimal("150.50"))]
    assert rows["lead"]["mw"] == Decimal("2.000") and rows["lead"]["miners"] == 15
    assert rows["won"]["values"] == [("EUR", Decimal("10.00"))] and rows["proposal"]["deals"] == 0
    assert [r["stage"] for r in sel.pipeline_summary(Deal.objects.none())] == Deal.Stage.values


def test_deal_update_publishes_only_a_change(farm):
    owner = farm.users["owner"]
    deal = DealFactory(customer=farm.client_x, site=farm.site_a, value=Decimal("10.00"))
    svc.deal_update(actor=owner, deal=deal, value=Decimal("10.00"))
    assert _events("deal.changed") == []
    svc.deal_update(actor=owner, deal=deal, value=Decimal("12.00"), stage="qualified")
    assert _events("deal.changed") == [{"deal_id": deal.pk, "customer_id": farm.client_x.pk, "stage": "qualified",
                                        "previous_stage": "lead"}]  # fmt: skip
    _refused("invalid", svc.deal_update, actor=owner, deal=deal, value=Decimal("-1"))
    _refused("invalid", svc.deal_update, actor=owner, deal=deal, customer=None, prospect_company="")
    deal.refresh_from_db()
    assert deal.value == Decimal("12.00") and deal.customer == farm.client_x


def test_contract_refers_to_its_clients_deal_only(farm):
    other = DealFactory(customer=farm.client_y, site=farm.site_a)
    err = _refused("invalid", _draft, farm, deal=other)
    assert err.details["field"] == "deal"
    mine = DealFactory(customer=farm.client_x, site=farm.site_a)
    assert _draft(farm, deal=mine).deal == mine


def test_contract_numbers_count_per_year_and_can_be_given(farm):
    assert _draft(farm).number == "HC-2026-0001"
    assert _draft(farm, start_date=date(2026, 7, 1)).number == "HC-2026-0002"
    assert _draft(farm, start_date=date(2027, 1, 1)).number == "HC-2027-0001"
    assert _draft(farm, number="ACME/7").number == "ACME/7"
    err = _refused("invalid", _draft, farm, number="ACME/7")
    assert "number" in err.details


# ---------------------------------------------------------------------------------------------------------
# Review: money in the deal's currency, terms that ran, closing days, numbers, covered miners


def test_convert_takes_the_clients_usd_rate_only_for_a_usd_deal(farm):
    owner = farm.users["owner"]
    farm.client_x.hosting_rate_usd_per_kwh = Decimal("0.05500")
    farm.client_x.save()
    eur = DealFactory(customer=farm.client_x, site=farm.site_a, currency="EUR", owner=owner)
    err = _refused("invalid_tariff", svc.deal_convert, actor=owner, deal=eur)
    assert err.details["field"] == "rate_per_kwh" and "EUR" in err.message
    assert not HostingContract.objects.exists() and Deal.objects.get(pk=eur.pk).stage == "lead"
    contract, _ = svc.deal_convert(actor=owner, deal=eur, rate_per_kwh=Decimal("0.051"))
    assert (contract.rate_per_kwh, contract.currency) == (Decimal("0.051"), "EUR")
    # per kWh + fixed fee with only the fee given: the rate is the client's (a USD deal).
    usd = DealFactory(customer=farm.client_x, site=farm.site_b, currency="USD", owner=owner)
    contract, _ = svc.deal_convert(actor=owner, deal=usd, tariff_kind="kwh_plus_fixed",
                                   fixed_fee_per_miner_month=Decimal("4.00"))  # fmt: skip
    assert (contract.rate_per_kwh, contract.fixed_fee_per_miner_month) == (Decimal("0.055"), Decimal("4.00"))


def test_a_prospect_in_another_currency_does_not_get_that_rate_as_its_usd_rate(farm):
    deal = DealFactory(prospect_company="Euro Hash GmbH", site=farm.site_a, currency="EUR")
    contract, _ = svc.deal_convert(actor=farm.users["owner"], deal=deal, rate_per_kwh=Decimal("0.08"))
    assert contract.rate_per_kwh == Decimal("0.08")
    assert contract.customer.hosting_rate_usd_per_kwh == 0


def test_an_ended_contract_or_one_terminated_after_activation_still_blocks_its_days(farm):
    owner = farm.users["owner"]
    ended = svc.contract_activate(actor=owner, contract=_draft(farm, start_date=date(2026, 1, 1)))
    svc.contract_end(actor=owner, contract=ended, end_date=date(2026, 3, 31))
    inside = _draft(farm, start_date=date(2026, 3, 15))
    err = _refused("contract_overlap", svc.contract_activate, actor=owner, contract=inside)
    assert err.details["contract"] == ended.number
    after = svc.contract_activate(actor=owner, contract=_draft(farm, start_date=date(2026, 4, 1)))
    svc.contract_terminate(actor=owner, contract=after, reason="non-payment", end_date=date(2026, 5, 31))
    err = _refused("contract_overlap", svc.contract_activate, actor=owner,
                   contract=_draft(farm, start_date=date(2026, 5, 1)))  # fmt: skip
    assert err.details["contract"] == after.number
    # A draft terminated before it was ever activated never ran: its days are free.
    never = _draft(farm, start_date=date(2026, 6, 1))
    svc.contract_terminate(actor=owner, contract=never, reason="client withdrew", end_date=date(2026, 6, 30))
    assert svc.contract_activate(actor=owner, contract=_draft(farm, start_date=date(2026, 6, 1))).status == C.ACTIVE


def test_closing_never_lengthens_a_term_nor_dates_it_in_the_future(farm):
    owner = farm.users["owner"]
    today = timezone.localdate()
    c = svc.contract_activate(actor=owner, contract=_draft(farm, start_date=date(2026, 1, 1),
                                                           end_date=date(2026, 2, 28)))  # fmt: skip
    err = _refused("invalid", svc.contract_end, actor=owner, contract=c, end_date=date(2026, 3, 31))
    assert err.details["field"] == "end_date"
    _refused("invalid", svc.contract_terminate, actor=owner, contract=c, reason="x", end_date=date(2026, 3, 31))
    open_ended = svc.contract_activate(actor=owner, contract=_draft(farm, site=farm.site_b,
                                                                    start_date=date(2026, 1, 1)))  # fmt: skip
    _refused("invalid", svc.contract_end, actor=owner, contract=open_ended, end_date=today + timedelta(days=30))
    assert HostingContract.objects.filter(status=C.ACTIVE).count() == 2
    # Default: today, or the contract's own earlier end date.
    assert svc.contract_end(actor=owner, contract=c).end_date == date(2026, 2, 28)
    assert svc.contract_end(actor=owner, contract=open_ended).end_date == today


def test_a_draft_that_has_not_started_can_be_terminated_without_a_date(farm):
    start = timezone.localdate() + timedelta(days=40)
    c = _draft(farm, start_date=start)
    c = svc.contract_terminate(actor=farm.users["owner"], contract=c, reason="client withdrew")
    assert (c.status, c.end_date) == (C.TERMINATED, start)


def test_contract_numbers_are_plain_and_an_active_one_keeps_its_number(farm):
    owner = farm.users["owner"]
    for bad in ('HC "1"', "HC\n1", " ", "x" * 41):
        err = _refused("invalid", _draft, farm, number=bad)
        assert err.details["field"] == "number"
    c = svc.contract_activate(actor=owner, contract=_draft(farm, number="HC/2026/7"))
    err = _refused("contract_active", svc.contract_update, actor=owner, contract=c, number="HC/2026/8")
    assert err.details["fields"] == ["number"] and HostingContract.objects.get(pk=c.pk).number == "HC/2026/7"


def test_a_deal_with_contracts_keeps_its_client_and_site(farm):
    owner = farm.users["owner"]
    deal = DealFactory(customer=farm.client_x, site=farm.site_a, currency="USD", owner=owner)
    farm.client_x.hosting_rate_usd_per_kwh = Decimal("0.05")
    farm.client_x.save()
    svc.deal_convert(actor=owner, deal=deal)
    _refused("deal_has_contracts", svc.deal_update, actor=owner, deal=deal, customer=farm.client_y)
    _refused("deal_has_contracts", svc.deal_update, actor=owner, deal=deal, site=farm.site_b)
    deal.refresh_from_db()
    assert (deal.customer, deal.site) == (farm.client_x, farm.site_a)
    assert svc.deal_update(actor=owner, deal=deal, notes="renewal in 2027").notes == "renewal in 2027"


def test_covered_miners_are_the_clients_at_the_site_now_and_not_retired(farm):
    owner = farm.users["owner"]
    c = _draft(farm)
    mine = farm.miners[("site-a", "client-x")]
    extra = MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_x)
    retired = MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=farm.client_x, status="retired")
    assert set(sel.covered_miners(c)) == {mine, extra}  # none listed: every live miner of the client at the site
    svc.contract_set_miners(actor=owner, contract=c, miners=[mine.pk, extra.pk, retired.pk])
    assert set(sel.covered_miners(c)) == {mine, extra}
    extra.customer = farm.client_y  # handed to another client after it was listed
    extra.save(update_fields=["customer"])
    assert list(sel.covered_miners(c)) == [mine] and sel.contract_miner_count(c) == 1


def test_a_lower_threshold_never_gives_a_smaller_credit():
    err = _refused("invalid_sla_schedule", svc.clean_sla_schedule,
                   [{"below_pct": "97", "credit_pct": "10"}, {"below_pct": "95", "credit_pct": "5"}])  # fmt: skip
    assert (err.details["field"], err.details["step"]) == ("credit_pct", 1)
    assert svc.clean_sla_schedule([{"below_pct": "97", "credit_pct": "5"}, {"below_pct": "95", "credit_pct": "5"}])


def test_a_given_number_taken_between_the_check_and_the_insert_is_a_400(farm, monkeypatch):
    first = _draft(farm, number="HC-X-1")
    monkeypatch.setattr(svc, "_clean", lambda instance: None)  # as if the other insert landed after the check
    err = _refused("invalid", _draft, farm, number="HC-X-1", site=farm.site_b)
    assert err.details["field"] == "number"
    assert list(HostingContract.objects.values_list("pk", flat=True)) == [first.pk]

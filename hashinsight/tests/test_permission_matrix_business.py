"""The permission matrix of the hosting business loop (issue 10): every new page, download and API endpoint of CRM,
invoices and statements, payments, SLA, proofs and reports, per role, on ``build_farm``'s grants. The expectations
are written out by hand from the rules, not derived from the code nor from ``MATRIX``:

- the role × module matrix (``hashinsight/accounts/roles.py``; owner admin site-owner client customer guest):
  CRM F F R – – –, FINANCE F F R R(own) – –, WEB3 F F R R – –, REPORT F F F R(own) R(own) –;
- grants: a site owner sees only its granted sites (siteowner_a manages A, siteowner_b_ro reads B), a hosting client
  only its own customer (client_x is X, which has miners on both sites);
- a role without the module: 403 (anonymous: the login page, or 401 on the API); an object the user may not see:
  404, as for an id that never existed; a visible object the user may only read: 403 on writes; a refused write
  changes nothing (rows counted before and after).

The objects are built through the services (CRM deals and contracts, ``invoicing.build_draft``,
``issuing.invoice_issue`` with its SLA certificate and proof leaf, ``proofs.close_day``, ``payments.payment_record``,
``sla_windows.force_majeure_create``, ``reports.services.report_request``): client X's contract, invoices and
windows at site A, client Y's at site B. Where the code answers otherwise and the rules are right, the row is left
out here and written down in /work/notes/matrix-findings.md for the owner to fix."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from hashinsight.tests.test_permission_matrix import LOGIN, PAGE_USERS, sign_in

pytestmark = pytest.mark.django_db

OCTOBER, SEPTEMBER, AUGUST = date(2026, 10, 1), date(2026, 9, 1), date(2026, 8, 1)
XLSX = ["xlsx"]
TRON = "T" + "9" * 33  # a USDT (TRC-20) address's shape
PDF = b"%PDF-1.4\n% signed hosting contract\n%%EOF\n"


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Signed contracts, SLA keys and report files go to a private root of this test's own."""
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    private_storage._wrapped = empty
    yield
    private_storage._wrapped = empty


def _contract(owner, customer, site):
    from sites import crm_services

    contract = crm_services.contract_create(
        actor=owner, customer=customer, site=site, start_date=date(2026, 1, 1), rate_per_kwh=Decimal("0.06"),
        sla_uptime_target_pct=Decimal("97"), sla_credit_schedule=[{"below_pct": "97", "credit_pct": "5"}],
    )  # fmt: skip
    contract = crm_services.contract_activate(actor=owner, contract=contract)
    crm_services.contract_upload_document(
        actor=owner, contract=contract, upload=SimpleUploadedFile(f"{site.slug}.pdf", PDF, "application/pdf")
    )
    contract.refresh_from_db()
    return contract


def _daily(miner, first: date, days: int) -> None:
    from telemetry.models import Daily

    Daily.objects.bulk_create(
        [
            Daily(
                miner_id=miner.pk, day=first + timedelta(days=i), site_id=miner.site_id, customer_id=miner.customer_id,
                sample_count=288, buckets_reported=288, avg_hashrate_ths=100.0, energy_kwh=72.0, uptime_pct=100.0,
            )
            for i in range(days)
        ]
    )  # fmt: skip


@pytest.fixture
def biz(farm, django_capture_on_commit_callbacks):
    """``farm`` plus the business loop: a deal of client X at site A and a prospect's deal without a site; client X's
    active contract at site A and client Y's at site B (each with its signed PDF); October invoices issued for both
    (statement rows, SLA certificate, proof leaf; the leaves' day closed), a September draft of client X; a bank
    payment on each issued invoice; a force-majeure window per site (November: no invoice covers it); a report job
    per site and per client statement, each with an XLSX file."""
    from hashinsight.billing import invoicing, issuing, payments, proofs, sla_windows
    from hashinsight.billing.models import ProofLeaf, SlaCertificate
    from hashinsight.billing.tests.test_statement_export_support import make_command
    from hashinsight.reports import services as reports
    from hashinsight.reports.models import ReportJob
    from sites import crm_services

    f = farm
    owner = f.users["owner"]
    miner_xa, miner_yb = f.miners[("site-a", "client-x")], f.miners[("site-b", "client-y")]
    f.deal_a = crm_services.deal_create(actor=owner, title="X at A", customer=f.client_x, site=f.site_a)
    f.deal_none = crm_services.deal_create(actor=owner, title="Prospect", prospect_company="Prospect Ltd")
    f.c_xa = _contract(owner, f.client_x, f.site_a)
    f.c_yb = _contract(owner, f.client_y, f.site_b)
    _daily(miner_xa, OCTOBER, 31)
    _daily(miner_yb, OCTOBER, 31)
    f.inv_xa = issuing.invoice_issue(invoicing.build_draft(f.c_xa, OCTOBER), actor=owner)
    f.inv_yb = issuing.invoice_issue(invoicing.build_draft(f.c_yb, OCTOBER), actor=owner)
    f.inv_xd = invoicing.build_draft(f.c_xa, SEPTEMBER)
    f.inv_xd8 = invoicing.build_draft(f.c_xa, AUGUST)  # a second draft: the page's issue button has its own
    assert (f.inv_xa.status, f.inv_yb.status, f.inv_xd.status, f.inv_xd8.status) == (
        "issued",
        "issued",
        "draft",
        "draft",
    )
    f.cert_xa = SlaCertificate.objects.get(invoice=f.inv_xa)
    f.cert_yb = SlaCertificate.objects.get(invoice=f.inv_yb)
    f.cn_xa = issuing.credit_note_issue(f.inv_xa, amount="0.10", reason="meter correction", actor=owner)
    f.cn_yb = issuing.credit_note_issue(f.inv_yb, amount="0.10", reason="meter correction", actor=owner)
    # A command at site B that no statement names: no invoice page may show it.
    f.cmd_b = make_command(f.site_b)
    # Issued today: date the day's leaves yesterday and close that day, as the hourly job does the next day.
    f.day = proofs.utc_today() - timedelta(days=1)
    ProofLeaf.objects.filter(root__isnull=True).update(day=f.day)
    f.root = proofs.close_day(f.day)
    assert f.root is not None
    f.leaf_xa = ProofLeaf.objects.get(kind="statement", object_id=f.inv_xa.pk)
    f.leaf_yb = ProofLeaf.objects.get(kind="statement", object_id=f.inv_yb.pk)
    f.pay_xa = payments.payment_record(actor=owner, invoice=f.inv_xa, method="bank", amount="0.01", reference="X-1")
    f.pay_yb = payments.payment_record(actor=owner, invoice=f.inv_yb, method="bank", amount="0.01", reference="Y-1")
    november = datetime(2026, 11, 2, 6, tzinfo=UTC)
    f.fm_a = sla_windows.force_majeure_create(
        actor=owner, site_id=f.site_a.pk, start=november, end=november + timedelta(hours=5), reason="storm at A"
    )
    f.fm_b = sla_windows.force_majeure_create(
        actor=owner, site_id=f.site_b.pk, start=november, end=november + timedelta(hours=5), reason="storm at B"
    )
    f.jobs = {
        "sa": reports.report_request(user=owner, kind="site_monthly", site=f.site_a.pk, month="2026-10", formats=XLSX),
        "sb": reports.report_request(user=owner, kind="site_monthly", site=f.site_b.pk, month="2026-10", formats=XLSX),
        "x": reports.report_request(user=owner, kind="client_statement", invoice=f.inv_xa.pk, formats=XLSX),
        "y": reports.report_request(user=owner, kind="client_statement", invoice=f.inv_yb.pk, formats=XLSX),
    }  # fmt: skip
    f.files = {}
    for key, job in f.jobs.items():  # the worker's last step (no render: the matrix is about who gets the bytes)
        f.files[key] = reports._store(job, "xlsx", f"report {key}".encode(), key)
        ReportJob.objects.filter(pk=job.pk).update(status="done", progress_pct=100)
    return f


def url_of(template: str, f) -> str:
    extra = {"site_a": f.site_a.pk, "client_x": f.client_x.pk, "root": f.root.pk, "leaf_xa": f.leaf_xa.pk,
             "leaf_yb": f.leaf_yb.pk}  # fmt: skip
    return template.format(**api_objects(f), **extra)


# Portal pages and downloads (GET) ----------------------------------------------------------------------------
PAGES = {
    #                                          owner admin  so_a  so_b_ro client_x customer guest anonymous
    # CRM (F F R – – –): site owners read the deals and contracts of their sites; a deal without a site is no site
    # owner's; forms are for writers; a client reads no CRM, not even its own contract's file.
    "/crm/deals/":                             (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/crm/deals/?format=csv":                  (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/crm/deals/new/":                         (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/crm/deals/{deal_a}/":                    (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/crm/deals/{deal_none}/":                 (200,  200,  404,  404,   403,     403,     403,  LOGIN),
    "/crm/deals/{deal_a}/edit/":               (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/crm/contracts/":                         (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/crm/contracts/?format=csv":              (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/crm/contracts/new/":                     (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_xa}/":                  (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_yb}/":                  (200,  200,  404,  200,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_xa}/edit/":             (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_xa}/miners/":           (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_yb}/miners/":           (200,  200,  404,  200,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_xa}/document/":         (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/crm/contracts/{c_yb}/document/":         (200,  200,  404,  200,   403,     403,     403,  LOGIN),
    # Finance (F F R R(own) – –): a client sees its own issued invoices, never a draft nor another client's.
    "/finance/":                               (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/finance/invoices/":                      (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/finance/invoices/?format=csv":           (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xa}/":             (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xd}/":             (200,  200,  200,  404,   404,     403,     403,  LOGIN),
    "/finance/invoices/{inv_yb}/":             (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xa}/statement.csv":  (200, 200, 200,  404,   200,     403,     403,  LOGIN),
    "/finance/invoices/{inv_yb}/statement.csv":  (200, 200, 404,  200,   404,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xd}/statement.csv":  (200, 200, 200,  404,   404,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xd}/statement.xlsx": (200, 200, 200,  404,   404,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xa}/statement.xlsx": (200, 200, 200,  404,   200,     403,     403,  LOGIN),
    "/finance/invoices/{inv_yb}/statement.xlsx": (200, 200, 404,  200,   404,     403,     403,  LOGIN),
    # A command no statement row names is no invoice's to show, whoever asks (its site's own pages are elsewhere).
    "/finance/invoices/{inv_xa}/commands/{cmd_b}/": (404, 404, 404, 404, 404,   403,     403,  LOGIN),
    "/finance/invoices/{inv_yb}/commands/{cmd_b}/": (404, 404, 404, 404, 404,   403,     403,  LOGIN),
    # Payments: the list follows the invoices; the address pool and holds are for FINANCE writers; commissions
    # are the sales side's (a client has none to read).
    "/payments/":                              (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/payments/addresses/":                    (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/payments/commissions/":                  (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/payments/holds/":                        (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    # SLA (FINANCE): history, verification, force-majeure windows (declared by FINANCE writers only).
    "/sla/":                                   (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sla/?format=csv":                        (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sla/verify/":                            (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sla/force-majeure/":                     (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sla/force-majeure/?format=csv":          (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sla/force-majeure/new/":                 (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/sla/certificates/{cert_xa}/download/":   (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/sla/certificates/{cert_yb}/download/":   (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    # Proofs (WEB3 F F R R – –): roots are public to WEB3 readers; a document's proof follows the document.
    "/proofs/":                                (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/proofs/?format=csv":                     (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/proofs/documents/":                      (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/proofs/documents/?format=csv":           (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/proofs/verify/":                         (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/finance/invoices/{inv_xa}/proof.json":   (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/finance/invoices/{inv_yb}/proof.json":   (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    "/proofs/documents/{leaf_xa}/proof.json":  (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/proofs/documents/{leaf_yb}/proof.json":  (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    "/sla-certificates/{cert_xa}/proof.json":  (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/sla-certificates/{cert_yb}/proof.json":  (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    # Reports (REPORT F F F R(own) R(own) –): a site's report is its site owners'; a client statement its client's
    # (and the site's owners'); an app customer reads the page but has nothing in it.
    "/reports/":                               (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/reports/?format=csv":                    (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/reports/schedules/":                     (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/reports/{job_sa}/row":                   (200,  200,  200,  404,   404,     404,     403,  LOGIN),
    "/reports/{job_sb}/row":                   (200,  200,  404,  200,   404,     404,     403,  LOGIN),
    "/reports/{job_x}/row":                    (200,  200,  200,  404,   200,     404,     403,  LOGIN),
    "/reports/{job_y}/row":                    (200,  200,  404,  200,   404,     404,     403,  LOGIN),
    "/reports/{job_sa}/files/xlsx/":           (200,  200,  200,  404,   404,     404,     403,  LOGIN),
    "/reports/{job_sb}/files/xlsx/":           (200,  200,  404,  200,   404,     404,     403,  LOGIN),
    "/reports/{job_x}/files/xlsx/":            (200,  200,  200,  404,   200,     404,     403,  LOGIN),
    "/reports/{job_y}/files/xlsx/":            (200,  200,  404,  200,   404,     404,     403,  LOGIN),
    # The admin of the new models: staff roles (owner, admin, site owner) with the module, scoped as the API; a
    # hosting client, an app customer and a guest are no staff (the admin's login page).
    "/admin/sites/deal/":                      (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/sites/deal/add/":                  (200,  200,  403,  403,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/sites/deal/{deal_a}/change/":      (200,  200,  200,  404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/sites/deal/{deal_none}/change/":   (200,  200,  404,  404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/sites/hostingcontract/":           (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/sites/hostingcontract/{c_xa}/change/": (200, 200, 200, 404,  LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/sites/hostingcontract/{c_yb}/change/": (200, 200, 404, 200,  LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/invoice/":                 (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/invoice/{inv_xa}/change/": (200,  200,  200,  404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/invoice/{inv_xd}/change/": (200,  200,  200,  404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/invoice/{inv_yb}/change/": (200,  200,  404,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/creditnote/":              (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/payment/":                 (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/payment/{pay_xa}/change/": (200,  200,  200,  404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/payment/{pay_yb}/change/": (200,  200,  404,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/paymentaddress/":          (200,  200,  403,  403,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/commission/":              (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/forcemajeurewindow/":      (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/forcemajeurewindow/add/":  (200,  200,  403,  403,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/forcemajeurewindow/{fm_a}/change/": (200, 200, 200, 404, LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/billing/forcemajeurewindow/{fm_b}/change/": (200, 200, 404, 200, LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/billing/slacertificate/":          (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/slacertificate/{cert_xa}/change/": (200, 200, 200, 404, LOGIN, LOGIN,  LOGIN, LOGIN),
    "/admin/billing/slacertificate/{cert_yb}/change/": (200, 200, 404, 200, LOGIN, LOGIN,  LOGIN, LOGIN),
    "/admin/billing/proofroot/":               (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/proofroot/{root}/change/": (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/proofleaf/":               (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/proofleaf/{leaf_xa}/change/": (200, 200, 200, 404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/billing/proofleaf/{leaf_yb}/change/": (200, 200, 404, 200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/reports/reportjob/":               (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/reports/reportjob/{job_sa}/change/": (200, 200, 200,  404,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/reports/reportjob/{job_sb}/change/": (200, 200, 404,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/reports/reportschedule/":          (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
}  # fmt: skip


def outcome_of(response):
    """The answer as the tables write it: a status, or LOGIN for a redirect to the login page."""
    if response.status_code == 302 and "/login/" in response.get("Location", ""):
        return LOGIN
    return response.status_code


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("username", PAGE_USERS)
def test_every_business_page_and_download_answers_each_role_as_written(client, biz, username):
    sign_in(client, biz, username)
    column = PAGE_USERS.index(username)
    x_numbers, y_numbers = {biz.inv_xa.number, biz.c_xa.number}, {biz.inv_yb.number, biz.c_yb.number}
    client_y = y_numbers | {biz.client_y.company}  # a client's pages never name the other client
    others = {"siteowner_a": y_numbers, "siteowner_b_ro": x_numbers, "client_x": client_y}.get(username, set())
    wrong = []
    for template, outcomes in PAGES.items():
        url = url_of(template, biz)
        response = client.get(url)
        if outcome_of(response) != outcomes[column]:
            wrong.append((template, outcomes[column], outcome_of(response)))
            continue
        if response.status_code in (200, 404):
            body = _body(response)
            for secret in others:  # no page of a scoped user names an invoice or contract outside its scope
                assert secret.encode() not in body, (url, secret)
    assert wrong == [], f"{username}: (page, expected, got) {wrong}"


# API lists: the objects each user finds in the list (keys of ``api_objects``), or the refusal. Anonymous callers get
# 401 (the API has no login page).
EVERY = "*"
API_LISTS = {
    "/api/v1/deals": {
        "owner": {"deal_a", "deal_none"}, "admin": {"deal_a", "deal_none"}, "siteowner_a": {"deal_a"},
        "siteowner_b_ro": set(), "client_x": 403, "customer": 403, "guest": 403, "anonymous": 401,
    },
    "/api/v1/contracts": {
        "owner": {"c_xa", "c_yb"}, "admin": {"c_xa", "c_yb"}, "siteowner_a": {"c_xa"}, "siteowner_b_ro": {"c_yb"},
        "client_x": 403, "customer": 403, "guest": 403, "anonymous": 401,
    },
    "/api/v1/invoices": {
        "owner": {"inv_xa", "inv_xd", "inv_xd8", "inv_yb"}, "admin": {"inv_xa", "inv_xd", "inv_xd8", "inv_yb"},
        "siteowner_a": {"inv_xa", "inv_xd", "inv_xd8"}, "siteowner_b_ro": {"inv_yb"}, "client_x": {"inv_xa"},
        "customer": 403, "guest": 403, "anonymous": 401,
    },
    "/api/v1/credit-notes": {
        "owner": {"cn_xa", "cn_yb"}, "admin": {"cn_xa", "cn_yb"}, "siteowner_a": {"cn_xa"},
        "siteowner_b_ro": {"cn_yb"}, "client_x": {"cn_xa"}, "customer": 403, "guest": 403, "anonymous": 401,
    },
    "/api/v1/payments": {
        "owner": {"pay_xa", "pay_yb"}, "admin": {"pay_xa", "pay_yb"}, "siteowner_a": {"pay_xa"},
        "siteowner_b_ro": {"pay_yb"}, "client_x": {"pay_xa"}, "customer": 403, "guest": 403, "anonymous": 401,
    },
    # A window is the site's (an outage), not a client's: a client reads those of the sites its miners stand at
    # (client X has miners at both).
    "/api/v1/force-majeure": {
        "owner": {"fm_a", "fm_b"}, "admin": {"fm_a", "fm_b"}, "siteowner_a": {"fm_a"}, "siteowner_b_ro": {"fm_b"},
        "client_x": {"fm_a", "fm_b"}, "customer": 403, "guest": 403, "anonymous": 401,
    },
    "/api/v1/sla-certificates": {
        "owner": {"cert_xa", "cert_yb"}, "admin": {"cert_xa", "cert_yb"}, "siteowner_a": {"cert_xa"},
        "siteowner_b_ro": {"cert_yb"}, "client_x": {"cert_xa"}, "customer": 403, "guest": 403, "anonymous": 401,
    },
    # Daily roots are not secret to WEB3 readers (a root names no client).
    "/api/v1/proof-roots": {
        "owner": {"day"}, "admin": {"day"}, "siteowner_a": {"day"}, "siteowner_b_ro": {"day"}, "client_x": {"day"},
        "customer": 403, "guest": 403, "anonymous": 401,
    },
    "/api/v1/reports": {
        "owner": {"job_sa", "job_sb", "job_x", "job_y"}, "admin": {"job_sa", "job_sb", "job_x", "job_y"},
        "siteowner_a": {"job_sa", "job_x"}, "siteowner_b_ro": {"job_sb", "job_y"}, "client_x": {"job_x"},
        "customer": set(), "guest": 403, "anonymous": 401,
    },
}  # fmt: skip
# Lists whose rows the farm has none of (or are not per-object): the status only.
API_STATUS = {
    #                                       owner admin so_a so_b_ro client_x customer guest anonymous
    "/api/v1/payment-addresses":            (200, 200,  403, 403,    403,     403,     403,  401),
    "/api/v1/commissions":                  (200, 200,  200, 200,    403,     403,     403,  401),
    "/api/v1/report-schedules":             (200, 200,  200, 200,    403,     403,     403,  401),
    "/api/v1/sla-certificates/public-key":  (200, 200,  200, 200,    200,     200,     200,  200),  # public by design
    "/api/v1/invoices?format=csv":          (200, 200,  200, 200,    200,     403,     403,  401),
    "/api/v1/payments?format=csv":          (200, 200,  200, 200,    200,     403,     403,  401),
    "/api/v1/reports?format=csv":           (200, 200,  200, 200,    200,     200,     403,  401),
    # Details, their files and proofs: X's objects at A, Y's at B; the September draft is no client's to see.
    "/api/v1/deals/{deal_a}":               (200, 200,  200, 404,    403,     403,     403,  401),
    "/api/v1/deals/{deal_none}":            (200, 200,  404, 404,    403,     403,     403,  401),
    "/api/v1/contracts/{c_xa}":             (200, 200,  200, 404,    403,     403,     403,  401),
    "/api/v1/contracts/{c_yb}":             (200, 200,  404, 200,    403,     403,     403,  401),
    "/api/v1/contracts/{c_xa}/miners":      (200, 200,  200, 404,    403,     403,     403,  401),
    "/api/v1/contracts/{c_xa}/document":    (200, 200,  200, 404,    403,     403,     403,  401),
    "/api/v1/contracts/{c_yb}/document":    (200, 200,  404, 200,    403,     403,     403,  401),
    "/api/v1/invoices/{inv_xa}":            (200, 200,  200, 404,    200,     403,     403,  401),
    "/api/v1/invoices/{inv_xd}":            (200, 200,  200, 404,    404,     403,     403,  401),
    "/api/v1/invoices/{inv_yb}":            (200, 200,  404, 200,    404,     403,     403,  401),
    "/api/v1/invoices/{inv_xa}/statement":  (200, 200,  200, 404,    200,     403,     403,  401),
    "/api/v1/invoices/{inv_yb}/statement":  (200, 200,  404, 200,    404,     403,     403,  401),
    "/api/v1/invoices/{inv_xd}/statement": (200, 200, 200, 404, 404, 403, 403, 401),
    "/api/v1/invoices/{inv_xd}/statement.xlsx": (200, 200, 200, 404, 404, 403, 403, 401),
    "/api/v1/invoices/{inv_xd}/statement/rows": (200, 200, 200, 404, 404, 403, 403, 401),
    "/api/v1/invoices/{inv_xa}/statement.xlsx": (200, 200, 200, 404, 200,     403,     403,  401),
    "/api/v1/invoices/{inv_yb}/statement.xlsx": (200, 200, 404, 200, 404,     403,     403,  401),
    "/api/v1/invoices/{inv_xa}/statement/rows": (200, 200, 200, 404, 200,     403,     403,  401),
    "/api/v1/invoices/{inv_yb}/statement/rows": (200, 200, 404, 200, 404,     403,     403,  401),
    "/api/v1/invoices/{inv_xa}/statement/commands/{cmd_b}": (404, 404, 404, 404, 404, 403, 403, 401),
    "/api/v1/invoices/{inv_yb}/statement/commands/{cmd_b}": (404, 404, 404, 404, 404, 403, 403, 401),
    "/api/v1/invoices/{inv_xa}/proof":      (200, 200,  200, 404,    200,     403,     403,  401),
    "/api/v1/invoices/{inv_yb}/proof":      (200, 200,  404, 200,    404,     403,     403,  401),
    "/api/v1/payments/{pay_xa}":            (200, 200,  200, 404,    200,     403,     403,  401),
    "/api/v1/payments/{pay_yb}":            (200, 200,  404, 200,    404,     403,     403,  401),
    "/api/v1/force-majeure/{fm_a}":         (200, 200,  200, 404,    200,     403,     403,  401),
    "/api/v1/force-majeure/{fm_b}":         (200, 200,  404, 200,    200,     403,     403,  401),
    "/api/v1/sla-certificates/{cert_xa}":   (200, 200,  200, 404,    200,     403,     403,  401),
    "/api/v1/sla-certificates/{cert_yb}":   (200, 200,  404, 200,    404,     403,     403,  401),
    "/api/v1/sla-certificates/{cert_xa}/document": (200, 200, 200, 404, 200,  403,     403,  401),
    "/api/v1/sla-certificates/{cert_yb}/document": (200, 200, 404, 200, 404,  403,     403,  401),
    "/api/v1/sla-certificates/{cert_xa}/erc721":   (200, 200, 200, 404, 200,  403,     403,  401),
    "/api/v1/sla-certificates/{cert_yb}/erc721":   (200, 200, 404, 200, 404,  403,     403,  401),
    "/api/v1/sla-certificates/{cert_xa}/proof":    (200, 200, 200, 404, 200,  403,     403,  401),
    "/api/v1/sla-certificates/{cert_yb}/proof":    (200, 200, 404, 200, 404,  403,     403,  401),
    "/api/v1/proof-roots/{day}":            (200, 200,  200, 200,    200,     403,     403,  401),
    "/api/v1/proof-roots/{day}/op-return":  (200, 200,  200, 200,    200,     403,     403,  401),
    "/api/v1/reports/{job_sa}":             (200, 200,  200, 404,    404,     404,     403,  401),
    "/api/v1/reports/{job_sb}":             (200, 200,  404, 200,    404,     404,     403,  401),
    "/api/v1/reports/{job_x}":              (200, 200,  200, 404,    200,     404,     403,  401),
    "/api/v1/reports/{job_y}":              (200, 200,  404, 200,    404,     404,     403,  401),
    "/api/v1/reports/{job_sa}/files/xlsx":  (200, 200,  200, 404,    404,     404,     403,  401),
    "/api/v1/reports/{job_x}/files/xlsx":   (200, 200,  200, 404,    200,     404,     403,  401),
    "/api/v1/reports/{job_y}/files/xlsx":   (200, 200,  404, 200,    404,     404,     403,  401),
}  # fmt: skip


def api_objects(f) -> dict:
    """The list key of each object: its id (a proof root's is its day)."""
    return {
        "deal_a": f.deal_a.pk, "deal_none": f.deal_none.pk, "c_xa": f.c_xa.pk, "c_yb": f.c_yb.pk,
        "inv_xa": f.inv_xa.pk, "inv_xd": f.inv_xd.pk, "inv_xd8": f.inv_xd8.pk, "inv_yb": f.inv_yb.pk,
        "pay_xa": f.pay_xa.pk, "cn_xa": f.cn_xa.pk, "cn_yb": f.cn_yb.pk, "cmd_b": f.cmd_b.pk,
        "pay_yb": f.pay_yb.pk, "fm_a": f.fm_a.pk, "fm_b": f.fm_b.pk, "cert_xa": f.cert_xa.pk, "cert_yb": f.cert_yb.pk,
        "day": f.day.isoformat(), "job_sa": f.jobs["sa"].pk, "job_sb": f.jobs["sb"].pk, "job_x": f.jobs["x"].pk,
        "job_y": f.jobs["y"].pk,
    }  # fmt: skip


def _error_shape(response) -> bool:
    return set(response.json()) == {"error_code", "message", "request_id", "details"}


@pytest.mark.parametrize("username", PAGE_USERS)
def test_every_business_api_endpoint_answers_each_role_as_written(api, biz, username):
    if username != "anonymous":
        api.force_authenticate(biz.users[username])
    column = PAGE_USERS.index(username)
    keys = api_objects(biz)
    wrong = []
    for url, rule in API_LISTS.items():
        expected = rule[username]
        response = api.get(url, {"limit": 100})
        if isinstance(expected, int):
            if response.status_code != expected:
                wrong.append((url, expected, response.status_code))
            continue
        if response.status_code != 200:
            wrong.append((url, 200, response.status_code))
            continue
        found = {row.get("id", row.get("day")) for row in response.json()["results"]}
        if found != {keys[k] for k in expected}:
            names = {
                v: k
                for k, v in keys.items()
                if k in {k for r in API_LISTS[url].values() if isinstance(r, set) for k in r}
            }
            wrong.append((url, sorted(expected), sorted(str(names.get(i, i)) for i in found)))
    for template, outcomes in API_STATUS.items():
        url = url_of(template, biz)
        response = api.get(url)
        if response.status_code != outcomes[column]:
            wrong.append((template, outcomes[column], response.status_code))
        elif response.status_code == 404:  # hidden: the standard error and nothing of the object
            assert _error_shape(response), url
            for other in (biz.inv_yb.number, biz.inv_xa.number, biz.c_xa.number, biz.c_yb.number):
                assert other not in response.content.decode(), (url, other)
    assert wrong == [], f"{username}: (endpoint, expected, got) {wrong}"


# One representative write per module, through the API and the pages, per user: DONE (the expected success status
# and the state changed), or the refusal's status with the state unchanged. State is read from the database.
DONE = "done"


def _model(name):
    from django.apps import apps

    return apps.get_model(name)


def _row(model, pk):
    return _model(model).objects.filter(pk=pk).values().first()


def _status_of(model, pk):
    return lambda f: _model(model).objects.filter(pk=pk(f)).values_list("status", flat=True).first()


WRITES = {
    # name: (via, method, url, body, success status, state(f)); via "api" (anonymous: 401) or "page" (the login).
    "api: create a deal": (
        "api", "post", "/api/v1/deals", {"title": "New deal", "prospect_company": "New Ltd"}, 201,
        lambda f: _model("sites.Deal").objects.count(),
    ),
    "api: change deal A": (
        "api", "patch", "/api/v1/deals/{deal_a}", {"title": "Changed"}, 200,
        lambda f: _model("sites.Deal").objects.get(pk=f.deal_a.pk).title,
    ),
    "api: issue X's draft": (
        "api", "post", "/api/v1/invoices/{inv_xd}/issue", {}, 200, _status_of("billing.Invoice", lambda f: f.inv_xd.pk),
    ),
    "api: record a payment on Y's invoice": (
        "api", "post", "/api/v1/payments",
        {"invoice": "{inv_yb}", "method": "bank", "amount": "1.00", "reference": "API-1"}, 201,
        lambda f: _model("billing.Payment").objects.count(),
    ),
    "api: declare a force-majeure window at A": (
        "api", "post", "/api/v1/force-majeure",
        {"site": "{site_a}", "start": "2026-11-10T00:00:00Z", "end": "2026-11-10T05:00:00Z", "reason": "flood"}, 201,
        lambda f: _model("billing.ForceMajeureWindow").objects.count(),
    ),
    "api: delete B's window": (
        "api", "delete", "/api/v1/force-majeure/{fm_b}", None, 204,
        lambda f: _model("billing.ForceMajeureWindow").objects.filter(pk=f.fm_b.pk).exists(),
    ),
    "api: record the day's broadcast": (
        "api", "post", "/api/v1/proof-roots/{day}/broadcast", {"txid": "ab" * 32}, 200,
        lambda f: _model("billing.ProofRoot").objects.get(day=f.day).broadcast_txid,
    ),
    "api: request X's statement report": (
        "api", "post", "/api/v1/reports", {"kind": "client_statement", "invoice": "{inv_xa}", "formats": ["xlsx"]}, 202,
        lambda f: _model("reports.ReportJob").objects.count(),
    ),
    "page: issue X's August draft": (
        "page", "post", "/finance/invoices/{inv_xd8}/issue/", {}, 302,
        _status_of("billing.Invoice", lambda f: f.inv_xd8.pk),
    ),
    "page: record a payment on X's invoice": (
        "page", "post", "/finance/invoices/{inv_xa}/payment/", {"method": "bank", "amount": "1.00", "reference": "P-1"},
        302, lambda f: _model("billing.Payment").objects.count(),
    ),
    "page: move deal A to qualified": (
        "page", "post", "/crm/deals/{deal_a}/stage/", {"stage": "qualified"}, 302,
        lambda f: _model("sites.Deal").objects.get(pk=f.deal_a.pk).stage,
    ),
    "page: delete A's window": (
        "page", "post", "/sla/force-majeure/{fm_a}/delete/", {}, 302,
        lambda f: _model("billing.ForceMajeureWindow").objects.filter(pk=f.fm_a.pk).exists(),
    ),
    # Refusals only (what an owner gets depends on the object's state: an overdue invoice, a pending crypto
    # payment; the owning parts' tests cover the successes).
    "api: confirm Y's payment": (
        "api", "post", "/api/v1/payments/{pay_yb}/confirm", {"confirmations": 6}, None,
        lambda f: _row("billing.Payment", f.pay_yb.pk),
    ),
    "api: reject X's payment": (
        "api", "post", "/api/v1/payments/{pay_xa}/reject", {"reason": "bounced"}, None,
        lambda f: _row("billing.Payment", f.pay_xa.pk),
    ),
    "api: void X's draft": (
        "api", "post", "/api/v1/invoices/{inv_xd}/void", {}, None, _status_of("billing.Invoice", lambda f: f.inv_xd.pk),
    ),
    "api: credit note on X's invoice": (
        "api", "post", "/api/v1/credit-notes", {"invoice": "{inv_xa}", "amount": "0.01", "reason": "goodwill"}, None,
        lambda f: _model("billing.CreditNote").objects.count(),
    ),
    "api: build July's drafts": (
        "api", "post", "/api/v1/invoices/build", {"month": "2026-07"}, None,
        lambda f: _model("billing.Invoice").objects.count(),
    ),
    "api: import payment addresses": (
        "api", "post", "/api/v1/payment-addresses", {"network": "usdt", "addresses": [TRON]}, None,
        lambda f: _model("billing.PaymentAddress").objects.count(),
    ),
    "api: hold client X at A": (
        "api", "post", "/api/v1/customers/{client_x}/hold", {"site": "{site_a}", "reason": "overdue"}, None,
        lambda f: _model("commands.Command").objects.count(),
    ),
    "api: change contract B": (
        "api", "patch", "/api/v1/contracts/{c_yb}", {"notes": "changed"}, None,
        lambda f: _model("sites.HostingContract").objects.get(pk=f.c_yb.pk).notes,
    ),
    "page: record a payment on Y's invoice": (
        "page", "post", "/payments/record/", {"invoice": "{inv_yb}", "method": "bank", "amount": "1.00",
                                              "reference": "P-2"}, None,
        lambda f: _model("billing.Payment").objects.count(),
    ),
    "page: declare a window at A": (
        "page", "post", "/sla/force-majeure/new/", {"site": "{site_a}", "start": "2026-11-12T00:00",
                                                   "end": "2026-11-12T04:00", "reason": "flood"}, None,
        lambda f: _model("billing.ForceMajeureWindow").objects.count(),
    ),
    "page: build July's drafts": (
        "page", "post", "/finance/invoices/build/", {"month": "2026-07"}, None,
        lambda f: _model("billing.Invoice").objects.count(),
    ),
    "page: hold client X from its invoice": (
        "page", "post", "/finance/invoices/{inv_xa}/hold/", {"reason": "overdue"}, None,
        lambda f: _model("commands.Command").objects.count(),
    ),
    "page: terminate contract B": (
        "page", "post", "/crm/contracts/{c_yb}/terminate/", {"reason": "breach"}, None,
        lambda f: _model("sites.HostingContract").objects.get(pk=f.c_yb.pk).status,
    ),
}  # fmt: skip
# A role that may not write the module at all, on an object it cannot see: 403 before the lookup or the lookup's 404
# (both name nothing; ``test_hidden_objects_answer_as_missing_ones`` checks such answers equal a missing id's).
EITHER = (403, 404)
WRITE_OUTCOMES = {
    #                                          owner admin so_a  so_b_ro client_x customer guest anonymous
    # CRM writes are owners' and admins' (site owners read).
    "api: create a deal":                      (DONE, DONE, 403,  403,   403,     403,     403,  401),
    "api: change deal A":                      (DONE, DONE, 403,  404,   403,     403,     403,  401),
    "page: move deal A to qualified":          (DONE, DONE, 403,  403,   403,     403,     403,  LOGIN),
    # FINANCE writes are owners' and admins'; a draft is hidden from the client and from site B's owner.
    "api: issue X's draft":                    (DONE, DONE, 403,  404,   404,     403,     403,  401),
    "page: issue X's August draft":            (DONE, DONE, 403,  404,   404,     403,     403,  LOGIN),
    "api: record a payment on Y's invoice":    (DONE, DONE, 403,  403,   403,     403,     403,  401),
    "page: record a payment on X's invoice":   (DONE, DONE, 403,  404,   403,     403,     403,  LOGIN),
    # Force-majeure windows (FINANCE writers): site A's window is hidden from site B's owner, read-only to a client.
    "api: declare a force-majeure window at A": (DONE, DONE, 403, 403,   403,     403,     403,  401),
    "api: delete B's window":                  (DONE, DONE, 404,  403,   403,     403,     403,  401),
    "page: delete A's window":                 (DONE, DONE, 403,  403,   403,     403,     403,  LOGIN),
    # WEB3: recording a broadcast needs FULL.
    "api: record the day's broadcast":         (DONE, DONE, 403,  403,   403,     403,     403,  401),
    # REPORT: site owners have FULL (their sites' invoices), a client READ of its own (it may ask for its own
    # statement); an invoice the user cannot see is not a valid choice (400, as for one that does not exist).
    "api: request X's statement report":       (DONE, DONE, DONE, 404,   DONE,    404,     403,  401),
    # Refusals only (None: not checked here).
    "api: confirm Y's payment":                (None, None, EITHER, 403, EITHER,  403,     403,  401),
    "api: reject X's payment":                 (None, None, 403,  EITHER, 403,    403,     403,  401),
    "api: void X's draft":                     (None, None, 403,  EITHER, EITHER, 403,     403,  401),
    "api: credit note on X's invoice":         (None, None, 403,  403,   403,     403,     403,  401),
    "api: build July's drafts":                (None, None, 403,  403,   403,     403,     403,  401),
    "api: import payment addresses":           (None, None, 403,  403,   403,     403,     403,  401),
    "api: hold client X at A":                 (None, None, 403,  EITHER, 403,    403,     403,  401),
    "api: change contract B":                  (None, None, EITHER, 403, 403,     403,     403,  401),
    "page: record a payment on Y's invoice":   (None, None, 403,  403,   403,     403,     403,  LOGIN),
    "page: declare a window at A":             (None, None, 403,  403,   403,     403,     403,  LOGIN),
    "page: build July's drafts":               (None, None, 403,  403,   403,     403,     403,  LOGIN),
    "page: hold client X from its invoice":    (None, None, 403,  EITHER, 403,    403,     403,  LOGIN),
    "page: terminate contract B":              (None, None, EITHER, 403, 403,     403,     403,  LOGIN),
}  # fmt: skip


def _filled(body, f):
    if body is None:
        return None
    filled = {}
    for key, value in body.items():
        if isinstance(value, str) and value.startswith("{"):
            value = int(url_of(value, f))
        filled[key] = value
    return filled


@pytest.mark.parametrize("username", PAGE_USERS)
def test_writes_succeed_only_where_allowed_and_refusals_change_nothing(api, client, biz, username):
    if username != "anonymous":
        api.force_authenticate(biz.users[username])
    sign_in(client, biz, username)
    column = PAGE_USERS.index(username)
    wrong = []
    for name, (via, method, template, body, success, state) in WRITES.items():
        expected = WRITE_OUTCOMES[name][column]
        if expected is None:
            continue
        before = state(biz)
        url, data = url_of(template, biz), _filled(body, biz)
        if via == "api":
            response = getattr(api, method)(url, data, format="json")
        else:
            response = getattr(client, method)(url, data or {})
        after = state(biz)
        got = outcome_of(response)
        if expected == DONE:
            if (got, after != before) != (success, True):
                wrong.append((name, DONE, got, before, after))
        elif got not in (expected if isinstance(expected, tuple) else (expected,)) or after != before:
            wrong.append((name, expected, got, before, after))
    assert wrong == [], f"{username}: (write, expected, got, before, after) {wrong}"


# What the CSV exports hold, per user: the invoice numbers of exactly the visible issued invoices (a CSV is not a
# way around the scope). Client X at A, client Y at B.
CSV_INVOICES = {
    "owner": {"inv_xa", "inv_yb"}, "admin": {"inv_xa", "inv_yb"}, "siteowner_a": {"inv_xa"},
    "siteowner_b_ro": {"inv_yb"}, "client_x": {"inv_xa"},
}  # fmt: skip
CSV_EXPORTS = ["/finance/invoices/?format=csv", "/payments/?format=csv", "/sla/?format=csv"]


def test_csv_exports_name_exactly_the_visible_invoices(biz):
    numbers = {"inv_xa": biz.inv_xa.number, "inv_yb": biz.inv_yb.number}
    for username, expected in CSV_INVOICES.items():
        client = Client()
        client.force_login(biz.users[username])
        for url in CSV_EXPORTS:
            response = client.get(url)
            assert response.status_code == 200, (username, url)
            assert response["Content-Type"].startswith("text/csv"), (username, url)
            rows = list(csv.reader(io.StringIO(_body(response).decode("utf-8-sig"))))
            named = {key for key, number in numbers.items() if any(number in cell for row in rows[1:] for cell in row)}
            assert named == expected, (username, url)


# A hidden object answers exactly as one that does not exist, also where the role may not write at all (the refusal
# may then come before the lookup: 403 for any id, which names nothing either).
MISSING = 999_999
HIDDEN_AS_MISSING = [
    # (user, method, url of a hidden object, the same url with a missing id, body)
    ("siteowner_b_ro", "get", "/crm/deals/{deal_a}/", "/crm/deals/999999/", None),
    ("siteowner_b_ro", "get", "/crm/deals/{deal_a}/edit/", "/crm/deals/999999/edit/", None),
    ("siteowner_b_ro", "get", "/crm/contracts/{c_xa}/edit/", "/crm/contracts/999999/edit/", None),
    ("siteowner_b_ro", "post", "/crm/deals/{deal_a}/stage/", "/crm/deals/999999/stage/", {"stage": "won"}),
    ("siteowner_b_ro", "post", "/sla/force-majeure/{fm_a}/delete/", "/sla/force-majeure/999999/delete/", {}),
    ("siteowner_b_ro", "post", "/finance/invoices/{inv_xa}/payment/", "/finance/invoices/999999/payment/", {}),
    ("siteowner_a", "get", "/crm/contracts/{c_yb}/document/", "/crm/contracts/999999/document/", None),
    ("client_x", "get", "/finance/invoices/{inv_xd}/", "/finance/invoices/999999/", None),
    ("client_x", "post", "/finance/invoices/{inv_xd}/issue/", "/finance/invoices/999999/issue/", {}),
    ("client_x", "get", "/finance/invoices/{inv_yb}/proof.json", "/finance/invoices/999999/proof.json", None),
    ("client_x", "get", "/sla/certificates/{cert_yb}/download/", "/sla/certificates/999999/download/", None),
    ("client_x", "get", "/reports/{job_y}/files/xlsx/", "/reports/999999/files/xlsx/", None),
    ("client_x", "get", "/finance/invoices/{inv_yb}/statement.xlsx", "/finance/invoices/999999/statement.xlsx", None),
]


def test_hidden_objects_answer_as_missing_ones(client, api, biz):
    wrong = []
    for username, method, template, missing, body in HIDDEN_AS_MISSING:
        client.force_login(biz.users[username])
        hidden = getattr(client, method)(url_of(template, biz), *([body] if body is not None else []))
        gone = getattr(client, method)(missing, *([body] if body is not None else []))
        if hidden.status_code not in (403, 404) or hidden.status_code != gone.status_code:
            wrong.append((username, template, hidden.status_code, gone.status_code))
    # The API: a hidden invoice in a request body is refused as a missing one (and nothing is queued).
    from hashinsight.reports.models import ReportJob

    before = ReportJob.objects.count()
    api.force_authenticate(biz.users["client_x"])
    for invoice in (biz.inv_yb.pk, MISSING):
        response = api.post("/api/v1/reports", {"kind": "client_statement", "invoice": invoice}, format="json")
        assert (response.status_code, _error_shape(response)) == (404, True), invoice
        assert str(biz.inv_yb.number) not in response.content.decode()
    assert ReportJob.objects.count() == before
    assert wrong == [], f"(user, url, hidden, missing) {wrong}"


def test_the_old_invoice_proof_address_redirects_permanently_and_the_new_one_decides(biz):
    """``/invoices/<id>/proof.json`` moved under ``/finance/``: links already e-mailed answer 301 to the new address
    for anyone and any id (the redirect names nothing), and the new address answers each role as written above."""
    for column, username in enumerate(PAGE_USERS):
        client = Client()
        sign_in(client, biz, username)
        for key in ("inv_xa", "inv_yb"):
            pk = getattr(biz, key).pk
            old = client.get(f"/invoices/{pk}/proof.json?download=1")
            assert (old.status_code, old["Location"]) == (301, f"/finance/invoices/{pk}/proof.json?download=1")
            expected = PAGES[f"/finance/invoices/{{{key}}}/proof.json"][column]
            assert outcome_of(client.get(old["Location"])) == expected, (username, key)
        gone = client.get(f"/invoices/{MISSING}/proof.json")
        assert (gone.status_code, gone["Location"]) == (301, f"/finance/invoices/{MISSING}/proof.json")


# Staff identities: which operator entered a force-majeure window or recorded a payment is for operators (owner,
# admin, site owner). A hosting client reading the same window or payment gets null for the operator's id, and no
# "Entered by" column (the operator's username) in the page or either CSV export.
OPERATOR_NAME = "ops-li-wei"


@pytest.mark.parametrize(("username", "staff"), [("owner", True), ("admin", True), ("siteowner_a", True),
                                                 ("client_x", False)])  # fmt: skip
def test_a_hosting_client_is_not_told_which_operator_entered_or_recorded_something(api, client, biz, username, staff):
    operator = biz.users["owner"]  # entered the windows and recorded the payments
    operator.username = OPERATOR_NAME
    operator.save(update_fields=["username"])
    expected = operator.pk if staff else None
    api.force_authenticate(biz.users[username])
    client.force_login(biz.users[username])

    payments = api.get("/api/v1/payments", {"limit": 100}).json()["results"]
    assert biz.pay_xa.pk in {p["id"] for p in payments}
    assert {p["recorded_by"] for p in payments} == {expected}
    assert api.get(f"/api/v1/payments/{biz.pay_xa.pk}").json()["recorded_by"] == expected
    windows = api.get("/api/v1/force-majeure", {"limit": 100}).json()["results"]
    assert biz.fm_a.pk in {w["id"] for w in windows}
    assert {w["created_by"] for w in windows} == {expected}
    assert api.get(f"/api/v1/force-majeure/{biz.fm_a.pk}").json()["created_by"] == expected

    for response in (
        api.get("/api/v1/force-majeure?format=csv"),
        client.get("/sla/force-majeure/?format=csv"),
        client.get("/sla/force-majeure/"),
    ):
        assert response.status_code == 200
        body = _body(response).decode()
        assert "storm at A" in body
        assert (OPERATOR_NAME in body, "Entered by" in body) == (staff, staff), response.request["PATH_INFO"]


# The e-mailed download link of a report file: made for client X, it opens for client X alone (signed in), for no
# one once expired (403, saying so), and a changed token is a 404; the report's own page still needs the scope.
LINK = {
    #            owner admin so_a so_b_ro client_x customer guest anonymous
    "valid":   (404,  404,  404, 404,    200,     404,     404,  LOGIN),
    "expired": (403,  403,  403, 403,    403,     403,     403,  403),
    "tampered": (404, 404,  404, 404,    404,     404,     404,  404),
}  # fmt: skip


def test_emailed_report_links_open_for_their_user_only_and_expire(biz):
    from hashinsight.reports import services as reports

    file = biz.files["x"]
    user_id = biz.users["client_x"].pk
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 2 * 86400):  # made 2 days ago
        expired = reports.file_token(file, user_id=user_id, ttl=timedelta(days=1))
    tokens = {"valid": reports.file_token(file, user_id=user_id), "expired": expired}
    tokens["tampered"] = tokens["valid"][:-2] + ("AA" if not tokens["valid"].endswith("AA") else "BB")
    for column, username in enumerate(PAGE_USERS):
        client = Client()
        sign_in(client, biz, username)
        for name, token in tokens.items():
            response = client.get(f"/reports/link/{token}/")
            assert outcome_of(response) == LINK[name][column], (name, username)
            if response.status_code == 200:
                assert _body(response) == b"report x"
            elif response.status_code != 302:
                assert b"report x" not in _body(response)


# Report schedules (REPORT FULL; a schedule e-mails a site's report every month): a site B schedule is site B's
# object. Site B's read-only owner's writes are left out here: they succeed today (see matrix-findings.md).
SCHEDULE_B = {
    #                 owner admin so_a so_b_ro client_x customer guest anonymous
    "list":          ({"s"}, {"s"}, set(), {"s"}, 403,  403,     403,  401),
    "detail":        (200,  200,  404,  200,    403,     403,     403,  401),
    "api disable":   (DONE, DONE, 404,  403,    403,     403,     403,  401),
    "page toggle":   (DONE, DONE, 404,  403,    403,     403,     403,  LOGIN),
}  # fmt: skip


def test_report_schedules_follow_the_site_scope(biz):
    from hashinsight.reports import services as reports
    from hashinsight.reports.models import ReportSchedule

    schedule = reports.schedule_create(
        user=biz.users["owner"], kind="site_monthly", site=biz.site_b.pk, recipients=["ops-b@example.test"]
    )
    url = f"/api/v1/report-schedules/{schedule.pk}"
    for column, username in enumerate(PAGE_USERS):
        api, client = APIClient(), Client()
        if username != "anonymous":
            api.force_authenticate(biz.users[username])
        sign_in(client, biz, username)
        listed = SCHEDULE_B["list"][column]
        response = api.get("/api/v1/report-schedules")
        if isinstance(listed, set):
            assert response.status_code == 200, username
            assert {row["id"] for row in response.json()["results"]} == ({schedule.pk} if listed else set()), username
        else:
            assert response.status_code == listed, username
        assert api.get(url).status_code == SCHEDULE_B["detail"][column], username
        for name in ("api disable", "page toggle"):
            expected = SCHEDULE_B[name][column]
            if expected is None:
                continue
            if name == "api disable":
                got = outcome_of(api.patch(url, {"enabled": False}, format="json"))
            else:
                got = outcome_of(client.post(f"/reports/schedules/{schedule.pk}/toggle/"))
            enabled = ReportSchedule.objects.get(pk=schedule.pk).enabled
            if expected == DONE:
                assert (got in (200, 302), enabled) == (True, False), (name, username, got)
                ReportSchedule.objects.filter(pk=schedule.pk).update(enabled=True)
            else:
                assert (got, enabled) == (expected, True), (name, username)


# The admin of the new models is read-only for site owners (CRM, FINANCE and WEB3 READ; report jobs are the workers'
# and schedules are kept in the portal): a change or delete is refused (403, before the lookup: a hidden row and a
# missing id answer the same) and changes nothing.
ADMIN_WRITES = {
    # url: (siteowner_a, siteowner_b_ro), each the POST's answer
    "/admin/sites/deal/{deal_a}/change/": (403, 403),
    "/admin/sites/hostingcontract/{c_yb}/change/": (403, 403),
    "/admin/billing/invoice/{inv_xd}/change/": (403, 403),
    "/admin/billing/payment/{pay_yb}/change/": (403, 403),
    "/admin/billing/forcemajeurewindow/{fm_a}/delete/": (403, 403),
    "/admin/billing/forcemajeurewindow/{fm_b}/delete/": (403, 403),
    "/admin/reports/reportjob/{job_sb}/delete/": (403, 403),
}


def test_admin_writes_are_refused_to_site_owners(biz):
    from hashinsight.billing.models import ForceMajeureWindow, Invoice, Payment
    from hashinsight.reports.models import ReportJob
    from sites.models import Deal, HostingContract

    def snapshot():
        return [
            list(model.objects.order_by("pk").values())
            for model in (Deal, HostingContract, Invoice, Payment, ForceMajeureWindow, ReportJob)
        ]

    before = snapshot()
    for column, username in enumerate(("siteowner_a", "siteowner_b_ro")):
        client = Client()
        client.force_login(biz.users[username])
        for template, outcomes in ADMIN_WRITES.items():
            url = url_of(template, biz)
            response = client.post(url, {"post": "yes", "title": "forged", "notes": "forged", "reason": "forged"})
            assert response.status_code == outcomes[column], (username, url)
        missing = client.post(f"/admin/sites/deal/{MISSING}/change/", {"post": "yes", "title": "forged"})
        assert missing.status_code == 403, username
    assert snapshot() == before

"""The job's life (requested → rendered with progress 0 → 100, files in private storage with their SHA-256), failures
recorded rather than raised, who may ask for what, the monthly schedules (once per month, e-mailed with expiring
links) and the links themselves (expired: refused; another user: 404; tampered: 404)."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import date
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import ObjectDoesNotExist
from django.test import override_settings

from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from hashinsight.reports import services
from hashinsight.reports.models import ReportFile, ReportJob, ReportSchedule
from hashinsight.reports.tests import factories_reports as fx

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    private_storage._wrapped = empty  # re-read the setting
    yield
    private_storage._wrapped = empty


def _outbox_count(job_id: int) -> int:
    return OutboxEvent.objects.filter(event_type="report_job.changed", aggregate=f"report_job:{job_id}").count()


def test_a_site_report_renders_with_progress_and_files(farm, django_capture_on_commit_callbacks):
    fx.site_month(farm)
    seen = []
    publish = services._publish

    def record(job):
        seen.append(job.progress_pct)
        publish(job)

    with mock.patch.object(services, "_publish", record), django_capture_on_commit_callbacks(execute=True):
        job = services.report_request(
            user=farm.users["siteowner_a"], kind="site_monthly", site=farm.site_a.pk, month="2026-09",
            language="zh-hans", formats=["pptx", "pdf", "xlsx", "pdf"],
        )  # fmt: skip
    job.refresh_from_db()
    assert (job.status, job.progress_pct, job.message) == ("done", 100, "")
    assert job.formats == ["pdf", "xlsx", "pptx"]  # de-duplicated, in a stable order
    # queued 0, running 5, data 35, charts 50, one step per file, done 100; each step an outbox event
    assert seen == [0, 5, 35, 50, 65, 80, 95, 100]
    assert _outbox_count(job.pk) == len(seen)
    files = {f.format: f for f in job.files.all()}
    assert set(files) == {"pdf", "xlsx", "pptx"}
    body = files["pdf"].file.read()
    assert body.startswith(b"%PDF-") and files["pdf"].sha256 == hashlib.sha256(body).hexdigest()
    assert files["pdf"].size_bytes == len(body)
    assert files["pdf"].file.name.startswith("reports/") and "zh-hans" in files["pdf"].file.name


def test_a_failure_is_recorded_not_raised(farm, django_capture_on_commit_callbacks):
    failing = mock.patch("hashinsight.reports.data.site_month", side_effect=RuntimeError("database went away"))
    with failing, django_capture_on_commit_callbacks(execute=True):
        job = services.report_request(user=farm.users["owner"], kind="site_monthly", site=farm.site_a.pk,
                                          month="2026-09")  # fmt: skip
    job.refresh_from_db()
    assert job.status == "failed" and "database went away" in job.message and job.finished_at is not None
    assert not job.files.exists()
    rerun = services.report_rerun(user=farm.users["owner"], job=job)
    assert rerun.status in ("queued", "done")


def test_a_done_job_is_not_rendered_twice(farm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.report_request(user=farm.users["owner"], kind="site_monthly", site=farm.site_a.pk,
                                      month="2026-09", formats=["xlsx"])  # fmt: skip
    sha = job.files.get().sha256
    with mock.patch("hashinsight.reports.services._render_files") as render:
        services.report_render(job_id=job.pk)
    render.assert_not_called()
    assert ReportFile.objects.get(job=job).sha256 == sha


def test_an_identical_request_while_queued_answers_the_same_job(farm):
    kw = {"user": farm.users["owner"], "kind": "site_monthly", "site": farm.site_a.pk, "month": "2026-09"}
    first = services.report_request(**kw)  # on-commit never runs inside the test's transaction: still queued
    assert services.report_request(**kw).pk == first.pk
    assert ReportJob.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "weekly"}, "invalid_kind"),
        ({"kind": "site_monthly"}, "required"),
        ({"kind": "site_monthly", "site": 1, "month": "2026-13"}, "invalid_month"),
        ({"kind": "site_monthly", "site": 1, "month": "2999-01"}, "invalid_month"),
        ({"kind": "site_monthly", "site": 1, "month": "2026-09", "formats": ["docx"]}, "invalid_formats"),
        ({"kind": "site_monthly", "site": 1, "month": "2026-09", "formats": []}, "invalid_formats"),
        ({"kind": "site_monthly", "site": 1, "month": "2026-09", "language": "fr"}, "invalid_language"),
        ({"kind": "site_monthly", "site": "abc", "month": "2026-09"}, "invalid"),
        ({"kind": "client_statement"}, "required"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(farm, body, code):
    body = {**body, "site": farm.site_a.pk} if body.get("site") == 1 else body
    with pytest.raises(DomainError) as exc:
        services.report_request(user=farm.users["owner"], **body)
    assert (exc.value.status, exc.value.code) == (400, code)
    assert not ReportJob.objects.exists()


def test_who_may_ask_for_what(farm):
    fx.site_month(farm)
    inv_x = fx.issued_invoice(farm)
    inv_y = fx.issued_invoice(farm, customer=farm.client_y, number="INV-Y")
    draft_x = fx.issued_invoice(farm, site=farm.site_b, number="DRAFT-X", status="draft")

    def refused(user, status, **kw):
        with pytest.raises(DomainError) as exc:
            services.report_request(user=farm.users[user], **kw)
        assert exc.value.status == status, (user, kw, exc.value.code)

    site_a = {"kind": "site_monthly", "site": farm.site_a.pk, "month": "2026-09"}
    site_b = {"kind": "site_monthly", "site": farm.site_b.pk, "month": "2026-09"}
    refused("siteowner_a", 404, **site_b)  # not granted: hidden
    refused("client_x", 403, **site_a)  # sees the site through its miners, but a site report is the operator's
    refused("customer", 404, **site_a)  # an app customer: REPORT READ (own) but no site at all: hidden
    refused("guest", 403, **site_a)
    refused("client_x", 404, kind="client_statement", invoice=inv_y.pk)  # another client's invoice
    refused("client_x", 404, kind="client_statement", invoice=draft_x.pk)  # its own draft: not yet its to see
    refused("siteowner_a", 404, kind="client_statement", invoice=draft_x.pk)  # site B's invoice
    assert services.report_request(user=farm.users["siteowner_b_ro"], **site_b).site_id == farm.site_b.pk
    job = services.report_request(user=farm.users["client_x"], kind="client_statement", invoice=inv_x.pk)
    assert (job.customer_id, job.site_id, job.invoice_id, job.month) == (farm.client_x.pk, farm.site_a.pk, inv_x.pk,
                                                                        fx.MONTH)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Links


def test_links_expire_and_name_their_user(farm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.report_request(user=farm.users["owner"], kind="site_monthly", site=farm.site_a.pk,
                                      month="2026-09", formats=["xlsx"])  # fmt: skip
    file = job.files.get()
    owner, admin = farm.users["owner"], farm.users["admin"]
    token = services.file_token(file, user_id=owner.pk)
    assert services.file_from_token(token=token, user=owner).pk == file.pk
    with pytest.raises(DomainError) as exc:
        services.file_from_token(token=token, user=admin)  # someone else's link
    assert exc.value.status == 404
    with pytest.raises(DomainError) as exc:
        services.file_from_token(token=token[:-2] + "xx", user=owner)  # tampered
    assert exc.value.code == "link_invalid" and exc.value.status == 404
    eight_days_ago = time.time() - 8 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=eight_days_ago):
        old = services.file_token(file, user_id=owner.pk)  # made eight days ago, valid seven
    with pytest.raises(DomainError) as exc:
        services.file_from_token(token=old, user=owner)
    assert exc.value.code == "link_expired" and exc.value.status == 403 and "expired on" in exc.value.message
    bearer = services.file_token(file, user_id=None)
    assert services.file_from_token(token=bearer, user=mock.Mock(is_authenticated=False)).pk == file.pk


def test_a_link_to_a_replaced_file_no_longer_works(farm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.report_request(user=farm.users["owner"], kind="site_monthly", site=farm.site_a.pk,
                                      month="2026-09", formats=["xlsx"])  # fmt: skip
    file = job.files.get()
    token = services.file_token(file, user_id=None)
    ReportFile.objects.filter(pk=file.pk).update(sha256="0" * 64)
    with pytest.raises(DomainError) as exc:
        services.file_from_token(token=token, user=None)
    assert exc.value.status == 404


# ---------------------------------------------------------------------------------------------------------
# Schedules


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", PORTAL_BASE_URL="https://hi.test")
def test_a_schedule_sends_once_per_month(farm, django_capture_on_commit_callbacks):
    fx.site_month(farm)
    owner = farm.users["owner"]
    schedule = services.schedule_create(
        user=owner, kind="site_monthly", site=farm.site_a.pk, language="zh-hans", formats=["pdf", "xlsx"],
        recipients=[owner.email, "cfo@outside.test"], day_of_month=3,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert services.schedules_run(today=date(2026, 10, 2))["queued"] == 0  # before its day
    assert len(mail.outbox) == 0
    with django_capture_on_commit_callbacks(execute=True):
        result = services.schedules_run(today=date(2026, 10, 3))
    assert (result["month"], result["queued"]) == ("2026-09-01", 1)
    job = ReportJob.objects.get(schedule=schedule)
    assert (job.status, job.month, job.language) == ("done", fx.MONTH, "zh-hans")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([owner.email, "cfo@outside.test"])
    message = next(m for m in mail.outbox if m.to == [owner.email])
    links = re.findall(r"https://hi\.test/reports/link/([^/\s]+)/", message.body)
    assert len(links) == 2 and "2026-09" in message.subject
    assert services.file_from_token(token=links[0], user=owner).job_id == job.pk
    with pytest.raises(DomainError):  # the owner's link is the owner's
        services.file_from_token(token=links[0], user=farm.users["admin"])
    outside = next(m for m in mail.outbox if m.to == ["cfo@outside.test"])
    bearer = re.findall(r"https://hi\.test/reports/link/([^/\s]+)/", outside.body)[0]
    assert services.file_from_token(token=bearer, user=None).job_id == job.pk
    with django_capture_on_commit_callbacks(execute=True):  # later that month: nothing again
        assert services.schedules_run(today=date(2026, 10, 4))["queued"] == 0
        assert services.schedules_run(today=date(2026, 10, 30))["queued"] == 0
    assert ReportJob.objects.filter(schedule=schedule).count() == 1 and len(mail.outbox) == 2
    with django_capture_on_commit_callbacks(execute=True):  # the next month: once more
        assert services.schedules_run(today=date(2026, 11, 3))["queued"] == 1
    assert ReportSchedule.objects.get().last_month_sent == date(2026, 10, 1)


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_a_statement_schedule_waits_for_the_issued_invoice_and_mails_no_other_client(
    farm, django_capture_on_commit_callbacks
):
    fx.site_month(farm)
    owner, client_y = farm.users["owner"], farm.users["client_y"]
    services.schedule_create(user=owner, kind="client_statement", customer=farm.client_x.pk, formats=["pdf"],
                             recipients=[farm.users["client_x"].email, client_y.email])  # fmt: skip
    assert services.schedules_run(today=date(2026, 10, 5))["waiting"] == 1  # no issued September invoice yet
    fx.issued_invoice(farm)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.schedules_run(today=date(2026, 10, 6))["queued"] == 1
    # client Y was named by mistake: it sees no report of client X, so it gets no link
    assert [m.to for m in mail.outbox] == [[farm.users["client_x"].email]]


def test_schedule_input_is_checked(farm):
    owner = farm.users["owner"]
    base = {"kind": "site_monthly", "site": farm.site_a.pk, "recipients": ["a@b.test"]}
    for bad, code in [({"recipients": ["not-an-address"]}, "invalid_recipients"), ({"recipients": []},
                      "invalid_recipients"), ({"day_of_month": 29}, "invalid_day"), ({"day_of_month": "x"},
                      "invalid_day"), ({"formats": ["doc"]}, "invalid_formats")]:  # fmt: skip
        with pytest.raises(DomainError) as exc:
            services.schedule_create(user=owner, **{**base, **bad})
        assert exc.value.code == code
    with pytest.raises(DomainError) as exc:
        services.schedule_create(user=farm.users["client_x"], **base)
    assert exc.value.status == 403
    with pytest.raises(DomainError) as exc:
        services.schedule_create(user=farm.users["siteowner_a"], **{**base, "site": farm.site_b.pk})
    assert exc.value.status == 404
    assert not ReportSchedule.objects.exists()
    row = services.schedule_create(user=owner, **base)
    with pytest.raises(DomainError):
        services.schedule_update(user=owner, schedule=row, enabled="yes")
    assert services.schedule_update(user=owner, schedule=row, enabled=False).enabled is False
    services.schedule_delete(user=owner, schedule=row)
    with pytest.raises(ObjectDoesNotExist):
        row.refresh_from_db()
